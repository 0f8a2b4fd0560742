//! Retention: which restore points a policy keeps, and deleting the others without ever
//! deleting the wrong snapshot.
//!
//! The rules (SPEC section 4, issue 7):
//! - Per resource and place (the source, or a target's account and Region), `[retention]`
//!   keeps the newest `count` restore points, or those younger than `days` days.
//! - The newest complete restore point of a resource in a place is never deleted, whatever the
//!   policy says: the next EBS copy is incremental only while it exists (SPEC section 3).
//! - Only restore points the state store recorded for this policy are candidates, and each of
//!   their snapshots must also carry snaprelay's tags for this policy and resource in AWS; if
//!   one does not, the restore point is left whole and the report says why.
//! - A restore point is deleted as a unit: its snapshots one by one, each deletion recorded, and
//!   the restore point marked deleted after the last. One left half deleted (an AWS error, a
//!   crash) is `deleting` and is finished by the next run.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ids::{AccountId, RestorePointId, SessionId};
use crate::model::{ResourceType, SnapshotKind, SnapshotState, Tag, tag_value, tags};
use crate::policy::{Keep, Retention};
use crate::ports::{Access, Cloud, StateStore, StoreError};
use crate::report::{PointStatus, RecordedRestorePoint, Service};
use crate::runtime::clock::rfc3339;

/// What retention did, or would do in a dry run.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RetentionReport {
    pub policy: String,
    pub dry_run: bool,
    /// Restore points deleted (or to be deleted).
    pub deleted: Vec<Expired>,
    /// Restore points kept.
    pub kept: usize,
    /// Restore points left alone for a reason the operator should see.
    pub problems: Vec<String>,
    /// Places the policy no longer has: their restore points are left as they are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
    /// Why nothing was looked at (a policy without `[retention]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A restore point retention lets go.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Expired {
    pub resource_type: ResourceType,
    pub resource_id: String,
    pub kind: SnapshotKind,
    pub account: String,
    pub region: String,
    pub created_at: String,
    pub session_id: SessionId,
    pub snapshots: Vec<String>,
    /// Snapshots that were already gone from AWS (deleted by hand, say).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub already_gone: Vec<String>,
    /// Why: the rule that lets it go.
    pub reason: String,
}

/// The credentials retention deletes with, per account, and the places the policy has now.
pub struct Accesses {
    pub by_account: Vec<(AccountId, Access)>,
    /// (account, Region) of the source.
    pub source_places: BTreeSet<(String, String)>,
    /// (account, Region) of each target.
    pub replica_places: BTreeSet<(String, String)>,
}

impl Accesses {
    /// The source's credentials and each target account's, as the session used them.
    pub fn of_plan(prepared: &crate::plan::prepare::Prepared, source_regions: &[String]) -> Self {
        let plan = &prepared.plan;
        let mut by_account = vec![(plan.source_account.clone(), prepared.source_access.clone())];
        for t in &plan.targets {
            if !by_account.iter().any(|(a, _)| a == &t.account) {
                by_account.push((t.account.clone(), t.access.clone()));
            }
        }
        let account = plan.source_account.to_string();
        Self {
            by_account,
            source_places: source_regions
                .iter()
                .map(|r| (account.clone(), r.clone()))
                .collect(),
            replica_places: plan
                .targets
                .iter()
                .map(|t| (t.account.to_string(), t.region.clone()))
                .collect(),
        }
    }

    /// Whether the policy still has this place (a removed target or source Region: no).
    fn has_place(&self, kind: SnapshotKind, account: &str, region: &str) -> bool {
        let place = (account.to_owned(), region.to_owned());
        if kind == SnapshotKind::Source {
            self.source_places.contains(&place)
        } else {
            self.replica_places.contains(&place)
        }
    }

    /// The credentials for an account of the policy (its 12 digits).
    pub fn of(&self, account: &str) -> Option<&Access> {
        self.by_account
            .iter()
            .find(|(a, _)| a.as_str() == account)
            .map(|(_, access)| access)
    }
}

