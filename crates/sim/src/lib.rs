//! An AWS simulator behind snaprelay's cloud port: accounts, Regions, KMS keys, EC2 instances
//! and EBS snapshots, RDS DB instances and DB snapshots, shares, copies, the copy quotas of
//! SPEC section 3, and injectable faults.
//!
//! Time is tokio's clock: under a paused runtime (`start_paused`) a snapshot that takes an hour
//! completes as soon as every task is waiting, so a simulated day runs in seconds. Snapshot
//! states are computed from the clock when asked; nothing runs in the background.
//!
//! It answers the way the SDK adapter does against AWS (the same error codes, the same
//! "absent, not an error" rule for unknown ids in `Describe*`), which the conformance suite in
//! `crates/conformance` checks against both. What it does not model: IAM policies (a role can
//! do everything its account can), eventual consistency, and the exact wording of some AWS
//! messages (the codes are AWS's).
//!
//! - [`world`]: the estate and the clock-derived snapshot lifecycle.
//! - [`kms`], [`ebs`], [`rds`]: each service's rules.
//! - [`timing`]: how long things take, and the quotas.
//! - [`faults`]: injected errors, throttling and failed copies; the count of calls.
//! - [`demo`]: the estate and scenarios of `snaprelay demo`.

pub mod demo;
mod ebs;
mod faults;
mod kms;
mod rds;
mod timing;
mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use snaprelay_core::engine::Service;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{
    DbInstance, DbSnapshotStatus, Instance, KeyInfo, KeyManager, SnapshotState, SnapshotStatus,
    Tag, VolumeSnapshot,
};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{
    Access, CloudError, CopyRequest, DbCopyRequest, DbSnapshots, EbsSnapshots, Identity, Inventory,
    KeyGrant, Keys, RegionStatus, Sharing,
};
use tokio::time::Instant;

pub use ebs::KEY_NOT_ACCESSIBLE;
pub use faults::Fault;
pub use timing::{Quotas, Rng, Timing};

use world::{SimDb, SimInstance, SimVolume, World, lifecycle};

/// How a simulated volume or database is encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    None,
    /// The account's AWS managed key (`aws/ebs` or `aws/rds`).
    DefaultKey,
    /// A key ARN.
    Key(String),
}

#[derive(Clone, Debug)]
pub struct VolumeSpec {
    pub size_gib: u32,
    pub encryption: Encryption,
}

#[derive(Clone, Debug, Default)]
pub struct InstanceSpec {
    /// The `Name` tag.
    pub name: Option<String>,
    pub tags: Vec<(String, String)>,
    pub volumes: Vec<VolumeSpec>,
}

#[derive(Clone, Debug)]
pub struct DbSpec {
    pub id: String,
    pub engine: String,
    pub size_gib: u32,
    pub encryption: Encryption,
    pub tags: Vec<(String, String)>,
    /// The Aurora cluster the instance belongs to.
    pub cluster: Option<String>,
}

/// An EBS snapshot as a test or the demo sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotView {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub volume_id: String,
    pub state: SnapshotState,
    pub kms_key: Option<String>,
    pub shared_with: BTreeSet<AccountId>,
    pub tags: Vec<Tag>,
    pub copy_of: Option<String>,
}

/// A DB snapshot as a test or the demo sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbSnapshotView {
    pub id: String,
    pub arn: String,
    pub account: AccountId,
    pub region: String,
    pub state: SnapshotState,
    pub kms_key: Option<String>,
    pub shared_with: BTreeSet<AccountId>,
    pub tags: Vec<Tag>,
    pub copy_of: Option<String>,
}

/// The copies one destination received: for the benchmark's lower bound.
#[derive(Clone, Debug)]
pub struct PlaceStats {
    pub service: Service,
    pub account: AccountId,
    pub region: String,
    pub copies_time: Duration,
    pub quota: usize,
    pub peak_in_flight: usize,
}

