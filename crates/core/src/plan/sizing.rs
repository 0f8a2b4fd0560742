//! Sizing the copies of a plan, and of what a run copied (SPEC 6.5), with read calls only:
//! the state store tells which replicas and source snapshots snaprelay made, AWS whether the
//! previous replica is still there (`DescribeSnapshots`), how big a snapshot is
//! (`FullSnapshotSizeInBytes`) and what changed between two snapshots (`ListChangedBlocks`).
//! Anything that cannot be asked leaves its figure `unknown` rather than a guess; nothing here
//! fails a plan or a run.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{StreamExt, stream};
use serde::Serialize;

use crate::model::{Resource, ResourceType, SnapshotState};
use crate::plan::estimate::{
    Basis, CopyEstimate, Estimate, Figure, VolumeFacts, copies, previous_replica, source_snapshots,
};
use crate::plan::prepare::Prepared;
use crate::plan::{Decision, ResolvedTarget};
use crate::policy::Prices;
use crate::ports::{Access, Cloud, StateStore};
use crate::report::{SessionReport, SnapshotReport};

/// How far to size a plan.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options<'a> {
    /// Ask AWS for sizes (`FullSnapshotSizeInBytes` of the newest source snapshot,
    /// `ListChangedBlocks` between the two newest): what `plan` shows. A run only needs to know
    /// which copies are incremental; it measures them once made.
    pub predict: bool,
    /// A session whose own restore points are not "previous" (the one a run resumes).
    pub skip_session: Option<&'a str>,
}

/// Fills in each target entry's copies and the plan's totals.
pub async fn estimate(
    cloud: &dyn Cloud,
    store: &dyn StateStore,
    prepared: &mut Prepared,
    prices: &Prices,
    options: Options<'_>,
) {
    let history = match store.policy_restore_points(&prepared.plan.policy).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(error = %e, "estimates: the state store could not be read; every EBS copy counts as full");
            Vec::new()
        }
    };
    let plan = &prepared.plan;
    let source_access = &prepared.source_access;

    // The previous replica of each volume in each place, as the state records it, with the
    // key the new replica will have.
    let mut previous: BTreeMap<(usize, usize, String), SnapshotReport> = BTreeMap::new();
    let mut to_confirm: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (ti, task) in plan.tasks.iter().enumerate() {
        let Resource::Ec2(instance) = &task.resource else {
            continue;
        };
        for (ei, entry) in task.targets.iter().enumerate() {
            let Decision::Replicate { kms_key_id, .. } = &entry.decision else {
                continue;
            };
            for v in &instance.volumes {
                if let Some(prev) = previous_replica(
                    &history,
                    &task.id,
                    entry.account.as_str(),
                    &entry.region,
                    &v.id,
                    options.skip_session,
                ) && prev.kms_key_id == *kms_key_id
                {
                    to_confirm
                        .entry(entry.target)
                        .or_default()
                        .push(prev.id.clone());
                    previous.insert((ti, ei, v.id.clone()), prev.clone());
                }
            }
        }
    }
    // A previous replica deleted outside snaprelay makes the next copy full.
    let mut gone = BTreeSet::new();
    for (index, ids) in &to_confirm {
        let Some(target) = plan.targets.iter().find(|t| t.index == *index) else {
            continue;
        };
        match cloud
            .describe_snapshots(&target.access, &target.region, ids)
            .await
        {
            Ok(found) => {
                let there: BTreeSet<&str> = found
                    .iter()
                    .filter(|s| s.state != SnapshotState::Error)
                    .map(|s| s.id.as_str())
                    .collect();
                gone.extend(
                    ids.iter()
                        .filter(|id| !there.contains(id.as_str()))
                        .cloned(),
                );
            }
            Err(e) => tracing::warn!(
                error = %e,
                "estimates: whether the previous replicas in {} still exist could not be asked; \
                 the state's record is taken",
                target.label()
            ),
        }
    }
    previous.retain(|_, prev| !gone.contains(&prev.id));

    let mut full_sizes: BTreeMap<String, u64> = BTreeMap::new();
    let mut changed: BTreeMap<(String, String), Option<u64>> = BTreeMap::new();
    if options.predict {
        // Full copies: the newest source snapshot's size, as a predictor of the next one's.
        let mut newest_by_region: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (ti, task) in plan.tasks.iter().enumerate() {
            let Resource::Ec2(instance) = &task.resource else {
                continue;
            };
            for v in &instance.volumes {
                let incremental_everywhere = task
                    .targets
                    .iter()
                    .enumerate()
                    .all(|(ei, _)| previous.contains_key(&(ti, ei, v.id.clone())));
                if incremental_everywhere {
                    continue;
                }
                if let Some(newest) = source_snapshots(&history, &task.id, &v.id).last() {
                    newest_by_region
                        .entry(task.region.clone())
                        .or_default()
                        .push((*newest).to_owned());
                }
            }
        }
        for (region, ids) in &newest_by_region {
            full_sizes.extend(sizes_of(cloud, source_access, region, ids).await);
        }
        // Incremental copies: what changed between the two newest source snapshots.
        let mut pairs = BTreeSet::new();
        for (ti, _, volume) in previous.keys() {
            let task = &plan.tasks[*ti];
            let snapshots = source_snapshots(&history, &task.id, volume);
            if let [.., older, newer] = snapshots.as_slice() {
                pairs.insert((
                    task.region.clone(),
                    (*older).to_owned(),
                    (*newer).to_owned(),
                ));
            }
        }
        changed = changes(cloud, source_access, pairs).await;
    }

    let targets: Vec<ResolvedTarget> = prepared.plan.targets.clone();
    for (ti, task) in prepared.plan.tasks.iter_mut().enumerate() {
        let resource = task.clone();
        for (ei, entry) in task.targets.iter_mut().enumerate() {
            let Some(target) = targets.iter().find(|t| t.index == entry.target) else {
                continue;
            };
            let mut facts: BTreeMap<String, VolumeFacts> = BTreeMap::new();
            if let Resource::Ec2(instance) = &resource.resource {
                for v in &instance.volumes {
                    let prev = previous.get(&(ti, ei, v.id.clone())).cloned();
                    let snapshots = source_snapshots(&history, &resource.id, &v.id);
                    let change = match snapshots.as_slice() {
                        [.., older, newer] => changed
                            .get(&((*older).to_owned(), (*newer).to_owned()))
                            .copied()
                            .flatten(),
                        _ => None,
                    };
                    let full_size = snapshots.last().and_then(|s| full_sizes.get(*s)).copied();
                    facts.insert(
                        v.id.clone(),
                        VolumeFacts {
                            previous_same_key: prev,
                            full_size,
                            changed: change,
                        },
                    );
                }
            }
            entry.copies = copies(&resource, &entry.decision, target, &facts);
        }
    }
    prepared.plan.estimate = Some(Estimate::of_plan(&prepared.plan, prices));
}

