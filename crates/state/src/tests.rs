use super::*;

const TTL: Duration = Duration::from_secs(5);

fn sid(id: &str) -> SessionId {
    SessionId::new(id)
}
use snaprelay_core::report::{PlaceReport, ResourceReport, Service, SnapshotReport};
use snaprelay_core::status::Status;

fn report(id: &str) -> SessionReport {
    SessionReport {
        session_id: id.into(),
        policy: "p".into(),
        status: Status::Warning,
        started_at: "2026-11-26T00:00:00Z".into(),
        ended_at: "2026-11-26T00:01:00Z".into(),
        source_account: "111111111111".into(),
        resources: vec![ResourceReport {
            resource_type: ResourceType::Ec2,
            id: "i-0123456789abcdef0".into(),
            region: "us-east-1".into(),
            status: Status::Warning,
            messages: vec!["no key".into()],
            source: None,
            replicas: vec![],
        }],
        messages: vec![],
    }
}

#[tokio::test]
async fn a_finished_session_is_listed_and_its_report_read_back() {
    let store = SqliteStore::in_memory().unwrap();
    store
        .begin_session(&sid("s1"), "p", "2026-11-26T00:00:00Z")
        .await
        .unwrap();
    assert_eq!(store.sessions(None).await.unwrap()[0].status, "Running");
    store.finish_session(&report("s1")).await.unwrap();
    let list = store.sessions(Some("p")).await.unwrap();
    assert_eq!(list[0].status, "Warning");
    assert_eq!(list[0].resources, 1);
    assert!(store.sessions(Some("other")).await.unwrap().is_empty());
    assert_eq!(store.session(&sid("s1")).await.unwrap(), Some(report("s1")));
    assert_eq!(store.session(&sid("nope")).await.unwrap(), None);
    assert_eq!(
        store.summary(&sid("s1")).await.unwrap(),
        Some(list[0].clone())
    );
    assert_eq!(store.summary(&sid("nope")).await.unwrap(), None);
    let task: (String, String, String) = store
        .conn()
        .query_row(
            "SELECT resource_id, status, messages FROM tasks WHERE session_id = 's1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        task,
        (
            "i-0123456789abcdef0".into(),
            "Warning".into(),
            r#"["no key"]"#.into()
        )
    );
}

