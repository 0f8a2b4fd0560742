//! One behaviour suite of the cloud port (and, in [`store`], one of the state store port), run against every implementation of it: the
//! simulator (`tests/sim.rs`) and the AWS SDK adapter against the moto emulator with
//! `tests/e2e/moto_ext`'s corrections (`tests/moto.rs`).
//!
//! Each check is one AWS rule the workflows rely on (SPEC sections 2 and 3), named after it.
//! Where the two backends disagree, one of them is wrong about AWS. A backend provides a
//! [`Fixture`]: the cloud under test, and a way to build the estate a check needs (which the
//! port itself cannot do: snaprelay never creates keys or instances).

pub mod store;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{KeyManager, SnapshotState, Tag};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{Access, Cloud, CloudError, CopyRequest, DbCopyRequest};
pub use snaprelay_sim::Encryption;

/// The source Region of every check, and the Region replicas go to.
pub const HOME: &str = "us-east-1";
pub const AWAY: &str = "eu-west-1";

/// What a backend gives the checks.
#[async_trait]
pub trait Fixture: Sync {
    fn cloud(&self) -> &dyn Cloud;
    /// The account of the ambient credentials.
    fn source(&self) -> AccountId;
    /// Another account, reached through a role.
    fn other(&self) -> AccountId;
    /// The credentials for an account: ambient for the source, a role for the other.
    fn access(&self, account: &AccountId) -> Access;
    /// A customer managed key whose key policy lets `admits` use it for snapshots.
    async fn create_key(
        &self,
        account: &AccountId,
        region: &str,
        alias: Option<&str>,
        admits: &[AccountId],
    ) -> String;
    /// A running instance with one volume per entry (size in GiB, encryption); its id.
    async fn create_instance(
        &self,
        account: &AccountId,
        region: &str,
        volumes: &[(u32, Encryption)],
    ) -> String;
    /// A DB instance with this identifier.
    async fn create_db_instance(
        &self,
        account: &AccountId,
        region: &str,
        id: &str,
        encryption: Encryption,
    );
    /// An Aurora PostgreSQL DB cluster with this identifier (no member is needed to snapshot
    /// it).
    async fn create_db_cluster(
        &self,
        account: &AccountId,
        region: &str,
        id: &str,
        encryption: Encryption,
    );
    /// Waits a while: virtual time on the simulator, real time against moto.
    async fn pause(&self, d: Duration);
}

pub type Outcome<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

pub struct Check {
    pub name: &'static str,
    pub run: for<'a> fn(&'a dyn Fixture) -> Outcome<'a>,
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        vec![$(Check { name: stringify!($name), run: |f| Box::pin($name(f)) }),*]
    };
}

/// Every check, in the order they are run.
pub fn all() -> Vec<Check> {
    checks![
        credentials_act_in_the_account_of_their_role,
        describe_key_resolves_aliases_and_tells_aws_managed_keys_apart,
        a_key_of_another_account_is_usable_only_when_its_policy_admits_the_caller,
        a_missing_key_is_not_found,
        create_snapshots_takes_one_snapshot_per_volume_under_the_volume_key,
        describe_snapshots_omits_ids_it_does_not_know,
        a_snapshot_under_aws_ebs_cannot_be_shared,
        a_shared_snapshot_is_copied_by_the_other_account_under_its_key,
        an_unshared_snapshot_of_another_account_cannot_be_copied,
        a_copy_fails_when_the_source_key_policy_does_not_admit_the_copier,
        a_copy_without_a_key_stays_encrypted_under_the_copier_default_key,
        only_the_owner_deletes_a_snapshot,
        a_db_snapshot_is_encrypted_with_the_db_key,
        a_db_snapshot_under_aws_rds_cannot_be_shared,
        a_shared_encrypted_db_snapshot_is_copied_only_with_a_key_of_the_copier,
        a_db_snapshot_copy_to_another_region_needs_a_key,
        a_copied_db_snapshot_can_be_copied_on_and_deleted,
        a_cluster_snapshot_is_encrypted_with_the_cluster_key,
        a_cluster_snapshot_under_aws_rds_cannot_be_shared,
        a_shared_cluster_snapshot_is_copied_only_in_its_region_with_a_key_of_the_copier,
        an_unencrypted_cluster_snapshot_is_copied_only_without_a_key,
        find_snapshots_lists_only_the_callers_snapshots_with_the_tag,
        snapshot_shares_name_the_accounts_a_snapshot_is_shared_with,
        find_db_snapshots_lists_only_the_callers_db_snapshots_with_the_tag,
        db_snapshot_shares_name_the_accounts_a_db_snapshot_is_shared_with,
        the_caller_arn_of_a_role_names_the_assumed_role,
        a_key_policy_read_back_tells_which_accounts_may_use_the_key,
    ]
}

/// Runs every check; the failures, by name.
pub async fn run_all(fixture: &dyn Fixture) -> Vec<(&'static str, String)> {
    let mut failures = Vec::new();
    for check in all() {
        if let Err(e) = (check.run)(fixture).await {
            failures.push((check.name, e));
        }
    }
    failures
}

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(what()) }
}

