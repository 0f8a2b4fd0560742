//! `snaprelay serve` (SPEC 6.6): every policy's sessions on its schedule in its time zone,
//! drills on theirs, an HTTP JSON API under `/api/v1`, Prometheus metrics at `/metrics`, and
//! a graceful stop.
//!
//! - [`Service`] holds what the server shares: the application (cloud and state), the
//!   policies, the jobs running, the metrics. It starts sessions and drills as jobs, never two
//!   of one policy at once (the policy's lease in the store backs that across processes).
//! - `scheduler`: one loop per scheduled policy (and per drill schedule), a catch-up run for a
//!   tick missed while the service was down, and the resume of interrupted sessions at start.
//! - `api`: the routes, the bearer-token rule and the JSON errors.
//! - `metrics`: the fixed metric names.
//!
//! A stop (SIGTERM, SIGINT) starts no new job and drops the running ones at their next await:
//! a session stops between two recorded steps (a change is recorded as begun before it is
//! made, and a wait for a copy leaves the copy to finish in AWS, recorded in flight), so it is
//! `Interrupted`, and the next start resumes it, exactly as after a crash.

pub mod api;
mod console;
pub mod metrics;
mod policies;
mod scheduler;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use snaprelay_core::app::{App, DrillOptions, ErrorKind, RunRequest, drill, run_policy};
use snaprelay_core::engine::{EngineConfig, Interrupt, Progress};
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::{Call, CloudError, Layer, SessionId};
use snaprelay_core::restore::new_drill_id;
use snaprelay_core::runtime::clock::new_session_id;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use metrics::Metrics;
pub use policies::load_policies;

/// How `serve` is set up.
#[derive(Clone, Debug)]
pub struct Options {
    /// A policy file, or a directory of `*.toml` policies.
    pub policies: PathBuf,
    pub listen: SocketAddr,
    /// The bearer token; `None`: no token (only allowed on a loopback address).
    pub token: Option<String>,
    pub engine: EngineConfig,
    /// How often drills look at what they restore.
    pub drill_poll: Duration,
}

/// What runs for a policy now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    Session,
    Drill,
}

struct Job {
    kind: JobKind,
    id: String,
    /// When it was started here (RFC 3339).
    started_at: String,
    handle: Option<JoinHandle<()>>,
}

/// Why a job was not started.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    UnknownPolicy,
    /// A session or drill of the policy runs (here, or in another process).
    Busy(String),
    ShuttingDown,
    /// The state store does not answer.
    StoreDown(String),
}

impl Refusal {
    /// The HTTP status and the message of the refusal, for the API and the console alike.
    pub fn explain(self, policy: &str) -> (axum::http::StatusCode, String) {
        use axum::http::StatusCode;
        match self {
            Refusal::UnknownPolicy => (StatusCode::NOT_FOUND, format!("no policy named {policy}")),
            Refusal::Busy(why) => (StatusCode::CONFLICT, why),
            Refusal::ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is stopping: no new session or drill starts".to_owned(),
            ),
            Refusal::StoreDown(why) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the state store does not answer, so nothing starts: {why}"),
            ),
        }
    }
}

/// What the server shares between its tasks and handlers.
pub struct Service {
    pub app: App,
    policies: RwLock<BTreeMap<String, Policy>>,
    path: PathBuf,
    jobs: Mutex<HashMap<String, Job>>,
    pub metrics: Arc<Metrics>,
    stopping: watch::Sender<bool>,
    /// Bumped on every reload: the schedulers of the old policies end.
    generation: watch::Sender<u64>,
    pub token: Option<String>,
    /// Whether the server listens on a loopback address only (reads need no token there).
    pub loopback: bool,
    engine: EngineConfig,
    drill_poll: Duration,
    /// The console's signed-in sessions: cookie value → CSRF token.
    console: Mutex<HashMap<String, String>>,
    /// The CSRF token of the console's forms when no API token is set.
    anonymous_csrf: String,
    /// Policies whose last session here stopped on an error: when the takeover may resume
    /// them again, and how many times in a row they stopped (the backoff doubles).
    retry_after: Mutex<HashMap<String, (tokio::time::Instant, u32)>>,
}