/// The restore points the policy lets go, with the reason, among everything recorded for it.
/// Pure: `now` is seconds since the Unix epoch.
pub fn expired<'a>(
    points: &'a [RecordedRestorePoint],
    retention: &Retention,
    now: u64,
) -> (Vec<(&'a RecordedRestorePoint, String)>, usize) {
    type Place<'p> = (ResourceType, &'p str, SnapshotKind, &'p str, &'p str);
    let mut places: BTreeMap<Place<'_>, Vec<&RecordedRestorePoint>> = BTreeMap::new();
    let mut expired = Vec::new();
    for p in points {
        match p.status {
            PointStatus::Deleted => {}
            // Half deleted: no longer a restore point anyone can use; finish it.
            PointStatus::Deleting => expired.push((
                p,
                "its deletion was started by an earlier run and is finished".to_owned(),
            )),
            PointStatus::Complete => places
                .entry((
                    p.point.resource_type,
                    p.point.resource_id.as_str(),
                    p.point.kind,
                    p.point.place.account.as_str(),
                    p.point.place.region.as_str(),
                ))
                .or_default()
                .push(p),
        }
    }
    let mut kept = 0;
    for ((_, _, kind, _, _), mut group) in places {
        group.sort_by(|a, b| {
            b.point
                .created_at
                .cmp(&a.point.created_at)
                .then(b.id.cmp(&a.id))
        });
        let keep = if kind == SnapshotKind::Source {
            retention.source
        } else {
            retention.replicas
        };
        for (age_rank, p) in group.iter().enumerate() {
            // The newest is always kept (age_rank 0).
            let reason = match keep {
                _ if age_rank == 0 => None,
                None => None,
                Some(Keep::Count(n)) if age_rank >= n as usize => Some(format!(
                    "count = {n}: {} newer restore point(s) of this resource here",
                    age_rank
                )),
                Some(Keep::Days(d)) => {
                    let limit = now.saturating_sub(u64::from(d) * 86_400);
                    (p.point.created_at < rfc3339(limit))
                        .then(|| format!("days = {d}: made before {}", rfc3339(limit)))
                }
                Some(Keep::Count(_)) => None,
            };
            match reason {
                Some(r) => expired.push((*p, r)),
                None => kept += 1,
            }
        }
    }
    (expired, kept)
}

/// Applies the policy's retention: deletes (or, in a dry run, lists) the restore points it lets
/// go. A store error stops it; AWS errors are reported per restore point.
pub async fn apply(
    cloud: &dyn Cloud,
    store: &dyn StateStore,
    policy: &str,
    retention: &Retention,
    accesses: &Accesses,
    now: u64,
    dry_run: bool,
) -> Result<RetentionReport, StoreError> {
    let points = store.policy_restore_points(policy).await?;
    let (expired, kept) = expired(&points, retention, now);
    let expired_ids: Vec<RestorePointId> = expired.iter().map(|(p, _)| p.id).collect();
    let mut report = RetentionReport {
        policy: policy.to_owned(),
        dry_run,
        kept,
        ..RetentionReport::default()
    };
    // Places whose kept restore points were checked in AWS: None if they are whole, else why.
    let mut checked: BTreeMap<PlaceKey, Option<String>> = BTreeMap::new();
    for (point, reason) in expired {
        let p = &point.point;
        let label = format!(
            "{} restore point of {} {} in {}/{} made {}",
            p.kind, p.resource_type, p.resource_id, p.place.account, p.place.region, p.created_at
        );
        let access = accesses
            .of(&p.place.account)
            .filter(|_| accesses.has_place(p.kind, &p.place.account, &p.place.region));
        let Some(access) = access else {
            report.kept += 1;
            let note = format!(
                "{} {}/{} is no longer a place of this policy: its restore points are left as \
                 they are (delete them by hand if they are no longer wanted)",
                p.kind, p.place.account, p.place.region
            );
            if !report.skipped.contains(&note) {
                report.skipped.push(note);
            }
            continue;
        };
        // Before letting an older restore point go, the ones kept in its place must really be
        // there: a kept one someone damaged by hand must not leave the place with none whole.
        if point.status == PointStatus::Complete {
            let key = place_key(point);
            if !checked.contains_key(&key) {
                let kept_here: Vec<&RecordedRestorePoint> = points
                    .iter()
                    .filter(|k| k.status == PointStatus::Complete && place_key(k) == key)
                    .filter(|k| !expired_ids.contains(&k.id))
                    .collect();
                let damage = missing_snapshots(cloud, access, &kept_here).await;
                checked.insert(key.clone(), damage);
            }
            if let Some(Some(damage)) = checked.get(&key) {
                report.kept += 1;
                report.problems.push(format!(
                    "{label}: kept, because {damage}; nothing older is deleted here until a \
                     newer restore point is whole"
                ));
                continue;
            }
        }
        match delete_point(cloud, store, point, access, dry_run, now).await? {
            Ok(already_gone) => report.deleted.push(Expired {
                resource_type: p.resource_type,
                resource_id: p.resource_id.clone(),
                kind: p.kind,
                account: p.place.account.clone(),
                region: p.place.region.clone(),
                created_at: p.created_at.clone(),
                session_id: point.session_id.clone(),
                snapshots: p.place.snapshots.iter().map(|s| s.id.clone()).collect(),
                already_gone,
                reason,
            }),
            Err(why) => {
                report.kept += 1;
                report.problems.push(format!("{label}: {why}"));
            }
        }
    }
    Ok(report)
}

