//! The cloud port, as capabilities: who the credentials are ([`Identity`]), what the policy
//! selects ([`Inventory`]), KMS keys ([`Keys`]), EBS snapshots ([`EbsSnapshots`]), RDS DB
//! snapshots ([`DbSnapshots`]), sharing them ([`Sharing`]), and what a restore makes of them
//! ([`Machines`], [`Databases`]). [`Cloud`] is all of them; an
//! adapter (the SDK, the simulator) implements each.
//!
//! Every call is listed once, below, with the AWS operation it is and whether it changes AWS.
//! From that list one forwarding implementation is made for [`Layered`], so that what wraps
//! every call (throttling and retries, the crash hook, logging, counting) is written once, as
//! a [`Layer`], and never per method.

use std::future::Future;
use std::ops::Deref;

use async_trait::async_trait;

use super::{
    Access, ChangedBlocks, CloudError, ClusterInstanceRequest, ClusterRestoreRequest,
    ClusterStatus, CopyRequest, DbCopyRequest, DbRestoreRequest, DbStatus, Find, ImageRequest,
    ImageStatus, KeyGrant, LaunchRequest, MachineStatus, Network, RegionStatus, SecurityGroup,
    Subnet, VolumeRequest, VolumeStatus,
};
use crate::ids::AccountId;
use crate::model::{
    DbCluster, DbInstance, DbSnapshotStatus, Instance, KeyInfo, SnapshotStatus, Tag, VolumeSnapshot,
};
use crate::policy::Selector;

/// The capability traits, for code that calls them on a concrete adapter (`SimCloud`, ...):
/// `use snaprelay_core::ports::prelude::*;`.
pub mod prelude {
    pub use super::{
        Cloud, Databases, DbSnapshots, EbsSnapshots, Identity, Inventory, Keys, Machines, Sharing,
    };
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
pub trait Cloud:
    Identity + Inventory + Keys + EbsSnapshots + DbSnapshots + Sharing + Machines + Databases
{
}

impl<T> Cloud for T where
    T: Identity
        + Inventory
        + Keys
        + EbsSnapshots
        + DbSnapshots
        + Sharing
        + Machines
        + Databases
        + ?Sized
{
}

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

        /// RDS `DescribeDBClusters`: Aurora DB clusters (engine `aurora-*`; the call also
        /// lists Multi-AZ DB clusters) matching the selector. It has no tag filter: the tags
        /// are read from each cluster's `TagList`.
        read "rds" "DescribeDBClusters" in region:
        fn find_db_clusters(&self, access: &Access, region: &str, selector: &Selector)
            -> Vec<DbCluster>;
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

        /// EBS direct API `ListChangedBlocks` between two snapshots of one volume (all pages):
        /// how many blocks differ, and their size. What an incremental copy of `second` moves
        /// when the destination holds a copy of `first`.
        read "ebs" "ListChangedBlocks" in region:
        fn changed_blocks(
            &self,
            access: &Access,
            region: &str,
            first_snapshot_id: &str,
            second_snapshot_id: &str,
        ) -> ChangedBlocks;
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

        /// RDS `CreateDBClusterSnapshot` of an Aurora cluster, named `snapshot_id`.
        change "rds" "CreateDBClusterSnapshot" in region:
        fn create_db_cluster_snapshot(
            &self,
            access: &Access,
            region: &str,
            db_cluster_id: &str,
            snapshot_id: &str,
            tags: &[Tag],
        ) -> DbSnapshotStatus;

        /// RDS `DescribeDBClusterSnapshots` for a batch of the caller's own DB cluster
        /// snapshot identifiers.
        read "rds" "DescribeDBClusterSnapshots" in region:
        fn describe_db_cluster_snapshots(
            &self,
            access: &Access,
            region: &str,
            snapshot_ids: &[String],
        ) -> Vec<DbSnapshotStatus>;

        /// RDS `DescribeDBClusterSnapshots` of the caller's manual DB cluster snapshots that
        /// carry `tag` (the call has no tag filter: the `TagList` is read).
        read "rds" "DescribeDBClusterSnapshots" in region:
        fn find_db_cluster_snapshots(&self, access: &Access, region: &str, tag: &Tag)
            -> Vec<DbSnapshotStatus>;

        /// RDS `CopyDBClusterSnapshot`, called in `region` (the destination).
        change "rds" "CopyDBClusterSnapshot" in region:
        fn copy_db_cluster_snapshot(
            &self,
            access: &Access,
            region: &str,
            request: &DbCopyRequest,
        ) -> DbSnapshotStatus;