fn ok<T>(result: Result<T, CloudError>, what: &str) -> Result<T, String> {
    result.map_err(|e| format!("{what}: unexpected error: {e}"))
}

fn refused<T: std::fmt::Debug>(
    result: Result<T, CloudError>,
    what: &str,
    code: &str,
) -> Result<CloudError, String> {
    match result {
        Ok(v) => Err(format!("{what}: expected {code}, got success: {v:?}")),
        Err(e) if e.code.as_deref() == Some(code) => Ok(e),
        Err(e) => Err(format!("{what}: expected {code}, got {e}")),
    }
}

/// Polls EBS snapshots until none is pending.
async fn settle(
    f: &dyn Fixture,
    access: &Access,
    region: &str,
    ids: &[String],
) -> Result<Vec<snaprelay_core::model::SnapshotStatus>, String> {
    for _ in 0..400 {
        let statuses = ok(
            f.cloud().describe_snapshots(access, region, ids).await,
            "DescribeSnapshots",
        )?;
        if statuses.len() == ids.len() && statuses.iter().all(|s| s.state != SnapshotState::Pending)
        {
            return Ok(statuses);
        }
        f.pause(Duration::from_secs(30)).await;
    }
    Err(format!("snapshots {ids:?} never settled"))
}

/// Polls DB snapshots until none is in progress.
async fn settle_db(
    f: &dyn Fixture,
    access: &Access,
    region: &str,
    id: &str,
) -> Result<snaprelay_core::model::DbSnapshotStatus, String> {
    let ids = [id.to_owned()];
    for _ in 0..400 {
        let statuses = ok(
            f.cloud().describe_db_snapshots(access, region, &ids).await,
            "DescribeDBSnapshots",
        )?;
        if let Some(s) = statuses.into_iter().next()
            && s.state() != SnapshotState::Pending
        {
            return Ok(s);
        }
        f.pause(Duration::from_secs(30)).await;
    }
    Err(format!("DB snapshot {id} never settled"))
}

/// An instance with one volume under `encryption`, snapshotted, completed: the snapshot id.
async fn completed_snapshot(f: &dyn Fixture, encryption: Encryption) -> Result<String, String> {
    let source = f.source();
    let access = f.access(&source);
    let instance = f.create_instance(&source, HOME, &[(8, encryption)]).await;
    let made = ok(
        f.cloud()
            .create_snapshots(&access, HOME, &instance, "conformance", &[])
            .await,
        "CreateSnapshots",
    )?;
    let ids: Vec<String> = made.into_iter().map(|s| s.snapshot_id).collect();
    settle(f, &access, HOME, &ids).await?;
    ids.into_iter()
        .next()
        .ok_or_else(|| "CreateSnapshots made no snapshot".to_owned())
}

fn copy_request(snapshot_id: &str, kms_key_arn: Option<&str>) -> CopyRequest {
    CopyRequest {
        source_region: HOME.into(),
        source_snapshot_id: snapshot_id.into(),
        kms_key_arn: kms_key_arn.map(str::to_owned),
        description: "conformance copy".into(),
        tags: vec![],
    }
}

// ------------------------------------------------------------------------------ accounts, KMS

async fn credentials_act_in_the_account_of_their_role(f: &dyn Fixture) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let seen = ok(f.cloud().account_of(&f.access(&source)).await, "ambient")?;
    ensure(seen == source, || {
        format!("ambient credentials act in {seen}")
    })?;
    let seen = ok(f.cloud().account_of(&f.access(&other)).await, "role")?;
    ensure(seen == other, || {
        format!("the role acts in {seen}, not {other}")
    })
}

async fn describe_key_resolves_aliases_and_tells_aws_managed_keys_apart(
    f: &dyn Fixture,
) -> Result<(), String> {
    let source = f.source();
    let access = f.access(&source);
    let arn = f.create_key(&source, HOME, Some("conf-app"), &[]).await;
    let key = ok(
        f.cloud()
            .describe_key(&access, HOME, "alias/conf-app")
            .await,
        "DescribeKey alias",
    )?;
    ensure(key.arn == arn, || format!("alias resolved to {}", key.arn))?;
    ensure(
        key.manager == KeyManager::Customer && key.is_enabled(),
        || format!("{key:?}"),
    )?;
    ensure(key.account == source && key.region == HOME, || {
        format!("{key:?}")
    })?;
    for alias in ["alias/aws/ebs", "alias/aws/rds"] {
        let managed = ok(f.cloud().describe_key(&access, HOME, alias).await, alias)?;
        ensure(managed.manager == KeyManager::Aws, || {
            format!("{alias} is {:?}", managed.manager)
        })?;
    }
    Ok(())
}

