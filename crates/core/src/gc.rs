//! gc: what a policy's sessions left in AWS that no record accounts for. A crash (or `kill -9`)
//! between a side effect and its record leaves:
//!
//! - snapshots carrying snaprelay's tags for the policy that the state store does not know (a
//!   copy in flight, an RDS intermediate copy of workflow C);
//! - shares of source snapshots (`createVolumePermission`, the DB snapshot `restore`
//!   attribute) that were never removed.
//!
//! SPEC section 4: such snapshots are deleted only on an explicit operator command after a
//! listing; by default gc only lists. It considers only snapshots made by a session this state
//! file recorded (their `snaprelay:session` tag), so another or a new state file finds nothing
//! to delete; snapshots of a session still running (its process is alive) are left alone; a
//! snapshot without the policy's tag is never even seen (gc asks AWS only for snapshots tagged
//! `snaprelay:policy = <policy>`). Only shares with the policy's target accounts are removed:
//! another account's share was not made by snaprelay and is reported, not removed.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::ids::AccountId;
use crate::model::{SnapshotState, Tag, made_by_a_session, tag_value, tags};
use crate::plan::prepare::Prepared;
use crate::ports::{Access, Cloud, CloudError};
use crate::report::{RecordedRestorePoint, Service};
use crate::retention::Accesses;

/// Something left behind, and what gc does (or would do) about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Leftover {
    pub service: Service,
    pub account: String,
    pub region: String,
    /// The snapshot id (EBS) or DB snapshot identifier (RDS).
    pub id: String,
    /// `delete` an unrecorded snapshot, or `unshare` a recorded one.
    pub action: &'static str,
    /// For `unshare`: the accounts it is shared with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
    /// The session that made it, from its tag.
    pub session: Option<String>,
    pub why: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GcReport {
    pub policy: String,
    /// False: a listing only (the default); true: `--yes`.
    pub acted: bool,
    pub found: Vec<Leftover>,
    /// What was left alone on purpose, and why.
    pub skipped: Vec<String>,
    /// Actions that failed.
    pub problems: Vec<String>,
    /// What restores and drills made that no running one owns (SPEC 6.2, 6.3).
    #[serde(default)]
    pub restores_and_drills: Vec<RemnantFound>,
}

/// Something a restore or drill made, and what gc does (or would do) about it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RemnantFound {
    #[serde(flatten)]
    pub remnant: crate::restore::Remnant,
    /// `delete`, or `keep` (with why).
    pub action: &'static str,
    pub why: String,
}

/// The places a policy's sessions write to: the source Regions of the source account, each
/// target, and (RDS workflow C) each target account in the source Regions.
pub(crate) fn places(
    prepared: &Prepared,
    source_regions: &[String],
) -> BTreeSet<(AccountId, String)> {
    let plan = &prepared.plan;
    let mut places = BTreeSet::new();
    for region in source_regions {
        places.insert((plan.source_account.clone(), region.clone()));
        for t in &plan.targets {
            places.insert((t.account.clone(), region.clone()));
        }
    }
    for t in &plan.targets {
        places.insert((t.account.clone(), t.region.clone()));
    }
    places
}

/// Finds what the policy's sessions left behind and, with `act`, deletes and unshares it.
/// `live_sessions`: sessions whose process still runs.
pub async fn collect(
    cloud: &dyn Cloud,
    prepared: &Prepared,
    source_regions: &[String],
    recorded: &[RecordedRestorePoint],
    known_sessions: &BTreeSet<String>,
    live_sessions: &[String],
    options: Options,
) -> Result<GcReport, CloudError> {
    let Options {
        act,
        unknown_sessions,
    } = options;
    let scope = Scope {
        unknown_sessions,
        accesses: Accesses::of_plan(prepared, source_regions),
        recorded: recorded
            .iter()
            .flat_map(|p| p.point.place.snapshots.iter().map(|s| s.id.as_str()))
            .collect(),
        known_sessions,
        live_sessions,
        source_account: &prepared.plan.source_account,
        source_regions,
        target_accounts: prepared
            .plan
            .targets
            .iter()
            .map(|t| t.account.as_str())
            .collect(),
    };
    let tag = Tag::new(tags::POLICY, prepared.plan.policy.as_str());
    let mut report = GcReport {
        policy: prepared.plan.policy.clone(),
        acted: act,
        ..GcReport::default()
    };
    for (account, region) in places(prepared, source_regions) {
        let Some(access) = scope.accesses.of(account.as_str()) else {
            continue;
        };
        for found in tagged(cloud, access, &region, &tag).await? {
            scope
                .judge(cloud, access, &account, &region, found, &mut report)
                .await?;
        }
    }
    if act {
        remove(cloud, &scope.accesses, &mut report).await;
    }
    Ok(report)
}

