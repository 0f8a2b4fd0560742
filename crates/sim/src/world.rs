//! The simulated estate: accounts, Regions, keys, instances, volumes, DB instances and their
//! snapshots, with the time each snapshot started and how long it takes; and what a restore
//! makes (images, security groups, launched instances and volumes, restored DB instances). A
//! state is read off the (virtual) clock when asked, so nothing runs in the background; what
//! a state change does to other resources (the volumes of an instance that reached
//! `terminated`, a deleted DB instance that is gone) is applied by [`World::settle`] before the
//! next restore call.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use snaprelay_core::engine::Service;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{DbKind, KeyManager, SnapshotState, Tag};
use snaprelay_core::ports::{Access, CloudError, ImageVolume, Reach};
use tokio::time::Instant;

use crate::faults::{Faults, error};
use crate::timing::{Quotas, Rng, Timing};

/// The Regions the simulator knows, and whether each is opt-in (disabled until enabled).
const REGIONS: &[(&str, bool)] = &[
    ("us-east-1", false),
    ("us-east-2", false),
    ("us-west-1", false),
    ("us-west-2", false),
    ("ca-central-1", false),
    ("eu-west-1", false),
    ("eu-west-2", false),
    ("eu-west-3", false),
    ("eu-central-1", false),
    ("eu-north-1", false),
    ("ap-south-1", false),
    ("ap-northeast-1", false),
    ("ap-southeast-1", false),
    ("ap-southeast-2", false),
    ("sa-east-1", false),
    ("af-south-1", true),
    ("ap-east-1", true),
    ("eu-south-1", true),
    ("me-south-1", true),
];

#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub arn: String,
    pub account: AccountId,
    pub region: String,
    pub manager: KeyManager,
    pub state: String,
    pub usage: String,
    pub spec: String,
    /// Accounts the key policy admits besides the owner (with the actions snapshots need).
    pub admits: BTreeSet<AccountId>,
}

