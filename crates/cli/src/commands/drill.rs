//! `snaprelay drill [...]` and `snaprelay drills list | show ID` (SPEC 6.3): restores that
//! prove the replicas restore, and their records.

use std::time::Duration;

use snaprelay_core::app::{DrillOptions, drill};
use snaprelay_core::ports::OperationKind;
use snaprelay_core::restore::PlaceChoice;
use snaprelay_core::restore::drill::{DrillReport, DrillStatus};

use crate::Outcome;
use crate::output;

use super::{Settings, aws_app, emit, load_policy, open_existing_store, print_json};

/// The flags of `drill`, as clap gave them.
pub struct Flags {
    pub resource: Option<String>,
    pub place: Option<String>,
    pub keep: bool,
    pub small: bool,
    pub timeout_minutes: u32,
    pub concurrency: u16,
}

pub async fn run(settings: &Settings, flags: Flags) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let place = match &flags.place {
            None => PlaceChoice::Default,
            Some(p) => PlaceChoice::parse(p).ok_or_else(|| {
                Outcome::Invalid(format!(
                    "--place {}: is not `source` or ACCOUNT/REGION (a 12-digit account id and a \
                     Region name); nothing was drilled",
                    output::shown(p)
                ))
            })?,
        };
        let options = DrillOptions {
            resource: flags.resource,
            place,
            keep: flags.keep,
            small: flags.small,
            timeout: Duration::from_secs(u64::from(flags.timeout_minutes) * 60),
            concurrency: usize::from(flags.concurrency),
            id: None,
        };
        let store = open_existing_store(settings).await?;
        let hook = crate::fault::abort_hook().map_err(Outcome::Invalid)?;
        let app = aws_app(&policy, store, hook, settings.lease_ttl).await?;
        let progress = |line: &str| crate::stderr::message(line);
        let poll = settings.poll_interval.max(Duration::from_millis(200));
        let report = drill(&app, &policy, &options, poll, &progress).await?;
        if settings.json {
            print_json(&report)?;
        } else {
            emit(&text(&report));
        }
        Ok::<_, Outcome>(Outcome::Code(match report.status {
            DrillStatus::Passed => 0,
            DrillStatus::Failed => 1,
        }))
    };
    result.await.unwrap_or_else(|o| o)
}

/// `drills list --output json`: one entry per drill, newest first.
#[derive(serde::Serialize)]
struct Listed<'a> {
    drill_id: &'a str,
    policy: &'a str,
    status: &'a str,
    started_at: &'a str,
    ended_at: Option<&'a str>,
}

pub async fn list(settings: &Settings) -> Outcome {
    let result = async {
        let policy = match settings.policy {
            Some(_) => Some(load_policy(settings)?.name),
            None => None,
        };
        let store = open_existing_store(settings).await?;
        let drills = store
            .operations(OperationKind::Drill, policy.as_deref())
            .await?;
        let listed: Vec<Listed> = drills
            .iter()
            .map(|d| Listed {
                drill_id: &d.id,
                policy: &d.policy,
                status: &d.status,
                started_at: &d.started_at,
                ended_at: d.ended_at.as_deref(),
            })
            .collect();
        if settings.json {
            print_json(&listed)?;
        } else if listed.is_empty() {
            emit("No drills recorded.\n");
        } else {
            let mut out = format!(
                "{:<24} {:<20} {:<8} {:<21} {}\n",
                "DRILL", "POLICY", "STATUS", "STARTED", "ENDED"
            );
            for d in &listed {
                out.push_str(&format!(
                    "{:<24} {:<20} {:<8} {:<21} {}\n",
                    d.drill_id,
                    output::fit(&output::escape_controls(d.policy), 20),
                    d.status,
                    d.started_at,
                    d.ended_at.unwrap_or("-")
                ));
            }
            emit(&out);
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}

pub async fn show(settings: &Settings, id: &str) -> Outcome {
    let result = async {
        let store = open_existing_store(settings).await?;
        let drill = store
            .operation(id)
            .await?
            .filter(|o| o.kind == OperationKind::Drill)
            .ok_or_else(|| {
                Outcome::Invalid(format!(
                    "drill id {}: no such drill in the state",
                    output::shown(id)
                ))
            })?;
        let document: serde_json::Value = match &drill.document {
            Some(d) => serde_json::from_str(d).unwrap_or(serde_json::Value::Null),
            // Not ended: what is known of it.
            None => serde_json::json!({
                "drill_id": drill.id,
                "policy": drill.policy,
                "status": drill.status,
                "started_at": drill.started_at,
                "ended_at": null,
                "results": [],
                "messages": [format!("begun by {}, not ended", drill.holder)],
            }),
        };
        if settings.json {
            print_json(&document)?;
        } else {
            match serde_json::from_value::<ShownDrill>(document.clone()) {
                Ok(d) => emit(&shown_text(&d)),
                Err(_) => emit(&format!("{document:#}\n")),
            }
        }
        Ok::<_, Outcome>(Outcome::Code(0))
    };
    result.await.unwrap_or_else(|o| o)
}

/// A stored drill document, read back for the text view.
#[derive(serde::Deserialize)]
struct ShownDrill {
    drill_id: String,
    policy: String,
    status: String,
    started_at: String,
    ended_at: Option<String>,
    results: Vec<ShownResult>,
    #[serde(default)]
    messages: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ShownResult {
    resource: serde_json::Value,
    point_id: Option<i64>,
    account: String,
    region: String,
    status: String,
    rto_seconds: Option<f64>,
    checks: Vec<ShownCheck>,
    cleaned_up: bool,
    #[serde(default)]
    messages: Vec<String>,
}

#[derive(serde::Deserialize)]
struct ShownCheck {
    name: String,
    ok: bool,
    detail: String,
}

fn shown_text(d: &ShownDrill) -> String {
    let mut out = format!(
        "Drill {} of policy {}: {} (started {}, ended {})\n",
        d.drill_id,
        output::escape_controls(&d.policy),
        d.status,
        d.started_at,
        d.ended_at.as_deref().unwrap_or("-")
    );
    for r in &d.results {
        out.push_str(&format!(
            "  {} {} in {}/{} from point {}: {}, RTO {}, {}\n",
            r.resource["type"].as_str().unwrap_or("?"),
            output::escape_controls(r.resource["id"].as_str().unwrap_or("?")),
            r.account,
            r.region,
            r.point_id.map_or("-".to_owned(), |p| p.to_string()),
            r.status,
            r.rto_seconds
                .map_or("-".to_owned(), |s| format!("{s:.1} s")),
            if r.cleaned_up {
                "cleaned up"
            } else {
                "not cleaned up"
            }
        ));
        for c in &r.checks {
            out.push_str(&format!(
                "    [{}] {:<18} {}\n",
                if c.ok { "ok" } else { "FAIL" },
                c.name,
                output::escape_controls(&c.detail)
            ));
        }
        for m in &r.messages {
            out.push_str(&format!("    - {}\n", output::escape_controls(m)));
        }
    }
    for m in &d.messages {
        out.push_str(&format!("  - {}\n", output::escape_controls(m)));
    }
    out
}

fn text(r: &DrillReport) -> String {
    match serde_json::to_value(r)
        .ok()
        .and_then(|v| serde_json::from_value::<ShownDrill>(v).ok())
    {
        Some(d) => shown_text(&d),
        None => format!("Drill {}: {}\n", r.drill_id, r.status.as_str()),
    }
}