impl Service {
    /// The service over `app` (whose cloud should count its calls through [`counting`]).
    pub fn new(
        app: App,
        policies: Vec<Policy>,
        options: &Options,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let copies = Arc::new(metrics::CopiesInFlight(metrics.clone()));
        Arc::new(Self {
            app,
            policies: RwLock::new(policies.into_iter().map(|p| (p.name.clone(), p)).collect()),
            path: options.policies.clone(),
            jobs: Mutex::default(),
            metrics,
            stopping: watch::channel(false).0,
            generation: watch::channel(0).0,
            token: options.token.clone(),
            loopback: options.listen.ip().is_loopback(),
            engine: EngineConfig {
                copy_watch: Some(copies),
                ..options.engine.clone()
            },
            drill_poll: options.drill_poll,
            console: Mutex::default(),
            anonymous_csrf: console::random_token(),
            retry_after: Mutex::default(),
        })
    }

    /// The policies, by name.
    pub fn policies(&self) -> Vec<Policy> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    pub fn policy(&self, name: &str) -> Option<Policy> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// What runs for `policy` in this process: its kind and id.
    pub fn running(&self, policy: &str) -> Option<(JobKind, String)> {
        self.jobs()
            .get(policy)
            .map(|j| (j.kind.clone(), j.id.clone()))
    }

    /// The statuses of `sessions` as people should read them: an unfinished session whose
    /// policy's lease is free is `Interrupted`, unless this process runs it (`Running`).
    pub async fn session_statuses(
        &self,
        sessions: &mut [snaprelay_core::report::SessionSummary],
    ) -> Result<(), snaprelay_core::ports::StoreError> {
        snaprelay_core::app::mark_interrupted(self.app.store.as_ref(), sessions).await?;
        for s in sessions
            .iter_mut()
            .filter(|s| s.status == snaprelay_core::app::INTERRUPTED)
        {
            if self
                .running(&s.policy)
                .is_some_and(|(_, id)| id == s.session_id.as_str())
            {
                s.status = "Running".into();
            }
        }
        Ok(())
    }