impl Key {
    /// Whether `account` may use the key for snapshots: the owner always; another account only
    /// when the key policy names it, which an AWS managed key's fixed policy never does.
    pub fn usable_by(&self, account: &AccountId) -> bool {
        self.state == "Enabled"
            && (&self.account == account
                || (self.manager == KeyManager::Customer && self.admits.contains(account)))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SimInstance {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub tags: BTreeMap<String, String>,
    /// Terminated for good: by a test, or once [`World::settle`] has seen it end.
    pub terminated: bool,
    /// Volume ids with their device names, in attachment order.
    pub volumes: Vec<(String, String)>,
    pub instance_type: Cow<'static, str>,
    /// `PlatformDetails`: `Linux/UNIX` unless a test says otherwise.
    pub platform: Cow<'static, str>,
    pub availability_zone: String,
    /// `None` when its Region had no default VPC to put a test's instance in.
    pub subnet_id: Option<String>,
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    /// `None` for a test's instance: running from the start, x86_64, hvm, ENA.
    pub launch: Option<Box<Launch>>,
    /// When it starts `shutting-down` and when it is `terminated`.
    pub shutting_down: Option<(Instant, Instant)>,
}

/// What `RunInstances` gave an instance.
#[derive(Clone, Debug)]
pub(crate) struct Launch {
    pub image_id: String,
    /// When it is `running`; never, for an instance a fault keeps `pending` or whose launch
    /// fails.
    pub running_from: Option<Instant>,
    /// The state reason of a launch that failed.
    pub failure: Option<&'static str>,
    /// When it is `stopped`, having shut itself down as it booted.
    pub stopped_from: Option<Instant>,
    pub architecture: String,
    pub virtualization_type: String,
    pub ena_support: bool,
    pub boot_mode: Option<String>,
    pub root_device_name: String,
}

impl SimInstance {
    /// `pending`, `running`, `stopped`, `shutting-down` or `terminated`, read off the clock.
    pub fn state(&self, now: Instant) -> &'static str {
        if self.terminated {
            return "terminated";
        }
        if let Some((from, until)) = self.shutting_down {
            if now >= until {
                return "terminated";
            }
            if now >= from {
                return "shutting-down";
            }
        }
        match &self.launch {
            None => "running",
            Some(l) if l.stopped_from.is_some_and(|t| now >= t) => "stopped",
            Some(l) if l.running_from.is_some_and(|t| now >= t) => "running",
            Some(_) => "pending",
        }
    }

    pub fn is_terminated(&self, now: Instant) -> bool {
        self.state(now) == "terminated"
    }
}

#[derive(Clone, Debug)]
pub(crate) struct SimVolume {
    pub size_gib: u32,
    pub kms_key: Option<String>,
    /// `None` for a test's volume: gp3, attached to its instance from the start, deleted with
    /// it.
    pub made: Option<Box<MadeVolume>>,
}

/// A volume `CreateVolume` or `RunInstances` made.
#[derive(Clone, Debug)]
pub(crate) struct MadeVolume {
    pub account: AccountId,
    pub region: String,
    pub volume_type: String,
    pub iops: Option<i32>,
    pub throughput: Option<i32>,
    pub delete_on_termination: bool,
    pub snapshot_id: String,
    pub attached_to: Option<String>,
    pub tags: Vec<Tag>,
    /// When it leaves `creating`.
    pub ready_at: Instant,
    /// Its key cannot be used: it ends in `error`.
    pub failed: bool,
}

/// A security group: a Region's `default` one, or one `CreateSecurityGroup` made.
#[derive(Clone, Debug)]
pub(crate) struct SimSecurityGroup {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub vpc_id: String,
    pub name: String,
    pub tags: Vec<Tag>,
    /// Outbound rules: a new group has one that allows everything.
    pub egress_rules: usize,
}

/// An AMI `RegisterImage` made from snapshots.
#[derive(Clone, Debug)]
pub(crate) struct SimImage {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub name: String,
    pub tags: Vec<Tag>,
    pub architecture: String,
    pub virtualization_type: String,
    pub ena_support: bool,
    pub boot_mode: Option<String>,
    pub root_device_name: String,
    /// With each size resolved (the snapshot's when the request gave none).
    pub volumes: Vec<ImageVolume>,
}

/// An EBS snapshot: taken of a volume, or a copy.
#[derive(Clone, Debug)]
pub(crate) struct SimSnapshot {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    /// The volume the data came from (kept along copies, for incremental copies).
    pub volume_id: String,
    pub size_gib: u32,
    pub kms_key: Option<String>,
    pub started: Instant,
    pub duration: Duration,
    /// The state message of a snapshot that ends in `error`.
    pub failure: Option<String>,
    pub shared_with: BTreeSet<AccountId>,
    pub tags: PackedTags,
    /// The snapshot this one was copied from.
    pub copy_of: Option<String>,
    /// How long the chain from the first snapshot to this one took, back to back.
    pub chain: Duration,
    /// Blocks written to the volume before this snapshot (see [`World::volume_writes`]);
    /// a copy keeps its source's.
    pub writes: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct SimDb {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub profile: Arc<DbProfile>,
    pub size_gib: u32,
    pub kms_key: Option<String>,
    pub cluster: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub multi_az: bool,
    /// `None` outside a VPC (a Region without a default VPC, for a test's DB instance).
    pub db_subnet_group: Option<String>,
    pub db_parameter_group: String,
    pub option_group: String,
    pub vpc_security_group_ids: Vec<String>,
    /// When a restored DB instance leaves `creating`; `None` for a test's, available from the
    /// start.
    pub ready_at: Option<Instant>,
    /// A restore that ends `failed`.
    pub failed: bool,
    /// When a deleted DB instance is gone (it is `deleting` until then).
    pub gone_at: Option<Instant>,
    /// A cluster's Serverless v2 capacity (min, max ACUs): what a `db.serverless` instance
    /// needs of it.
    pub serverless_v2: Option<(f64, f64)>,
}

impl SimDb {
    pub fn arn(&self) -> String {
        format!(
            "arn:aws:rds:{}:{}:db:{}",
            self.region, self.account, self.id
        )
    }

