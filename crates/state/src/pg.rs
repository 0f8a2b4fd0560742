//! The state store in PostgreSQL, for teams that run snaprelay on more than one machine: the
//! same records as the SQLite store, and a lease that is a row with a holder, a generation and
//! an expiry taken from the database's clock, so that a worker that dies loses it after its
//! TTL and another takes over (SPEC section 6.7).
//!
//! Versioned migrations are applied at connection under an advisory lock, so that two workers
//! starting together migrate once; a schema newer than this binary knows is refused.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use snaprelay_core::config::ResourceConfig;
use snaprelay_core::model::{ResourceType, SnapshotKind};
use snaprelay_core::ports::{
    Fence, Lease, LeaseHolder, Operation, OperationKind, PointFilter, RestorePointId, SessionId,
    StateStore, StepId, StoreError, Unfinished, redacted_url,
};
use snaprelay_core::report::{
    LastDrill, PlaceReport, PointStatus, RecordedRestorePoint, ResourceReport, RestorePoint,
    SessionProgress, SessionReport, SessionSummary, SnapshotReport, StepDetail, StepKind,
    StepOutcome, StepRecord,
};
use tokio_postgres::{NoTls, Row};

use crate::pg_tls;

/// The schema this binary writes; each entry of [`MIGRATIONS`] brings a database one version on.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    policy      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    status      TEXT NOT NULL DEFAULT 'Running',
    resources   BIGINT NOT NULL DEFAULT 0,
    report      TEXT,
    pid         BIGINT
);
CREATE INDEX sessions_by_policy ON sessions(policy, started_at);
CREATE TABLE tasks (
    seq           BIGSERIAL,
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    region        TEXT NOT NULL,
    status        TEXT NOT NULL,
    messages      TEXT NOT NULL,
    report        TEXT,
    PRIMARY KEY (session_id, resource_id)
);
CREATE TABLE steps (
    id          BIGSERIAL PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    resource_id TEXT NOT NULL,
    step        TEXT NOT NULL,
    place       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX steps_by_session ON steps(session_id, id);
CREATE TABLE restore_points (
    id            BIGSERIAL PRIMARY KEY,
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    policy        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('source', 'replica')),
    account       TEXT NOT NULL,
    region        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    deleted_at    TEXT
);
CREATE INDEX restore_points_by_resource ON restore_points(policy, resource_id, account, region);
CREATE TABLE restore_point_snapshots (
    seq              BIGSERIAL,
    restore_point_id BIGINT NOT NULL REFERENCES restore_points(id),
    snapshot_id      TEXT NOT NULL,
    source_id        TEXT NOT NULL,
    volume_id        TEXT NOT NULL,
    device           TEXT,
    kms_key_id       TEXT,
    size_gib         BIGINT,
    deleted_at       TEXT,
    PRIMARY KEY (restore_point_id, snapshot_id)
);
CREATE TABLE leases (
    policy     TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    generation BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
"#,
    r#"
ALTER TABLE restore_points ADD COLUMN config TEXT;
CREATE TABLE operations (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('restore', 'drill')),
    policy      TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    holder      TEXT NOT NULL,
    document    TEXT
);
CREATE INDEX operations_by_kind ON operations(kind, policy, started_at);
CREATE TABLE ticks (
    policy     TEXT NOT NULL,
    what       TEXT NOT NULL,
    tick       TEXT NOT NULL,
    holder     TEXT NOT NULL,
    PRIMARY KEY (policy, what, tick)
);
CREATE TABLE point_drills (
    restore_point_id BIGINT PRIMARY KEY REFERENCES restore_points(id),
    drill_id         TEXT NOT NULL,
    status           TEXT NOT NULL,
    rto_seconds      DOUBLE PRECISION,
    at               TEXT NOT NULL
);
"#,
    // 3: what each session copied (`run`'s `copied`), measured after it ended.
    "ALTER TABLE sessions ADD COLUMN copied TEXT;",
];

/// How long one statement may run before the server ends it, unless the URL says otherwise.
const STATEMENT_TIMEOUT: &str = "30s";

/// The advisory lock migrations are applied under (any constant of ours).
const MIGRATION_LOCK: i64 = 0x736e_6170_7265_6c61; // "snaprela"

/// The PostgreSQL state store: a pool of connections to one database.
pub struct PgStore {
    pool: Pool,
}

