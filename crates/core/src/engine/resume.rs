//! Taking up an interrupted session: what it had done, by resource, and what it may have
//! left that no task of the resumed session will see again.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::plan::Plan;
use crate::ports::{Cloud, CloudError};
use crate::report::{
    ResourceReport, RestorePoint, Service, SessionProgress, StepDetail, StepKind, StepOutcome,
    StepRecord,
};

use super::{Prepared, Record};

/// What a resumed session had done, by resource.
#[derive(Default)]
pub(super) struct Resumed<'p> {
    points: HashMap<&'p str, Vec<RestorePoint>>,
    started: BTreeSet<&'p str>,
    done: HashMap<&'p str, &'p ResourceReport>,
}

impl<'p> Resumed<'p> {
    pub(super) fn of(progress: Option<&'p SessionProgress>) -> Self {
        let Some(p) = progress else {
            return Self::default();
        };
        let mut points: HashMap<&str, Vec<RestorePoint>> = HashMap::new();
        for point in &p.points {
            points
                .entry(point.resource_id.as_str())
                .or_default()
                .push(point.clone());
        }
        Self {
            points,
            started: p.started(),
            done: p.tasks.iter().map(|t| (t.id.as_str(), t)).collect(),
        }
    }

    /// The restore points a started task recorded (empty when none), or `None` for a task
    /// that never changed anything.
    pub(super) fn points_of(&self, resource: &str) -> Option<&[RestorePoint]> {
        if !self.started.contains(resource) {
            return None;
        }
        Some(self.points.get(resource).map_or(&[], Vec::as_slice))
    }

    pub(super) fn done(&self, resource: &str) -> Option<&'p ResourceReport> {
        self.done.get(resource).copied()
    }

    /// Tasks of the interrupted session that the plan no longer has: the ended ones join the
    /// report; for the others, what is left is said.
    pub(super) fn left_out(
        &self,
        plan: &Plan,
        progress: &SessionProgress,
        resources: &mut Vec<ResourceReport>,
    ) -> Vec<String> {
        let planned: HashSet<&str> = plan.tasks.iter().map(|t| t.id.as_str()).collect();
        resources.extend(
            progress
                .tasks
                .iter()
                .filter(|t| !planned.contains(t.id.as_str()))
                .cloned(),
        );
        let mut gone: Vec<&str> = self
            .started
            .iter()
            .copied()
            .filter(|r| !planned.contains(r) && !self.done.contains_key(r))
            .collect();
        gone.sort_unstable();
        gone.into_iter()
            .map(|r| {
                format!(
                    "{r} was being worked on when the session stopped and is no longer in the \
                     plan: `snaprelay gc` lists what it left in AWS"
                )
            })
            .collect()
    }
}

/// Once the resumed session's tasks have ended: every share the interrupted attempt made is
/// removed (a task that is no longer planned, or a target that was removed, would otherwise
/// leave it), and copies it made into places the policy no longer has are reported (their
/// credentials are gone with the target, so they can only be named).
pub(super) async fn leftovers(
    cloud: &dyn Cloud,
    recorder: &dyn Record,
    prepared: &Prepared,
    progress: &SessionProgress,
) -> Vec<String> {
    let mut messages = unshare_what_it_shared(cloud, recorder, prepared, progress).await;
    messages.extend(copies_in_removed_places(&prepared.plan, progress));
    messages
}

