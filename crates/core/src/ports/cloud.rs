//! The cloud port, as capabilities: who the credentials are ([`Identity`]), what the policy
//! selects ([`Inventory`]), KMS keys ([`Keys`]), EBS snapshots ([`EbsSnapshots`]), RDS DB
//! snapshots ([`DbSnapshots`]) and sharing them ([`Sharing`]). [`Cloud`] is all of them; an
//! adapter (the SDK, the simulator) implements each.
//!
//! Every call is listed once, below, with the AWS operation it is and whether it changes AWS.
//! From that list one forwarding implementation is made for [`Layered`], so that what wraps
//! every call (throttling and retries, the crash hook, logging, counting) is written once, as
//! a [`Layer`], and never per method.

use std::future::Future;
use std::ops::Deref;

use async_trait::async_trait;

use super::{Access, CloudError, CopyRequest, DbCopyRequest, KeyGrant, RegionStatus};
use crate::ids::AccountId;
use crate::model::{
    DbInstance, DbSnapshotStatus, Instance, KeyInfo, SnapshotStatus, Tag, VolumeSnapshot,
};
use crate::policy::Selector;

/// The capability traits, for code that calls them on a concrete adapter (`SimCloud`, ...):
/// `use snaprelay_core::ports::prelude::*;`.
pub mod prelude {
    pub use super::{Cloud, DbSnapshots, EbsSnapshots, Identity, Inventory, Keys, Sharing};
}

/// One call leaving for AWS, as a [`Layer`] sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call<'a> {
    /// `ec2`, `rds`, `kms`, `sts`, `iam`.
    pub service: &'static str,
    /// The AWS operation (`CreateSnapshots`, ...).
    pub operation: &'static str,
    /// The Region it is made in, when the call names one.
    pub region: Option<&'a str>,
    /// Whether it changes AWS (creates, copies, shares, deletes) or only reads.
    pub changes_aws: bool,
}

/// What wraps every call of the cloud port: `around` is given the call and a way to make it
/// (again, for a retry) and returns its result.
pub trait Layer: Send + Sync {
    fn around<T, F, Fut>(
        &self,
        call: Call<'_>,
        make: F,
    ) -> impl Future<Output = Result<T, CloudError>> + Send
    where
        T: Send,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<T, CloudError>> + Send;
}

/// A cloud whose every call goes through a [`Layer`]: `Layered<L, Arc<dyn Cloud>>` in the
/// application, `Layered<L, &SimCloud>` in a test that drives the engine itself.
pub struct Layered<L, C> {
    pub layer: L,
    pub inner: C,
}

/// All the capabilities: what the workflows, `check`, `gc` and retention call.
pub trait Cloud: Identity + Inventory + Keys + EbsSnapshots + DbSnapshots + Sharing {}

impl<T: Identity + Inventory + Keys + EbsSnapshots + DbSnapshots + Sharing + ?Sized> Cloud for T {}

