//! snaprelay's state store: sessions, their steps, restore points, in an embedded SQLite file
//! (this file) or in PostgreSQL ([`PgStore`], for several workers).
//!
//! The file lives in the per-user data directory unless `--state` names another. WAL mode
//! keeps it readable (for `sessions list`) while a run writes it.

use std::collections::HashSet;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use snaprelay_core::config::ResourceConfig;
use snaprelay_core::model::{ResourceType, SnapshotKind};
use snaprelay_core::ports::{
    Lease, LeaseHolder, Operation, OperationKind, PointFilter, RestorePointId, SessionId,
    StateStore, StepId, StoreError, Unfinished,
};
use snaprelay_core::report::{
    LastDrill, PlaceReport, PointStatus, RecordedRestorePoint, ResourceReport, RestorePoint,
    SessionProgress, SessionReport, SessionSummary, SnapshotReport, StepDetail, StepKind,
    StepOutcome, StepRecord,
};

/// What keeps a policy's lease held in this process: the locked file, or for an in-memory
/// store its entry in the store's set of held leases.
enum Hold {
    File(#[allow(dead_code)] std::fs::File),
    Memory(Arc<Mutex<HashSet<String>>>, String),
}

impl Drop for Hold {
    fn drop(&mut self) {
        if let Hold::Memory(held, policy) = self {
            held.lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(policy);
        }
    }
}

/// Bumped with every change to [`SCHEMA`]; a later version migrates from the earlier ones.
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY,
    policy      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    status      TEXT NOT NULL DEFAULT 'Running',
    resources   INTEGER NOT NULL DEFAULT 0,
    report      TEXT,
    pid         INTEGER,
    copied      TEXT
);
CREATE INDEX IF NOT EXISTS sessions_by_policy ON sessions(policy, started_at);
CREATE TABLE IF NOT EXISTS tasks (
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    region        TEXT NOT NULL,
    status        TEXT NOT NULL,
    messages      TEXT NOT NULL,
    report        TEXT,
    PRIMARY KEY (session_id, resource_id)
);
CREATE TABLE IF NOT EXISTS steps (
    id          INTEGER PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions(id),
    resource_id TEXT NOT NULL,
    step        TEXT NOT NULL,
    place       TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS steps_by_session ON steps(session_id, id);
CREATE TABLE IF NOT EXISTS restore_points (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL REFERENCES sessions(id),
    policy        TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    resource_id   TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('source', 'replica')),
    account       TEXT NOT NULL,
    region        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    deleted_at    TEXT,
    config        TEXT
);
CREATE INDEX IF NOT EXISTS restore_points_by_resource ON restore_points(policy, resource_id, account, region);
CREATE TABLE IF NOT EXISTS restore_point_snapshots (
    restore_point_id INTEGER NOT NULL REFERENCES restore_points(id),
    snapshot_id      TEXT NOT NULL,
    source_id        TEXT NOT NULL,
    volume_id        TEXT NOT NULL,
    device           TEXT,
    kms_key_id       TEXT,
    size_gib         INTEGER,
    deleted_at       TEXT,
    PRIMARY KEY (restore_point_id, snapshot_id)
);
CREATE TABLE IF NOT EXISTS operations (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('restore', 'drill')),
    policy      TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    holder      TEXT NOT NULL,
    document    TEXT
);
CREATE INDEX IF NOT EXISTS operations_by_kind ON operations(kind, policy, started_at);
CREATE TABLE IF NOT EXISTS ticks (
    policy     TEXT NOT NULL,
    what       TEXT NOT NULL,
    tick       TEXT NOT NULL,
    holder     TEXT NOT NULL,
    PRIMARY KEY (policy, what, tick)
);
CREATE TABLE IF NOT EXISTS point_drills (
    restore_point_id INTEGER PRIMARY KEY REFERENCES restore_points(id),
    drill_id         TEXT NOT NULL,
    status           TEXT NOT NULL,
    rto_seconds      REAL,
    at               TEXT NOT NULL
);
"#;

/// Files made before the schema had a version lack the device of each snapshot.
fn migrate_to_1(conn: &Connection) -> rusqlite::Result<()> {
    let has_device: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info('restore_point_snapshots') WHERE name = 'device'",
        [],
        |r| r.get(0),
    )?;
    if !has_device {
        conn.execute(
            "ALTER TABLE restore_point_snapshots ADD COLUMN device TEXT",
            [],
        )?;
    }
    Ok(())
}

