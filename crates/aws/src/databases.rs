//! RDS for a restore (SPEC 6.2, 6.3): the DB instances a restore makes from a DB snapshot, the
//! groups they need in that place, and their removal.

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbInstance, Filter};
use snaprelay_core::ports::{CloudError, DbRestoreRequest, DbStatus, Find};

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
        tags: tags_of(db.tag_list()),
    })
}

pub async fn find_dbs(
    client: &Client,
    region: &str,
    find: &Find<'_>,
) -> Result<Vec<DbStatus>, CloudError> {
    // DescribeDBInstances filters by identifier but not by tag; its answer carries each
    // instance's TagList, so a tag key is looked for here.
    let calls: Vec<Option<Filter>> = match find {
        Find::Ids(ids) => ids
            .chunks(FILTER_VALUES)
            .map(|chunk| Some(filter("db-instance-id", chunk)))
            .collect(),
        Find::Name(name) => vec![Some(filter("db-instance-id", &[(*name).to_owned()]))],
        Find::TagKey(_) => vec![None],
    };
    let mut found = Vec::new();
    for f in calls {
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
            if let Find::TagKey(key) = find
                && !db.tag_list().iter().any(|t| t.key() == Some(*key))
            {
                continue;
            }
            found.extend(status_of(db));
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
