//! What a drill reports (SPEC 6.3): per resource and place, the checks of what was restored,
//! the recovery time, and whether everything made was deleted again.

use serde::Serialize;

use super::ResourceRef;
use crate::config::{AuroraConfig, Ec2Config, RdsConfig};

/// The fixed check names.
pub mod checks {
    pub const INSTANCE_RUNNING: &str = "instance_running";
    pub const VOLUME_COUNT: &str = "volume_count";
    pub const VOLUME_SIZE: &str = "volume_size";
    pub const VOLUME_KEY: &str = "volume_key";
    pub const VOLUME_AVAILABLE: &str = "volume_available";
    pub const DB_AVAILABLE: &str = "db_available";
    pub const ENGINE_VERSION: &str = "engine_version";
}

/// `Passed` or `Failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DrillStatus {
    Passed,
    Failed,
}

impl DrillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Passed => "Passed",
            Self::Failed => "Failed",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &'static str, ok: bool, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok,
            detail: detail.into(),
        }
    }
}

/// The drill of one resource in one place.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillResult {
    pub resource: ResourceRef,
    /// `null` when the place holds no complete restore point of the resource.
    pub point_id: Option<i64>,
    pub account: String,
    pub region: String,
    pub status: DrillStatus,
    /// From the first restore call to usable; `null` when it never was.
    pub rto_seconds: Option<f64>,
    pub checks: Vec<Check>,
    pub cleaned_up: bool,
    pub messages: Vec<String>,
    /// What the drill made (for `--keep`, what is left).
    pub created: Vec<super::Created>,
}

impl DrillResult {
    /// `Passed` only when every check passed, it was usable in time, and everything made was
    /// deleted (or kept, as asked).
    pub fn settle(&mut self, keep: bool) {
        let passed = self.point_id.is_some()
            && self.rto_seconds.is_some()
            && !self.checks.is_empty()
            && self.checks.iter().all(|c| c.ok)
            && (self.cleaned_up || keep);
        self.status = if passed {
            DrillStatus::Passed
        } else {
            DrillStatus::Failed
        };
    }
}

/// The document `drill --output json` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DrillReport {
    pub drill_id: String,
    pub policy: String,
    pub status: DrillStatus,
    pub started_at: String,
    pub ended_at: String,
    pub results: Vec<DrillResult>,
    /// Leftovers of earlier drills found and deleted first, and anything else to say.
    pub messages: Vec<String>,
}

/// The smallest size of an instance type's or DB class's family (`--small`): the burstable
/// families start at `nano` (EC2) or `micro` (RDS), the others at `large`.
/// https://docs.aws.amazon.com/ec2/latest/instancetypes/instance-type-names.html
pub fn smallest_of_family(class: &str) -> String {
    let (prefix, rest) = match class.strip_prefix("db.") {
        Some(rest) => ("db.", rest),
        None => ("", class),
    };
    let Some((family, _size)) = rest.split_once('.') else {
        return class.to_owned();
    };
    // t2, t3, t3a, t4g: not trn1 (Trainium).
    let burstable =
        family.starts_with('t') && family[1..].starts_with(|c: char| c.is_ascii_digit());
    let size = match (burstable, prefix) {
        (true, "db.") => "micro",
        (true, _) => "nano",
        (false, _) => "large",
    };
    format!("{prefix}{family}.{size}")
}

/// The smallest class of an Aurora DB instance class's family (`--small`): Aurora's
/// burstable classes start at `medium` (it has no `micro` or `small` in current versions),
/// the others at `large`; `db.serverless` stays as it is.
/// https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/Concepts.DBInstanceClass.SupportAurora.html
pub fn smallest_aurora_class(class: &str) -> String {
    let smallest = smallest_of_family(class);
    match smallest.strip_suffix(".micro") {
        Some(family) => format!("{family}.medium"),
        None => smallest,
    }
}

/// The checks of a restored instance: running, one volume per recorded volume, each of the
/// recorded size and under the replica's key.
pub fn instance_checks(
    config: &Ec2Config,
    state: &str,
    volumes: &[(String, i64, Option<String>)],
    replica_keys: &[Option<String>],
) -> Vec<Check> {
    use checks::*;
    let mut out = vec![Check::new(
        INSTANCE_RUNNING,
        state == "running",
        format!("instance is {state}"),
    )];
    out.extend(volume_checks(config, volumes, replica_keys));
    out
}