/// Version 2 keeps each task's report in its own row (a fleet's session report is tens of
/// megabytes as one document; version-1 sessions keep theirs whole in the session row) and the
/// size of each snapshot's volume, when retention deleted a restore point and each of its
/// snapshots, and the process that ran each session (gc leaves running sessions alone).
fn migrate_to_2(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "tasks", "report", "TEXT")?;
    add_column(conn, "restore_point_snapshots", "size_gib", "INTEGER")?;
    add_column(conn, "restore_point_snapshots", "deleted_at", "TEXT")?;
    add_column(conn, "restore_points", "deleted_at", "TEXT")?;
    add_column(conn, "sessions", "pid", "INTEGER")
}

/// Version 3 keeps what a restore rebuilds with each restore point (SPEC 6.1), and the
/// restores and drills (the `operations` and `point_drills` tables, made by [`SCHEMA`]).
fn migrate_to_3(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "restore_points", "config", "TEXT")?;
    // The schedule ticks `serve` claims (made by SCHEMA too; here for files that had
    // version 3 before the table was part of it).
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS ticks (policy TEXT NOT NULL, what TEXT NOT NULL, \
         tick TEXT NOT NULL, holder TEXT NOT NULL, PRIMARY KEY (policy, what, tick))",
    )
}

/// Version 4 keeps what each session copied (`run`'s `copied`), measured after it ended.
fn migrate_to_4(conn: &Connection) -> rusqlite::Result<()> {
    add_column(conn, "sessions", "copied", "TEXT")
}

/// Adds a column unless the table has it already.
fn add_column(conn: &Connection, table: &str, column: &str, kind: &str) -> rusqlite::Result<()> {
    let has: bool = conn.query_row(
        "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
        [table, column],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute(
            &format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"),
            [],
        )?;
    }
    Ok(())
}

/// The columns of a [`SessionSummary`], read by [`summary_row`]. An unfinished session has no
/// count of resources yet: the resources it had begun are counted from its steps.
const SUMMARY: &str = "SELECT id, policy, status, started_at, ended_at, \
     CASE WHEN ended_at IS NULL THEN (SELECT COUNT(DISTINCT resource_id) FROM steps \
     WHERE steps.session_id = sessions.id AND resource_id <> '') ELSE resources END \
     FROM sessions";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    Ok(SessionSummary {
        session_id: SessionId::new(r.get::<_, String>(0)?),
        policy: r.get(1)?,
        status: r.get(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        resources: r.get::<_, i64>(5)? as usize,
    })
}

/// The columns of an [`Operation`], read by [`operation_row`].
const OPERATION: &str =
    "SELECT id, kind, policy, status, started_at, ended_at, holder, document FROM operations";

fn operation_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Operation> {
    let kind: String = r.get(1)?;
    Ok(Operation {
        id: r.get(0)?,
        kind: OperationKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown operation kind {kind:?}").into(),
            )
        })?,
        policy: r.get(2)?,
        status: r.get(3)?,
        started_at: r.get(4)?,
        ended_at: r.get(5)?,
        holder: r.get(6)?,
        document: r.get(7)?,
    })
}

/// The SQLite state store. One connection, shared under a mutex: each call is a few
/// statements on a local file, never held across an await.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    /// The file, when it is one (locks live beside it).
    path: Option<PathBuf>,
    /// An in-memory store's held leases (a file store's are file locks).
    held: Arc<Mutex<HashSet<String>>>,
}

fn err<'a>(
    context: &'a str,
    path: Option<&'a Path>,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |e| match path {
        Some(p) => StoreError(format!("{context} {}: {e}", p.display())),
        None => StoreError(format!("{context}: {e}")),
    }
}

