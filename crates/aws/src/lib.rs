//! The AWS SDK adapter behind snaprelay's cloud port.
//!
//! Credentials follow the SDK's conventions: the default chain (environment, `AWS_PROFILE`,
//! SSO, instance roles), `AWS_REGION`, and `AWS_ENDPOINT_URL` (so snaprelay runs unchanged
//! against an AWS API emulator). A role named in the policy is assumed with STS on top of the
//! ambient credentials; its credentials are cached and refreshed by the SDK.
//!
//! - [`ec2`]: instances, volumes and EBS snapshots.
//! - [`ebs`]: the EBS direct API (`ListChangedBlocks`), for the size of incremental copies.
//! - [`rds`]: DB instances and DB snapshots.
//! - [`machines`]: what a restore makes in EC2 (network, security groups, images, instances,
//!   volumes).
//! - [`databases`]: what a restore makes in RDS (DB instances from DB snapshots).
//! - [`kms`]: key resolution, key policies and grants.
//! - [`iam`]: a role's policy documents, for `check`.
//! - [`error`]: SDK errors turned into [`CloudError`]s that name the call, the Region and AWS's code.

mod aurora;
mod databases;
mod ebs;
mod ec2;
mod error;
mod iam;
mod kms;
mod machines;
mod rds;

use std::collections::HashMap;
use std::sync::Mutex as StdMutex;

use async_trait::async_trait;
use aws_config::meta::region::RegionProviderChain;
use aws_config::sts::AssumeRoleProvider;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::sync::Mutex;

use snaprelay_core::ids::{AccountId, RoleArn};
use snaprelay_core::model::{
    DbCluster, DbInstance, DbSnapshotStatus, Instance, KeyInfo, SnapshotStatus, Tag, VolumeSnapshot,
};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{
    Access, ChangedBlocks, CloudError, ClusterInstanceRequest, ClusterRestoreRequest,
    ClusterStatus, CopyRequest, Databases, DbCopyRequest, DbRestoreRequest, DbSnapshots, DbStatus,
    EbsSnapshots, Find, Identity, ImageRequest, ImageStatus, Inventory, KeyGrant, Keys,
    LaunchRequest, MachineStatus, Machines, Network, RegionStatus, SecurityGroup, Sharing, Subnet,
    VolumeRequest, VolumeStatus,
};

use error::{cloud_error, malformed};

/// The cloud port over the AWS SDK for Rust.
pub struct AwsCloud {
    base: SdkConfig,
    /// One SDK configuration per role, so each role is assumed (and its credentials cached) once.
    roles: Mutex<HashMap<RoleArn, SdkConfig>>,
    /// Clients per (credentials, Region): building one is not free, and a fleet makes
    /// thousands of calls to the same few places.
    ec2_clients: StdMutex<HashMap<(Access, String), aws_sdk_ec2::Client>>,
    kms_clients: StdMutex<HashMap<(Access, String), aws_sdk_kms::Client>>,
    rds_clients: StdMutex<HashMap<(Access, String), aws_sdk_rds::Client>>,
    ebs_clients: StdMutex<HashMap<(Access, String), aws_sdk_ebs::Client>>,
}

