//! The policies `serve` runs: one file, or every `*.toml` of a directory.

use std::path::Path;

use snaprelay_core::policy::Policy;

/// The policy files' largest size (as for `--policy`).
const MAX_BYTES: u64 = 1 << 20;

/// Reads the policies at `path`; `Err` names the file and what is wrong with it.
pub fn load_policies(path: &Path) -> Result<Vec<Policy>, String> {
    let files = if path.is_dir() {
        let mut files: Vec<_> = std::fs::read_dir(path)
            .map_err(|e| format!("--policies {}: {e}", path.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(format!(
                "--policies {}: the directory holds no *.toml policy",
                path.display()
            ));
        }
        files
    } else {
        vec![path.to_owned()]
    };
    let mut policies: Vec<Policy> = Vec::new();
    for file in files {
        let size = std::fs::metadata(&file)
            .map_err(|e| format!("policy file {}: {e}", file.display()))?
            .len();
        if size > MAX_BYTES {
            return Err(format!(
                "policy file {}: {size} bytes, more than a policy can be (1 MiB)",
                file.display()
            ));
        }
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("policy file {}: {e}", file.display()))?;
        let policy = Policy::from_toml(&text)
            .map_err(|e| format!("policy file {}:\n{e}", file.display()))?;
        if let Some(other) = policies.iter().find(|p| p.name == policy.name) {
            return Err(format!(
                "policy file {}: name {:?} is also the name of another policy file's policy; \
                 each policy needs its own name (it names its lease, tags and snapshots)",
                file.display(),
                other.name
            ));
        }
        policies.push(policy);
    }
    Ok(policies)
}