fn err(context: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| {
        // The driver's message names the database's complaint; the URL (and its password) is
        // never part of it.
        let why = e
            .as_db_error()
            .map_or_else(|| with_causes(&e), |d| d.message().to_owned());
        StoreError(format!("{context}: {why}"))
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError(format!(
        "cannot reach the PostgreSQL state: {}",
        with_causes(&e)
    ))
}

/// An error with the causes under it (a TLS handshake's names the certificate's fault), each
/// once: some errors repeat their cause in their own text.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// A PostgreSQL state URL read (its form, `sslmode`, the root certificate it names), without
/// connecting: what is wrong with a URL is told apart from a database that does not answer.
pub struct PgUrl {
    url: String,
    config: tokio_postgres::Config,
    /// `None`: no TLS.
    tls: Option<rustls::ClientConfig>,
}

impl PgUrl {
    /// Reads `url` (`postgres://USER:PASS@HOST:PORT/DB`, with libpq's `sslmode` and
    /// `sslrootcert`: see [`crate::pg_tls`]).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        let bad = |why: String| StoreError(format!("{}: {why}", redacted_url(url)));
        let tls = pg_tls::split_url(url).map_err(bad)?;
        let mut config: tokio_postgres::Config = tls.driver_url.parse().map_err(|e| {
            StoreError(format!(
                "{} is not a PostgreSQL URL: {e}",
                redacted_url(url)
            ))
        })?;
        config.ssl_mode(tls.mode.driver_mode());
        Ok(Self {
            url: url.to_owned(),
            config,
            tls: pg_tls::client_config(tls.mode, tls.root_cert.as_deref()).map_err(bad)?,
        })
    }
}

impl PgStore {
    /// Connects to `url` (see [`PgUrl::parse`]) and brings its schema up to date.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(PgUrl::parse(url)?).await
    }

    /// Connects to the database `parsed` names and brings its schema up to date.
    pub async fn open(parsed: PgUrl) -> Result<Self, StoreError> {
        let PgUrl {
            url,
            mut config,
            tls,
        } = parsed;
        // A worker must notice a database gone away rather than wait on it for ever.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        // A database host that vanished (or hangs) is noticed in about a minute rather than
        // after the kernel's two hours: keepalive probes, and unacknowledged writes give up.
        config
            .keepalives_idle(std::time::Duration::from_secs(30))
            .keepalives_interval(std::time::Duration::from_secs(5))
            .keepalives_retries(4)
            .tcp_user_timeout(std::time::Duration::from_secs(30));
        // A database that answers but never finishes (a statement stuck behind someone's lock,
        // say) ends the statement after 30 s, server side, rather than holding a session for
        // ever; the URL's own `options=-c statement_timeout=…` wins.
        let options = config.get_options().unwrap_or_default().to_owned();
        if !options.contains("statement_timeout") {
            config.options(format!("{options} -c statement_timeout={STATEMENT_TIMEOUT}").trim());
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match tls {
            None => Manager::from_config(config, NoTls, manager_config),
            Some(rustls) => Manager::from_config(
                config,
                tokio_postgres_rustls::MakeRustlsConnect::new(rustls),
                manager_config,
            ),
        };
        // Bounded waits: a database that stopped answering is an error in seconds, which
        // stops the session where it stands (see `keep` in the application layer).
        let pool = Pool::builder(manager)
            .max_size(8)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(std::time::Duration::from_secs(15)))
            .create_timeout(Some(std::time::Duration::from_secs(15)))
            .recycle_timeout(Some(std::time::Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError(format!("cannot make a connection pool: {e}")))?;
        let store = Self { pool };
        store.migrate(&url).await?;
        Ok(store)
    }

    /// How a connection of this store is protected, as the server sees it: `TLSv1.3`, say,
    /// or `none`.
    pub async fn encryption(&self) -> Result<String, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
                &[],
            )
            .await
            .map_err(err("cannot read the connection's encryption"))?;
        Ok(row.map_or_else(|| "none".to_owned(), |r| r.get(0)))
    }

    /// A run-time setting of a connection of this store (`SHOW name`), as the server has it.
    pub async fn setting(&self, name: &str) -> Result<String, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .map_err(err("cannot read a setting"))?;
        Ok(row.get(0))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }

    /// Applies the migrations this database lacks, under an advisory lock.
    async fn migrate(&self, url: &str) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let fail = err("cannot migrate the PostgreSQL state");
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(&fail)?;
        let result = async {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS snaprelay_schema (version INTEGER NOT NULL)",
                )
                .await
                .map_err(&fail)?;
            let version: i32 = client
                .query_opt("SELECT version FROM snaprelay_schema", &[])
                .await
                .map_err(&fail)?
                .map_or(0, |r| r.get(0));
            let known = MIGRATIONS.len() as i32;
            if version > known {
                return Err(StoreError(format!(
                    "the PostgreSQL state {} was written by a newer snaprelay (schema \
                     {version}, this one knows {known}); upgrade snaprelay",
                    redacted_url(url)
                )));
            }
            let tx = client.transaction().await.map_err(&fail)?;
            for sql in &MIGRATIONS[version as usize..] {
                tx.batch_execute(sql).await.map_err(&fail)?;
            }
            tx.execute("DELETE FROM snaprelay_schema", &[])
                .await
                .map_err(&fail)?;
            tx.execute("INSERT INTO snaprelay_schema VALUES ($1)", &[&known])
                .await
                .map_err(&fail)?;
            tx.commit().await.map_err(&fail)
        }
        .await;
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(&fail)?;
        result
    }
}

