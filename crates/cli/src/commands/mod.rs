//! One file per subcommand, and what they share: loading the policy, the cloud and the store.

pub mod check;
pub mod demo;
pub mod drill;
pub mod gc;
pub mod plan;
pub mod restore;
pub mod restore_points;
pub mod retention;
pub mod run;
pub mod serve;
pub mod sessions;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::Arc;

use snaprelay_aws::AwsCloud;
use snaprelay_core::app::{App, ErrorKind};
use snaprelay_core::engine::{ChangeHook, Interrupt, Progress};
use snaprelay_core::policy::Policy;
use snaprelay_core::ports::{Cloud, StateStore};
use snaprelay_core::report::ResourceReport;
use snaprelay_state::SqliteStore;

use crate::Outcome;

pub struct Settings {
    pub policy: Option<PathBuf>,
    pub state: Option<PathBuf>,
    pub json: bool,
    pub poll_interval: Duration,
    /// `--log-format json`: progress and steps as JSON events on stderr.
    pub json_events: bool,
    /// `--lease-ttl`: how long a policy's lease lasts unrenewed on a shared database.
    pub lease_ttl: Option<Duration>,
}

/// Reads and validates the policy named by `--policy`.
pub fn load_policy(settings: &Settings) -> Result<Policy, Outcome> {
    let Some(path) = &settings.policy else {
        return Err(Outcome::Invalid(
            "--policy FILE is required for this command",
        ));
    };
    let text = read_policy_file(path).map_err(|e| {
        Outcome::Invalid(format!(
            "cannot read the policy file {}: {e}",
            path.display()
        ))
    })?;
    let policy = Policy::from_toml(&text)
        .map_err(|e| Outcome::Invalid(format!("{}: {e}", path.display())))?;
    Ok(policy)
}

/// A policy is a few kilobytes: more than this is not a policy (`/dev/zero` would otherwise be
/// read until memory runs out).
const POLICY_MAX_BYTES: u64 = 1024 * 1024;

/// The policy file's text, refusing one over [`POLICY_MAX_BYTES`] or not UTF-8.
fn read_policy_file(path: &std::path::Path) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(POLICY_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > POLICY_MAX_BYTES {
        return Err(format!(
            "it is larger than {} KiB, which no policy is",
            POLICY_MAX_BYTES / 1024
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let before = &e.as_bytes()[..at];
        let line = before.iter().filter(|b| **b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
        format!("line {line}, column {column}: not UTF-8 text")
    })
}

/// Now, in seconds since the Unix epoch: the clock, or `SNAPRELAY_NOW` (an RFC 3339 UTC time,
/// `2026-11-26T19:30:56Z`) when set. Retention by age reads it; tests set it to move time on.
pub fn now() -> Result<u64, Outcome> {
    match std::env::var("SNAPRELAY_NOW") {
        Ok(v) => snaprelay_core::runtime::clock::parse_rfc3339(&v).ok_or_else(|| {
            Outcome::Invalid(format!(
                "SNAPRELAY_NOW = {v:?} is not a UTC time like 2026-11-26T19:30:56Z"
            ))
        }),
        Err(_) => Ok(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
    }
}

/// The application over AWS (the SDK's default chain, in the policy's first source Region)
/// and `store`.
pub async fn aws_app(
    policy: &Policy,
    store: Arc<dyn StateStore>,
    after_change: Option<ChangeHook>,
    lease_ttl: Option<Duration>,
) -> Result<App, Outcome> {
    let cloud = aws_cloud(&policy.source.regions).await?;
    Ok(app_over(cloud, store, after_change, lease_ttl))
}

/// AWS through the SDK's default chain, in the first of `regions` (the AWS_* settings
/// checked first: a bad one is invalid input).
pub async fn aws_cloud(regions: &[String]) -> Result<Arc<dyn Cloud>, Outcome> {
    snaprelay_aws::check_environment().map_err(Outcome::Invalid)?;
    Ok(Arc::new(
        AwsCloud::load(snaprelay_aws::home_region(regions)).await,
    ))
}

/// The application over `cloud` and `store`, with this process as the lease holder.
pub fn app_over(
    cloud: Arc<dyn Cloud>,
    store: Arc<dyn StateStore>,
    after_change: Option<ChangeHook>,
    lease_ttl: Option<Duration>,
) -> App {
    let mut app = App::with_change_hook(cloud, store, after_change);
    if let Some(ttl) = lease_ttl {
        app.lease_ttl = ttl;
    }
    app.holder = holder();
    app
}

/// Who takes leases, for people reading the state: `process PID on HOST` (pids repeat across
/// the machines of several workers).
pub fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty());
    match host {
        Some(h) => format!("process {} on {h}", std::process::id()),
        None => format!("process {}", std::process::id()),
    }
}

/// The application over AWS for a command that records nothing (`plan`, `check`).
pub async fn aws_app_stateless(policy: &Policy) -> Result<App, Outcome> {
    let store = SqliteStore::in_memory()?;
    aws_app(policy, Arc::new(store), None, None).await
}

/// The application over AWS for `plan`: it changes nothing, and reads the restore points the
/// state recorded (`--state`, else the default file) to tell incremental copies from full ones
/// (SPEC 6.5). A state that does not exist yet (before the first run) is an empty one, and is
/// not created.
pub async fn aws_app_reading_state(settings: &Settings, policy: &Policy) -> Result<App, Outcome> {
    let store: Arc<dyn StateStore> = match state_at(settings) {
        Ok(StateAt::File(path)) if !path.exists() => Arc::new(SqliteStore::in_memory()?),
        Ok(at) => at.open(true).await?,
        Err(_) => Arc::new(SqliteStore::in_memory()?),
    };
    aws_app(policy, store, None, None).await
}

/// Where a state is (SPEC section 6.7): a file path or `sqlite://` URL, or `postgres://`.
enum StateAt {
    File(PathBuf),
    Postgres(String),
}

impl StateAt {
    fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return StateAt::Postgres(text.to_owned());
        }
        // sqlite:///absolute/path and sqlite://relative/path name a file.
        StateAt::File(PathBuf::from(
            text.strip_prefix("sqlite://").unwrap_or(text),
        ))
    }

    /// The state as messages show it: a URL without its password.
    pub fn shown(&self) -> String {
        match self {
            StateAt::File(path) => path.display().to_string(),
            StateAt::Postgres(url) => snaprelay_core::ports::redacted_url(url),
        }
    }

    /// Opens it; with `must_exist`, a file that is not there is invalid input, not a new
    /// empty state (an empty state would make gc take every snapshot for an orphan).
    async fn open(&self, must_exist: bool) -> Result<Arc<dyn StateStore>, Outcome> {
        // A state that cannot be opened is a state error (exit 1) for every command; a
        // state that cannot be named (a missing file where one must be, a bad URL) is invalid
        // input (exit 2).
        Ok(match self {
            StateAt::File(path) if must_exist && !path.exists() => {
                return Err(Outcome::Invalid(format!(
                    "no state file at {}: give --state with the file your runs recorded to (a \
                     run creates it)",
                    path.display()
                )));
            }
            StateAt::File(path) => Arc::new(SqliteStore::open(path)?),
            StateAt::Postgres(url) => {
                // A URL that does not read is a bad flag (exit 2); a database that does not
                // answer, a state error.
                let parsed =
                    snaprelay_state::PgUrl::parse(url).map_err(|e| Outcome::Invalid(e.0))?;
                Arc::new(snaprelay_state::PgStore::open(parsed).await?)
            }
        })
    }
}

