//! RDS for a restore (SPEC 6.2, 6.3): the DB instances a restore makes from a DB snapshot, the
//! groups they need in that place, and their removal.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbCluster, DbInstance, Filter, ServerlessV2ScalingConfiguration};
use snaprelay_core::ports::{
    CloudError, ClusterInstanceRequest, ClusterRestoreRequest, ClusterStatus, DbRestoreRequest,
    DbStatus, Find,
};

use crate::error::{cloud_error, malformed};
use crate::rds::{FILTER_VALUES, filter, sdk_tags, tags_of};

fn status_of(db: &DbInstance) -> Option<DbStatus> {
    Some(DbStatus {
        id: db.db_instance_identifier()?.to_owned(),
        arn: db.db_instance_arn()?.to_owned(),
        status: db.db_instance_status().unwrap_or("unknown").to_owned(),
        engine: db.engine().unwrap_or_default().to_owned(),
        engine_version: db.engine_version().map(str::to_owned),
        kms_key_id: db.kms_key_id().map(str::to_owned),
        cluster: db.db_cluster_identifier().map(str::to_owned),
        tags: tags_of(db.tag_list()),
    })
}

/// The calls a find of DB instances or clusters takes: one per batch of identifiers (filter
/// `by_id`), or one unfiltered call for a tag key. DescribeDBInstances and DescribeDBClusters
/// filter by identifier but not by tag; their answers carry each one's TagList, which
/// [`is_found`] looks at.
fn calls_of(find: &Find<'_>, by_id: &str) -> Vec<Option<Filter>> {
    match find {
        Find::Ids(ids) => ids
            .chunks(FILTER_VALUES)
            .map(|chunk| Some(filter(by_id, chunk)))
            .collect(),
        Find::Name(name) => vec![Some(filter(by_id, &[(*name).to_owned()]))],
        Find::TagKey(_) => vec![None],
    }
}

/// Whether a DB instance or cluster of an answer to [`calls_of`]'s calls is one looked for.
fn is_found(find: &Find<'_>, tags: &[aws_sdk_rds::types::Tag]) -> bool {
    match find {
        Find::TagKey(key) => tags.iter().any(|t| t.key() == Some(*key)),
        Find::Ids(_) | Find::Name(_) => true,
    }
}

pub async fn find_dbs(
    client: &Client,
    region: &str,
    find: &Find<'_>,
) -> Result<Vec<DbStatus>, CloudError> {
    let mut found = Vec::new();
    for f in calls_of(find, "db-instance-id") {
        let by_id = f.is_some();
        let pages = match client
            .describe_db_instances()
            .set_filters(f.map(|f| vec![f]))
            .into_paginator()
            .send()
            .try_collect()
            .await
        {
            Ok(pages) => pages,
            // A filter leaves a missing identifier out; should AWS answer DBInstanceNotFound
            // instead, it means the same: none of these exists.
            Err(e)
                if by_id
                    && e.as_service_error()
                        .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
            {
                continue;
            }
            Err(e) => return Err(cloud_error("RDS", "DescribeDBInstances", region, e)),
        };
        for db in pages.iter().flat_map(|p| p.db_instances()) {
            if is_found(find, db.tag_list()) {
                found.extend(status_of(db));
            }
        }
    }
    Ok(found)
}

pub async fn db_subnet_group_vpc(
    client: &Client,
    region: &str,
    name: &str,
) -> Result<Option<String>, CloudError> {
    match client
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(out
            .db_subnet_groups()
            .first()
            .map(|g| g.vpc_id().unwrap_or_default().to_owned())),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_subnet_group_not_found_fault()) =>
        {
            Ok(None)
        }
        Err(e) => Err(cloud_error("RDS", "DescribeDBSubnetGroups", region, e)),
    }
}

pub async fn db_parameter_group_exists(
    client: &Client,
    region: &str,
    name: &str,
) -> Result<bool, CloudError> {
    match client
        .describe_db_parameter_groups()
        .db_parameter_group_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(!out.db_parameter_groups().is_empty()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_parameter_group_not_found_fault()) =>
        {
            Ok(false)
        }
        Err(e) => Err(cloud_error("RDS", "DescribeDBParameterGroups", region, e)),
    }
}

pub async fn option_group_exists(
    client: &Client,
    region: &str,
    name: &str,
) -> Result<bool, CloudError> {
    match client
        .describe_option_groups()
        .option_group_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(!out.option_groups_list().is_empty()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_option_group_not_found_fault()) =>
        {
            Ok(false)
        }
        Err(e) => Err(cloud_error("RDS", "DescribeOptionGroups", region, e)),
    }
}