/// The columns of an [`Operation`], read by [`operation`].
const OPERATION: &str =
    "SELECT id, kind, policy, status, started_at, ended_at, holder, document FROM operations";

fn operation(r: &Row) -> Result<Operation, StoreError> {
    let kind: String = r.get(1);
    Ok(Operation {
        id: r.get(0),
        kind: OperationKind::parse(&kind)
            .ok_or_else(|| StoreError(format!("unknown operation kind {kind:?}")))?,
        policy: r.get(2),
        status: r.get(3),
        started_at: r.get(4),
        ended_at: r.get(5),
        holder: r.get(6),
        document: r.get(7),
    })
}

fn summary(r: &Row) -> SessionSummary {
    SessionSummary {
        session_id: SessionId::new(r.get::<_, String>(0)),
        policy: r.get(1),
        status: r.get(2),
        started_at: r.get(3),
        ended_at: r.get(4),
        resources: usize::try_from(r.get::<_, i64>(5)).unwrap_or(0),
    }
}

/// The columns of a summary; an unfinished session counts the resources it had begun.
const SUMMARY: &str = "SELECT id, policy, status, started_at, ended_at, \
     CASE WHEN ended_at IS NULL THEN (SELECT COUNT(DISTINCT resource_id) FROM steps \
     WHERE steps.session_id = sessions.id AND resource_id <> '') ELSE resources END \
     FROM sessions";

async fn task_reports(
    client: &impl GenericClient,
    session: &SessionId,
) -> Result<Vec<ResourceReport>, StoreError> {
    let rows = client
        .query(
            "SELECT report FROM tasks WHERE session_id = $1 AND report IS NOT NULL ORDER BY seq",
            &[&session.as_str()],
        )
        .await
        .map_err(err("cannot read the session"))?;
    rows.iter()
        .map(|r| {
            serde_json::from_str(r.get::<_, &str>(0)).map_err(|e| {
                StoreError(format!(
                    "a task report of session {session} is unreadable: {e}"
                ))
            })
        })
        .collect()
}

async fn insert_task(
    client: &impl GenericClient,
    session: &SessionId,
    task: &ResourceReport,
) -> Result<(), StoreError> {
    let encode = |e: serde_json::Error| StoreError(format!("cannot encode a task report: {e}"));
    let messages = serde_json::to_string(&task.messages).map_err(encode)?;
    let report = serde_json::to_string(task).map_err(encode)?;
    client
        .execute(
            "INSERT INTO tasks (session_id, resource_type, resource_id, region, status, messages, \
             report) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &session.as_str(),
                &task.resource_type.as_str(),
                &task.id,
                &task.region,
                &task.status.as_str(),
                &messages,
                &report,
            ],
        )
        .await
        .map(drop)
        .map_err(err("cannot record a task"))
}