    /// `creating`, `available`, `failed` or `deleting`; `None` once it is gone.
    pub fn status(&self, now: Instant) -> Option<&'static str> {
        match self.gone_at {
            Some(gone) if now >= gone => None,
            Some(_) => Some("deleting"),
            None if self.ready_at.is_some_and(|t| now < t) => Some("creating"),
            None if self.failed => Some("failed"),
            None => Some("available"),
        }
    }
}

/// What a DB snapshot keeps of its DB instance for a restore, which takes them as its
/// defaults ("The same DBInstanceClass as the original DB instance", and so on:
/// API_RestoreDBInstanceFromDBSnapshot.html). Shared, not copied, along a fleet's copies.
#[derive(Clone, Debug)]
pub(crate) struct DbProfile {
    pub engine: String,
    pub engine_version: String,
    pub port: i32,
    pub class: String,
    pub storage_type: String,
    pub iops: Option<i32>,
}

#[derive(Clone, Debug)]
pub(crate) struct SimDbSnapshot {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub profile: Arc<DbProfile>,
    pub size_gib: u32,
    pub kms_key: Option<String>,
    pub started: Instant,
    pub duration: Duration,
    pub failure: Option<String>,
    pub shared_with: BTreeSet<AccountId>,
    pub tags: PackedTags,
    pub copy_of: Option<String>,
    pub chain: Duration,
    /// A DB snapshot or a DB cluster snapshot.
    pub kind: DbKind,
}

impl SimDbSnapshot {
    pub fn arn(&self) -> String {
        snapshot_arn(self.kind, &self.region, &self.account, &self.id)
    }
}

/// `arn:aws:rds:REGION:ACCOUNT:snapshot:ID` or `...:cluster-snapshot:ID`.
pub(crate) fn snapshot_arn(kind: DbKind, region: &str, account: &AccountId, id: &str) -> String {
    match kind {
        DbKind::Instance => db_snapshot_arn(region, account, id),
        DbKind::Cluster => format!("arn:aws:rds:{region}:{account}:cluster-snapshot:{id}"),
    }
}

pub(crate) fn db_snapshot_arn(region: &str, account: &AccountId, id: &str) -> String {
    format!("arn:aws:rds:{region}:{account}:snapshot:{id}")
}

/// A snapshot's tags in one allocation: a fleet's replicas carry nine tags each, and the
/// simulator should not weigh more than the tool it serves.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedTags(Box<str>);

const KEY_END: char = '\u{1f}';
const TAG_END: char = '\u{1e}';

impl PackedTags {
    pub fn pack(tags: &[Tag]) -> Self {
        let mut packed = String::new();
        for t in tags {
            packed.push_str(&t.key);
            packed.push(KEY_END);
            packed.push_str(&t.value);
            packed.push(TAG_END);
        }
        Self(packed.into_boxed_str())
    }

