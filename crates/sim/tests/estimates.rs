//! What a replica costs (SPEC 6.5), on the simulator: which copies `plan` counts full and which
//! incremental across runs, key changes, deleted replicas and new targets; how it sizes them
//! (volume size, `FullSnapshotSizeInBytes`, `ListChangedBlocks`); and what `run` reports it
//! copied.
//!
//! The simulator's data model: a volume starts half full (its snapshot's
//! `FullSnapshotSizeInBytes` is half its size) and each block written with
//! `SimCloud::write_blocks` is one more changed 512 KiB block.

use std::sync::{Arc, Mutex};

use snaprelay_core::app::{App, RunOutcome, RunRequest, plan, run_policy};
use snaprelay_core::engine::{EngineConfig, Interrupt, Progress};
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::Resource;
use snaprelay_core::plan::Plan;
use snaprelay_core::plan::estimate::{Basis, CopyEstimate, GIB};
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::Access;
use snaprelay_core::ports::prelude::*;
use snaprelay_core::report::Service;
use snaprelay_core::runtime::SlotWatch;
use snaprelay_core::status::Status;
use snaprelay_sim::{DbSpec, Encryption, Fault, InstanceSpec, SimCloud, VolumeSpec};
use snaprelay_state::SqliteStore;

struct Quiet;
impl Progress for Quiet {
    fn update(&self, _: &str, _: &str) {}
}

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const BLOCK: u64 = 512 * 1024;

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

/// An instance with an 8 GiB and a 20 GiB volume in us-east-1, keys for a same-account target
/// in us-west-2 (two of them) and a cross-account one in eu-west-1.
struct Estate {
    cloud: Arc<SimCloud>,
    app: App,
    instance: String,
    west_key: String,
    other_west_key: String,
    vault_key: String,
}

fn estate() -> Estate {
    let (src, tgt) = (account(SOURCE), account(TARGET));
    let cloud = SimCloud::with_seed(&src, 20);
    cloud.add_account(&tgt);
    let source_key = cloud.create_key(&src, "us-east-1", Some("app"), std::slice::from_ref(&tgt));
    let west_key = cloud.create_key(&src, "us-west-2", Some("dr-west"), &[]);
    let other_west_key = cloud.create_key(&src, "us-west-2", Some("dr-west-2"), &[]);
    let vault_key = cloud.create_key(&tgt, "eu-west-1", Some("vault"), &[]);
    let volume = |size_gib| VolumeSpec {
        size_gib,
        encryption: Encryption::Key(source_key.clone()),
    };
    let instance = cloud.add_instance(
        &src,
        "us-east-1",
        InstanceSpec {
            name: Some("web".into()),
            volumes: vec![volume(8), volume(20)],
            ..Default::default()
        },
    );
    cloud.add_db_instance(
        &src,
        "us-east-1",
        DbSpec {
            id: "orders".into(),
            engine: "postgres".into(),
            size_gib: 50,
            encryption: Encryption::Key(source_key.clone()),
            tags: vec![],
            cluster: None,
        },
    );
    let cloud = Arc::new(cloud);
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    let app = App::new(cloud.clone(), store);
    Estate {
        cloud,
        app,
        instance,
        west_key,
        other_west_key,
        vault_key,
    }
}

impl Estate {
    /// The policy: the instance (and `extra` selections) to the targets given.
    fn policy(&self, targets: &str, extra: &str) -> Policy {
        Policy::from_toml(&format!(
            r#"
name = "dr"
[source]
regions = ["us-east-1"]
[[source.resources]]
type = "ec2"
ids = ["{instance}"]
{extra}
{targets}
"#,
            instance = self.instance
        ))
        .unwrap()
    }

    fn west(&self, key: &str) -> String {
        format!("[[targets]]\nregion = \"us-west-2\"\nkms_key = \"{key}\"\n")
    }

    fn vault(&self) -> String {
        format!(
            "[[targets]]\naccount = \"{TARGET}\"\nregion = \"eu-west-1\"\nrole_arn = \
             \"arn:aws:iam::{TARGET}:role/snaprelay-target\"\nkms_key = \"{}\"\n",
            self.vault_key
        )
    }

    async fn plan(&self, policy: &Policy) -> Plan {
        plan(&self.app, policy).await.expect("plan").plan
    }

    async fn run(&self, policy: &Policy) -> RunOutcome {
        self.run_with(policy, EngineConfig::default()).await
    }

    async fn run_with(&self, policy: &Policy, engine: EngineConfig) -> RunOutcome {
        let request = RunRequest {
            engine,
            ..RunRequest::default()
        };
        let done = run_policy(&self.app, policy, &request, &Quiet, &Interrupt::never())
            .await
            .expect("run");
        assert_eq!(done.report.status, Status::Success, "{:#?}", done.report);
        done
    }
}

