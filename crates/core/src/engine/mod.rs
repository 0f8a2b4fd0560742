//! A session: the planned tasks run with bounded concurrency, each step and restore point
//! recorded in the state store, and the session's report assembled at the end.

mod resume;

use std::future::Future;
use std::sync::Mutex;

use futures_util::StreamExt;
use futures_util::future::join_all;
use futures_util::stream::FuturesUnordered;

use resume::Resumed;

pub use crate::plan::prepare::{PrepareError, Prepared, prepare, target_access};
pub use crate::runtime::{
    ChangeHook, CopySlots, EngineConfig, Interrupt, InterruptHandle, Interrupted, Progress, Record,
    Service, Throttled, Urgency, Watcher,
};

use crate::ids::AccountId;
use crate::model::{DbInstance, Instance, Resource, ResourceType};
use crate::plan::{Decision, Plan, TaskPlan, Workflow};
use crate::ports::{Cloud, SessionId, StateStore, StepId, StoreError};
use crate::report::{
    PlaceReport, ResourceReport, RestorePoint, SessionProgress, SessionReport, StepDetail,
    StepKind, StepOutcome, StepRecord,
};
use crate::runtime::clock::{new_session_id, utc_now};
use crate::status::Status;
use crate::workflows::{self, Planned, TargetOutcome, TaskContext, TaskError};

/// Records steps and restore points as they happen. A store error does not stop the tasks
/// under way (their AWS work must still be finished and cleaned up); it fails the session.
pub struct Recorder<'a> {
    session_id: SessionId,
    store: &'a dyn StateStore,
    fence: Option<crate::ports::Fence>,
    progress: &'a dyn Progress,
    failure: Mutex<Option<StoreError>>,
}

impl Recorder<'_> {
    async fn task(&self, report: &ResourceReport) {
        if self.may_write().await {
            let result = self.store.record_task(&self.session_id, report).await;
            self.kept(result);
        }
    }

    /// Whether a write of this session has failed.
    fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Whether this session may still write: not once a write failed (the session ends with
    /// that error and is resumed from what was recorded), nor once its lease is no longer
    /// held (another worker took the session over and is writing it).
    async fn may_write(&self) -> bool {
        if self.failed() {
            return false;
        }
        let Some(fence) = &self.fence else {
            return true;
        };
        match self.store.lease_is(fence).await {
            Ok(true) => true,
            Ok(false) => {
                self.kept::<()>(Err(StoreError(format!(
                    "the lease of policy {} (generation {}) is no longer held by {}: another \
                     worker took the session over; this one records and changes nothing more",
                    fence.policy, fence.generation, fence.holder
                ))));
                false
            }
            Err(e) => {
                self.kept::<()>(Err(e));
                false
            }
        }
    }

    /// The value of one write to the store; a failure is kept for the session's end (the
    /// tasks under way go on) and `None` is returned.
    fn kept<T>(&self, result: Result<T, StoreError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(error = %e, "could not record in the state store");
                let mut slot = self.failure.lock().unwrap_or_else(|p| p.into_inner());
                slot.get_or_insert(e);
                None
            }
        }
    }
}

#[async_trait::async_trait]
impl Record for Recorder<'_> {
    async fn step(&self, step: &StepRecord) {
        if self.may_write().await {
            let result = self.store.record_step(&self.session_id, step).await;
            self.kept(result);
        }
        self.progress.step(step);
    }

    async fn begin_step(&self, step: &StepRecord) -> Option<StepId> {
        if self.failed() {
            return None;
        }
        // The fenced write checks the lease in the same statement: no gap before the change.
        let result = match &self.fence {
            Some(fence) => {
                self.store
                    .begin_step_fenced(&self.session_id, step, fence)
                    .await
            }
            None => self.store.begin_step(&self.session_id, step).await,
        };
        self.kept(result)
    }

    async fn end_step(&self, begun: Option<StepId>, step: &StepRecord) {
        let Some(id) = begun else {
            return self.step(step).await;
        };
        if self.may_write().await {
            let result = self.store.end_step(id, step).await;
            self.kept(result);
        }
        self.progress.step(step);
    }

    async fn restore_point(&self, point: &RestorePoint) {
        if self.may_write().await {
            let result = self
                .store
                .record_restore_point(&self.session_id, point)
                .await;
            self.kept(result);
        }
    }

    fn progress(&self, resource: &str, message: &str) {
        tracing::info!(resource, "{message}");
        self.progress.update(resource, message);
    }
}

