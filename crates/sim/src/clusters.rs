//! Aurora as a restore meets it: `RestoreDBClusterFromSnapshot` makes a cluster without
//! instances from a DB cluster snapshot
//! (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html),
//! `CreateDBInstance` adds its writer, `DeleteDBInstance` and `DeleteDBCluster` take them
//! away, in that order: RDS refuses to delete a cluster whose instances are not being deleted
//! (`InvalidDBClusterStateFault`,
//! https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html).

use std::collections::BTreeMap;
use std::sync::Arc;

use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{DbKind, Tag};
use snaprelay_core::ports::{
    CloudError, ClusterInstanceRequest, ClusterRestoreRequest, ClusterStatus, DbStatus, Find,
};
use tokio::time::Instant;

use crate::faults::error;
use crate::rds::db_key;
use crate::world::{DbGroup, DbProfile, SimDb, World};

fn rds_error(operation: &str, region: &str, code: &str, message: &str) -> CloudError {
    error("rds", operation, region, code, message)
}

fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

impl World {
    fn cluster_status(&self, c: &SimDb, status: &str, now: Instant) -> ClusterStatus {
        ClusterStatus {
            id: c.id.clone(),
            arn: format!("arn:aws:rds:{}:{}:cluster:{}", c.region, c.account, c.id),
            status: status.to_owned(),
            engine: c.profile.engine.clone(),
            engine_version: Some(c.profile.engine_version.clone()),
            kms_key_id: c.kms_key.clone(),
            members: self
                .dbs
                .values()
                .filter(|d| d.account == c.account && d.region == c.region)
                .filter(|d| d.cluster.as_deref() == Some(c.id.as_str()))
                .filter(|d| d.status(now).is_some())
                .map(|d| d.id.clone())
                .collect(),
            tags: c.tags.iter().map(|(k, v)| Tag::new(k, v.clone())).collect(),
        }
    }

    /// RDS `DescribeDBClusters` of the caller's clusters there (a deleted one until it is
    /// gone); [`Find::Name`] is the identifier.
    pub fn find_clusters(
        &self,
        caller: &AccountId,
        region: &str,
        find: &Find<'_>,
        now: Instant,
    ) -> Vec<ClusterStatus> {
        crate::databases::found(&self.clusters, caller, region, find)
            .into_iter()
            .filter_map(|c| c.status(now).map(|s| self.cluster_status(c, s, now)))
            .collect()
    }