async fn steps(
    client: &impl GenericClient,
    session: &SessionId,
) -> Result<Vec<StepRecord>, StoreError> {
    let rows = client
        .query(
            "SELECT resource_id, step, place, started_at, ended_at, outcome, detail FROM steps \
             WHERE session_id = $1 ORDER BY id",
            &[&session.as_str()],
        )
        .await
        .map_err(err("cannot read steps"))?;
    rows.iter()
        .map(|r| {
            let unknown = |what: &str, value: &str| {
                StoreError(format!(
                    "a step of session {session} has an unknown {what} {value:?}: written by a \
                     newer snaprelay?"
                ))
            };
            let step: &str = r.get(1);
            let outcome: &str = r.get(5);
            let kind = StepKind::parse(step).ok_or_else(|| unknown("kind", step))?;
            Ok(StepRecord {
                resource_id: r.get(0),
                step: kind,
                place: r.get(2),
                started_at: r.get(3),
                ended_at: r.get(4),
                outcome: StepOutcome::parse(outcome).ok_or_else(|| unknown("outcome", outcome))?,
                detail: StepDetail::from_stored(kind, r.get(6)),
            })
        })
        .collect()
}

async fn find_points(
    client: &impl GenericClient,
    filter: &PointFilter<'_>,
) -> Result<Vec<RecordedRestorePoint>, StoreError> {
    let fail = err("cannot read restore points");
    let rows = client
        .query(
            "SELECT p.id, policy, resource_type, resource_id, kind, account, region, created_at, \
             session_id, deleted_at, config, d.drill_id, d.status, d.rto_seconds, d.at \
             FROM restore_points p LEFT JOIN point_drills d ON d.restore_point_id = p.id \
             WHERE ($1::TEXT IS NULL OR session_id = $1) AND ($2::TEXT IS NULL OR policy = $2) \
             AND ($3::TEXT IS NULL OR resource_id = $3) ORDER BY p.id",
            &[
                &filter.session.map(SessionId::as_str),
                &filter.policy,
                &filter.resource,
            ],
        )
        .await
        .map_err(&fail)?;
    // Every snapshot of those points in one round trip, not one query per point.
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let mut snapshots_of: HashMap<i64, Vec<Row>> = HashMap::new();
    for s in client
        .query(
            "SELECT restore_point_id, snapshot_id, source_id, volume_id, kms_key_id, device, \
             size_gib, deleted_at FROM restore_point_snapshots WHERE restore_point_id = ANY($1) \
             ORDER BY seq",
            &[&ids],
        )
        .await
        .map_err(&fail)?
    {
        snapshots_of.entry(s.get(0)).or_default().push(s);
    }
    let mut points = Vec::with_capacity(rows.len());
    for r in rows {
        let word = |i: usize| -> String { r.get(i) };
        let resource_type = ResourceType::parse(&word(2))
            .ok_or_else(|| StoreError(format!("unknown resource type {:?}", word(2))))?;
        let kind = SnapshotKind::parse(&word(4))
            .ok_or_else(|| StoreError(format!("unknown restore point kind {:?}", word(4))))?;
        let id: i64 = r.get(0);
        let mut recorded = RecordedRestorePoint {
            id: RestorePointId(id),
            session_id: SessionId::new(word(8)),
            status: match r.get::<_, Option<String>>(9) {
                Some(_) => PointStatus::Deleted,
                None => PointStatus::Complete,
            },
            point: RestorePoint {
                policy: word(1),
                resource_type,
                resource_id: word(3),
                kind,
                created_at: word(7),
                place: PlaceReport {
                    account: word(5),
                    region: word(6),
                    snapshots: Vec::new(),
                },
                config: r
                    .get::<_, Option<String>>(10)
                    .as_deref()
                    .and_then(ResourceConfig::from_json),
            },
            deleted_snapshots: Vec::new(),
            last_drill: r.get::<_, Option<String>>(11).map(|drill_id| LastDrill {
                drill_id,
                status: r.get(12),
                rto_seconds: r.get(13),
                at: r.get(14),
            }),
        };
        for s in snapshots_of.remove(&id).unwrap_or_default() {
            let snapshot = SnapshotReport {
                id: s.get(1),
                source_id: s.get(2),
                volume_id: s.get(3),
                kms_key_id: s.get(4),
                device: s.get(5),
                size_gib: s.get(6),
            };
            if s.get::<_, Option<String>>(7).is_some() {
                recorded.deleted_snapshots.push(snapshot.id.clone());
            }
            recorded.point.place.snapshots.push(snapshot);
        }
        if recorded.status == PointStatus::Complete && !recorded.deleted_snapshots.is_empty() {
            recorded.status = PointStatus::Deleting;
        }
        points.push(recorded);
    }
    Ok(points)
}