impl SqliteStore {
    /// The default location: `$XDG_DATA_HOME/snaprelay/state.sqlite`, else
    /// `~/.local/share/snaprelay/state.sqlite` (`~/Library/Application Support` on macOS).
    pub fn default_path() -> Option<PathBuf> {
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                let home = PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?);
                Some(if cfg!(target_os = "macos") {
                    home.join("Library/Application Support")
                } else {
                    home.join(".local/share")
                })
            })?;
        Some(data.join("snaprelay").join("state.sqlite"))
    }

    /// Opens (creating if need be) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let opened = Connection::open(path)
            .map_err(err("cannot open the state file", Some(path)))
            .and_then(|conn| Self::init(conn, Some(path)));
        // SQLite says "unable to open database file"; the operating system says why.
        let mut store = opened.map_err(|e| match why_not_writable(path) {
            Some(why) => StoreError(format!(
                "{} ({why}); give --state a file in a directory this user can write",
                e.0
            )),
            None => e,
        })?;
        // The real file: a symlink to it must find the same lock.
        store.path = Some(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned()));
        Ok(store)
    }

    /// A store that lives in memory, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(
            Connection::open_in_memory().map_err(err("cannot open an in-memory store", None))?,
            None,
        )
    }

    fn init(conn: Connection, path: Option<&Path>) -> Result<Self, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err("cannot set WAL mode on", path))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(err("cannot set synchronous on", path))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err("cannot enable foreign keys on", path))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(err("cannot set a busy timeout on", path))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(err("cannot read the schema version of", path))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError(format!(
                "the state file{} was written by a newer snaprelay (schema {version}, this one \
                 knows {SCHEMA_VERSION}); upgrade snaprelay",
                path.map(|p| format!(" {}", p.display()))
                    .unwrap_or_default()
            )));
        }
        // A file that is up to date is only read here: commands that only read work on a
        // read-only state file and leave it untouched.
        if version < SCHEMA_VERSION {
            conn.execute_batch(SCHEMA)
                .map_err(err("cannot create the schema in", path))?;
        }
        // They look at the columns and add only what is missing, so they also mend files of
        // early builds that claim the current version.
        migrate_to_1(&conn)
            .and_then(|()| migrate_to_2(&conn))
            .and_then(|()| migrate_to_3(&conn))
            .and_then(|()| migrate_to_4(&conn))
            .map_err(err("cannot upgrade the schema of", path))?;
        if version != SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err("cannot record the schema version in", path))?;
        }
        Ok(Self {
            conn: Mutex::new(conn),
            path: None,
            held: Arc::default(),
        })
    }

    /// The connection, for one call's statements.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while it was held left no transaction open (rusqlite rolls back on drop).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock file of `policy`'s lease: `STATE.locks/POLICY.lock` beside the real state
    /// file (a symlink to the state must find the same lock).
    fn lock_file(&self, policy: &str) -> Option<PathBuf> {
        let path = self.path.as_ref()?;
        let mut name = path.as_os_str().to_owned();
        name.push(".locks");
        // Policy names are letters, digits, '-' and '_' (policy.rs).
        Some(PathBuf::from(name).join(format!("{policy}.lock")))
    }

    /// Takes the file lock (`flock`) of `policy`: it tells across pid namespaces and machines
    /// sharing the file, where a pid cannot, and the operating system releases it when its
    /// process dies. The file keeps the generation and the holder, for people to read.
    fn lock_policy_file(
        &self,
        lock: &Path,
        policy: &str,
        holder: &str,
    ) -> Result<Option<Lease>, StoreError> {
        if let Some(dir) = lock.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError(format!(
                    "cannot create the lock directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(lock)
            .map_err(|e| {
                StoreError(format!("cannot open the lock file {}: {e}", lock.display()))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError(format!("cannot lock {}: {e}", lock.display())));
            }
        }
        let mut text = String::new();
        // An unreadable or empty file (made by an earlier version) starts at generation 1.
        let _ = file.read_to_string(&mut text);
        let generation = text
            .lines()
            .find_map(|l| l.strip_prefix("generation "))
            .and_then(|g| g.trim().parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| write!(file, "generation {generation}\nholder {holder}\n"))
            .and_then(|()| file.flush());
        written.map_err(|e| {
            StoreError(format!(
                "cannot write the lock file {}: {e}",
                lock.display()
            ))
        })?;
        Ok(Some(Lease {
            policy: policy.to_owned(),
            holder: holder.to_owned(),
            generation,
            ttl: None,
            guard: Some(Box::new(Hold::File(file))),
        }))
    }
}

/// The reports of a session's tasks, in the order they were recorded (schema 2 keeps each
/// in its task row; schema-1 sessions have none there).
fn task_reports(conn: &Connection, session_id: &str) -> Result<Vec<ResourceReport>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT report FROM tasks WHERE session_id = ?1 AND report IS NOT NULL ORDER BY rowid",
        )
        .map_err(err("cannot read the session", None))?;
    let reports: Vec<String> = stmt
        .query_map([session_id], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(err("cannot read the session", None))?;
    reports
        .iter()
        .map(|json| {
            serde_json::from_str(json).map_err(|e| {
                StoreError(format!(
                    "a task report of session {session_id} is unreadable: {e}"
                ))
            })
        })
        .collect()
}

