//! The `snaprelay` command line: a thin shell over the core. Each subcommand lives in
//! `commands/`; this file parses arguments, sets up logging and maps outcomes to exit codes.

/// A line for people on stderr (`eprintln!` that cannot panic: with stderr closed, `run 2>&1
/// | head`, a message nobody can read is dropped and the session carries on). With
/// `--log-format json` it goes out as `{"event": "message", "time", "text"}`: every stderr line
/// is then one JSON object.
macro_rules! say {
    ($($arg:tt)*) => {{
        $crate::stderr::message(&format!($($arg)*));
    }};
}

mod commands;
mod fault;
mod output;
mod stderr;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use snaprelay_core::app::{AppError, ErrorKind};

/// Exit code for a failure that is not the input's fault (AWS unreachable, state store broken).
const EXIT_FAILED: u8 = 1;

#[derive(Parser)]
#[command(
    name = "snaprelay",
    version,
    about = "Keeps encrypted EBS and RDS snapshot replicas in other AWS Regions and accounts, re-encrypted with your KMS keys",
    after_help = "AWS access follows the SDK conventions: the default credential chain, AWS_PROFILE, AWS_REGION and \
                  AWS_ENDPOINT_URL. Set SNAPRELAY_LOG=debug for a detailed log on stderr."
)]
struct Cli {
    /// The policy file (TOML).
    #[arg(long, global = true, value_name = "FILE", env = "SNAPRELAY_POLICY")]
    policy: Option<PathBuf>,

    /// The state: a SQLite file (or sqlite:///path), or postgres://USER:PASS@HOST:PORT/DB.
    /// Default: snaprelay/state.sqlite in the per-user data directory.
    #[arg(long, global = true, value_name = "FILE|URL", env = "SNAPRELAY_STATE")]
    state: Option<PathBuf>,

    /// Seconds a policy's lease lasts without renewal on PostgreSQL: a worker that dies loses
    /// it after this long (a SQLite state's lease is freed when its process dies).
    #[arg(long, global = true, value_name = "SECONDS", env = "SNAPRELAY_LEASE_TTL",
          value_parser = clap::value_parser!(u64).range(2..=86_400))]
    lease_ttl: Option<u64>,

    /// Output format on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    output: Format,

    /// How progress is shown on stderr: text lines when stderr is a terminal, or JSON events
    /// (one object a line: progress and steps) for machines, always.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    #[command(subcommand)]
    command: Command,
}