#[tokio::test]
async fn steps_and_restore_points_are_kept_in_order() {
    let store = SqliteStore::in_memory().unwrap();
    store.begin_session(&sid("s1"), "p", "t0").await.unwrap();
    for step in [StepKind::Snapshot, StepKind::Copy] {
        store
            .record_step(
                &sid("s1"),
                &StepRecord {
                    resource_id: "i-1".into(),
                    step,
                    place: "111111111111/us-east-1".into(),
                    started_at: "t0".into(),
                    ended_at: "t1".into(),
                    outcome: StepOutcome::Ok,
                    detail: StepDetail::None,
                },
            )
            .await
            .unwrap();
    }
    let point = RestorePoint {
        policy: "p".into(),
        resource_type: ResourceType::Ec2,
        resource_id: "i-1".into(),
        kind: SnapshotKind::Replica,
        created_at: "t1".into(),
        place: PlaceReport {
            account: "222222222222".into(),
            region: "eu-west-1".into(),
            snapshots: vec![SnapshotReport {
                id: "snap-2".into(),
                source_id: "snap-1".into(),
                volume_id: "vol-1".into(),
                device: Some("/dev/xvda".into()),
                kms_key_id: Some("arn:aws:kms:eu-west-1:222222222222:key/k".into()),
                size_gib: Some(8),
            }],
        },
        config: None,
    };
    store
        .record_restore_point(&sid("s1"), &point)
        .await
        .unwrap();
    let steps: Vec<StepKind> = store
        .steps(&sid("s1"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.step)
        .collect();
    assert_eq!(steps, [StepKind::Snapshot, StepKind::Copy]);
    assert_eq!(
        store.session_restore_points(&sid("s1")).await.unwrap(),
        vec![point]
    );
}

#[tokio::test]
async fn the_state_file_is_created_with_its_directory_and_reopened() {
    let dir = std::env::temp_dir().join(format!("snaprelay-state-test-{}", std::process::id()));
    let path = dir.join("nested").join("state.sqlite");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.begin_session(&sid("s1"), "p", "t0").await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.sessions(None).await.unwrap().len(), 1);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_staging_copy_is_refused_as_a_restore_point() {
    let store = SqliteStore::in_memory().unwrap();
    store.begin_session(&sid("s1"), "p", "t0").await.unwrap();
    let point = RestorePoint {
        policy: "p".into(),
        resource_type: ResourceType::Ec2,
        resource_id: "i-1".into(),
        kind: SnapshotKind::Staging,
        created_at: "t1".into(),
        place: PlaceReport {
            account: "a".into(),
            region: "r".into(),
            snapshots: vec![],
        },
        config: None,
    };
    assert!(
        store
            .record_restore_point(&sid("s1"), &point)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_state_file_from_before_schema_versions_is_upgraded() {
    let dir = std::env::temp_dir().join(format!("snaprelay-state-v0-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE restore_point_snapshots (restore_point_id INTEGER NOT NULL, \
             snapshot_id TEXT NOT NULL, source_id TEXT NOT NULL, volume_id TEXT NOT NULL, \
             kms_key_id TEXT, PRIMARY KEY (restore_point_id, snapshot_id));",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    store.begin_session(&sid("s1"), "p", "t0").await.unwrap();
    let point = RestorePoint {
        policy: "p".into(),
        resource_type: ResourceType::Ec2,
        resource_id: "i-1".into(),
        kind: SnapshotKind::Source,
        created_at: "t1".into(),
        place: PlaceReport {
            account: "111111111111".into(),
            region: "us-east-1".into(),
            snapshots: vec![SnapshotReport {
                id: "snap-1".into(),
                source_id: "vol-1".into(),
                volume_id: "vol-1".into(),
                device: Some("/dev/xvda".into()),
                kms_key_id: None,
                size_gib: None,
            }],
        },
        config: None,
    };
    store
        .record_restore_point(&sid("s1"), &point)
        .await
        .unwrap();
    assert_eq!(
        store.session_restore_points(&sid("s1")).await.unwrap(),
        vec![point]
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_session_recorded_whole_by_schema_1_is_still_read_back() {
    let dir = std::env::temp_dir().join(format!("snaprelay-state-v1-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.sqlite");
    {
        // What schema 1 wrote: the whole report in the session row, tasks without reports.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE sessions (id TEXT PRIMARY KEY, policy TEXT NOT NULL, started_at TEXT \
             NOT NULL, ended_at TEXT, status TEXT NOT NULL DEFAULT 'Running', resources INTEGER \
             NOT NULL DEFAULT 0, report TEXT); \
             CREATE TABLE tasks (session_id TEXT NOT NULL, resource_type TEXT NOT NULL, \
             resource_id TEXT NOT NULL, region TEXT NOT NULL, status TEXT NOT NULL, messages \
             TEXT NOT NULL, PRIMARY KEY (session_id, resource_id)); PRAGMA user_version = 1;",
        )
        .unwrap();
        let whole = serde_json::to_string(&report("old")).unwrap();
        conn.execute(
            "INSERT INTO sessions VALUES ('old', 'p', 't0', 't1', 'Warning', 1, ?1)",
            [whole],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO tasks VALUES ('old', 'ec2', 'i-0123456789abcdef0', 'us-east-1', \
             'Warning', '[\"no key\"]')",
            [],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.session(&sid("old")).await.unwrap(),
        Some(report("old"))
    );
    drop(store);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn an_unfinished_session_tells_what_it_had_begun_and_ended() {
    let store = SqliteStore::in_memory().unwrap();
    store.begin_session(&sid("s1"), "p", "t0").await.unwrap();
    let step = |resource: &str, outcome: StepOutcome| StepRecord {
        resource_id: resource.into(),
        step: StepKind::Copy,
        place: "111111111111/us-west-2".into(),
        started_at: "t0".into(),
        ended_at: String::new(),
        outcome,
        detail: StepDetail::None,
    };
    // i-1 ended; i-2 began a change and never said how it went (the process died).
    let id = store
        .begin_step(&sid("s1"), &step("i-1", StepOutcome::Started))
        .await
        .unwrap();
    store
        .end_step(id, &step("i-1", StepOutcome::Ok))
        .await
        .unwrap();
    store
        .begin_step(&sid("s1"), &step("i-2", StepOutcome::Started))
        .await
        .unwrap();
    let mut done = report("s1").resources.remove(0);
    done.id = "i-1".into();
    store.record_task(&sid("s1"), &done).await.unwrap();
    store.record_task(&sid("s1"), &done).await.unwrap();

    let progress = store.progress_of(&sid("s1")).await.unwrap();
    let started: Vec<&str> = progress.started().into_iter().collect();
    assert_eq!(started, ["i-1", "i-2"]);
    assert_eq!(progress.tasks, vec![done.clone()], "recorded once");
    assert_eq!(
        (progress.policy.as_str(), progress.started_at.as_str()),
        ("p", "t0")
    );
    let outcomes: Vec<StepOutcome> = store
        .steps(&sid("s1"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.outcome)
        .collect();
    assert_eq!(outcomes, [StepOutcome::Ok, StepOutcome::Started]);
    assert_eq!(store.unfinished_sessions(Some("p")).await.unwrap().len(), 1);

    // Finishing writes every task once, in the report's order.
    let mut finished = report("s1");
    finished.resources = vec![
        done.clone(),
        ResourceReport {
            id: "i-2".into(),
            ..done
        },
    ];
    store.finish_session(&finished).await.unwrap();
    assert_eq!(store.session(&sid("s1")).await.unwrap(), Some(finished));
    assert!(
        store
            .unfinished_sessions(Some("p"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.progress_of(&sid("nope")).await.is_err());
}

#[tokio::test]
async fn a_policy_lease_is_a_file_lock_shared_through_symlinks_and_let_go_when_dropped() {
    let dir = std::env::temp_dir().join(format!("snaprelay-lock-{}", std::process::id()));
    let path = dir.join("state.sqlite");
    let first = SqliteStore::open(&path).unwrap();
    let second = SqliteStore::open(&path).unwrap();
    let held = first
        .acquire_lease("p", "test", TTL)
        .await
        .unwrap()
        .expect("free");
    assert!(
        second
            .acquire_lease("p", "test", TTL)
            .await
            .unwrap()
            .is_none(),
        "held elsewhere"
    );
    assert!(
        second
            .acquire_lease("other", "test", TTL)
            .await
            .unwrap()
            .is_some(),
        "one lock per policy"
    );
    #[cfg(unix)]
    {
        // The same file through a symlink shares the lock.
        let link = dir.join("link.sqlite");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let third = SqliteStore::open(&link).unwrap();
        assert!(
            third
                .acquire_lease("p", "test", TTL)
                .await
                .unwrap()
                .is_none(),
            "held through the link too"
        );
    }
    drop(held);
    assert!(
        second
            .acquire_lease("p", "test", TTL)
            .await
            .unwrap()
            .is_some(),
        "let go"
    );
    assert!(
        SqliteStore::in_memory()
            .unwrap()
            .acquire_lease("p", "test", TTL)
            .await
            .unwrap()
            .is_some()
    );
    drop((first, second));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Steps written before details were typed held text; a resume still finds their shares.
#[tokio::test]
async fn a_step_recorded_as_text_by_an_earlier_version_is_read_back_typed() {
    let store = SqliteStore::in_memory().unwrap();
    store.begin_session(&sid("s1"), "p", "t0").await.unwrap();
    store
        .conn()
        .execute_batch(
            "INSERT INTO steps (session_id, resource_id, step, place, started_at, ended_at, \
             outcome, detail) VALUES \
             ('s1', 'i-1', 'share', '111111111111/us-east-1', 't0', 't1', 'ok', \
              'snap-0abc with 222222222222'), \
             ('s1', 'db-1', 'unshare', '111111111111/us-east-1', 't0', 't1', 'ok', \
              'arn:aws:rds:us-east-1:111111111111:snapshot:x from 222222222222 (gone)'), \
             ('s1', 'i-1', 'wait-copy', '222222222222/eu-west-1', 't0', 't1', 'ok', \
              'snap-0def completed')",
        )
        .unwrap();
    let details: Vec<StepDetail> = store
        .steps(&sid("s1"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.detail)
        .collect();
    assert_eq!(
        details,
        [
            StepDetail::Share {
                service: Service::Ebs,
                snapshot: "snap-0abc".into(),
                account: "222222222222".into(),
                gone: false,
            },
            StepDetail::Share {
                service: Service::Rds,
                snapshot: "arn:aws:rds:us-east-1:111111111111:snapshot:x".into(),
                account: "222222222222".into(),
                gone: true,
            },
            StepDetail::note("snap-0def completed"),
        ]
    );
}