/// What gc is asked to do.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Delete and unshare what it finds (`--yes`); else only list.
    pub act: bool,
    /// Take the snapshots of sessions the state does not know too (`--unknown-sessions`).
    pub unknown_sessions: bool,
}

/// What gc weighs each snapshot against.
struct Scope<'a> {
    accesses: Accesses,
    /// Every snapshot id (EBS) or DB snapshot ARN the state records in a restore point.
    recorded: BTreeSet<&'a str>,
    known_sessions: &'a BTreeSet<String>,
    live_sessions: &'a [String],
    /// Take the snapshots of sessions this state does not know too (`--unknown-sessions`).
    unknown_sessions: bool,
    source_account: &'a AccountId,
    source_regions: &'a [String],
    target_accounts: BTreeSet<&'a str>,
}

/// A snapshot tagged for the policy, EBS or RDS.
struct Tagged {
    service: Service,
    id: String,
    /// How a restore point records it: the EBS snapshot id, the DB snapshot ARN.
    recorded_as: String,
    tags: Vec<Tag>,
    state: SnapshotState,
}

/// The place's snapshots that carry the policy's tag.
async fn tagged(
    cloud: &dyn Cloud,
    access: &Access,
    region: &str,
    tag: &Tag,
) -> Result<Vec<Tagged>, CloudError> {
    let ebs = cloud.find_snapshots(access, region, tag).await?;
    let rds = cloud.find_db_snapshots(access, region, tag).await?;
    let aurora = cloud.find_db_cluster_snapshots(access, region, tag).await?;
    let db = |service: Service| {
        move |s: crate::model::DbSnapshotStatus| Tagged {
            service,
            state: s.state(),
            id: s.id,
            recorded_as: s.arn,
            tags: s.tags,
        }
    };
    Ok(ebs
        .into_iter()
        .filter(|s| made_by_a_session(&s.tags))
        .map(|s| Tagged {
            service: Service::Ebs,
            recorded_as: s.id.clone(),
            id: s.id,
            tags: s.tags,
            state: s.state,
        })
        .chain(
            rds.into_iter()
                .filter(|s| made_by_a_session(&s.tags))
                .map(db(Service::Rds)),
        )
        .chain(
            aurora
                .into_iter()
                .filter(|s| made_by_a_session(&s.tags))
                .map(db(Service::Aurora)),
        )
        .collect())
}

