//! The simulated estate: accounts, Regions, keys, instances, volumes, DB instances and their
//! snapshots, with the time each snapshot started and how long it takes. A snapshot's state is
//! read off the (virtual) clock when asked, so nothing runs in the background.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use snaprelay_core::engine::Service;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{KeyManager, SnapshotState, Tag};
use snaprelay_core::ports::{Access, CloudError, Reach};
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
    pub terminated: bool,
    /// Volume ids with their device names, in attachment order.
    pub volumes: Vec<(String, String)>,
}

#[derive(Clone, Debug)]
pub(crate) struct SimVolume {
    pub size_gib: u32,
    pub kms_key: Option<String>,
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
}

#[derive(Clone, Debug)]
pub(crate) struct SimDb {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub engine: String,
    pub size_gib: u32,
    pub kms_key: Option<String>,
    pub cluster: Option<String>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub(crate) struct SimDbSnapshot {
    pub id: String,
    pub account: AccountId,
    pub region: String,
    pub size_gib: u32,
    pub kms_key: Option<String>,
    pub started: Instant,
    pub duration: Duration,
    pub failure: Option<String>,
    pub shared_with: BTreeSet<AccountId>,
    pub tags: PackedTags,
    pub copy_of: Option<String>,
    pub chain: Duration,
}

impl SimDbSnapshot {
    pub fn arn(&self) -> String {
        db_snapshot_arn(&self.region, &self.account, &self.id)
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
    pub in_flight: InFlight,
    /// Volumes that have been snapshotted once (their next snapshot is incremental).
    pub snapshotted_volumes: HashSet<String>,
    /// (account, Region, volume, key) of copies made: the next copy there is incremental.
    pub copied_volumes: HashSet<(AccountId, String, String, Option<String>)>,
    /// The most copies seen in flight at once per place.
    pub peak_in_flight: HashMap<(Service, AccountId, String), usize>,
    /// The copy time accepted per place (a copy's whole duration), for the lower bound.
    pub copy_time: HashMap<(Service, AccountId, String), Duration>,
    /// Calls by (operation, account, Region).
    pub place_calls: BTreeMap<(&'static str, AccountId, String), u64>,
    next_id: u64,
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
            in_flight: HashMap::new(),
            snapshotted_volumes: HashSet::new(),
            copied_volumes: HashSet::new(),
            peak_in_flight: HashMap::new(),
            copy_time: HashMap::new(),
            place_calls: BTreeMap::new(),
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
}
