use super::*;
use crate::report::{PlaceReport, RestorePoint, SnapshotReport};
use crate::runtime::clock::parse_rfc3339;

fn point(id: i64, kind: SnapshotKind, region: &str, created_at: &str) -> RecordedRestorePoint {
    RecordedRestorePoint {
        id: RestorePointId(id),
        session_id: SessionId::new(format!("s{id}")),
        status: PointStatus::Complete,
        point: RestorePoint {
            policy: "p".into(),
            resource_type: ResourceType::Ec2,
            resource_id: "i-1".into(),
            kind,
            created_at: created_at.into(),
            place: PlaceReport {
                account: "222222222222".into(),
                region: region.into(),
                snapshots: vec![SnapshotReport {
                    id: format!("snap-{id}"),
                    source_id: "vol-1".into(),
                    volume_id: "vol-1".into(),
                    device: None,
                    kms_key_id: None,
                    size_gib: None,
                }],
            },
            config: None,
        },
        deleted_snapshots: vec![],
        last_drill: None,
    }
}

fn ids(expired: &[(&RecordedRestorePoint, String)]) -> Vec<i64> {
    let mut ids: Vec<i64> = expired.iter().map(|(p, _)| p.id.0).collect();
    ids.sort_unstable();
    ids
}

const NOW: &str = "2026-11-26T12:00:00Z";

fn now() -> u64 {
    parse_rfc3339(NOW).unwrap()
}

#[test]
fn count_keeps_the_newest_restore_points_of_each_place() {
    let points = vec![
        point(
            1,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-24T00:00:00Z",
        ),
        point(
            2,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-25T00:00:00Z",
        ),
        point(
            3,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-26T00:00:00Z",
        ),
        point(
            4,
            SnapshotKind::Replica,
            "us-west-2",
            "2026-11-24T00:00:00Z",
        ),
    ];
    let retention = Retention {
        replicas: Some(Keep::Count(2)),
        source: None,
    };
    let (expired, kept) = expired(&points, &retention, now());
    assert_eq!(
        ids(&expired),
        vec![1],
        "the place with one restore point keeps it"
    );
    assert_eq!(kept, 3);
}

#[test]
fn the_newest_restore_point_is_kept_however_old() {
    let points = vec![
        point(
            1,
            SnapshotKind::Replica,
            "eu-west-1",
            "2025-01-01T00:00:00Z",
        ),
        point(
            2,
            SnapshotKind::Replica,
            "eu-west-1",
            "2025-02-01T00:00:00Z",
        ),
    ];
    let retention = Retention {
        replicas: Some(Keep::Days(7)),
        source: None,
    };
    let (expired, _) = expired(&points, &retention, now());
    assert_eq!(ids(&expired), vec![1]);
}

#[test]
fn days_lets_go_of_restore_points_older_than_the_limit() {
    let points = vec![
        point(
            1,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-18T11:59:59Z",
        ),
        point(
            2,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-19T12:00:00Z",
        ),
        point(
            3,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-26T00:00:00Z",
        ),
    ];
    let retention = Retention {
        replicas: Some(Keep::Days(7)),
        source: None,
    };
    let (expired, kept) = expired(&points, &retention, now());
    assert_eq!(ids(&expired), vec![1]);
    assert_eq!(kept, 2);
}

#[test]
fn source_and_replicas_follow_their_own_rules_and_none_keeps_everything() {
    let points = vec![
        point(1, SnapshotKind::Source, "us-east-1", "2026-11-24T00:00:00Z"),
        point(2, SnapshotKind::Source, "us-east-1", "2026-11-25T00:00:00Z"),
        point(
            3,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-24T00:00:00Z",
        ),
        point(
            4,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-25T00:00:00Z",
        ),
    ];
    let only_source = Retention {
        replicas: None,
        source: Some(Keep::Count(1)),
    };
    assert_eq!(ids(&expired(&points, &only_source, now()).0), vec![1]);
    assert!(expired(&points, &Retention::default(), now()).0.is_empty());
}

#[test]
fn a_half_deleted_restore_point_is_finished_and_a_deleted_one_ignored() {
    let mut half = point(
        1,
        SnapshotKind::Replica,
        "eu-west-1",
        "2026-11-26T00:00:00Z",
    );
    half.status = PointStatus::Deleting;
    let mut gone = point(
        2,
        SnapshotKind::Replica,
        "eu-west-1",
        "2026-11-20T00:00:00Z",
    );
    gone.status = PointStatus::Deleted;
    let points = vec![
        half,
        gone,
        point(
            3,
            SnapshotKind::Replica,
            "eu-west-1",
            "2026-11-25T00:00:00Z",
        ),
    ];
    let (expired, kept) = expired(&points, &Retention::default(), now());
    assert_eq!(ids(&expired), vec![1]);
    assert_eq!(kept, 1);
}

#[test]
fn db_snapshot_names_come_from_their_arns() {
    assert_eq!(
        db_snapshot_name("arn:aws:rds:eu-west-1:222222222222:snapshot:snaprelay-p-db-1"),
        "snaprelay-p-db-1"
    );
}
