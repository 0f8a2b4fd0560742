//! What restores and drills left in a place: everything tagged `snaprelay:drill` or
//! `snaprelay:restore` for the policy, found by tag, and deleted in the order AWS allows
//! (instances and DB instances first, then their images and volumes, then the security groups
//! they used). A drill removes what earlier drills left before it begins; `gc` lists it all
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
    let of = |kind: CreatedKind| {
        leftovers
            .iter()
            .filter(move |l| l.kind == kind)
            .map(|l| l.id.clone())
            .collect::<Vec<_>>()
    };
    let instances = of(CreatedKind::Instance);
    let dbs = of(CreatedKind::DbInstance);
    for id in &instances {
        if let Err(e) = cloud.terminate_instance(access, region, id).await {
            problems.push(format!("instance {id}: TerminateInstances: {e}"));
        }
    }
    for id in &dbs {
        if let Err(e) = cloud.delete_db_instance(access, region, id).await
            && !e.is_not_found()
        {
            problems.push(format!("DB instance {id}: DeleteDBInstance: {e}"));
        }
    }
    for id in of(CreatedKind::Image) {
        if let Err(e) = cloud.deregister_image(access, region, &id).await {
            problems.push(format!("image {id}: DeregisterImage: {e}"));
        }
    }
    // Volumes and groups are free only once the instances and DB instances are gone.
    let since = Instant::now();
    loop {
        let running = match cloud
            .find_machines(access, region, &Find::Ids(&instances))
            .await
        {
            Ok(found) => found.iter().filter(|m| m.state != "terminated").count(),
            Err(_) => instances.len(),
        };
        let dbs_left = match cloud.find_dbs(access, region, &Find::Ids(&dbs)).await {
            Ok(found) => found.len(),
            Err(_) => dbs.len(),
        };
        if running + dbs_left == 0 {
            break;
        }
        if since.elapsed() >= patience {
            problems.push(format!(
                "{running} instance(s) and {dbs_left} DB instance(s) were still going after {} s: \
                 their volumes and security groups are left for the next drill or `gc --yes`",
                patience.as_secs()
            ));
            return problems;
        }
        tokio::time::sleep(poll).await;
    }
    let volumes = of(CreatedKind::Volume);
    if !volumes.is_empty() {
        let gone: Vec<String> = match cloud
            .find_volumes(access, region, &Find::Ids(&volumes))
            .await
        {
            Ok(found) => volumes
                .iter()
                .filter(|id| !found.iter().any(|v| &v.id == *id))
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        };
        for id in volumes.iter().filter(|id| !gone.contains(id)) {
            if let Err(e) = cloud.delete_volume(access, region, id).await
                && !e.is_not_found()
            {
                problems.push(format!("volume {id}: DeleteVolume: {e}"));
            }
        }
    }
    for id in of(CreatedKind::SecurityGroup) {
        if let Err(e) = cloud.delete_security_group(access, region, &id).await
            && !e.is_not_found()
        {
            problems.push(format!("security group {id}: DeleteSecurityGroup: {e}"));
        }
    }
    problems
}
