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
//! - [`world`]: the estate and the clock-derived lifecycles.
//! - [`kms`], [`ebs`], [`rds`]: each service's rules.
//! - [`machines`], [`databases`]: what a restore makes in EC2 and RDS (the default VPC,
//!   security groups, images, instances, volumes; restored DB instances), by the same rules.
//! - [`timing`]: how long things take, and the quotas.
//! - [`faults`]: injected errors, throttling and failed copies; the count of calls.
//! - [`demo`]: the estate and scenarios of `snaprelay demo`.

mod clusters;
mod databases;
pub mod demo;
mod ebs;
mod faults;
mod kms;
mod machines;
mod rds;
mod timing;
mod world;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use snaprelay_core::engine::Service;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{
    DbCluster, DbInstance, DbKind, DbSnapshotStatus, Instance, KeyInfo, KeyManager, SnapshotState,
    SnapshotStatus, Tag, VolumeSnapshot,
};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{
    Access, ChangedBlocks, CloudError, ClusterInstanceRequest, ClusterRestoreRequest,
    ClusterStatus, CopyRequest, Databases, DbCopyRequest, DbRestoreRequest, DbSnapshots, DbStatus,
    EbsSnapshots, Find, Identity, ImageRequest, ImageStatus, Inventory, KeyGrant, Keys,
    LaunchRequest, MachineStatus, Machines, Network, RegionStatus, SecurityGroup, Sharing, Subnet,
    VolumeRequest, VolumeStatus,
};
use tokio::time::Instant;