    /// RDS `RestoreDBClusterFromSnapshot`: a new cluster, `creating` and then `available`,
    /// without instances, of an available cluster snapshot in the same Region (the caller's,
    /// by identifier or ARN, or one shared with it, by ARN). It takes the snapshot's engine
    /// (the request must name it), version and key (which the caller must be able to use).
    pub fn restore_db_cluster(
        &mut self,
        caller: &AccountId,
        region: &str,
        request: &ClusterRestoreRequest,
        now: Instant,
    ) -> Result<ClusterStatus, CloudError> {
        let op = "RestoreDBClusterFromSnapshot";
        let key = db_key(caller, region, &request.db_cluster_id);
        if self.clusters.contains_key(&key) {
            return Err(rds_error(
                op,
                region,
                "DBClusterAlreadyExistsFault",
                &format!("DB Cluster {} already exists", request.db_cluster_id),
            ));
        }
        let (source, size_gib, kms_key) = self.restorable(
            DbKind::Cluster,
            op,
            caller,
            region,
            &request.snapshot_id,
            now,
        )?;
        if request.engine != source.engine {
            return Err(rds_error(
                op,
                region,
                "InvalidParameterCombination",
                &format!(
                    "The engine {} does not match the snapshot's engine {}.",
                    request.engine, source.engine
                ),
            ));
        }
        self.named_groups_exist(
            op,
            caller,
            region,
            &[
                (
                    DbGroup::Subnet,
                    &request.db_subnet_group,
                    "DBSubnetGroupNotFoundFault",
                    "DB subnet group",
                ),
                (
                    DbGroup::ClusterParameter,
                    &request.db_cluster_parameter_group,
                    "DBClusterParameterGroupNotFound",
                    "DB cluster parameter group",
                ),
            ],
        )?;
        let (db_subnet_group, vpc_security_group_ids) = self.restored_network(
            op,
            caller,
            region,
            request.db_subnet_group.as_ref(),
            &request.vpc_security_group_ids,
        )?;
        let profile = DbProfile {
            engine: source.engine.clone(),
            engine_version: request
                .engine_version
                .clone()
                .unwrap_or_else(|| source.engine_version.clone()),
            port: request.port.unwrap_or(source.port),
            class: source.class.clone(),
            storage_type: request
                .storage_type
                .clone()
                .unwrap_or_else(|| "aurora".to_owned()),
            iops: None,
        };
        let failed = self.faults.on_db_restore();
        let cluster = SimDb {
            id: key.2.clone(),
            account: caller.clone(),
            region: region.to_owned(),
            db_parameter_group: request
                .db_cluster_parameter_group
                .clone()
                .unwrap_or_default(),
            option_group: String::new(),
            profile: Arc::new(profile),
            size_gib,
            kms_key,
            cluster: None,
            tags: tag_map(&request.tags),
            multi_az: false,
            db_subnet_group: Some(db_subnet_group),
            vpc_security_group_ids,
            ready_at: Some(now + self.timing.db_restore),
            failed,
            gone_at: None,
            serverless_v2: request.serverless_v2_scaling.as_ref().and_then(|s| {
                Some((
                    s.min_capacity.as_ref()?.as_f64()?,
                    s.max_capacity.as_ref()?.as_f64()?,
                ))
            }),
        };
        let status = self.cluster_status(&cluster, "creating", now);
        self.clusters.insert(key, cluster);
        Ok(status)
    }

    /// RDS `CreateDBInstance` in a cluster: `creating`, then `available`. The cluster must be
    /// available ("You can create DB instances only after the RestoreDBClusterFromSnapshot
    /// operation has completed and the DB cluster is available") and of the same engine; the
    /// instance takes the cluster's network and key.
    pub fn create_cluster_instance(
        &mut self,
        caller: &AccountId,
        region: &str,
        request: &ClusterInstanceRequest,
        now: Instant,
    ) -> Result<DbStatus, CloudError> {
        let op = "CreateDBInstance";
        let key = self.free_db_key(op, caller, region, &request.db_instance_id)?;
        let cluster = self
            .clusters
            .get(&db_key(caller, region, &request.db_cluster_id))
            .filter(|c| c.status(now).is_some())
            .ok_or_else(|| {
                rds_error(
                    op,
                    region,
                    "DBClusterNotFoundFault",
                    &format!("DBCluster {} not found.", request.db_cluster_id),
                )
            })?;
        match cluster.status(now) {
            Some("available") => {}
            other => {
                return Err(rds_error(
                    op,
                    region,
                    "InvalidDBClusterStateFault",
                    &format!(
                        "The DB cluster {} is {}: it must be available.",
                        request.db_cluster_id,
                        other.unwrap_or("gone")
                    ),
                ));
            }
        }
        if cluster.profile.engine != request.engine {
            return Err(rds_error(
                op,
                region,
                "InvalidParameterCombination",
                &format!(
                    "The engine name requested for your DB instance ({}) doesn't match the \
                     engine name of your DB cluster ({}).",
                    request.engine, cluster.profile.engine
                ),
            ));
        }
        // "An Aurora cluster must have a ServerlessV2ScalingConfiguration attribute before you
        // can add any DB instances that use the db.serverless DB instance class"
        // (aurora-serverless-v2.requirements.html).
        if request.db_instance_class == "db.serverless" && cluster.serverless_v2.is_none() {
            return Err(rds_error(
                op,
                region,
                "InvalidDBClusterStateFault",
                "Set the Serverless v2 scaling configuration on the parent DB cluster before \
                 creating a Serverless v2 DB instance.",
            ));
        }
        let profile = DbProfile {
            class: request.db_instance_class.clone(),
            ..DbProfile::clone(&cluster.profile)
        };
        let failed = self.faults.on_db_restore();
        let db = SimDb {
            id: key.2.clone(),
            account: caller.clone(),
            region: region.to_owned(),
            db_parameter_group: crate::databases::default_parameter_group(
                &profile.engine,
                &profile.engine_version,
            ),
            option_group: String::new(),
            profile: Arc::new(profile),
            size_gib: cluster.size_gib,
            kms_key: cluster.kms_key.clone(),
            cluster: Some(cluster.id.clone()),
            tags: tag_map(&request.tags),
            multi_az: false,
            db_subnet_group: cluster.db_subnet_group.clone(),
            vpc_security_group_ids: cluster.vpc_security_group_ids.clone(),
            ready_at: Some(now + self.timing.db_restore),
            failed,
            gone_at: None,
            serverless_v2: None,
        };
        let status = DbStatus {
            id: db.id.clone(),
            arn: db.arn(),
            status: "creating".into(),
            engine: db.profile.engine.clone(),
            engine_version: Some(db.profile.engine_version.clone()),
            kms_key_id: db.kms_key.clone(),
            cluster: db.cluster.clone(),
            tags: request.tags.clone(),
        };
        self.dbs.insert(key, db);
        Ok(status)
    }