async fn a_key_of_another_account_is_usable_only_when_its_policy_admits_the_caller(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let admitting = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let private = f.create_key(&source, HOME, None, &[]).await;
    let as_other = f.access(&other);
    let key = ok(
        f.cloud().describe_key(&as_other, HOME, &admitting).await,
        "DescribeKey of an admitting key",
    )?;
    ensure(key.account == source, || format!("{key:?}"))?;
    let e = f
        .cloud()
        .describe_key(&as_other, HOME, &private)
        .await
        .err()
        .ok_or("a key whose policy does not admit the caller was described")?;
    ensure(e.is_access_denied(), || {
        format!("expected access denied, got {e}")
    })
}

async fn a_missing_key_is_not_found(f: &dyn Fixture) -> Result<(), String> {
    let access = f.access(&f.source());
    let e = refused(
        f.cloud()
            .describe_key(&access, HOME, "alias/no-such-key-here")
            .await,
        "DescribeKey of a missing alias",
        "NotFoundException",
    )?;
    ensure(e.is_not_found(), || format!("{e}"))
}

// ------------------------------------------------------------------------------------- EBS

async fn create_snapshots_takes_one_snapshot_per_volume_under_the_volume_key(
    f: &dyn Fixture,
) -> Result<(), String> {
    let source = f.source();
    let access = f.access(&source);
    let key = f.create_key(&source, HOME, None, &[]).await;
    let instance = f
        .create_instance(
            &source,
            HOME,
            &[
                (8, Encryption::Key(key.clone())),
                (20, Encryption::Key(key.clone())),
            ],
        )
        .await;
    let found = ok(
        f.cloud()
            .find_instances(&access, HOME, &Selector::Ids(vec![instance.clone()]))
            .await,
        "DescribeInstances",
    )?;
    let volumes = &found
        .first()
        .ok_or_else(|| format!("instance {instance} not found"))?
        .volumes;
    ensure(volumes.len() == 2, || format!("volumes: {volumes:?}"))?;
    ensure(
        volumes
            .iter()
            .all(|v| v.encrypted && v.kms_key_id.as_deref() == Some(&key)),
        || format!("volumes: {volumes:?}"),
    )?;
    let made = ok(
        f.cloud()
            .create_snapshots(&access, HOME, &instance, "conformance", &[])
            .await,
        "CreateSnapshots",
    )?;
    ensure(made.len() == 2, || format!("made {made:?}"))?;
    let ids: Vec<String> = made.iter().map(|s| s.snapshot_id.clone()).collect();
    let statuses = settle(f, &access, HOME, &ids).await?;
    ensure(
        statuses.iter().all(|s| {
            s.state == SnapshotState::Completed
                && s.encrypted
                && s.kms_key_id.as_ref() == Some(&key)
        }),
        || format!("{statuses:?}"),
    )
}

async fn describe_snapshots_omits_ids_it_does_not_know(f: &dyn Fixture) -> Result<(), String> {
    let access = f.access(&f.source());
    let statuses = ok(
        f.cloud()
            .describe_snapshots(&access, HOME, &["snap-0123456789abcdef0".into()])
            .await,
        "DescribeSnapshots of an unknown id",
    )?;
    ensure(statuses.is_empty(), || format!("{statuses:?}"))
}

async fn a_snapshot_under_aws_ebs_cannot_be_shared(f: &dyn Fixture) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let snapshot = completed_snapshot(f, Encryption::DefaultKey).await?;
    refused(
        f.cloud()
            .set_snapshot_share(&f.access(&source), HOME, &snapshot, &other, true)
            .await,
        "sharing a snapshot under aws/ebs",
        "OperationNotPermitted",
    )
    .map(drop)
}

async fn a_shared_snapshot_is_copied_by_the_other_account_under_its_key(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let source_key = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let target_key = f.create_key(&other, AWAY, None, &[]).await;
    let snapshot = completed_snapshot(f, Encryption::Key(source_key)).await?;
    ok(
        f.cloud()
            .set_snapshot_share(&f.access(&source), HOME, &snapshot, &other, true)
            .await,
        "share",
    )?;
    let as_other = f.access(&other);
    let copy = ok(
        f.cloud()
            .copy_snapshot(&as_other, AWAY, &copy_request(&snapshot, Some(&target_key)))
            .await,
        "CopySnapshot of a shared snapshot",
    )?;
    let statuses = settle(f, &as_other, AWAY, std::slice::from_ref(&copy)).await?;
    ensure(
        statuses[0].state == SnapshotState::Completed
            && statuses[0].kms_key_id.as_deref() == Some(&target_key),
        || format!("{statuses:?}"),
    )?;
    ok(
        f.cloud()
            .set_snapshot_share(&f.access(&source), HOME, &snapshot, &other, false)
            .await,
        "unshare",
    )?;
    refused(
        f.cloud()
            .copy_snapshot(&as_other, AWAY, &copy_request(&snapshot, Some(&target_key)))
            .await,
        "CopySnapshot after the share was removed",
        "InvalidSnapshot.NotFound",
    )
    .map(drop)
}

