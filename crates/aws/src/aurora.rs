//! Aurora: DB clusters and the DB cluster snapshot calls of workflows A and C. The calls
//! mirror `rds.rs`'s DB snapshot calls; the answers carry `StorageEncrypted` rather than
//! `Encrypted` (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_DBClusterSnapshot.html).

use aws_sdk_rds::Client;
use aws_sdk_rds::types::{DbClusterSnapshot, Filter};
use snaprelay_core::config::{DbSetup, ServerlessV2Scaling};
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{ClusterMember, DbCluster, DbInstance, DbSnapshotStatus, Tag};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{CloudError, DbCopyRequest};

use crate::error::{cloud_error, malformed};
use crate::rds::{FILTER_VALUES, filter, sdk_tags, tags_of};

/// DescribeDBClusters: the Aurora clusters matching the selector. The call filters by
/// identifier and engine but not by tag (API_DescribeDBClusters.html), so a tag selector is
/// applied to each cluster's TagList; it also lists Multi-AZ DB clusters (engines `mysql`,
/// `postgres`), which are left out: only `aurora-*` engines are Aurora.
pub async fn find_db_clusters(
    client: &Client,
    region: &str,
    selector: &Selector,
) -> Result<Vec<DbCluster>, CloudError> {
    let calls: Vec<Option<Filter>> = match selector {
        Selector::Ids(ids) => ids
            .chunks(FILTER_VALUES)
            .map(|chunk| Some(filter("db-cluster-id", chunk)))
            .collect(),
        Selector::Tags(_) => vec![None],
    };
    let mut found = Vec::new();
    for f in calls {
        let pages = client
            .describe_db_clusters()
            .set_filters(f.map(|f| vec![f]))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("RDS", "DescribeDBClusters", region, e))?;
        for c in pages.iter().flat_map(|p| p.db_clusters()) {
            let (Some(id), Some(arn)) = (c.db_cluster_identifier(), c.db_cluster_arn()) else {
                continue;
            };
            let engine = c.engine().unwrap_or_default();
            if !engine.starts_with("aurora") || c.status() == Some("deleting") {
                continue;
            }
            let tags: Vec<Tag> = tags_of(c.tag_list());
            if let Selector::Tags(wanted) = selector
                && !wanted
                    .iter()
                    .all(|(k, v)| tags.iter().any(|t| &t.key == k && &t.value == v))
            {
                continue;
            }
            found.push(DbCluster {
                db: DbInstance {
                    id: id.to_owned(),
                    arn: arn.to_owned(),
                    region: region.to_owned(),
                    engine: engine.to_owned(),
                    encrypted: c.storage_encrypted().unwrap_or(false),
                    kms_key_id: c.kms_key_id().map(str::to_owned),
                    cluster: None,
                    size_gib: c.allocated_storage().map(i64::from),
                    setup: DbSetup {
                        engine_version: c.engine_version().map(str::to_owned),
                        port: c.port(),
                        storage_type: c.storage_type().map(str::to_owned),
                        db_subnet_group: c.db_subnet_group().map(str::to_owned),
                        db_parameter_group: c.db_cluster_parameter_group().map(str::to_owned),
                        vpc_security_group_ids: c
                            .vpc_security_groups()
                            .iter()
                            .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                            .collect(),
                        tags: tags.into_iter().map(|t| (t.key, t.value)).collect(),
                        ..DbSetup::default()
                    },
                },
                members: c
                    .db_cluster_members()
                    .iter()
                    .filter_map(|m| {
                        Some(ClusterMember {
                            db_instance_id: m.db_instance_identifier()?.to_owned(),
                            writer: m.is_cluster_writer().unwrap_or(false),
                            db_instance_class: None,
                        })
                    })
                    .collect(),
                engine_mode: c.engine_mode().map(str::to_owned),
                serverless_v2_scaling: c
                    .serverless_v2_scaling_configuration()
                    .map(|s| ServerlessV2Scaling::of_acu(s.min_capacity(), s.max_capacity())),
            });
        }
    }
    member_classes(client, region, &mut found).await?;
    Ok(found)
}

/// Fills each member's DB instance class: DescribeDBClusters names the members but not their
/// class, which a restore of the cluster recreates (SPEC 6.1). One DescribeDBInstances per
/// batch of clusters (filter `db-cluster-id`).
async fn member_classes(
    client: &Client,
    region: &str,
    clusters: &mut [DbCluster],
) -> Result<(), CloudError> {
    let ids: Vec<String> = clusters
        .iter()
        .filter(|c| !c.members.is_empty())
        .map(|c| c.db.id.clone())
        .collect();
    for chunk in ids.chunks(FILTER_VALUES) {
        let pages = client
            .describe_db_instances()
            .filters(filter("db-cluster-id", chunk))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("RDS", "DescribeDBInstances", region, e))?;
        for db in pages.iter().flat_map(|p| p.db_instances()) {
            let Some(id) = db.db_instance_identifier() else {
                continue;
            };
            for m in clusters
                .iter_mut()
                .flat_map(|c| c.members.iter_mut())
                .filter(|m| m.db_instance_id == id)
            {
                m.db_instance_class = db.db_instance_class().map(str::to_owned);
            }
        }
    }
    Ok(())
}

fn status_of(
    s: &DbClusterSnapshot,
    operation: &'static str,
    region: &str,
) -> Result<DbSnapshotStatus, CloudError> {
    match (
        s.db_cluster_snapshot_identifier(),
        s.db_cluster_snapshot_arn(),
    ) {
        (Some(id), Some(arn)) => Ok(DbSnapshotStatus {
            id: id.to_owned(),
            arn: arn.to_owned(),
            status: s.status().unwrap_or("unknown").to_owned(),
            progress: s.percent_progress().and_then(|p| u8::try_from(p).ok()),
            encrypted: s.storage_encrypted().unwrap_or(false),
            kms_key_id: s.kms_key_id().map(str::to_owned),
            tags: tags_of(s.tag_list()),
        }),
        _ => Err(malformed(
            "RDS",
            operation,
            region,
            "a DB cluster snapshot came back without its identifier or ARN".into(),
        )),
    }
}

