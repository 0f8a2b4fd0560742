//! What a replica costs (SPEC 6.5): the copies a target entry makes, each with its bytes,
//! whether it is full or incremental, and what the figure comes from; the totals in bytes,
//! full copies and USD from `[prices]`. Pure: [`super::sizing`] asks the state store and AWS
//! for what these rules read.
//!
//! The rules:
//! - EBS: one copy per volume. It is incremental only when the previous replica of that volume
//!   in that place (account and Region) still exists and is encrypted with the key the new one
//!   will be ("Incremental snapshot copying",
//!   <https://docs.aws.amazon.com/ebs/latest/userguide/ebs-copy-snapshot.html>); else full.
//! - RDS: one copy per `CopyDBSnapshot` step, sized by the allocated storage, and counted full:
//!   the second copy of the two-step cross-account flow is a full copy every time, and snaprelay
//!   has no measure of what an RDS copy moves.
//! - Storage is what the kept copies add (not the intermediate RDS copy, which is deleted);
//!   transfer is what crosses Regions. USD per GiB (AWS bills snapshot storage per GB-month and
//!   transfer per GB, both counted in 2^30 bytes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::AccountId;
use crate::model::{DbCluster, Resource, ResourceType};
use crate::plan::{Decision, Plan, ResolvedTarget, TaskPlan, Workflow};
use crate::policy::Prices;
use crate::report::{RecordedRestorePoint, SnapshotReport};

/// Bytes in a GiB: sizes AWS reports in GiB (volumes, allocated storage) are turned into bytes
/// with it.
pub const GIB: u64 = 1 << 30;

/// What an estimate's bytes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Basis {
    /// `DescribeSnapshots` `FullSnapshotSizeInBytes` of the source snapshot.
    #[serde(rename = "FullSnapshotSizeInBytes")]
    FullSnapshotSize,
    /// The volume's size (AWS did not report the snapshot's).
    #[serde(rename = "volume size")]
    VolumeSize,
    /// The DB instance's `AllocatedStorage`.
    #[serde(rename = "allocated storage")]
    AllocatedStorage,
    /// EBS direct `ListChangedBlocks`: blocks × block size.
    #[serde(rename = "changed blocks")]
    ChangedBlocks,
    /// Nothing to go by: `bytes` is null rather than a guess.
    #[serde(rename = "unknown")]
    Unknown,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FullSnapshotSize => "FullSnapshotSizeInBytes",
            Self::VolumeSize => "volume size",
            Self::AllocatedStorage => "allocated storage",
            Self::ChangedBlocks => "changed blocks",
            Self::Unknown => "unknown",
        }
    }
}

/// The size of one copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Figure {
    /// `None` when the basis is unknown.
    pub bytes: Option<u64>,
    /// Whether the whole snapshot is copied (else only the blocks that changed).
    pub full: bool,
    pub basis: Basis,
}

impl Figure {
    pub fn unknown(full: bool) -> Self {
        Self {
            bytes: None,
            full,
            basis: Basis::Unknown,
        }
    }

    /// A size AWS gives in GiB; unknown without one (or a negative one).
    pub fn of_gib(gib: Option<i64>, full: bool, basis: Basis) -> Self {
        match gib.and_then(|g| u64::try_from(g).ok()) {
            Some(g) => Self {
                bytes: Some(g.saturating_mul(GIB)),
                full,
                basis,
            },
            None => Self::unknown(full),
        }
    }
}

/// One copy a replica takes: of an EBS volume's snapshot, or one RDS `CopyDBSnapshot` step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopyEstimate {
    /// The EBS volume id; the DB instance identifier for the first RDS step, `intermediate`
    /// for the second.
    pub source: String,
    pub estimate: Figure,
    /// The account and Region the copy is made in.
    #[serde(skip)]
    pub account: AccountId,
    #[serde(skip)]
    pub region: String,
    /// Whether the copy crosses Regions (billed as transfer).
    #[serde(skip)]
    pub between_regions: bool,
    /// Whether the copy is kept (a replica) rather than deleted (the intermediate RDS copy).
    #[serde(skip)]
    pub kept: bool,
    /// An incremental EBS copy: the source snapshot the previous replica was copied from,
    /// what `ListChangedBlocks` compares the new one with.
    #[serde(skip)]
    pub previous_source: Option<String>,
}