/// Restore points matching the filter, in the order they were made.
fn find_restore_points(
    conn: &Connection,
    filter: &PointFilter<'_>,
) -> Result<Vec<RecordedRestorePoint>, StoreError> {
    let fail = || err("cannot read restore points", None);
    let mut stmt = conn
        .prepare(
            "SELECT p.id, policy, resource_type, resource_id, kind, account, region, created_at, \
                 session_id, deleted_at, config, d.drill_id, d.status, d.rto_seconds, d.at \
                 FROM restore_points p LEFT JOIN point_drills d ON d.restore_point_id = p.id \
                 WHERE (?1 IS NULL OR session_id = ?1) AND (?2 IS NULL OR policy = ?2) \
                 AND (?3 IS NULL OR resource_id = ?3) ORDER BY p.id",
        )
        .map_err(fail())?;
    let points = stmt
        .query_map(
            params![
                filter.session.map(SessionId::as_str),
                filter.policy,
                filter.resource
            ],
            |r| {
                Ok(RecordedRestorePoint {
                    id: RestorePointId(r.get(0)?),
                    session_id: SessionId::new(r.get::<_, String>(8)?),
                    status: match r.get::<_, Option<String>>(9)? {
                        Some(_) => PointStatus::Deleted,
                        None => PointStatus::Complete,
                    },
                    point: RestorePoint {
                        policy: r.get(1)?,
                        resource_type: resource_type(r, 2)?,
                        resource_id: r.get(3)?,
                        kind: snapshot_kind(r, 4)?,
                        created_at: r.get(7)?,
                        place: PlaceReport {
                            account: r.get(5)?,
                            region: r.get(6)?,
                            snapshots: Vec::new(),
                        },
                        config: r
                            .get::<_, Option<String>>(10)?
                            .as_deref()
                            .and_then(ResourceConfig::from_json),
                    },
                    deleted_snapshots: Vec::new(),
                    last_drill: match r.get::<_, Option<String>>(11)? {
                        Some(drill_id) => Some(LastDrill {
                            drill_id,
                            status: r.get(12)?,
                            rto_seconds: r.get(13)?,
                            at: r.get(14)?,
                        }),
                        None => None,
                    },
                })
            },
        )
        .map_err(fail())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail())?;
    let mut snaps = conn
        .prepare(
            "SELECT snapshot_id, source_id, volume_id, kms_key_id, device, size_gib, deleted_at \
                 FROM restore_point_snapshots WHERE restore_point_id = ?1 ORDER BY rowid",
        )
        .map_err(fail())?;
    points
        .into_iter()
        .map(|mut recorded| {
            let rows: Vec<(SnapshotReport, bool)> = snaps
                .query_map([recorded.id.0], |r| {
                    Ok((
                        SnapshotReport {
                            id: r.get(0)?,
                            source_id: r.get(1)?,
                            volume_id: r.get(2)?,
                            kms_key_id: r.get(3)?,
                            device: r.get(4)?,
                            size_gib: r.get(5)?,
                        },
                        r.get::<_, Option<String>>(6)?.is_some(),
                    ))
                })
                .and_then(|rows| rows.collect())
                .map_err(fail())?;
            for (snapshot, deleted) in rows {
                if deleted {
                    recorded.deleted_snapshots.push(snapshot.id.clone());
                }
                recorded.point.place.snapshots.push(snapshot);
            }
            if recorded.status == PointStatus::Complete && !recorded.deleted_snapshots.is_empty() {
                recorded.status = PointStatus::Deleting;
            }
            Ok(recorded)
        })
        .collect()
}