async fn an_unshared_snapshot_of_another_account_cannot_be_copied(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let source_key = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let target_key = f.create_key(&other, AWAY, None, &[]).await;
    let snapshot = completed_snapshot(f, Encryption::Key(source_key)).await?;
    refused(
        f.cloud()
            .copy_snapshot(
                &f.access(&other),
                AWAY,
                &copy_request(&snapshot, Some(&target_key)),
            )
            .await,
        "CopySnapshot of a snapshot not shared with the caller",
        "InvalidSnapshot.NotFound",
    )
    .map(drop)
}

async fn a_copy_fails_when_the_source_key_policy_does_not_admit_the_copier(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let private = f.create_key(&source, HOME, None, &[]).await;
    let target_key = f.create_key(&other, AWAY, None, &[]).await;
    let snapshot = completed_snapshot(f, Encryption::Key(private)).await?;
    ok(
        f.cloud()
            .set_snapshot_share(&f.access(&source), HOME, &snapshot, &other, true)
            .await,
        "share",
    )?;
    let as_other = f.access(&other);
    // AWS accepts the copy and fails it asynchronously ("the action can appear to complete,
    // but eventually fails", API_CopySnapshot.html).
    let copy = ok(
        f.cloud()
            .copy_snapshot(&as_other, AWAY, &copy_request(&snapshot, Some(&target_key)))
            .await,
        "CopySnapshot",
    )?;
    let statuses = settle(f, &as_other, AWAY, std::slice::from_ref(&copy)).await?;
    ensure(
        statuses[0].state == SnapshotState::Error && statuses[0].state_message.is_some(),
        || format!("{statuses:?}"),
    )
}

async fn a_copy_without_a_key_stays_encrypted_under_the_copier_default_key(
    f: &dyn Fixture,
) -> Result<(), String> {
    let source = f.source();
    let access = f.access(&source);
    let key = f.create_key(&source, HOME, None, &[]).await;
    let snapshot = completed_snapshot(f, Encryption::Key(key)).await?;
    let copy = ok(
        f.cloud()
            .copy_snapshot(&access, AWAY, &copy_request(&snapshot, None))
            .await,
        "CopySnapshot without KmsKeyId",
    )?;
    let statuses = settle(f, &access, AWAY, std::slice::from_ref(&copy)).await?;
    let default = ok(
        f.cloud().describe_key(&access, AWAY, "alias/aws/ebs").await,
        "aws/ebs",
    )?;
    ensure(
        statuses[0].encrypted && statuses[0].kms_key_id.as_deref() == Some(&default.arn),
        || format!("{statuses:?} (aws/ebs is {})", default.arn),
    )
}

async fn only_the_owner_deletes_a_snapshot(f: &dyn Fixture) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let key = f.create_key(&source, HOME, None, &[]).await;
    let snapshot = completed_snapshot(f, Encryption::Key(key)).await?;
    refused(
        f.cloud()
            .delete_snapshot(&f.access(&other), HOME, &snapshot)
            .await,
        "DeleteSnapshot by another account",
        "InvalidSnapshot.NotFound",
    )?;
    let access = f.access(&source);
    ok(
        f.cloud().delete_snapshot(&access, HOME, &snapshot).await,
        "DeleteSnapshot by the owner",
    )?;
    let left = ok(
        f.cloud()
            .describe_snapshots(&access, HOME, std::slice::from_ref(&snapshot))
            .await,
        "DescribeSnapshots",
    )?;
    ensure(left.is_empty(), || format!("{left:?}"))
}

// ------------------------------------------------------------------------------------- RDS

/// A DB instance under `encryption`, snapshotted, available: the snapshot's ARN.
async fn available_db_snapshot(
    f: &dyn Fixture,
    db: &str,
    encryption: Encryption,
) -> Result<(String, snaprelay_core::model::DbSnapshotStatus), String> {
    let source = f.source();
    let access = f.access(&source);
    f.create_db_instance(&source, HOME, db, encryption).await;
    let snapshot_id = format!("{db}-snap");
    ok(
        f.cloud()
            .create_db_snapshot(&access, HOME, db, &snapshot_id, &[])
            .await,
        "CreateDBSnapshot",
    )?;
    let status = settle_db(f, &access, HOME, &snapshot_id).await?;
    ensure(status.state() == SnapshotState::Completed, || {
        format!("{status:?}")
    })?;
    Ok((snapshot_id, status))
}

async fn a_db_snapshot_is_encrypted_with_the_db_key(f: &dyn Fixture) -> Result<(), String> {
    let source = f.source();
    let key = f.create_key(&source, HOME, None, &[]).await;
    let (_, status) = available_db_snapshot(f, "conf-keyed", Encryption::Key(key.clone())).await?;
    ensure(
        status.encrypted && status.kms_key_id.as_deref() == Some(&key),
        || format!("{status:?}"),
    )?;
    let found = ok(
        f.cloud()
            .find_db_instances(
                &f.access(&source),
                HOME,
                &Selector::Ids(vec!["CONF-KEYED".into()]),
            )
            .await,
        "DescribeDBInstances",
    )?;
    ensure(
        found.len() == 1 && found[0].kms_key_id.as_deref() == Some(&key),
        || format!("DB identifiers are case-insensitive: {found:?}"),
    )
}