/// `FullSnapshotSizeInBytes` of the snapshots AWS reports it for.
async fn sizes_of(
    cloud: &dyn Cloud,
    access: &Access,
    region: &str,
    ids: &[String],
) -> BTreeMap<String, u64> {
    match cloud.describe_snapshots(access, region, ids).await {
        Ok(found) => found
            .into_iter()
            .filter_map(|s| Some((s.id, s.full_size_bytes?)))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "estimates: snapshot sizes could not be asked");
            BTreeMap::new()
        }
    }
}

/// How many `ListChangedBlocks` comparisons run at once (each may be many pages).
const COMPARISONS_AT_ONCE: usize = 8;

/// What changed between each pair of snapshots (Region, older, newer), asked side by side.
async fn changes(
    cloud: &dyn Cloud,
    access: &Access,
    pairs: BTreeSet<(String, String, String)>,
) -> BTreeMap<(String, String), Option<u64>> {
    stream::iter(pairs)
        .map(|(region, older, newer)| async move {
            let bytes = changed_bytes(cloud, access, &region, &older, &newer).await;
            ((older, newer), bytes)
        })
        .buffer_unordered(COMPARISONS_AT_ONCE)
        .collect()
        .await
}

/// What changed between two snapshots of one volume, in bytes; `None` when AWS would not say
/// (the role may not call the EBS direct API, the endpoint has none, a snapshot is gone).
async fn changed_bytes(
    cloud: &dyn Cloud,
    access: &Access,
    region: &str,
    older: &str,
    newer: &str,
) -> Option<u64> {
    match cloud.changed_blocks(access, region, older, newer).await {
        Ok(c) => Some(c.bytes()),
        Err(e) => {
            tracing::info!(error = %e, "estimates: ListChangedBlocks {older} {newer} was refused; the size of the incremental copy is unknown");
            None
        }
    }
}

/// What a run copied (SPEC 6.5): the plan's figures for the replicas made, exact where AWS
/// says: a full EBS copy at its source snapshot's `FullSnapshotSizeInBytes`, an incremental
/// one at the blocks that changed since the snapshot the previous replica was copied from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Copied {
    #[serde(flatten)]
    pub estimate: Estimate,
    pub replicas: Vec<ReplicaCopies>,
}

