//! The crash hook for tests: with `SNAPRELAY_ABORT_AFTER_SIDE_EFFECT=N`, the process aborts
//! (like `kill -9`: no cleanup, no final record) right after the Nth call that changes AWS
//! (a snapshot, share, unshare, copy or delete) has returned. Crash tests use it to stop a
//! session at every point in turn. Unset, nothing is wrapped.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{
    DbInstance, DbSnapshotStatus, Instance, KeyInfo, SnapshotStatus, Tag, VolumeSnapshot,
};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{Access, Cloud, CloudError, CopyRequest, DbCopyRequest, RegionStatus};

pub const VARIABLE: &str = "SNAPRELAY_ABORT_AFTER_SIDE_EFFECT";

/// The side effect after which to abort, from the environment; an error names a bad value.
pub fn abort_after() -> Result<Option<u64>, String> {
    match std::env::var(VARIABLE) {
        Err(_) => Ok(None),
        Ok(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= 1)
            .map(Some)
            .ok_or_else(|| format!("{VARIABLE} = {v:?} is not a whole number of at least 1")),
    }
}

pub struct AbortAfter<'a> {
    inner: &'a dyn Cloud,
    nth: u64,
    done: AtomicU64,
}

impl<'a> AbortAfter<'a> {
    pub fn new(inner: &'a dyn Cloud, nth: u64) -> Self {
        Self {
            inner,
            nth,
            done: AtomicU64::new(0),
        }
    }

    /// Counts a side effect that was made (AWS answered), and aborts after the Nth.
    fn made<T>(&self, what: &str, result: Result<T, CloudError>) -> Result<T, CloudError> {
        if result.is_ok() && self.done.fetch_add(1, Ordering::SeqCst) + 1 == self.nth {
            say!("snaprelay: {VARIABLE}={}: aborting after {what}", self.nth);
            std::process::abort();
        }
        result
    }
}

#[async_trait]
impl Cloud for AbortAfter<'_> {
    async fn account_of(&self, access: &Access) -> Result<AccountId, CloudError> {
        self.inner.account_of(access).await
    }
    async fn regions(&self, access: &Access) -> Result<Vec<RegionStatus>, CloudError> {
        self.inner.regions(access).await
    }
    async fn find_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<Instance>, CloudError> {
        self.inner.find_instances(access, region, selector).await
    }
    async fn describe_key(
        &self,
        access: &Access,
        region: &str,
        key: &str,
    ) -> Result<KeyInfo, CloudError> {
        self.inner.describe_key(access, region, key).await
    }
    async fn create_snapshots(
        &self,
        access: &Access,
        region: &str,
        instance_id: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<Vec<VolumeSnapshot>, CloudError> {
        let r = self
            .inner
            .create_snapshots(access, region, instance_id, description, tags)
            .await;
        self.made("CreateSnapshots", r)
    }
    async fn describe_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        self.inner
            .describe_snapshots(access, region, snapshot_ids)
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
        let r = self
            .inner
            .set_snapshot_share(access, region, snapshot_id, account, shared)
            .await;
        self.made("ModifySnapshotAttribute", r)
    }
    async fn copy_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &CopyRequest,
    ) -> Result<String, CloudError> {
        let r = self.inner.copy_snapshot(access, region, request).await;
        self.made("CopySnapshot", r)
    }
    async fn find_db_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<DbInstance>, CloudError> {
        self.inner.find_db_instances(access, region, selector).await
    }
    async fn create_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
    ) -> Result<DbSnapshotStatus, CloudError> {
        let r = self
            .inner
            .create_db_snapshot(access, region, db_instance_id, snapshot_id, tags)
            .await;
        self.made("CreateDBSnapshot", r)
    }
    async fn describe_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        self.inner
            .describe_db_snapshots(access, region, snapshot_ids)
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
        let r = self
            .inner
            .set_db_snapshot_share(access, region, snapshot_id, account, shared)
            .await;
        self.made("ModifyDBSnapshotAttribute", r)
    }
    async fn copy_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &DbCopyRequest,
    ) -> Result<DbSnapshotStatus, CloudError> {
        let r = self.inner.copy_db_snapshot(access, region, request).await;
        self.made("CopyDBSnapshot", r)
    }
    async fn delete_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        let r = self
            .inner
            .delete_db_snapshot(access, region, snapshot_id)
            .await;
        self.made("DeleteDBSnapshot", r)
    }
    async fn delete_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        let r = self
            .inner
            .delete_snapshot(access, region, snapshot_id)
            .await;
        self.made("DeleteSnapshot", r)
    }
    async fn find_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        self.inner.find_snapshots(access, region, tag).await
    }
    async fn snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.inner
            .snapshot_shares(access, region, snapshot_id)
            .await
    }
    async fn find_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        self.inner.find_db_snapshots(access, region, tag).await
    }
    async fn db_snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.inner
            .db_snapshot_shares(access, region, snapshot_id)
            .await
    }
}
