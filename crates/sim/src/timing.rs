//! How long simulated snapshots and copies take, and the quotas they run under.
//!
//! A model, not a measurement: AWS publishes no throughput figures for snapshots or copies,
//! only that they take "minutes to hours" and that a first snapshot (or a copy with no earlier
//! copy of the same volume under the same key in the destination) is full while later ones are
//! incremental (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html).
//! Each duration is a fixed start-up time plus a time per GiB, spread by up to ±`spread` so
//! that a fleet's snapshots do not all end at the same instant.
//!
//! What a restore makes (instances, volumes, DB instances) takes a fixed time, without spread:
//! a drill makes a handful of them, and a test reads their states at known instants.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Timing {
    pub ebs_snapshot_base: Duration,
    pub ebs_snapshot_per_gib: Duration,
    pub ebs_copy_base: Duration,
    pub ebs_copy_per_gib: Duration,
    /// The share of a volume's blocks an incremental snapshot or copy carries.
    pub incremental_fraction: f64,
    pub rds_snapshot_base: Duration,
    pub rds_snapshot_per_gib: Duration,
    pub rds_copy_base: Duration,
    pub rds_copy_per_gib: Duration,
    /// How long a copy whose key cannot be used runs before it ends in `error` (AWS checks
    /// the key asynchronously: API_CopySnapshot.html).
    pub key_failure_after: Duration,
    /// Relative spread of every snapshot and copy duration (0.2: ±20%).
    pub spread: f64,
    /// How long a launched instance stays `pending` before it is `running` (a launch whose
    /// volume key cannot be used leaves `pending` after this time too, for `shutting-down`).
    pub instance_start: Duration,
    /// How long a terminated instance is `shutting-down` before it is `terminated` and its
    /// `DeleteOnTermination` volumes are gone.
    pub instance_stop: Duration,
    /// How long a volume `CreateVolume` makes is `creating` before it is `available` (or
    /// `error`, when its key cannot be used).
    pub volume_create: Duration,
    /// How long a restored DB instance is `creating` before it is `available` (or `failed`).
    pub db_restore: Duration,
    /// How long a deleted DB instance is `deleting` before it is gone.
    pub db_delete: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            ebs_snapshot_base: Duration::from_secs(60),
            ebs_snapshot_per_gib: Duration::from_millis(1500),
            ebs_copy_base: Duration::from_secs(120),
            ebs_copy_per_gib: Duration::from_secs(4),
            incremental_fraction: 0.1,
            rds_snapshot_base: Duration::from_secs(240),
            rds_snapshot_per_gib: Duration::from_secs(2),
            rds_copy_base: Duration::from_secs(300),
            rds_copy_per_gib: Duration::from_secs(5),
            key_failure_after: Duration::from_secs(30),
            spread: 0.2,
            instance_start: Duration::from_secs(30),
            instance_stop: Duration::from_secs(60),
            volume_create: Duration::from_secs(10),
            db_restore: Duration::from_secs(600),
            db_delete: Duration::from_secs(300),
        }
    }
}

impl Timing {
    pub(crate) fn duration(
        &self,
        base: Duration,
        per_gib: Duration,
        size_gib: u32,
        incremental: bool,
        rng: &mut Rng,
    ) -> Duration {
        let share = if incremental {
            self.incremental_fraction
        } else {
            1.0
        };
        let nominal = base + per_gib.mul_f64(f64::from(size_gib) * share);
        let factor = 1.0 + self.spread * (2.0 * rng.unit() - 1.0);
        nominal.mul_f64(factor.max(0.01))
    }
}

/// Concurrency and count quotas (SPEC section 3).
#[derive(Clone, Debug)]
pub struct Quotas {
    /// EBS snapshot copies in flight per account and destination Region (AWS: 20, fixed).
    pub ebs_copies: usize,
    /// RDS DB snapshot copies in progress per account and destination Region (AWS: 20).
    pub rds_copies: usize,
    /// Aurora DB cluster snapshot copies in progress per account and destination Region
    /// (AWS: 5, USER_CopySnapshot.html).
    pub aurora_copies: usize,
    /// Manual DB snapshots per account and Region (AWS default: 100, adjustable).
    pub rds_manual_snapshots: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            ebs_copies: 20,
            rds_copies: 20,
            aurora_copies: 5,
            rds_manual_snapshots: 100,
        }
    }
}

/// A small deterministic generator (splitmix64): the same estate and seed give the same run.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi].
    pub fn between(&mut self, lo: u32, hi: u32) -> u32 {
        lo + (self.next_u64() % u64::from(hi - lo + 1)) as u32
    }
}