/// The sum of some copies. Read back from a session's stored `copied` document (whose top
/// level it is) for `sessions show`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// The bytes of the copies whose size is known.
    pub bytes: u64,
    /// Full copies (a two-step RDS copy counts as two).
    pub full_copies: usize,
    /// What the kept copies add to the monthly snapshot storage bill.
    pub monthly_storage_usd: f64,
    /// What the copies between Regions cost in transfer.
    pub transfer_usd: f64,
    /// Copies whose size is unknown: `bytes` and the USD figures leave them out.
    pub unknown_copies: usize,
}

impl Totals {
    pub fn of<'a>(copies: impl IntoIterator<Item = &'a CopyEstimate>, prices: &Prices) -> Self {
        let mut t = Totals::default();
        let (mut stored, mut moved) = (0u64, 0u64);
        for c in copies {
            if c.estimate.full {
                t.full_copies += 1;
            }
            let Some(bytes) = c.estimate.bytes else {
                t.unknown_copies += 1;
                continue;
            };
            t.bytes = t.bytes.saturating_add(bytes);
            if c.kept {
                stored = stored.saturating_add(bytes);
            }
            if c.between_regions {
                moved = moved.saturating_add(bytes);
            }
        }
        t.monthly_storage_usd = usd(stored, prices.snapshot_gb_month);
        t.transfer_usd = usd(moved, prices.transfer_gb);
        t
    }
}

/// `bytes` at `per_gib` USD, to the hundredth of a cent.
fn usd(bytes: u64, per_gib: f64) -> f64 {
    let v = bytes as f64 / GIB as f64 * per_gib;
    (v * 10_000.0).round() / 10_000.0
}

/// The totals of one target of the policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetTotals {
    /// Position in the policy's `targets`.
    pub target: usize,
    pub account: AccountId,
    pub region: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// The plan's (or a run's) totals, over all and per target, and the prices they use.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    #[serde(flatten)]
    pub totals: Totals,
    pub targets: Vec<TargetTotals>,
    pub prices: Prices,
}

impl Estimate {
    /// The totals of `copies`, each given with the policy target it goes to.
    pub fn of<'a>(
        targets: &[ResolvedTarget],
        copies: impl IntoIterator<Item = (usize, &'a CopyEstimate)> + Clone,
        prices: &Prices,
    ) -> Self {
        let mut by_target: BTreeMap<usize, Vec<&CopyEstimate>> = BTreeMap::new();
        for (t, c) in copies.clone() {
            by_target.entry(t).or_default().push(c);
        }
        Estimate {
            totals: Totals::of(copies.into_iter().map(|(_, c)| c), prices),
            targets: targets
                .iter()
                .map(|t| TargetTotals {
                    target: t.index,
                    account: t.account.clone(),
                    region: t.region.clone(),
                    totals: Totals::of(
                        by_target.get(&t.index).into_iter().flatten().copied(),
                        prices,
                    ),
                })
                .collect(),
            prices: *prices,
        }
    }

    /// The totals of a plan whose target entries have their copies.
    pub fn of_plan(plan: &Plan, prices: &Prices) -> Self {
        let copies = plan
            .tasks
            .iter()
            .flat_map(|task| task.targets.iter())
            .flat_map(|t| t.copies.iter().map(move |c| (t.target, c)));
        Self::of(&plan.targets, copies, prices)
    }
}

/// What the inventory and the state tell about one EBS volume's copy to one place.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VolumeFacts {
    /// The previous replica of the volume in the place: it exists (the state recorded it and
    /// AWS still has it) and is encrypted with the key the new replica will be.
    pub previous_same_key: Option<SnapshotReport>,
    /// For a full copy: the source snapshot's `FullSnapshotSizeInBytes`, when AWS reports it.
    pub full_size: Option<u64>,
    /// For an incremental copy: the changed bytes between the two snapshots compared, when
    /// `ListChangedBlocks` could be asked.
    pub changed: Option<u64>,
}

