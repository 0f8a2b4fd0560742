//! `state rebuild` (SPEC 6.7): a lost state is not lost replicas. The snapshots in AWS are the
//! truth and the state is their index: from snaprelay's tags in every place of the policy,
//! the restore points are found again and recorded into an empty state, each under a session
//! of its own id (recorded as ended, so that no run resumes it), so that retention, restore
//! and drills go on.
//!
//! What the tags carry comes back: the resource, the kind, each volume with its device, size
//! and type, the instance's type and what `RegisterImage` needs (`config::describing_tags`),
//! an Aurora cluster's engine, version, writer class and Serverless v2 capacity
//! (`config::describing_cluster_tags`), the source snapshot of each copy, the keys. What they do not (the instance's network, the
//! point's exact time) is `null`, and the report says so.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{AuroraConfig, Ec2Config, ResourceConfig};
use crate::model::{
    ResourceType, SnapshotKind, SnapshotState, Tag, made_by_a_session, tag_value, tags,
};
use crate::policy::Policy;
use crate::ports::{PointFilter, SessionId};
use crate::report::{PlaceReport, ResourceReport, RestorePoint, SessionReport, SnapshotReport};
use crate::retention::Accesses;
use crate::runtime::clock::{rfc3339, utc_now};
use crate::status::Status;

use super::{App, AppError, prepared};

/// What `state rebuild` found and recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rebuilt {
    pub policy: String,
    pub sessions: usize,
    pub restore_points: usize,
    pub snapshots: usize,
    pub notes: Vec<String>,
}

/// One snapshot found by its tags.
struct Found {
    service: ResourceType,
    id: String,
    volume_id: String,
    source_snapshot: Option<String>,
    device: Option<String>,
    kms_key_id: Option<String>,
    /// The volume's size: from the `snaprelay:volume-size` tag (replicas), else the
    /// snapshot's own `VolumeSize`.
    size_gib: Option<i64>,
    tags: Vec<Tag>,
}

