//! The HTTP API under `/api/v1` (SPEC 6.6), `/healthz`, `/readyz` and `/metrics`.
//!
//! Every `POST` needs `Authorization: Bearer <token>`; reads need it too unless the server
//! listens on a loopback address. Without a configured token (allowed on loopback only)
//! nothing needs it. Errors are `{"error": "…"}` with 400, 401, 404 or 409 (502 when AWS
//! could not be asked, 503 when the state store does not answer). Times are RFC 3339 UTC.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use snaprelay_core::app::{AppError, ErrorKind, check};
use snaprelay_core::ports::{OperationKind, PointFilter, SessionId};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::{Refusal, Service};

/// The OpenAPI document of these routes (checked against them by the tests).
pub const OPENAPI: &str = include_str!("openapi.json");

/// The most sessions one listing returns.
const LIMIT_MAX: usize = 500;
const LIMIT_DEFAULT: usize = 50;

type Shared = State<Arc<Service>>;

/// Every route, its auth rule, its limits.
pub fn router(service: Arc<Service>) -> Router {
    let api = Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/policies", get(policies))
        .route("/api/v1/policies/{name}/run", post(run))
        .route("/api/v1/policies/{name}/drill", post(start_drill))
        .route("/api/v1/policies/{name}/check", get(check_policy))
        .route("/api/v1/sessions", get(sessions))
        .route("/api/v1/sessions/{id}", get(session))
        .route("/api/v1/restore-points", get(restore_points))
        .route("/api/v1/drills/{id}", get(drill_document))
        .layer(middleware::from_fn_with_state(service.clone(), auth));
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .merge(crate::console::routes())
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .layer(middleware::from_fn(log_request))
        .layer(RequestBodyLimitLayer::new(64 * 1024))
        // `check` asks AWS about every role and key: the longest request.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(120),
        ))
        .with_state(service)
}

/// A JSON body with its status.
struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn app_error(e: &AppError) -> Response {
    let status = match e.kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::State => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_GATEWAY,
    };
    error(status, e.message.clone())
}

fn store_error(e: impl std::fmt::Display) -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

/// One log line per request: method, route, status, milliseconds (the Authorization header
/// is never logged; with `--log-format json` the line is a JSON object).
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let began = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = began.elapsed().as_millis() as u64;
    if path == "/healthz" || path == "/readyz" || path == "/metrics" {
        tracing::debug!(target: "snaprelay_server::request", %method, path, status, ms, "request");
    } else {
        tracing::info!(target: "snaprelay_server::request", %method, path, status, ms, "request");
    }
    response
}

/// The bearer-token rule. The token is compared in constant time and never logged.
async fn auth(State(s): Shared, request: Request, next: Next) -> Response {
    let Some(token) = &s.token else {
        return next.run(request).await;
    };
    let needed = request.method() != Method::GET || !s.loopback;
    if needed && !bearer_is(request.headers(), token) {
        return error(
            StatusCode::UNAUTHORIZED,
            "this request needs the header Authorization: Bearer <token>",
        );
    }
    next.run(request).await
}

fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    same(given.trim().as_bytes(), token.as_bytes())
}

/// Equal, in a time that does not depend on where they differ.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn readyz(State(s): Shared) -> Response {
    match s.app.store.sessions(None).await {
        Ok(_) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => store_error(e),
    }
}

async fn metrics(State(s): Shared, headers: HeaderMap) -> Response {
    let policies = s.policies();
    let mut points = Vec::new();
    for p in &policies {
        match s.app.store.policy_restore_points(&p.name).await {
            Ok(found) => points.extend(found),
            Err(e) => return store_error(e),
        }
    }
    let now = jiff::Timestamp::now().as_second().max(0) as u64;
    s.metrics.derive(&policies, &points, now);
    // The Prometheus text format (SPEC 6.6), unless the scraper asks for OpenMetrics, as
    // Prometheus itself does in its `Accept` header.
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            s.metrics.encode(),
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            s.metrics.encode_prometheus(),
        )
            .into_response()
    }
}

async fn policies(State(s): Shared) -> Response {
    let now = jiff::Timestamp::now();
    let mut out = Vec::new();
    for p in s.policies() {
        let mut sessions = match s.app.store.sessions(Some(&p.name)).await {
            Ok(found) => found,
            Err(e) => return store_error(e),
        };
        sessions.truncate(1);
        if let Err(e) = s.session_statuses(&mut sessions).await {
            return store_error(e);
        }
        let last = sessions.first().map(
            |l| json!({"session_id": l.session_id, "status": l.status, "ended_at": l.ended_at}),
        );
        out.push(json!({
            "name": p.name,
            "schedule": p.schedule.as_ref().map(|s| s.expression.clone()),
            "timezone": p.timezone,
            "next_run": p.schedule.as_ref().and_then(|s| s.next_after(now)).map(rfc3339),
            "drill_schedule": p.drill_schedule.as_ref().map(|s| s.expression.clone()),
            "running": s.running(&p.name).map(|(kind, id)| json!({
                "kind": match kind { crate::JobKind::Session => "session", crate::JobKind::Drill => "drill" },
                "id": id,
            })),
            // Who holds the policy's lease (any worker on this state, this one included).
            "lease": match s.app.store.lease_holder(&p.name).await {
                Ok(held) => held.map(|h| json!({
                    "holder": h.holder,
                    "generation": h.generation,
                    "expires_at": h.expires_at,
                })),
                Err(e) => return store_error(e),
            },
            "last_session": last,
        }));
    }
    Json(Value::Array(out)).into_response()
}

fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An optional JSON object body: empty is fine, anything else must be an object.
fn body_object(body: &Bytes) -> Result<serde_json::Map<String, Value>, Box<Response>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Default::default());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "the body must be a JSON object",
        ))),
        Err(e) => Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("the body is not JSON: {e}"),
        ))),
    }
}

