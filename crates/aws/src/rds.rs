//! RDS: DB instances and the DB snapshot calls of workflows A and C.

use std::collections::BTreeMap;

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbSnapshot, Filter, Tag as SdkTag};
use snaprelay_core::config::DbSetup;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{DbInstance, DbSnapshotStatus, Tag};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{CloudError, DbCopyRequest};

use crate::error::{cloud_error, malformed};

/// Values per RDS filter in one call.
pub(crate) const FILTER_VALUES: usize = 100;

pub(crate) fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

pub(crate) fn sdk_tags(tags: &[Tag]) -> Vec<SdkTag> {
    tags.iter()
        .map(|t| SdkTag::builder().key(&t.key).value(&t.value).build())
        .collect()
}

pub async fn find_db_instances(
    client: &Client,
    region: &str,
    selector: &Selector,
) -> Result<Vec<DbInstance>, CloudError> {
    // DescribeDBInstances filters by identifier but not by tag; its answer carries each
    // instance's TagList, so a tag selector is applied here.
    let calls: Vec<Option<Filter>> = match selector {
        Selector::Ids(ids) => ids
            .chunks(FILTER_VALUES)
            .map(|chunk| Some(filter("db-instance-id", chunk)))
            .collect(),
        Selector::Tags(_) => vec![None],
    };
    let mut found = Vec::new();
    for f in calls {
        let pages = client
            .describe_db_instances()
            .set_filters(f.map(|f| vec![f]))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("RDS", "DescribeDBInstances", region, e))?;
        for db in pages.iter().flat_map(|p| p.db_instances()) {
            let (Some(id), Some(arn)) = (db.db_instance_identifier(), db.db_instance_arn()) else {
                continue;
            };
            if let Selector::Tags(wanted) = selector {
                let has = |k: &String, v: &String| {
                    db.tag_list()
                        .iter()
                        .any(|t| t.key() == Some(k.as_str()) && t.value() == Some(v.as_str()))
                };
                if !wanted.iter().all(|(k, v)| has(k, v)) {
                    continue;
                }
            }
            // A DB being deleted has nothing left to protect.
            if db.db_instance_status() == Some("deleting") {
                continue;
            }
            found.push(DbInstance {
                id: id.to_owned(),
                arn: arn.to_owned(),
                region: region.to_owned(),
                engine: db.engine().unwrap_or_default().to_owned(),
                encrypted: db.storage_encrypted().unwrap_or(false),
                kms_key_id: db.kms_key_id().map(str::to_owned),
                cluster: db.db_cluster_identifier().map(str::to_owned),
                size_gib: db.allocated_storage().map(i64::from),
                setup: setup_of(db),
            });
        }
    }
    Ok(found)
}

/// What a restore needs of a DB instance (SPEC 6.1), as DescribeDBInstances says it.
fn setup_of(db: &aws_sdk_rds::types::DbInstance) -> DbSetup {
    DbSetup {
        engine_version: db.engine_version().map(str::to_owned),
        db_instance_class: db.db_instance_class().map(str::to_owned),
        // Endpoint is missing while the instance is being created. DbInstancePort is often 0
        // outside a cluster, so only a real port stands in for it.
        port: db
            .endpoint()
            .and_then(|e| e.port())
            .or(db.db_instance_port().filter(|p| *p > 0)),
        storage_type: db.storage_type().map(str::to_owned),
        iops: db.iops(),
        multi_az: db.multi_az(),
        db_subnet_group: db
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_owned),
        db_parameter_group: db
            .db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(str::to_owned),
        option_group: db
            .option_group_memberships()
            .first()
            .and_then(|g| g.option_group_name())
            .map(str::to_owned),
        vpc_security_group_ids: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
            .collect(),
        tags: db
            .tag_list()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Tags as the core sees them.
pub(crate) fn tags_of(tags: &[SdkTag]) -> Vec<Tag> {
    tags.iter()
        .filter_map(|t| Some(Tag::new(t.key()?, t.value().unwrap_or_default())))
        .collect()
}

fn status_of(
    s: &DbSnapshot,
    operation: &'static str,
    region: &str,
) -> Result<DbSnapshotStatus, CloudError> {
    match (s.db_snapshot_identifier(), s.db_snapshot_arn()) {
        (Some(id), Some(arn)) => Ok(DbSnapshotStatus {
            id: id.to_owned(),
            arn: arn.to_owned(),
            status: s.status().unwrap_or("unknown").to_owned(),
            progress: s.percent_progress().and_then(|p| u8::try_from(p).ok()),
            encrypted: s.encrypted().unwrap_or(false),
            kms_key_id: s.kms_key_id().map(str::to_owned),
            tags: tags_of(s.tag_list()),
        }),
        _ => Err(malformed(
            "RDS",
            operation,
            region,
            "a DB snapshot came back without its identifier or ARN".into(),
        )),
    }
}

pub async fn create_db_snapshot(
    client: &Client,
    region: &str,
    db_instance_id: &str,
    snapshot_id: &str,
    tags: &[Tag],
) -> Result<DbSnapshotStatus, CloudError> {
    let out = client
        .create_db_snapshot()
        .db_instance_identifier(db_instance_id)
        .db_snapshot_identifier(snapshot_id)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "CreateDBSnapshot", region, e))?;
    let snapshot = out.db_snapshot().ok_or_else(|| {
        malformed(
            "RDS",
            "CreateDBSnapshot",
            region,
            format!("no DB snapshot in the answer for {snapshot_id}"),
        )
    })?;
    status_of(snapshot, "CreateDBSnapshot", region)
}