/// Removes every share the interrupted attempt made and did not remove, as its share steps
/// record them (typed: the service picks the API, nothing is told from an id's prefix).
async fn unshare_what_it_shared(
    cloud: &dyn Cloud,
    recorder: &dyn Record,
    prepared: &Prepared,
    progress: &SessionProgress,
) -> Vec<String> {
    let plan = &prepared.plan;
    let mut messages = Vec::new();
    let shares_of = |kind: StepKind| {
        progress
            .steps
            .iter()
            .filter(move |s| s.step == kind)
            .filter_map(|s| match &s.detail {
                StepDetail::Share {
                    service,
                    snapshot,
                    account,
                    ..
                } => Some((s, *service, snapshot.as_str(), account.as_str())),
                _ => None,
            })
    };
    let unshared: HashSet<(&str, &str)> = shares_of(StepKind::Unshare)
        .filter(|(s, ..)| s.outcome == StepOutcome::Ok)
        .map(|(_, _, snapshot, account)| (snapshot, account))
        .collect();
    let mut shares: BTreeSet<(&str, &str, Service, &str, &str)> = BTreeSet::new();
    for (s, service, snapshot, account) in shares_of(StepKind::Share) {
        let Some((_, region)) = s.place.split_once('/') else {
            continue;
        };
        if !unshared.contains(&(snapshot, account)) {
            shares.insert((s.resource_id.as_str(), region, service, snapshot, account));
        }
    }
    for (resource, region, service, id, account) in shares {
        let Some(account) = crate::ids::AccountId::parse(account) else {
            continue;
        };
        let access = &prepared.source_access;
        let started_at = crate::runtime::clock::utc_now();
        let result: Result<(), CloudError> = match service {
            Service::Ebs => {
                cloud
                    .set_snapshot_share(access, region, id, &account, false)
                    .await
            }
            Service::Rds => {
                cloud
                    .set_db_snapshot_share(access, region, id, &account, false)
                    .await
            }
            Service::Aurora => {
                cloud
                    .set_db_cluster_snapshot_share(access, region, id, &account, false)
                    .await
            }
        };
        let share = |gone: bool| StepDetail::Share {
            service,
            snapshot: id.to_owned(),
            account: account.to_string(),
            gone,
        };
        let (outcome, detail) = match &result {
            Ok(()) => (StepOutcome::Ok, share(false)),
            Err(e) if e.is_not_found() => (StepOutcome::Ok, share(true)),
            Err(e) => {
                messages.push(format!(
                    "{id} is still shared with account {account} by the interrupted session: \
                     removing the share failed: {e}; remove it by hand"
                ));
                (
                    StepOutcome::Failed,
                    StepDetail::Error {
                        message: e.to_string(),
                    },
                )
            }
        };
        recorder
            .step(&StepRecord {
                resource_id: resource.to_owned(),
                step: StepKind::Unshare,
                place: format!("{}/{region}", plan.source_account),
                started_at,
                ended_at: crate::runtime::clock::utc_now(),
                outcome,
                detail,
            })
            .await;
    }
    messages
}

/// Copies the interrupted attempt made into places the policy no longer has: their
/// credentials left with the target, so they can only be named.
fn copies_in_removed_places(plan: &Plan, progress: &SessionProgress) -> Vec<String> {
    let mut messages = Vec::new();
    // The places the plan copies into: each target, for RDS across accounts each target
    // account in each source Region (the intermediate copy), and the source account in each
    // source Region (the default-key workaround's copy under the re-encrypt key).
    let mut places: HashSet<String> = plan
        .tasks
        .iter()
        .map(|task| format!("{}/{}", plan.source_account, task.region))
        .collect();
    for t in &plan.targets {
        places.insert(format!("{}/{}", t.account, t.region));
        for task in &plan.tasks {
            places.insert(format!("{}/{}", t.account, task.region));
        }
    }
    let mut gone: BTreeSet<(&str, &str)> = BTreeSet::new();
    for s in progress.steps.iter().filter(|s| s.step == StepKind::Copy) {
        if !places.contains(&s.place) {
            gone.insert((s.resource_id.as_str(), s.place.as_str()));
        }
    }
    for (resource, place) in gone {
        messages.push(format!(
            "{resource}: the interrupted session copied into {place}, which the policy no longer \
             has; those copies are in no restore point. Put the target back and run \
             `snaprelay gc`, or delete them there (they carry snaprelay:session = {})",
            progress.session_id
        ));
    }
    messages
}