    /// RDS `DeleteDBInstance` by identifier only: for an instance of a cluster (which takes no
    /// final snapshot). A DB instance of no cluster needs `SkipFinalSnapshot` or a final
    /// snapshot's name, which this call does not give: RDS refuses it.
    pub fn delete_cluster_instance(
        &mut self,
        caller: &AccountId,
        region: &str,
        db_instance_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        let key = db_key(caller, region, db_instance_id);
        if let Some(db) = self.dbs.get(&key)
            && db.status(now).is_some()
            && db.cluster.is_none()
        {
            return Err(rds_error(
                "DeleteDBInstance",
                region,
                "InvalidParameterCombination",
                "FinalDBSnapshotIdentifier is required unless SkipFinalSnapshot is specified.",
            ));
        }
        self.delete_db_instance(caller, region, db_instance_id, now)
    }

    /// RDS `DeleteDBCluster` (without a final snapshot): `deleting`, then gone; refused while
    /// one of its instances is not being deleted.
    pub fn delete_db_cluster(
        &mut self,
        caller: &AccountId,
        region: &str,
        db_cluster_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        let op = "DeleteDBCluster";
        let key = db_key(caller, region, db_cluster_id);
        let busy = self
            .dbs
            .values()
            .filter(|d| d.account == *caller && d.region == region)
            .filter(|d| d.cluster.as_deref() == Some(key.2.as_str()))
            .any(|d| d.status(now).is_some() && d.gone_at.is_none());
        let gone_at = now + self.timing.db_delete;
        let cluster = self
            .clusters
            .get_mut(&key)
            .filter(|c| c.status(now).is_some())
            .ok_or_else(|| {
                rds_error(
                    op,
                    region,
                    "DBClusterNotFoundFault",
                    &format!("DBCluster {db_cluster_id} not found."),
                )
            })?;
        if cluster.gone_at.is_some() {
            return Err(rds_error(
                op,
                region,
                "InvalidDBClusterStateFault",
                &format!("Cluster {db_cluster_id} is already being deleted."),
            ));
        }
        if busy {
            return Err(rds_error(
                op,
                region,
                "InvalidDBClusterStateFault",
                "Cluster cannot be deleted, it still contains DB instances in non-deleting state.",
            ));
        }
        cluster.gone_at = Some(gone_at);
        self.ending_clusters.push(key);
        Ok(())
    }
}