/// Regions AWS had when this was written (commercial, GovCloud and China partitions).
const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// The SDK's settings from the environment, checked before the SDK reads them: some it would
/// refuse with a panic (`AWS_MAX_ATTEMPTS=banana`), others deep inside a request
/// (`AWS_REGION='not a region!'`). An error names the variable and its value.
pub fn check_environment() -> Result<(), String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    for name in ["AWS_REGION", "AWS_DEFAULT_REGION"] {
        if let Some(v) = var(name)
            && !snaprelay_core::ids::is_region(&v)
        {
            return Err(format!(
                "{name} = {v:?} is not an AWS Region name (like us-east-1)"
            ));
        }
    }
    if let Some(v) = var("AWS_MAX_ATTEMPTS")
        && !v.parse::<u32>().is_ok_and(|n| n >= 1)
    {
        return Err(format!(
            "AWS_MAX_ATTEMPTS = {v:?} is not a whole number of at least 1"
        ));
    }
    if let Some(v) = var("AWS_RETRY_MODE")
        && !matches!(v.as_str(), "standard" | "adaptive")
    {
        return Err(format!(
            "AWS_RETRY_MODE = {v:?} is neither \"standard\" nor \"adaptive\""
        ));
    }
    for (name, value) in std::env::vars() {
        if (name == "AWS_ENDPOINT_URL" || name.starts_with("AWS_ENDPOINT_URL_"))
            && !value.trim().is_empty()
            && !is_endpoint_url(&value)
        {
            return Err(format!(
                "{name} = {:?} is not an http:// or https:// URL",
                snaprelay_core::ports::redacted_url(&value)
            ));
        }
    }
    Ok(())
}

/// `http://HOST[:PORT][/PATH]` or `https://...`, with a host and no spaces.
fn is_endpoint_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?']).next().unwrap_or_default();
        !host.is_empty() && !r.contains(char::is_whitespace)
    })
}

/// The Region for calls that name none (STS, `DescribeRegions`) when the environment names
/// none either: the policy's first Region when it is one AWS is known to have (an
/// organisation may deny every Region but its own), else its partition's first, so that AWS
/// can be asked which Regions exist instead of a made-up name failing deep in the SDK.
pub fn home_region(policy_regions: &[String]) -> &str {
    let first = policy_regions.first().map_or("us-east-1", String::as_str);
    if KNOWN_REGIONS.contains(&first) {
        return first;
    }
    if first.starts_with("us-gov-") {
        "us-gov-west-1"
    } else if first.starts_with("cn-") {
        "cn-north-1"
    } else {
        "us-east-1"
    }
}

impl AwsCloud {
    /// Loads the ambient configuration. `fallback_region` is used for STS when neither the
    /// environment nor the profile names a Region.
    pub async fn load(fallback_region: &str) -> Self {
        let region = RegionProviderChain::default_provider()
            .or_else(Region::new(fallback_region.to_owned()));
        let base = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .load()
            .await;
        Self::with_config(base)
    }

    /// Uses a configuration built by the caller (an emulator's endpoint and test credentials,
    /// say) as the ambient one.
    pub fn with_config(base: SdkConfig) -> Self {
        Self {
            base,
            roles: Mutex::new(HashMap::new()),
            ec2_clients: StdMutex::default(),
            kms_clients: StdMutex::default(),
            rds_clients: StdMutex::default(),
            ebs_clients: StdMutex::default(),
        }
    }

    /// The SDK configuration for a set of credentials.
    async fn config(&self, access: &Access) -> SdkConfig {
        let Some(role) = &access.role_arn else {
            return self.base.clone();
        };
        let mut roles = self.roles.lock().await;
        if let Some(cfg) = roles.get(role) {
            return cfg.clone();
        }
        // `configure` carries the endpoint override and the ambient credentials to STS.
        let provider = AssumeRoleProvider::builder(role.as_str())
            .session_name("snaprelay")
            .configure(&self.base)
            .build()
            .await;
        let cfg = self
            .base
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .build();
        roles.insert(role.clone(), cfg.clone());
        cfg
    }

