//! The default-key workaround (SPEC 6.4) on the simulator: a volume under `aws/ebs` reaches
//! another account through a copy under the policy's re-encrypt key, which is shared instead
//! of the original and deleted once the target copied it. The simulator refuses to share a
//! snapshot under an AWS managed key, as AWS does, so a `Success` proves the original was
//! never shared. Crash and resume at every change: crates/sim/tests/crash.rs.

use snaprelay_core::engine::{EngineConfig, Interrupt, Progress, Throttled, prepare, run_session};
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{SnapshotState, tag_value, tags};
use snaprelay_core::policy::Policy;
use snaprelay_core::report::SessionReport;
use snaprelay_core::status::Status;
use snaprelay_sim::{Encryption, InstanceSpec, SimCloud, VolumeSpec};
use snaprelay_state::SqliteStore;

struct Quiet;
impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
}

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

struct Estate {
    cloud: SimCloud,
    instance: String,
    reencrypt_key: String,
    vault_key: String,
    west_key: String,
}

/// An instance with a volume under a customer managed key the target may use and one under
/// `aws/ebs`; a re-encrypt key in the source Region that admits the target account.
fn estate() -> Estate {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::new(&src);
    cloud.add_account(&tgt);
    let app_key = cloud.create_key(&src, "us-east-1", Some("app"), std::slice::from_ref(&tgt));
    let reencrypt_key =
        cloud.create_key(&src, "us-east-1", Some("share"), std::slice::from_ref(&tgt));
    let west_key = cloud.create_key(&src, "us-west-2", Some("dr-west"), &[]);
    let vault_key = cloud.create_key(&tgt, "eu-west-1", Some("vault"), &[]);
    let instance = cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            name: Some("legacy".into()),
            volumes: vec![
                VolumeSpec {
                    size_gib: 50,
                    encryption: Encryption::Key(app_key),
                },
                VolumeSpec {
                    size_gib: 200,
                    encryption: Encryption::DefaultKey,
                },
            ],
            ..Default::default()
        },
    );
    Estate {
        cloud,
        instance,
        reencrypt_key,
        vault_key,
        west_key,
    }
}

fn policy(e: &Estate, reencrypt: bool) -> String {
    let reencrypt_keys = match reencrypt {
        true => format!(
            "reencrypt_keys = {{ \"us-east-1\" = \"{}\" }}",
            e.reencrypt_key
        ),
        false => String::new(),
    };
    format!(
        r#"
name = "legacy"
[source]
regions = ["us-east-1"]
{reencrypt_keys}
[[source.resources]]
type = "ec2"
ids = ["{instance}"]
[[targets]]
region = "us-west-2"
kms_key = "{west}"
[[targets]]
account = "{TARGET}"
region = "eu-west-1"
role_arn = "arn:aws:iam::{TARGET}:role/snaprelay-target"
kms_key = "{vault}"
"#,
        instance = e.instance,
        west = e.west_key,
        vault = e.vault_key
    )
}

async fn run(cloud: &SimCloud, policy: &str) -> SessionReport {
    let policy = Policy::from_toml(policy).expect("policy");
    let cloud = Throttled::new(cloud);
    let prepared = prepare(&cloud, &policy).await.expect("prepare");
    let store = SqliteStore::in_memory().unwrap();
    run_session(
        &cloud,
        &store,
        &Quiet,
        &EngineConfig::default(),
        &Interrupt::never(),
        &prepared,
        None,
    )
    .await
    .expect("session")
}