/// The copies one target entry of a task takes; `facts` tells, per EBS volume id, what is
/// known of its copy to this place (a volume without facts is copied full at its size).
pub fn copies(
    task: &TaskPlan,
    decision: &Decision,
    target: &ResolvedTarget,
    facts: &BTreeMap<String, VolumeFacts>,
) -> Vec<CopyEstimate> {
    let Decision::Replicate {
        workflow, two_step, ..
    } = decision
    else {
        return Vec::new();
    };
    if !task.take_snapshot {
        return Vec::new();
    }
    let copy = |source: &str, estimate: Figure, region: &str, kept: bool| CopyEstimate {
        source: source.to_owned(),
        estimate,
        account: target.account.clone(),
        region: region.to_owned(),
        between_regions: region != task.region,
        kept,
        previous_source: None,
    };
    match &task.resource {
        Resource::Ec2(instance) => instance
            .volumes
            .iter()
            .map(|v| {
                let f = facts.get(&v.id).cloned().unwrap_or_default();
                let size = || Figure::of_gib(Some(i64::from(v.size_gib)), true, Basis::VolumeSize);
                let (estimate, previous_source) = match f.previous_same_key {
                    Some(prev) => (
                        match f.changed {
                            Some(bytes) => Figure {
                                bytes: Some(bytes),
                                full: false,
                                basis: Basis::ChangedBlocks,
                            },
                            None => Figure::unknown(false),
                        },
                        Some(prev.source_id),
                    ),
                    None => (
                        match f.full_size {
                            Some(bytes) => Figure {
                                bytes: Some(bytes),
                                full: true,
                                basis: Basis::FullSnapshotSize,
                            },
                            None => size(),
                        },
                        None,
                    ),
                };
                CopyEstimate {
                    previous_source,
                    ..copy(&v.id, estimate, &target.region, true)
                }
            })
            .collect(),
        // An Aurora cluster's estimate is its AllocatedStorage, as a DB instance's (a figure
        // that "can vary" for Aurora: API_DBClusterSnapshot.html).
        Resource::Rds(db) | Resource::Aurora(DbCluster { db, .. }) => {
            let full = || Figure::of_gib(db.size_gib, true, Basis::AllocatedStorage);
            if *workflow == Workflow::CrossAccountRds && *two_step {
                // The intermediate copy is made in the target account in the DB's Region,
                // then copied to the target Region and deleted.
                vec![
                    copy(&db.id, full(), &db.region, false),
                    copy("intermediate", full(), &target.region, true),
                ]
            } else {
                vec![copy(&db.id, full(), &target.region, true)]
            }
        }
    }
}

/// The newest replica snapshot of `volume_id` of `resource_id` that the state says is in
/// `account`/`region` (recorded and not deleted), leaving out what `skip_session` made.
pub fn previous_replica<'a>(
    history: &'a [RecordedRestorePoint],
    resource_id: &str,
    account: &str,
    region: &str,
    volume_id: &str,
    skip_session: Option<&str>,
) -> Option<&'a SnapshotReport> {
    history
        .iter()
        .rev()
        .filter(|p| skip_session != Some(p.session_id.as_str()))
        .filter(|p| p.point.kind == crate::model::SnapshotKind::Replica)
        .filter(|p| {
            p.point.resource_type == ResourceType::Ec2 && p.point.resource_id == resource_id
        })
        .filter(|p| p.point.place.account == account && p.point.place.region == region)
        .filter(|p| p.status != crate::report::PointStatus::Deleted)
        .find_map(|p| {
            p.point
                .place
                .snapshots
                .iter()
                .find(|s| s.volume_id == volume_id && !p.deleted_snapshots.contains(&s.id))
        })
}

