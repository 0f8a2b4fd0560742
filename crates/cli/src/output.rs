//! Human-readable text for plans, session reports, sessions and steps.

use std::collections::BTreeMap;
use std::fmt::Write;

use snaprelay_core::gc::GcReport;
use snaprelay_core::model::{Resource, SnapshotKind};
use snaprelay_core::plan::{Decision, Plan, Workflow, estimate, sizing};
use snaprelay_core::ports::SessionId;
use snaprelay_core::report::{
    Phases, PointStatus, RecordedRestorePoint, ResourceReport, SessionReport, SessionSummary,
    StepRecord,
};
use snaprelay_core::retention::RetentionReport;

pub fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Plan for policy {} (source account {}): {} resource(s), expected status {}",
        plan.policy,
        plan.source_account,
        plan.tasks.len(),
        plan.expected_status()
    );
    for m in &plan.messages {
        let _ = writeln!(out, "  ! {m}");
    }
    for task in &plan.tasks {
        match &task.resource {
            Resource::Ec2(i) => {
                let _ = writeln!(
                    out,
                    "\nec2 {}{} in {}",
                    i.id,
                    i.name
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default(),
                    i.region
                );
                for v in &i.volumes {
                    let _ = writeln!(
                        out,
                        "    volume {} {} GiB {}",
                        v.id,
                        v.size_gib,
                        encryption(v.kms_key_id.as_deref())
                    );
                }
            }
            Resource::Rds(d) => {
                let _ = writeln!(
                    out,
                    "\nrds {} ({}) in {}, {}",
                    d.id,
                    d.engine,
                    d.region,
                    encryption(d.kms_key_id.as_deref())
                );
            }
            Resource::Aurora(c) => {
                let d = &c.db;
                let members: Vec<&str> = c
                    .members
                    .iter()
                    .map(|m| m.db_instance_id.as_str())
                    .collect();
                let _ = writeln!(
                    out,
                    "\naurora {} ({}) in {}, {}; members {}",
                    d.id,
                    d.engine,
                    d.region,
                    encryption(d.kms_key_id.as_deref()),
                    if members.is_empty() {
                        "none".to_owned()
                    } else {
                        members.join(", ")
                    }
                );
            }
        }
        for t in &task.targets {
            let place = format!("targets[{}] {} {}", t.target, t.account, t.region);
            let line = match &t.decision {
                Decision::Replicate {
                    workflow,
                    kms_key_id,
                    two_step,
                    single_step,
                    warnings,
                    notes,
                    ..
                } => {
                    let how = match (workflow, single_step, two_step) {
                        (Workflow::SameAccount, ..) => "workflow A (copy in the same account)".to_owned(),
                        (Workflow::CrossAccountEc2, ..) => {
                            "workflow B (share, copy in the target account, unshare)".to_owned()
                        }
                        (Workflow::CrossAccountRds, true, _) => {
                            "workflow C in one step (share, one copy across accounts and Regions, unshare)"
                                .to_owned()
                        }
                        (Workflow::CrossAccountRds, false, true) => {
                            "workflow C in two steps (share, copy into the target account in the \
                             source Region, copy that to the target Region, delete the intermediate \
                             copy, unshare)"
                                .to_owned()
                        }
                        (Workflow::CrossAccountRds, false, false) => {
                            "workflow C (share, copy in the target account, unshare)".to_owned()
                        }
                    };
                    let key = kms_key_id
                        .as_deref()
                        .map_or("left unencrypted (no target key)".to_owned(), |k| {
                            format!("encrypted with {k}")
                        });
                    let mut line = format!("replicate by {how}, {key}");
                    for n in notes {
                        let _ = write!(line, "\n       note: {n}");
                    }
                    for w in warnings {
                        let _ = write!(line, "\n       ! (Warning) {w}");
                    }
                    line
                }
                Decision::Skip { reason } => format!("no replica (Warning): {reason}"),
                Decision::Refuse { reason } => format!("no replica (Failed): {reason}"),
            };
            let _ = writeln!(out, "  -> {place}: {line}");
            for c in estimate::copies_text(&t.copies) {
                let _ = writeln!(out, "       {c}");
            }
            if let Decision::Replicate { two_step: true, .. } = &t.decision
                && task.resource_type == snaprelay_core::model::ResourceType::Aurora
            {
                let _ = writeln!(
                    out,
                    "       the two-step copy of a DB cluster snapshot is full every time (2 full \
                     copies); AWS has no single-step copy of a shared cluster snapshot"
                );
            } else if let Decision::Replicate { two_step: true, .. } = &t.decision
                && let [first, _] = t.copies.as_slice()
            {
                let saved = first
                    .estimate
                    .bytes
                    .map_or("its size is unknown".to_owned(), |b| {
                        format!("{} each run", estimate::human_bytes(b))
                    });
                let _ = writeln!(
                    out,
                    "       the two-step RDS copy is full every time (2 full copies); \
                     rds_single_step = true copies once and saves the intermediate copy \
                     ({saved})"
                );
            }
        }
    }
    if let Some(e) = &plan.estimate {
        let _ = writeln!(out, "\n{}", estimate_text("Estimate", "to copy", e));
    }
    out
}