type PlaceKey = (ResourceType, String, SnapshotKind, String, String);

fn place_key(p: &RecordedRestorePoint) -> PlaceKey {
    let p = &p.point;
    (
        p.resource_type,
        p.resource_id.clone(),
        p.kind,
        p.place.account.clone(),
        p.place.region.clone(),
    )
}

/// Why the kept restore points of a place are not whole in AWS (a snapshot missing or failed),
/// or `None` when they are.
async fn missing_snapshots(
    cloud: &dyn Cloud,
    access: &Access,
    kept: &[&RecordedRestorePoint],
) -> Option<String> {
    let first = kept.first()?;
    let region = first.point.place.region.as_str();
    let service = first.point.resource_type.service();
    let rds = service != Service::Ebs;
    let wanted: Vec<(&RecordedRestorePoint, String)> = kept
        .iter()
        .flat_map(|k| {
            k.point.place.snapshots.iter().map(move |s| {
                let name = if rds { db_snapshot_name(&s.id) } else { &s.id };
                (*k, name.to_owned())
            })
        })
        .collect();
    let names: Vec<String> = wanted.iter().map(|(_, n)| n.clone()).collect();
    let present: Result<Vec<(String, SnapshotState)>, _> = match service {
        Service::Rds => cloud
            .describe_db_snapshots(access, region, &names)
            .await
            .map(|s| s.into_iter().map(|s| (s.id.clone(), s.state())).collect()),
        Service::Aurora => cloud
            .describe_db_cluster_snapshots(access, region, &names)
            .await
            .map(|s| s.into_iter().map(|s| (s.id.clone(), s.state())).collect()),
        Service::Ebs => cloud
            .describe_snapshots(access, region, &names)
            .await
            .map(|s| s.into_iter().map(|s| (s.id, s.state)).collect()),
    };
    let present = match present {
        Ok(p) => p,
        Err(e) => {
            return Some(format!(
                "the restore points kept here could not be checked: {e}"
            ));
        }
    };
    wanted.iter().find_map(|(k, name)| {
        let whole = present
            .iter()
            .any(|(id, state)| id == name && *state == SnapshotState::Completed);
        (!whole).then(|| {
            format!(
                "the newer restore point made {} (kept) lacks snapshot {name} in AWS",
                k.point.created_at
            )
        })
    })
}

/// A snapshot of a restore point as AWS shows it now.
enum Found {
    /// Carries snaprelay's tags for this policy and resource.
    Ours,
    /// Gone already (deleted by hand, say).
    Gone,
    /// Present, but its tags do not prove it is this policy's.
    Foreign(String),
}