/// RestoreDBInstanceFromDBSnapshot
/// (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBInstanceFromDBSnapshot.html).
/// It takes no KMS key: the new instance is encrypted with the snapshot's key. Fields the
/// request leaves `None` are not sent, so AWS's documented defaults apply (the source's class
/// and port, among others).
pub async fn restore_db_instance(
    client: &Client,
    region: &str,
    request: &DbRestoreRequest,
) -> Result<DbStatus, CloudError> {
    let tags = sdk_tags(&request.tags);
    let out = client
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(&request.db_instance_id)
        .db_snapshot_identifier(&request.snapshot_id)
        .set_db_instance_class(request.db_instance_class.clone())
        .set_port(request.port)
        .set_storage_type(request.storage_type.clone())
        .set_iops(request.iops)
        .multi_az(request.multi_az)
        .publicly_accessible(request.publicly_accessible)
        .set_db_subnet_group_name(request.db_subnet_group.clone())
        .set_db_parameter_group_name(request.db_parameter_group.clone())
        .set_option_group_name(request.option_group.clone())
        .set_vpc_security_group_ids(
            Some(request.vpc_security_group_ids.clone()).filter(|ids| !ids.is_empty()),
        )
        .set_tags(Some(tags).filter(|t| !t.is_empty()))
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "RestoreDBInstanceFromDBSnapshot", region, e))?;
    out.db_instance().and_then(status_of).ok_or_else(|| {
        malformed(
            "RDS",
            "RestoreDBInstanceFromDBSnapshot",
            region,
            format!(
                "no DB instance with an identifier and ARN in the answer for {} (from {})",
                request.db_instance_id, request.snapshot_id
            ),
        )
    })
}

/// DeleteDBInstance without a final snapshot and with its automated backups: what a restore
/// made is a copy of a snapshot that still exists, so nothing of it is worth keeping.
pub async fn delete_db_instance(
    client: &Client,
    region: &str,
    db_instance_id: &str,
) -> Result<(), CloudError> {
    client
        .delete_db_instance()
        .db_instance_identifier(db_instance_id)
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "DeleteDBInstance", region, e))?;
    Ok(())
}

fn cluster_status_of(c: &DbCluster) -> Option<ClusterStatus> {
    Some(ClusterStatus {
        id: c.db_cluster_identifier()?.to_owned(),
        arn: c.db_cluster_arn()?.to_owned(),
        status: c.status().unwrap_or("unknown").to_owned(),
        engine: c.engine().unwrap_or_default().to_owned(),
        engine_version: c.engine_version().map(str::to_owned),
        kms_key_id: c.kms_key_id().map(str::to_owned),
        members: c
            .db_cluster_members()
            .iter()
            .filter_map(|m| m.db_instance_identifier().map(str::to_owned))
            .collect(),
        tags: tags_of(c.tag_list()),
    })
}

/// DescribeDBClusters of clusters a restore made (by identifier, or every cluster carrying a
/// tag key: the API filters by identifier, not by tag, and answers each cluster's TagList).
pub async fn find_clusters(
    client: &Client,
    region: &str,
    find: &Find<'_>,
) -> Result<Vec<ClusterStatus>, CloudError> {
    let mut found = Vec::new();
    for f in calls_of(find, "db-cluster-id") {
        let by_id = f.is_some();
        let pages = match client
            .describe_db_clusters()
            .set_filters(f.map(|f| vec![f]))
            .into_paginator()
            .send()
            .try_collect()
            .await
        {
            Ok(pages) => pages,
            Err(e)
                if by_id
                    && e.as_service_error()
                        .is_some_and(|s| s.is_db_cluster_not_found_fault()) =>
            {
                continue;
            }
            Err(e) => return Err(cloud_error("RDS", "DescribeDBClusters", region, e)),
        };
        for c in pages.iter().flat_map(|p| p.db_clusters()) {
            if is_found(find, c.tag_list()) {
                found.extend(cluster_status_of(c));
            }
        }
    }
    Ok(found)
}

pub async fn db_cluster_parameter_group_exists(
    client: &Client,
    region: &str,
    name: &str,
) -> Result<bool, CloudError> {
    match client
        .describe_db_cluster_parameter_groups()
        .db_cluster_parameter_group_name(name)
        .send()
        .await
    {
        Ok(out) => Ok(!out.db_cluster_parameter_groups().is_empty()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_db_parameter_group_not_found_fault()) =>
        {
            Ok(false)
        }
        Err(e) => Err(cloud_error(
            "RDS",
            "DescribeDBClusterParameterGroups",
            region,
            e,
        )),
    }
}