pub async fn create_db_cluster_snapshot(
    client: &Client,
    region: &str,
    db_cluster_id: &str,
    snapshot_id: &str,
    tags: &[Tag],
) -> Result<DbSnapshotStatus, CloudError> {
    let op = "CreateDBClusterSnapshot";
    let out = client
        .create_db_cluster_snapshot()
        .db_cluster_identifier(db_cluster_id)
        .db_cluster_snapshot_identifier(snapshot_id)
        .set_tags(Some(sdk_tags(tags)))
        .send()
        .await
        .map_err(|e| cloud_error("RDS", op, region, e))?;
    let snapshot = out.db_cluster_snapshot().ok_or_else(|| {
        malformed(
            "RDS",
            op,
            region,
            format!("no DB cluster snapshot in the answer for {snapshot_id}"),
        )
    })?;
    status_of(snapshot, op, region)
}

pub async fn describe_db_cluster_snapshots(
    client: &Client,
    region: &str,
    ids: &[String],
) -> Result<Vec<DbSnapshotStatus>, CloudError> {
    let op = "DescribeDBClusterSnapshots";
    let mut statuses = Vec::with_capacity(ids.len());
    // A filter rather than DBClusterSnapshotIdentifier: it takes many ids at once, and an id
    // not yet visible is missing from the answer instead of failing the call.
    for chunk in ids.chunks(FILTER_VALUES) {
        let pages = client
            .describe_db_cluster_snapshots()
            .filters(filter("db-cluster-snapshot-id", chunk))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| cloud_error("RDS", op, region, e))?;
        for s in pages.iter().flat_map(|p| p.db_cluster_snapshots()) {
            statuses.push(status_of(s, op, region)?);
        }
    }
    Ok(statuses)
}

/// The caller's manual DB cluster snapshots carrying `tag` (no tag filter: TagList is read).
pub async fn find_db_cluster_snapshots(
    client: &Client,
    region: &str,
    tag: &Tag,
) -> Result<Vec<DbSnapshotStatus>, CloudError> {
    let op = "DescribeDBClusterSnapshots";
    let pages = client
        .describe_db_cluster_snapshots()
        .snapshot_type("manual")
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("RDS", op, region, e))?;
    let mut found = Vec::new();
    for s in pages.iter().flat_map(|p| p.db_cluster_snapshots()) {
        let status = status_of(s, op, region)?;
        if status.tags.contains(tag) {
            found.push(status);
        }
    }
    Ok(found)
}

pub async fn db_cluster_snapshot_shares(
    client: &Client,
    region: &str,
    snapshot_id: &str,
) -> Result<Vec<String>, CloudError> {
    let out = client
        .describe_db_cluster_snapshot_attributes()
        .db_cluster_snapshot_identifier(snapshot_id)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "DescribeDBClusterSnapshotAttributes", region, e))?;
    Ok(out
        .db_cluster_snapshot_attributes_result()
        .map(|r| r.db_cluster_snapshot_attributes())
        .unwrap_or_default()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().iter().cloned())
        .collect())
}

pub async fn set_db_cluster_snapshot_share(
    client: &Client,
    region: &str,
    snapshot_id: &str,
    account: &AccountId,
    shared: bool,
) -> Result<(), CloudError> {
    // https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_ModifyDBClusterSnapshotAttribute.html:
    // `restore` lists the accounts that may copy or restore the manual snapshot.
    let call = client
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier(snapshot_id)
        .attribute_name("restore");
    let call = if shared {
        call.values_to_add(account.as_str())
    } else {
        call.values_to_remove(account.as_str())
    };
    call.send()
        .await
        .map_err(|e| cloud_error("RDS", "ModifyDBClusterSnapshotAttribute", region, e))?;
    Ok(())
}

pub async fn copy_db_cluster_snapshot(
    client: &Client,
    region: &str,
    request: &DbCopyRequest,
) -> Result<DbSnapshotStatus, CloudError> {
    let op = "CopyDBClusterSnapshot";
    // Called in the destination Region with the source's ARN. KmsKeyId is required for an
    // encrypted copy shared from another account or into another Region, and refused for an
    // unencrypted source (API_CopyDBClusterSnapshot.html): the workflows give it exactly for
    // encrypted snapshots. No PreSignedUrl: ignored outside GovCloud, which the planner
    // refuses.
    let out = client
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(&request.source_arn)
        .target_db_cluster_snapshot_identifier(&request.target_id)
        .set_kms_key_id(request.kms_key_arn.clone())
        .set_tags(Some(sdk_tags(&request.tags)))
        .copy_tags(false)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", op, region, e))?;
    let snapshot = out.db_cluster_snapshot().ok_or_else(|| {
        malformed(
            "RDS",
            op,
            region,
            format!(
                "no DB cluster snapshot in the answer for the copy of {}",
                request.source_arn
            ),
        )
    })?;
    status_of(snapshot, op, region)
}

pub async fn delete_db_cluster_snapshot(
    client: &Client,
    region: &str,
    snapshot_id: &str,
) -> Result<(), CloudError> {
    client
        .delete_db_cluster_snapshot()
        .db_cluster_snapshot_identifier(snapshot_id)
        .send()
        .await
        .map_err(|e| cloud_error("RDS", "DeleteDBClusterSnapshot", region, e))?;
    Ok(())
}