    async fn ec2(&self, access: &Access, region: &str) -> aws_sdk_ec2::Client {
        self.cached(&self.ec2_clients, access, region, |cfg, r| {
            aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(cfg).region(r).build(),
            )
        })
        .await
    }

    async fn kms(&self, access: &Access, region: &str) -> aws_sdk_kms::Client {
        self.cached(&self.kms_clients, access, region, |cfg, r| {
            aws_sdk_kms::Client::from_conf(
                aws_sdk_kms::config::Builder::from(cfg).region(r).build(),
            )
        })
        .await
    }

    async fn ebs(&self, access: &Access, region: &str) -> aws_sdk_ebs::Client {
        self.cached(&self.ebs_clients, access, region, |cfg, r| {
            aws_sdk_ebs::Client::from_conf(
                aws_sdk_ebs::config::Builder::from(cfg).region(r).build(),
            )
        })
        .await
    }

    async fn rds(&self, access: &Access, region: &str) -> aws_sdk_rds::Client {
        self.cached(&self.rds_clients, access, region, |cfg, r| {
            aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(cfg).region(r).build(),
            )
        })
        .await
    }

    /// STS `GetCallerIdentity`, and the Region it was asked in.
    async fn caller_identity(
        &self,
        access: &Access,
    ) -> Result<
        (
            aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput,
            String,
        ),
        CloudError,
    > {
        let cfg = self.config(access).await;
        let region = cfg.region().map(|r| r.to_string()).unwrap_or_default();
        let out = aws_sdk_sts::Client::new(&cfg)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| cloud_error("STS", "GetCallerIdentity", &region, e))?;
        Ok((out, region))
    }

    async fn cached<C: Clone>(
        &self,
        clients: &StdMutex<HashMap<(Access, String), C>>,
        access: &Access,
        region: &str,
        build: impl FnOnce(&SdkConfig, Region) -> C,
    ) -> C {
        let key = (access.clone(), region.to_owned());
        if let Some(c) = lock(clients).get(&key) {
            return c.clone();
        }
        let client = build(&self.config(access).await, Region::new(region.to_owned()));
        lock(clients).insert(key, client.clone());
        client
    }
}