fn refusal(r: Refusal, name: &str) -> Response {
    let (status, why) = r.explain(name);
    error(status, why)
}

async fn run(State(s): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    if let Err(r) = body_object(&body) {
        return *r;
    }
    match s.start_session(&name).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({"session_id": id}))).into_response(),
        Err(r) => refusal(r, &name),
    }
}

async fn start_drill(State(s): Shared, Path(name): Path<String>, body: Bytes) -> Response {
    if let Err(r) = body_object(&body) {
        return *r;
    }
    match s.start_drill(&name).await {
        Ok(id) => (StatusCode::ACCEPTED, Json(json!({"drill_id": id}))).into_response(),
        Err(r) => refusal(r, &name),
    }
}

async fn check_policy(State(s): Shared, Path(name): Path<String>) -> Response {
    let Some(policy) = s.policy(&name) else {
        return error(StatusCode::NOT_FOUND, format!("no policy named {name}"));
    };
    match check(&s.app, &policy).await {
        Ok(report) => {
            let mut doc = serde_json::to_value(&report).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut doc {
                m.insert("ok".into(), Value::Bool(report.holds()));
            }
            Json(doc).into_response()
        }
        Err(e) => app_error(&e),
    }
}

async fn sessions(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let limit = match q.get("limit") {
        None => LIMIT_DEFAULT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=LIMIT_MAX).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("limit = {l:?}: a whole number from 1 to {LIMIT_MAX}"),
                );
            }
        },
    };
    if let Some(unknown) = q
        .keys()
        .find(|k| !["policy", "limit"].contains(&k.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown query parameter {unknown:?}; this takes policy and limit"),
        );
    }
    let mut found = match s
        .app
        .store
        .sessions(q.get("policy").map(String::as_str))
        .await
    {
        Ok(found) => found,
        Err(e) => return store_error(e),
    };
    found.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    found.truncate(limit);
    if let Err(e) = s.session_statuses(&mut found).await {
        return store_error(e);
    }
    Json(serde_json::to_value(&found).unwrap_or_default()).into_response()
}

async fn session(State(s): Shared, Path(id): Path<String>) -> Response {
    let store = s.app.store.as_ref();
    let session_id = SessionId::new(id.clone());
    let summary = match store.summary(&session_id).await {
        Ok(Some(summary)) => summary,
        // Started here a moment ago, its first record not written yet.
        Ok(None) => match s.starting_session(&id) {
            Some((policy, started_at)) => {
                return Json(json!({
                    "session_id": id, "policy": policy, "status": "Running",
                    "started_at": started_at, "ended_at": null, "resources": 0, "steps": [],
                }))
                .into_response();
            }
            None => return error(StatusCode::NOT_FOUND, format!("no session {id}")),
        },
        Err(e) => return store_error(e),
    };
    let steps = match store.steps(&session_id).await {
        Ok(steps) => steps,
        Err(e) => return store_error(e),
    };
    let mut finished = false;
    let mut doc = match store.session(&session_id).await {
        Ok(Some(report)) => {
            finished = true;
            serde_json::to_value(&report).unwrap_or_default()
        }
        Ok(None) => {
            let mut one = [summary];
            if let Err(e) = s.session_statuses(&mut one).await {
                return store_error(e);
            }
            serde_json::to_value(&one[0]).unwrap_or_default()
        }
        Err(e) => return store_error(e),
    };
    let copied = match store.copied(&session_id).await {
        Ok(copied) => copied.and_then(|json| serde_json::from_str::<Value>(&json).ok()),
        Err(e) => return store_error(e),
    };
    if let Value::Object(m) = &mut doc {
        // As `run --output json` has them: what it copied, and its time per phase.
        if let Some(copied) = copied {
            m.insert("copied".into(), copied);
        }
        if finished {
            m.insert(
                "phases".into(),
                serde_json::to_value(snaprelay_core::report::Phases::of(&steps))
                    .unwrap_or_default(),
            );
        }
        m.insert(
            "steps".into(),
            serde_json::to_value(&steps).unwrap_or_default(),
        );
    }
    Json(doc).into_response()
}

async fn restore_points(State(s): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    if let Some(unknown) = q
        .keys()
        .find(|k| !["policy", "resource"].contains(&k.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown query parameter {unknown:?}; this takes policy and resource"),
        );
    }
    let filter = PointFilter {
        policy: q.get("policy").map(String::as_str),
        resource: q.get("resource").map(String::as_str),
        ..PointFilter::default()
    };
    match s.app.store.find_restore_points(&filter).await {
        Ok(points) => Json(serde_json::to_value(&points).unwrap_or_default()).into_response(),
        Err(e) => store_error(e),
    }
}

async fn drill_document(State(s): Shared, Path(id): Path<String>) -> Response {
    let op = match s.app.store.operation(&id).await {
        Ok(Some(op)) if op.kind == OperationKind::Drill => op,
        Ok(_) => return error(StatusCode::NOT_FOUND, format!("no drill {id}")),
        Err(e) => return store_error(e),
    };
    let doc = match &op.document {
        Some(d) => serde_json::from_str(d).unwrap_or(Value::Null),
        None => json!({
            "drill_id": op.id,
            "policy": op.policy,
            "status": op.status,
            "started_at": op.started_at,
            "ended_at": null,
            "results": [],
        }),
    };
    Json(doc).into_response()
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn tokens_compare_whole() {
        assert!(same(b"secret-token", b"secret-token"));
        assert!(!same(b"secret-token", b"secret-tokem"));
        assert!(!same(b"secret", b"secret-token"));
        assert!(!same(b"", b"x"));
        assert!(same(b"", b""));
    }
}