/// Runs one session of a prepared plan and returns its report, recorded in the store.
///
/// With `resume`, the session is an interrupted one taken up again (after a crash or
/// `kill -9`): its ended tasks keep their reports, the tasks it had started look in AWS for
/// what they had done before doing anything (tags and deterministic names find it), and the
/// others start afresh.
pub async fn run_session(
    cloud: &dyn Cloud,
    store: &dyn StateStore,
    progress: &dyn Progress,
    config: &EngineConfig,
    interrupt: &Interrupt,
    prepared: &Prepared,
    resume: Option<&SessionProgress>,
) -> Result<SessionReport, StoreError> {
    let plan = &prepared.plan;
    let (session_id, started_at) =
        open_session(store, &plan.policy, resume, config.session_id.as_ref()).await?;
    let recorder = Recorder {
        session_id: session_id.clone(),
        store,
        fence: config.fence.clone(),
        progress,
        failure: Mutex::new(None),
    };
    if resume.is_some() {
        mark_resume(&recorder).await;
    }
    let mut resources = run_tasks(cloud, &recorder, config, interrupt, prepared, resume).await;
    let mut messages = plan.messages.clone();
    if let Some(p) = resume {
        let resumed = Resumed::of(resume);
        messages.extend(resumed.left_out(plan, p, &mut resources));
        messages.extend(resume::leftovers(cloud, &recorder, prepared, p).await);
    }
    let report = SessionReport {
        session_id,
        policy: plan.policy.clone(),
        status: session_status(&resources, &mut messages, interrupt),
        started_at,
        ended_at: utc_now(),
        source_account: plan.source_account.to_string(),
        resources,
        messages,
    };
    let Recorder { failure, .. } = recorder;
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    store.finish_session(&report).await?;
    Ok(report)
}

/// Records a new session, or takes up the interrupted one: its id and start time.
async fn open_session(
    store: &dyn StateStore,
    policy: &str,
    resume: Option<&SessionProgress>,
    new_id: Option<&SessionId>,
) -> Result<(SessionId, String), StoreError> {
    match resume {
        Some(p) => {
            store.resume_session(&p.session_id).await?;
            Ok((p.session_id.clone(), p.started_at.clone()))
        }
        None => {
            let id = new_id
                .cloned()
                .unwrap_or_else(|| SessionId::new(new_session_id()));
            let at = utc_now();
            store.begin_session(&id, policy, &at).await?;
            Ok((id, at))
        }
    }
}

/// Marks, among the session's steps, where this attempt began.
async fn mark_resume(recorder: &Recorder<'_>) {
    let now = utc_now();
    recorder
        .step(&StepRecord {
            resource_id: String::new(),
            step: StepKind::Resume,
            place: String::new(),
            started_at: now.clone(),
            ended_at: now,
            outcome: StepOutcome::Ok,
            detail: StepDetail::Resumed {
                process: std::process::id(),
            },
        })
        .await;
}