fn state_at(settings: &Settings) -> Result<StateAt, Outcome> {
    match &settings.state {
        Some(given) => Ok(StateAt::parse(&given.to_string_lossy())),
        None => SqliteStore::default_path()
            .map(StateAt::File)
            .ok_or_else(|| {
                Outcome::Invalid("no per-user data directory (HOME is not set): give --state FILE")
            }),
    }
}

/// Opens the state store named by `--state`, or the default one.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn StateStore>, Outcome> {
    state_at(settings)?.open(false).await
}

/// Opens the state store for a command that reads what sessions recorded (`restore-points`,
/// `retention`, `gc`): a state file that does not exist is an error, not a new empty file.
pub async fn open_existing_store(settings: &Settings) -> Result<Arc<dyn StateStore>, Outcome> {
    state_at(settings)?.open(true).await
}

/// `state copy --from STATE --to STATE`: the whole state into an empty one.
pub async fn state_copy(settings: &Settings, from: &str, to: &str) -> Outcome {
    let result = async {
        let (from, to) = (StateAt::parse(from), StateAt::parse(to));
        let source = from.open(true).await?;
        let destination = to.open(false).await?;
        let copied = snaprelay_core::app::state_copy(source.as_ref(), destination.as_ref()).await?;
        if settings.json {
            print_json(&serde_json::json!({
                "from": from.shown(),
                "to": to.shown(),
                "copied": copied,
            }))?;
        } else {
            emit(&format!(
                "Copied {} session(s) with {} step(s), {} restore point(s) and {} restore(s) and \
                 drill(s) from {} to {}.\n",
                copied.sessions,
                copied.steps,
                copied.restore_points,
                copied.operations,
                from.shown(),
                to.shown()
            ));
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}

/// `--policy P state rebuild --to STATE`: the policy's restore points, from snaprelay's tags
/// in AWS, into an empty state.
pub async fn state_rebuild(settings: &Settings, to: &str) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let to = StateAt::parse(to);
        let destination = to.open(false).await?;
        let app = aws_app(&policy, destination, None, settings.lease_ttl).await?;
        let rebuilt = snaprelay_core::app::rebuild(&app, &policy).await?;
        if settings.json {
            print_json(&serde_json::json!({ "to": to.shown(), "rebuilt": rebuilt }))?;
        } else {
            emit(&format!(
                "Rebuilt {} restore point(s) ({} snapshot(s)) of policy {} under {} session(s) \
                 into {}.\n",
                rebuilt.restore_points,
                rebuilt.snapshots,
                rebuilt.policy,
                rebuilt.sessions,
                to.shown()
            ));
            for n in &rebuilt.notes {
                emit(&format!("Note: {n}\n"));
            }
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}

/// An interrupt raised by the first SIGINT (Ctrl-C) or SIGTERM; a second one ends the
/// process at once (exit code 130), leaving the cleanup undone.
pub fn interrupt_on_signals() -> Interrupt {
    let (handle, interrupt) = Interrupt::new();
    let mut signals = Signals::watch();
    tokio::spawn(async move {
        if !signals.next().await {
            return;
        }
        say!(
            "snaprelay: interrupted: finishing cleanup (removing shares, deleting unfinished \
             copies); interrupt again to stop at once"
        );
        handle.raise();
        if signals.next().await {
            say!("snaprelay: interrupted again: stopping now, cleanup left undone");
            std::process::exit(130);
        }
    });
    interrupt
}

/// SIGINT and SIGTERM, watched from the moment this is made.
struct Signals {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn watch() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let streams = match (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) {
                (Ok(int), Ok(term)) => Some((int, term)),
                _ => None,
            };
            Self { streams }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// Waits for the next signal; false if signals cannot be watched.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        {
            let Some((int, term)) = &mut self.streams else {
                return false;
            };
            tokio::select! {
                v = int.recv() => v.is_some(),
                v = term.recv() => v.is_some(),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.is_ok()
        }
    }
}

/// Writes to stdout. A reader that went away (`snaprelay ... | head`) ends the process quietly
/// with 141 (128 + SIGPIPE), as it would a C tool, instead of a panic.
pub fn emit(text: &str) {
    use std::io::Write;
    // Names and tags come from AWS and the policy: a terminal escape in one is shown, not run.
    let text = crate::output::escape_controls(text);
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(141);
        }
        say!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Prints JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Outcome> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Outcome::failed(ErrorKind::Internal, format!("cannot encode JSON: {e}")))?;
    emit(&format!("{text}\n"));
    Ok(())
}