/// How often a session asks AWS how its snapshots are doing: only for commands that run one.
#[derive(clap::Args, Clone, Copy)]
pub(crate) struct Pacing {
    /// Seconds to wait before the first poll of a snapshot's state; later polls back off to 30 s.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 2.0,
        value_parser = parse_seconds,
        env = "SNAPRELAY_POLL_INTERVAL"
    )]
    pub(crate) poll_interval: f64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check that the roles and keys the policy uses allow what a run does (key policies,
    /// grants, the roles' IAM policies, the keys themselves), and print the statement that
    /// fixes each problem. Only reads. Exit code 0 all OK, 1 something missing, 2 invalid input.
    Check,
    /// Run snaprelay against a simulated AWS inside the binary (two accounts, three Regions,
    /// EC2 instances and RDS databases) and show, policy by policy, the replicas it makes, the
    /// ones it makes with a warning and the ones it refuses, with why. No AWS account needed;
    /// nothing is written to the state file.
    Demo {
        #[command(flatten)]
        pacing: Pacing,
    },
    /// Prove the replicas restore: restore the newest complete restore point of each
    /// resource in each target (or the place named) as a temporary, isolated resource
    /// (no public IP, a security group with no rules), check it, time it (RTO), and delete
    /// everything it made. Holds the policy's lease. Exit code 0 all Passed, 1 any Failed,
    /// 2 invalid input.
    Drill {
        /// Only this resource (instance id or DB instance identifier).
        #[arg(long, value_name = "ID")]
        resource: Option<String>,
        /// `source`, or ACCOUNT/REGION of a target. Default: every target.
        #[arg(long, value_name = "source|ACCOUNT/REGION")]
        place: Option<String>,
        /// Leave what the drill made (the next drill or `gc --yes` deletes it).
        #[arg(long)]
        keep: bool,
        /// Restore with the smallest class of the recorded family.
        #[arg(long)]
        small: bool,
        /// Minutes each resource may take to be usable.
        #[arg(long, value_name = "MINUTES", default_value_t = 60,
              value_parser = clap::value_parser!(u32).range(1..=1440))]
        timeout: u32,
        /// Restores at once per place.
        #[arg(long, value_name = "N", default_value_t = 2,
              value_parser = clap::value_parser!(u16).range(1..=64))]
        concurrency: u16,
        #[command(flatten)]
        pacing: Pacing,
    },
    /// Drills recorded in the state (of the policy given with --policy, else all).
    Drills {
        #[command(subcommand)]
        command: DrillsCommand,
    },
    /// List what the policy's sessions left in AWS that no record accounts for (snapshots in
    /// no restore point, shares never removed); with --yes, delete and unshare it.
    Gc {
        /// Act: delete the unrecorded snapshots and remove the shares. Without it, only list.
        #[arg(long)]
        yes: bool,
        /// Also take the snapshots tagged for the policy by sessions this state does not know
        /// (a lost or other state): listed apart otherwise, deleted only with --yes.
        #[arg(long)]
        unknown_sessions: bool,
    },
    /// Show what a run would do, changing nothing.
    Plan,
    /// Run one session of the policy now. Exit code 0 Success, 3 Warning, 1 Failed, 2 invalid input.
    Run {
        /// How many resources are worked on at once (copies are further bounded by AWS's
        /// quota of 20 in flight per account and destination Region). Fleets of thousands
        /// keep the copy quotas busier with 1024 (see the fleet benchmark in the README).
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
        concurrency: u16,
        #[command(flatten)]
        pacing: Pacing,
    },
    /// The restore points recorded in the state store, per resource and place (of the policy
    /// given with --policy, else all).
    RestorePoints {
        /// Only this resource (instance id or DB instance identifier).
        #[arg(long, value_name = "ID")]
        resource: Option<String>,
        #[command(subcommand)]
        command: Option<RestorePointsCommand>,
    },
    /// Restore a resource from a restore point, into a target (the policy's first by default)
    /// or the source: an EC2 instance (from an image of the point's snapshots, with the
    /// recorded block devices, type and network), its volumes, an RDS DB instance, or an Aurora
    /// cluster with one writer.
    /// Everything made is tagged snaprelay:restore=ID. A name already taken, a flag naming what
    /// does not exist there, or nowhere to go is refused before anything is made (exit 2).
    /// Exit code 0 Success, 1 Failed.
    Restore(Box<commands::restore::Flags>),
    /// Apply the policy's [retention] (run does it after every session).
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Run every policy on its schedule, with an HTTP API (/api/v1), Prometheus metrics
    /// (/metrics) and health checks, until SIGTERM (running sessions are interrupted and
    /// resumed at the next start). SIGHUP reloads the policies.
    Serve(Box<commands::serve::Flags>),
    /// Past sessions.
    Sessions {
        #[command(subcommand)]
        command: SessionsCommand,
    },
    /// The state itself: copy it between SQLite and PostgreSQL, or rebuild it from AWS.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
}

#[derive(Subcommand)]
enum StateCommand {
    /// Rebuild the policy's restore points (--policy) from snaprelay's tags in AWS into an
    /// empty state, after the state was lost: retention, restore and drills go on. What the
    /// snapshots and their tags carry of the configuration comes back (volume sizes and types,
    /// device names, the instance's type, an Aurora cluster's engine); the rest is left empty,
    /// and said. A destination that holds anything is refused (exit 2).
    Rebuild {
        /// The empty state to fill: a file, sqlite:///path, or postgres://USER:PASS@HOST:PORT/DB.
        #[arg(long, value_name = "STATE")]
        to: String,
    },
    /// Copy a whole state (sessions, steps, restore points, under their ids) into an empty one:
    /// a SQLite file into PostgreSQL, or back. A destination that holds anything is refused
    /// (exit 2) and nothing is copied.
    Copy {
        /// The state to copy: a file, sqlite:///path, or postgres://USER:PASS@HOST:PORT/DB.
        #[arg(long, value_name = "STATE")]
        from: String,
        /// The empty state to copy into (a file is created).
        #[arg(long, value_name = "STATE")]
        to: String,
    },
}