    pub fn unpack(&self) -> Vec<Tag> {
        self.0
            .split_terminator(TAG_END)
            .filter_map(|t| t.split_once(KEY_END))
            .map(|(k, v)| Tag::new(k, v))
            .collect()
    }
}

/// Where a snapshot is in its life, read off the clock.
pub(crate) fn lifecycle(
    started: Instant,
    duration: Duration,
    failure: Option<&str>,
    now: Instant,
) -> (SnapshotState, u8) {
    let elapsed = now.saturating_duration_since(started);
    if elapsed >= duration {
        return match failure {
            Some(_) => (SnapshotState::Error, 0),
            None => (SnapshotState::Completed, 100),
        };
    }
    let percent = (elapsed.as_secs_f64() / duration.as_secs_f64().max(1e-9) * 100.0) as u8;
    (SnapshotState::Pending, percent.min(99))
}

/// Copies in flight per (service, account, destination Region): when each ends.
pub(crate) type InFlight = HashMap<(Service, AccountId, String), Vec<Instant>>;

pub(crate) struct World {
    pub timing: Timing,
    pub quotas: Quotas,
    pub faults: Faults,
    pub rng: Rng,
    pub default_account: AccountId,
    pub accounts: BTreeSet<AccountId>,
    pub enabled_opt_in: BTreeSet<(AccountId, String)>,
    /// Keys by ARN.
    pub keys: HashMap<String, Key>,
    /// (account, Region, alias name) to key ARN.
    pub aliases: HashMap<(AccountId, String, String), String>,
    pub instances: BTreeMap<String, SimInstance>,
    pub volumes: HashMap<String, SimVolume>,
    /// Boxed: a fleet's table of snapshots stays small to grow (each entry is ~300 bytes).
    pub snapshots: HashMap<String, Box<SimSnapshot>>,
    /// By (account, Region, identifier).
    pub dbs: BTreeMap<(AccountId, String, String), SimDb>,
    pub db_snapshots: HashMap<(AccountId, String, String), Box<SimDbSnapshot>>,
    /// Aurora DB clusters by (account, Region, identifier): a cluster is modelled as a DB
    /// (`cluster` is `None`); its members are the `dbs` whose `cluster` names it.
    pub clusters: BTreeMap<(AccountId, String, String), SimDb>,
    /// DB cluster snapshots, apart from DB snapshots (their identifiers are another
    /// namespace).
    pub cluster_snapshots: HashMap<(AccountId, String, String), Box<SimDbSnapshot>>,
    pub in_flight: InFlight,
    /// Volumes that have been snapshotted once (their next snapshot is incremental).
    pub snapshotted_volumes: HashSet<String>,
    /// Blocks written to each volume since it was made, each a block not written before (the
    /// simulator's model of data: a volume starts half full, and every write changes one
    /// more 512 KiB block until it is full).
    pub volume_writes: HashMap<String, u64>,
    /// (account, Region, volume, key) of copies made: the next copy there is incremental.
    pub copied_volumes: HashSet<(AccountId, String, String, Option<String>)>,
    /// The most copies seen in flight at once per place.
    pub peak_in_flight: HashMap<(Service, AccountId, String), usize>,
    /// The copy time accepted per place (a copy's whole duration), for the lower bound.
    pub copy_time: HashMap<(Service, AccountId, String), Duration>,
    /// Calls by (operation, account, Region).
    pub place_calls: BTreeMap<(&'static str, AccountId, String), u64>,
    /// (account, Region) that have no default VPC.
    pub no_default_vpc: HashSet<(AccountId, String)>,
    /// By id: each Region's `default` group (added on first use of its network) and those
    /// `CreateSecurityGroup` made.
    pub security_groups: BTreeMap<String, SimSecurityGroup>,
    /// (account, Region, name).
    pub key_pairs: BTreeSet<(AccountId, String, String)>,
    pub images: BTreeMap<String, SimImage>,
    /// (operation, account, Region, `ClientToken`) to the instance or volume it made.
    pub client_tokens: HashMap<(&'static str, AccountId, String, String), String>,
    /// Instances shutting down (or whose launch fails) that [`World::settle`] has yet to see
    /// end.
    pub ending_instances: Vec<String>,
    /// DB instances being deleted that [`World::settle`] has yet to see gone.
    pub ending_dbs: Vec<(AccountId, String, String)>,
    /// Deleted clusters, removed once they are gone.
    pub ending_clusters: Vec<(AccountId, String, String)>,
    /// (kind, account, Region, name) of DB subnet, parameter and option groups a test made.
    pub db_groups: BTreeSet<(DbGroup, AccountId, String, String)>,
    next_id: u64,
}

/// The RDS groups a restore may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DbGroup {
    Subnet,
    Parameter,
    Option,
    /// A DB cluster parameter group (Aurora): a namespace of its own.
    ClusterParameter,
}

impl World {
    pub fn new(default_account: AccountId, seed: u64) -> Self {
        Self {
            timing: Timing::default(),
            quotas: Quotas::default(),
            faults: Faults::default(),
            rng: Rng::new(seed),
            accounts: BTreeSet::from([default_account.clone()]),
            default_account,
            enabled_opt_in: BTreeSet::new(),
            keys: HashMap::new(),
            aliases: HashMap::new(),
            instances: BTreeMap::new(),
            volumes: HashMap::new(),
            snapshots: HashMap::new(),
            dbs: BTreeMap::new(),
            db_snapshots: HashMap::new(),
            clusters: BTreeMap::new(),
            cluster_snapshots: HashMap::new(),
            in_flight: HashMap::new(),
            snapshotted_volumes: HashSet::new(),
            volume_writes: HashMap::new(),
            copied_volumes: HashSet::new(),
            peak_in_flight: HashMap::new(),
            copy_time: HashMap::new(),
            place_calls: BTreeMap::new(),
            no_default_vpc: HashSet::new(),
            security_groups: BTreeMap::new(),
            key_pairs: BTreeSet::new(),
            images: BTreeMap::new(),
            client_tokens: HashMap::new(),
            ending_instances: Vec::new(),
            ending_dbs: Vec::new(),
            ending_clusters: Vec::new(),
            db_groups: BTreeSet::new(),
            next_id: 0,
        }
    }

    /// A fresh resource id: `prefix` and 17 hex digits, like `snap-0123456789abcdef0`.
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        let mixed = Rng::new(self.next_id ^ 0x5eed).next_u64();
        format!("{prefix}-0{mixed:016x}")
    }