/// Deletes one restore point as a unit; `Ok(Ok(gone))` lists the snapshots already gone.
/// `Ok(Err(why))`: left alone (or half deleted) for a reason of AWS's; `Err`: the store failed.
async fn delete_point(
    cloud: &dyn Cloud,
    store: &dyn StateStore,
    point: &RecordedRestorePoint,
    access: &Access,
    dry_run: bool,
    now: u64,
) -> Result<Result<Vec<String>, String>, StoreError> {
    let p = &point.point;
    let region = p.place.region.as_str();
    let service = p.resource_type.service();
    let rds = service != Service::Ebs;
    let left: Vec<&str> = p
        .place
        .snapshots
        .iter()
        .map(|s| s.id.as_str())
        .filter(|id| !point.deleted_snapshots.iter().any(|d| d == id))
        .collect();

    // First prove every snapshot is ours; only then delete any.
    let mut found = Vec::with_capacity(left.len());
    for id in &left {
        let name = if rds { db_snapshot_name(id) } else { id };
        let ids = [name.to_owned()];
        let described = match service {
            Service::Rds => cloud
                .describe_db_snapshots(access, region, &ids)
                .await
                .map(|s| s.into_iter().next().map(|s| s.tags)),
            Service::Aurora => cloud
                .describe_db_cluster_snapshots(access, region, &ids)
                .await
                .map(|s| s.into_iter().next().map(|s| s.tags)),
            Service::Ebs => cloud
                .describe_snapshots(access, region, &ids)
                .await
                .map(|s| s.into_iter().next().map(|s| s.tags)),
        };
        let tags: Option<Vec<Tag>> = match described {
            Ok(tags) => tags,
            Err(e) => return Ok(Err(format!("kept, could not look at {id}: {e}"))),
        };
        let verdict = match tags {
            None => Found::Gone,
            Some(t)
                if tag_value(&t, tags::POLICY) == Some(p.policy.as_str())
                    && tag_value(&t, tags::RESOURCE) == Some(p.resource_id.as_str()) =>
            {
                Found::Ours
            }
            Some(t) => Found::Foreign(format!(
                "it has {}={} and {}={}",
                tags::POLICY,
                tag_value(&t, tags::POLICY).unwrap_or("(none)"),
                tags::RESOURCE,
                tag_value(&t, tags::RESOURCE).unwrap_or("(none)")
            )),
        };
        if let Found::Foreign(seen) = &verdict {
            return Ok(Err(format!(
                "kept whole: snapshot {id} does not carry snaprelay's tags for policy {} and \
                 resource {} ({seen}), so snaprelay will not delete it",
                p.policy, p.resource_id
            )));
        }
        found.push((*id, name, verdict));
    }
    let gone: Vec<String> = found
        .iter()
        .filter(|(_, _, v)| matches!(v, Found::Gone))
        .map(|(id, _, _)| (*id).to_owned())
        .collect();
    if dry_run {
        return Ok(Ok(gone));
    }

    let at = rfc3339(now);
    let total = found.len();
    for (done, (id, name, verdict)) in found.into_iter().enumerate() {
        if let Found::Ours = verdict {
            let deleted = match service {
                Service::Rds => cloud.delete_db_snapshot(access, region, name).await,
                Service::Aurora => cloud.delete_db_cluster_snapshot(access, region, name).await,
                Service::Ebs => cloud.delete_snapshot(access, region, name).await,
            };
            match deleted {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Ok(Err(format!(
                        "{} of its {total} snapshot(s) deleted, then {id} could not be: {e}; \
                         the next run finishes it",
                        done
                    )));
                }
            }
        }
        store.record_snapshot_deleted(point.id, id, &at).await?;
    }
    store.record_restore_point_deleted(point.id, &at).await?;
    Ok(Ok(gone))
}

/// The identifier in a DB snapshot's or DB cluster snapshot's ARN (`...:snapshot:ID`,
/// `...:cluster-snapshot:ID`).
fn db_snapshot_name(arn: &str) -> &str {
    arn.rsplit_once(":snapshot:")
        .or_else(|| arn.rsplit_once(":cluster-snapshot:"))
        .map_or(arn, |(_, name)| name)
}

#[cfg(test)]
mod tests;
