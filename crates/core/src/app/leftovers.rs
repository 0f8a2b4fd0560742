//! What restores and drills left in a place: everything tagged `snaprelay:drill` or
//! `snaprelay:restore` for the policy, found by tag, and deleted in the order AWS allows
//! (instances and DB instances first, then the Aurora clusters once their instances are being
//! deleted, then images and volumes, then the security groups they used). A drill removes what earlier drills left before it begins; `gc` lists it all
//! and with `--yes` removes what belongs to no running drill or restore.

use std::time::Duration;

use tokio::time::Instant;

use crate::model::Tag;
use crate::model::{tag_value, tags};
use crate::ports::Find;
use crate::restore::CreatedKind;
pub use crate::restore::Remnant as Leftover;

use super::App;
use super::restore::Where;

/// Everything in `at` tagged with `marker` for `policy`, with the id that made it.
pub(crate) async fn find(
    app: &App,
    at: &Where,
    marker: &'static str,
    policy: &str,
) -> Result<Vec<Leftover>, crate::ports::CloudError> {
    let cloud = app.cloud.as_ref();
    let region = at.place.region.as_str();
    let by_tag = Find::TagKey(marker);
    let mine = |t: &[Tag]| {
        (tag_value(t, tags::POLICY) == Some(policy))
            .then(|| tag_value(t, marker).unwrap_or_default().to_owned())
    };
    let mut found = Vec::new();
    let mut push = |kind, id: &str, state: &str, made_by: String| {
        found.push(Leftover {
            kind,
            id: id.to_owned(),
            state: state.to_owned(),
            account: at.place.account.to_string(),
            region: region.to_owned(),
            tag: marker,
            made_by,
        });
    };
    for m in cloud.find_machines(&at.access, region, &by_tag).await? {
        if m.state != "terminated"
            && let Some(by) = mine(&m.tags)
        {
            push(CreatedKind::Instance, &m.id, &m.state, by);
        }
    }
    for d in cloud.find_dbs(&at.access, region, &by_tag).await? {
        if let Some(by) = mine(&d.tags) {
            push(CreatedKind::DbInstance, &d.id, &d.status, by);
        }
    }
    for c in cloud.find_clusters(&at.access, region, &by_tag).await? {
        if let Some(by) = mine(&c.tags) {
            push(CreatedKind::DbCluster, &c.id, &c.status, by);
        }
    }
    for i in cloud.find_images(&at.access, region, &by_tag).await? {
        if i.state != "deregistered"
            && let Some(by) = mine(&i.tags)
        {
            push(CreatedKind::Image, &i.id, &i.state, by);
        }
    }
    for v in cloud.find_volumes(&at.access, region, &by_tag).await? {
        if !matches!(v.state.as_str(), "deleting" | "deleted")
            && let Some(by) = mine(&v.tags)
        {
            push(CreatedKind::Volume, &v.id, &v.state, by);
        }
    }
    for g in cloud
        .find_security_groups(&at.access, region, &by_tag)
        .await?
    {
        if let Some(by) = mine(&g.tags) {
            push(CreatedKind::SecurityGroup, &g.id, "exists", by);
        }
    }
    Ok(found)
}

