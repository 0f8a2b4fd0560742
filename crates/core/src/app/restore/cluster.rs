//! Restoring an Aurora DB cluster (SPEC 6.2): `RestoreDBClusterFromSnapshot` makes the
//! cluster, without instances; once it is available, `CreateDBInstance` adds one writer of the
//! recorded class. Until it has an instance a cluster takes no connection
//! (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aur-restore-snapshot.html).
//! The steps are shared with `drill`.

use tokio::time::Instant;

use crate::config::AuroraConfig;
use crate::ports::{
    CloudError, ClusterInstanceRequest, ClusterRestoreRequest, ClusterStatus, DbStatus,
};
use crate::restore::build::{cluster_request, is_serverless_v1, writer_class, writer_request};
use crate::restore::{Created, CreatedKind, RestoreOptions, RestoreReport};

use super::{
    App, AppError, ProgressFn, Ready, Run, Waiting, Where, db_network_there, optional_group,
    refuse_taken_name, until_cluster_available, until_db_available,
};

/// The calls of a cluster restore, in order, each thing made told to `made` as soon as AWS
/// answers for it. `Ok`: the cluster as last seen (available) and its writer (available, or as
/// created when `wait_for_writer` is false). `Err`: why it stopped; what was made is told.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn make_cluster(
    app: &App,
    at: &Where,
    cluster: &ClusterRestoreRequest,
    writer: &ClusterInstanceRequest,
    wait_for_writer: bool,
    waiting: Waiting,
    since: Instant,
    progress: ProgressFn<'_>,
    made: &mut (dyn FnMut(CreatedKind, &str, &str) + Send),
) -> Result<(ClusterStatus, DbStatus), String> {
    let cloud = app.cloud.as_ref();
    let region = at.place.region.as_str();
    let restored = cloud
        .restore_db_cluster(&at.access, region, cluster)
        .await
        .map_err(|e| format!("RestoreDBClusterFromSnapshot: {e}"))?;
    made(CreatedKind::DbCluster, &restored.id, &restored.status);
    // "You can create DB instances only after the RestoreDBClusterFromSnapshot operation has
    // completed and the DB cluster is available" (API_RestoreDBClusterFromSnapshot.html).
    let what = format!("DB cluster {}", restored.id);
    let available =
        until_cluster_available(app, at, &restored.id, waiting, since, &what, progress).await?;
    made(CreatedKind::DbCluster, &available.id, &available.status);
    progress(&format!(
        "adding writer {} ({}) to DB cluster {}",
        writer.db_instance_id, writer.db_instance_class, available.id
    ));
    let created = cloud
        .create_cluster_instance(&at.access, region, writer)
        .await
        .map_err(|e| format!("CreateDBInstance of writer {}: {e}", writer.db_instance_id))?;
    made(CreatedKind::DbInstance, &created.id, &created.status);
    if !wait_for_writer {
        return Ok((available, created));
    }
    let what = format!("writer {}", created.id);
    let ready = until_db_available(app, at, &created.id, waiting, since, &what, progress).await?;
    made(CreatedKind::DbInstance, &ready.id, &ready.status);
    Ok((available, ready))
}

/// Said of a restore of an Aurora Serverless v1 cluster's point.
/// https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/aurora-serverless.html
pub(crate) const SERVERLESS_V1: &str = "the cluster was Aurora Serverless v1, which reached its \
    end of life on 2025-03-31 (AWS makes no new v1 clusters): it is restored as a provisioned \
    cluster with one writer";

/// The configuration of the point, which a cluster restore cannot go without: AWS requires
/// the engine.
pub(super) fn aurora_config<'p>(ready: &'p Ready<'_>) -> Result<&'p AuroraConfig, AppError> {
    ready
        .point
        .point
        .config
        .as_ref()
        .and_then(|c| c.aurora())
        .ok_or_else(|| {
            AppError::invalid(format!(
                "restore point {} was recorded without the cluster's configuration, whose \
                 engine RestoreDBClusterFromSnapshot requires: restore it with `aws rds \
                 restore-db-cluster-from-snapshot --engine …`; nothing was restored",
                ready.point.id.0
            ))
        })
}

/// `snaprelay restore` of an Aurora cluster.
pub(super) async fn restore_cluster(
    app: &App,
    ready: Ready<'_>,
    options: &RestoreOptions,
    waiting: Waiting,
    progress: ProgressFn<'_>,
) -> Result<RestoreReport, AppError> {
    let at = &ready.at;
    let region = at.place.region.as_str();
    let cloud = app.cloud.as_ref();
    let read = |e: CloudError| AppError::of_cloud(&e, "nothing was restored");
    let config = aurora_config(&ready)?.clone();
    let class = writer_class(&config, options.db_instance_class.as_ref()).ok_or_else(|| {
        AppError::invalid(format!(
            "restore point {} records no instance class of the cluster's writer: give \
             --db-instance-class; nothing was restored",
            ready.point.id.0
        ))
    })?;
    let net = db_network_there(app, at, options, (&config).into()).await?;
    let mut messages = net.messages.clone();
    let parameter_group = optional_group(
        "DB cluster parameter group",
        config.db_cluster_parameter_group.as_ref(),
        "default.",
        cloud.db_cluster_parameter_group_exists(
            &at.access,
            region,
            config
                .db_cluster_parameter_group
                .as_deref()
                .unwrap_or_default(),
        ),
        &at.place,
        &mut messages,
    )
    .await
    .map_err(read)?;
    let tags = ready.tags();
    let request = cluster_request(
        &ready.point,
        &config,
        &ready.name,
        &net,
        parameter_group,
        &tags,
    )
    .map_err(|why| AppError::invalid(format!("{why}; nothing was restored")))?;
    let writer = writer_request(&config, &ready.name, &class, &tags);
    refuse_taken_name(app, &ready).await?;

    let mut run = Run::begin(app, &ready).await?;
    run.report.messages.extend(messages);
    if is_serverless_v1(&config) {
        run.report.messages.push(SERVERLESS_V1.into());
    }
    if options.no_wait {
        run.report.messages.push(
            "--no-wait: the writer can be added only once the cluster is available, so that \
             is waited for; the writer is not"
                .into(),
        );
    }
    run.making();
    progress(&format!(
        "restoring DB cluster {} in {}",
        ready.name, at.place
    ));
    let since = Instant::now();
    let created = &mut run.report.created;
    let outcome = make_cluster(
        app,
        at,
        &request,
        &writer,
        !options.no_wait,
        waiting,
        since,
        progress,
        &mut |kind, id, state| Created::note(created, kind, id, state),
    )
    .await;
    if let Err(why) = outcome {
        run.fail(why);
    }
    run.end().await
}
