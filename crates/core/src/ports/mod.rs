//! The ports the core drives: the cloud (AWS through the SDK, or a simulator) and the state
//! store (SQLite). Adapters live in their own crates; the core never sees an SDK type.

use std::fmt;

use async_trait::async_trait;

use crate::ids::{AccountId, RoleArn};
use crate::model::{
    DbInstance, DbSnapshotStatus, Instance, KeyInfo, SnapshotStatus, Tag, VolumeSnapshot,
};
use crate::policy::Selector;

mod state;
pub use state::*;

/// Whose credentials a call is made with: a role assumed with STS, or the ambient credentials
/// of the default chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Access {
    pub role_arn: Option<RoleArn>,
}

impl Access {
    pub fn ambient() -> Self {
        Self { role_arn: None }
    }

    pub fn role(role_arn: Option<RoleArn>) -> Self {
        Self { role_arn }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role_arn {
            Some(r) => write!(f, "role {r}"),
            None => f.write_str("the ambient credentials"),
        }
    }
}

/// An AWS call that failed: which call, and what AWS said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} in {region} failed: {}{message}", code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct CloudError {
    pub service: &'static str,
    pub operation: &'static str,
    pub region: String,
    /// The AWS error code (`InvalidSnapshot.NotFound`, `AccessDenied`, ...), when AWS gave one.
    pub code: Option<String>,
    pub message: String,
}

impl CloudError {
    /// AWS refused the call because a quota is used up (concurrent snapshot copies per
    /// destination Region, the per-volume snapshot rate): the work waits and is tried again,
    /// it does not fail (SPEC section 3).
    pub fn is_quota(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "ResourceLimitExceeded"
                    | "SnapshotQuotaExceeded"
                    | "SnapshotCreationPerVolumeRateExceeded"
                    | "ConcurrentSnapshotLimitExceeded"
            )
        )
    }

    /// AWS refused the call for its request rate; it is retried with backoff and jitter.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "RequestLimitExceeded"
                    | "Throttling"
                    | "ThrottlingException"
                    | "TooManyRequestsException"
                    | "RequestThrottled"
            )
        )
    }

    pub fn is_access_denied(&self) -> bool {
        self.code.as_deref().is_some_and(|c| {
            c.contains("AccessDenied") || c == "UnauthorizedOperation" || c == "AuthFailure"
        })
    }

    pub fn is_not_found(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| c.contains("NotFound") || c == "NoSuchEntity")
    }
}

/// Parameters of an RDS `CopyDBSnapshot`, called in the destination Region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbCopyRequest {
    /// The source snapshot's ARN: required for a snapshot of another Region or account.
    pub source_arn: String,
    /// `TargetDBSnapshotIdentifier`.
    pub target_id: String,
    /// The key that encrypts the copy (a key of the caller's account in the destination
    /// Region; mandatory for a shared encrypted snapshot).
    pub kms_key_arn: Option<String>,
    pub tags: Vec<Tag>,
}

/// A Region and whether the account may use it (opt-in Regions must be enabled first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionStatus {
    pub name: String,
    pub enabled: bool,
}

/// Parameters of an EBS `CopySnapshot`, called in the destination Region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyRequest {
    pub source_region: String,
    pub source_snapshot_id: String,
    /// The key that encrypts the copy; `None` copies without re-encrypting.
    pub kms_key_arn: Option<String>,
    pub description: String,
    pub tags: Vec<Tag>,
}

/// The cloud as the workflows need it. Every call names the credentials and the Region.
#[async_trait]
pub trait Cloud: Send + Sync {
    /// The account the credentials act in (STS `GetCallerIdentity`).
    async fn account_of(&self, access: &Access) -> Result<AccountId, CloudError>;

    /// The Regions AWS knows (EC2 `DescribeRegions` with `AllRegions`), and whether each is
    /// enabled for the account of these credentials.
    async fn regions(&self, access: &Access) -> Result<Vec<RegionStatus>, CloudError>;

    /// Instances (not terminated) matching the selector, with their attached volumes.
    async fn find_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<Instance>, CloudError>;