/// Deletes `leftovers` (all in `at`), in the order AWS allows, waiting up to `patience` for
/// instances and DB instances to be gone before their volumes and groups. Returns what could
/// not be deleted, with why; the rest is gone or going.
pub(crate) async fn remove(
    app: &App,
    at: &Where,
    leftovers: &[Leftover],
    patience: Duration,
    poll: Duration,
) -> Vec<String> {
    let cloud = app.cloud.as_ref();
    let region = at.place.region.as_str();
    let access = &at.access;
    let mut problems = Vec::new();
    let of = |kind: CreatedKind| leftovers.iter().filter(move |l| l.kind == kind);
    // What is on its way out: waited for before its volumes and groups are deleted.
    let mut instances = Vec::new();
    for l in of(CreatedKind::Instance) {
        match cloud.terminate_instance(access, region, &l.id).await {
            Ok(()) => instances.push(l.id.clone()),
            Err(e) if e.is_not_found() => {}
            Err(e) => problems.push(format!("instance {}: TerminateInstances: {e}", l.id)),
        }
    }
    let mut dbs = Vec::new();
    // An Aurora cluster's instance is deleted by identifier only: RDS takes no final snapshot
    // of it. Which are, DescribeDBInstances says.
    let db_ids: Vec<String> = of(CreatedKind::DbInstance).map(|l| l.id.clone()).collect();
    let members: Vec<String> = if db_ids.is_empty() {
        Vec::new()
    } else {
        cloud
            .find_dbs(access, region, &Find::Ids(&db_ids))
            .await
            .map(|found| {
                found
                    .into_iter()
                    .filter(|d| d.cluster.is_some())
                    .map(|d| d.id)
                    .collect()
            })
            .unwrap_or_default()
    };
    let delete_db = |id: String| {
        let member = members.contains(&id);
        async move {
            let deleted = if member {
                cloud.delete_cluster_instance(access, region, &id).await
            } else {
                cloud.delete_db_instance(access, region, &id).await
            };
            (id, deleted)
        }
    };
    // Refused with InvalidDBInstanceState: being deleted already (by an earlier attempt, or
    // someone else), or not yet in a state that may be deleted (still being created,
    // modified or backed up). Waited for, and asked again while it is not `deleting`.
    let mut dbs_refused: Vec<(String, String)> = Vec::new();
    for l in of(CreatedKind::DbInstance) {
        if l.state == "deleting" {
            dbs.push(l.id.clone());
            continue;
        }
        match delete_db(l.id.clone()).await {
            (id, Ok(())) => dbs.push(id),
            (_, Err(e)) if e.is_not_found() => {}
            (id, Err(e)) if e.code.as_deref() == Some("InvalidDBInstanceState") => {
                dbs.push(id.clone());
                dbs_refused.push((id, e.to_string()));
            }
            (id, Err(e)) => problems.push(format!("DB instance {id}: DeleteDBInstance: {e}")),
        }
    }
    for l in of(CreatedKind::Image) {
        if let Err(e) = cloud.deregister_image(access, region, &l.id).await
            && !e.is_not_found()
        {
            problems.push(format!("image {}: DeregisterImage: {e}", l.id));
        }
    }
    // A cluster is deleted once none of its instances is but being deleted
    // (InvalidDBClusterStateFault until then): tried again while waiting.
    let mut clusters_to_delete: Vec<String> = of(CreatedKind::DbCluster)
        .filter(|l| l.state != "deleting")
        .map(|l| l.id.clone())
        .collect();
    let mut clusters: Vec<String> = of(CreatedKind::DbCluster).map(|l| l.id.clone()).collect();
    let since = Instant::now();
    loop {
        let mut refused = Vec::new();
        for id in std::mem::take(&mut clusters_to_delete) {
            match cloud.delete_db_cluster(access, region, &id).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) if e.code.as_deref() == Some("InvalidDBClusterStateFault") => {
                    refused.push((id, e.to_string()));
                }
                Err(e) => {
                    problems.push(format!("DB cluster {id}: DeleteDBCluster: {e}"));
                    clusters.retain(|c| *c != id);
                }
            }
        }
        let clusters_left = match cloud
            .find_clusters(access, region, &Find::Ids(&clusters))
            .await
        {
            Ok(found) => found.len(),
            Err(_) => clusters.len(),
        };
        let running = match cloud
            .find_machines(access, region, &Find::Ids(&instances))
            .await
        {
            Ok(found) => found.iter().filter(|m| m.state != "terminated").count(),
            Err(_) => instances.len(),
        };
        let (dbs_left, deleting): (usize, Vec<String>) =
            match cloud.find_dbs(access, region, &Find::Ids(&dbs)).await {
                Ok(found) => (
                    found.len(),
                    found
                        .into_iter()
                        .filter(|d| d.status == "deleting")
                        .map(|d| d.id)
                        .collect(),
                ),
                Err(_) => (dbs.len(), Vec::new()),
            };
        dbs_refused.retain(|(id, _)| !deleting.contains(id));
        if running + dbs_left + clusters_left == 0 {
            break;
        }
        if since.elapsed() >= patience {
            for (id, why) in &dbs_refused {
                problems.push(format!("DB instance {id}: DeleteDBInstance: {why}"));
            }
            for (id, why) in &refused {
                problems.push(format!("DB cluster {id}: DeleteDBCluster: {why}"));
            }
            problems.push(format!(
                "{running} instance(s), {dbs_left} DB instance(s) and {clusters_left} DB \
                 cluster(s) were still going after {} s: what they used is left for the next \
                 drill or `gc --yes`",
                patience.as_secs()
            ));
            return problems;
        }
        clusters_to_delete = refused.into_iter().map(|(id, _)| id).collect();
        tokio::time::sleep(poll).await;
        for (id, _) in std::mem::take(&mut dbs_refused) {
            match delete_db(id).await {
                (_, Ok(())) => {}
                (_, Err(e)) if e.is_not_found() => {}
                (id, Err(e)) if e.code.as_deref() == Some("InvalidDBInstanceState") => {
                    dbs_refused.push((id, e.to_string()));
                }
                (id, Err(e)) => {
                    problems.push(format!("DB instance {id}: DeleteDBInstance: {e}"));
                    dbs.retain(|d| *d != id);
                }
            }
        }
    }
    let volumes: Vec<String> = of(CreatedKind::Volume).map(|l| l.id.clone()).collect();
    if !volumes.is_empty() {
        // Those deleted with their instance are gone or going already.
        let left: Vec<String> = match cloud
            .find_volumes(access, region, &Find::Ids(&volumes))
            .await
        {
            Ok(found) => found
                .into_iter()
                .filter(|v| !matches!(v.state.as_str(), "deleting" | "deleted"))
                .map(|v| v.id)
                .collect(),
            Err(_) => volumes.clone(),
        };
        for id in &left {
            if let Err(e) = cloud.delete_volume(access, region, id).await
                && !e.is_not_found()
            {
                problems.push(format!("volume {id}: DeleteVolume: {e}"));
            }
        }
    }
    // A group stays in use until AWS has released the network interfaces of what used it,
    // some time after the instance is terminated or the DB deleted: DependencyViolation
    // until then, retried for a few minutes.
    for l in of(CreatedKind::SecurityGroup) {
        let began = Instant::now();
        loop {
            match cloud.delete_security_group(access, region, &l.id).await {
                Ok(()) => break,
                Err(e) if e.is_not_found() => break,
                Err(e)
                    if e.code.as_deref() == Some("DependencyViolation")
                        && began.elapsed() < GROUP_PATIENCE =>
                {
                    tokio::time::sleep(poll.max(Duration::from_secs(1))).await;
                }
                Err(e) => {
                    problems.push(format!("security group {}: DeleteSecurityGroup: {e}", l.id));
                    break;
                }
            }
        }
    }
    problems
}

/// How long a group is retried while AWS still holds it for a network interface.
const GROUP_PATIENCE: Duration = Duration::from_secs(5 * 60);