/// Totals of copies, over all and per target, and the prices they use.
pub fn estimate_text(title: &str, what: &str, e: &estimate::Estimate) -> String {
    let mut out = format!("{title}: {}", estimate::totals_text(&e.totals, what));
    for t in &e.targets {
        let _ = write!(
            out,
            "\n  targets[{}] {} {}: {}",
            t.target,
            t.account,
            t.region,
            estimate::totals_text(&t.totals, what)
        );
    }
    let _ = write!(
        out,
        "\n  (prices: ${} per GiB-month of snapshot storage, ${} per GiB copied between \
         Regions; [prices] in the policy sets them)",
        e.prices.snapshot_gb_month, e.prices.transfer_gb
    );
    out
}

/// What a run copied, and how long each phase of its session took.
pub fn copied_text(copied: &sizing::Copied, phases: &Phases) -> String {
    let mut out = String::new();
    for r in &copied.replicas {
        let _ = writeln!(
            out,
            "{} {} -> {}/{}:",
            r.resource_type, r.id, r.account, r.region
        );
        for c in estimate::copies_text(&r.copies) {
            let _ = writeln!(out, "    {c}");
        }
    }
    let _ = writeln!(
        out,
        "{}",
        estimate_text("Copied", "copied", &copied.estimate)
    );
    let _ = writeln!(
        out,
        "Phases: snapshot {} s, share {} s, copy {} s, cleanup {} s",
        phases.snapshot_seconds, phases.share_seconds, phases.copy_seconds, phases.cleanup_seconds
    );
    out
}

fn encryption(key: Option<&str>) -> String {
    key.map_or("unencrypted".to_owned(), |k| format!("encrypted with {k}"))
}

/// How many resources of one status with messages are shown whole before the rest of them are
/// summarised: a failure storm across a fleet is a few lines, not one per resource.
const SHOWN_PER_STATUS: usize = 20;

pub fn report_text(r: &SessionReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Session {} of policy {}: {} ({} to {})",
        r.session_id, r.policy, r.status, r.started_at, r.ended_at
    );
    for m in r.messages.iter().take(SHOWN_PER_STATUS) {
        let _ = writeln!(out, "  ! {m}");
    }
    if r.messages.len() > SHOWN_PER_STATUS {
        let _ = writeln!(
            out,
            "  ! … and {} more messages (`snaprelay sessions show {} --output json` has all)",
            r.messages.len() - SHOWN_PER_STATUS,
            r.session_id
        );
    }
    let mut shown: BTreeMap<&str, usize> = BTreeMap::new();
    let mut summarised: BTreeMap<&str, Vec<&ResourceReport>> = BTreeMap::new();
    for res in &r.resources {
        if !res.messages.is_empty() {
            let n = shown.entry(res.status.as_str()).or_default();
            *n += 1;
            if *n > SHOWN_PER_STATUS {
                summarised.entry(res.status.as_str()).or_default().push(res);
                continue;
            }
        }
        let _ = writeln!(
            out,
            "\n{} {} in {}: {}",
            res.resource_type, res.id, res.region, res.status
        );
        for (kind, place) in res
            .source
            .iter()
            .map(|p| ("source ", p))
            .chain(res.replicas.iter().map(|p| ("replica", p)))
        {
            let _ = writeln!(out, "  {kind} {}/{}", place.account, place.region);
            for s in &place.snapshots {
                let _ = writeln!(
                    out,
                    "      {} <- {} ({})",
                    s.id,
                    s.source_id,
                    s.kms_key_id.as_deref().unwrap_or("unencrypted")
                );
            }
        }
        for m in &res.messages {
            let _ = writeln!(out, "  ! {m}");
        }
    }
    for (status, rest) in summarised {
        summary_of(&mut out, status, &rest, &r.session_id);
    }
    out
}