impl Scope<'_> {
    /// Whether one tagged snapshot is left behind: unrecorded (delete), or a recorded source
    /// snapshot still shared with a target (unshare). Snapshots of sessions this state does
    /// not know, or of a session still running, are left alone.
    async fn judge(
        &self,
        cloud: &dyn Cloud,
        access: &Access,
        account: &AccountId,
        region: &str,
        found: Tagged,
        report: &mut GcReport,
    ) -> Result<(), CloudError> {
        let Tagged {
            service,
            id,
            recorded_as,
            tags: snapshot_tags,
            state,
        } = found;
        let session = tag_value(&snapshot_tags, tags::SESSION).map(str::to_owned);
        let leftover = |action, shared_with, why: String| Leftover {
            service,
            account: account.to_string(),
            region: region.to_owned(),
            id: id.clone(),
            action,
            shared_with,
            session: session.clone(),
            why,
        };
        // Only what a session of this state file made: with another (or a new) state file
        // every snapshot of the policy would look unrecorded. The operator may take the others
        // too, but never one in flight: another snaprelay may be making it right now.
        if !session
            .as_ref()
            .is_some_and(|s| self.known_sessions.contains(s))
        {
            let made_by = session
                .as_deref()
                .map_or("no snaprelay session".to_owned(), |s| {
                    format!("session {s}")
                });
            if self.unknown_sessions && state != SnapshotState::Pending {
                let why = format!(
                    "tagged for this policy by {made_by}, which this state does not know \
                     (--unknown-sessions)"
                );
                report.found.push(leftover("delete", vec![], why));
            } else {
                report.skipped.push(format!(
                    "{service} snapshot {id} in {account}/{region}: made by {made_by}, which \
                     this state file does not know; left alone (run gc with the state file that \
                     recorded it)"
                ));
            }
            return Ok(());
        }
        if session
            .as_ref()
            .is_some_and(|s| self.live_sessions.contains(s))
        {
            report.skipped.push(format!(
                "{service} snapshot {id} in {account}/{region}: session {} is still running",
                session.as_deref().unwrap_or_default()
            ));
            return Ok(());
        }
        if !self.recorded.contains(recorded_as.as_str()) {
            let kind = tag_value(&snapshot_tags, tags::KIND).unwrap_or("unknown");
            let why = format!(
                "tagged for this policy ({kind}{}) but recorded in no restore point",
                if state == SnapshotState::Pending {
                    ", still in progress"
                } else {
                    ""
                }
            );
            report.found.push(leftover("delete", vec![], why));
            return Ok(());
        }
        // Only source snapshots are ever shared (workflows B and C).
        let is_source =
            account == self.source_account && self.source_regions.iter().any(|r| r == region);
        if !is_source {
            return Ok(());
        }
        let shared = match service {
            Service::Ebs => cloud.snapshot_shares(access, region, &id).await?,
            Service::Rds => cloud.db_snapshot_shares(access, region, &id).await?,
            Service::Aurora => {
                cloud
                    .db_cluster_snapshot_shares(access, region, &id)
                    .await?
            }
        };
        let (ours, others): (Vec<String>, Vec<String>) = shared
            .into_iter()
            .partition(|a| self.target_accounts.contains(a.as_str()));
        if !others.is_empty() {
            report.skipped.push(format!(
                "{service} snapshot {id} in {account}/{region} is shared with {}, not a target \
                 of this policy: snaprelay did not make that share and leaves it",
                others.join(", ")
            ));
        }
        if !ours.is_empty() {
            let why = "shared with the policy's target account outside any session (a session \
                       removes its shares once the copies are made)"
                .to_owned();
            report.found.push(leftover("unshare", ours, why));
        }
        Ok(())
    }
}

/// Deletes and unshares what was found; what fails is a problem of the report.
async fn remove(cloud: &dyn Cloud, accesses: &Accesses, report: &mut GcReport) {
    for l in report.found.clone() {
        let Some(access) = accesses.of(&l.account) else {
            continue;
        };
        if let Err(e) = fix(cloud, access, &l).await {
            report.problems.push(format!(
                "{} {} {} in {}/{}: {e}",
                l.action, l.service, l.id, l.account, l.region
            ));
        }
    }
}

async fn fix(cloud: &dyn Cloud, access: &Access, l: &Leftover) -> Result<(), CloudError> {
    match (l.action, l.service) {
        ("delete", Service::Ebs) => cloud.delete_snapshot(access, &l.region, &l.id).await,
        ("delete", Service::Rds) => cloud.delete_db_snapshot(access, &l.region, &l.id).await,
        ("delete", Service::Aurora) => {
            cloud
                .delete_db_cluster_snapshot(access, &l.region, &l.id)
                .await
        }
        (_, service) => {
            for account in l.shared_with.iter().filter_map(|a| AccountId::parse(a)) {
                match service {
                    Service::Ebs => {
                        cloud
                            .set_snapshot_share(access, &l.region, &l.id, &account, false)
                            .await?
                    }
                    Service::Rds => {
                        cloud
                            .set_db_snapshot_share(access, &l.region, &l.id, &account, false)
                            .await?
                    }
                    Service::Aurora => {
                        cloud
                            .set_db_cluster_snapshot_share(
                                access, &l.region, &l.id, &account, false,
                            )
                            .await?
                    }
                }
            }
            Ok(())
        }
    }
}