#[derive(Subcommand)]
enum DrillsCommand {
    /// List drills, newest first.
    List,
    /// Show one drill's document: each resource's checks, RTO and cleanup.
    Show {
        /// The drill id, as `drills list` prints it.
        id: String,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Delete the restore points the policy no longer keeps. Exit code 0, or 1 when some had to
    /// be left (each is listed with the reason).
    Apply {
        /// List what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `restore-points list` is `restore-points`, as `sessions list` lists sessions.
#[derive(Subcommand)]
enum RestorePointsCommand {
    /// The same as `restore-points` alone.
    List {
        /// Only this resource (instance id or DB instance identifier).
        #[arg(long, value_name = "ID")]
        resource: Option<String>,
    },
}

#[derive(Subcommand)]
enum SessionsCommand {
    /// List sessions, newest first (of the policy given with --policy, else all).
    List,
    /// Show one session's report and steps.
    Show {
        /// The session id, as `sessions list` prints it.
        id: String,
    },
    /// Finish a session that was interrupted (its process killed): what it had done is found
    /// in AWS and taken up, nothing is done twice. `run` does it on its own for the newest
    /// interrupted session of the policy. Needs --policy. Exit codes as for `run`.
    Resume {
        /// The session id, as `sessions list` prints it.
        id: String,
        /// As for `run`.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=4096))]
        concurrency: u16,
        #[command(flatten)]
        pacing: Pacing,
    },
}

impl Command {
    /// The pacing of a command that runs a session; the default for the others.
    fn pacing(&self) -> Pacing {
        match self {
            Command::Demo { pacing }
            | Command::Run { pacing, .. }
            | Command::Drill { pacing, .. }
            | Command::Sessions {
                command: SessionsCommand::Resume { pacing, .. },
            } => *pacing,
            Command::Restore(args) => args.pacing,
            _ => Pacing { poll_interval: 2.0 },
        }
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds between 0 and 3600"
        )),
    }
}

/// How a command ended, for the exit code.
pub enum Outcome {
    /// The command ran; its exit code.
    Code(u8),
    /// It could not: the error's class fixes the exit code and the JSON `code`.
    Error(AppError),
}

impl Outcome {
    /// Invalid input: exit code 2, nothing was done.
    #[allow(non_snake_case)]
    pub fn Invalid(message: impl Into<String>) -> Self {
        Self::Error(AppError::invalid(message))
    }