/// Every task of the plan, in waves of `config.concurrency`, with the session's watchers
/// polling for all of them until the last is done; the reports in the plan's order. A task a
/// resumed session had ended keeps its report.
async fn run_tasks(
    cloud: &dyn Cloud,
    recorder: &Recorder<'_>,
    config: &EngineConfig,
    interrupt: &Interrupt,
    prepared: &Prepared,
    resume: Option<&SessionProgress>,
) -> Vec<ResourceReport> {
    let plan = &prepared.plan;
    let resumed = Resumed::of(resume);
    let ended = std::sync::atomic::AtomicUsize::new(0);
    let slots = CopySlots::watched_with_aurora(
        config.ebs_copy_slots,
        config.rds_copy_slots,
        config.aurora_copy_slots,
        config.copy_watch.clone(),
    );
    let ebs_watch = Watcher::new(cloud, config);
    let rds_watch = Watcher::new(cloud, config);
    let aurora_watch = Watcher::new(cloud, config);

    let start = |i: usize| {
        let task = &plan.tasks[i];
        let ctx = TaskContext {
            cloud,
            recorder,
            config,
            slots: &slots,
            ebs_watch: &ebs_watch,
            rds_watch: &rds_watch,
            aurora_watch: &aurora_watch,
            interrupt,
            session_id: recorder.session_id.as_str(),
            policy: &plan.policy,
            source_account: &plan.source_account,
            source_access: &prepared.source_access,
            resource: &task.resource,
            resumed: resumed.points_of(&task.id),
        };
        let done = resumed.done(&task.id);
        let ended = &ended;
        async move {
            let report = match done {
                Some(report) => report.clone(),
                None => {
                    let report = run_task(ctx, plan, task).await;
                    recorder.task(&report).await;
                    report
                }
            };
            let n = ended.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            recorder.progress.task_ended(&report, n, plan.tasks.len());
            (i, report)
        }
    };
    let tasks = in_waves(interleaved(&plan.tasks), config.concurrency, start);
    // The watchers poll for every task until the last task is done.
    let mut resources = tokio::select! {
        done = tasks => done,
        never = ebs_watch.run(recorder) => match never {},
        never = rds_watch.run(recorder) => match never {},
        never = aurora_watch.run(recorder) => match never {},
    };
    resources.sort_by_key(|(i, _)| *i);
    resources.into_iter().map(|(_, r)| r).collect()
}

/// The session's status: its worst task, at least `Warning` when the session has something
/// to say, `Failed` when it was interrupted (which it then says).
fn session_status(
    resources: &[ResourceReport],
    messages: &mut Vec<String>,
    interrupt: &Interrupt,
) -> Status {
    let mut status = Status::worst(resources.iter().map(|r| r.status));
    if !messages.is_empty() {
        status = status.max(Status::Warning);
    }
    if interrupt.is_raised() {
        status = Status::Failed;
        messages.push(format!(
            "{Interrupted} (SIGINT/SIGTERM): no new work was started, shares were removed and \
             unfinished restore points deleted where AWS allowed; each resource says what is left"
        ));
    }
    status
}

/// The order tasks are started in: the resources of each (type, Region) spread evenly over the
/// session, so that EC2 and RDS copies (which have quotas of their own) and each source
/// Region progress side by side instead of one after the other; within a group the largest
/// first, so that the session does not end waiting for one big copy started last.
fn interleaved(tasks: &[TaskPlan]) -> Vec<usize> {
    let mut groups: Vec<((ResourceType, &str), Vec<usize>)> = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        let key = (t.resource_type, t.region.as_str());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    for (_, members) in &mut groups {
        // A stable sort: equal sizes keep the plan's order.
        members.sort_by_key(|&i| std::cmp::Reverse(size_gib(&tasks[i].resource)));
    }
    // Each task's place in the session: its rank within its group scaled to the group's size.
    let mut order: Vec<(f64, usize)> = groups
        .iter()
        .flat_map(|(_, members)| {
            let n = members.len() as f64;
            members
                .iter()
                .enumerate()
                .map(move |(rank, &i)| ((rank as f64 + 0.5) / n, i))
        })
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    order.into_iter().map(|(_, i)| i).collect()
}

/// Runs `start(i)` for every index, at most `concurrency` at once. Freed places are refilled
/// in waves (once a quarter of them are free) rather than one by one: the source snapshots
/// of a wave are taken together and end close together, so the watcher sees them end in a
/// few polls instead of one poll each.
async fn in_waves<F, T>(order: Vec<usize>, concurrency: usize, start: impl Fn(usize) -> F) -> Vec<T>
where
    F: Future<Output = T>,
{
    let concurrency = concurrency.max(1);
    let refill_below = concurrency - (concurrency / 4).max(1);
    let mut waiting = order.into_iter();
    let mut running = FuturesUnordered::new();
    let mut done = Vec::new();
    loop {
        if running.len() <= refill_below {
            for i in waiting.by_ref().take(concurrency - running.len()) {
                running.push(start(i));
            }
        }
        match running.next().await {
            Some(result) => done.push(result),
            None => return done,
        }
    }
}