#[tokio::test(start_paused = true)]
async fn a_default_key_volume_reaches_another_account_through_a_copy_under_the_reencrypt_key() {
    let e = estate();
    let report = run(&e.cloud, &policy(&e, true)).await;
    assert_eq!(report.status, Status::Success, "{report:#?}");

    // Both volumes replicated into the other account, under its key.
    let replicas = e.cloud.snapshots(&account(TARGET), "eu-west-1");
    assert_eq!(replicas.len(), 2, "{replicas:#?}");
    assert!(replicas.iter().all(|s| s.state == SnapshotState::Completed
        && s.kms_key.as_deref() == Some(e.vault_key.as_str())));
    // In the source place only the source snapshots are left: the extra copy is deleted, and
    // nothing is shared.
    let sources = e.cloud.snapshots(&account(SOURCE), "us-east-1");
    assert_eq!(sources.len(), 2, "{sources:#?}");
    assert!(
        sources
            .iter()
            .all(|s| tag_value(&s.tags, tags::KIND) == Some("source") && s.shared_with.is_empty())
    );
    // Each replica names its volume and the original source snapshot (not the deleted extra
    // copy it was made from): the restore point's lineage is the original's.
    assert!(
        replicas.iter().all(|r| sources.iter().any(|s| {
            tag_value(&r.tags, tags::VOLUME) == Some(s.volume_id.as_str())
                && tag_value(&r.tags, tags::SOURCE_SNAPSHOT) == Some(s.id.as_str())
        })),
        "{replicas:#?}"
    );
    // The same-account replica is copied from the original: no extra copy for it.
    assert_eq!(e.cloud.snapshots(&account(SOURCE), "us-west-2").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn without_a_reencrypt_key_the_task_fails_naming_the_setting_and_shares_nothing() {
    let e = estate();
    let report = run(&e.cloud, &policy(&e, false)).await;
    assert_eq!(report.status, Status::Failed, "{report:#?}");
    let messages = report.resources[0].messages.join("\n");
    assert!(messages.contains("reencrypt_keys"), "{messages}");
    assert!(e.cloud.snapshots(&account(TARGET), "eu-west-1").is_empty());
    assert!(
        e.cloud
            .snapshots(&account(SOURCE), "us-east-1")
            .iter()
            .all(|s| s.shared_with.is_empty())
    );
}

/// A DB instance under `aws/rds` in the estate, and a policy replicating it (workflow C in
/// two steps to the other account, workflow A to us-west-2).
fn db_estate(reencrypt: bool) -> (Estate, String) {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let e = estate();
    let staging = e.cloud.create_key(&tgt, "us-east-1", Some("staging"), &[]);
    e.cloud.add_db_instance(
        &src,
        "us-east-1",
        snaprelay_sim::DbSpec {
            id: "billing".into(),
            engine: "postgres".into(),
            size_gib: 100,
            encryption: Encryption::DefaultKey,
            tags: vec![],
            cluster: None,
        },
    );
    let text = policy(&e, reencrypt)
        .replace(
            &format!("ids = [\"{}\"]", e.instance),
            "ids = [\"billing\"]",
        )
        .replace("type = \"ec2\"", "type = \"rds\"")
        .replace(
            &format!("kms_key = \"{}\"", e.vault_key),
            &format!(
                "kms_key = \"{}\"\nstaging_kms_key = \"{staging}\"",
                e.vault_key
            ),
        );
    (e, text)
}

#[tokio::test(start_paused = true)]
async fn a_db_under_aws_rds_reaches_another_account_through_a_copy_under_the_reencrypt_key() {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let (e, text) = db_estate(true);
    let report = run(&e.cloud, &text).await;
    assert_eq!(report.status, Status::Success, "{report:#?}");
    // The replica in the other account, under its key; the intermediate copy and the extra
    // copy under the re-encrypt key are gone; nothing is shared.
    let replicas = e.cloud.db_snapshots(&tgt, "eu-west-1");
    assert_eq!(replicas.len(), 1, "{replicas:#?}");
    assert_eq!(replicas[0].kms_key.as_deref(), Some(e.vault_key.as_str()));
    assert!(e.cloud.db_snapshots(&tgt, "us-east-1").is_empty());
    let sources = e.cloud.db_snapshots(&src, "us-east-1");
    assert_eq!(sources.len(), 1, "{sources:#?}");
    assert!(sources[0].shared_with.is_empty());
    assert_eq!(tag_value(&sources[0].tags, tags::KIND), Some("source"));

    // Without the re-encrypt key: Failed, naming the setting; nothing shared.
    let (e, text) = db_estate(false);
    let report = run(&e.cloud, &text).await;
    assert_eq!(report.status, Status::Failed, "{report:#?}");
    assert!(
        report.resources[0]
            .messages
            .join("\n")
            .contains("reencrypt_keys")
    );
    assert!(
        e.cloud
            .db_snapshots(&src, "us-east-1")
            .iter()
            .all(|s| s.shared_with.is_empty())
    );
}