async fn a_db_snapshot_under_aws_rds_cannot_be_shared(f: &dyn Fixture) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let (snapshot, _) = available_db_snapshot(f, "conf-default", Encryption::DefaultKey).await?;
    refused(
        f.cloud()
            .set_db_snapshot_share(&f.access(&source), HOME, &snapshot, &other, true)
            .await,
        "sharing a DB snapshot under aws/rds",
        "InvalidParameterValue",
    )
    .map(drop)
}

fn db_copy(source_arn: &str, target_id: &str, key: Option<&str>) -> DbCopyRequest {
    DbCopyRequest {
        source_arn: source_arn.into(),
        target_id: target_id.into(),
        kms_key_arn: key.map(str::to_owned),
        tags: vec![],
    }
}

async fn a_shared_encrypted_db_snapshot_is_copied_only_with_a_key_of_the_copier(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let source_key = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let staging = f.create_key(&other, HOME, None, &[]).await;
    let (snapshot, status) =
        available_db_snapshot(f, "conf-shared", Encryption::Key(source_key)).await?;
    ok(
        f.cloud()
            .set_db_snapshot_share(&f.access(&source), HOME, &snapshot, &other, true)
            .await,
        "share",
    )?;
    let as_other = f.access(&other);
    refused(
        f.cloud()
            .copy_db_snapshot(&as_other, HOME, &db_copy(&status.arn, "conf-nokey", None))
            .await,
        "CopyDBSnapshot of a shared encrypted snapshot without KmsKeyId",
        "InvalidParameterValue",
    )?;
    ok(
        f.cloud()
            .copy_db_snapshot(
                &as_other,
                HOME,
                &db_copy(&status.arn, "conf-staged", Some(&staging)),
            )
            .await,
        "CopyDBSnapshot with the copier's key",
    )?;
    let copy = settle_db(f, &as_other, HOME, "conf-staged").await?;
    ensure(
        copy.state() == SnapshotState::Completed && copy.kms_key_id.as_deref() == Some(&staging),
        || format!("{copy:?}"),
    )
}

async fn a_db_snapshot_copy_to_another_region_needs_a_key(f: &dyn Fixture) -> Result<(), String> {
    let source = f.source();
    let key = f.create_key(&source, HOME, None, &[]).await;
    let (_, status) = available_db_snapshot(f, "conf-away", Encryption::Key(key)).await?;
    refused(
        f.cloud()
            .copy_db_snapshot(
                &f.access(&source),
                AWAY,
                &db_copy(&status.arn, "conf-away-copy", None),
            )
            .await,
        "CopyDBSnapshot to another Region without KmsKeyId",
        "InvalidParameterValue",
    )
    .map(drop)
}

async fn a_copied_db_snapshot_can_be_copied_on_and_deleted(f: &dyn Fixture) -> Result<(), String> {
    let source = f.source();
    let access = f.access(&source);
    let key = f.create_key(&source, HOME, None, &[]).await;
    let away_key = f.create_key(&source, AWAY, None, &[]).await;
    let (_, status) = available_db_snapshot(f, "conf-chain", Encryption::Key(key.clone())).await?;
    let first = ok(
        f.cloud()
            .copy_db_snapshot(
                &access,
                HOME,
                &db_copy(&status.arn, "conf-chain-1", Some(&key)),
            )
            .await,
        "first copy",
    )?;
    let first = if first.state() == SnapshotState::Completed {
        first
    } else {
        settle_db(f, &access, HOME, "conf-chain-1").await?
    };
    ok(
        f.cloud()
            .copy_db_snapshot(
                &access,
                AWAY,
                &db_copy(&first.arn, "conf-chain-2", Some(&away_key)),
            )
            .await,
        "second copy, to another Region",
    )?;
    let second = settle_db(f, &access, AWAY, "conf-chain-2").await?;
    ensure(second.kms_key_id.as_deref() == Some(&away_key), || {
        format!("{second:?}")
    })?;
    ok(
        f.cloud()
            .delete_db_snapshot(&access, HOME, "conf-chain-1")
            .await,
        "DeleteDBSnapshot of the intermediate copy",
    )?;
    let left = ok(
        f.cloud()
            .describe_db_snapshots(&access, HOME, &["conf-chain-1".into()])
            .await,
        "DescribeDBSnapshots",
    )?;
    ensure(left.is_empty(), || format!("{left:?}"))?;
    refused(
        f.cloud()
            .delete_db_snapshot(&access, HOME, "conf-chain-1")
            .await,
        "DeleteDBSnapshot of a deleted snapshot",
        "DBSnapshotNotFound",
    )
    .map(drop)
}

// ---------------------------------------------------------------------------------- Aurora