/// Structured events on stderr, one JSON object a line, for machines (`--log-format json`):
/// `{"event": "progress", "time", "resource", "message"}` as work goes on, and
/// `{"event": "step", "time", "resource_id", "step", "place", "started_at", "ended_at",
/// "outcome", "detail"}` as each recorded step ends.
pub struct JsonEvents;

impl Progress for JsonEvents {
    fn notice(&self, message: &str) {
        let event = serde_json::json!({
            "event": "notice",
            "time": snaprelay_core::runtime::clock::utc_now(),
            "message": message,
        });
        crate::stderr::event(&event);
    }

    fn update(&self, resource: &str, message: &str) {
        let event = serde_json::json!({
            "event": "progress",
            "time": snaprelay_core::runtime::clock::utc_now(),
            "resource": resource,
            "message": message,
        });
        crate::stderr::event(&event);
    }

    fn step(&self, step: &snaprelay_core::report::StepRecord) {
        let mut event = serde_json::json!({
            "event": "step",
            "time": snaprelay_core::runtime::clock::utc_now(),
        });
        if let (Some(map), Ok(serde_json::Value::Object(fields))) =
            (event.as_object_mut(), serde_json::to_value(step))
        {
            map.extend(fields);
        }
        crate::stderr::event(&event);
    }

    fn task_ended(&self, report: &ResourceReport, ended: usize, total: usize) {
        let event = serde_json::json!({
            "event": "task",
            "time": snaprelay_core::runtime::clock::utc_now(),
            "resource": report.id,
            "status": report.status,
            "ended": ended,
            "total": total,
        });
        crate::stderr::event(&event);
    }
}

/// How a session shows its progress on stderr.
pub fn progress(settings: &Settings) -> Box<dyn Progress> {
    if settings.json_events {
        Box::new(JsonEvents)
    } else {
        Box::new(Terminal::detect())
    }
}

/// Progress lines on stderr, only when a person is watching it.
pub struct Terminal {
    enabled: bool,
}

impl Terminal {
    pub fn detect() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
        }
    }
}

impl Progress for Terminal {
    fn notice(&self, message: &str) {
        say!("{message}");
    }

    fn update(&self, resource: &str, message: &str) {
        if self.enabled {
            say!("[{resource}] {message}");
        }
    }

    fn task_ended(&self, report: &ResourceReport, ended: usize, total: usize) {
        if self.enabled {
            say!(
                "[{}] {} ({ended} of {total} resources done, {}%)",
                report.id,
                report.status,
                ended * 100 / total.max(1)
            );
        }
    }
}