#[async_trait]
impl StateStore for SqliteStore {
    async fn unfinished_sessions(
        &self,
        policy: Option<&str>,
    ) -> Result<Vec<Unfinished>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT id, policy, pid FROM sessions WHERE (?1 IS NULL OR policy = ?1) \
                 AND ended_at IS NULL ORDER BY started_at DESC, id DESC",
            )
            .map_err(err("cannot read sessions", None))?;
        stmt.query_map([policy], |r| {
            Ok(Unfinished {
                id: SessionId::new(r.get::<_, String>(0)?),
                policy: r.get(1)?,
                pid: r.get(2)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(err("cannot read sessions", None))
    }

    async fn find_restore_points(
        &self,
        filter: &PointFilter<'_>,
    ) -> Result<Vec<RecordedRestorePoint>, StoreError> {
        find_restore_points(&self.conn(), filter)
    }

    async fn record_snapshot_deleted(
        &self,
        restore_point: RestorePointId,
        snapshot_id: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE restore_point_snapshots SET deleted_at = ?3 \
                 WHERE restore_point_id = ?1 AND snapshot_id = ?2",
                params![restore_point.0, snapshot_id, at],
            )
            .map(drop)
            .map_err(err("cannot record a deleted snapshot", None))
    }

    async fn record_restore_point_deleted(
        &self,
        restore_point: RestorePointId,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE restore_points SET deleted_at = ?2 WHERE id = ?1",
                params![restore_point.0, at],
            )
            .map(drop)
            .map_err(err("cannot record a deleted restore point", None))
    }

    async fn begin_operation(&self, op: &Operation) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO operations (id, kind, policy, status, started_at, ended_at, holder, \
                 document) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    op.id,
                    op.kind.as_str(),
                    op.policy,
                    op.status,
                    op.started_at,
                    op.ended_at,
                    op.holder,
                    op.document
                ],
            )
            .map(drop)
            .map_err(err("cannot record a restore or drill", None))
    }

    async fn end_operation(
        &self,
        id: &str,
        status: &str,
        ended_at: &str,
        document: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE operations SET status = ?2, ended_at = ?3, document = ?4 WHERE id = ?1",
                params![id, status, ended_at, document],
            )
            .map(drop)
            .map_err(err("cannot record the end of a restore or drill", None))
    }

    async fn operations(
        &self,
        kind: OperationKind,
        policy: Option<&str>,
    ) -> Result<Vec<Operation>, StoreError> {
        let fail = || err("cannot read restores and drills", None);
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "{OPERATION} WHERE kind = ?1 AND (?2 IS NULL OR policy = ?2) \
                 ORDER BY started_at DESC, id DESC"
            ))
            .map_err(fail())?;
        stmt.query_map(params![kind.as_str(), policy], operation_row)
            .and_then(|rows| rows.collect())
            .map_err(fail())
    }

    async fn operation(&self, id: &str) -> Result<Option<Operation>, StoreError> {
        self.conn()
            .query_row(&format!("{OPERATION} WHERE id = ?1"), [id], operation_row)
            .optional()
            .map_err(err("cannot read a restore or drill", None))
    }

    async fn claim_tick(
        &self,
        policy: &str,
        what: &str,
        tick: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        self.conn()
            .execute(
                "INSERT OR IGNORE INTO ticks (policy, what, tick, holder) VALUES (?1, ?2, ?3, ?4)",
                params![policy, what, tick, holder],
            )
            .map(|n| n == 1)
            .map_err(err("cannot claim a schedule tick", None))
    }

    async fn record_drill_of(
        &self,
        point: RestorePointId,
        drill: &LastDrill,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO point_drills (restore_point_id, drill_id, status, rto_seconds, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (restore_point_id) DO UPDATE SET \
                 drill_id = excluded.drill_id, status = excluded.status, \
                 rto_seconds = excluded.rto_seconds, at = excluded.at",
                params![
                    point.0,
                    drill.drill_id,
                    drill.status,
                    drill.rto_seconds,
                    drill.at
                ],
            )
            .map(drop)
            .map_err(err("cannot record a drill of a restore point", None))
    }

    async fn begin_session(
        &self,
        session_id: &SessionId,
        policy: &str,
        started_at: &str,
    ) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO sessions (id, policy, started_at, pid) VALUES (?1, ?2, ?3, ?4)",
                params![session_id.as_str(), policy, started_at, std::process::id()],
            )
            .map_err(err("cannot record the session", None))?;
        Ok(())
    }

    async fn record_step(&self, session_id: &SessionId, s: &StepRecord) -> Result<(), StoreError> {
        insert_step(&self.conn(), session_id, s)
    }

    async fn begin_step(
        &self,
        session_id: &SessionId,
        s: &StepRecord,
    ) -> Result<StepId, StoreError> {
        let conn = self.conn();
        insert_step(&conn, session_id, s)?;
        Ok(StepId(conn.last_insert_rowid()))
    }

    async fn end_step(&self, id: StepId, s: &StepRecord) -> Result<(), StoreError> {
        self.conn()
            .prepare_cached(
                "UPDATE steps SET ended_at = ?2, outcome = ?3, detail = ?4 WHERE id = ?1",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    id.0,
                    s.ended_at,
                    s.outcome.as_str(),
                    s.detail.to_json()
                ])
            })
            .map(drop)
            .map_err(err("cannot record the end of a step", None))
    }

    async fn record_task(
        &self,
        session_id: &SessionId,
        task: &ResourceReport,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction()
            .map_err(err("cannot record a task", None))?;
        tx.execute(
            "DELETE FROM tasks WHERE session_id = ?1 AND resource_id = ?2",
            [session_id.as_str(), &task.id],
        )
        .map_err(err("cannot record a task", None))?;
        insert_task(&tx, session_id.as_str(), task)?;
        tx.commit().map_err(err("cannot record a task", None))
    }

    async fn progress_of(&self, session_id: &SessionId) -> Result<SessionProgress, StoreError> {
        let fail = || err("cannot read the session", None);
        let conn = self.conn();
        let (policy, started_at): (String, String) = conn
            .query_row(
                "SELECT policy, started_at FROM sessions WHERE id = ?1",
                [session_id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(fail())?
            .ok_or_else(|| StoreError(format!("no session {session_id} in the state file")))?;
        Ok(SessionProgress {
            session_id: session_id.clone(),
            policy,
            started_at,
            tasks: task_reports(&conn, session_id.as_str())?,
            points: find_restore_points(
                &conn,
                &PointFilter {
                    session: Some(session_id),
                    ..PointFilter::default()
                },
            )?
            .into_iter()
            .map(|p| p.point)
            .collect(),
            steps: steps(&conn, session_id)?,
        })
    }

    async fn resume_session(&self, session_id: &SessionId) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE sessions SET pid = ?2 WHERE id = ?1 AND ended_at IS NULL",
                params![session_id.as_str(), std::process::id()],
            )
            .map(drop)
            .map_err(err("cannot record the resumed session", None))
    }

    async fn record_restore_point(
        &self,
        session_id: &SessionId,
        p: &RestorePoint,
    ) -> Result<RestorePointId, StoreError> {
        insert_point(&mut self.conn(), session_id, None, p).map(RestorePointId)
    }

    async fn import_restore_point(
        &self,
        session_id: &SessionId,
        id: RestorePointId,
        p: &RestorePoint,
    ) -> Result<(), StoreError> {
        insert_point(&mut self.conn(), session_id, Some(id.0), p).map(drop)
    }

    async fn finish_session(&self, report: &SessionReport) -> Result<(), StoreError> {
        let encode =
            |what: &str, e: serde_json::Error| StoreError(format!("cannot encode {what}: {e}"));
        // The session row holds the report without its resources; each task row holds its own.
        let header = SessionReport {
            session_id: report.session_id.clone(),
            policy: report.policy.clone(),
            status: report.status,
            started_at: report.started_at.clone(),
            ended_at: report.ended_at.clone(),
            source_account: report.source_account.clone(),
            resources: Vec::new(),
            messages: report.messages.clone(),
        };
        let json = serde_json::to_string(&header).map_err(|e| encode("the report", e))?;
        let fail = || err("cannot record the end of the session", None);
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(fail())?;
        // Tasks were recorded as they ended; they are written again in the report's order,
        // which `session` reads them back in.
        tx.execute(
            "DELETE FROM tasks WHERE session_id = ?1",
            [report.session_id.as_str()],
        )
        .map_err(fail())?;
        for task in &report.resources {
            insert_task(&tx, report.session_id.as_str(), task)?;
        }
        tx.execute(
            "UPDATE sessions SET ended_at = ?2, status = ?3, resources = ?4, report = ?5 WHERE id = ?1",
            params![
                report.session_id.as_str(),
                report.ended_at,
                report.status.as_str(),
                report.resources.len() as i64,
                json
            ],
        )
        .map_err(fail())?;
        tx.commit().map_err(fail())
    }

    async fn sessions(&self, policy: Option<&str>) -> Result<Vec<SessionSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(&format!(
                "{SUMMARY} WHERE ?1 IS NULL OR policy = ?1 ORDER BY started_at DESC, id DESC"
            ))
            .map_err(err("cannot list sessions", None))?;
        stmt.query_map([policy], summary_row)
            .and_then(|rows| rows.collect())
            .map_err(err("cannot list sessions", None))
    }

    async fn summary(&self, session_id: &SessionId) -> Result<Option<SessionSummary>, StoreError> {
        self.conn()
            .query_row(
                &format!("{SUMMARY} WHERE id = ?1"),
                [session_id.as_str()],
                summary_row,
            )
            .optional()
            .map_err(err("cannot read the session", None))
    }

    async fn record_copied(&self, session: &SessionId, copied: &str) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "UPDATE sessions SET copied = ?2 WHERE id = ?1",
                params![session.as_str(), copied],
            )
            .map_err(err("cannot record what the session copied", None))?;
        Ok(())
    }

    async fn copied(&self, session: &SessionId) -> Result<Option<String>, StoreError> {
        let found: Option<Option<String>> = self
            .conn()
            .query_row(
                "SELECT copied FROM sessions WHERE id = ?1",
                [session.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("cannot read what the session copied", None))?;
        Ok(found.flatten())
    }

    async fn session(&self, session_id: &SessionId) -> Result<Option<SessionReport>, StoreError> {
        let conn = self.conn();
        let json: Option<Option<String>> = conn
            .query_row(
                "SELECT report FROM sessions WHERE id = ?1",
                [session_id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(err("cannot read the session", None))?;
        let unreadable = |e: serde_json::Error| {
            StoreError(format!(
                "the stored report of session {session_id} is unreadable: {e}"
            ))
        };
        let Some(json) = json.flatten() else {
            return Ok(None);
        };
        let mut report: SessionReport = serde_json::from_str(&json).map_err(unreadable)?;
        // Schema 2: the resources are in the task rows, in the report's order.
        report
            .resources
            .extend(task_reports(&conn, session_id.as_str())?);
        Ok(Some(report))
    }

    async fn steps(&self, session_id: &SessionId) -> Result<Vec<StepRecord>, StoreError> {
        steps(&self.conn(), session_id)
    }

    async fn acquire_lease(
        &self,
        policy: &str,
        holder: &str,
        _ttl: Duration,
    ) -> Result<Option<Lease>, StoreError> {
        if let Some(lock) = self.lock_file(policy) {
            return self.lock_policy_file(&lock, policy, holder);
        }
        // In memory: nothing is shared beyond this process; the set keeps holders apart.
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if !held.insert(policy.to_owned()) {
            return Ok(None);
        }
        Ok(Some(Lease {
            policy: policy.to_owned(),
            holder: holder.to_owned(),
            generation: 1,
            ttl: None,
            guard: Some(Box::new(Hold::Memory(self.held.clone(), policy.to_owned()))),
        }))
    }

    async fn renew_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        // A lock held by a live process never lapses.
        Ok(lease.guard.is_some())
    }

    async fn release_lease(&self, lease: Lease) -> Result<(), StoreError> {
        drop(lease);
        Ok(())
    }

    async fn lease_held(&self, policy: &str) -> Result<bool, StoreError> {
        let Some(lock) = self.lock_file(policy) else {
            return Ok(self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(policy));
        };
        // Only looked at: a file that is not there is not locked, and none is made.
        let file = match std::fs::OpenOptions::new().read(true).open(&lock) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => {
                return Err(StoreError(format!(
                    "cannot open the lock file {}: {e}",
                    lock.display()
                )));
            }
        };
        match file.try_lock_shared() {
            Ok(()) => Ok(false),
            Err(std::fs::TryLockError::WouldBlock) => Ok(true),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(StoreError(format!("cannot lock {}: {e}", lock.display())))
            }
        }
    }

    async fn lease_holder(&self, policy: &str) -> Result<Option<LeaseHolder>, StoreError> {
        if !self.lease_held(policy).await? {
            return Ok(None);
        }
        let Some(lock) = self.lock_file(policy) else {
            return Ok(Some(LeaseHolder {
                holder: "this process".to_owned(),
                generation: 1,
                expires_at: None,
            }));
        };
        // The holder wrote its name and generation when it locked the file.
        let text = std::fs::read_to_string(&lock).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_owned())
        };
        Ok(Some(LeaseHolder {
            holder: field("holder ").unwrap_or_else(|| "another process".to_owned()),
            generation: field("generation ")
                .and_then(|g| g.parse().ok())
                .unwrap_or(0),
            expires_at: None,
        }))
    }
}