/// Polls DB cluster snapshots until none is in progress.
async fn settle_cluster(
    f: &dyn Fixture,
    access: &Access,
    region: &str,
    id: &str,
) -> Result<snaprelay_core::model::DbSnapshotStatus, String> {
    let ids = [id.to_owned()];
    for _ in 0..400 {
        let statuses = ok(
            f.cloud()
                .describe_db_cluster_snapshots(access, region, &ids)
                .await,
            "DescribeDBClusterSnapshots",
        )?;
        if let Some(s) = statuses.into_iter().next()
            && s.state() != SnapshotState::Pending
        {
            return Ok(s);
        }
        f.pause(Duration::from_secs(30)).await;
    }
    Err(format!("DB cluster snapshot {id} never settled"))
}

/// An Aurora cluster under `encryption`, snapshotted, available: the snapshot's identifier
/// and status.
async fn available_cluster_snapshot(
    f: &dyn Fixture,
    cluster: &str,
    encryption: Encryption,
) -> Result<(String, snaprelay_core::model::DbSnapshotStatus), String> {
    let source = f.source();
    let access = f.access(&source);
    f.create_db_cluster(&source, HOME, cluster, encryption)
        .await;
    let snapshot_id = format!("{cluster}-snap");
    ok(
        f.cloud()
            .create_db_cluster_snapshot(&access, HOME, cluster, &snapshot_id, &[])
            .await,
        "CreateDBClusterSnapshot",
    )?;
    let status = settle_cluster(f, &access, HOME, &snapshot_id).await?;
    ensure(
        status.state() == SnapshotState::Completed && status.arn.contains(":cluster-snapshot:"),
        || format!("{status:?}"),
    )?;
    Ok((snapshot_id, status))
}

async fn a_cluster_snapshot_is_encrypted_with_the_cluster_key(
    f: &dyn Fixture,
) -> Result<(), String> {
    let source = f.source();
    let key = f.create_key(&source, HOME, None, &[]).await;
    let (_, status) =
        available_cluster_snapshot(f, "conf-cluster", Encryption::Key(key.clone())).await?;
    ensure(
        status.encrypted && status.kms_key_id.as_deref() == Some(&key),
        || format!("{status:?}"),
    )?;
    let found = ok(
        f.cloud()
            .find_db_clusters(
                &f.access(&source),
                HOME,
                &Selector::Ids(vec!["conf-cluster".into()]),
            )
            .await,
        "DescribeDBClusters",
    )?;
    ensure(
        found.len() == 1
            && found[0].db.kms_key_id.as_deref() == Some(&key)
            && found[0].db.engine.starts_with("aurora"),
        || format!("{found:?}"),
    )
}

async fn a_cluster_snapshot_under_aws_rds_cannot_be_shared(f: &dyn Fixture) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let (snapshot, _) =
        available_cluster_snapshot(f, "conf-cluster-default", Encryption::DefaultKey).await?;
    refused(
        f.cloud()
            .set_db_cluster_snapshot_share(&f.access(&source), HOME, &snapshot, &other, true)
            .await,
        "sharing a DB cluster snapshot under aws/rds",
        "InvalidParameterValue",
    )
    .map(drop)
}

/// The Aurora User Guide: "You can't copy a DB cluster snapshot across Regions and accounts
/// in a single step" (USER_CopySnapshot.html); a shared encrypted one needs the copier's key
/// (API_CopyDBClusterSnapshot.html).
async fn a_shared_cluster_snapshot_is_copied_only_in_its_region_with_a_key_of_the_copier(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let source_key = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let staging = f.create_key(&other, HOME, None, &[]).await;
    let away = f.create_key(&other, AWAY, None, &[]).await;
    let (snapshot, status) =
        available_cluster_snapshot(f, "conf-cluster-shared", Encryption::Key(source_key)).await?;
    ok(
        f.cloud()
            .set_db_cluster_snapshot_share(&f.access(&source), HOME, &snapshot, &other, true)
            .await,
        "share",
    )?;
    let shares = ok(
        f.cloud()
            .db_cluster_snapshot_shares(&f.access(&source), HOME, &snapshot)
            .await,
        "DescribeDBClusterSnapshotAttributes",
    )?;
    ensure(shares == vec![other.to_string()], || format!("{shares:?}"))?;
    let as_other = f.access(&other);
    refused(
        f.cloud()
            .copy_db_cluster_snapshot(
                &as_other,
                AWAY,
                &db_copy(&status.arn, "conf-cluster-away", Some(&away)),
            )
            .await,
        "CopyDBClusterSnapshot of a shared snapshot into another Region",
        "InvalidParameterValue",
    )?;
    refused(
        f.cloud()
            .copy_db_cluster_snapshot(
                &as_other,
                HOME,
                &db_copy(&status.arn, "conf-cluster-nokey", None),
            )
            .await,
        "CopyDBClusterSnapshot of a shared encrypted snapshot without KmsKeyId",
        "InvalidParameterValue",
    )?;
    ok(
        f.cloud()
            .copy_db_cluster_snapshot(
                &as_other,
                HOME,
                &db_copy(&status.arn, "conf-cluster-staged", Some(&staging)),
            )
            .await,
        "CopyDBClusterSnapshot in the snapshot's Region with the copier's key",
    )?;
    let copy = settle_cluster(f, &as_other, HOME, "conf-cluster-staged").await?;
    ensure(
        copy.state() == SnapshotState::Completed && copy.kms_key_id.as_deref() == Some(&staging),
        || format!("{copy:?}"),
    )?;
    ok(
        f.cloud()
            .delete_db_cluster_snapshot(&as_other, HOME, "conf-cluster-staged")
            .await,
        "DeleteDBClusterSnapshot",
    )?;
    ok(
        f.cloud()
            .set_db_cluster_snapshot_share(&f.access(&source), HOME, &snapshot, &other, false)
            .await,
        "unshare",
    )
}