/// The source snapshots of `volume_id` the state says still exist, oldest first.
pub fn source_snapshots<'a>(
    history: &'a [RecordedRestorePoint],
    resource_id: &str,
    volume_id: &str,
) -> Vec<&'a str> {
    history
        .iter()
        .filter(|p| p.point.kind == crate::model::SnapshotKind::Source)
        .filter(|p| {
            p.point.resource_type == ResourceType::Ec2 && p.point.resource_id == resource_id
        })
        .filter(|p| p.status != crate::report::PointStatus::Deleted)
        .flat_map(|p| {
            p.point
                .place
                .snapshots
                .iter()
                .filter(|s| s.volume_id == volume_id && !p.deleted_snapshots.contains(&s.id))
                .map(|s| s.id.as_str())
        })
        .collect()
}

/// The copies, in a line each, and the totals, as the text plan and report show them.
pub fn copies_text(copies: &[CopyEstimate]) -> Vec<String> {
    copies
        .iter()
        .map(|c| {
            let size = match c.estimate.bytes {
                Some(b) => format!("{} ({})", human_bytes(b), c.estimate.basis.as_str()),
                None => "size unknown".to_owned(),
            };
            format!(
                "copy of {}: {}, {}{}",
                c.source,
                if c.estimate.full {
                    "full"
                } else {
                    "incremental"
                },
                size,
                if c.between_regions {
                    ", between Regions"
                } else {
                    ""
                }
            )
        })
        .collect()
}

/// The totals line of what a session copied, read from its stored `copied` document (whose
/// top level the totals are); `None` when it does not read.
pub fn copied_text(stored: &serde_json::Value) -> Option<String> {
    let totals = Totals::deserialize(stored).ok()?;
    Some(totals_text(&totals, "copied"))
}

/// Totals in a line; `what` says what the bytes are (`to copy`, `copied`).
pub fn totals_text(t: &Totals, what: &str) -> String {
    let unknown = if t.unknown_copies > 0 {
        format!(
            " (and {} cop{} of unknown size, not counted)",
            t.unknown_copies,
            if t.unknown_copies == 1 { "y" } else { "ies" }
        )
    } else {
        String::new()
    };
    format!(
        "{} {what}{unknown}, {} full cop{}, storage +${:.2}/month, transfer ${:.2}",
        human_bytes(t.bytes),
        t.full_copies,
        if t.full_copies == 1 { "y" } else { "ies" },
        t.monthly_storage_usd,
        t.transfer_usd
    )
}

/// Bytes for people: exact below 1 KiB, else in KiB, MiB, GiB or TiB with two decimals.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} bytes");
    }
    let mut v = b as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2} {} ({b} bytes)", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(bytes: Option<u64>, full: bool, between_regions: bool, kept: bool) -> CopyEstimate {
        CopyEstimate {
            source: "vol-1".into(),
            estimate: Figure {
                bytes,
                full,
                basis: if bytes.is_some() {
                    Basis::VolumeSize
                } else {
                    Basis::Unknown
                },
            },
            account: AccountId::parse("111111111111").unwrap(),
            region: "eu-west-1".into(),
            between_regions,
            kept,
            previous_source: None,
        }
    }

    #[test]
    fn storage_counts_kept_copies_and_transfer_counts_copies_between_regions() {
        let prices = Prices::default();
        let copies = [
            copy(Some(10 * GIB), true, false, false),
            copy(Some(10 * GIB), true, true, true),
            copy(None, false, true, true),
        ];
        let t = Totals::of(&copies, &prices);
        assert_eq!(t.bytes, 20 * GIB);
        assert_eq!(t.full_copies, 2);
        assert_eq!(t.unknown_copies, 1);
        assert_eq!(t.monthly_storage_usd, 0.5);
        assert_eq!(t.transfer_usd, 0.2);
    }

    #[test]
    fn bytes_are_gib_times_two_to_the_thirty() {
        let f = Figure::of_gib(Some(8), true, Basis::VolumeSize);
        assert_eq!(f.bytes, Some(8 * 1_073_741_824));
        assert_eq!(
            Figure::of_gib(None, true, Basis::AllocatedStorage).basis,
            Basis::Unknown
        );
        assert_eq!(
            Figure::of_gib(Some(-1), true, Basis::VolumeSize).bytes,
            None
        );
    }
}
