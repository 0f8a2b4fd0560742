//! The schedules: one loop per policy with a `schedule` (sessions) and per `[drill]
//! schedule` (drills). A tick that comes while a job of the policy runs is skipped and
//! counted. At start, interrupted sessions are resumed and each policy whose last session is
//! older than its last tick runs once (a policy new to the state has no missed tick).
//! While the service runs on a shared database, [`take_over`] resumes the sessions of workers
//! that died: an unfinished session whose policy's lease nobody holds (SPEC 6.7).

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use snaprelay_core::policy::Policy;
use snaprelay_core::schedule::Schedule;

use crate::metrics::PolicyLabel;
use crate::{Refusal, Service};

/// Starts the loops of the current policies; loops of an earlier generation end by
/// themselves.
pub fn start(service: Arc<Service>) {
    let generation = *service.generation.borrow();
    for policy in service.policies() {
        if let Some(s) = policy.schedule.clone() {
            tokio::spawn(tick_loop(
                service.clone(),
                policy.clone(),
                s,
                generation,
                false,
            ));
        }
        if let Some(s) = policy.drill_schedule.clone() {
            tokio::spawn(tick_loop(
                service.clone(),
                policy.clone(),
                s,
                generation,
                true,
            ));
        }
    }
}

async fn tick_loop(
    service: Arc<Service>,
    policy: Policy,
    schedule: Schedule,
    generation: u64,
    drills: bool,
) {
    let mut reload = service.generation.subscribe();
    let mut stopping = service.stopping.subscribe();
    let labels = PolicyLabel {
        policy: policy.name.clone(),
    };
    loop {
        let now = Timestamp::now();
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!(policy = %policy.name, "schedule {:?} never comes again", schedule.expression);
            return;
        };
        if !drills {
            service
                .metrics
                .next_run
                .get_or_create(&labels)
                .set(next.as_millisecond() as f64 / 1000.0);
        }
        let wait = Duration::try_from(next.duration_since(now)).unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = reload.wait_for(|g| *g != generation) => return,
            _ = stopping.wait_for(|s| *s) => return,
        }
        // One worker per tick: the first to claim it in the shared state starts it.
        let what = if drills { "drill" } else { "session" };
        let tick = next.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        match service
            .app
            .store
            .claim_tick(&policy.name, what, &tick, &service.app.holder)
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(policy = %policy.name, "tick at {tick} claimed by another worker");
                continue;
            }
            Err(e) => {
                // A store that does not answer starts nothing (it could not record it).
                tracing::warn!(policy = %policy.name, "tick at {tick} not started: {e}");
                continue;
            }
        }
        let started = if drills {
            service.start_drill(&policy.name).await.map(|_| ())
        } else {
            service.start_session(&policy.name).await.map(|_| ())
        };
        match started {
            Ok(()) => {}
            Err(Refusal::Busy(why)) => {
                tracing::info!(policy = %policy.name, "tick at {next} skipped: {why}");
                service.metrics.skipped_ticks.get_or_create(&labels).inc();
            }
            Err(Refusal::StoreDown(why)) => {
                tracing::warn!(policy = %policy.name, "tick at {next} not started: {why}");
            }
            Err(Refusal::ShuttingDown) | Err(Refusal::UnknownPolicy) => return,
        }
    }
}

/// At start: resumes each policy's interrupted session, and runs once each scheduled policy
/// whose newest session began before its newest tick.
pub async fn catch_up(service: Arc<Service>) {
    let now = Timestamp::now();
    for policy in service.policies() {
        let store = service.app.store.as_ref();
        let interrupted = store
            .unfinished_sessions(Some(&policy.name))
            .await
            .map(|u| !u.is_empty())
            .unwrap_or(false);
        let missed = match &policy.schedule {
            None => false,
            Some(s) => match store.sessions(Some(&policy.name)).await {
                Ok(sessions) => sessions
                    .first()
                    .and_then(|last| last.started_at.parse::<Timestamp>().ok())
                    .is_some_and(|last| s.last_missed(last, now).is_some()),
                Err(_) => false,
            },
        };
        if interrupted || missed {
            let why = if interrupted {
                "resuming its interrupted session"
            } else {
                "a tick was missed while the service was down"
            };
            match service.start_session(&policy.name).await {
                Ok(id) => tracing::info!(policy = %policy.name, session = %id, "{why}"),
                Err(e) => tracing::info!(policy = %policy.name, "not started ({why}): {e:?}"),
            }
        }
    }
}

/// How often [`take_over`] looks at most when the store does not answer.
const MOST_BACKOFF: Duration = Duration::from_secs(30);

/// Resumes, for as long as the service runs, each unfinished session whose policy's lease
/// nobody holds: its worker died (or lost the state) and its lease lapsed. It looks every
/// third of the lease TTL; while the state store does not answer, it starts nothing (nothing
/// could be recorded) and looks again with a doubling backoff, up to 30 s.
pub async fn take_over(service: Arc<Service>) {
    let every = (service.app.lease_ttl / 3).clamp(Duration::from_secs(1), Duration::from_secs(20));
    let mut stopping = service.stopping.subscribe();
    let mut wait = every;
    let mut answering = true;
    service.metrics.store_up.set(1);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        match sweep(&service).await {
            Ok(()) => {
                if !answering {
                    tracing::info!("the state store answers again");
                }
                answering = true;
                service.metrics.store_up.set(1);
                wait = every;
            }
            Err(e) => {
                if answering {
                    tracing::warn!(
                        "the state store does not answer; no work starts until it does: {e}"
                    );
                }
                answering = false;
                service.metrics.store_up.set(0);
                wait = (wait * 2).min(MOST_BACKOFF);
            }
        }
    }
}

/// One look: resumes the sessions whose holder's lease lapsed. On a store whose leases are
/// file locks (SQLite), nothing is taken over while the service runs: a session interrupted
/// there was stopped by a person (Ctrl-C) or a crash of a CLI run, and is resumed by the next
/// `run` or the next start of `serve` (SPEC 6.6), not behind its owner's back.
async fn sweep(service: &Arc<Service>) -> Result<(), snaprelay_core::ports::StoreError> {
    let store = service.app.store.as_ref();
    let unfinished = store.unfinished_sessions(None).await?;
    if !store.leases_lapse() {
        return Ok(());
    }
    let mut seen = std::collections::BTreeSet::new();
    for unfinished in unfinished {
        let policy = unfinished.policy;
        if !seen.insert(policy.clone())
            || service.running(&policy).is_some()
            || service.policy(&policy).is_none()
            || !service.may_retry(&policy)
        {
            continue;
        }
        if let Some(holder) = store.lease_holder(&policy).await? {
            tracing::debug!(
                policy,
                holder = holder.holder,
                "session {} runs there",
                unfinished.id
            );
            continue;
        }
        match service.start_session(&policy).await {
            Ok(id) => {
                tracing::warn!(policy, session = %id, "taking the session over: its holder's lease lapsed (the worker died or lost the state)");
                service
                    .metrics
                    .lease_takeovers
                    .get_or_create(&PolicyLabel { policy })
                    .inc();
            }
            Err(e) => tracing::debug!(policy, "not taken over: {e:?}"),
        }
    }
    Ok(())
}