/// The simulated AWS. Shared by reference; every call locks it briefly.
pub struct SimCloud {
    world: Mutex<World>,
}

impl SimCloud {
    /// An AWS with one account, whose credentials are the ambient ones.
    pub fn new(default_account: &AccountId) -> Self {
        Self::with_seed(default_account, 1)
    }

    pub fn with_seed(default_account: &AccountId, seed: u64) -> Self {
        Self {
            world: Mutex::new(World::new(default_account.clone(), seed)),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An account whose roles can be assumed.
    pub fn add_account(&self, account: &AccountId) {
        self.world().accounts.insert(account.clone());
    }

    /// Enables an opt-in Region (`af-south-1`, ...) for an account.
    pub fn enable_region(&self, account: &AccountId, region: &str) {
        self.world()
            .enabled_opt_in
            .insert((account.clone(), region.to_owned()));
    }

    pub fn set_timing(&self, timing: Timing) {
        self.world().timing = timing;
    }

    pub fn set_quotas(&self, quotas: Quotas) {
        self.world().quotas = quotas;
    }

    pub fn inject(&self, fault: Fault) {
        self.world().faults.inject(fault);
    }

    /// A customer managed key whose key policy admits `admits` besides its own account.
    pub fn create_key(
        &self,
        account: &AccountId,
        region: &str,
        alias: Option<&str>,
        admits: &[AccountId],
    ) -> String {
        self.world()
            .create_key(account, region, KeyManager::Customer, alias, admits)
    }

    /// The AWS managed key of `alias/aws/ebs` or `alias/aws/rds`.
    pub fn default_key(&self, account: &AccountId, region: &str, alias: &str) -> String {
        self.world().default_key(account, region, alias)
    }

    /// `Enabled`, `Disabled`, `PendingDeletion`.
    pub fn set_key_state(&self, arn: &str, state: &str) {
        if let Some(k) = self.world().keys.get_mut(arn) {
            k.state = state.to_owned();
        }
    }

    /// Adds an account to a key's policy, or removes it.
    pub fn set_key_admits(&self, arn: &str, account: &AccountId, admitted: bool) {
        if let Some(k) = self.world().keys.get_mut(arn) {
            if admitted {
                k.admits.insert(account.clone());
            } else {
                k.admits.remove(account);
            }
        }
    }

    fn key_of(
        world: &mut World,
        account: &AccountId,
        region: &str,
        e: &Encryption,
        alias: &str,
    ) -> Option<String> {
        match e {
            Encryption::None => None,
            Encryption::DefaultKey => Some(world.default_key(account, region, alias)),
            Encryption::Key(arn) => Some(arn.clone()),
        }
    }

    /// A running instance with its volumes attached as `/dev/xvda`, `/dev/sdf`, ...; its id.
    pub fn add_instance(&self, account: &AccountId, region: &str, spec: InstanceSpec) -> String {
        let mut w = self.world();
        let id = w.new_id("i");
        let mut volumes = Vec::new();
        for (n, v) in spec.volumes.iter().enumerate() {
            let vid = w.new_id("vol");
            let kms_key = Self::key_of(&mut w, account, region, &v.encryption, "alias/aws/ebs");
            w.volumes.insert(
                vid.clone(),
                SimVolume {
                    size_gib: v.size_gib,
                    kms_key,
                },
            );
            let device = match n {
                0 => "/dev/xvda".to_owned(),
                n => format!("/dev/sd{}", char::from(b'e' + (n % 20) as u8)),
            };
            volumes.push((vid, device));
        }
        let mut tags: BTreeMap<String, String> = spec.tags.into_iter().collect();
        if let Some(name) = spec.name {
            tags.insert("Name".into(), name);
        }
        w.instances.insert(
            id.clone(),
            SimInstance {
                id: id.clone(),
                account: account.clone(),
                region: region.to_owned(),
                tags,
                terminated: false,
                volumes,
            },
        );
        id
    }

    pub fn terminate_instance(&self, instance_id: &str) {
        if let Some(i) = self.world().instances.get_mut(instance_id) {
            i.terminated = true;
        }
    }

    /// A DB instance; its identifier (lower case, as RDS keeps it).
    pub fn add_db_instance(&self, account: &AccountId, region: &str, spec: DbSpec) -> String {
        let mut w = self.world();
        let id = spec.id.to_ascii_lowercase();
        let kms_key = Self::key_of(&mut w, account, region, &spec.encryption, "alias/aws/rds");
        w.dbs.insert(
            (account.clone(), region.to_owned(), id.clone()),
            SimDb {
                id: id.clone(),
                account: account.clone(),
                region: region.to_owned(),
                engine: spec.engine,
                size_gib: spec.size_gib,
                kms_key,
                cluster: spec.cluster,
                tags: spec.tags.into_iter().collect(),
            },
        );
        id
    }

    /// Every EBS snapshot in an account and Region, oldest id first.
    pub fn snapshots(&self, account: &AccountId, region: &str) -> Vec<SnapshotView> {
        let w = self.world();
        let now = Instant::now();
        let mut found: Vec<SnapshotView> = w
            .snapshots
            .values()
            .filter(|s| &s.account == account && s.region == region)
            .map(|s| SnapshotView {
                id: s.id.clone(),
                account: s.account.clone(),
                region: s.region.clone(),
                volume_id: s.volume_id.clone(),
                state: lifecycle(s.started, s.duration, s.failure.as_deref(), now).0,
                kms_key: s.kms_key.clone(),
                shared_with: s.shared_with.clone(),
                tags: s.tags.unpack(),
                copy_of: s.copy_of.clone(),
            })
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    /// Every DB snapshot in an account and Region, by identifier.
    pub fn db_snapshots(&self, account: &AccountId, region: &str) -> Vec<DbSnapshotView> {
        let w = self.world();
        let now = Instant::now();
        let mut found: Vec<DbSnapshotView> = w
            .db_snapshots
            .values()
            .filter(|s| &s.account == account && s.region == region)
            .map(|s| DbSnapshotView {
                id: s.id.clone(),
                arn: s.arn(),
                account: s.account.clone(),
                region: s.region.clone(),
                state: lifecycle(s.started, s.duration, s.failure.as_deref(), now).0,
                kms_key: s.kms_key.clone(),
                shared_with: s.shared_with.clone(),
                tags: s.tags.unpack(),
                copy_of: s.copy_of.clone(),
            })
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    /// API calls made so far, by operation (`ec2:CopySnapshot`, ...), failed ones included.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.world().faults.calls().clone()
    }

    /// API calls made so far, by operation, account and Region (calls refused before the
    /// account was known are not counted here).
    pub fn calls_by_place(&self) -> BTreeMap<(&'static str, AccountId, String), u64> {
        self.world().place_calls.clone()
    }

    /// Faults injected so far (failed calls and copies) and calls throttled.
    pub fn faults_fired(&self) -> (u64, u64) {
        let w = self.world();
        (w.faults.injected, w.faults.throttled)
    }

    /// Per destination and service: the copy time received and the most copies at once.
    pub fn place_stats(&self) -> Vec<PlaceStats> {
        let w = self.world();
        let mut stats: Vec<PlaceStats> = w
            .copy_time
            .iter()
            .map(|((service, account, region), time)| PlaceStats {
                service: *service,
                account: account.clone(),
                region: region.clone(),
                copies_time: *time,
                quota: match service {
                    Service::Ebs => w.quotas.ebs_copies,
                    Service::Rds => w.quotas.rds_copies,
                },
                peak_in_flight: w
                    .peak_in_flight
                    .get(&(*service, account.clone(), region.clone()))
                    .copied()
                    .unwrap_or(0),
            })
            .collect();
        stats.sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
        stats
    }

    /// The longest snapshot-then-copies chain of any replica, back to back.
    pub fn longest_chain(&self) -> Duration {
        let w = self.world();
        let ebs = w.snapshots.values().map(|s| s.chain);
        let rds = w.db_snapshots.values().map(|s| s.chain);
        ebs.chain(rds).max().unwrap_or_default()
    }

    /// Counts the call, applies faults, and runs `f` as the caller in `region`.
    fn act<T>(
        &self,
        access: &Access,
        operation: &'static str,
        region: &str,
        f: impl FnOnce(&mut World, AccountId, Instant) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        let mut w = self.world();
        w.call(operation, region)?;
        let (service, name) = operation.split_once(':').unwrap_or(("", operation));
        let caller = w.caller(access, service, name, region)?;
        *w.place_calls
            .entry((operation, caller.clone(), region.to_owned()))
            .or_default() += 1;
        f(&mut w, caller, Instant::now())
    }
}

#[async_trait]
impl Identity for SimCloud {
    async fn account_of(&self, access: &Access) -> Result<AccountId, CloudError> {
        let mut w = self.world();
        w.call("sts:GetCallerIdentity", "us-east-1")?;
        w.account_of(access, "us-east-1")
    }

    async fn caller_arn(&self, access: &Access) -> Result<String, CloudError> {
        let mut w = self.world();
        w.call("sts:GetCallerIdentity", "us-east-1")?;
        let account = w.account_of(access, "us-east-1")?;
        Ok(match &access.role_arn {
            Some(role) => format!(
                "arn:aws:sts::{account}:assumed-role/{}/snaprelay",
                role.name()
            ),
            None => format!("arn:aws:iam::{account}:user/sim"),
        })
    }

    async fn regions(&self, access: &Access) -> Result<Vec<RegionStatus>, CloudError> {
        let mut w = self.world();
        w.call("ec2:DescribeRegions", "us-east-1")?;
        let account = w.account_of(access, "us-east-1")?;
        Ok(World::regions()
            .map(|(name, opt_in)| RegionStatus {
                name: name.to_owned(),
                enabled: !opt_in || w.enabled_opt_in.contains(&(account.clone(), name.into())),
            })
            .collect())
    }

    /// The simulator does not model IAM policies: every role may do everything.
    async fn role_policies(
        &self,
        access: &Access,
        _role_name: &str,
    ) -> Result<Vec<(String, String)>, CloudError> {
        self.act(access, "iam:GetRolePolicy", "us-east-1", |_, _, _| {
            Ok(vec![(
                "allow-all".to_owned(),
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
                    .to_owned(),
            )])
        })
    }
}

#[async_trait]
impl Inventory for SimCloud {
    async fn find_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<Instance>, CloudError> {
        self.act(access, "ec2:DescribeInstances", region, |w, caller, _| {
            Ok(w.find_instances(&caller, region, selector))
        })
    }

    async fn find_db_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<DbInstance>, CloudError> {
        self.act(access, "rds:DescribeDBInstances", region, |w, caller, _| {
            Ok(w.find_db_instances(&caller, region, selector))
        })
    }
}

#[async_trait]
impl Keys for SimCloud {
    async fn describe_key(
        &self,
        access: &Access,
        region: &str,
        key: &str,
    ) -> Result<KeyInfo, CloudError> {
        self.act(access, "kms:DescribeKey", region, |w, caller, _| {
            w.describe_key(&caller, region, key)
        })
    }

    async fn key_policy(
        &self,
        access: &Access,
        region: &str,
        key_arn: &str,
    ) -> Result<String, CloudError> {
        self.act(access, "kms:GetKeyPolicy", region, |w, caller, _| {
            w.key_policy(&caller, region, key_arn)
        })
    }

    /// The simulator makes no grants a check could see.
    async fn key_grants(
        &self,
        access: &Access,
        region: &str,
        key_arn: &str,
    ) -> Result<Vec<KeyGrant>, CloudError> {
        self.act(access, "kms:ListGrants", region, |w, caller, _| {
            w.key_policy(&caller, region, key_arn).map(|_| Vec::new())
        })
    }
}

#[async_trait]
impl EbsSnapshots for SimCloud {
    async fn create_snapshots(
        &self,
        access: &Access,
        region: &str,
        instance_id: &str,
        _description: &str,
        tags: &[Tag],
    ) -> Result<Vec<VolumeSnapshot>, CloudError> {
        self.act(access, "ec2:CreateSnapshots", region, |w, caller, now| {
            w.create_snapshots(&caller, region, instance_id, tags, now)
        })
    }

    async fn describe_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        self.act(access, "ec2:DescribeSnapshots", region, |w, caller, now| {
            Ok(w.describe_snapshots(&caller, region, snapshot_ids, now))
        })
    }

    async fn find_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        self.act(access, "ec2:DescribeSnapshots", region, |w, caller, now| {
            let ids: Vec<String> = w
                .snapshots
                .values()
                .filter(|s| s.account == caller && s.region == region)
                .filter(|s| s.tags.unpack().contains(tag))
                .map(|s| s.id.clone())
                .collect();
            Ok(w.describe_snapshots(&caller, region, &ids, now))
        })
    }

    async fn copy_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &CopyRequest,
    ) -> Result<String, CloudError> {
        self.act(access, "ec2:CopySnapshot", region, |w, caller, now| {
            w.copy_snapshot(&caller, region, request, now)
        })
    }