/// The data a resource's snapshots carry, as far as the inventory knows.
fn size_gib(resource: &Resource) -> i64 {
    match resource {
        Resource::Ec2(i) => i.volumes.iter().map(|v| i64::from(v.size_gib)).sum(),
        Resource::Rds(db) => db.size_gib.unwrap_or(0),
        Resource::Aurora(c) => c.db.size_gib.unwrap_or(0),
    }
}

/// One resource: its source snapshot(s), then every target's workflow, side by side.
async fn run_task(ctx: TaskContext<'_>, plan: &Plan, task: &TaskPlan) -> ResourceReport {
    let mut report = ResourceReport {
        resource_type: task.resource_type,
        id: task.id.clone(),
        region: task.region.clone(),
        status: Status::Success,
        messages: Vec::new(),
        source: None,
        replicas: Vec::new(),
    };
    let mut outcomes: Vec<TargetOutcome> = Vec::new();
    let mut replicate: Vec<Planned<'_>> = Vec::new();
    for t in &task.targets {
        match &t.decision {
            Decision::Replicate {
                workflow,
                kms_key_id,
                staging_kms_key_id,
                two_step,
                single_step,
                reencrypt,
                ..
            } => replicate.push(Planned {
                target: &plan.targets[t.target],
                workflow: *workflow,
                kms_key_id: kms_key_id.as_deref(),
                staging_kms_key_id: staging_kms_key_id.as_deref(),
                two_step: *two_step,
                single_step: *single_step,
                reencrypt: reencrypt.as_ref(),
            }),
            Decision::Skip { reason } | Decision::Refuse { reason } => {
                outcomes.push(TargetOutcome {
                    target: t.target,
                    status: t.decision.status(),
                    messages: vec![reason.clone()],
                    replica: None,
                })
            }
        }
    }

    if task.take_snapshot && ctx.interrupt.is_raised() {
        report.status = Status::Failed;
        report.messages.push(format!(
            "{Interrupted}: {} {} was not started",
            task.resource_type, task.id
        ));
        return report;
    }
    if task.take_snapshot {
        let done = match &task.resource {
            Resource::Ec2(instance) => replicate_ec2(&ctx, plan, instance, &replicate).await,
            Resource::Rds(db) => replicate_rds(&ctx, plan, db, &replicate).await,
            // The same workflows, with DB cluster snapshots (workflows/rds/api.rs).
            Resource::Aurora(cluster) => replicate_rds(&ctx, plan, &cluster.db, &replicate).await,
        };
        match done {
            Err(error) => {
                report.status = Status::Failed;
                report.messages.push(error.to_string());
                report
                    .messages
                    .extend(outcomes.into_iter().flat_map(|o| o.messages));
                return report;
            }
            Ok((source, replicas)) => {
                report.source = Some(source);
                outcomes.extend(replicas);
            }
        }
    }

    // A replica made with a planned warning (unencrypted, a key of another account) says so.
    for o in &mut outcomes {
        let planned = task.targets.iter().find(|t| t.target == o.target);
        if let Some(Decision::Replicate { warnings, .. }) = planned.map(|t| &t.decision)
            && o.status == Status::Success
            && !warnings.is_empty()
        {
            o.status = Status::Warning;
            o.messages.extend(warnings.iter().cloned());
        }
    }
    outcomes.sort_by_key(|o| o.target);
    report.status = Status::worst(outcomes.iter().map(|o| o.status));
    for o in outcomes {
        for m in o.messages {
            // The same remark for several targets (an Aurora member, say) is said once.
            if !report.messages.contains(&m) {
                report.messages.push(m);
            }
        }
        report.replicas.extend(o.replica);
    }
    report
}

/// The source restore point and the outcome of each target that gets a replica.
type Replicated = Result<(PlaceReport, Vec<TargetOutcome>), TaskError>;