    /// A fresh KMS key id (a UUID's shape).
    pub fn new_key_id(&mut self) -> String {
        self.next_id += 1;
        let a = Rng::new(self.next_id).next_u64();
        let b = Rng::new(!self.next_id).next_u64();
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    /// Counts the call and applies the faults armed for it.
    pub fn call(&mut self, operation: &'static str, region: &str) -> Result<(), CloudError> {
        let draw = (self.rng.next_u64() % 1000) as u32;
        self.faults.on_call(operation, region, draw)
    }

    /// The account a set of credentials acts in. A role of an account the simulator does not
    /// know cannot be assumed.
    pub fn account_of(&self, access: &Access, region: &str) -> Result<AccountId, CloudError> {
        match &access.role_arn {
            None => Ok(self.default_account.clone()),
            Some(role) if self.accounts.contains(role.account()) => Ok(role.account().clone()),
            Some(role) => Err(error(
                "sts",
                "GetCallerIdentity",
                region,
                "AccessDenied",
                &format!("User is not authorized to perform: sts:AssumeRole on resource: {role}"),
            )),
        }
    }

    /// The caller's account, if it may call in `region` (a known Region, enabled for it).
    pub fn caller(
        &self,
        access: &Access,
        service: &str,
        operation: &str,
        region: &str,
    ) -> Result<AccountId, CloudError> {
        let account = self.account_of(access, region)?;
        match REGIONS.iter().find(|(name, _)| *name == region) {
            None => Err(CloudError {
                service: "AWS",
                operation: "call",
                region: region.to_owned(),
                code: None,
                message: format!(
                    "dispatch failure: no endpoint for {service} in Region {region} \
                     ({operation})"
                ),
                reach: Reach::Unreachable,
            }),
            Some((_, true))
                if !self
                    .enabled_opt_in
                    .contains(&(account.clone(), region.into())) =>
            {
                Err(error(
                    service,
                    operation,
                    region,
                    "AuthFailure",
                    &format!("Region {region} is not enabled for account {account}"),
                ))
            }
            Some(_) => Ok(account),
        }
    }

    pub fn regions() -> impl Iterator<Item = (&'static str, bool)> {
        REGIONS.iter().copied()
    }

    /// Admits a copy into the quota of its place, or refuses it.
    pub fn admit_copy(
        &mut self,
        service: Service,
        account: &AccountId,
        region: &str,
        now: Instant,
    ) -> bool {
        let quota = match service {
            Service::Ebs => self.quotas.ebs_copies,
            Service::Rds => self.quotas.rds_copies,
            Service::Aurora => self.quotas.aurora_copies,
        };
        let ends = self
            .in_flight
            .entry((service, account.clone(), region.to_owned()))
            .or_default();
        ends.retain(|end| *end > now);
        ends.len() < quota
    }

    /// Counts an accepted copy against its place's quota until it ends.
    pub fn start_copy(
        &mut self,
        service: Service,
        account: &AccountId,
        region: &str,
        ends: Instant,
        duration: Duration,
    ) {
        let place = (service, account.clone(), region.to_owned());
        let in_flight = self.in_flight.entry(place.clone()).or_default();
        in_flight.push(ends);
        let n = in_flight.len();
        let peak = self.peak_in_flight.entry(place.clone()).or_default();
        *peak = (*peak).max(n);
        *self.copy_time.entry(place).or_default() += duration;
    }

    /// Applies what the clock has done since the last restore call: an instance that reached
    /// `terminated` loses its `DeleteOnTermination` volumes (all of them, for a launch that
    /// failed: they were never made) and lets go of the others; a deleted DB instance is gone.
    /// Only the few resources a restore is ending are looked at.
    pub fn settle(&mut self, now: Instant) {
        if !self.ending_instances.is_empty() {
            let ending = std::mem::take(&mut self.ending_instances);
            for id in ending {
                let Some(instance) = self.instances.get_mut(&id) else {
                    continue;
                };
                if !instance.is_terminated(now) {
                    self.ending_instances.push(id);
                    continue;
                }
                instance.terminated = true;
                let launch_failed = instance
                    .launch
                    .as_ref()
                    .is_some_and(|l| l.failure.is_some());
                for (volume_id, _) in std::mem::take(&mut instance.volumes) {
                    let Some(volume) = self.volumes.get_mut(&volume_id) else {
                        continue;
                    };
                    match &mut volume.made {
                        Some(made) if !launch_failed && !made.delete_on_termination => {
                            made.attached_to = None;
                        }
                        _ => {
                            self.volumes.remove(&volume_id);
                        }
                    }
                }
            }
        }
        if !self.ending_dbs.is_empty() {
            let dbs = &mut self.dbs;
            self.ending_dbs.retain(|key| match dbs.get(key) {
                Some(db) if db.status(now).is_none() => {
                    dbs.remove(key);
                    false
                }
                Some(_) => true,
                None => false,
            });
        }
        if !self.ending_clusters.is_empty() {
            let clusters = &mut self.clusters;
            self.ending_clusters.retain(|key| match clusters.get(key) {
                Some(c) if c.status(now).is_none() => {
                    clusters.remove(key);
                    false
                }
                Some(_) => true,
                None => false,
            });
        }
    }
}