/// Why the state file (or the journal SQLite keeps beside it) cannot be written, if it cannot.
fn why_not_writable(path: &Path) -> Option<String> {
    if path.is_dir() {
        return Some(format!("{} is a directory", path.display()));
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
    {
        return Some(e.to_string());
    }
    // WAL mode keeps two files beside the state file: its directory must be writable too.
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty())?;
    let probe = dir.join(format!(".snaprelay-probe-{}", std::process::id()));
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            None
        }
        Err(e) => Some(format!("its directory {}: {e}", dir.display())),
    }
}

/// One step row. Steps are written many times a second on a fleet: the statement is kept
/// compiled.
fn insert_step(
    conn: &Connection,
    session_id: &SessionId,
    s: &StepRecord,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO steps (session_id, resource_id, step, place, started_at, ended_at, outcome, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            session_id.as_str(),
            s.resource_id,
            s.step.as_str(),
            s.place,
            s.started_at,
            s.ended_at,
            s.outcome.as_str(),
            s.detail.to_json()
        ])
    })
    .map(drop)
    .map_err(err("cannot record a step", None))
}

fn steps(conn: &Connection, session_id: &SessionId) -> Result<Vec<StepRecord>, StoreError> {
    let mut stmt = conn
        .prepare(
            "SELECT resource_id, step, place, started_at, ended_at, outcome, detail FROM steps \
             WHERE session_id = ?1 ORDER BY id",
        )
        .map_err(err("cannot read steps", None))?;
    let rows: Vec<[String; 7]> = stmt
        .query_map([session_id.as_str()], |r| {
            Ok([
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ])
        })
        .and_then(|rows| rows.collect())
        .map_err(err("cannot read steps", None))?;
    rows.into_iter()
        .map(|[resource_id, step, place, started_at, ended_at, outcome, detail]| {
            let unreadable = |what: &str, value: &str| {
                StoreError(format!(
                    "a step of session {session_id} has an unknown {what} {value:?}: written by \
                     a newer snaprelay?"
                ))
            };
            let step = StepKind::parse(&step).ok_or_else(|| unreadable("kind", &step))?;
            Ok(StepRecord {
                resource_id,
                step,
                place,
                started_at,
                ended_at,
                outcome: StepOutcome::parse(&outcome)
                    .ok_or_else(|| unreadable("outcome", &outcome))?,
                detail: StepDetail::from_stored(step, &detail),
            })
        })
        .collect()
}