/// `text` with EC2 ids (`vol-…`, `snap-…`, `i-…`) replaced by `{id}`.
fn without_ids(text: &str) -> String {
    let is_id = |word: &str| {
        ["vol-", "snap-", "i-"].iter().any(|prefix| {
            word.strip_prefix(prefix).is_some_and(|hex| {
                (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
            })
        })
    };
    text.split(' ')
        .map(|token| {
            let word = token.trim_matches(|c: char| "(),.;:".contains(c));
            if is_id(word) {
                token.replace(word, "{id}")
            } else {
                token.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The resources of one status not shown whole: how many, and their most common messages
/// (with the resources' own ids and those of their volumes and snapshots taken out, so that
/// the same failure counts as one).
fn summary_of(out: &mut String, status: &str, rest: &[&ResourceReport], session: &SessionId) {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for res in rest {
        for m in &res.messages {
            let general = m.replace(&res.id, "{resource}");
            *counts.entry(without_ids(&general)).or_default() += 1;
        }
    }
    let mut common: Vec<(String, usize)> = counts.into_iter().collect();
    common.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let _ = writeln!(
        out,
        "\n… and {} more resources ended {status} (`snaprelay sessions show {session} --output \
         json` has each); their most common messages:",
        rest.len()
    );
    for (message, n) in common.iter().take(5) {
        let _ = writeln!(out, "  ! {n} × {message}");
    }
    if common.len() > 5 {
        let _ = writeln!(out, "  ! … and {} other messages", common.len() - 5);
    }
}

pub fn sessions_text(sessions: &[SessionSummary]) -> String {
    if sessions.is_empty() {
        return "No sessions recorded.\n".to_owned();
    }
    let mut out = format!(
        "{:<22} {:<24} {:<11} {:>9}  {}\n",
        "SESSION", "POLICY", "STATUS", "RESOURCES", "STARTED"
    );
    for s in sessions {
        let _ = writeln!(
            out,
            "{:<22} {:<24} {:<11} {:>9}  {}",
            s.session_id.as_str(),
            fit(&s.policy, 24),
            s.status,
            s.resources,
            s.started_at
        );
    }
    out
}

/// A value from the command line as an error message quotes it: escaped, and cut after 128
/// characters.
pub fn shown(value: &str) -> String {
    const MAX: usize = 128;
    match value.char_indices().nth(MAX) {
        None => format!("{value:?}"),
        Some((cut, _)) => format!(
            "{:?}… ({} characters)",
            &value[..cut],
            value.chars().count()
        ),
    }
}

/// `text` in at most `width` characters: a longer one ends with `…`, so columns stay aligned.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(width.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// Control characters (an ESC that would start a terminal sequence, a carriage return) and the
/// bidirectional overrides that reorder what a terminal shows, escaped; new lines and tabs are
/// kept.
pub fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    std::borrow::Cow::Owned(
        text.chars()
            .map(|c| {
                if hidden(c) {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

pub fn steps_text(steps: &[StepRecord]) -> String {
    let mut out = String::from("\nSteps:\n");
    for s in steps {
        let _ = writeln!(
            out,
            "  {} {:<20} {:<14} {:<28} {:<6} {}",
            s.started_at, s.resource_id, s.step, s.place, s.outcome, s.detail
        );
    }
    out
}

/// Restore points grouped by resource, then place (the source first), newest first.
pub fn restore_points_text(points: &[RecordedRestorePoint], resource: Option<&str>) -> String {
    if points.is_empty() {
        return match resource {
            Some(id) => format!("No restore points recorded for resource {id}.\n"),
            None => "No restore points recorded.\n".to_owned(),
        };
    }
    let mut sorted: Vec<&RecordedRestorePoint> = points.iter().collect();
    sorted.sort_by(|a, b| {
        let key = |r: &RecordedRestorePoint| {
            (
                r.point.policy.clone(),
                r.point.resource_id.clone(),
                r.point.kind != SnapshotKind::Source,
                r.point.place.account.clone(),
                r.point.place.region.clone(),
            )
        };
        key(a)
            .cmp(&key(b))
            .then_with(|| b.point.created_at.cmp(&a.point.created_at))
            .then_with(|| b.id.cmp(&a.id))
    });
    let mut out = String::new();
    let mut resource = None;
    let mut place = None;
    for r in sorted {
        let p = &r.point;
        let this_resource = (&p.policy, &p.resource_type, &p.resource_id);
        if resource != Some(this_resource) {
            let _ = writeln!(
                out,
                "\n{} {} (policy {})",
                p.resource_type, p.resource_id, p.policy
            );
            resource = Some(this_resource);
            place = None;
        }
        let this_place = (&p.kind, &p.place.account, &p.place.region);
        if place != Some(this_place) {
            let _ = writeln!(out, "  {} {}/{}", p.kind, p.place.account, p.place.region);
            place = Some(this_place);
        }
        let size: i64 = p.place.snapshots.iter().filter_map(|s| s.size_gib).sum();
        let size = if p.place.snapshots.iter().all(|s| s.size_gib.is_some()) {
            format!(", {size} GiB")
        } else {
            String::new()
        };
        let status = match r.status {
            PointStatus::Complete => "complete",
            PointStatus::Deleting => {
                "DELETING (partly deleted by retention; the next run finishes)"
            }
            PointStatus::Deleted => "DELETED by retention",
        };
        let _ = writeln!(
            out,
            "    #{} {}  session {}  {} snapshot(s){size}  {status}",
            r.id,
            p.created_at,
            r.session_id,
            p.place.snapshots.len()
        );
        if r.status == PointStatus::Deleted {
            continue;
        }
        match &p.config {
            Some(c) => {
                let _ = writeln!(out, "      config: {}", config_line(c));
            }
            None => {
                let _ = writeln!(out, "      config: not recorded (restores as volumes only)");
            }
        }
        if let Some(d) = &r.last_drill {
            let _ = writeln!(
                out,
                "      last drill: {} {} at {}{}",
                d.drill_id,
                d.status,
                d.at,
                d.rto_seconds
                    .map(|s| format!(", RTO {s:.1} s"))
                    .unwrap_or_default()
            );
        }
        for s in &p.place.snapshots {
            let mut about = vec![format!("from {}", s.source_id)];
            about.extend(s.device.clone());
            about.extend(s.size_gib.map(|g| format!("{g} GiB")));
            about.push(s.kms_key_id.clone().unwrap_or_else(|| "unencrypted".into()));
            let _ = writeln!(out, "      {} ({})", s.id, about.join(", "));
        }
    }
    out
}

/// A restore point's configuration on one line.
fn config_line(c: &snaprelay_core::config::ResourceConfig) -> String {
    use snaprelay_core::config::ResourceConfig;
    let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "?".into());
    match c {
        ResourceConfig::Ec2(e) => format!(
            "{} {} {}, root {}, {} volume(s), {}",
            or(&e.instance.instance_type),
            or(&e.instance.architecture),
            or(&e.instance.platform_details),
            or(&e.instance.root_device_name),
            e.volumes.len(),
            or(&e.instance.availability_zone)
        ),
        ResourceConfig::Rds(r) => format!(
            "{} {} {}, {} GiB {}{}",
            escape_controls(&r.engine),
            or(&r.db.engine_version),
            or(&r.db.db_instance_class),
            r.allocated_storage_gib
                .map_or("?".to_owned(), |g| g.to_string()),
            or(&r.db.storage_type),
            if r.db.multi_az == Some(true) {
                ", Multi-AZ"
            } else {
                ""
            }
        ),
        ResourceConfig::Aurora(a) => {
            let classes: Vec<String> = a
                .members
                .iter()
                .map(|m| {
                    let role = if m.writer { "writer" } else { "reader" };
                    format!("{role} {}", or(&m.db_instance_class))
                })
                .collect();
            format!(
                "{} {} {}, {} member(s){}",
                escape_controls(&a.engine),
                or(&a.engine_version),
                or(&a.engine_mode),
                a.members.len(),
                if classes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", escape_controls(&classes.join(", ")))
                }
            )
        }
    }
}

pub fn retention_text(r: &RetentionReport) -> String {
    let mut out = String::new();
    if let Some(note) = &r.note {
        let _ = writeln!(out, "{}{}.", note[..1].to_uppercase(), &note[1..]);
        return out;
    }
    let verb = if r.dry_run { "would delete" } else { "deleted" };
    let _ = writeln!(
        out,
        "Retention of policy {}: {verb} {} restore point(s), kept {}",
        r.policy,
        r.deleted.len(),
        r.kept
    );
    for d in &r.deleted {
        let gone = if d.already_gone.is_empty() {
            String::new()
        } else {
            format!(" (already gone from AWS: {})", d.already_gone.join(", "))
        };
        let _ = writeln!(
            out,
            "  - {} {} {} {}/{} made {} ({}): {}{gone}",
            d.kind,
            d.resource_type,
            d.resource_id,
            d.account,
            d.region,
            d.created_at,
            d.snapshots.join(", "),
            d.reason
        );
    }
    for p in &r.problems {
        let _ = writeln!(out, "  ! {p}");
    }
    for s in &r.skipped {
        let _ = writeln!(out, "  note: {s}");
    }
    out
}

pub fn gc_text(r: &GcReport) -> String {
    let mut out = String::new();
    if r.found.is_empty() && r.restores_and_drills.is_empty() {
        let _ = writeln!(out, "Nothing left behind by policy {}.", r.policy);
    } else if !r.found.is_empty() {
        let verb = if r.acted {
            "Done"
        } else {
            "Would do (run again with --yes)"
        };
        let _ = writeln!(
            out,
            "Left behind by policy {}: {} item(s). {verb}:",
            r.policy,
            r.found.len()
        );
        for l in &r.found {
            let shared = if l.shared_with.is_empty() {
                String::new()
            } else {
                format!(" from {}", l.shared_with.join(", "))
            };
            let _ = writeln!(
                out,
                "  {} {} snapshot {}{shared} in {}/{} (session {}): {}",
                l.action,
                l.service,
                l.id,
                l.account,
                l.region,
                l.session.as_deref().unwrap_or("unknown"),
                l.why
            );
        }
    }
    if !r.restores_and_drills.is_empty() {
        let _ = writeln!(
            out,
            "Made by restores and drills of policy {}: {} item(s){}:",
            r.policy,
            r.restores_and_drills.len(),
            if r.acted { "" } else { " (delete: with --yes)" }
        );
        for f in &r.restores_and_drills {
            let kind = f.remnant.kind.as_str();
            let _ = writeln!(
                out,
                "  {} {kind} {} ({}) in {}/{}: {}",
                f.action, f.remnant.id, f.remnant.state, f.remnant.account, f.remnant.region, f.why
            );
        }
    }
    for s in &r.skipped {
        let _ = writeln!(out, "  skipped: {s}");
    }
    for p in &r.problems {
        let _ = writeln!(out, "  ! {p}");
    }
    out
}

/// `check`: a table of findings, then the fix of each problem.
pub fn check_text(r: &snaprelay_core::check::CheckReport) -> String {
    use snaprelay_core::check::Holds;
    let mut out = format!("Check of policy {}\n\n", r.policy);
    let label = |h: Holds| match h {
        Holds::Ok => "OK",
        Holds::Missing => "MISSING",
        Holds::Unknown => "UNKNOWN",
    };
    let mut fixes = Vec::new();
    for f in &r.findings {
        let number = if f.fix.is_some() {
            fixes.push(f);
            format!(" [fix {}]", fixes.len())
        } else {
            String::new()
        };
        out.push_str(&format!(
            "{:<8} {:<12} {}\n",
            label(f.status),
            f.check,
            f.resource
        ));
        if !f.principal.is_empty() {
            out.push_str(&format!("{:21}principal: {}\n", "", f.principal));
        }
        if !f.actions.is_empty() {
            out.push_str(&format!("{:21}actions:   {}\n", "", f.actions.join(", ")));
        }
        out.push_str(&format!("{:21}{}{number}\n", "", f.detail));
    }
    let optional = [
        (
            &r.restore_and_drill,
            "\nFor restore and drill (not needed by run; a restore may use --role-arn instead):\n",
        ),
        (
            &r.estimates,
            "\nFor plan's sizes of incremental EBS copies (without it they are unknown):\n",
        ),
    ];
    for (findings, title) in optional.into_iter().filter(|(f, _)| !f.is_empty()) {
        out.push_str(title);
        for f in findings {
            let number = if f.fix.is_some() {
                fixes.push(f);
                format!(" [fix {}]", fixes.len())
            } else {
                String::new()
            };
            // Not a failure of the check: said apart from MISSING.
            let status = match f.status {
                Holds::Missing => "TO ADD",
                other => label(other),
            };
            out.push_str(&format!(
                "{status:<8} {:<12} {}\n",
                "IAM policy", f.principal
            ));
            if f.status != Holds::Ok {
                out.push_str(&format!("{:21}actions:   {}\n", "", f.actions.join(", ")));
                out.push_str(&format!("{:21}{}{number}\n", "", f.detail));
            }
        }
    }
    if !fixes.is_empty() {
        out.push_str("\nFixes:\n");
        for (i, f) in fixes.iter().enumerate() {
            out.push_str(&format!(
                "[fix {}] {}\n",
                i + 1,
                f.fix.as_deref().unwrap_or_default()
            ));
        }
    }
    for n in &r.notes {
        out.push_str(&format!("\nNote: {n}\n"));
    }
    let count = |h| r.findings.iter().filter(|f| f.status == h).count();
    out.push_str(&format!(
        "\n{} OK, {} missing, {} unknown: {}\n",
        count(Holds::Ok),
        count(Holds::Missing),
        count(Holds::Unknown),
        if r.holds() {
            "the policy's roles and keys allow what a run does"
        } else {
            "a run would fail where MISSING is shown"
        }
    ));
    out
}
