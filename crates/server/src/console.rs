//! The web console at `/` (SPEC 6.6): server-rendered HTML that works without JavaScript.
//! Policies with their next run, last status and replica age against the schedule; a
//! session's tasks and step timeline; restore points with their last drill; check findings
//! with their fixes. "Run now" and "Drill now" are plain forms.
//!
//! Signing in: with a token configured, the console asks for it once (a login form) and
//! keeps an HttpOnly, SameSite=Strict session cookie; every form carries that session's
//! CSRF token. Pages can be read without signing in on a loopback address, as the API's
//! reads can; without a token (loopback only) nothing needs signing in, and forms carry the
//! process's own CSRF token.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use snaprelay_core::app::check;
use snaprelay_core::model::SnapshotKind;
use snaprelay_core::ports::{PointFilter, SessionId};
use snaprelay_core::report::{PointStatus, RecordedRestorePoint};
use snaprelay_core::runtime::clock::parse_rfc3339;

use crate::{Refusal, Service};

const COOKIE: &str = "snaprelay_console";

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1a1a1a; background: #fff; }
header { background: #12355b; color: #fff; padding: .6rem 1.2rem; display: flex; gap: 1.5rem; align-items: center; }
header a { color: #fff; }
main { padding: 1rem 1.2rem; max-width: 72rem; }
a { color: #0b4f9c; }
a:focus, button:focus, input:focus { outline: 3px solid #f5a623; outline-offset: 2px; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #c8c8c8; vertical-align: top; }
th { background: #eef2f7; }
.Success, .Passed, .ok { color: #136f3a; font-weight: 600; }
.Warning, .unknown { color: #8a5300; font-weight: 600; }
.Failed, .missing, .late { color: #a4000f; font-weight: 600; }
.Running, .Interrupted { color: #0b4f9c; font-weight: 600; }
button { font: inherit; padding: .3rem .8rem; border: 1px solid #12355b; background: #12355b; color: #fff; border-radius: 3px; cursor: pointer; }
form.inline { display: inline; }
pre { background: #f4f4f4; padding: .6rem; overflow-x: auto; white-space: pre-wrap; }
.note { color: #444; }
"#;

/// The console's routes.
pub fn routes() -> Router<Arc<Service>> {
    Router::new()
        .route("/", get(home))
        .route("/console/style.css", get(style))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/sessions/{id}", get(session_page))
        .route("/console/restore-points", get(points_page))
        .route("/console/policies/{name}/check", get(check_page))
        .route("/console/policies/{name}/run", post(run_now))
        .route("/console/policies/{name}/drill", post(drill_now))
}

/// Who is looking: signed in (with their CSRF token) or not.
struct Visitor {
    csrf: Option<String>,
}

impl Service {
    fn visitor(&self, headers: &HeaderMap) -> Visitor {
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == COOKIE)
            .map(|(_, v)| v.to_owned());
        let sessions = self.console.lock().unwrap_or_else(|p| p.into_inner());
        Visitor {
            csrf: cookie.and_then(|c| sessions.get(&c).cloned()),
        }
    }

    /// The CSRF token forms carry: the visitor's session's, or without a configured token
    /// the process's own.
    fn form_token(&self, v: &Visitor) -> Option<String> {
        match (&self.token, &v.csrf) {
            (None, _) => Some(self.anonymous_csrf.clone()),
            (Some(_), csrf) => csrf.clone(),
        }
    }

    /// Pages need signing in off loopback when a token is configured.
    fn may_read(&self, v: &Visitor) -> bool {
        self.token.is_none() || self.loopback || v.csrf.is_some()
    }
}

/// 32 random bytes as hex, from the kernel.
pub(crate) fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // No /dev/urandom: the clock and the process, hashed; far weaker, said in the log.
        tracing::warn!("no /dev/urandom: console tokens are made from the clock");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
            ^ u128::from(std::process::id());
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
        }
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn page(s: &Service, v: &Visitor, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · snaprelay" }
                link rel="stylesheet" href="/console/style.css";
            }
            body {
                header {
                    strong { "snaprelay" }
                    nav aria-label="Main" {
                        a href="/" { "Policies" } " · "
                        a href="/console/restore-points" { "Restore points" }
                    }
                    @if s.token.is_some() {
                        @if v.csrf.is_some() {
                            form.inline method="post" action="/console/logout" {
                                input type="hidden" name="csrf" value=(v.csrf.clone().unwrap_or_default());
                                button type="submit" { "Sign out" }
                            }
                        } @else {
                            a href="/console/login" { "Sign in" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn sign_in_first() -> Response {
    Redirect::to("/console/login").into_response()
}

async fn style() -> Response {
    ([(header::CONTENT_TYPE, "text/css")], STYLE).into_response()
}

fn age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

async fn home(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let v = s.visitor(&headers);
    if !s.may_read(&v) {
        return sign_in_first();
    }
    let now = jiff::Timestamp::now();
    let now_secs = now.as_second().max(0) as u64;
    let form_token = s.form_token(&v);
    let mut rows = Vec::new();
    for p in s.policies() {
        let mut last = s
            .app
            .store
            .sessions(Some(&p.name))
            .await
            .unwrap_or_default();
        last.truncate(1);
        let _ = s.session_statuses(&mut last).await;
        let points = s
            .app
            .store
            .policy_restore_points(&p.name)
            .await
            .unwrap_or_default();
        // The schedule's period: how old a replica may be before it is late.
        let period = p.schedule.as_ref().and_then(|sch| {
            let a = sch.next_after(now)?;
            let b = sch.next_after(a)?;
            Some((b.as_second() - a.as_second()).max(1) as u64)
        });
        let mut newest: HashMap<(String, String, String), u64> = HashMap::new();
        for pt in points.iter().filter(|pt| {
            pt.point.kind == SnapshotKind::Replica && pt.status == PointStatus::Complete
        }) {
            if let Some(t) = parse_rfc3339(&pt.point.created_at) {
                let k = (
                    pt.point.resource_id.clone(),
                    pt.point.place.account.clone(),
                    pt.point.place.region.clone(),
                );
                let e = newest.entry(k).or_default();
                *e = (*e).max(t);
            }
        }
        let mut rpo: Vec<_> = newest.into_iter().collect();
        rpo.sort();
        let lease = s.app.store.lease_holder(&p.name).await.ok().flatten();
        rows.push((p, last.into_iter().next(), rpo, period, lease));
    }
    let body = html! {
        @if rows.is_empty() { p { "No policies." } }
        @for (p, last, rpo, period, lease) in &rows {
            section aria-labelledby=(format!("policy-{}", p.name)) {
                h2 id=(format!("policy-{}", p.name)) { (p.name) }
                dl {
                    dt { "Schedule" }
                    dd { @match &p.schedule {
                        Some(sch) => { code { (sch.expression) } " (" (sch.timezone) ")" }
                        None => { "none: runs only when started" }
                    } }
                    dt { "Next run" }
                    dd { (p.schedule.as_ref().and_then(|sch| sch.next_after(now)).map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()).unwrap_or_else(|| "-".into())) }
                    dt { "Last session" }
                    dd { @match last {
                        Some(l) => {
                            a href=(format!("/console/sessions/{}", l.session_id)) { (l.session_id) }
                            " " span class=(l.status) { (l.status) }
                            @if let Some(e) = &l.ended_at { " ended " (e) }
                        }
                        None => { "none yet" }
                    } }
                    @if let Some((kind, id)) = s.running(&p.name) {
                        dt { "Running now" }
                        dd { (format!("{kind:?}").to_lowercase()) " " (id) " on this worker" }
                    }
                    dt { "Worker" }
                    dd { @match lease {
                        Some(l) => {
                            (l.holder) " holds the lease (generation " (l.generation)
                            @if let Some(t) = &l.expires_at { ", until " (t) }
                            ")"
                        }
                        None => { "none: no session or drill of this policy runs" }
                    } }
                }
                @if !rpo.is_empty() {
                    table {
                        caption { "Newest complete replica per resource and place" }
                        thead { tr { th scope="col" { "Resource" } th scope="col" { "Place" } th scope="col" { "Age (achieved RPO)" } th scope="col" { "Against the schedule" } } }
                        tbody {
                            @for ((resource, account, region), created) in rpo {
                                @let a = now_secs.saturating_sub(*created);
                                tr {
                                    td { (resource) }
                                    td { (account) "/" (region) }
                                    td { (age(a)) }
                                    td { @match period {
                                        Some(per) if a > per + per / 2 => span.late { "late: older than the schedule's " (age(*per)) }
                                        Some(per) => span.ok { "within the schedule's " (age(*per)) }
                                        None => "no schedule"
                                    } }
                                }
                            }
                        }
                    }
                }
                p {
                    a href=(format!("/console/policies/{}/check", p.name)) { "Check roles and keys" }
                }
                @if let Some(t) = &form_token {
                    form.inline method="post" action=(format!("/console/policies/{}/run", p.name)) {
                        input type="hidden" name="csrf" value=(t);
                        button type="submit" aria-label=(format!("Run {} now", p.name)) { "Run now" }
                    }
                    " "
                    form.inline method="post" action=(format!("/console/policies/{}/drill", p.name)) {
                        input type="hidden" name="csrf" value=(t);
                        button type="submit" aria-label=(format!("Drill {} now", p.name)) { "Drill now" }
                    }
                } @else {
                    p.note { a href="/console/login" { "Sign in" } " to run or drill." }
                }
            }
        }
    };
    page(&s, &v, "Policies", body)
}

async fn session_page(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let v = s.visitor(&headers);
    if !s.may_read(&v) {
        return sign_in_first();
    }
    let store = s.app.store.as_ref();
    let sid = SessionId::new(id.clone());
    let Ok(Some(summary)) = store.summary(&sid).await else {
        if let Some((policy, started_at)) = s.starting_session(&id) {
            // Started a moment ago; its first records are being written.
            return page(
                &s,
                &v,
                &format!("Session {id}"),
                html! {
                    meta http-equiv="refresh" content="1";
                    p { "Policy " strong { (policy) } ", " span.Running { "Running" } ", started " (started_at) }
                    h2 { "Steps" }
                    p { "No step recorded yet: this page reloads itself." }
                },
            );
        }
        return (
            StatusCode::NOT_FOUND,
            page(
                &s,
                &v,
                "No such session",
                html! { p { "There is no session " (id) "." } },
            ),
        )
            .into_response();
    };
    let mut one = [summary];
    let _ = s.session_statuses(&mut one).await;
    let [summary] = one;
    let report = store.session(&sid).await.ok().flatten();
    let steps = store.steps(&sid).await.unwrap_or_default();
    // What it copied, as `run` said it: the totals line.
    let copied = store
        .copied(&sid)
        .await
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
        .and_then(|c| snaprelay_core::plan::estimate::copied_text(&c));
    // An unfinished session runs where its policy's lease is held.
    let worker = match summary.ended_at {
        None => store.lease_holder(&summary.policy).await.ok().flatten(),
        Some(_) => None,
    };
    let body = html! {
        p {
            "Policy " strong { (summary.policy) } ", "
            span class=(summary.status) { (summary.status) }
            ", started " (summary.started_at)
            @if let Some(e) = &summary.ended_at { ", ended " (e) }
        }
        @if let Some(w) = &worker {
            p { "Run by " strong { (w.holder) } " (lease generation " (w.generation) ")" }
        }
        @if let Some(r) = &report {
            h2 { "Tasks" }
            table {
                thead { tr { th scope="col" { "Resource" } th scope="col" { "Status" } th scope="col" { "Replicas" } th scope="col" { "Messages" } } }
                tbody {
                    @for t in &r.resources {
                        tr {
                            td { (t.resource_type) " " (t.id) }
                            td { span class=(t.status.as_str()) { (t.status.as_str()) } }
                            td { @for p in &t.replicas { (p.account) "/" (p.region) ": " (p.snapshots.len()) " snapshot(s)" br; } }
                            td { @for m in &t.messages { (m) br; } }
                        }
                    }
                }
            }
            @for m in &r.messages { p.note { (m) } }
            @if let Some(c) = &copied { p { "Copied: " (c) } }
        }
        @if summary.ended_at.is_none() { meta http-equiv="refresh" content="2"; }
        h2 { "Steps" }
        @if steps.is_empty() { p { "No step recorded yet." } }
        @else {
            table {
                thead { tr { th scope="col" { "Started" } th scope="col" { "Ended" } th scope="col" { "Resource" } th scope="col" { "Step" } th scope="col" { "Place" } th scope="col" { "Outcome" } th scope="col" { "Detail" } } }
                tbody {
                    @for st in &steps {
                        tr {
                            td { (st.started_at) } td { (st.ended_at) } td { (st.resource_id) }
                            td { (st.step.as_str()) } td { (st.place) }
                            td { span class=(st.outcome.as_str()) { (st.outcome.as_str()) } }
                            td { (st.detail.to_string()) }
                        }
                    }
                }
            }
        }
    };
    page(&s, &v, &format!("Session {id}"), body)
}

async fn points_page(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let v = s.visitor(&headers);
    if !s.may_read(&v) {
        return sign_in_first();
    }
    let mut points: Vec<RecordedRestorePoint> = Vec::new();
    for p in s.policies() {
        points.extend(
            s.app
                .store
                .find_restore_points(&PointFilter {
                    policy: Some(&p.name),
                    ..PointFilter::default()
                })
                .await
                .unwrap_or_default(),
        );
    }
    points.reverse();
    let body = html! {
        @if points.is_empty() { p { "No restore points yet." } }
        @else {
            table {
                thead { tr {
                    th scope="col" { "#" } th scope="col" { "Policy" } th scope="col" { "Resource" }
                    th scope="col" { "Kind" } th scope="col" { "Place" } th scope="col" { "Created" }
                    th scope="col" { "Status" } th scope="col" { "Last drill" }
                } }
                tbody {
                    @for p in &points {
                        tr {
                            td { (p.id.0) } td { (p.point.policy) }
                            td { (p.point.resource_type) " " (p.point.resource_id) }
                            td { (p.point.kind.as_str()) }
                            td { (p.point.place.account) "/" (p.point.place.region) }
                            td { (p.point.created_at) }
                            td { (format!("{:?}", p.status).to_lowercase()) }
                            td { @match &p.last_drill {
                                Some(d) => { span class=(d.status) { (d.status) } " " (d.at) @if let Some(r) = d.rto_seconds { " (RTO " (format!("{r:.1}")) " s)" } }
                                None => "never"
                            } }
                        }
                    }
                }
            }
        }
    };
    page(&s, &v, "Restore points", body)
}

async fn check_page(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    let v = s.visitor(&headers);
    if !s.may_read(&v) {
        return sign_in_first();
    }
    let Some(policy) = s.policy(&name) else {
        return (
            StatusCode::NOT_FOUND,
            page(
                &s,
                &v,
                "No such policy",
                html! { p { "There is no policy " (name) "." } },
            ),
        )
            .into_response();
    };
    let body = match check(&s.app, &policy).await {
        Err(e) => html! { p.Failed { "The check could not run: " (e.message) } },
        Ok(report) => html! {
            p { @if report.holds() { span.ok { "The policy's roles and keys allow what a run does." } } @else { span.missing { "Something a run needs is missing: each finding below says what, and how to fix it." } } }
            table {
                thead { tr { th scope="col" { "Status" } th scope="col" { "Check" } th scope="col" { "Resource" } th scope="col" { "Detail" } } }
                tbody {
                    @for f in report.findings.iter().chain(report.restore_and_drill.iter()).chain(report.estimates.iter()) {
                        @let status = f.status.as_str();
                        tr {
                            td { span class=(status) { (status) } }
                            td { (f.check) }
                            td { (f.resource) @if !f.principal.is_empty() { br; "principal " (f.principal) } }
                            td {
                                (f.detail)
                                @if let Some(fix) = &f.fix { details { summary { "Fix" } pre { (fix) } } }
                            }
                        }
                    }
                }
            }
            @for n in &report.notes { p.note { (n) } }
        },
    };
    page(&s, &v, &format!("Check of {name}"), body)
}

async fn login_page(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let v = s.visitor(&headers);
    let body = html! {
        @if s.token.is_none() { p { "This console needs no sign-in (no API token is set)." } }
        @else {
            form method="post" action="/console/login" {
                p {
                    label for="token" { "API token" } br;
                    input id="token" name="token" type="password" autocomplete="current-password" required;
                }
                button type="submit" { "Sign in" }
            }
        }
    };
    page(&s, &v, "Sign in", body)
}

async fn login(
    State(s): State<Arc<Service>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let Some(token) = &s.token else {
        return Redirect::to("/").into_response();
    };
    let given = form.get("token").map(String::as_str).unwrap_or_default();
    if !crate::api::same(given.trim().as_bytes(), token.as_bytes()) {
        let v = Visitor { csrf: None };
        return (
            StatusCode::UNAUTHORIZED,
            page(
                &s,
                &v,
                "Sign in",
                html! {
                    p.Failed role="alert" { "That is not the API token." }
                    p { a href="/console/login" { "Try again" } }
                },
            ),
        )
            .into_response();
    }
    let session = random_token();
    let csrf = random_token();
    {
        let mut sessions = s.console.lock().unwrap_or_else(|p| p.into_inner());
        // A bounded set: the oldest sign-ins go first.
        if sessions.len() > 1000 {
            sessions.clear();
        }
        sessions.insert(session.clone(), csrf);
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_owned()),
            (
                header::SET_COOKIE,
                format!("{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/"),
            ),
        ],
    )
        .into_response()
}

async fn logout(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let v = s.visitor(&headers);
    if v.csrf.is_some() && form.get("csrf") == v.csrf.as_ref() {
        s.console
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, c| Some(&*c) != v.csrf.as_ref());
    }
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/".to_owned()),
            (
                header::SET_COOKIE,
                format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
            ),
        ],
    )
        .into_response()
}

/// A form's CSRF token is the visitor's; `Err` is the page that says why not.
fn form_allowed(
    s: &Service,
    v: &Visitor,
    form: &HashMap<String, String>,
) -> Result<(), Box<Response>> {
    let Some(expected) = s.form_token(v) else {
        return Err(Box::new(sign_in_first()));
    };
    let given = form.get("csrf").map(String::as_str).unwrap_or_default();
    if !crate::api::same(given.as_bytes(), expected.as_bytes()) {
        return Err(Box::new((
            StatusCode::FORBIDDEN,
            page(s, v, "Refused", html! { p.Failed role="alert" { "This form is stale or was not sent from this console. Go back, reload, and try again." } }),
        )
            .into_response()));
    }
    Ok(())
}

async fn run_now(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let v = s.visitor(&headers);
    if let Err(r) = form_allowed(&s, &v, &form) {
        return *r;
    }
    match s.start_session(&name).await {
        Ok(id) => Redirect::to(&format!("/console/sessions/{id}")).into_response(),
        Err(r) => refused(&s, &v, &name, r),
    }
}

async fn drill_now(
    State(s): State<Arc<Service>>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let v = s.visitor(&headers);
    if let Err(r) = form_allowed(&s, &v, &form) {
        return *r;
    }
    match s.start_drill(&name).await {
        Ok(id) => page(
            &s,
            &v,
            "Drill started",
            html! {
                p { "Drill " code { (id) } " of policy " (name) " has started. Its result shows on the "
                    a href="/console/restore-points" { "restore points" } " page once it ends." }
            },
        ),
        Err(r) => refused(&s, &v, &name, r),
    }
}

fn refused(s: &Service, v: &Visitor, name: &str, r: Refusal) -> Response {
    let (status, why) = r.explain(name);
    (
        status,
        page(
            s,
            v,
            "Not started",
            html! { p.Failed role="alert" { (why) } p { a href="/" { "Back to the policies" } } },
        ),
    )
        .into_response()
}
