//! The estate and scenarios of `snaprelay demo`: the seed's three outcomes on a small estate of
//! two accounts and three Regions, with nothing to install and no AWS account.
//!
//! - Account 111111111111 (the source, the ambient credentials): `web-1` (two volumes) and
//!   `web-2` under the customer managed key `alias/app-data`, `legacy-app` under the AWS managed
//!   `aws/ebs` key, DB `orders` under `alias/app-data` and DB `billing` under `aws/rds`, all in
//!   us-east-1, and the Aurora PostgreSQL cluster `ledger` under `alias/app-data`; `alias/share` in us-east-1 (the default-key workaround's re-encrypt key, its
//!   policy admitting the vault account); a key `alias/dr-west` in us-west-2.
//! - Account 222222222222 (the vault), reached through a role: a key `alias/vault` in
//!   eu-west-1. `alias/app-data`'s key policy admits the vault account.

use std::sync::Arc;
use std::time::Duration;

use snaprelay_core::app::{App, DrillOptions, drill};
use snaprelay_core::engine::{EngineConfig, Interrupt, Progress, Throttled, prepare, run_session};
use snaprelay_core::ids::AccountId;
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::StateStore;
use snaprelay_core::report::SessionReport;
use snaprelay_core::restore::drill::DrillReport;
use snaprelay_core::status::Status;

use crate::{DbSpec, Encryption, InstanceSpec, SimCloud, VolumeSpec};

pub const SOURCE_ACCOUNT: &str = "111111111111";
pub const VAULT_ACCOUNT: &str = "222222222222";

/// One session the demo runs: its policy, the status the seed says it ends in, and why.
pub struct Scenario {
    pub title: &'static str,
    pub policy: String,
    pub expected: Status,
    pub why: &'static str,
}

/// Runs one scenario's session on the demo's simulator, as `run` would on AWS: its policy
/// read, planned, and run to the end, with its progress told to `progress`. An error is the
/// demo's own fault (its policy, its estate), never the user's.
pub async fn run_scenario(
    cloud: &SimCloud,
    store: &dyn StateStore,
    scenario: &Scenario,
    progress: &dyn Progress,
    config: &EngineConfig,
) -> Result<SessionReport, String> {
    let policy = Policy::from_toml(&scenario.policy)
        .map_err(|e| format!("the demo's own policy is invalid: {e}"))?;
    let cloud = Throttled::new(cloud);
    let prepared = prepare(&cloud, &policy)
        .await
        .map_err(|e| format!("the demo could not plan: {e}"))?;
    run_session(
        &cloud,
        store,
        progress,
        config,
        &Interrupt::never(),
        &prepared,
        None,
    )
    .await
    .map_err(|e| e.to_string())
}