/// A resource type column; a word this version does not know is an error, not a guess.
fn resource_type(r: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<ResourceType> {
    let word: String = r.get(column)?;
    ResourceType::parse(&word).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown resource type {word:?}: written by a newer snaprelay?").into(),
        )
    })
}

/// A restore point's kind column.
fn snapshot_kind(r: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<SnapshotKind> {
    let word: String = r.get(column)?;
    SnapshotKind::parse(&word).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("unknown restore point kind {word:?}").into(),
        )
    })
}

/// A restore point, whole or not at all, numbered `id` or the next number; its number.
fn insert_point(
    conn: &mut Connection,
    session_id: &SessionId,
    id: Option<i64>,
    p: &RestorePoint,
) -> Result<i64, StoreError> {
    let fail = || err("cannot record a restore point", None);
    let tx = conn.transaction().map_err(fail())?;
    tx.execute(
        "INSERT INTO restore_points (id, session_id, policy, resource_type, resource_id, kind, \
         account, region, created_at, config) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            id,
            session_id.as_str(),
            p.policy,
            p.resource_type.as_str(),
            p.resource_id,
            p.kind.as_str(),
            p.place.account,
            p.place.region,
            p.created_at,
            p.config.as_ref().map(ResourceConfig::to_json)
        ],
    )
    .map_err(fail())?;
    let id = tx.last_insert_rowid();
    for s in &p.place.snapshots {
        tx.execute(
            "INSERT INTO restore_point_snapshots (restore_point_id, snapshot_id, source_id, \
             volume_id, kms_key_id, device, size_gib) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                id,
                s.id,
                s.source_id,
                s.volume_id,
                s.kms_key_id,
                s.device,
                s.size_gib
            ],
        )
        .map_err(fail())?;
    }
    tx.commit().map_err(fail())?;
    Ok(id)
}

/// One task row, with its report.
fn insert_task(
    conn: &Connection,
    session_id: &str,
    task: &ResourceReport,
) -> Result<(), StoreError> {
    let encode =
        |what: &str, e: serde_json::Error| StoreError(format!("cannot encode {what}: {e}"));
    let messages = serde_json::to_string(&task.messages).map_err(|e| encode("task messages", e))?;
    let task_json = serde_json::to_string(task).map_err(|e| encode("a task report", e))?;
    conn.execute(
        "INSERT INTO tasks (session_id, resource_type, resource_id, region, status, messages, report) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            session_id,
            task.resource_type.as_str(),
            task.id,
            task.region,
            task.status.as_str(),
            messages,
            task_json
        ],
    )
    .map(drop)
    .map_err(err("cannot record a task", None))
}

mod pg;
pub mod pg_tls;
pub use pg::{PgStore, PgUrl};

#[cfg(test)]
mod tests;