/// A restore point, whole or not at all, numbered `id` or the next number; its number. An
/// imported number moves the sequence past it, so that later points never collide.
async fn insert_point(
    client: &mut deadpool_postgres::Object,
    session: &SessionId,
    id: Option<i64>,
    p: &RestorePoint,
) -> Result<i64, StoreError> {
    let fail = err("cannot record a restore point");
    let tx = client.transaction().await.map_err(&fail)?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO restore_points (id, session_id, policy, resource_type, resource_id, \
             kind, account, region, created_at, config) VALUES (COALESCE($1, \
             nextval('restore_points_id_seq')), $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            &[
                &id,
                &session.as_str(),
                &p.policy,
                &p.resource_type.as_str(),
                &p.resource_id,
                &p.kind.as_str(),
                &p.place.account,
                &p.place.region,
                &p.created_at,
                &p.config.as_ref().map(ResourceConfig::to_json),
            ],
        )
        .await
        .map_err(&fail)?
        .get(0);
    tx.execute(
        "SELECT setval('restore_points_id_seq', GREATEST($1, (SELECT last_value FROM \
         restore_points_id_seq)))",
        &[&id],
    )
    .await
    .map_err(&fail)?;
    for s in &p.place.snapshots {
        tx.execute(
            "INSERT INTO restore_point_snapshots (restore_point_id, snapshot_id, source_id, \
             volume_id, kms_key_id, device, size_gib) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &id,
                &s.id,
                &s.source_id,
                &s.volume_id,
                &s.kms_key_id,
                &s.device,
                &s.size_gib,
            ],
        )
        .await
        .map_err(&fail)?;
    }
    tx.commit().await.map_err(&fail)?;
    Ok(id)
}