/// A poisoned lock only means another task panicked while inserting a client; the map is fine.
fn lock<T>(m: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl Identity for AwsCloud {
    async fn account_of(&self, access: &Access) -> Result<AccountId, CloudError> {
        let (out, region) = self.caller_identity(access).await?;
        out.account().and_then(AccountId::parse).ok_or_else(|| {
            malformed(
                "STS",
                "GetCallerIdentity",
                &region,
                format!(
                    "AWS answered no valid account id for {access} ({:?})",
                    out.account()
                ),
            )
        })
    }

    async fn caller_arn(&self, access: &Access) -> Result<String, CloudError> {
        let (out, region) = self.caller_identity(access).await?;
        out.arn().map(str::to_owned).ok_or_else(|| {
            malformed(
                "STS",
                "GetCallerIdentity",
                &region,
                format!("AWS answered no ARN for {access}"),
            )
        })
    }

    async fn regions(&self, access: &Access) -> Result<Vec<RegionStatus>, CloudError> {
        let cfg = self.config(access).await;
        let region = cfg.region().map(|r| r.to_string()).unwrap_or_default();
        ec2::regions(&self.ec2(access, &region).await, &region).await
    }

    async fn role_policies(
        &self,
        access: &Access,
        role_name: &str,
    ) -> Result<Vec<(String, String)>, CloudError> {
        let client = aws_sdk_iam::Client::new(&self.config(access).await);
        iam::role_policies(&client, role_name).await
    }
}

#[async_trait]
impl Inventory for AwsCloud {
    async fn find_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<Instance>, CloudError> {
        ec2::find_instances(&self.ec2(access, region).await, region, selector).await
    }

    async fn find_db_instances(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<DbInstance>, CloudError> {
        rds::find_db_instances(&self.rds(access, region).await, region, selector).await
    }

    async fn find_db_clusters(
        &self,
        access: &Access,
        region: &str,
        selector: &Selector,
    ) -> Result<Vec<DbCluster>, CloudError> {
        aurora::find_db_clusters(&self.rds(access, region).await, region, selector).await
    }
}

#[async_trait]
impl Keys for AwsCloud {
    async fn describe_key(
        &self,
        access: &Access,
        region: &str,
        key: &str,
    ) -> Result<KeyInfo, CloudError> {
        kms::describe_key(&self.kms(access, region).await, region, key).await
    }

    async fn key_policy(
        &self,
        access: &Access,
        region: &str,
        key_arn: &str,
    ) -> Result<String, CloudError> {
        kms::key_policy(&self.kms(access, region).await, region, key_arn).await
    }

    async fn key_grants(
        &self,
        access: &Access,
        region: &str,
        key_arn: &str,
    ) -> Result<Vec<KeyGrant>, CloudError> {
        kms::key_grants(&self.kms(access, region).await, region, key_arn).await
    }
}

#[async_trait]
impl EbsSnapshots for AwsCloud {
    async fn create_snapshots(
        &self,
        access: &Access,
        region: &str,
        instance_id: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<Vec<VolumeSnapshot>, CloudError> {
        ec2::create_snapshots(
            &self.ec2(access, region).await,
            region,
            instance_id,
            description,
            tags,
        )
        .await
    }

    async fn describe_snapshots(
        &self,
        access: &Access,
        region: &str,
        ids: &[String],
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        ec2::describe_snapshots(&self.ec2(access, region).await, region, ids).await
    }

    async fn find_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<SnapshotStatus>, CloudError> {
        ec2::find_snapshots(&self.ec2(access, region).await, region, tag).await
    }

    async fn copy_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &CopyRequest,
    ) -> Result<String, CloudError> {
        ec2::copy_snapshot(&self.ec2(access, region).await, region, request).await
    }

    async fn delete_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        ec2::delete_snapshot(&self.ec2(access, region).await, region, snapshot_id).await
    }

    async fn changed_blocks(
        &self,
        access: &Access,
        region: &str,
        first_snapshot_id: &str,
        second_snapshot_id: &str,
    ) -> Result<ChangedBlocks, CloudError> {
        let client = self.ebs(access, region).await;
        ebs::changed_blocks(&client, region, first_snapshot_id, second_snapshot_id).await
    }
}

#[async_trait]
impl DbSnapshots for AwsCloud {
    async fn create_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
    ) -> Result<DbSnapshotStatus, CloudError> {
        let client = self.rds(access, region).await;
        rds::create_db_snapshot(&client, region, db_instance_id, snapshot_id, tags).await
    }

    async fn describe_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        rds::describe_db_snapshots(&self.rds(access, region).await, region, snapshot_ids).await
    }

    async fn find_db_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        rds::find_db_snapshots(&self.rds(access, region).await, region, tag).await
    }

    async fn copy_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &DbCopyRequest,
    ) -> Result<DbSnapshotStatus, CloudError> {
        rds::copy_db_snapshot(&self.rds(access, region).await, region, request).await
    }

    async fn delete_db_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        rds::delete_db_snapshot(&self.rds(access, region).await, region, snapshot_id).await
    }

    async fn create_db_cluster_snapshot(
        &self,
        access: &Access,
        region: &str,
        db_cluster_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
    ) -> Result<DbSnapshotStatus, CloudError> {
        let client = self.rds(access, region).await;
        aurora::create_db_cluster_snapshot(&client, region, db_cluster_id, snapshot_id, tags).await
    }

    async fn describe_db_cluster_snapshots(
        &self,
        access: &Access,
        region: &str,
        snapshot_ids: &[String],
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        let client = self.rds(access, region).await;
        aurora::describe_db_cluster_snapshots(&client, region, snapshot_ids).await
    }

    async fn find_db_cluster_snapshots(
        &self,
        access: &Access,
        region: &str,
        tag: &Tag,
    ) -> Result<Vec<DbSnapshotStatus>, CloudError> {
        aurora::find_db_cluster_snapshots(&self.rds(access, region).await, region, tag).await
    }

    async fn copy_db_cluster_snapshot(
        &self,
        access: &Access,
        region: &str,
        request: &DbCopyRequest,
    ) -> Result<DbSnapshotStatus, CloudError> {
        aurora::copy_db_cluster_snapshot(&self.rds(access, region).await, region, request).await
    }

    async fn delete_db_cluster_snapshot(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<(), CloudError> {
        let client = self.rds(access, region).await;
        aurora::delete_db_cluster_snapshot(&client, region, snapshot_id).await
    }
}