    /// A session this process started that the state may not show yet (it is recorded as
    /// its first step): its policy and start time.
    pub fn starting_session(&self, id: &str) -> Option<(String, String)> {
        self.jobs()
            .iter()
            .find(|(_, j)| j.kind == JobKind::Session && j.id == id)
            .map(|(policy, j)| (policy.clone(), j.started_at.clone()))
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Reserves the policy for a job, or says why not.
    async fn reserve(&self, policy: &str, kind: JobKind, id: &str) -> Result<Policy, Refusal> {
        if self.is_stopping() {
            return Err(Refusal::ShuttingDown);
        }
        let p = self.policy(policy).ok_or(Refusal::UnknownPolicy)?;
        // Another process (a CLI run, another worker) holding the lease. A store that does
        // not answer starts nothing: nothing could be recorded.
        let held = match self.running(policy) {
            Some(_) => false,
            None => self
                .app
                .store
                .lease_held(policy)
                .await
                .map_err(|e| Refusal::StoreDown(e.0))?,
        };
        if held {
            return Err(Refusal::Busy(format!(
                "a session or drill of policy {policy} runs in another process"
            )));
        }
        let mut jobs = self.jobs();
        if let Some(j) = jobs.get(policy) {
            return Err(Refusal::Busy(format!(
                "{} {} of policy {policy} is running",
                match j.kind {
                    JobKind::Session => "session",
                    JobKind::Drill => "drill",
                },
                j.id
            )));
        }
        jobs.insert(
            policy.to_owned(),
            Job {
                kind,
                id: id.to_owned(),
                started_at: snaprelay_core::runtime::clock::utc_now(),
                handle: None,
            },
        );
        Ok(p)
    }

    fn attach(&self, policy: &str, handle: JoinHandle<()>) {
        if let Some(j) = self.jobs().get_mut(policy) {
            j.handle = Some(handle);
        }
    }

    fn release(&self, policy: &str) {
        self.jobs().remove(policy);
        self.metrics.leases_held.set(self.jobs().len() as i64);
    }

    /// Starts a session of `policy` (resuming its interrupted one, if any); its id.
    pub async fn start_session(self: &Arc<Self>, policy: &str) -> Result<SessionId, Refusal> {
        // The id is known before the session begins: the interrupted session it resumes, or
        // a new one.
        let resumed = self
            .app
            .store
            .unfinished_sessions(Some(policy))
            .await
            .ok()
            .and_then(|u| u.into_iter().next());
        let id = resumed
            .map(|u| u.id)
            .unwrap_or_else(|| SessionId::new(new_session_id()));
        let p = self.reserve(policy, JobKind::Session, id.as_str()).await?;
        self.metrics.leases_held.set(self.jobs().len() as i64);
        let me = self.clone();
        let session_id = id.clone();
        let handle = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let request = RunRequest {
                engine: EngineConfig {
                    session_id: Some(session_id.clone()),
                    ..me.engine.clone()
                },
                now: jiff::Timestamp::now().as_second().max(0) as u64,
                ..RunRequest::default()
            };
            let outcome = run_policy(&me.app, &p, &request, &Logged, &Interrupt::never()).await;
            let status = match &outcome {
                Ok(done) => done.status().as_str().to_owned(),
                // The lease was lost, or the state stopped answering: the session stopped
                // where it stood, recorded, and whoever holds the lease next resumes it.
                Err(e) if matches!(e.kind, ErrorKind::Conflict | ErrorKind::State) => {
                    tracing::warn!(policy = %p.name, session = %session_id, "session stopped: {}", e.message);
                    snaprelay_core::app::INTERRUPTED.to_owned()
                }
                Err(e) => {
                    tracing::warn!(policy = %p.name, session = %session_id, "session did not run: {}", e.message);
                    "Failed".to_owned()
                }
            };
            let labels = metrics::PolicyLabel {
                policy: p.name.clone(),
            };
            me.metrics
                .sessions
                .get_or_create(&metrics::PolicyStatus {
                    policy: p.name.clone(),
                    status: status.clone(),
                })
                .inc();
            me.metrics
                .session_duration
                .get_or_create(&labels)
                .observe(started.elapsed().as_secs_f64());
            tracing::info!(policy = %p.name, session = %session_id, status, "session ended");
            me.stopped_on_error(&p.name, outcome.is_err());
            me.release(&p.name);
        });
        self.attach(policy, handle);
        tracing::info!(policy, session = %id, "session started");
        Ok(id)
    }

    /// Notes how the last session of `policy` here ended, for the takeover's backoff.
    fn stopped_on_error(&self, policy: &str, error: bool) {
        let mut retry = self.retry_after.lock().unwrap_or_else(|p| p.into_inner());
        if !error {
            retry.remove(policy);
            return;
        }
        let times = retry.get(policy).map_or(0, |(_, n)| *n) + 1;
        let wait = (self.app.lease_ttl / 3).max(Duration::from_secs(1)) * 2u32.pow(times.min(8));
        let wait = wait.min(Duration::from_secs(300));
        retry.insert(
            policy.to_owned(),
            (tokio::time::Instant::now() + wait, times),
        );
    }

    /// Whether the takeover may resume a session of `policy` now (see
    /// [`Service::stopped_on_error`]).
    fn may_retry(&self, policy: &str) -> bool {
        self.retry_after
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(policy)
            .is_none_or(|(at, _)| tokio::time::Instant::now() >= *at)
    }

    /// Starts a drill of `policy`; its id.
    pub async fn start_drill(self: &Arc<Self>, policy: &str) -> Result<String, Refusal> {
        let id = new_drill_id();
        let p = self.reserve(policy, JobKind::Drill, &id).await?;
        self.metrics.leases_held.set(self.jobs().len() as i64);
        let me = self.clone();
        let drill_id = id.clone();
        let handle = tokio::spawn(async move {
            let options = DrillOptions {
                id: Some(drill_id.clone()),
                ..DrillOptions::default()
            };
            let quiet = |line: &str| tracing::debug!(drill = %drill_id, "{line}");
            match drill(&me.app, &p, &options, me.drill_poll, &quiet).await {
                Ok(report) => {
                    tracing::info!(policy = %p.name, drill = %drill_id, status = report.status.as_str(), "drill ended")
                }
                Err(e) => {
                    tracing::warn!(policy = %p.name, drill = %drill_id, "drill did not run: {}", e.message)
                }
            }
            me.release(&p.name);
        });
        self.attach(policy, handle);
        Ok(id)
    }

    /// Re-reads the policies; a bad file keeps the old version (and is reported).
    pub fn reload(self: &Arc<Self>) -> Result<usize, String> {
        let loaded = load_policies(&self.path)?;
        let n = loaded.len();
        *self.policies.write().unwrap_or_else(|p| p.into_inner()) =
            loaded.into_iter().map(|p| (p.name.clone(), p)).collect();
        self.generation.send_modify(|g| *g += 1);
        scheduler::start(self.clone());
        Ok(n)
    }

    /// No new job; the running ones are dropped where they stand (recorded as begun, they
    /// are resumed at the next start).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
        let jobs: Vec<(String, Job)> = self.jobs().drain().collect();
        for (policy, job) in jobs {
            if let Some(h) = &job.handle {
                h.abort();
            }
            if job.kind == JobKind::Session {
                self.metrics
                    .sessions
                    .get_or_create(&metrics::PolicyStatus {
                        policy: policy.clone(),
                        status: snaprelay_core::app::INTERRUPTED.to_owned(),
                    })
                    .inc();
            }
            tracing::info!(
                policy,
                id = job.id,
                "interrupted by the stop; the next start resumes it"
            );
        }
        self.metrics.leases_held.set(0);
    }

    /// After [`Service::stop`]: gives up the leases of the jobs it dropped, so that another
    /// worker resumes their sessions now rather than after the lease TTL.
    pub async fn release_leases(&self) {
        if let Err(e) = self.app.store.release_leases_of(&self.app.holder).await {
            tracing::warn!("the leases were not released (they lapse after their TTL): {e}");
        }
    }

    /// Waits until [`Service::stop`] is called.
    pub async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// Session progress goes to the log (debug), not to a terminal.