/// "If you copy an unencrypted DB cluster snapshot and specify a value for the KmsKeyId
/// parameter, an error is returned" (API_CopyDBClusterSnapshot.html).
async fn an_unencrypted_cluster_snapshot_is_copied_only_without_a_key(
    f: &dyn Fixture,
) -> Result<(), String> {
    let source = f.source();
    let access = f.access(&source);
    let away_key = f.create_key(&source, AWAY, None, &[]).await;
    let (_, status) = available_cluster_snapshot(f, "conf-cluster-plain", Encryption::None).await?;
    refused(
        f.cloud()
            .copy_db_cluster_snapshot(
                &access,
                AWAY,
                &db_copy(&status.arn, "conf-cluster-plain-key", Some(&away_key)),
            )
            .await,
        "CopyDBClusterSnapshot of an unencrypted snapshot with KmsKeyId",
        "InvalidParameterValue",
    )?;
    ok(
        f.cloud()
            .copy_db_cluster_snapshot(
                &access,
                AWAY,
                &db_copy(&status.arn, "conf-cluster-plain-copy", None),
            )
            .await,
        "CopyDBClusterSnapshot of an unencrypted snapshot without KmsKeyId",
    )?;
    let copy = settle_cluster(f, &access, AWAY, "conf-cluster-plain-copy").await?;
    ensure(!copy.encrypted && copy.kms_key_id.is_none(), || {
        format!("{copy:?}")
    })
}

// ------------------------------------------------------------------- finding what snaprelay made

async fn find_snapshots_lists_only_the_callers_snapshots_with_the_tag(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let access = f.access(&source);
    let key = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let instance = f
        .create_instance(&source, HOME, &[(8, Encryption::Key(key.clone()))])
        .await;
    let tag = Tag::new("conformance:find", "ebs");
    let made = ok(
        f.cloud()
            .create_snapshots(
                &access,
                HOME,
                &instance,
                "tagged",
                std::slice::from_ref(&tag),
            )
            .await,
        "CreateSnapshots with a tag",
    )?;
    let tagged: Vec<String> = made.into_iter().map(|s| s.snapshot_id).collect();
    settle(f, &access, HOME, &tagged).await?;
    completed_snapshot(f, Encryption::Key(key)).await?;
    let found = ok(
        f.cloud().find_snapshots(&access, HOME, &tag).await,
        "DescribeSnapshots by tag",
    )?;
    let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
    ensure(
        ids == tagged.iter().map(String::as_str).collect::<Vec<_>>(),
        || format!("found {ids:?}, made {tagged:?}"),
    )?;
    ensure(found[0].tags.contains(&tag), || {
        format!("{:?}", found[0].tags)
    })?;
    ok(
        f.cloud()
            .set_snapshot_share(&access, HOME, &tagged[0], &other, true)
            .await,
        "share",
    )?;
    let theirs = ok(
        f.cloud()
            .find_snapshots(&f.access(&other), HOME, &tag)
            .await,
        "DescribeSnapshots by tag, as the account it is shared with",
    )?;
    ensure(theirs.is_empty(), || {
        format!("a snapshot shared with the caller is not the caller's: {theirs:?}")
    })
}

async fn shares(f: &dyn Fixture, access: &Access, snapshot: &str) -> Result<Vec<String>, String> {
    ok(
        f.cloud().snapshot_shares(access, HOME, snapshot).await,
        "DescribeSnapshotAttribute",
    )
}

async fn snapshot_shares_name_the_accounts_a_snapshot_is_shared_with(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let access = f.access(&source);
    let key = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let snapshot = completed_snapshot(f, Encryption::Key(key)).await?;
    let before = shares(f, &access, &snapshot).await?;
    ensure(before.is_empty(), || format!("{before:?}"))?;
    ok(
        f.cloud()
            .set_snapshot_share(&access, HOME, &snapshot, &other, true)
            .await,
        "share",
    )?;
    let shared = shares(f, &access, &snapshot).await?;
    ensure(shared == vec![other.to_string()], || format!("{shared:?}"))?;
    ok(
        f.cloud()
            .set_snapshot_share(&access, HOME, &snapshot, &other, false)
            .await,
        "unshare",
    )?;
    let after = shares(f, &access, &snapshot).await?;
    ensure(after.is_empty(), || format!("{after:?}"))
}