#[async_trait]
impl StateStore for PgStore {
    async fn begin_session(
        &self,
        session: &SessionId,
        policy: &str,
        started_at: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO sessions (id, policy, started_at, pid) VALUES ($1, $2, $3, $4)",
                &[
                    &session.as_str(),
                    &policy,
                    &started_at,
                    &i64::from(std::process::id()),
                ],
            )
            .await
            .map(drop)
            .map_err(err("cannot record the session"))
    }

    async fn resume_session(&self, session: &SessionId) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE sessions SET pid = $2 WHERE id = $1 AND ended_at IS NULL",
                &[&session.as_str(), &i64::from(std::process::id())],
            )
            .await
            .map(drop)
            .map_err(err("cannot record the resumed session"))
    }

    async fn finish_session(&self, report: &SessionReport) -> Result<(), StoreError> {
        let header = SessionReport {
            resources: Vec::new(),
            ..report.clone()
        };
        let json = serde_json::to_string(&header)
            .map_err(|e| StoreError(format!("cannot encode the report: {e}")))?;
        let fail = err("cannot record the end of the session");
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(&fail)?;
        let id = report.session_id.as_str();
        // Tasks were recorded as they ended; they are written again in the report's order.
        tx.execute("DELETE FROM tasks WHERE session_id = $1", &[&id])
            .await
            .map_err(&fail)?;
        for task in &report.resources {
            insert_task(&tx, &report.session_id, task).await?;
        }
        tx.execute(
            "UPDATE sessions SET ended_at = $2, status = $3, resources = $4, report = $5 \
             WHERE id = $1",
            &[
                &id,
                &report.ended_at,
                &report.status.as_str(),
                &(report.resources.len() as i64),
                &json,
            ],
        )
        .await
        .map_err(&fail)?;
        tx.commit().await.map_err(&fail)
    }

    async fn sessions(&self, policy: Option<&str>) -> Result<Vec<SessionSummary>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                &format!(
                    "{SUMMARY} WHERE $1::TEXT IS NULL OR policy = $1 ORDER BY started_at DESC, \
                     id DESC"
                ),
                &[&policy],
            )
            .await
            .map_err(err("cannot list sessions"))?;
        Ok(rows.iter().map(summary).collect())
    }

    async fn summary(&self, session: &SessionId) -> Result<Option<SessionSummary>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(&format!("{SUMMARY} WHERE id = $1"), &[&session.as_str()])
            .await
            .map_err(err("cannot read the session"))?;
        Ok(row.as_ref().map(summary))
    }

    async fn record_copied(&self, session: &SessionId, copied: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE sessions SET copied = $2 WHERE id = $1",
                &[&session.as_str(), &copied],
            )
            .await
            .map_err(err("cannot record what the session copied"))?;
        Ok(())
    }

    async fn copied(&self, session: &SessionId) -> Result<Option<String>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT copied FROM sessions WHERE id = $1",
                &[&session.as_str()],
            )
            .await
            .map_err(err("cannot read what the session copied"))?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    async fn session(&self, session: &SessionId) -> Result<Option<SessionReport>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT report FROM sessions WHERE id = $1",
                &[&session.as_str()],
            )
            .await
            .map_err(err("cannot read the session"))?;
        let Some(json) = row.and_then(|r| r.get::<_, Option<String>>(0)) else {
            return Ok(None);
        };
        let mut report: SessionReport = serde_json::from_str(&json).map_err(|e| {
            StoreError(format!(
                "the stored report of session {session} is unreadable: {e}"
            ))
        })?;
        report
            .resources
            .extend(task_reports(&client, session).await?);
        Ok(Some(report))
    }

    async fn unfinished_sessions(
        &self,
        policy: Option<&str>,
    ) -> Result<Vec<Unfinished>, StoreError> {
        let rows = self
            .client()
            .await?
            .query(
                "SELECT id, policy, pid FROM sessions WHERE ($1::TEXT IS NULL OR policy = $1) \
                 AND ended_at IS NULL ORDER BY started_at DESC, id DESC",
                &[&policy],
            )
            .await
            .map_err(err("cannot read sessions"))?;
        Ok(rows
            .iter()
            .map(|r| Unfinished {
                id: SessionId::new(r.get::<_, String>(0)),
                policy: r.get(1),
                pid: r
                    .get::<_, Option<i64>>(2)
                    .and_then(|p| u32::try_from(p).ok()),
            })
            .collect())
    }

    async fn progress_of(&self, session: &SessionId) -> Result<SessionProgress, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT policy, started_at FROM sessions WHERE id = $1",
                &[&session.as_str()],
            )
            .await
            .map_err(err("cannot read the session"))?
            .ok_or_else(|| StoreError(format!("no session {session} in the state")))?;
        let points = find_points(
            &client,
            &PointFilter {
                session: Some(session),
                ..PointFilter::default()
            },
        )
        .await?;
        Ok(SessionProgress {
            session_id: session.clone(),
            policy: row.get(0),
            started_at: row.get(1),
            tasks: task_reports(&client, session).await?,
            points: points.into_iter().map(|p| p.point).collect(),
            steps: steps(&client, session).await?,
        })
    }

    async fn record_step(&self, session: &SessionId, step: &StepRecord) -> Result<(), StoreError> {
        self.begin_step(session, step).await.map(drop)
    }

    async fn begin_step(&self, session: &SessionId, s: &StepRecord) -> Result<StepId, StoreError> {
        let row = self
            .client()
            .await?
            .query_one(
                "INSERT INTO steps (session_id, resource_id, step, place, started_at, ended_at, \
                 outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
                &[
                    &session.as_str(),
                    &s.resource_id,
                    &s.step.as_str(),
                    &s.place,
                    &s.started_at,
                    &s.ended_at,
                    &s.outcome.as_str(),
                    &s.detail.to_json(),
                ],
            )
            .await
            .map_err(err("cannot record a step"))?;
        Ok(StepId(row.get(0)))
    }

    async fn begin_step_fenced(
        &self,
        session: &SessionId,
        s: &StepRecord,
        fence: &Fence,
    ) -> Result<StepId, StoreError> {
        // One statement: the step is recorded only if the lease is still this holder's, in
        // this generation, and unexpired by the database's clock.
        let row = self
            .client()
            .await?
            .query_opt(
                "INSERT INTO steps (session_id, resource_id, step, place, started_at, ended_at, \
                 outcome, detail) SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 \
                 FROM leases WHERE policy = $9 AND holder = $10 AND generation = $11 AND \
                 expires_at >= now()) RETURNING id",
                &[
                    &session.as_str(),
                    &s.resource_id,
                    &s.step.as_str(),
                    &s.place,
                    &s.started_at,
                    &s.ended_at,
                    &s.outcome.as_str(),
                    &s.detail.to_json(),
                    &fence.policy,
                    &fence.holder,
                    &(fence.generation as i64),
                ],
            )
            .await
            .map_err(err("cannot record a step"))?;
        match row {
            Some(r) => Ok(StepId(r.get(0))),
            None => Err(StoreError(format!(
                "the lease of policy {} (generation {}) is no longer held by {}: another worker \
                 took the session over; this one makes no further change",
                fence.policy, fence.generation, fence.holder
            ))),
        }
    }

    async fn lease_is(&self, fence: &Fence) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT 1 FROM leases WHERE policy = $1 AND holder = $2 AND generation = $3 AND \
                 expires_at >= now()",
                &[&fence.policy, &fence.holder, &(fence.generation as i64)],
            )
            .await
            .map_err(err("cannot read the policy's lease"))?;
        Ok(row.is_some())
    }

    async fn end_step(&self, id: StepId, s: &StepRecord) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE steps SET ended_at = $2, outcome = $3, detail = $4 WHERE id = $1",
                &[&id.0, &s.ended_at, &s.outcome.as_str(), &s.detail.to_json()],
            )
            .await
            .map(drop)
            .map_err(err("cannot record the end of a step"))
    }

    async fn steps(&self, session: &SessionId) -> Result<Vec<StepRecord>, StoreError> {
        steps(&self.client().await?, session).await
    }

    async fn record_task(
        &self,
        session: &SessionId,
        report: &ResourceReport,
    ) -> Result<(), StoreError> {
        let fail = err("cannot record a task");
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(&fail)?;
        tx.execute(
            "DELETE FROM tasks WHERE session_id = $1 AND resource_id = $2",
            &[&session.as_str(), &report.id],
        )
        .await
        .map_err(&fail)?;
        insert_task(&tx, session, report).await?;
        tx.commit().await.map_err(&fail)
    }

    async fn record_restore_point(
        &self,
        session: &SessionId,
        p: &RestorePoint,
    ) -> Result<RestorePointId, StoreError> {
        insert_point(&mut self.client().await?, session, None, p)
            .await
            .map(RestorePointId)
    }

    async fn import_restore_point(
        &self,
        session: &SessionId,
        id: RestorePointId,
        p: &RestorePoint,
    ) -> Result<(), StoreError> {
        insert_point(&mut self.client().await?, session, Some(id.0), p)
            .await
            .map(drop)
    }

    async fn find_restore_points(
        &self,
        filter: &PointFilter<'_>,
    ) -> Result<Vec<RecordedRestorePoint>, StoreError> {
        find_points(&self.client().await?, filter).await
    }

    async fn record_snapshot_deleted(
        &self,
        point: RestorePointId,
        snapshot_id: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE restore_point_snapshots SET deleted_at = $3 WHERE restore_point_id = $1 \
                 AND snapshot_id = $2",
                &[&point.0, &snapshot_id, &at],
            )
            .await
            .map(drop)
            .map_err(err("cannot record a deleted snapshot"))
    }

    async fn record_restore_point_deleted(
        &self,
        point: RestorePointId,
        at: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE restore_points SET deleted_at = $2 WHERE id = $1",
                &[&point.0, &at],
            )
            .await
            .map(drop)
            .map_err(err("cannot record a deleted restore point"))
    }

    async fn begin_operation(&self, op: &Operation) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO operations (id, kind, policy, status, started_at, ended_at, holder, \
                 document) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &op.id,
                    &op.kind.as_str(),
                    &op.policy,
                    &op.status,
                    &op.started_at,
                    &op.ended_at,
                    &op.holder,
                    &op.document,
                ],
            )
            .await
            .map(drop)
            .map_err(err("cannot record a restore or drill"))
    }

    async fn end_operation(
        &self,
        id: &str,
        status: &str,
        ended_at: &str,
        document: &str,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE operations SET status = $2, ended_at = $3, document = $4 WHERE id = $1",
                &[&id, &status, &ended_at, &document],
            )
            .await
            .map(drop)
            .map_err(err("cannot record the end of a restore or drill"))
    }

    async fn operations(
        &self,
        kind: OperationKind,
        policy: Option<&str>,
    ) -> Result<Vec<Operation>, StoreError> {
        self.client()
            .await?
            .query(
                &format!(
                    "{OPERATION} WHERE kind = $1 AND ($2::TEXT IS NULL OR policy = $2) \
                     ORDER BY started_at DESC, id DESC"
                ),
                &[&kind.as_str(), &policy],
            )
            .await
            .map_err(err("cannot read restores and drills"))?
            .iter()
            .map(operation)
            .collect()
    }

    async fn operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        self.client()
            .await?
            .query_opt(&format!("{OPERATION} WHERE id = $1"), &[&id])
            .await
            .map_err(err("cannot read a restore or drill"))?
            .as_ref()
            .map(operation)
            .transpose()
    }

    async fn claim_tick(
        &self,
        policy: &str,
        what: &str,
        tick: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO ticks (policy, what, tick, holder) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT DO NOTHING",
                &[&policy, &what, &tick, &holder],
            )
            .await
            .map(|n| n == 1)
            .map_err(err("cannot claim a schedule tick"))
    }

    async fn record_drill_of(
        &self,
        point: RestorePointId,
        drill: &LastDrill,
    ) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "INSERT INTO point_drills (restore_point_id, drill_id, status, rto_seconds, at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (restore_point_id) DO UPDATE SET \
                 drill_id = excluded.drill_id, status = excluded.status, \
                 rto_seconds = excluded.rto_seconds, at = excluded.at",
                &[
                    &point.0,
                    &drill.drill_id,
                    &drill.status,
                    &drill.rto_seconds,
                    &drill.at,
                ],
            )
            .await
            .map(drop)
            .map_err(err("cannot record a drill of a restore point"))
    }

    async fn acquire_lease(
        &self,
        policy: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        // Taken when nobody has it or its holder's lapsed, by the database's clock; each taking
        // is a new generation, which fences out the holder whose lease lapsed.
        let seconds = ttl.as_secs_f64();
        let row = self
            .client()
            .await?
            .query_opt(
                "INSERT INTO leases (policy, holder, generation, expires_at) \
                 VALUES ($1, $2, 1, now() + make_interval(secs => $3)) \
                 ON CONFLICT (policy) DO UPDATE SET holder = EXCLUDED.holder, \
                 generation = leases.generation + 1, expires_at = EXCLUDED.expires_at \
                 WHERE leases.expires_at < now() RETURNING generation",
                &[&policy, &holder, &seconds],
            )
            .await
            .map_err(err("cannot take the policy's lease"))?;
        Ok(row.map(|r| Lease {
            policy: policy.to_owned(),
            holder: holder.to_owned(),
            generation: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            ttl: Some(ttl),
            guard: None,
        }))
    }

    async fn renew_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        let seconds = lease.ttl.unwrap_or_default().as_secs_f64();
        let renewed = self
            .client()
            .await?
            .execute(
                "UPDATE leases SET expires_at = now() + make_interval(secs => $4) \
                 WHERE policy = $1 AND holder = $2 AND generation = $3 AND expires_at >= now()",
                &[
                    &lease.policy,
                    &lease.holder,
                    &(lease.generation as i64),
                    &seconds,
                ],
            )
            .await
            .map_err(err("cannot renew the policy's lease"))?;
        Ok(renewed == 1)
    }

    async fn release_lease(&self, lease: Lease) -> Result<(), StoreError> {
        self.client()
            .await?
            // Lapsed at once rather than deleted: the next holder's generation still grows.
            .execute(
                "UPDATE leases SET expires_at = now() - interval '1 second' \
                 WHERE policy = $1 AND generation = $2",
                &[&lease.policy, &(lease.generation as i64)],
            )
            .await
            .map(drop)
            .map_err(err("cannot release the policy's lease"))
    }

    fn leases_lapse(&self) -> bool {
        true
    }

    async fn release_leases_of(&self, holder: &str) -> Result<(), StoreError> {
        self.client()
            .await?
            .execute(
                "UPDATE leases SET expires_at = now() - interval '1 second' \
                 WHERE holder = $1 AND expires_at >= now()",
                &[&holder],
            )
            .await
            .map(drop)
            .map_err(err("cannot release the worker's leases"))
    }

    async fn lease_held(&self, policy: &str) -> Result<bool, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT 1 FROM leases WHERE policy = $1 AND expires_at >= now()",
                &[&policy],
            )
            .await
            .map_err(err("cannot read the policy's lease"))?;
        Ok(row.is_some())
    }

    async fn lease_holder(&self, policy: &str) -> Result<Option<LeaseHolder>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT holder, generation, \
                 to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                 FROM leases WHERE policy = $1 AND expires_at >= now()",
                &[&policy],
            )
            .await
            .map_err(err("cannot read the policy's lease"))?;
        Ok(row.map(|r| LeaseHolder {
            holder: r.get(0),
            generation: u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            expires_at: r.get(2),
        }))
    }
}