struct Logged;

impl Progress for Logged {
    fn update(&self, resource: &str, message: &str) {
        tracing::debug!(resource, "{message}");
    }
}

/// The layer that counts every call to AWS for `snaprelay_aws_calls_total`.
pub struct Counting(pub Arc<Metrics>);

impl Layer for Counting {
    fn around<T, F, Fut>(
        &self,
        call: Call<'_>,
        make: F,
    ) -> impl std::future::Future<Output = Result<T, CloudError>> + Send
    where
        T: Send,
        F: Fn() -> Fut + Send + Sync,
        Fut: std::future::Future<Output = Result<T, CloudError>> + Send,
    {
        let metrics = self.0.clone();
        let (service, operation) = (call.service, call.operation);
        async move {
            let result = make().await;
            let outcome = match &result {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.code.clone().unwrap_or_else(|| "error".to_owned()),
            };
            metrics
                .aws_calls
                .get_or_create(&metrics::Call {
                    service: service.to_owned(),
                    operation: operation.to_owned(),
                    outcome,
                })
                .inc();
            result
        }
    }
}

/// Runs the service until it is stopped: the schedulers, the resume of interrupted sessions
/// and missed ticks, the HTTP server on `listener`.
pub async fn run(service: Arc<Service>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    scheduler::start(service.clone());
    scheduler::catch_up(service.clone()).await;
    tokio::spawn(scheduler::take_over(service.clone()));
    let router = api::router(service.clone());
    let stop = service.clone();
    axum::serve(listener, router)
        .with_graceful_shutdown(async move { stop.stopped().await })
        .await
}