    /// KMS `DescribeKey`: resolves a key id, alias or ARN to the key.
    async fn describe_key(
        &self,
        access: &Access,
        region: &str,
        key: &str,
    ) -> Result<KeyInfo, CloudError>;

    /// EC2 `CreateSnapshots`: one crash-consistent snapshot of each attached volume.
    async fn create_snapshots(
        &self,
        access: &Access,
        region: &str,
        instance_id: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<Vec<VolumeSnapshot>, CloudError>;

    /// EC2 `DescribeSnapshots` for a batch of snapshot ids owned by the caller.
    async fn describe_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<SnapshotStatus>, CloudError>;

    /// Grants (`add`) or revokes (`remove`) `createVolumePermission` for one account.
    async fn set_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError>;

    /// EC2 `CopySnapshot` in `region` (the destination); returns the new snapshot id.
    async fn copy_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &CopyRequest,
    ) -> Result<String, CloudError>;

    /// RDS `DescribeDBInstances`: DB instances matching the selector.
    async fn find_db_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<DbInstance>, CloudError>;

    /// RDS `CreateDBSnapshot` of a DB instance, named `snapshot_id`.
    async fn create_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
    ) -> Result<DbSnapshotStatus, CloudError>;

    /// RDS `DescribeDBSnapshots` for a batch of the caller's own DB snapshot identifiers.
    async fn describe_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<DbSnapshotStatus>, CloudError>;

    /// RDS `ModifyDBSnapshotAttribute` `restore`: shares with (or unshares from) one account.
    async fn set_db_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError>;

    /// RDS `CopyDBSnapshot`, called in `region` (the destination).
    async fn copy_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &DbCopyRequest,
    ) -> Result<DbSnapshotStatus, CloudError>;

    /// RDS `DeleteDBSnapshot`; only ever called on a DB snapshot this session created.
    async fn delete_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError>;

    /// EC2 `DeleteSnapshot`; only ever called on a snapshot this session created.
    async fn delete_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError>;

    /// EC2 `DescribeSnapshots` of the caller's own snapshots that carry `tag`.
    async fn find_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<SnapshotStatus>, CloudError>;

    /// EC2 `DescribeSnapshotAttribute` `createVolumePermission`: the accounts a snapshot is
    /// shared with (`all` when public).
    async fn snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError>;

    /// RDS `DescribeDBSnapshots` of the caller's manual DB snapshots that carry `tag`.
    async fn find_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<DbSnapshotStatus>, CloudError>;

    /// RDS `DescribeDBSnapshotAttributes` `restore`: the accounts a DB snapshot is shared with
    /// (`all` when public).
    async fn db_snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError>;

    /// STS `GetCallerIdentity`: the ARN the credentials act as (`...:assumed-role/NAME/...`
    /// for a role).
    async fn caller_arn(&self, access: &Access) -> Result<String, CloudError>;

    /// KMS `GetKeyPolicy` (policy `default`) of a key of the caller's account.
    async fn key_policy(
        &self,
        access: &Access,
        region: &str,
        key_arn: &str,
    ) -> Result<String, CloudError>;

    /// KMS `ListGrants` of a key of the caller's account.
    async fn key_grants(
        &self,
        access: &Access,
        region: &str,
        key_arn: &str,
    ) -> Result<Vec<KeyGrant>, CloudError>;

    /// IAM: the policy documents of a role of the caller's account, inline
    /// (`ListRolePolicies`, `GetRolePolicy`) and attached managed ones
    /// (`ListAttachedRolePolicies`, `GetPolicy`, `GetPolicyVersion`): (the inline policy's
    /// name or the managed policy's ARN, the JSON document).
    async fn role_policies(
        &self,
        access: &Access,
        role_name: &str,
    ) -> Result<Vec<(String, String)>, CloudError>;
}

/// A KMS grant: who may use the key for which operations, without the key policy saying so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGrant {
    pub grantee: String,
    /// `Decrypt`, `CreateGrant`, ...
    pub operations: Vec<String>,
}