#[async_trait]
impl Sharing for AwsCloud {
    async fn set_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        ec2::set_snapshot_share(
            &self.ec2(access, region).await,
            region,
            snapshot_id,
            account,
            shared,
        )
        .await
    }

    async fn snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        ec2::snapshot_shares(&self.ec2(access, region).await, region, snapshot_id).await
    }

    async fn set_db_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        let client = self.rds(access, region).await;
        rds::set_db_snapshot_share(&client, region, snapshot_id, account, shared).await
    }

    async fn set_db_cluster_snapshot_share(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
    ) -> Result<(), CloudError> {
        let client = self.rds(access, region).await;
        aurora::set_db_cluster_snapshot_share(&client, region, snapshot_id, account, shared).await
    }

    async fn db_cluster_snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        let client = self.rds(access, region).await;
        aurora::db_cluster_snapshot_shares(&client, region, snapshot_id).await
    }

    async fn db_snapshot_shares(
        &self,
        access: &Access,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        rds::db_snapshot_shares(&self.rds(access, region).await, region, snapshot_id).await
    }
}

#[async_trait]
impl Machines for AwsCloud {
    async fn default_network(
        &self,
        access: &Access,
        region: &str,
    ) -> Result<Option<Network>, CloudError> {
        machines::default_network(&self.ec2(access, region).await, region).await
    }

    async fn availability_zones(
        &self,
        access: &Access,
        region: &str,
    ) -> Result<Vec<String>, CloudError> {
        machines::availability_zones(&self.ec2(access, region).await, region).await
    }

    async fn subnets(
        &self,
        access: &Access,
        region: &str,
        ids: &[String],
    ) -> Result<Vec<Subnet>, CloudError> {
        machines::subnets(&self.ec2(access, region).await, region, ids).await
    }