/// Declares each capability trait, and its forwarding through [`Layered`].
macro_rules! capabilities {
    ($(
        $(#[$trait_meta:meta])*
        trait $trait:ident {
            $(
                $(#[$meta:meta])*
                $kind:ident $service:literal $operation:literal $(in $region:ident)?:
                fn $method:ident(&self $(, $arg:ident: $ty:ty)* $(,)?) -> $out:ty;
            )*
        }
    )*) => {$(
        $(#[$trait_meta])*
        #[async_trait]
        pub trait $trait: Send + Sync {
            $(
                $(#[$meta])*
                async fn $method(&self $(, $arg: $ty)*) -> Result<$out, CloudError>;
            )*
        }

        #[async_trait]
        impl<L, C> $trait for Layered<L, C>
        where
            L: Layer,
            C: Deref + Send + Sync,
            C::Target: Cloud,
        {
            $(
                async fn $method(&self $(, $arg: $ty)*) -> Result<$out, CloudError> {
                    let call = Call {
                        service: $service,
                        operation: $operation,
                        region: capabilities!(@region $($region)?),
                        changes_aws: capabilities!(@changes $kind),
                    };
                    self.layer
                        .around(call, || self.inner.$method($($arg),*))
                        .await
                }
            )*
        }
    )*};
    (@region $region:ident) => { Some($region) };
    (@region) => { None };
    (@changes change) => { true };
    (@changes read) => { false };
}

capabilities! {
    /// Who the credentials are, and what they may do.
    trait Identity {
        /// The account the credentials act in (STS `GetCallerIdentity`).
        read "sts" "GetCallerIdentity":
        fn account_of(&self, access: &Access) -> AccountId;

        /// STS `GetCallerIdentity`: the ARN the credentials act as
        /// (`...:assumed-role/NAME/...` for a role).
        read "sts" "GetCallerIdentity":
        fn caller_arn(&self, access: &Access) -> String;

        /// The Regions AWS knows (EC2 `DescribeRegions` with `AllRegions`), and whether each
        /// is enabled for the account of these credentials.
        read "ec2" "DescribeRegions":
        fn regions(&self, access: &Access) -> Vec<RegionStatus>;

        /// IAM: the policy documents of a role of the caller's account, inline
        /// (`ListRolePolicies`, `GetRolePolicy`) and attached managed ones
        /// (`ListAttachedRolePolicies`, `GetPolicy`, `GetPolicyVersion`): (the inline
        /// policy's name or the managed policy's ARN, the JSON document).
        read "iam" "GetRolePolicy":
        fn role_policies(&self, access: &Access, role_name: &str) -> Vec<(String, String)>;
    }

    /// The resources a policy selects.
    trait Inventory {
        /// Instances (not terminated) matching the selector, with their attached volumes.
        read "ec2" "DescribeInstances" in region:
        fn find_instances(&self, access: &Access, region: &str, selector: &Selector)
            -> Vec<Instance>;

        /// RDS `DescribeDBInstances`: DB instances matching the selector.
        read "rds" "DescribeDBInstances" in region:
        fn find_db_instances(&self, access: &Access, region: &str, selector: &Selector)
            -> Vec<DbInstance>;
    }

    /// KMS keys: what a key is, and who its policy and grants admit.
    trait Keys {
        /// KMS `DescribeKey`: resolves a key id, alias or ARN to the key.
        read "kms" "DescribeKey" in region:
        fn describe_key(&self, access: &Access, region: &str, key: &str) -> KeyInfo;

        /// KMS `GetKeyPolicy` (policy `default`) of a key of the caller's account.
        read "kms" "GetKeyPolicy" in region:
        fn key_policy(&self, access: &Access, region: &str, key_arn: &str) -> String;

        /// KMS `ListGrants` of a key of the caller's account.
        read "kms" "ListGrants" in region:
        fn key_grants(&self, access: &Access, region: &str, key_arn: &str) -> Vec<KeyGrant>;
    }

    /// EBS snapshots of the caller's account.
    trait EbsSnapshots {
        /// EC2 `CreateSnapshots`: one crash-consistent snapshot of each attached volume.
        change "ec2" "CreateSnapshots" in region:
        fn create_snapshots(
            &self,
            access: &Access,
            region: &str,
            instance_id: &str,
            description: &str,
            tags: &[Tag],
        ) -> Vec<VolumeSnapshot>;

        /// EC2 `DescribeSnapshots` for a batch of snapshot ids owned by the caller.
        read "ec2" "DescribeSnapshots" in region:
        fn describe_snapshots(&self, access: &Access, region: &str, snapshot_ids: &[String])
            -> Vec<SnapshotStatus>;

        /// EC2 `DescribeSnapshots` of the caller's own snapshots that carry `tag`.
        read "ec2" "DescribeSnapshots" in region:
        fn find_snapshots(&self, access: &Access, region: &str, tag: &Tag) -> Vec<SnapshotStatus>;

        /// EC2 `CopySnapshot` in `region` (the destination); returns the new snapshot id.
        change "ec2" "CopySnapshot" in region:
        fn copy_snapshot(&self, access: &Access, region: &str, request: &CopyRequest) -> String;

        /// EC2 `DeleteSnapshot`; only ever called on a snapshot snaprelay made.
        change "ec2" "DeleteSnapshot" in region:
        fn delete_snapshot(&self, access: &Access, region: &str, snapshot_id: &str) -> ();
    }

    /// RDS DB snapshots of the caller's account.
    trait DbSnapshots {
        /// RDS `CreateDBSnapshot` of a DB instance, named `snapshot_id`.
        change "rds" "CreateDBSnapshot" in region:
        fn create_db_snapshot(
            &self,
            access: &Access,
            region: &str,
            db_instance_id: &str,
            snapshot_id: &str,
            tags: &[Tag],
        ) -> DbSnapshotStatus;

        /// RDS `DescribeDBSnapshots` for a batch of the caller's own DB snapshot identifiers.
        read "rds" "DescribeDBSnapshots" in region:
        fn describe_db_snapshots(&self, access: &Access, region: &str, snapshot_ids: &[String])
            -> Vec<DbSnapshotStatus>;

        /// RDS `DescribeDBSnapshots` of the caller's manual DB snapshots that carry `tag`.
        read "rds" "DescribeDBSnapshots" in region:
        fn find_db_snapshots(&self, access: &Access, region: &str, tag: &Tag)
            -> Vec<DbSnapshotStatus>;

        /// RDS `CopyDBSnapshot`, called in `region` (the destination).
        change "rds" "CopyDBSnapshot" in region:
        fn copy_db_snapshot(&self, access: &Access, region: &str, request: &DbCopyRequest)
            -> DbSnapshotStatus;

        /// RDS `DeleteDBSnapshot`; only ever called on a DB snapshot snaprelay made.
        change "rds" "DeleteDBSnapshot" in region:
        fn delete_db_snapshot(&self, access: &Access, region: &str, snapshot_id: &str) -> ();
    }

    /// Sharing snapshots with another account, and who they are shared with.
    trait Sharing {
        /// Grants (`add`) or revokes (`remove`) `createVolumePermission` for one account
        /// (EC2 `ModifySnapshotAttribute`).
        change "ec2" "ModifySnapshotAttribute" in region:
        fn set_snapshot_share(
            &self,
            access: &Access,
            region: &str,
            snapshot_id: &str,
            account: &AccountId,
            shared: bool,
        ) -> ();

        /// EC2 `DescribeSnapshotAttribute` `createVolumePermission`: the accounts a snapshot
        /// is shared with (`all` when public).
        read "ec2" "DescribeSnapshotAttribute" in region:
        fn snapshot_shares(&self, access: &Access, region: &str, snapshot_id: &str)
            -> Vec<String>;

        /// RDS `ModifyDBSnapshotAttribute` `restore`: shares with (or unshares from) one
        /// account.
        change "rds" "ModifyDBSnapshotAttribute" in region:
        fn set_db_snapshot_share(
            &self,
            access: &Access,
            region: &str,
            snapshot_id: &str,
            account: &AccountId,
            shared: bool,
        ) -> ();

        /// RDS `DescribeDBSnapshotAttributes` `restore`: the accounts a DB snapshot is shared
        /// with (`all` when public).
        read "rds" "DescribeDBSnapshotAttributes" in region:
        fn db_snapshot_shares(&self, access: &Access, region: &str, snapshot_id: &str)
            -> Vec<String>;
    }
}
