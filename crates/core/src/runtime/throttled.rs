//! Throttling, retried. AWS answers `RequestLimitExceeded` (EC2) or `Throttling` (RDS, KMS, STS)
//! when a request rate is exceeded; the SDK retries a few times, and a fleet-sized session can
//! outlast that. Every call the engine makes goes through [`Throttled`], which retries throttled
//! calls with exponential backoff and jitter (SPEC section 3) before giving up.
//!
//! Only throttling is retried here. Quota refusals (`ResourceLimitExceeded`, ...) are the
//! workflows' to handle (they wait for copy slots), and any other error is an answer.
//!
//! It is also where the engine's calls that change AWS can be observed: a [`ChangeHook`] is
//! told of each one that succeeded (the crash tests abort the process there).

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::jitter;
use crate::ids::AccountId;
use crate::model::{
    DbInstance, DbSnapshotStatus, Instance, KeyInfo, SnapshotStatus, Tag, VolumeSnapshot,
};
use crate::policy::Selector;
use crate::ports::{Access, Cloud, CloudError, CopyRequest, DbCopyRequest, KeyGrant, RegionStatus};

/// Attempts per call before the throttling error is returned.
const ATTEMPTS: u32 = 8;
const FIRST_WAIT: Duration = Duration::from_millis(500);
const LONGEST_WAIT: Duration = Duration::from_secs(20);

/// Told the operation name (`CopySnapshot`, ...) of each call that changed AWS, once AWS has
/// answered it successfully.
#[derive(Clone)]
pub struct ChangeHook(pub Arc<dyn Fn(&'static str) + Send + Sync>);

impl fmt::Debug for ChangeHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChangeHook")
    }
}

/// A cloud whose throttled calls are retried: `Throttled<Arc<dyn Cloud>>` in the application,
/// `Throttled<&SimCloud>` in a test that drives the engine itself. Wrapped once, where calls
/// leave for AWS; nothing under it retries throttling again.
pub struct Throttled<C> {
    inner: C,
    after_change: Option<ChangeHook>,
}

impl<C> Throttled<C> {
    pub fn new(inner: C) -> Self {
        Self::with_hook(inner, None)
    }

    pub fn with_hook(inner: C, after_change: Option<ChangeHook>) -> Self {
        Self {
            inner,
            after_change,
        }
    }

    /// A call that changes AWS: retried like any other, then reported to the hook.
    async fn change<T, F, Fut>(&self, operation: &'static str, call: F) -> Result<T, CloudError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let result = self.retry(call).await;
        if let (Ok(_), Some(hook)) = (&result, &self.after_change) {
            (hook.0)(operation);
        }
        result
    }

    async fn retry<T, F, Fut>(&self, call: F) -> Result<T, CloudError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, CloudError>>,
    {
        let mut wait = FIRST_WAIT;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(e) if e.is_throttling() && attempt < ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "throttled; trying again");
                    tokio::time::sleep(jitter(wait)).await;
                    wait = (wait * 2).min(LONGEST_WAIT);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }
}

#[async_trait]
impl<C> Cloud for Throttled<C>
where
    C: Deref + Send + Sync,
    C::Target: Cloud,
{
    async fn account_of(&self, access: &Access) -> Result<AccountId, CloudError> {
        self.retry(|| self.inner.account_of(access)).await
    }

    async fn regions(&self, access: &Access) -> Result<Vec<RegionStatus>, CloudError> {
        self.retry(|| self.inner.regions(access)).await
    }

    async fn find_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<Instance>, CloudError> {
        self.retry(|| self.inner.find_instances(access, region, selector))
            .await
    }

    async fn describe_key(
        &self,
        access: &Access,
        region: &str,
        key: &str,
    ) -> Result<KeyInfo, CloudError> {
        self.retry(|| self.inner.describe_key(access, region, key))
            .await
    }

    async fn create_snapshots(
        &self,
        access: &Access,
        region: &str,
        instance_id: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<Vec<VolumeSnapshot>, CloudError> {
        self.change("CreateSnapshots", || {
            self.inner
                .create_snapshots(access, region, instance_id, description, tags)
        })
        .await
    }

    async fn describe_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        self.retry(|| self.inner.describe_snapshots(access, region, snapshot_ids))
            .await
    }

    async fn set_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        self.change("ModifySnapshotAttribute", || {
            self.inner
                .set_snapshot_share(access, region, snapshot_id, account, shared)
        })
        .await
    }

    async fn copy_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &CopyRequest,
    ) -> Result<String, CloudError> {
        self.change("CopySnapshot", || {
            self.inner.copy_snapshot(access, region, request)
        })
        .await
    }

    async fn find_db_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<DbInstance>, CloudError> {
        self.retry(|| self.inner.find_db_instances(access, region, selector))
            .await
    }

    async fn create_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
    ) -> Result<DbSnapshotStatus, CloudError> {
        self.change("CreateDBSnapshot", || {
            self.inner
                .create_db_snapshot(access, region, db_instance_id, snapshot_id, tags)
        })
        .await
    }

    async fn describe_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        self.retry(|| {
            self.inner
                .describe_db_snapshots(access, region, snapshot_ids)
        })
        .await
    }

    async fn set_db_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        self.change("ModifyDBSnapshotAttribute", || {
            self.inner
                .set_db_snapshot_share(access, region, snapshot_id, account, shared)
        })
        .await
    }

    async fn copy_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &DbCopyRequest,
    ) -> Result<DbSnapshotStatus, CloudError> {
        self.change("CopyDBSnapshot", || {
            self.inner.copy_db_snapshot(access, region, request)
        })
        .await
    }

    async fn delete_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        self.change("DeleteDBSnapshot", || {
            self.inner.delete_db_snapshot(access, region, snapshot_id)
        })
        .await
    }

    async fn delete_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        self.change("DeleteSnapshot", || {
            self.inner.delete_snapshot(access, region, snapshot_id)
        })
        .await
    }

    async fn find_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        self.retry(|| self.inner.find_snapshots(access, region, tag))
            .await
    }

    async fn snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.retry(|| self.inner.snapshot_shares(access, region, snapshot_id))
            .await
    }

    async fn find_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        self.retry(|| self.inner.find_db_snapshots(access, region, tag))
            .await
    }

    async fn db_snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.retry(|| self.inner.db_snapshot_shares(access, region, snapshot_id))
            .await
    }

    async fn caller_arn(&self, access: &Access) -> Result<String, CloudError> {
        self.retry(|| self.inner.caller_arn(access)).await
    }

    async fn key_policy(
        &self,
        access: &Access,
        region: &str,
        key_arn: &str,
    ) -> Result<String, CloudError> {
        self.retry(|| self.inner.key_policy(access, region, key_arn))
            .await
    }

    async fn key_grants(
        &self,
        access: &Access,
        region: &str,
        key_arn: &str,
    ) -> Result<Vec<KeyGrant>, CloudError> {
        self.retry(|| self.inner.key_grants(access, region, key_arn))
            .await
    }

    async fn role_policies(
        &self,
        access: &Access,
        role_name: &str,
    ) -> Result<Vec<(String, String)>, CloudError> {
        self.retry(|| self.inner.role_policies(access, role_name))
            .await
    }
}