        /// RDS `DeleteDBClusterSnapshot`; only ever called on a DB cluster snapshot snaprelay
        /// made.
        change "rds" "DeleteDBClusterSnapshot" in region:
        fn delete_db_cluster_snapshot(&self, access: &Access, region: &str, snapshot_id: &str)
            -> ();
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

        /// RDS `ModifyDBClusterSnapshotAttribute` `restore`: shares a DB cluster snapshot with
        /// (or unshares it from) one account.
        change "rds" "ModifyDBClusterSnapshotAttribute" in region:
        fn set_db_cluster_snapshot_share(
            &self,
            access: &Access,
            region: &str,
            snapshot_id: &str,
            account: &AccountId,
            shared: bool,
        ) -> ();

        /// RDS `DescribeDBClusterSnapshotAttributes` `restore`: the accounts a DB cluster
        /// snapshot is shared with (`all` when public).
        read "rds" "DescribeDBClusterSnapshotAttributes" in region:
        fn db_cluster_snapshot_shares(&self, access: &Access, region: &str, snapshot_id: &str)
            -> Vec<String>;
    }

    /// What a restore makes in EC2 of a place (SPEC 6.2, 6.3): images, instances, volumes,
    /// and the network they go into.
    trait Machines {
        /// The Region's default VPC (`DescribeVpcs` `isDefault`), its subnets and its
        /// `default` security group; `None` when the Region has no default VPC.
        read "ec2" "DescribeVpcs" in region:
        fn default_network(&self, access: &Access, region: &str) -> Option<Network>;

        /// EC2 `DescribeAvailabilityZones`: the names of the Region's zones that are
        /// `available` to the caller.
        read "ec2" "DescribeAvailabilityZones" in region:
        fn availability_zones(&self, access: &Access, region: &str) -> Vec<String>;

        /// EC2 `DescribeSubnets`: those of `ids` that exist.
        read "ec2" "DescribeSubnets" in region:
        fn subnets(&self, access: &Access, region: &str, ids: &[String]) -> Vec<Subnet>;

        /// EC2 `DescribeSecurityGroups`.
        read "ec2" "DescribeSecurityGroups" in region:
        fn find_security_groups(&self, access: &Access, region: &str, find: &Find<'_>)
            -> Vec<SecurityGroup>;

        /// EC2 `DescribeKeyPairs`: those of `names` that exist.
        read "ec2" "DescribeKeyPairs" in region:
        fn key_pairs(&self, access: &Access, region: &str, names: &[String]) -> Vec<String>;

        /// EC2 `CreateSecurityGroup` in `vpc_id`, tagged at creation.
        change "ec2" "CreateSecurityGroup" in region:
        fn create_security_group(
            &self,
            access: &Access,
            region: &str,
            vpc_id: &str,
            name: &str,
            description: &str,
            tags: &[Tag],
        ) -> String;

        /// EC2 `RevokeSecurityGroupEgress` of every outbound rule the group has (a new group
        /// allows all outbound traffic).
        change "ec2" "RevokeSecurityGroupEgress" in region:
        fn revoke_all_egress(&self, access: &Access, region: &str, group_id: &str) -> ();

        /// EC2 `DeleteSecurityGroup`; only ever called on a group snaprelay made.
        change "ec2" "DeleteSecurityGroup" in region:
        fn delete_security_group(&self, access: &Access, region: &str, group_id: &str) -> ();

        /// EC2 `DescribeImages` of the caller's own images.
        read "ec2" "DescribeImages" in region:
        fn find_images(&self, access: &Access, region: &str, find: &Find<'_>)
            -> Vec<ImageStatus>;

        /// EC2 `RegisterImage` from snapshots, tagged at creation; returns the image id.
        change "ec2" "RegisterImage" in region:
        fn register_image(&self, access: &Access, region: &str, request: &ImageRequest)
            -> String;

        /// EC2 `DeregisterImage`; only ever called on an image snaprelay made.
        change "ec2" "DeregisterImage" in region:
        fn deregister_image(&self, access: &Access, region: &str, image_id: &str) -> ();

        /// EC2 `DescribeInstances`, terminated instances included.
        read "ec2" "DescribeInstances" in region:
        fn find_machines(&self, access: &Access, region: &str, find: &Find<'_>)
            -> Vec<MachineStatus>;

        /// EC2 `RunInstances` of one instance, without a public IP, tagged at creation.
        change "ec2" "RunInstances" in region:
        fn run_instance(&self, access: &Access, region: &str, request: &LaunchRequest)
            -> MachineStatus;

        /// EC2 `TerminateInstances`; only ever called on an instance snaprelay made.
        change "ec2" "TerminateInstances" in region:
        fn terminate_instance(&self, access: &Access, region: &str, instance_id: &str) -> ();

        /// EC2 `DescribeVolumes`.
        read "ec2" "DescribeVolumes" in region:
        fn find_volumes(&self, access: &Access, region: &str, find: &Find<'_>)
            -> Vec<VolumeStatus>;

        /// EC2 `CreateVolume` from a snapshot, tagged at creation.
        change "ec2" "CreateVolume" in region:
        fn create_volume(&self, access: &Access, region: &str, request: &VolumeRequest)
            -> VolumeStatus;

        /// EC2 `DeleteVolume`; only ever called on a volume snaprelay made.
        change "ec2" "DeleteVolume" in region:
        fn delete_volume(&self, access: &Access, region: &str, volume_id: &str) -> ();
    }

    /// What a restore makes in RDS of a place.
    trait Databases {
        /// RDS `DescribeDBInstances` (for [`Find::TagKey`], every instance's `TagList`).
        read "rds" "DescribeDBInstances" in region:
        fn find_dbs(&self, access: &Access, region: &str, find: &Find<'_>) -> Vec<DbStatus>;

        /// RDS `DescribeDBSubnetGroups`: the VPC of the group; `None` when it does not
        /// exist there.
        read "rds" "DescribeDBSubnetGroups" in region:
        fn db_subnet_group_vpc(&self, access: &Access, region: &str, name: &str)
            -> Option<String>;

        /// RDS `DescribeDBParameterGroups`: whether the group exists there.
        read "rds" "DescribeDBParameterGroups" in region:
        fn db_parameter_group_exists(&self, access: &Access, region: &str, name: &str) -> bool;

        /// RDS `DescribeOptionGroups`: whether the group exists there.
        read "rds" "DescribeOptionGroups" in region:
        fn option_group_exists(&self, access: &Access, region: &str, name: &str) -> bool;

        /// RDS `RestoreDBInstanceFromDBSnapshot`, tagged at creation.
        change "rds" "RestoreDBInstanceFromDBSnapshot" in region:
        fn restore_db_instance(&self, access: &Access, region: &str, request: &DbRestoreRequest)
            -> DbStatus;

        /// RDS `DeleteDBInstance` with `SkipFinalSnapshot` and `DeleteAutomatedBackups`; only
        /// ever called on a DB instance snaprelay made.
        change "rds" "DeleteDBInstance" in region:
        fn delete_db_instance(&self, access: &Access, region: &str, db_instance_id: &str) -> ();

        /// RDS `DescribeDBClusters` (for [`Find::TagKey`], every cluster's `TagList`).
        read "rds" "DescribeDBClusters" in region:
        fn find_clusters(&self, access: &Access, region: &str, find: &Find<'_>)
            -> Vec<ClusterStatus>;

        /// RDS `DescribeDBClusterParameterGroups`: whether the group exists there.
        read "rds" "DescribeDBClusterParameterGroups" in region:
        fn db_cluster_parameter_group_exists(&self, access: &Access, region: &str, name: &str)
            -> bool;

        /// RDS `RestoreDBClusterFromSnapshot`, tagged at creation: a cluster without instances.
        change "rds" "RestoreDBClusterFromSnapshot" in region:
        fn restore_db_cluster(
            &self,
            access: &Access,
            region: &str,
            request: &ClusterRestoreRequest,
        ) -> ClusterStatus;

        /// RDS `CreateDBInstance` of an instance in a cluster, tagged at creation.
        change "rds" "CreateDBInstance" in region:
        fn create_cluster_instance(
            &self,
            access: &Access,
            region: &str,
            request: &ClusterInstanceRequest,
        ) -> DbStatus;

        /// RDS `DeleteDBInstance` of an instance of an Aurora cluster: its identifier only (a
        /// cluster's instance takes no final snapshot; the cluster's backups are the
        /// cluster's). Only ever called on an instance snaprelay made.
        change "rds" "DeleteDBInstance" in region:
        fn delete_cluster_instance(&self, access: &Access, region: &str, db_instance_id: &str)
            -> ();

        /// RDS `DeleteDBCluster` with `SkipFinalSnapshot`; only ever called on a cluster
        /// snaprelay made, once its instances are deleted or deleting.
        change "rds" "DeleteDBCluster" in region:
        fn delete_db_cluster(&self, access: &Access, region: &str, db_cluster_id: &str) -> ();
    }
}