/// The copies that made one replica.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplicaCopies {
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    /// The instance id or DB instance identifier.
    pub id: String,
    pub account: String,
    pub region: String,
    pub copies: Vec<CopyEstimate>,
}

/// Measures what the session of `report` copied, against the plan it ran (sized with
/// [`estimate`] before the session, so that "previous" means before it).
pub async fn copied(
    cloud: &dyn Cloud,
    prepared: &Prepared,
    report: &SessionReport,
    prices: &Prices,
) -> Copied {
    let plan = &prepared.plan;
    // The incremental copies made: what changed since the snapshot each previous replica was
    // copied from, all asked side by side first.
    let mut pairs = BTreeSet::new();
    for r in &report.resources {
        let Some(task) = plan
            .tasks
            .iter()
            .find(|t| t.resource_type == r.resource_type && t.id == r.id)
        else {
            continue;
        };
        for place in &r.replicas {
            let planned = task
                .targets
                .iter()
                .find(|t| t.account.as_str() == place.account && t.region == place.region)
                .map_or(&[][..], |t| t.copies.as_slice());
            for s in &place.snapshots {
                if let Some(c) = planned.iter().find(|c| c.source == s.volume_id)
                    && let (Some(prev), false) = (&c.previous_source, c.estimate.full)
                {
                    pairs.insert((r.region.clone(), prev.clone(), s.source_id.clone()));
                }
            }
        }
    }
    let changed = changes(cloud, &prepared.source_access, pairs).await;
    let mut replicas = Vec::new();
    let mut with_target: Vec<(usize, CopyEstimate)> = Vec::new();
    for r in &report.resources {
        let Some(task) = plan
            .tasks
            .iter()
            .find(|t| t.resource_type == r.resource_type && t.id == r.id)
        else {
            continue;
        };
        let Some(source) = &r.source else {
            continue;
        };
        let mut full_sizes = BTreeMap::new();
        if let Resource::Ec2(_) = &task.resource
            && !r.replicas.is_empty()
        {
            let ids: Vec<String> = source.snapshots.iter().map(|s| s.id.clone()).collect();
            full_sizes = sizes_of(cloud, &prepared.source_access, &r.region, &ids).await;
        }
        for place in &r.replicas {
            let Some(entry) = task
                .targets
                .iter()
                .find(|t| t.account.as_str() == place.account && t.region == place.region)
            else {
                continue;
            };
            let copies = match &task.resource {
                Resource::Rds(_) | Resource::Aurora(_) => entry.copies.clone(),
                Resource::Ec2(instance) => {
                    let mut made = Vec::new();
                    for s in &place.snapshots {
                        let Some(planned) = entry.copies.iter().find(|c| c.source == s.volume_id)
                        else {
                            continue;
                        };
                        let estimate = match (&planned.previous_source, planned.estimate.full) {
                            (Some(prev), false) => {
                                match changed
                                    .get(&(prev.clone(), s.source_id.clone()))
                                    .copied()
                                    .flatten()
                                {
                                    Some(bytes) => Figure {
                                        bytes: Some(bytes),
                                        full: false,
                                        basis: Basis::ChangedBlocks,
                                    },
                                    None => Figure::unknown(false),
                                }
                            }
                            _ => match full_sizes.get(&s.source_id) {
                                Some(bytes) => Figure {
                                    bytes: Some(*bytes),
                                    full: true,
                                    basis: Basis::FullSnapshotSize,
                                },
                                None => Figure::of_gib(
                                    instance
                                        .volumes
                                        .iter()
                                        .find(|v| v.id == s.volume_id)
                                        .map(|v| i64::from(v.size_gib))
                                        .or(s.size_gib),
                                    true,
                                    Basis::VolumeSize,
                                ),
                            },
                        };
                        made.push(CopyEstimate {
                            estimate,
                            ..planned.clone()
                        });
                    }
                    made
                }
            };
            with_target.extend(copies.iter().map(|c| (entry.target, c.clone())));
            replicas.push(ReplicaCopies {
                resource_type: r.resource_type,
                id: r.id.clone(),
                account: place.account.clone(),
                region: place.region.clone(),
                copies,
            });
        }
    }
    Copied {
        estimate: Estimate::of(
            &plan.targets,
            with_target.iter().map(|(t, c)| (*t, c)),
            prices,
        ),
        replicas,
    }
}