    async fn delete_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        self.act(access, "ec2:DeleteSnapshot", region, |w, caller, now| {
            w.delete_snapshot(&caller, region, snapshot_id, now)
        })
    }
}

#[async_trait]
impl DbSnapshots for SimCloud {
    async fn create_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
    ) -> Result<DbSnapshotStatus, CloudError> {
        self.act(access, "rds:CreateDBSnapshot", region, |w, caller, now| {
            w.create_db_snapshot(&caller, region, db_instance_id, snapshot_id, tags, now)
        })
    }

    async fn describe_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBSnapshots",
            region,
            |w, caller, now| Ok(w.describe_db_snapshots(&caller, region, snapshot_ids, now)),
        )
    }

    async fn find_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBSnapshots",
            region,
            |w, caller, now| {
                let ids: Vec<String> = w
                    .db_snapshots
                    .values()
                    .filter(|s| s.account == caller && s.region == region)
                    .filter(|s| s.tags.unpack().contains(tag))
                    .map(|s| s.id.clone())
                    .collect();
                Ok(w.describe_db_snapshots(&caller, region, &ids, now))
            },
        )
    }

    async fn copy_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &DbCopyRequest,
    ) -> Result<DbSnapshotStatus, CloudError> {
        self.act(access, "rds:CopyDBSnapshot", region, |w, caller, now| {
            w.copy_db_snapshot(&caller, region, request, now)
        })
    }

    async fn delete_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        self.act(access, "rds:DeleteDBSnapshot", region, |w, caller, now| {
            w.delete_db_snapshot(&caller, region, snapshot_id, now)
        })
    }
}

#[async_trait]
impl Sharing for SimCloud {
    async fn set_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        self.act(
            access,
            "ec2:ModifySnapshotAttribute",
            region,
            |w, caller, _| w.set_snapshot_share(&caller, region, snapshot_id, account, shared),
        )
    }

    async fn snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.act(
            access,
            "ec2:DescribeSnapshotAttribute",
            region,
            |w, caller, _| w.snapshot_shares(&caller, region, snapshot_id),
        )
    }

    async fn set_db_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        self.act(
            access,
            "rds:ModifyDBSnapshotAttribute",
            region,
            |w, caller, now| {
                w.set_db_snapshot_share(&caller, region, snapshot_id, account, shared, now)
            },
        )
    }

    async fn db_snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBSnapshotAttributes",
            region,
            |w, caller, _| w.db_snapshot_shares(&caller, region, snapshot_id),
        )
    }
}