/// The demo's last act: a drill of a scenario's replicas (restored as isolated temporary
/// resources, checked, timed and deleted), so that a newcomer sees a restore proven.
pub async fn drill_scenario(
    cloud: Arc<SimCloud>,
    store: Arc<dyn StateStore>,
    scenario: &Scenario,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<DrillReport, String> {
    let policy = Policy::from_toml(&scenario.policy)
        .map_err(|e| format!("the demo's own policy is invalid: {e}"))?;
    let app = App::new(cloud, store);
    drill(
        &app,
        &policy,
        &DrillOptions::default(),
        Duration::from_secs(5),
        progress,
    )
    .await
    .map_err(|e| e.message)
}

fn account(id: &str) -> AccountId {
    AccountId::parse(id).unwrap_or_else(|| unreachable!("{id} is a literal account id"))
}

/// Builds the demo estate in a new simulator and returns it with the scenarios to run.
pub fn estate() -> (SimCloud, Vec<Scenario>) {
    let source = account(SOURCE_ACCOUNT);
    let vault = account(VAULT_ACCOUNT);
    let cloud = SimCloud::new(&source);
    cloud.add_account(&vault);

    let app_key = cloud.create_key(
        &source,
        "us-east-1",
        Some("app-data"),
        std::slice::from_ref(&vault),
    );
    let west_key = cloud.create_key(&source, "us-west-2", Some("dr-west"), &[]);
    // The default-key workaround's key: customer managed, admitting the vault account.
    let share_key = cloud.create_key(
        &source,
        "us-east-1",
        Some("share"),
        std::slice::from_ref(&vault),
    );
    let vault_key = cloud.create_key(&vault, "eu-west-1", Some("vault"), &[]);

    let app = || Encryption::Key(app_key.clone());
    let web = |name: &str, sizes: &[u32], encryption: Encryption| InstanceSpec {
        name: Some(name.to_owned()),
        tags: vec![("backup".into(), "gold".into())],
        volumes: sizes
            .iter()
            .map(|&size_gib| VolumeSpec {
                size_gib,
                encryption: encryption.clone(),
            })
            .collect(),
    };
    cloud.add_instance(&source, "us-east-1", web("web-1", &[100, 50], app()));
    cloud.add_instance(&source, "us-east-1", web("web-2", &[200], app()));
    cloud.add_instance(
        &source,
        "us-east-1",
        web("legacy-app", &[80], Encryption::DefaultKey),
    );
    let db = |id: &str, size_gib: u32, encryption: Encryption| DbSpec {
        id: id.to_owned(),
        engine: "postgres".into(),
        size_gib,
        encryption,
        tags: vec![("backup".into(), "gold".into())],
        cluster: None,
    };
    cloud.add_db_instance(&source, "us-east-1", db("orders", 300, app()));
    cloud.add_db_instance(
        &source,
        "us-east-1",
        db("billing", 50, Encryption::DefaultKey),
    );

    cloud.add_db_cluster(
        &source,
        "us-east-1",
        DbSpec {
            engine: "aurora-postgresql".into(),
            tags: vec![],
            ..db("ledger", 100, app())
        },
    );

    let scenarios = vec![
        Scenario {
            title: "Same account, another Region, with a target key",
            policy: format!(
                r#"name = "dr-same-account"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
tags = {{ Name = "web-1" }}
[[source.resources]]
type = "ec2"
tags = {{ Name = "web-2" }}
[[source.resources]]
type = "rds"
ids = ["orders"]
[[targets]]
region = "us-west-2"
kms_key = "{west_key}"
"#
            ),
            expected: Status::Success,
            why: "snapshot, then copy to the target Region re-encrypted with the target key",
        },
        Scenario {
            title: "Same account, but the target has no key",
            policy: r#"name = "dr-no-target-key"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
tags = { Name = "web-1" }
[[targets]]
region = "eu-west-1"
"#
            .to_owned(),
            expected: Status::Warning,
            why: "an encrypted instance and a target without a KMS key: no replica is made and \
                  the session completes with warnings",
        },
        Scenario {
            title: "Another account: share, copy, and the AWS managed keys that cannot be shared",
            policy: format!(
                r#"name = "vault-cross-account"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
tags = {{ backup = "gold" }}
[[source.resources]]
type = "rds"
tags = {{ backup = "gold" }}
[[targets]]
account = "{VAULT_ACCOUNT}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{VAULT_ACCOUNT}:role/snaprelay-target"
kms_key = "{vault_key}"
"#
            ),
            expected: Status::Failed,
            why: "web-1, web-2 and orders reach the vault (EC2: share and copy; RDS: share, copy \
                  in the source Region, copy to the target Region); legacy-app (aws/ebs) and \
                  billing (aws/rds) cannot be shared with another account, so their tasks fail",
        },
        Scenario {
            title: "Another account again, with a re-encrypt key: the default-key workaround",
            policy: format!(
                r#"name = "vault-reencrypt"
[source]
regions = ["us-east-1"]
reencrypt_keys = {{ "us-east-1" = "{share_key}" }}
[[source.resources]]
type = "ec2"
tags = {{ Name = "legacy-app" }}
[[source.resources]]
type = "rds"
ids = ["billing"]
[[targets]]
account = "{VAULT_ACCOUNT}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{VAULT_ACCOUNT}:role/snaprelay-target"
kms_key = "{vault_key}"
"#
            ),
            expected: Status::Success,
            why: "legacy-app (aws/ebs) and billing (aws/rds) reach the vault: each snapshot is \
                  first copied in the source account under alias/share, the copy is shared and \
                  copied, then deleted; the originals are never shared",
        },
        Scenario {
            title: "An Aurora cluster to another account and Region",
            policy: format!(
                r#"name = "vault-aurora"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "aurora"
ids = ["ledger"]
[[targets]]
account = "{VAULT_ACCOUNT}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{VAULT_ACCOUNT}:role/snaprelay-target"
kms_key = "{vault_key}"
"#
            ),
            expected: Status::Success,
            why: "a DB cluster snapshot of ledger, shared, copied into the vault in the source \
                  Region, then to eu-west-1 (AWS copies a shared cluster snapshot only within \
                  its Region), the intermediate copy deleted and the share removed",
        },
    ];
    (cloud, scenarios)
}