pub async fn describe_db_snapshots(
    client: &Client,
    region: &str,
    ids: &[String],
) -> Result<Vec<DbSnapshotStatus>, CloudError> {
    let mut statuses = Vec::with_capacity(ids.len());
    // A filter rather than DBSnapshotIdentifier: it takes many ids at once, and an id not yet
    // visible is missing from the answer instead of failing it with DBSnapshotNotFound.
    for chunk in ids.chunks(FILTER_VALUES) {
        let pages = client
            .describe_db_snapshots()
            .filters(filter("db-snapshot-id", chunk))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("RDS", "DescribeDBSnapshots", region, e))?;
        for s in pages.iter().flat_map(|p| p.db_snapshots()) {
            statuses.push(status_of(s, "DescribeDBSnapshots", region)?);
        }
    }
    Ok(statuses)
}

/// The caller's manual DB snapshots carrying `tag`. DescribeDBSnapshots has no tag filter, so
/// the tags of each (TagList) are read from the answer.
pub async fn find_db_snapshots(
    client: &Client,
    region: &str,
    tag: &Tag,
) -> Result<Vec<DbSnapshotStatus>, CloudError> {
    let pages = client
        .describe_db_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("RDS", "DescribeDBSnapshots", region, e))?;
    let mut found = Vec::new();
    for s in pages.iter().flat_map(|p| p.db_snapshots()) {
        let status = status_of(s, "DescribeDBSnapshots", region)?;
        if status.tags.contains(tag) {
            found.push(status);
        }
    }
    Ok(found)
}

pub async fn db_snapshot_shares(
    client: &Client,
    region: &str,
    snapshot_id: &str,
) -> Result<Vec<String>, CloudError> {
    let out = client
        .describe_db_snapshot_attributes()
        .db_snapshot_identifier(snapshot_id)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "DescribeDBSnapshotAttributes", region, e))?;
    Ok(out
        .db_snapshot_attributes_result()
        .map(|r| r.db_snapshot_attributes())
        .unwrap_or_default()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().iter().cloned())
        .collect())
}

pub async fn set_db_snapshot_share(
    client: &Client,
    region: &str,
    snapshot_id: &str,
    account: &AccountId,
    shared: bool,
) -> Result<(), CloudError> {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBSnapshotAttribute.html:
    // the `restore` attribute lists the accounts that may copy or restore the snapshot.
    let call = client
        .modify_db_snapshot_attribute()
        .db_snapshot_identifier(snapshot_id)
        .attribute_name("restore");
    let call = if shared {
        call.values_to_add(account.as_str())
    } else {
        call.values_to_remove(account.as_str())
    };
    call.send()
        .await
        .map_err(|e| cloud_error("RDS", "ModifyDBSnapshotAttribute", region, e))?;
    Ok(())
}

pub async fn copy_db_snapshot(
    client: &Client,
    region: &str,
    request: &DbCopyRequest,
) -> Result<DbSnapshotStatus, CloudError> {
    // No PreSignedUrl: AWS ignores it outside GovCloud, and the planner refuses cross-Region
    // copies in GovCloud (see snaprelay_core::plan).
    let out = client
        .copy_db_snapshot()
        .source_db_snapshot_identifier(&request.source_arn)
        .target_db_snapshot_identifier(&request.target_id)
        .set_kms_key_id(request.kms_key_arn.clone())
        .set_tags(Some(sdk_tags(&request.tags)))
        .copy_tags(false)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "CopyDBSnapshot", region, e))?;
    let snapshot = out.db_snapshot().ok_or_else(|| {
        malformed(
            "RDS",
            "CopyDBSnapshot",
            region,
            format!(
                "no DB snapshot in the answer for the copy of {}",
                request.source_arn
            ),
        )
    })?;
    status_of(snapshot, "CopyDBSnapshot", region)
}

pub async fn delete_db_snapshot(
    client: &Client,
    region: &str,
    snapshot_id: &str,
) -> Result<(), CloudError> {
    client
        .delete_db_snapshot()
        .db_snapshot_identifier(snapshot_id)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "DeleteDBSnapshot", region, e))?;
    Ok(())
}