pub use ebs::KEY_NOT_ACCESSIBLE;
pub use faults::Fault;
pub use timing::{Quotas, Rng, Timing};
pub use world::DbGroup;

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
    /// It is a `t3.micro` running Linux/UNIX in the first subnet (`<region>a`) of its Region's
    /// default VPC, with the `default` security group; see [`Self::set_instance_type`] and
    /// [`Self::set_platform`].
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
                    made: None,
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
        let network = w.network(account, region);
        let subnet = network.as_ref().and_then(|n| n.subnets.first());
        w.instances.insert(
            id.clone(),
            SimInstance {
                id: id.clone(),
                account: account.clone(),
                region: region.to_owned(),
                tags,
                terminated: false,
                volumes,
                instance_type: Cow::Borrowed("t3.micro"),
                platform: Cow::Borrowed("Linux/UNIX"),
                availability_zone: subnet
                    .map_or_else(|| format!("{region}a"), |s| s.availability_zone.clone()),
                subnet_id: subnet.map(|s| s.id.clone()),
                security_group_ids: network.iter().map(|n| n.security_group.clone()).collect(),
                key_name: None,
                iam_instance_profile_arn: None,
                launch: None,
                shutting_down: None,
            },
        );
        id
    }

    /// Writes `blocks` new 512 KiB blocks to a volume (the simulator's model of data: each
    /// a block not written before, until the volume is full): its next snapshot's
    /// `FullSnapshotSizeInBytes` grows, and `ListChangedBlocks` counts them.
    pub fn write_blocks(&self, volume_id: &str, blocks: u64) {
        let mut w = self.world();
        let n = w.volume_writes.entry(volume_id.to_owned()).or_default();
        *n = n.saturating_add(blocks);
    }

    /// Deletes a snapshot outside snaprelay (a person, another tool), whatever made it.
    pub fn remove_snapshot(&self, snapshot_id: &str) {
        self.world().snapshots.remove(snapshot_id);
    }

    /// Terminates an instance at once (a test's shortcut; `TerminateInstances` of the
    /// [`Machines`] port shuts it down first). Called on a `SimCloud` value, the port's
    /// method needs its trait named: `Machines::terminate_instance(&cloud, ...)`.
    pub fn terminate_instance(&self, instance_id: &str) {
        if let Some(i) = self.world().instances.get_mut(instance_id) {
            i.terminated = true;
        }
    }

    /// Sets an instance's type (`t3.micro` by default).
    pub fn set_instance_type(&self, instance_id: &str, instance_type: &str) {
        if let Some(i) = self.world().instances.get_mut(instance_id) {
            i.instance_type = Cow::Owned(instance_type.to_owned());
        }
    }

    /// Sets an instance's `PlatformDetails` (`Linux/UNIX` by default): `Windows`, `Red Hat
    /// Enterprise Linux`, ...
    pub fn set_platform(&self, instance_id: &str, platform: &str) {
        if let Some(i) = self.world().instances.get_mut(instance_id) {
            i.platform = Cow::Owned(platform.to_owned());
        }
    }

    /// A DB instance; its identifier (lower case, as RDS keeps it). It runs a current version
    /// of its engine on the engine's default port, as `db.t3.micro` with gp2 storage, in its
    /// Region's default VPC (the `default` DB subnet group and security group) with the
    /// engine's default parameter and option groups; see [`Self::set_db_engine_version`].
    pub fn add_db_instance(&self, account: &AccountId, region: &str, spec: DbSpec) -> String {
        let mut w = self.world();
        let id = spec.id.to_ascii_lowercase();
        let kms_key = Self::key_of(&mut w, account, region, &spec.encryption, "alias/aws/rds");
        let profile = databases::default_profile(&spec.engine);
        let network = w.network(account, region);
        w.dbs.insert(
            (account.clone(), region.to_owned(), id.clone()),
            SimDb {
                id: id.clone(),
                account: account.clone(),
                region: region.to_owned(),
                db_parameter_group: databases::default_parameter_group(
                    &profile.engine,
                    &profile.engine_version,
                ),
                option_group: databases::default_option_group(
                    &profile.engine,
                    &profile.engine_version,
                ),
                profile: Arc::new(profile),
                size_gib: spec.size_gib,
                kms_key,
                cluster: spec.cluster,
                tags: spec.tags.into_iter().collect(),
                multi_az: false,
                db_subnet_group: network.as_ref().map(|_| "default".to_owned()),
                vpc_security_group_ids: network.into_iter().map(|n| n.security_group).collect(),
                ready_at: None,
                failed: false,
                gone_at: None,
                serverless_v2: None,
            },
        );
        id
    }

    /// An Aurora DB cluster (`spec.engine` an `aurora-*` engine); its identifier. Encrypted
    /// without a key named, it is under the account's `aws/rds` key, as RDS does. Its members
    /// are the DB instances added with `cluster` naming it; it is available from the start.
    pub fn add_db_cluster(&self, account: &AccountId, region: &str, spec: DbSpec) -> String {
        let mut w = self.world();
        let id = spec.id.to_ascii_lowercase();
        let kms_key = Self::key_of(&mut w, account, region, &spec.encryption, "alias/aws/rds");
        let profile = databases::default_profile(&spec.engine);
        let network = w.network(account, region);
        w.clusters.insert(
            (account.clone(), region.to_owned(), id.clone()),
            SimDb {
                id: id.clone(),
                account: account.clone(),
                region: region.to_owned(),
                db_parameter_group: String::new(),
                option_group: String::new(),
                profile: Arc::new(profile),
                size_gib: spec.size_gib,
                kms_key,
                cluster: None,
                tags: spec.tags.into_iter().collect(),
                multi_az: false,
                db_subnet_group: network.as_ref().map(|_| "default".to_owned()),
                vpc_security_group_ids: network.into_iter().map(|n| n.security_group).collect(),
                ready_at: None,
                failed: false,
                gone_at: None,
                serverless_v2: None,
            },
        );
        id
    }

    /// Every DB cluster snapshot in an account and Region, by identifier.
    pub fn db_cluster_snapshots(&self, account: &AccountId, region: &str) -> Vec<DbSnapshotView> {
        let w = self.world();
        let now = Instant::now();
        let mut found: Vec<DbSnapshotView> = w
            .cluster_snapshots
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

    /// Sets the engine version of a DB instance (its later snapshots, and what is restored
    /// from them, carry it). Its default parameter and option groups follow the version.
    pub fn set_db_engine_version(
        &self,
        account: &AccountId,
        region: &str,
        db_id: &str,
        engine_version: &str,
    ) {
        let mut w = self.world();
        let key = (
            account.clone(),
            region.to_owned(),
            db_id.to_ascii_lowercase(),
        );
        if let Some(db) = w.dbs.get_mut(&key) {
            let p = &db.profile;
            if db.db_parameter_group
                == databases::default_parameter_group(&p.engine, &p.engine_version)
            {
                db.db_parameter_group =
                    databases::default_parameter_group(&p.engine, engine_version);
            }
            if db.option_group == databases::default_option_group(&p.engine, &p.engine_version) {
                db.option_group = databases::default_option_group(&p.engine, engine_version);
            }
            db.profile = Arc::new(world::DbProfile {
                engine: p.engine.clone(),
                engine_version: engine_version.to_owned(),
                port: p.port,
                class: p.class.clone(),
                storage_type: p.storage_type.clone(),
                iops: p.iops,
            });
        }
    }

    /// Sets the class of a DB instance (a cluster's member: what its cluster's restore point
    /// records).
    pub fn set_db_instance_class(
        &self,
        account: &AccountId,
        region: &str,
        db_id: &str,
        class: &str,
    ) {
        let mut w = self.world();
        let key = (
            account.clone(),
            region.to_owned(),
            db_id.to_ascii_lowercase(),
        );
        if let Some(db) = w.dbs.get_mut(&key) {
            db.profile = Arc::new(world::DbProfile {
                class: class.to_owned(),
                ..world::DbProfile::clone(&db.profile)
            });
        }
    }

    /// Makes an Aurora cluster a Serverless v2 one: its capacity range, in ACUs (its
    /// `db.serverless` members need it).
    pub fn set_cluster_serverless_v2(
        &self,
        account: &AccountId,
        region: &str,
        cluster_id: &str,
        min_acu: f64,
        max_acu: f64,
    ) {
        let mut w = self.world();
        let key = (
            account.clone(),
            region.to_owned(),
            cluster_id.to_ascii_lowercase(),
        );
        if let Some(c) = w.clusters.get_mut(&key) {
            c.serverless_v2 = Some((min_acu, max_acu));
        }
    }

    /// The class of a DB instance, while it exists.
    pub fn db_instance_class(
        &self,
        account: &AccountId,
        region: &str,
        db_id: &str,
    ) -> Option<String> {
        let w = self.world();
        let key = (
            account.clone(),
            region.to_owned(),
            db_id.to_ascii_lowercase(),
        );
        w.dbs.get(&key).map(|db| db.profile.class.clone())
    }

    /// Makes a Region of an account one without a default VPC: `default_network` answers
    /// `None`, and instances and DB instances added there afterwards are in no VPC.
    pub fn remove_default_vpc(&self, account: &AccountId, region: &str) {
        self.world().remove_default_vpc(account, region);
    }

    /// An EC2 key pair of an account in a Region.
    pub fn add_key_pair(&self, account: &AccountId, region: &str, name: &str) {
        self.world()
            .key_pairs
            .insert((account.clone(), region.to_owned(), name.to_owned()));
    }

    /// A DB subnet, parameter or option group of an account in a Region (the groups AWS
    /// provides, `default`, `default.<family>` and `default:<engine>-<major>`, need none).
    pub fn add_db_group(&self, kind: DbGroup, account: &AccountId, region: &str, name: &str) {
        self.world().add_db_group(kind, account, region, name);
    }

    /// How many outbound rules a security group has (a new one has one, allowing all);
    /// `None` if there is no such group.
    pub fn egress_rules(&self, group_id: &str) -> Option<usize> {
        self.world()
            .security_groups
            .get(group_id)
            .map(|g| g.egress_rules)
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
                    Service::Aurora => w.quotas.aurora_copies,
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
        let aurora = w.cluster_snapshots.values().map(|s| s.chain);
        ebs.chain(rds).chain(aurora).max().unwrap_or_default()
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

    /// [`Self::act`] for the calls of a restore: what the clock has ended is settled first.
    fn act_settled<T>(
        &self,
        access: &Access,
        operation: &'static str,
        region: &str,
        f: impl FnOnce(&mut World, AccountId, Instant) -> Result<T, CloudError>,
    ) -> Result<T, CloudError> {
        self.act(access, operation, region, |w, caller, now| {
            w.settle(now);
            f(w, caller, now)
        })
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
        self.act(access, "ec2:DescribeInstances", region, |w, caller, now| {
            Ok(w.find_instances(&caller, region, selector, now))
        })
    }

    async fn find_db_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<DbInstance>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBInstances",
            region,
            |w, caller, now| Ok(w.find_db_instances(&caller, region, selector, now)),
        )
    }

    async fn find_db_clusters(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<DbCluster>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBClusters",
            region,
            |w, caller, now| Ok(w.find_db_clusters(&caller, region, selector, now)),
        )
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

    async fn changed_blocks(
        &self,
        access: &Access,
        region: &str,
        first_snapshot_id: &str,
        second_snapshot_id: &str,
    ) -> Result<ChangedBlocks, CloudError> {
        self.act(access, "ebs:ListChangedBlocks", region, |w, caller, _| {
            w.changed_blocks(&caller, region, first_snapshot_id, second_snapshot_id)
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
            w.create_db_snapshot(
                DbKind::Instance,
                &caller,
                region,
                db_instance_id,
                snapshot_id,
                tags,
                now,
            )
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
            |w, caller, now| {
                Ok(w.describe_db_snapshots(DbKind::Instance, &caller, region, snapshot_ids, now))
            },
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
                let ids = w.tagged_db_snapshots(DbKind::Instance, &caller, region, tag);
                Ok(w.describe_db_snapshots(DbKind::Instance, &caller, region, &ids, now))
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
            w.copy_db_snapshot(DbKind::Instance, &caller, region, request, now)
        })
    }

    async fn delete_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        self.act(access, "rds:DeleteDBSnapshot", region, |w, caller, now| {
            w.delete_db_snapshot(DbKind::Instance, &caller, region, snapshot_id, now)
        })
    }

    async fn create_db_cluster_snapshot(
        &self,
        access: &Access,
        region: &str,
        db_cluster_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
    ) -> Result<DbSnapshotStatus, CloudError> {
        self.act(
            access,
            "rds:CreateDBClusterSnapshot",
            region,
            |w, caller, now| {
                w.create_db_snapshot(
                    DbKind::Cluster,
                    &caller,
                    region,
                    db_cluster_id,
                    snapshot_id,
                    tags,
                    now,
                )
            },
        )
    }

    async fn describe_db_cluster_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBClusterSnapshots",
            region,
            |w, caller, now| {
                Ok(w.describe_db_snapshots(DbKind::Cluster, &caller, region, snapshot_ids, now))
            },
        )
    }

    async fn find_db_cluster_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBClusterSnapshots",
            region,
            |w, caller, now| {
                let ids = w.tagged_db_snapshots(DbKind::Cluster, &caller, region, tag);
                Ok(w.describe_db_snapshots(DbKind::Cluster, &caller, region, &ids, now))
            },
        )
    }

    async fn copy_db_cluster_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &DbCopyRequest,
    ) -> Result<DbSnapshotStatus, CloudError> {
        self.act(
            access,
            "rds:CopyDBClusterSnapshot",
            region,
            |w, caller, now| w.copy_db_snapshot(DbKind::Cluster, &caller, region, request, now),
        )
    }

    async fn delete_db_cluster_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        self.act(
            access,
            "rds:DeleteDBClusterSnapshot",
            region,
            |w, caller, now| {
                w.delete_db_snapshot(DbKind::Cluster, &caller, region, snapshot_id, now)
            },
        )
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
                w.set_db_snapshot_share(
                    DbKind::Instance,
                    &caller,
                    region,
                    snapshot_id,
                    account,
                    shared,
                    now,
                )
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
            |w, caller, _| w.db_snapshot_shares(DbKind::Instance, &caller, region, snapshot_id),
        )
    }

    async fn set_db_cluster_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        self.act(
            access,
            "rds:ModifyDBClusterSnapshotAttribute",
            region,
            |w, caller, now| {
                w.set_db_snapshot_share(
                    DbKind::Cluster,
                    &caller,
                    region,
                    snapshot_id,
                    account,
                    shared,
                    now,
                )
            },
        )
    }

    async fn db_cluster_snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBClusterSnapshotAttributes",
            region,
            |w, caller, _| w.db_snapshot_shares(DbKind::Cluster, &caller, region, snapshot_id),
        )
    }
}

