//! snaprelay's state store in an embedded SQLite file: sessions, their steps, restore points.
//!
//! The file lives in the per-user data directory unless `--state` names another. WAL mode
//! keeps it readable (for `sessions list`) while a run writes it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use snaprelay_core::ports::{StateStore, StoreError};
use snaprelay_core::report::{
    PlaceReport, PointStatus, RecordedRestorePoint, ResourceReport, RestorePoint, SessionProgress,
    SessionReport, SessionSummary, SnapshotReport, StepRecord,
};

/// A session that never finished, and the process that ran it (for people to read: whether
/// it still runs is told by its policy's lock, see [`SqliteStore::lock_policy`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unfinished {
    pub id: String,
    pub policy: String,
    /// `None` for sessions recorded before sessions recorded their process.
    pub pid: Option<u32>,
}

/// Held by the process running a session of a policy, for as long as it runs; the operating
/// system releases it when that process ends, however it ends (`kill -9` included).
#[derive(Debug)]
pub struct PolicyLock {
    _file: Option<std::fs::File>,
}

/// Which restore points [`SqliteStore::find_restore_points`] lists; `None` matches all.
#[derive(Clone, Copy, Debug, Default)]
pub struct PointFilter<'a> {
    pub session: Option<&'a str>,
    pub policy: Option<&'a str>,
    pub resource: Option<&'a str>,
}