    async fn find_security_groups(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<SecurityGroup>, CloudError> {
        machines::find_security_groups(&self.ec2(access, region).await, region, find).await
    }

    async fn key_pairs(
        &self,
        access: &Access,
        region: &str,
        names: &[String],
    ) -> Result<Vec<String>, CloudError> {
        machines::key_pairs(&self.ec2(access, region).await, region, names).await
    }

    async fn create_security_group(
        &self,
        access: &Access,
        region: &str,
        vpc_id: &str,
        name: &str,
        description: &str,
        tags: &[Tag],
    ) -> Result<String, CloudError> {
        let client = self.ec2(access, region).await;
        machines::create_security_group(&client, region, vpc_id, name, description, tags).await
    }

    async fn revoke_all_egress(
        &self,
        access: &Access,
        region: &str,
        group_id: &str,
    ) -> Result<(), CloudError> {
        machines::revoke_all_egress(&self.ec2(access, region).await, region, group_id).await
    }

    async fn delete_security_group(
        &self,
        access: &Access,
        region: &str,
        group_id: &str,
    ) -> Result<(), CloudError> {
        machines::delete_security_group(&self.ec2(access, region).await, region, group_id).await
    }

    async fn find_images(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<ImageStatus>, CloudError> {
        machines::find_images(&self.ec2(access, region).await, region, find).await
    }

    async fn register_image(
        &self,
        access: &Access,
        region: &str,
        request: &ImageRequest,
    ) -> Result<String, CloudError> {
        machines::register_image(&self.ec2(access, region).await, region, request).await
    }

    async fn deregister_image(
        &self,
        access: &Access,
        region: &str,
        image_id: &str,
    ) -> Result<(), CloudError> {
        machines::deregister_image(&self.ec2(access, region).await, region, image_id).await
    }

    async fn find_machines(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<MachineStatus>, CloudError> {
        machines::find_machines(&self.ec2(access, region).await, region, find).await
    }

    async fn run_instance(
        &self,
        access: &Access,
        region: &str,
        request: &LaunchRequest,
    ) -> Result<MachineStatus, CloudError> {
        machines::run_instance(&self.ec2(access, region).await, region, request).await
    }

    async fn terminate_instance(
        &self,
        access: &Access,
        region: &str,
        instance_id: &str,
    ) -> Result<(), CloudError> {
        machines::terminate_instance(&self.ec2(access, region).await, region, instance_id).await
    }

    async fn find_volumes(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<VolumeStatus>, CloudError> {
        machines::find_volumes(&self.ec2(access, region).await, region, find).await
    }

    async fn create_volume(
        &self,
        access: &Access,
        region: &str,
        request: &VolumeRequest,
    ) -> Result<VolumeStatus, CloudError> {
        machines::create_volume(&self.ec2(access, region).await, region, request).await
    }

    async fn delete_volume(
        &self,
        access: &Access,
        region: &str,
        volume_id: &str,
    ) -> Result<(), CloudError> {
        machines::delete_volume(&self.ec2(access, region).await, region, volume_id).await
    }
}

#[async_trait]
impl Databases for AwsCloud {
    async fn find_dbs(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<DbStatus>, CloudError> {
        databases::find_dbs(&self.rds(access, region).await, region, find).await
    }

    async fn db_subnet_group_vpc(
        &self,
        access: &Access,
        region: &str,
        name: &str,
    ) -> Result<Option<String>, CloudError> {
        databases::db_subnet_group_vpc(&self.rds(access, region).await, region, name).await
    }

    async fn db_parameter_group_exists(
        &self,
        access: &Access,
        region: &str,
        name: &str,
    ) -> Result<bool, CloudError> {
        databases::db_parameter_group_exists(&self.rds(access, region).await, region, name).await
    }

    async fn option_group_exists(
        &self,
        access: &Access,
        region: &str,
        name: &str,
    ) -> Result<bool, CloudError> {
        databases::option_group_exists(&self.rds(access, region).await, region, name).await
    }

    async fn restore_db_instance(
        &self,
        access: &Access,
        region: &str,
        request: &DbRestoreRequest,
    ) -> Result<DbStatus, CloudError> {
        databases::restore_db_instance(&self.rds(access, region).await, region, request).await
    }

    async fn delete_db_instance(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
    ) -> Result<(), CloudError> {
        databases::delete_db_instance(&self.rds(access, region).await, region, db_instance_id).await
    }

    async fn find_clusters(
        &self,
        access: &Access,
        region: &str,
        find: &Find<'_>,
    ) -> Result<Vec<ClusterStatus>, CloudError> {
        databases::find_clusters(&self.rds(access, region).await, region, find).await
    }

    async fn db_cluster_parameter_group_exists(
        &self,
        access: &Access,
        region: &str,
        name: &str,
    ) -> Result<bool, CloudError> {
        databases::db_cluster_parameter_group_exists(&self.rds(access, region).await, region, name)
            .await
    }

    async fn restore_db_cluster(
        &self,
        access: &Access,
        region: &str,
        request: &ClusterRestoreRequest,
    ) -> Result<ClusterStatus, CloudError> {
        databases::restore_db_cluster(&self.rds(access, region).await, region, request).await
    }

    async fn create_cluster_instance(
        &self,
        access: &Access,
        region: &str,
        request: &ClusterInstanceRequest,
    ) -> Result<DbStatus, CloudError> {
        databases::create_cluster_instance(&self.rds(access, region).await, region, request).await
    }

    async fn delete_cluster_instance(
        &self,
        access: &Access,
        region: &str,
        db_instance_id: &str,
    ) -> Result<(), CloudError> {
        databases::delete_cluster_instance(&self.rds(access, region).await, region, db_instance_id)
            .await
    }

    async fn delete_db_cluster(
        &self,
        access: &Access,
        region: &str,
        db_cluster_id: &str,
    ) -> Result<(), CloudError> {
        databases::delete_db_cluster(&self.rds(access, region).await, region, db_cluster_id).await
    }
}