async fn replicate_ec2(
    ctx: &TaskContext<'_>,
    plan: &Plan,
    instance: &Instance,
    replicate: &[Planned<'_>],
) -> Replicated {
    use workflows::ec2::{cross_account, reencrypt, same_account, source};
    let source = source::take_snapshots(ctx, instance).await?;
    let source_ref = &source;
    // The default-key workaround: the cross-account targets share copies under the
    // re-encrypt key instead of the snapshots under aws/ebs (the same for every such target).
    let (shared, extra) = match replicate.iter().find_map(|p| p.reencrypt) {
        // Resumed with every cross-account replica recorded: nothing to copy or share; the
        // shares of the extra copies the interrupted attempt left are removed, and the copies
        // deleted below.
        Some(r) if every_cross_account_replica_recorded(ctx, replicate) => {
            match reencrypt::left_by_the_interrupted_attempt(ctx, &source, r).await {
                Ok(left) => (Ok(left.shared), left.made),
                Err(e) => (Err(e), Vec::new()),
            }
        }
        Some(r) => match reencrypt::copies(ctx, &source, r).await {
            Ok(done) => (Ok(done.shared), done.made),
            Err((made, e)) => (Err(e), made),
        },
        None => (Ok(source.clone()), Vec::new()),
    };
    let shared_ref = &shared;
    // Workflow B shares once per target account, however many Regions it has there.
    let mut outcomes = fan_out(
        replicate,
        Workflow::CrossAccountEc2,
        |p| same_account::replicate(ctx, source_ref, p),
        |account, group| async move {
            match shared_ref {
                Ok(shared) => cross_account::replicate(ctx, shared, account, &group).await,
                Err(e) => group
                    .iter()
                    .map(|p| TargetOutcome::failed(p.target.index, e))
                    .collect(),
            }
        },
    )
    .await;
    // The extra copies go once every target has copied them (an interrupted session leaves
    // them to its resume, which takes them up, or to gc).
    if !extra.is_empty() && !ctx.interrupt.is_raised() {
        let left = reencrypt::discard(ctx, &extra).await;
        fail_reencrypted(&mut outcomes, replicate, &left);
    }
    let place = PlaceReport {
        account: plan.source_account.to_string(),
        region: instance.region.clone(),
        snapshots: source.iter().map(source::SourceSnapshot::report).collect(),
    };
    Ok((place, outcomes))
}

async fn replicate_rds(
    ctx: &TaskContext<'_>,
    plan: &Plan,
    db: &DbInstance,
    replicate: &[Planned<'_>],
) -> Replicated {
    use workflows::rds::{cross_account, reencrypt, same_account, source};
    let source = source::take_snapshot(ctx, db).await?;
    let source_ref = &source;
    // The default-key workaround: the cross-account targets share a copy under the re-encrypt
    // key instead of the snapshot under aws/rds (resumed with every such replica recorded,
    // only the copy an interrupted attempt may have left is deleted below).
    let reencrypt = replicate.iter().find_map(|p| p.reencrypt);
    let shared = match reencrypt {
        Some(r) if !every_cross_account_replica_recorded(ctx, replicate) => {
            reencrypt::copy(ctx, &source, r).await
        }
        _ => Ok(source.clone()),
    };
    let shared_ref = &shared;
    // Workflow C shares once per target account, however many Regions it has there.
    let mut outcomes = fan_out(
        replicate,
        Workflow::CrossAccountRds,
        |p| same_account::replicate(ctx, source_ref, p),
        |account, group| async move {
            match shared_ref {
                Ok(shared) => cross_account::replicate(ctx, shared, account, &group).await,
                Err(e) => group
                    .iter()
                    .map(|p| TargetOutcome::failed(p.target.index, e))
                    .collect(),
            }
        },
    )
    .await;
    if reencrypt.is_some() && !ctx.interrupt.is_raised() {
        let left = reencrypt::discard(ctx, &source).await;
        fail_reencrypted(&mut outcomes, replicate, &left);
    }
    let place = PlaceReport {
        account: plan.source_account.to_string(),
        region: db.region.clone(),
        snapshots: vec![source.report()],
    };
    Ok((place, outcomes))
}

/// The default-key workaround's extra copies that could not be deleted fail every target that
/// copied from them (EBS and RDS alike), saying what is left.
fn fail_reencrypted(outcomes: &mut [TargetOutcome], replicate: &[Planned<'_>], left: &[TaskError]) {
    if left.is_empty() {
        return;
    }
    for o in outcomes.iter_mut().filter(|o| {
        replicate
            .iter()
            .any(|p| p.target.index == o.target && p.reencrypt.is_some())
    }) {
        o.status = Status::Failed;
        o.messages.extend(left.iter().map(ToString::to_string));
    }
}

/// Resuming: whether every cross-account replica of the task is recorded already (then no
/// extra copy is needed to share).
fn every_cross_account_replica_recorded(ctx: &TaskContext<'_>, replicate: &[Planned<'_>]) -> bool {
    replicate
        .iter()
        .filter(|p| p.workflow != Workflow::SameAccount)
        .all(|p| {
            ctx.recorded(
                crate::model::SnapshotKind::Replica,
                p.target.account.as_str(),
                &p.target.region,
            )
            .is_some()
        })
}

/// Every planned replica of one resource, side by side: workflow A once per same-account
/// target, the cross-account workflow once per target account.
async fn fan_out<'p, 'a, A, FA, C, FC>(
    replicate: &'p [Planned<'a>],
    cross: Workflow,
    same_account: A,
    cross_account: C,
) -> Vec<TargetOutcome>
where
    A: Fn(&'p Planned<'a>) -> FA,
    FA: Future<Output = TargetOutcome>,
    C: Fn(&'a AccountId, Vec<Planned<'a>>) -> FC,
    FC: Future<Output = Vec<TargetOutcome>>,
{
    let same = join_all(
        replicate
            .iter()
            .filter(|p| p.workflow == Workflow::SameAccount)
            .map(same_account),
    );
    let others = join_all(
        by_account(replicate, cross)
            .into_iter()
            .map(|(account, group)| cross_account(account, group)),
    );
    let (same, others) = tokio::join!(same, others);
    same.into_iter()
        .chain(others.into_iter().flatten())
        .collect()
}

/// The planned replicas of one cross-account workflow, grouped by target account.
fn by_account<'p, 'a>(
    replicate: &'p [Planned<'a>],
    workflow: Workflow,
) -> Vec<(&'a AccountId, Vec<Planned<'a>>)> {
    let mut groups: Vec<(&'a AccountId, Vec<Planned<'a>>)> = Vec::new();
    for p in replicate.iter().filter(|p| p.workflow == workflow) {
        match groups.iter_mut().find(|(a, _)| *a == &p.target.account) {
            Some((_, group)) => group.push(p.clone()),
            None => groups.push((&p.target.account, vec![p.clone()])),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Instance;

    fn task(resource_type: ResourceType, region: &str, id: &str) -> TaskPlan {
        TaskPlan {
            resource_type,
            id: id.into(),
            region: region.into(),
            resource: Resource::Ec2(Instance {
                setup: Default::default(),
                id: id.into(),
                region: region.into(),
                name: None,
                volumes: vec![],
            }),
            take_snapshot: true,
            targets: vec![],
        }
    }

    #[test]
    fn tasks_of_each_type_and_region_are_spread_over_the_session() {
        let mut tasks: Vec<TaskPlan> = (0..6)
            .map(|n| task(ResourceType::Ec2, "us-east-1", &format!("i-{n}")))
            .collect();
        tasks.extend((0..2).map(|n| task(ResourceType::Rds, "us-east-1", &format!("db-{n}"))));
        tasks.push(task(ResourceType::Ec2, "us-west-2", "i-west"));
        let order: Vec<&str> = interleaved(&tasks)
            .into_iter()
            .map(|i| tasks[i].id.as_str())
            .collect();
        assert_eq!(order.len(), tasks.len());
        // The first RDS task comes long before the last EC2 one; the single west instance
        // lands in the middle; each group keeps its own order.
        let at = |id: &str| order.iter().position(|o| *o == id).unwrap();
        assert!(at("db-0") < 3, "{order:?}");
        assert!(at("db-1") < at("i-5"), "{order:?}");
        assert!((3..=5).contains(&at("i-west")), "{order:?}");
        assert!((0..5).all(|n| at(&format!("i-{n}")) < at(&format!("i-{}", n + 1))));
    }
}