/// The volume ids of the plan's instance, in order.
fn volumes(plan: &Plan) -> Vec<String> {
    match &plan.tasks[0].resource {
        Resource::Ec2(i) => i.volumes.iter().map(|v| v.id.clone()).collect(),
        Resource::Rds(_) | Resource::Aurora(_) => panic!("the first task is the instance"),
    }
}

/// The copies of the first task to the policy's target `index`.
fn copies(plan: &Plan, index: usize) -> &[CopyEstimate] {
    let entry = plan.tasks[0]
        .targets
        .iter()
        .find(|t| t.target == index)
        .expect("target entry");
    &entry.copies
}

fn shape(copies: &[CopyEstimate]) -> Vec<(String, Option<u64>, bool, Basis)> {
    copies
        .iter()
        .map(|c| {
            (
                c.source.clone(),
                c.estimate.bytes,
                c.estimate.full,
                c.estimate.basis,
            )
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn before_the_first_run_every_ebs_copy_is_full_at_the_volume_size() {
    let e = estate();
    let policy = e.policy(&format!("{}{}", e.west(&e.west_key), e.vault()), "");
    let plan = e.plan(&policy).await;
    let v = volumes(&plan);
    for target in [0, 1] {
        assert_eq!(
            shape(copies(&plan, target)),
            [
                (v[0].clone(), Some(8 * GIB), true, Basis::VolumeSize),
                (v[1].clone(), Some(20 * GIB), true, Basis::VolumeSize),
            ]
        );
    }
    let est = plan.estimate.expect("totals");
    assert_eq!(est.totals.bytes, 56 * GIB);
    assert_eq!(est.totals.full_copies, 4);
    assert_eq!(est.totals.unknown_copies, 0);
    // Every copy goes to another Region: all of it is transfer, all of it is kept.
    assert!((est.totals.monthly_storage_usd - 2.8).abs() < 1e-9);
    assert!((est.totals.transfer_usd - 1.12).abs() < 1e-9);
    assert_eq!(est.targets.len(), 2);
    assert_eq!(est.targets[1].totals.bytes, 28 * GIB);
    assert_eq!(est.targets[1].account.as_str(), TARGET);
}

#[tokio::test(start_paused = true)]
async fn prices_from_the_policy_price_the_totals() {
    let e = estate();
    let policy = e.policy(
        &format!(
            "{}[prices]\nsnapshot_gb_month = 0.1\ntransfer_gb = 0\n",
            e.west(&e.west_key)
        ),
        "",
    );
    let est = e.plan(&policy).await.estimate.unwrap();
    assert_eq!(est.totals.monthly_storage_usd, 2.8);
    assert_eq!(est.totals.transfer_usd, 0.0);
}

#[tokio::test(start_paused = true)]
async fn after_runs_the_copies_are_incremental_and_sized_by_the_changed_blocks() {
    let e = estate();
    let policy = e.policy(&format!("{}{}", e.west(&e.west_key), e.vault()), "");
    let first = e.run(&policy).await;
    let v = volumes(&e.plan(&policy).await);
    // The first run copied everything, at the size AWS reports for the new snapshots: half
    // of each volume holds data.
    let copied: Vec<_> = first
        .copied
        .replicas
        .iter()
        .flat_map(|r| shape(&r.copies))
        .collect();
    assert_eq!(copied.len(), 4);
    assert!(
        copied
            .iter()
            .all(|(_, _, full, basis)| *full && *basis == Basis::FullSnapshotSize),
        "{copied:?}"
    );
    assert_eq!(first.copied.estimate.totals.bytes, 2 * (4 + 10) * GIB);
    assert_eq!(first.copied.estimate.totals.full_copies, 4);

    // One source snapshot per volume so far: the next copies are incremental, but there is
    // no pair of snapshots to predict their size from.
    let plan = e.plan(&policy).await;
    for target in [0, 1] {
        assert_eq!(
            shape(copies(&plan, target)),
            [
                (v[0].clone(), None, false, Basis::Unknown),
                (v[1].clone(), None, false, Basis::Unknown),
            ]
        );
    }
    let est = plan.estimate.unwrap();
    assert_eq!(
        (
            est.totals.bytes,
            est.totals.full_copies,
            est.totals.unknown_copies
        ),
        (0, 0, 4)
    );

    // Data written between the runs is what the second run's copies move, exactly.
    e.cloud.write_blocks(&v[0], 100);
    e.cloud.write_blocks(&v[1], 7);
    let second = e.run(&policy).await;
    for r in &second.copied.replicas {
        assert_eq!(
            shape(&r.copies),
            [
                (v[0].clone(), Some(100 * BLOCK), false, Basis::ChangedBlocks),
                (v[1].clone(), Some(7 * BLOCK), false, Basis::ChangedBlocks),
            ],
            "{r:?}"
        );
    }
    assert_eq!(second.copied.estimate.totals.full_copies, 0);
    assert_eq!(second.copied.estimate.totals.bytes, 2 * 107 * BLOCK);

    // The next plan predicts from the two newest source snapshots.
    let plan = e.plan(&policy).await;
    assert_eq!(
        shape(copies(&plan, 0)),
        [
            (v[0].clone(), Some(100 * BLOCK), false, Basis::ChangedBlocks),
            (v[1].clone(), Some(7 * BLOCK), false, Basis::ChangedBlocks),
        ]
    );
    assert_eq!(plan.estimate.unwrap().totals.bytes, 2 * 107 * BLOCK);
}

#[tokio::test(start_paused = true)]
async fn a_new_target_key_makes_the_next_copy_full() {
    let e = estate();
    let policy = e.policy(&format!("{}{}", e.west(&e.west_key), e.vault()), "");
    e.run(&policy).await;
    let rekeyed = e.policy(&format!("{}{}", e.west(&e.other_west_key), e.vault()), "");
    let plan = e.plan(&rekeyed).await;
    let v = volumes(&plan);
    // Full again under the new key, sized by the newest source snapshot AWS describes.
    assert_eq!(
        shape(copies(&plan, 0)),
        [
            (v[0].clone(), Some(4 * GIB), true, Basis::FullSnapshotSize),
            (v[1].clone(), Some(10 * GIB), true, Basis::FullSnapshotSize),
        ]
    );
    // The other target keeps its key: incremental.
    assert!(copies(&plan, 1).iter().all(|c| !c.estimate.full));
}

#[tokio::test(start_paused = true)]
async fn a_previous_replica_deleted_outside_snaprelay_makes_the_next_copy_full() {
    let e = estate();
    let policy = e.policy(&e.west(&e.west_key), "");
    let done = e.run(&policy).await;
    let replica = &done.report.resources[0].replicas[0].snapshots[0];
    e.cloud.remove_snapshot(&replica.id);
    let plan = e.plan(&policy).await;
    let c = copies(&plan, 0);
    assert_eq!(c[0].source, replica.volume_id);
    assert!(c[0].estimate.full, "{c:?}");
    assert!(!c[1].estimate.full, "{c:?}");
    // And the run measures it as the plan said.
    let next = e.run(&policy).await;
    let made = &next.copied.replicas[0].copies;
    assert_eq!(
        (made[0].estimate.full, made[0].estimate.basis),
        (true, Basis::FullSnapshotSize)
    );
    assert!(!made[1].estimate.full);
}

#[tokio::test(start_paused = true)]
async fn a_new_target_gets_full_copies_while_the_others_stay_incremental() {
    let e = estate();
    e.run(&e.policy(&e.west(&e.west_key), "")).await;
    let grown = e.policy(&format!("{}{}", e.west(&e.west_key), e.vault()), "");
    let plan = e.plan(&grown).await;
    assert!(copies(&plan, 0).iter().all(|c| !c.estimate.full));
    assert!(copies(&plan, 1).iter().all(|c| c.estimate.full));
    let est = plan.estimate.unwrap();
    assert_eq!(est.targets[0].totals.full_copies, 0);
    assert_eq!(est.targets[1].totals.full_copies, 2);
    assert_eq!(est.targets[1].totals.bytes, 14 * GIB);
}

#[tokio::test(start_paused = true)]
async fn a_refused_list_changed_blocks_leaves_the_size_unknown_not_guessed() {
    let e = estate();
    let policy = e.policy(&e.west(&e.west_key), "");
    e.run(&policy).await;
    e.run(&policy).await;
    // The runs asked already (to measure their copies): the next two calls are refused.
    let made = e
        .cloud
        .calls()
        .get("ebs:ListChangedBlocks")
        .copied()
        .unwrap_or(0);
    for nth in made + 1..=made + 2 {
        e.cloud.inject(Fault::FailCall {
            operation: "ebs:ListChangedBlocks",
            nth,
            code: "AccessDeniedException",
            message: "not authorized to perform: ebs:ListChangedBlocks".into(),
        });
    }
    let plan = e.plan(&policy).await;
    for c in copies(&plan, 0) {
        assert_eq!(
            (c.estimate.bytes, c.estimate.full, c.estimate.basis),
            (None, false, Basis::Unknown)
        );
    }
    assert_eq!(plan.estimate.unwrap().totals.unknown_copies, 2);
}

#[tokio::test(start_paused = true)]
async fn a_two_step_rds_copy_is_two_full_copies_at_the_allocated_storage() {
    let e = estate();
    let policy = e.policy(
        &e.vault(),
        "[[source.resources]]\ntype = \"rds\"\nids = [\"orders\"]\n",
    );
    for _ in 0..2 {
        let plan = e.plan(&policy).await;
        let db = plan.tasks.iter().find(|t| t.id == "orders").unwrap();
        assert_eq!(
            shape(&db.targets[0].copies),
            [
                (
                    "orders".to_owned(),
                    Some(50 * GIB),
                    true,
                    Basis::AllocatedStorage
                ),
                (
                    "intermediate".to_owned(),
                    Some(50 * GIB),
                    true,
                    Basis::AllocatedStorage
                ),
            ]
        );
        // Two full RDS copies however many runs came before.
        let ebs_full = copies(&plan, 0).iter().filter(|c| c.estimate.full).count();
        assert_eq!(plan.estimate.unwrap().totals.full_copies, ebs_full + 2);
        e.run(&policy).await;
    }
    // The intermediate copy stays in the DB's Region and is deleted: no transfer, no storage.
    let plan = e.plan(&policy).await;
    let est = plan.estimate.clone().unwrap();
    let ebs: u64 = copies(&plan, 0)
        .iter()
        .filter_map(|c| c.estimate.bytes)
        .sum();
    let rds_bytes = 100 * GIB;
    assert_eq!(est.totals.bytes, ebs + rds_bytes);
    let stored_and_moved_gib = (ebs + 50 * GIB) as f64 / GIB as f64;
    assert!((est.totals.monthly_storage_usd - stored_and_moved_gib * 0.05).abs() < 1e-3);
    assert!((est.totals.transfer_usd - stored_and_moved_gib * 0.02).abs() < 1e-3);
}

#[tokio::test(start_paused = true)]
async fn list_changed_blocks_counts_the_blocks_between_snapshots_of_one_lineage() {
    let e = estate();
    let policy = e.policy(&e.west(&e.west_key), "");
    let first = e.run(&policy).await;
    let v = volumes(&e.plan(&policy).await);
    e.cloud.write_blocks(&v[0], 3);
    let second = e.run(&policy).await;
    let source = |o: &RunOutcome, i: usize| {
        o.report.resources[0].source.as_ref().unwrap().snapshots[i]
            .id
            .clone()
    };
    let access = Access::ambient();
    let changed = e
        .cloud
        .changed_blocks(
            &access,
            "us-east-1",
            &source(&first, 0),
            &source(&second, 0),
        )
        .await
        .unwrap();
    assert_eq!((changed.blocks, changed.block_size), (3, BLOCK));
    assert_eq!(changed.bytes(), 3 * BLOCK);
    // Snapshots of two volumes are no lineage: AWS answers ValidationException.
    let err = e
        .cloud
        .changed_blocks(&access, "us-east-1", &source(&first, 0), &source(&first, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("ValidationException"));
    // FullSnapshotSizeInBytes: half the volume, and the blocks written since.
    let sizes = e
        .cloud
        .describe_snapshots(&access, "us-east-1", &[source(&second, 0)])
        .await
        .unwrap();
    assert_eq!(sizes[0].full_size_bytes, Some(4 * GIB + 3 * BLOCK));
}

/// The bytes a run tells its watcher it copied, per destination.
#[derive(Default)]
struct Counted(Mutex<Vec<(Service, String, String, u64)>>);

impl SlotWatch for Counted {
    fn in_flight(&self, _: Service, _: &AccountId, _: &str, _: i64) {}
    fn copied(&self, service: Service, account: &AccountId, region: &str, bytes: u64) {
        self.0
            .lock()
            .unwrap()
            .push((service, account.to_string(), region.to_owned(), bytes));
    }
}

#[tokio::test(start_paused = true)]
async fn a_run_tells_the_copy_watcher_the_bytes_it_copied() {
    let e = estate();
    let policy = e.policy(&format!("{}{}", e.west(&e.west_key), e.vault()), "");
    let watch = Arc::new(Counted::default());
    let engine = EngineConfig {
        copy_watch: Some(watch.clone()),
        ..EngineConfig::default()
    };
    let done = e.run_with(&policy, engine).await;
    let told = watch.0.lock().unwrap().clone();
    assert_eq!(told.len(), 4);
    let total: u64 = told.iter().map(|t| t.3).sum();
    assert_eq!(total, done.copied.estimate.totals.bytes);
    assert!(told.iter().all(|t| t.0 == Service::Ebs));
    assert!(
        told.iter()
            .any(|t| t.1 == TARGET && t.2 == "eu-west-1" && t.3 == 4 * GIB)
    );
}