/// RestoreDBClusterFromSnapshot
/// (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBClusterFromSnapshot.html).
/// `Engine` is required. The engine version is sent as recorded: without it AWS may choose
/// the Region's default version rather than the snapshot's. No KMS key is sent: the
/// snapshot's key encrypts the cluster. The cluster comes without instances.
pub async fn restore_db_cluster(
    client: &Client,
    region: &str,
    request: &ClusterRestoreRequest,
) -> Result<ClusterStatus, CloudError> {
    let tags = sdk_tags(&request.tags);
    let scaling = request.serverless_v2_scaling.as_ref().map(|s| {
        ServerlessV2ScalingConfiguration::builder()
            .set_min_capacity(s.min_capacity.as_ref().and_then(|n| n.as_f64()))
            .set_max_capacity(s.max_capacity.as_ref().and_then(|n| n.as_f64()))
            .build()
    });
    let out = client
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier(&request.db_cluster_id)
        .snapshot_identifier(&request.snapshot_id)
        .engine(&request.engine)
        .set_engine_version(request.engine_version.clone())
        .set_port(request.port)
        .set_db_subnet_group_name(request.db_subnet_group.clone())
        .set_db_cluster_parameter_group_name(request.db_cluster_parameter_group.clone())
        .set_vpc_security_group_ids(
            Some(request.vpc_security_group_ids.clone()).filter(|ids| !ids.is_empty()),
        )
        .set_storage_type(request.storage_type.clone())
        .set_serverless_v2_scaling_configuration(scaling)
        .deletion_protection(false)
        .set_tags(Some(tags).filter(|t| !t.is_empty()))
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "RestoreDBClusterFromSnapshot", region, e))?;
    out.db_cluster().and_then(cluster_status_of).ok_or_else(|| {
        malformed(
            "RDS",
            "RestoreDBClusterFromSnapshot",
            region,
            format!(
                "no DB cluster with an identifier and ARN in the answer for {} (from {})",
                request.db_cluster_id, request.snapshot_id
            ),
        )
    })
}

/// CreateDBInstance of an Aurora cluster's instance
/// (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CreateDBInstance.html):
/// storage, key, credentials, subnet group and security groups are the cluster's and are not
/// sent; the first instance of a cluster is its writer.
pub async fn create_cluster_instance(
    client: &Client,
    region: &str,
    request: &ClusterInstanceRequest,
) -> Result<DbStatus, CloudError> {
    let tags = sdk_tags(&request.tags);
    let out = client
        .create_db_instance()
        .db_instance_identifier(&request.db_instance_id)
        .db_cluster_identifier(&request.db_cluster_id)
        .engine(&request.engine)
        .db_instance_class(&request.db_instance_class)
        .publicly_accessible(request.publicly_accessible)
        .set_tags(Some(tags).filter(|t| !t.is_empty()))
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "CreateDBInstance", region, e))?;
    out.db_instance().and_then(status_of).ok_or_else(|| {
        malformed(
            "RDS",
            "CreateDBInstance",
            region,
            format!(
                "no DB instance with an identifier and ARN in the answer for {} (in {})",
                request.db_instance_id, request.db_cluster_id
            ),
        )
    })
}

/// DeleteDBInstance of an Aurora cluster's instance, by identifier only: "You can't take a
/// final snapshot when deleting a DB instance in a DB cluster"
/// (https://docs.aws.amazon.com/cli/latest/reference/rds/delete-db-cluster.html); RDS refuses
/// a FinalDBSnapshotIdentifier for it.
pub async fn delete_cluster_instance(
    client: &Client,
    region: &str,
    db_instance_id: &str,
) -> Result<(), CloudError> {
    client
        .delete_db_instance()
        .db_instance_identifier(db_instance_id)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "DeleteDBInstance", region, e))?;
    Ok(())
}

/// DeleteDBCluster without a final snapshot, its automated backups with it
/// (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DeleteDBCluster.html): the
/// cluster was restored from a snapshot that still exists.
pub async fn delete_db_cluster(
    client: &Client,
    region: &str,
    db_cluster_id: &str,
) -> Result<(), CloudError> {
    client
        .delete_db_cluster()
        .db_cluster_identifier(db_cluster_id)
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "DeleteDBCluster", region, e))?;
    Ok(())
}