#[async_trait]
impl Machines for SimCloud {
    async fn default_network(
        &self,
        access: &Access,
        region: &str,
    ) -> Result<Option<Network>, CloudError> {
        self.act(access, "ec2:DescribeVpcs", region, |w, caller, _| {
            Ok(w.default_network(&caller, region))
        })
    }

    async fn availability_zones(
        &self,
        access: &Access,
        region: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.act(
            access,
            "ec2:DescribeAvailabilityZones",
            region,
            |_, _, _| Ok(machines::zones_of(region)),
        )
    }

    async fn subnets(
        &self,
        access: &Access,
        region: &str,
        ids: &[String],
    ) -> Result<Vec<Subnet>, CloudError> {
        self.act(access, "ec2:DescribeSubnets", region, |w, caller, _| {
            Ok(w.subnets(&caller, region, ids))
        })
    }

    async fn find_security_groups(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<SecurityGroup>, CloudError> {
        self.act(
            access,
            "ec2:DescribeSecurityGroups",
            region,
            |w, caller, _| Ok(w.find_security_groups(&caller, region, find)),
        )
    }

    async fn key_pairs(
        &self,
        access: &Access,
        region: &str,
        names: &[String],
    ) -> Result<Vec<String>, CloudError> {
        self.act(access, "ec2:DescribeKeyPairs", region, |w, caller, _| {
            Ok(w.key_pairs(&caller, region, names))
        })
    }

    async fn create_security_group(
        &self,
        access: &Access,
        region: &str,
        vpc_id: &str,
        name: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<String, CloudError> {
        self.act(access, "ec2:CreateSecurityGroup", region, |w, caller, _| {
            w.create_security_group(&caller, region, vpc_id, name, description, tags)
        })
    }

    async fn revoke_all_egress(
        &self,
        access: &Access,
        region: &str,
        group_id: &str,
    ) -> Result<(), CloudError> {
        self.act(
            access,
            "ec2:RevokeSecurityGroupEgress",
            region,
            |w, caller, _| w.revoke_all_egress(&caller, region, group_id),
        )
    }

    async fn delete_security_group(
        &self,
        access: &Access,
        region: &str,
        group_id: &str,
    ) -> Result<(), CloudError> {
        self.act_settled(
            access,
            "ec2:DeleteSecurityGroup",
            region,
            |w, caller, now| w.delete_security_group(&caller, region, group_id, now),
        )
    }

    async fn find_images(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<ImageStatus>, CloudError> {
        self.act(access, "ec2:DescribeImages", region, |w, caller, _| {
            Ok(w.find_images(&caller, region, find))
        })
    }

    async fn register_image(
        &self,
        access: &Access,
        region: &str,
        request: &ImageRequest,
    ) -> Result<String, CloudError> {
        self.act(access, "ec2:RegisterImage", region, |w, caller, now| {
            w.register_image(&caller, region, request, now)
        })
    }

    async fn deregister_image(
        &self,
        access: &Access,
        region: &str,
        image_id: &str,
    ) -> Result<(), CloudError> {
        self.act(access, "ec2:DeregisterImage", region, |w, caller, _| {
            w.deregister_image(&caller, region, image_id)
        })
    }

    async fn find_machines(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<MachineStatus>, CloudError> {
        self.act_settled(access, "ec2:DescribeInstances", region, |w, caller, now| {
            Ok(w.find_machines(&caller, region, find, now))
        })
    }

    async fn run_instance(
        &self,
        access: &Access,
        region: &str,
        request: &LaunchRequest,
    ) -> Result<MachineStatus, CloudError> {
        self.act_settled(access, "ec2:RunInstances", region, |w, caller, now| {
            w.run_instance(&caller, region, request, now)
        })
    }

    async fn terminate_instance(
        &self,
        access: &Access,
        region: &str,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        self.act_settled(
            access,
            "ec2:TerminateInstances",
            region,
            |w, caller, now| w.terminate(&caller, region, instance_id, now),
        )
    }

    async fn find_volumes(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<VolumeStatus>, CloudError> {
        self.act_settled(access, "ec2:DescribeVolumes", region, |w, caller, now| {
            Ok(w.find_volumes(&caller, region, find, now))
        })
    }

    async fn create_volume(
        &self,
        access: &Access,
        region: &str,
        request: &VolumeRequest,
    ) -> Result<VolumeStatus, CloudError> {
        self.act(access, "ec2:CreateVolume", region, |w, caller, now| {
            w.create_volume(&caller, region, request, now)
        })
    }

    async fn delete_volume(
        &self,
        access: &Access,
        region: &str,
        volume_id: &str,
    ) -> Result<(), CloudError> {
        self.act_settled(access, "ec2:DeleteVolume", region, |w, caller, now| {
            w.delete_volume(&caller, region, volume_id, now)
        })
    }
}

#[async_trait]
impl Databases for SimCloud {
    async fn find_dbs(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<DbStatus>, CloudError> {
        self.act_settled(
            access,
            "rds:DescribeDBInstances",
            region,
            |w, caller, now| Ok(w.find_dbs(&caller, region, find, now)),
        )
    }

    async fn db_subnet_group_vpc(
        &self,
        access: &Access,
        region: &str,
        name: &str,
    ) -> Result<Option<String>, CloudError> {
        self.act(
            access,
            "rds:DescribeDBSubnetGroups",
            region,
            |w, caller, _| Ok(w.db_subnet_group_vpc(&caller, region, name)),
        )
    }

    async fn db_parameter_group_exists(
        &self,
        access: &Access,
        region: &str,
        name: &str,
    ) -> Result<bool, CloudError> {
        self.act(
            access,
            "rds:DescribeDBParameterGroups",
            region,
            |w, caller, _| Ok(w.db_group_exists(DbGroup::Parameter, &caller, region, name)),
        )
    }

    async fn option_group_exists(
        &self,
        access: &Access,
        region: &str,
        name: &str,
    ) -> Result<bool, CloudError> {
        self.act(
            access,
            "rds:DescribeOptionGroups",
            region,
            |w, caller, _| Ok(w.db_group_exists(DbGroup::Option, &caller, region, name)),
        )
    }

    async fn restore_db_instance(
        &self,
        access: &Access,
        region: &str,
        request: &DbRestoreRequest,
    ) -> Result<DbStatus, CloudError> {
        self.act_settled(
            access,
            "rds:RestoreDBInstanceFromDBSnapshot",
            region,
            |w, caller, now| w.restore_db_instance(&caller, region, request, now),
        )
    }

    async fn delete_db_instance(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
    ) -> Result<(), CloudError> {
        self.act_settled(access, "rds:DeleteDBInstance", region, |w, caller, now| {
            w.delete_db_instance(&caller, region, db_instance_id, now)
        })
    }

    async fn find_clusters(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<ClusterStatus>, CloudError> {
        self.act_settled(
            access,
            "rds:DescribeDBClusters",
            region,
            |w, caller, now| Ok(w.find_clusters(&caller, region, find, now)),
        )
    }

    async fn db_cluster_parameter_group_exists(
        &self,
        access: &Access,
        region: &str,
        name: &str,
    ) -> Result<bool, CloudError> {
        self.act(
            access,
            "rds:DescribeDBClusterParameterGroups",
            region,
            |w, caller, _| Ok(w.db_group_exists(DbGroup::ClusterParameter, &caller, region, name)),
        )
    }

    async fn restore_db_cluster(
        &self,
        access: &Access,
        region: &str,
        request: &ClusterRestoreRequest,
    ) -> Result<ClusterStatus, CloudError> {
        self.act_settled(
            access,
            "rds:RestoreDBClusterFromSnapshot",
            region,
            |w, caller, now| w.restore_db_cluster(&caller, region, request, now),
        )
    }

    async fn create_cluster_instance(
        &self,
        access: &Access,
        region: &str,
        request: &ClusterInstanceRequest,
    ) -> Result<DbStatus, CloudError> {
        self.act_settled(access, "rds:CreateDBInstance", region, |w, caller, now| {
            w.create_cluster_instance(&caller, region, request, now)
        })
    }

    async fn delete_cluster_instance(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
    ) -> Result<(), CloudError> {
        self.act_settled(access, "rds:DeleteDBInstance", region, |w, caller, now| {
            w.delete_cluster_instance(&caller, region, db_instance_id, now)
        })
    }

    async fn delete_db_cluster(
        &self,
        access: &Access,
        region: &str,
        db_cluster_id: &str,
    ) -> Result<(), CloudError> {
        self.act_settled(access, "rds:DeleteDBCluster", region, |w, caller, now| {
            w.delete_db_cluster(&caller, region, db_cluster_id, now)
        })
    }
}
