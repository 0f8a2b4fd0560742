//! One file per subcommand, and what they share: loading the policy, the cloud and the store.

pub mod plan;
pub mod run;
pub mod sessions;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use snaprelay_aws::AwsCloud;
use snaprelay_core::engine::{PrepareError, Prepared, Progress, prepare};
use snaprelay_core::policy::Policy;
use snaprelay_state::SqliteStore;

use crate::Outcome;

pub struct Settings {
    pub policy: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub json: bool,
    pub poll_interval: Duration,
}

/// Reads and validates the policy named by `--policy`.
pub fn load_policy(settings: &Settings) -> Result<Policy, Outcome> {
    let Some(path) = &settings.policy else {
        return Err(Outcome::Invalid(
            "--policy FILE is required for this command".into(),
        ));
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        Outcome::Invalid(format!(
            "cannot read the policy file {}: {e}",
            path.display()
        ))
    })?;
    Policy::from_toml(&text).map_err(|e| Outcome::Invalid(format!("{}: {e}", path.display())))
}

/// Connects to AWS and plans; nothing is changed.
pub async fn plan_policy(policy: &Policy) -> Result<(AwsCloud, Prepared), Outcome> {
    let cloud = AwsCloud::load(&policy.source.regions[0]).await;
    match prepare(&cloud, policy).await {
        Ok(prepared) => Ok((cloud, prepared)),
        Err(e @ PrepareError::Input(_)) => Err(Outcome::Invalid(e.to_string())),
        Err(PrepareError::Cloud(e)) => Err(Outcome::Failed(format!("{e}; nothing was changed"))),
    }
}

/// Opens the state store named by `--state`, or the default one.
pub fn open_store(settings: &Settings) -> Result<SqliteStore, Outcome> {
    match &settings.state {
        Some(path) => SqliteStore::open(path).map_err(|e| Outcome::Invalid(e.to_string())),
        None => {
            let path = SqliteStore::default_path().ok_or_else(|| {
                Outcome::Invalid(
                    "no per-user data directory (HOME is not set): give --state FILE".into(),
                )
            })?;
            SqliteStore::open(&path).map_err(|e| Outcome::Failed(e.to_string()))
        }
    }
}

/// Prints JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Outcome> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Outcome::Failed(format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Progress lines on stderr, only when a person is watching it.
pub struct Terminal {
    enabled: bool,
}

impl Terminal {
    pub fn detect() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for Terminal {
    fn update(&self, resource: &str, message: &str) {
        if self.enabled {
            eprintln!("[{resource}] {message}");
        }
    }
}
