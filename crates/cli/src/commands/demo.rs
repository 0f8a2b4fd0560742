//! `snaprelay demo`: the demo's policies (`snaprelay_sim::demo`) on a simulated AWS (two accounts, three Regions,
//! EC2 instances and RDS databases), on virtual time: hours of snapshots and copies in a
//! moment, with no AWS account and nothing to install. Each session's progress is shown as
//! it happens (stamped with the simulated time), then its report.
//!
//! Exit code 0 when every session ended as the seed says it should, 1 otherwise.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use snaprelay_core::app::ErrorKind;
use snaprelay_core::engine::{EngineConfig, Progress};
use snaprelay_core::report::SessionReport;
use snaprelay_core::restore::drill::DrillStatus;
use snaprelay_sim::demo;
use snaprelay_state::SqliteStore;
use tokio::time::Instant;

use crate::Outcome;
use crate::output;

use super::{Settings, emit, print_json};

/// Progress lines stamped with the simulated time since the demo began. Percentages of a
/// resource are shown at most every ten simulated minutes, steps always.
struct Clocked {
    start: Instant,
    enabled: bool,
    last_percent: Mutex<HashMap<String, Instant>>,
}

const PERCENT_EVERY: Duration = Duration::from_secs(600);

impl Progress for Clocked {
    fn update(&self, resource: &str, message: &str) {
        if !self.enabled {
            return;
        }
        if message.ends_with('%') {
            let mut last = self.last_percent.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            match last.get(resource) {
                Some(t) if now.duration_since(*t) < PERCENT_EVERY => return,
                _ => last.insert(resource.to_owned(), now),
            };
        }
        say!("  [{}] {resource}: {message}", hms(self.start.elapsed()));
    }
}

fn hms(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// Runs on a runtime whose clock is paused, so that waits are virtual.
pub async fn run(settings: &Settings) -> Outcome {
    let result = async {
        // The demo's sessions are simulated: they never go into a real state (--state and
        // SNAPRELAY_STATE are ignored), where gc or retention would take them for real ones.
        let store = Arc::new(SqliteStore::in_memory()?);
        let (cloud, scenarios) = demo::estate();
        let cloud = Arc::new(cloud);
        let config = EngineConfig {
            poll_initial: settings.poll_interval,
            ..EngineConfig::default()
        };
        let progress = Clocked {
            start: Instant::now(),
            enabled: !settings.json,
            last_percent: Mutex::new(HashMap::new()),
        };
        let wall = std::time::Instant::now();
        let mut reports: Vec<SessionReport> = Vec::new();
        let mut summary = String::new();
        let mut as_expected = true;
        for (n, scenario) in scenarios.iter().enumerate() {
            if !settings.json {
                say!("\n=== {}. {}\n", n + 1, scenario.title);
                say!("{}", indent(&scenario.policy));
            }
            let began = Instant::now();
            let report = demo::run_scenario(&cloud, store.as_ref(), scenario, &progress, &config)
                .await
                .map_err(|e| Outcome::failed(ErrorKind::Internal, e))?;
            let matches = report.status == scenario.expected;
            as_expected &= matches;
            let _ = writeln!(
                summary,
                "  {:<22} {:<8} {:>9}  {}{}",
                report.policy,
                report.status.as_str(),
                hms(began.elapsed()),
                scenario.why,
                if matches {
                    String::new()
                } else {
                    format!(
                        " (UNEXPECTED: the seed says {})",
                        scenario.expected.as_str()
                    )
                }
            );
            if !settings.json {
                emit(&format!("\n{}\n", output::report_text(&report)));
            }
            reports.push(report);
        }
        if settings.json {
            print_json(&reports)?;
        } else {
            // The replicas of the first scenario, proven: restored, checked, deleted.
            if let Some(first) = scenarios.first() {
                say!(
                    "\n=== {}. A drill: restore {}'s replicas, check them, delete them\n",
                    scenarios.len() + 1,
                    first.title.to_lowercase()
                );
                let began = Instant::now();
                let show = |line: &str| say!("  [{}] {line}", hms(progress.start.elapsed()));
                let drilled = demo::drill_scenario(cloud.clone(), store.clone(), first, &show)
                    .await
                    .map_err(|e| Outcome::failed(ErrorKind::Internal, e))?;
                let passed = drilled.status == DrillStatus::Passed;
                as_expected &= passed;
                for r in &drilled.results {
                    emit(&format!(
                        "  drill {} {:<20} {:<8} RTO {:>6}  checks: {}\n",
                        r.resource.resource_type,
                        r.resource.id,
                        r.status.as_str(),
                        r.rto_seconds
                            .map_or("-".to_owned(), |s| hms(Duration::from_secs_f64(s))),
                        r.checks
                            .iter()
                            .map(|c| format!("{}{}", c.name, if c.ok { "" } else { " FAILED" }))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                let _ = writeln!(
                    summary,
                    "  {:<22} {:<8} {:>9}  every replica restored as an isolated copy, checked, \
                     and deleted again",
                    format!("drill {}", drilled.policy),
                    drilled.status.as_str(),
                    hms(began.elapsed()),
                );
            }
            emit(&format!(
                "Summary ({} of simulated AWS time in {:.2} s):\n  {:<22} {:<8} {:>9}  why\n{summary}\n",
                hms(progress.start.elapsed()),
                wall.elapsed().as_secs_f64(),
                "POLICY",
                "STATUS",
                "TOOK",
            ));
            emit(
                "Against real AWS: write a policy like the ones above and run\n  \
                 snaprelay check --policy FILE   (roles and keys, with fixes)\n  \
                 snaprelay plan --policy FILE    then    snaprelay run --policy FILE\n",
            );
        }
        Ok::<_, Outcome>(Outcome::Code(if as_expected { 0 } else { 1 }))
    };
    result.await.unwrap_or_else(|o| o)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