    /// A failure of the given class.
    pub fn failed(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Error(AppError::new(kind, message))
    }
}

impl From<AppError> for Outcome {
    fn from(e: AppError) -> Self {
        Self::Error(e)
    }
}

impl From<snaprelay_core::ports::StoreError> for Outcome {
    fn from(e: snaprelay_core::ports::StoreError) -> Self {
        Self::Error(e.into())
    }
}

fn main() -> ExitCode {
    unset_empty_variables();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return bad_arguments(&e),
    };
    let json_stderr = cli.log_format == LogFormat::Json;
    stderr::set_json(json_stderr);
    init_logging(json_stderr);
    // The demo runs on a simulated AWS whose snapshots take simulated hours: a runtime with a
    // paused clock jumps to the next timer whenever every task is waiting.
    let runtime = match &cli.command {
        Command::Demo { .. } => tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build(),
        _ => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            say!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let json = cli.output == Format::Json;
    let outcome = runtime.block_on(async {
        let settings = commands::Settings {
            policy: cli.policy,
            state: cli.state,
            json,
            poll_interval: Duration::from_secs_f64(cli.command.pacing().poll_interval),
            json_events: cli.log_format == LogFormat::Json,
            lease_ttl: cli.lease_ttl.map(Duration::from_secs),
        };
        match cli.command {
            Command::Check => commands::check::run(&settings).await,
            Command::Demo { .. } => commands::demo::run(&settings).await,
            Command::Drill {
                resource,
                place,
                keep,
                small,
                timeout,
                concurrency,
                ..
            } => {
                let flags = commands::drill::Flags {
                    resource,
                    place,
                    keep,
                    small,
                    timeout_minutes: timeout,
                    concurrency,
                };
                commands::drill::run(&settings, flags).await
            }
            Command::Drills {
                command: DrillsCommand::List,
            } => commands::drill::list(&settings).await,
            Command::Drills {
                command: DrillsCommand::Show { id },
            } => commands::drill::show(&settings, &id).await,
            Command::Gc {
                yes,
                unknown_sessions,
            } => commands::gc::run(&settings, yes, unknown_sessions).await,
            Command::Plan => commands::plan::run(&settings).await,
            Command::Run { concurrency, .. } => {
                commands::run::run(&settings, usize::from(concurrency), None).await
            }
            Command::RestorePoints { resource, command } => {
                let listed = match command {
                    Some(RestorePointsCommand::List { resource }) => resource,
                    None => None,
                };
                match (resource, listed) {
                    (Some(a), Some(b)) if a != b => Outcome::Invalid(format!(
                        "--resource {a} and --resource {b}: give one resource"
                    )),
                    (resource, listed) => {
                        let resource = resource.or(listed);
                        commands::restore_points::run(&settings, resource.as_deref()).await
                    }
                }
            }
            Command::Restore(flags) => commands::restore::run(&settings, *flags).await,
            Command::Serve(flags) => commands::serve::run(&settings, *flags).await,
            Command::Retention {
                command: RetentionCommand::Apply { dry_run },
            } => commands::retention::apply(&settings, dry_run).await,
            Command::Sessions {
                command: SessionsCommand::List,
            } => commands::sessions::list(&settings).await,
            Command::State {
                command: StateCommand::Copy { from, to },
            } => commands::state_copy(&settings, &from, &to).await,
            Command::State {
                command: StateCommand::Rebuild { to },
            } => commands::state_rebuild(&settings, &to).await,
            Command::Sessions {
                command: SessionsCommand::Show { id },
            } => commands::sessions::show(&settings, &id).await,
            Command::Sessions {
                command:
                    SessionsCommand::Resume {
                        id, concurrency, ..
                    },
            } => commands::run::run(&settings, usize::from(concurrency), Some(&id)).await,
        }
    });
    let error = match outcome {
        Outcome::Code(c) => return ExitCode::from(c),
        Outcome::Error(e) => e,
    };
    stderr::error(&error);
    if json {
        // Whoever reads stdout as JSON still gets one document (SPEC section 5).
        let doc = serde_json::json!({ "error": error.message, "code": error.kind.code() });
        commands::emit(&format!("{doc}\n"));
    }
    ExitCode::from(error.kind.exit_code())
}

/// An empty variable is unset, for ours and for the SDK's: `AWS_REGION=""` would otherwise
/// reach the SDK as a Region named "" and fail deep inside it.
fn unset_empty_variables() {
    let empty: Vec<std::ffi::OsString> = std::env::vars_os()
        .filter(|(k, v)| {
            let k = k.to_string_lossy();
            (k.starts_with("AWS_") || k.starts_with("SNAPRELAY_"))
                && v.to_string_lossy().trim().is_empty()
        })
        .map(|(k, _)| k)
        .collect();
    for key in empty {
        // SAFETY: called first thing in main, before the runtime or any other thread exists,
        // so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(key) };
    }
}

/// Arguments clap refused. `--help` and `--version` are printed as clap prints them; any other
/// refusal is invalid input (exit 2), and with `--output json` also one JSON error document on
/// stdout, like every other error.
fn bad_arguments(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as Clap;
    if matches!(e.kind(), Clap::DisplayHelp | Clap::DisplayVersion) || !wants_json() {
        let _ = e.print();
        return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
    }
    let message = e.to_string();
    let first = message
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ");
    let _ = e.print();
    let error = AppError::invalid(first);
    commands::emit(&format!(
        "{}\n",
        serde_json::json!({ "error": error.message, "code": error.kind.code() })
    ));
    ExitCode::from(error.kind.exit_code())
}

/// Whether the raw arguments ask for `--output json`, when clap could not parse them.
fn wants_json() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .any(|w| w[0] == "--output" && w[1] == "json")
        || args.iter().any(|a| a == "--output=json")
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    // The SDK's own warnings (an unreachable instance-metadata service while it searches the
    // credential chain, say) are noise unless asked for; its errors reach us as results. A bare
    // level (SNAPRELAY_LOG=debug) applies to snaprelay only: the SDK's debug log is very long and
    // names access key ids. Full directives (SNAPRELAY_LOG=aws_config=debug) are taken as given.
    let ours = |level: &str| {
        format!(
            "error,snaprelay={level},snaprelay_core={level},snaprelay_aws={level},snaprelay_state={level},snaprelay_server={level}"
        )
    };
    // An empty value is unset, as for every variable of ours.
    let directives = match std::env::var("SNAPRELAY_LOG") {
        Ok(v) if v.contains('=') => v,
        Ok(v) if !v.trim().is_empty() => ours(v.trim()),
        _ => ours("warn"),
    };
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        say!("warning: SNAPRELAY_LOG={directives:?} is not a valid log filter ({e}); using warn");
        EnvFilter::new(ours("warn"))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    if json {
        // One JSON object a line, like every other stderr line in this mode.
        builder
            .json()
            .flatten_event(true)
            .with_writer(stderr::JsonLog)
            .init();
    } else {
        builder
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}