async fn find_db_snapshots_lists_only_the_callers_db_snapshots_with_the_tag(
    f: &dyn Fixture,
) -> Result<(), String> {
    let source = f.source();
    let access = f.access(&source);
    let key = f.create_key(&source, HOME, None, &[]).await;
    available_db_snapshot(f, "conf-untagged", Encryption::Key(key.clone())).await?;
    f.create_db_instance(&source, HOME, "conf-tagged", Encryption::Key(key))
        .await;
    let tag = Tag::new("conformance:find", "rds");
    ok(
        f.cloud()
            .create_db_snapshot(
                &access,
                HOME,
                "conf-tagged",
                "conf-tagged-snap",
                std::slice::from_ref(&tag),
            )
            .await,
        "CreateDBSnapshot with a tag",
    )?;
    let found = ok(
        f.cloud().find_db_snapshots(&access, HOME, &tag).await,
        "DescribeDBSnapshots by tag",
    )?;
    let ids: Vec<&str> = found.iter().map(|s| s.id.as_str()).collect();
    ensure(ids == ["conf-tagged-snap"], || format!("found {ids:?}"))?;
    ensure(found[0].tags.contains(&tag), || {
        format!("{:?}", found[0].tags)
    })
}

async fn db_snapshot_shares_name_the_accounts_a_db_snapshot_is_shared_with(
    f: &dyn Fixture,
) -> Result<(), String> {
    let (source, other) = (f.source(), f.other());
    let access = f.access(&source);
    let key = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let (snapshot, _) = available_db_snapshot(f, "conf-shares", Encryption::Key(key)).await?;
    ok(
        f.cloud()
            .set_db_snapshot_share(&access, HOME, &snapshot, &other, true)
            .await,
        "share",
    )?;
    let shared = ok(
        f.cloud().db_snapshot_shares(&access, HOME, &snapshot).await,
        "DescribeDBSnapshotAttributes",
    )?;
    ensure(shared == vec![other.to_string()], || format!("{shared:?}"))?;
    ok(
        f.cloud()
            .set_db_snapshot_share(&access, HOME, &snapshot, &other, false)
            .await,
        "unshare",
    )?;
    let after = ok(
        f.cloud().db_snapshot_shares(&access, HOME, &snapshot).await,
        "DescribeDBSnapshotAttributes",
    )?;
    ensure(after.is_empty(), || format!("{after:?}"))
}

async fn the_caller_arn_of_a_role_names_the_assumed_role(f: &dyn Fixture) -> Result<(), String> {
    let other = f.other();
    let arn = ok(
        f.cloud().caller_arn(&f.access(&other)).await,
        "GetCallerIdentity with a role",
    )?;
    let role = f
        .access(&other)
        .role_arn
        .ok_or("the other account has no role")?;
    ensure(
        arn.starts_with(&format!(
            "arn:aws:sts::{other}:assumed-role/{}/",
            role.name()
        )),
        || format!("{arn} is not an assumed-role ARN of {role}"),
    )?;
    let ambient = ok(
        f.cloud().caller_arn(&Access::ambient()).await,
        "GetCallerIdentity",
    )?;
    ensure(
        ambient.split(':').nth(4) == Some(f.source().as_str()),
        || format!("{ambient} is not in account {}", f.source()),
    )
}

async fn a_key_policy_read_back_tells_which_accounts_may_use_the_key(
    f: &dyn Fixture,
) -> Result<(), String> {
    use snaprelay_core::access::{Caller, Request, Verdict, evaluate, parse};
    let (source, other) = (f.source(), f.other());
    let admitting = f
        .create_key(&source, HOME, None, std::slice::from_ref(&other))
        .await;
    let private = f.create_key(&source, HOME, None, &[]).await;
    let me = f.access(&source);
    let caller = Caller {
        account: other.to_string(),
        arn: None,
    };
    for (key, admitted) in [(&admitting, true), (&private, false)] {
        let document = ok(f.cloud().key_policy(&me, HOME, key).await, "GetKeyPolicy")?;
        let statements = parse(&document).map_err(|e| format!("{document}: {e}"))?;
        ok(f.cloud().key_grants(&me, HOME, key).await, "ListGrants")?;
        for action in ["kms:Decrypt", "kms:CreateGrant", "kms:DescribeKey"] {
            let context = std::collections::BTreeMap::from([
                ("kms:CallerAccount".to_owned(), vec![other.to_string()]),
                (
                    "kms:GrantIsForAWSResource".to_owned(),
                    vec!["true".to_owned()],
                ),
            ]);
            let verdict = evaluate(
                &statements,
                &Request {
                    caller: &caller,
                    action,
                    resource: key,
                    context: &context,
                },
            );
            ensure(matches!(verdict, Verdict::Allowed(_)) == admitted, || {
                format!(
                    "{action} by {other} on {key} (admitted: {admitted}): {verdict:?} from {document}"
                )
            })?;
        }
    }
    Ok(())
}