/// Rebuilds `policy`'s restore points into `app`'s store, which must be empty.
pub async fn rebuild(app: &App, policy: &Policy) -> Result<Rebuilt, AppError> {
    let store = app.store.as_ref();
    let held = store.sessions(None).await?.len();
    let points = store
        .find_restore_points(&PointFilter::default())
        .await?
        .len();
    if held > 0 || points > 0 {
        return Err(AppError::invalid(format!(
            "the destination holds {held} session(s) and {points} restore point(s): state \
             rebuild only fills an empty state; nothing was written"
        )));
    }
    let prepared = prepared(app, policy).await?;
    let accesses = Accesses::of_plan(&prepared, &policy.source.regions);
    let cloud = app.cloud.as_ref();
    let tag = Tag::new(tags::POLICY, policy.name.as_str());
    // (session, resource, kind, account, region) → snapshots
    type Key = (String, String, SnapshotKind, String, String);
    let mut found: BTreeMap<Key, Vec<Found>> = BTreeMap::new();
    let places = accesses
        .source_places
        .iter()
        .map(|p| (SnapshotKind::Source, p))
        .chain(
            accesses
                .replica_places
                .iter()
                .map(|p| (SnapshotKind::Replica, p)),
        );
    let read = |e: crate::ports::CloudError| AppError::of_cloud(&e, "nothing was written");
    for (kind, (account, region)) in places {
        let Some(access) = accesses.of(account) else {
            continue;
        };
        let ebs = cloud
            .find_snapshots(access, region, &tag)
            .await
            .map_err(read)?;
        let rds = cloud
            .find_db_snapshots(access, region, &tag)
            .await
            .map_err(read)?;
        let aurora = cloud
            .find_db_cluster_snapshots(access, region, &tag)
            .await
            .map_err(read)?;
        let mut add = |tags: &[Tag], f: Found| {
            if !made_by_a_session(tags) || tag_value(tags, tags::KIND) != Some(kind.as_str()) {
                return;
            }
            let (Some(session), Some(resource)) = (
                tag_value(tags, tags::SESSION),
                tag_value(tags, tags::RESOURCE),
            ) else {
                return;
            };
            found
                .entry((
                    session.to_owned(),
                    resource.to_owned(),
                    kind,
                    account.clone(),
                    region.clone(),
                ))
                .or_default()
                .push(f);
        };
        for s in ebs.iter().filter(|s| s.state == SnapshotState::Completed) {
            add(
                &s.tags,
                Found {
                    service: ResourceType::Ec2,
                    id: s.id.clone(),
                    volume_id: tag_value(&s.tags, tags::VOLUME)
                        .map(str::to_owned)
                        .or_else(|| s.volume_id.clone())
                        .unwrap_or_default(),
                    source_snapshot: tag_value(&s.tags, tags::SOURCE_SNAPSHOT).map(str::to_owned),
                    device: tag_value(&s.tags, tags::DEVICE).map(str::to_owned),
                    kms_key_id: s.kms_key_id.clone(),
                    size_gib: tag_value(&s.tags, tags::VOLUME_SIZE)
                        .and_then(|v| v.parse().ok())
                        .or(s.volume_size_gib),
                    tags: s.tags.clone(),
                },
            );
        }
        let dbs = rds
            .iter()
            .map(|s| (ResourceType::Rds, s))
            .chain(aurora.iter().map(|s| (ResourceType::Aurora, s)));
        for (service, s) in dbs.filter(|(_, s)| s.state() == SnapshotState::Completed) {
            add(
                &s.tags,
                Found {
                    service,
                    id: s.arn.clone(),
                    volume_id: String::new(),
                    source_snapshot: None,
                    device: None,
                    kms_key_id: s.kms_key_id.clone(),
                    size_gib: None,
                    tags: s.tags.clone(),
                },
            );
        }
    }

    let mut rebuilt = Rebuilt {
        policy: policy.name.clone(),
        ..Rebuilt::default()
    };
    // The source snapshot of each RDS replica: the session's source point of that resource.
    let rds_sources: BTreeMap<(String, String), String> = found
        .iter()
        .filter(|((_, _, kind, _, _), snaps)| {
            *kind == SnapshotKind::Source
                && snaps
                    .iter()
                    .all(|s| matches!(s.service, ResourceType::Rds | ResourceType::Aurora))
        })
        .filter_map(|((session, resource, ..), snaps)| {
            Some((
                (session.clone(), resource.clone()),
                snaps.first()?.id.clone(),
            ))
        })
        .collect();
    let mut sessions: BTreeMap<String, Vec<RestorePoint>> = BTreeMap::new();
    for ((session, resource, kind, account, region), snaps) in &found {
        let service = snaps[0].service;
        let started_at = session_start(session).unwrap_or_else(utc_now);
        let snapshots: Vec<SnapshotReport> = snaps
            .iter()
            .map(|s| SnapshotReport {
                id: s.id.clone(),
                source_id: match (kind, service) {
                    (SnapshotKind::Source, ResourceType::Ec2) => s.volume_id.clone(),
                    (SnapshotKind::Source, ResourceType::Rds | ResourceType::Aurora) => {
                        resource.clone()
                    }
                    (_, ResourceType::Ec2) => s.source_snapshot.clone().unwrap_or_default(),
                    (_, ResourceType::Rds | ResourceType::Aurora) => rds_sources
                        .get(&(session.clone(), resource.clone()))
                        .cloned()
                        .unwrap_or_default(),
                },
                volume_id: s.volume_id.clone(),
                device: s.device.clone(),
                kms_key_id: s.kms_key_id.clone(),
                size_gib: s.size_gib,
            })
            .collect();
        rebuilt.snapshots += snapshots.len();
        let place = PlaceReport {
            account: account.clone(),
            region: region.clone(),
            snapshots,
        };
        // What the tags say of the instance: its volumes' devices and snapshots here.
        let tags_of: Vec<Vec<Tag>> = snaps.iter().map(|s| s.tags.clone()).collect();
        let config = match service {
            ResourceType::Ec2 => Some(ResourceConfig::Ec2(Ec2Config::of_tagged(&place, &tags_of))),
            ResourceType::Aurora => tags_of
                .first()
                .and_then(|t| AuroraConfig::of_tagged(t))
                .map(ResourceConfig::Aurora),
            ResourceType::Rds => None,
        };
        sessions
            .entry(session.clone())
            .or_default()
            .push(RestorePoint {
                policy: policy.name.clone(),
                resource_type: service,
                resource_id: resource.clone(),
                kind: *kind,
                created_at: started_at,
                place,
                config,
            });
    }
    for (session, points) in sessions {
        let id = SessionId::new(session.clone());
        let started_at = session_start(&session).unwrap_or_else(utc_now);
        store.begin_session(&id, &policy.name, &started_at).await?;
        for p in &points {
            store.record_restore_point(&id, p).await?;
            rebuilt.restore_points += 1;
        }
        let mut resources: Vec<ResourceReport> = Vec::new();
        for p in &points {
            if resources.iter().any(|r| r.id == p.resource_id) {
                continue;
            }
            resources.push(ResourceReport {
                resource_type: p.resource_type,
                id: p.resource_id.clone(),
                region: points
                    .iter()
                    .find(|q| q.resource_id == p.resource_id && q.kind == SnapshotKind::Source)
                    .map_or_else(String::new, |q| q.place.region.clone()),
                status: Status::Warning,
                messages: vec!["rebuilt from snaprelay's tags by state rebuild".into()],
                source: None,
                replicas: Vec::new(),
            });
        }
        // Ended, so that no run takes it for an interrupted session to resume.
        store
            .finish_session(&SessionReport {
                session_id: id,
                policy: policy.name.clone(),
                status: Status::Warning,
                started_at: started_at.clone(),
                ended_at: started_at,
                source_account: prepared.plan.source_account.to_string(),
                resources,
                messages: vec![
                    "rebuilt by state rebuild from snaprelay's tags in AWS: the original \
                     report is lost"
                        .into(),
                ],
            })
            .await?;
        rebuilt.sessions += 1;
    }
    if rebuilt.restore_points > 0 {
        rebuilt.notes.push(
            "from the tags: each point's resource, kind, place, snapshots, keys, volumes \
             with their devices, sizes and types, and the instance's type, architecture, \
             virtualization, ENA, boot mode, root device and platform (replicas made before \
             snaprelay tagged these have them null; source snapshots carry only their \
             volume's size, from AWS); not kept in tags, so null: the \
             instance's network, profile, key pair and tags, volume IOPS and throughput, DB \
             settings; each point's time is its session's start"
                .into(),
        );
    }
    Ok(rebuilt)
}

/// The start time a session id carries (`20261205T023900Z-da2a`), as RFC 3339.
fn session_start(id: &str) -> Option<String> {
    let stamp = id.split('-').next()?;
    let t = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%SZ", stamp).ok()?;
    let secs = t
        .to_zoned(jiff::tz::TimeZone::UTC)
        .ok()?
        .timestamp()
        .as_second();
    Some(rfc3339(u64::try_from(secs).ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_session_id_carries_its_start() {
        assert_eq!(
            super::session_start("20261205T023900Z-da2a").as_deref(),
            Some("2026-12-05T02:39:00Z")
        );
        assert_eq!(super::session_start("nonsense"), None);
    }
}