/// The checks of restored volumes (of an instance or on their own): `(id, size, key)` each.
pub fn volume_checks(
    config: &Ec2Config,
    volumes: &[(String, i64, Option<String>)],
    replica_keys: &[Option<String>],
) -> Vec<Check> {
    use checks::*;
    let want = config.volumes.len();
    let mut out = vec![Check::new(
        VOLUME_COUNT,
        volumes.len() == want,
        format!("{} volume(s), {want} recorded", volumes.len()),
    )];
    let mut sizes: Vec<i64> = volumes.iter().map(|v| v.1).collect();
    let mut recorded: Vec<i64> = config.volumes.iter().filter_map(|v| v.size_gib).collect();
    sizes.sort_unstable();
    recorded.sort_unstable();
    out.push(Check::new(
        VOLUME_SIZE,
        sizes == recorded,
        format!("sizes {sizes:?} GiB, recorded {recorded:?} GiB"),
    ));
    let wrong: Vec<&str> = volumes
        .iter()
        .filter(|(_, _, key)| !replica_keys.contains(key))
        .map(|(id, _, _)| id.as_str())
        .collect();
    out.push(Check::new(
        VOLUME_KEY,
        wrong.is_empty(),
        if wrong.is_empty() {
            "every volume is under the replica's key".to_owned()
        } else {
            format!("not under the replica's key: {}", wrong.join(", "))
        },
    ));
    out
}

/// The checks of a restored DB instance: available, with the recorded engine and version.
pub fn db_checks(
    config: Option<&RdsConfig>,
    status: &str,
    engine: &str,
    version: Option<&str>,
) -> Vec<Check> {
    use checks::*;
    let available = Check::new(
        DB_AVAILABLE,
        status == "available",
        format!("DB is {status}"),
    );
    let recorded = config.map(|c| c.engine.as_str()).filter(|e| !e.is_empty());
    let recorded_version = config.and_then(|c| c.db.engine_version.as_deref());
    vec![
        available,
        engine_check((recorded, recorded_version), engine, version),
    ]
}

/// `engine_version`: the engine and version restored are the recorded ones, where recorded
/// (`None`: not recorded, any will do).
fn engine_check(
    (recorded, recorded_version): (Option<&str>, Option<&str>),
    engine: &str,
    version: Option<&str>,
) -> Check {
    let same = recorded.is_none_or(|e| e == engine)
        && (recorded_version.is_none() || recorded_version == version);
    Check::new(
        checks::ENGINE_VERSION,
        same,
        format!(
            "{engine} {}, recorded {} {}",
            version.unwrap_or("?"),
            recorded.unwrap_or("?"),
            recorded_version.unwrap_or("?")
        ),
    )
}

/// The checks of a restored Aurora cluster: it and its writer available (`db_available`),
/// with the recorded engine and version. `writer` is its id and status.
pub fn cluster_checks(
    config: &AuroraConfig,
    cluster_status: &str,
    writer: (&str, &str),
    engine: &str,
    version: Option<&str>,
) -> Vec<Check> {
    use checks::*;
    let (writer_id, writer_status) = writer;
    let available = Check::new(
        DB_AVAILABLE,
        cluster_status == "available" && writer_status == "available",
        format!("cluster is {cluster_status}, writer {writer_id} is {writer_status}"),
    );
    let recorded = (
        Some(config.engine.as_str()),
        config.engine_version.as_deref(),
    );
    vec![available, engine_check(recorded, engine, version)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_of_a_family() {
        assert_eq!(smallest_of_family("m5.4xlarge"), "m5.large");
        assert_eq!(smallest_of_family("t3.large"), "t3.nano");
        assert_eq!(smallest_of_family("db.r6g.2xlarge"), "db.r6g.large");
        assert_eq!(smallest_of_family("db.t3.medium"), "db.t3.micro");
        assert_eq!(smallest_of_family("weird"), "weird");
        assert_eq!(smallest_of_family("trn1.32xlarge"), "trn1.large");
        assert_eq!(smallest_aurora_class("db.r6g.4xlarge"), "db.r6g.large");
        assert_eq!(smallest_aurora_class("db.t4g.large"), "db.t4g.medium");
        assert_eq!(smallest_aurora_class("db.serverless"), "db.serverless");
    }

    #[test]
    fn a_result_passes_only_whole() {
        let mut r = DrillResult {
            resource: ResourceRef {
                resource_type: crate::model::ResourceType::Rds,
                id: "db".into(),
            },
            point_id: Some(1),
            account: "2".into(),
            region: "r".into(),
            status: DrillStatus::Failed,
            rto_seconds: Some(1.0),
            checks: db_checks(None, "available", "postgres", Some("16")),
            cleaned_up: true,
            messages: vec![],
            created: vec![],
        };
        r.settle(false);
        assert_eq!(r.status, DrillStatus::Passed);
        r.cleaned_up = false;
        r.settle(false);
        assert_eq!(
            r.status,
            DrillStatus::Failed,
            "a cleanup that failed fails it"
        );
        r.settle(true);
        assert_eq!(r.status, DrillStatus::Passed, "--keep keeps on purpose");
        r.checks[1].ok = false;
        r.settle(true);
        assert_eq!(r.status, DrillStatus::Failed);
    }
}