/// Bumped with every change to [`SCHEMA`]; a later version migrates from the earlier ones.
const SCHEMA_VERSION: i64 = 2;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS sessions (
    id          TEXT PRIMARY KEY,
    policy      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    status      TEXT NOT NULL DEFAULT 'Running',
    resources   INTEGER NOT NULL DEFAULT 0,
    report      TEXT,
    pid         INTEGER
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
    deleted_at    TEXT
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

/// The columns of a [`SessionSummary`], read by [`summary_row`].
const SUMMARY: &str = "SELECT id, policy, status, started_at, ended_at, resources FROM sessions";

fn summary_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionSummary> {
    Ok(SessionSummary {
        session_id: r.get(0)?,
        policy: r.get(1)?,
        status: r.get(2)?,
        started_at: r.get(3)?,
        ended_at: r.get(4)?,
        resources: r.get::<_, i64>(5)? as usize,
    })
}

/// The SQLite state store.
pub struct SqliteStore {
    conn: Connection,
    /// The file, when it is one (locks live beside it).
    path: Option<PathBuf>,
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
        let conn = Connection::open(path).map_err(err("cannot open the state file", Some(path)))?;
        let mut store = Self::init(conn, Some(path))?;
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
            .map_err(err("cannot upgrade the schema of", path))?;
        if version != SCHEMA_VERSION {
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(err("cannot record the schema version in", path))?;
        }
        Ok(Self { conn, path: None })
    }

    /// The lock of `policy`'s sessions in this state file, if no other process holds it:
    /// `None` while a session of the policy runs elsewhere. It is a file lock (`flock`), so it
    /// tells across pid namespaces and machines sharing the file, where a pid cannot; the
    /// operating system releases it when its process dies. An in-memory store has nothing to
    /// share and always gets it.
    pub fn lock_policy(&self, policy: &str) -> Result<Option<PolicyLock>, StoreError> {
        let Some(path) = &self.path else {
            return Ok(Some(PolicyLock { _file: None }));
        };
        let mut name = path.as_os_str().to_owned();
        name.push(".locks");
        let dir = PathBuf::from(name);
        std::fs::create_dir_all(&dir).map_err(|e| {
            StoreError(format!(
                "cannot create the lock directory {}: {e}",
                dir.display()
            ))
        })?;
        // Policy names are letters, digits, '-' and '_' (policy.rs).
        let lock = dir.join(format!("{policy}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| {
                StoreError(format!("cannot open the lock file {}: {e}", lock.display()))
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(PolicyLock { _file: Some(file) })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(StoreError(format!("cannot lock {}: {e}", lock.display())))
            }
        }
    }

    /// The reports of a session's tasks, in the order they were recorded (schema 2 keeps each
    /// in its task row; schema-1 sessions have none there).
    fn task_reports(&self, session_id: &str) -> Result<Vec<ResourceReport>, StoreError> {
        let mut stmt = self
            .conn
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

    /// Sessions never finished (of `policy`, else of every policy), newest first, with the
    /// process that ran them.
    pub fn unfinished_sessions(&self, policy: Option<&str>) -> Result<Vec<Unfinished>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, policy, pid FROM sessions WHERE (?1 IS NULL OR policy = ?1) \
                 AND ended_at IS NULL ORDER BY started_at DESC, id DESC",
            )
            .map_err(err("cannot read sessions", None))?;
        stmt.query_map([policy], |r| {
            Ok(Unfinished {
                id: r.get(0)?,
                policy: r.get(1)?,
                pid: r.get(2)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(err("cannot read sessions", None))
    }

    /// The restore points of a session, in the order they were made.
    pub fn restore_points(&self, session_id: &str) -> Result<Vec<RestorePoint>, StoreError> {
        let found = self.find_restore_points(&PointFilter {
            session: Some(session_id),
            ..PointFilter::default()
        })?;
        Ok(found.into_iter().map(|p| p.point).collect())
    }

    /// Restore points matching the filter, in the order they were made.
    pub fn find_restore_points(
        &self,
        filter: &PointFilter<'_>,
    ) -> Result<Vec<RecordedRestorePoint>, StoreError> {
        let fail = || err("cannot read restore points", None);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, policy, resource_type, resource_id, kind, account, region, created_at, \
                 session_id, deleted_at FROM restore_points WHERE (?1 IS NULL OR session_id = ?1) \
                 AND (?2 IS NULL OR policy = ?2) AND (?3 IS NULL OR resource_id = ?3) ORDER BY id",
            )
            .map_err(fail())?;
        let points = stmt
            .query_map(
                params![filter.session, filter.policy, filter.resource],
                |r| {
                    Ok(RecordedRestorePoint {
                        id: r.get(0)?,
                        session_id: r.get(8)?,
                        status: match r.get::<_, Option<String>>(9)? {
                            Some(_) => PointStatus::Deleted,
                            None => PointStatus::Complete,
                        },
                        point: RestorePoint {
                            policy: r.get(1)?,
                            resource_type: r.get(2)?,
                            resource_id: r.get(3)?,
                            kind: r.get(4)?,
                            created_at: r.get(7)?,
                            place: PlaceReport {
                                account: r.get(5)?,
                                region: r.get(6)?,
                                snapshots: Vec::new(),
                            },
                        },
                        deleted_snapshots: Vec::new(),
                    })
                },
            )
            .map_err(fail())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(fail())?;
        let mut snaps = self
            .conn
            .prepare(
                "SELECT snapshot_id, source_id, volume_id, kms_key_id, device, size_gib, deleted_at \
                 FROM restore_point_snapshots WHERE restore_point_id = ?1 ORDER BY rowid",
            )
            .map_err(fail())?;
        points
            .into_iter()
            .map(|mut recorded| {
                let rows: Vec<(SnapshotReport, bool)> = snaps
                    .query_map([recorded.id], |r| {
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
                if recorded.status == PointStatus::Complete
                    && !recorded.deleted_snapshots.is_empty()
                {
                    recorded.status = PointStatus::Deleting;
                }
                Ok(recorded)
            })
            .collect()
    }
}

impl StateStore for SqliteStore {
    fn policy_restore_points(&self, policy: &str) -> Result<Vec<RecordedRestorePoint>, StoreError> {
        self.find_restore_points(&PointFilter {
            policy: Some(policy),
            ..PointFilter::default()
        })
    }

    fn record_snapshot_deleted(
        &mut self,
        restore_point: i64,
        snapshot_id: &str,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE restore_point_snapshots SET deleted_at = ?3 \
                 WHERE restore_point_id = ?1 AND snapshot_id = ?2",
                params![restore_point, snapshot_id, at],
            )
            .map(drop)
            .map_err(err("cannot record a deleted snapshot", None))
    }

    fn record_restore_point_deleted(
        &mut self,
        restore_point: i64,
        at: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE restore_points SET deleted_at = ?2 WHERE id = ?1",
                params![restore_point, at],
            )
            .map(drop)
            .map_err(err("cannot record a deleted restore point", None))
    }

    fn begin_session(
        &mut self,
        session_id: &str,
        policy: &str,
        started_at: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO sessions (id, policy, started_at, pid) VALUES (?1, ?2, ?3, ?4)",
                params![session_id, policy, started_at, std::process::id()],
            )
            .map_err(err("cannot record the session", None))?;
        Ok(())
    }

    fn record_step(&mut self, session_id: &str, s: &StepRecord) -> Result<(), StoreError> {
        // Steps are written many times a second on a fleet: the statements are kept compiled.
        self.conn
            .prepare_cached(
                "INSERT INTO steps (session_id, resource_id, step, place, started_at, ended_at, outcome, detail) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![session_id, s.resource_id, s.step, s.place, s.started_at, s.ended_at, s.outcome, s.detail])
            })
            .map_err(err("cannot record a step", None))?;
        Ok(())
    }

    fn begin_step(&mut self, session_id: &str, s: &StepRecord) -> Result<i64, StoreError> {
        self.record_step(session_id, s)?;
        Ok(self.conn.last_insert_rowid())
    }

    fn end_step(&mut self, id: i64, s: &StepRecord) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "UPDATE steps SET ended_at = ?2, outcome = ?3, detail = ?4 WHERE id = ?1",
            )
            .and_then(|mut stmt| stmt.execute(params![id, s.ended_at, s.outcome, s.detail]))
            .map(drop)
            .map_err(err("cannot record the end of a step", None))
    }

    fn record_task(&mut self, session_id: &str, task: &ResourceReport) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction()
            .map_err(err("cannot record a task", None))?;
        tx.execute(
            "DELETE FROM tasks WHERE session_id = ?1 AND resource_id = ?2",
            [session_id, &task.id],
        )
        .map_err(err("cannot record a task", None))?;
        insert_task(&tx, session_id, task)?;
        tx.commit().map_err(err("cannot record a task", None))
    }

    fn progress_of(&self, session_id: &str) -> Result<SessionProgress, StoreError> {
        let fail = || err("cannot read the session", None);
        let (policy, started_at): (String, String) = self
            .conn
            .query_row(
                "SELECT policy, started_at FROM sessions WHERE id = ?1",
                [session_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(fail())?
            .ok_or_else(|| StoreError(format!("no session {session_id} in the state file")))?;
        Ok(SessionProgress {
            session_id: session_id.to_owned(),
            policy,
            started_at,
            tasks: self.task_reports(session_id)?,
            points: self.restore_points(session_id)?,
            steps: self.steps(session_id)?,
        })
    }

    fn resume_session(&mut self, session_id: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sessions SET pid = ?2 WHERE id = ?1 AND ended_at IS NULL",
                params![session_id, std::process::id()],
            )
            .map(drop)
            .map_err(err("cannot record the resumed session", None))
    }

    fn record_restore_point(
        &mut self,
        session_id: &str,
        p: &RestorePoint,
    ) -> Result<(), StoreError> {
        // A restore point is recorded whole or not at all.
        let tx = self
            .conn
            .transaction()
            .map_err(err("cannot record a restore point", None))?;
        tx.execute(
            "INSERT INTO restore_points (session_id, policy, resource_type, resource_id, kind, account, region, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![session_id, p.policy, p.resource_type, p.resource_id, p.kind, p.place.account, p.place.region, p.created_at],
        )
        .map_err(err("cannot record a restore point", None))?;
        let id = tx.last_insert_rowid();
        for s in &p.place.snapshots {
            tx.execute(
                "INSERT INTO restore_point_snapshots \
                 (restore_point_id, snapshot_id, source_id, volume_id, kms_key_id, device, size_gib) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![id, s.id, s.source_id, s.volume_id, s.kms_key_id, s.device, s.size_gib],
            )
            .map_err(err("cannot record a restore point", None))?;
        }
        tx.commit()
            .map_err(err("cannot record a restore point", None))
    }

    fn finish_session(&mut self, report: &SessionReport) -> Result<(), StoreError> {
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
        let tx = self.conn.transaction().map_err(fail())?;
        // Tasks were recorded as they ended; they are written again in the report's order,
        // which `session` reads them back in.
        tx.execute(
            "DELETE FROM tasks WHERE session_id = ?1",
            [&report.session_id],
        )
        .map_err(fail())?;
        for task in &report.resources {
            insert_task(&tx, &report.session_id, task)?;
        }
        tx.execute(
            "UPDATE sessions SET ended_at = ?2, status = ?3, resources = ?4, report = ?5 WHERE id = ?1",
            params![
                report.session_id,
                report.ended_at,
                report.status.as_str(),
                report.resources.len() as i64,
                json
            ],
        )
        .map_err(fail())?;
        tx.commit().map_err(fail())
    }

    fn sessions(&self, policy: Option<&str>) -> Result<Vec<SessionSummary>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "{SUMMARY} WHERE ?1 IS NULL OR policy = ?1 ORDER BY started_at DESC, id DESC"
            ))
            .map_err(err("cannot list sessions", None))?;
        stmt.query_map([policy], summary_row)
            .and_then(|rows| rows.collect())
            .map_err(err("cannot list sessions", None))
    }

    fn summary(&self, session_id: &str) -> Result<Option<SessionSummary>, StoreError> {
        self.conn
            .query_row(
                &format!("{SUMMARY} WHERE id = ?1"),
                [session_id],
                summary_row,
            )
            .optional()
            .map_err(err("cannot read the session", None))
    }

    fn session(&self, session_id: &str) -> Result<Option<SessionReport>, StoreError> {
        let json: Option<Option<String>> = self
            .conn
            .query_row(
                "SELECT report FROM sessions WHERE id = ?1",
                [session_id],
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
        report.resources.extend(self.task_reports(session_id)?);
        Ok(Some(report))
    }

    fn steps(&self, session_id: &str) -> Result<Vec<StepRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT resource_id, step, place, started_at, ended_at, outcome, detail FROM steps \
                 WHERE session_id = ?1 ORDER BY id",
            )
            .map_err(err("cannot read steps", None))?;
        stmt.query_map([session_id], |r| {
            Ok(StepRecord {
                resource_id: r.get(0)?,
                step: r.get(1)?,
                place: r.get(2)?,
                started_at: r.get(3)?,
                ended_at: r.get(4)?,
                outcome: r.get(5)?,
                detail: r.get(6)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(err("cannot read steps", None))
    }
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
            task.resource_type,
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

#[cfg(test)]
mod tests;
