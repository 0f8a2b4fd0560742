//! `snaprelay serve --policies PATH [--listen ADDR] [--token-file FILE]` (SPEC 6.6): the
//! policies' schedules, the HTTP API and the metrics, until SIGTERM or SIGINT (a clean stop:
//! running sessions are interrupted and resumed at the next start). SIGHUP reloads the
//! policies, keeping the old ones when a file is bad.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use snaprelay_core::engine::EngineConfig;
use snaprelay_core::ports::{Cloud, Layered};
use snaprelay_server::{Counting, Metrics, Options, Service, load_policies};

use crate::Outcome;

use super::{Settings, app_over, aws_cloud, open_store};

/// The flags of `serve`.
#[derive(clap::Args)]
pub struct Flags {
    /// A policy file, or a directory of *.toml policy files.
    #[arg(long, value_name = "PATH")]
    pub policies: PathBuf,
    /// Where the API, the metrics and the console listen.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A file holding the API token (wins over SNAPRELAY_API_TOKEN). Needed to listen on
    /// an address other than loopback.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

/// The token: the file's first line, else the variable; `None` when neither is given.
fn token(flags: &Flags) -> Result<Option<String>, Outcome> {
    let token = match &flags.token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Outcome::Invalid(format!("--token-file {}: {e}", path.display())))?;
            let line = text.lines().next().unwrap_or_default().trim().to_owned();
            if line.is_empty() {
                return Err(Outcome::Invalid(format!(
                    "--token-file {}: the file is empty",
                    path.display()
                )));
            }
            Some(line)
        }
        None => std::env::var("SNAPRELAY_API_TOKEN")
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty()),
    };
    // A short token is the operator's choice (the contract sets no length), but a guessable
    // one: said, not refused.
    if let Some(t) = &token
        && t.len() < 16
    {
        say!(
            "snaprelay serve: warning: the API token is shorter than 16 characters, easy to \
             guess; use a long random one (openssl rand -hex 32)"
        );
    }
    Ok(token)
}

pub async fn run(settings: &Settings, flags: Flags) -> Outcome {
    let result = async {
        let token = token(&flags)?;
        if token.is_none() && !flags.listen.ip().is_loopback() {
            return Err(Outcome::Invalid(format!(
                "--listen {}: not a loopback address, and no API token is set (--token-file or \
                 SNAPRELAY_API_TOKEN): serve refuses to answer others without one",
                flags.listen
            )));
        }
        let policies = load_policies(&flags.policies).map_err(Outcome::Invalid)?;
        let regions: Vec<String> = policies
            .iter()
            .flat_map(|p| p.source.regions.clone())
            .collect();
        let aws = aws_cloud(&regions).await?;
        let store = open_store(settings).await?;
        let metrics = Arc::new(Metrics::default());
        // Every call counted for snaprelay_aws_calls_total.
        let counted: Arc<dyn Cloud> = Arc::new(Layered {
            layer: Counting(metrics.clone()),
            inner: aws,
        });
        let app = app_over(counted, store, None, settings.lease_ttl);
        let options = Options {
            policies: flags.policies.clone(),
            listen: flags.listen,
            token,
            engine: EngineConfig {
                poll_initial: settings.poll_interval,
                ..EngineConfig::default()
            },
            drill_poll: settings.poll_interval.max(Duration::from_secs(1)),
        };
        let listener = tokio::net::TcpListener::bind(flags.listen)
            .await
            .map_err(|e| {
                Outcome::Invalid(format!(
                    "--listen {}: cannot listen there: {e}",
                    flags.listen
                ))
            })?;
        let service = Service::new(app, policies, &options, metrics);
        say!(
            "snaprelay serve: {} policies from {}, listening on http://{}",
            service.policies().len(),
            flags.policies.display(),
            flags.listen
        );
        on_signals(service.clone());
        let served = tokio::spawn(snaprelay_server::run(service.clone(), listener));
        service.stopped().await;
        service.release_leases().await;
        // Requests under way get a few seconds; the whole stop stays within 30 s.
        match tokio::time::timeout(Duration::from_secs(20), served).await {
            Ok(Ok(Err(e))) => say!("snaprelay serve: the HTTP server ended with {e}"),
            Ok(_) => {}
            Err(_) => say!("snaprelay serve: requests still open after 20 s were dropped"),
        }
        say!("snaprelay serve: stopped");
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}

/// SIGTERM and SIGINT stop the service; SIGHUP reloads its policies.
fn on_signals(service: Arc<Service>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            say!("snaprelay serve: cannot watch signals; stop it with SIGKILL");
            return;
        };
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => match service.reload() {
                        Ok(n) => say!("snaprelay serve: reloaded {n} policies"),
                        Err(e) => say!("snaprelay serve: the policies were not reloaded, the old ones run on: {e}"),
                    },
                }
            }
            say!(
                "snaprelay serve: stopping: no new session; running ones are interrupted and resumed at the next start"
            );
            service.stop();
        });
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            service.stop();
        });
    }
}
