//! `restore` (SPEC 6.2): an instance, volumes or a DB instance from a restore point, in any
//! place that holds it, with that place's role. Everything is checked before anything is made
//! (the point, the name, the network): a bad flag, a taken name or nowhere to go is invalid
//! input with nothing created. What is made is tagged at creation with the restore's id and
//! recorded as an operation begun first, so that a killed restore leaves nothing `gc` cannot
//! find. The restore point and the source are only read.

use tokio::time::Instant;

use crate::config::{Ec2Config, RdsConfig};
use crate::ids::AccountId;
use crate::model::{ResourceType, SnapshotKind, Tag};
use crate::policy::Policy;
use crate::ports::{CloudError, Find, Operation, OperationKind, PointFilter};
use crate::report::RecordedRestorePoint;
use crate::restore::build::{
    db_request, image_request, launch_request, made_tags, volume_requests,
};
use crate::restore::network;
use crate::restore::{
    Created, CreatedKind, Place, PointRef, RESTORE_TAG, ResourceRef, RestoreAs, RestoreOptions,
    RestoreReport, RestoreStatus, choose_point, name_problem, new_restore_id,
};
use crate::runtime::clock::utc_now;

use super::{App, AppError};

mod cluster;
mod place;
mod wait;

pub(crate) use cluster::{SERVERLESS_V1, make_cluster};

pub(crate) use place::{
    Where, db_network_in, look_around, look_in, pick_place, places, volume_zone,
};
pub use wait::{ProgressFn, Waiting};
pub(crate) use wait::{
    once_visible, until_available, until_cluster_available, until_db_available, until_running,
};

/// What the restore is made of, resolved and checked before anything is made.
struct Ready<'a> {
    restore_id: String,
    policy: &'a Policy,
    point: RecordedRestorePoint,
    at: Where,
    name: String,
    restore_as: RestoreAs,
    messages: Vec<String>,
}

impl Ready<'_> {
    /// The tags of everything this restore makes (`snaprelay:restore`, the policy, `Name`).
    fn tags(&self) -> Vec<Tag> {
        made_tags(RESTORE_TAG, &self.restore_id, &self.policy.name, &self.name)
    }
}

/// `snaprelay restore`. `Ok` carries the document whatever the outcome (`Failed` included);
/// `Err` is a restore that did not begin (invalid input: nothing was made; or the state or
/// AWS could not be read).
pub async fn restore(
    app: &App,
    policy: &Policy,
    options: &RestoreOptions,
    waiting: Waiting,
    progress: ProgressFn<'_>,
) -> Result<RestoreReport, AppError> {
    let ready = prepare_restore(app, policy, options).await?;
    match ready.restore_as {
        RestoreAs::Instance => {
            let config = ready
                .point
                .point
                .config
                .as_ref()
                .and_then(|c| c.ec2())
                .cloned()
                .ok_or_else(|| {
                    AppError::invalid(format!(
                        "restore point {} was recorded without the instance's configuration \
                         (before snaprelay kept it): restore it with --as volumes; nothing was \
                         restored",
                        ready.point.id.0
                    ))
                })?;
            restore_instance(app, ready, &config, options, waiting, progress).await
        }
        RestoreAs::Volumes => restore_volumes(app, ready, options, waiting, progress).await,
        RestoreAs::Db if ready.point.point.resource_type == ResourceType::Aurora => {
            cluster::restore_cluster(app, ready, options, waiting, progress).await
        }
        RestoreAs::Db => restore_db(app, ready, options, waiting, progress).await,
    }
}

async fn prepare_restore<'a>(
    app: &App,
    policy: &'a Policy,
    options: &RestoreOptions,
) -> Result<Ready<'a>, AppError> {
    let points = app
        .store
        .find_restore_points(&PointFilter {
            policy: Some(&policy.name),
            resource: Some(&options.resource_id),
            ..PointFilter::default()
        })
        .await?;
    if points.is_empty() {
        return Err(AppError::invalid(format!(
            "{}: policy {} has no restore point of this resource (`snaprelay restore-points` \
             lists them); nothing was restored",
            options.resource_id, policy.name
        )));
    }
    let resource_type = points[0].point.resource_type;
    let source_region = points
        .iter()
        .rev()
        .find(|p| p.point.kind == SnapshotKind::Source)
        .map(|p| p.point.place.region.clone());
    let places = places(
        app,
        policy,
        options.role_arn.as_ref(),
        source_region.as_slice(),
    )
    .await?;
    let point_place = match options.point {
        crate::restore::PointChoice::Id(id) => points.iter().find(|p| p.id.0 == id).and_then(|p| {
            Some(Place {
                account: AccountId::parse(&p.point.place.account)?,
                region: p.point.place.region.clone(),
            })
        }),
        crate::restore::PointChoice::Latest => None,
    };
    let at = pick_place(&places, &options.place, point_place)?.clone();
    let point = choose_point(
        &points,
        &options.resource_id,
        &at.place,
        at.kind,
        options.point,
    )
    .map_err(|why| AppError::invalid(format!("{why}; nothing was restored")))?
    .clone();

    let mut messages = Vec::new();
    let restore_as = match (options.restore_as, resource_type) {
        (Some(a), t) if !a.fits(t) => {
            return Err(AppError::invalid(format!(
                "--as {}: {} is {}; restore it as {}; nothing was restored",
                a.as_str(),
                options.resource_id,
                match t {
                    ResourceType::Ec2 => "an EC2 instance",
                    ResourceType::Rds => "an RDS DB instance",
                    ResourceType::Aurora => "an Aurora DB cluster",
                },
                match t {
                    ResourceType::Ec2 => "instance or volumes",
                    ResourceType::Rds | ResourceType::Aurora => "db",
                }
            )));
        }
        (Some(a), _) => a,
        (None, ResourceType::Rds | ResourceType::Aurora) => RestoreAs::Db,
        (None, ResourceType::Ec2) => match point.point.config.as_ref().and_then(|c| c.ec2()) {
            Some(_) => RestoreAs::Instance,
            None => {
                messages.push(format!(
                    "restore point {} was recorded without the instance's configuration: its \
                     volumes are restored",
                    point.id.0
                ));
                RestoreAs::Volumes
            }
        },
    };
    if restore_as != RestoreAs::Instance && options.instance_type.is_some() {
        return Err(AppError::invalid(
            "--instance-type applies only to --as instance; nothing was restored",
        ));
    }
    if restore_as == RestoreAs::Volumes {
        // Volumes live in an Availability Zone, not in a subnet, and no image is made.
        refuse_instance_only(
            &[
                ("--subnet", options.subnet.is_some()),
                ("--security-groups", options.security_groups.is_some()),
                ("--keep-image", options.keep_image),
            ],
            "volumes are restored into an Availability Zone (--availability-zone)",
        )?;
    }
    if restore_as == RestoreAs::Db {
        // A DB instance or cluster goes into a DB subnet group and makes no image.
        refuse_instance_only(
            &[
                ("--subnet", options.subnet.is_some()),
                ("--keep-image", options.keep_image),
            ],
            "a database is restored into a DB subnet group (the target's restore = { \
             db_subnet_group = \"…\" } in the policy, else the recorded one, else the default \
             VPC's)",
        )?;
    }
    if restore_as != RestoreAs::Db && options.db_instance_class.is_some() {
        return Err(AppError::invalid(
            "--db-instance-class applies only to an RDS restore; nothing was restored",
        ));
    }
    if restore_as == RestoreAs::Instance
        && let Some(config) = point.point.config.as_ref().and_then(|c| c.ec2())
        && !config.is_plain_linux()
    {
        return Err(AppError::invalid(format!(
            "--as instance: {} runs {} ({}), whose billing codes RegisterImage cannot carry \
             over; restore it with --as volumes and attach them to an instance launched from \
             the vendor's image; nothing was restored",
            options.resource_id,
            config.instance.platform_details.as_deref().unwrap_or("?"),
            "platform_details"
        )));
    }
    let restore_id = new_restore_id();
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| format!("snaprelay-restore-{restore_id}"));
    if let Some(why) = name_problem(&name) {
        return Err(AppError::invalid(format!(
            "--name {name:?} {why}; nothing was restored"
        )));
    }
    Ok(Ready {
        restore_id,
        policy,
        point,
        at,
        name,
        restore_as,
        messages,
    })
}

/// Refuses a name already taken there: an AMI of that name, a non-terminated instance with
/// that `Name` tag, a DB instance of that identifier, or (restoring an Aurora cluster) a DB
/// cluster of it.
async fn refuse_taken_name(app: &App, ready: &Ready<'_>) -> Result<(), AppError> {
    let (at, name) = (&ready.at, ready.name.as_str());
    let cloud = app.cloud.as_ref();
    let region = at.place.region.as_str();
    let read = |e: CloudError| AppError::of_cloud(&e, "nothing was restored");
    let cluster = if ready.point.point.resource_type == ResourceType::Aurora {
        cloud
            .find_clusters(&at.access, region, &Find::Name(name))
            .await
            .map_err(read)?
            .first()
            .map(|c| format!("DB cluster {} exists", c.id))
    } else {
        None
    };
    let taken = match ready.restore_as {
        _ if cluster.is_some() => cluster,
        RestoreAs::Instance | RestoreAs::Volumes => {
            let images = cloud
                .find_images(&at.access, region, &Find::Name(name))
                .await
                .map_err(read)?;
            let machines = cloud
                .find_machines(&at.access, region, &Find::Name(name))
                .await
                .map_err(read)?;
            if let Some(image) = images.iter().find(|i| i.state != "deregistered") {
                Some(format!("image {} is named {name}", image.id))
            } else {
                machines
                    .iter()
                    .find(|m| m.state != "terminated")
                    .map(|m| format!("instance {} ({}) is named {name}", m.id, m.state))
            }
        }
        RestoreAs::Db => cloud
            .find_dbs(&at.access, region, &Find::Name(name))
            .await
            .map_err(read)?
            .first()
            .map(|d| format!("DB instance {} exists", d.id)),
    };
    match taken {
        Some(why) => Err(AppError::invalid(format!(
            "--name {name}: taken in {} ({why}); choose another --name; nothing was restored",
            at.place
        ))),
        None => Ok(()),
    }
}

/// How one restore goes: the document being filled, its clock, and its operation record.
struct Run<'a> {
    app: &'a App,
    report: RestoreReport,
    started: Option<Instant>,
}

impl<'a> Run<'a> {
    async fn begin(app: &'a App, ready: &Ready<'_>) -> Result<Run<'a>, AppError> {
        app.store
            .begin_operation(&Operation {
                id: ready.restore_id.clone(),
                kind: OperationKind::Restore,
                policy: ready.policy.name.clone(),
                status: "Running".into(),
                started_at: utc_now(),
                ended_at: None,
                holder: app.holder.clone(),
                document: None,
            })
            .await?;
        Ok(Run {
            app,
            report: RestoreReport {
                restore_id: ready.restore_id.clone(),
                policy: ready.policy.name.clone(),
                resource: ResourceRef {
                    resource_type: ready.point.point.resource_type,
                    id: ready.point.point.resource_id.clone(),
                },
                point: PointRef {
                    id: ready.point.id.0,
                    created_at: ready.point.point.created_at.clone(),
                },
                account: ready.at.place.account.to_string(),
                region: ready.at.place.region.clone(),
                status: RestoreStatus::Success,
                seconds: 0.0,
                created: Vec::new(),
                messages: ready.messages.clone(),
            },
            started: None,
        })
    }

    /// The first call that makes something starts the clock.
    fn making(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }

    fn made(&mut self, kind: CreatedKind, id: &str, state: &str) {
        self.report.created.push(Created {
            kind,
            id: id.to_owned(),
            state: state.to_owned(),
        });
    }

    fn set_state(&mut self, id: &str, state: &str) {
        if let Some(c) = self.report.created.iter_mut().find(|c| c.id == id) {
            c.state = state.to_owned();
        }
    }

    fn fail(&mut self, message: String) {
        self.report.status = RestoreStatus::Failed;
        self.report.messages.push(message);
    }

    async fn end(mut self) -> Result<RestoreReport, AppError> {
        self.report.seconds = self
            .started
            .map_or(0.0, |s| (s.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        if self.report.status == RestoreStatus::Failed && !self.report.created.is_empty() {
            self.report.messages.push(format!(
                "what this restore made is left as it is, tagged {RESTORE_TAG}={}: `snaprelay \
                 gc` lists it, `gc --yes` deletes it",
                self.report.restore_id
            ));
        }
        let document = serde_json::to_string(&self.report).unwrap_or_default();
        self.app
            .store
            .end_operation(
                &self.report.restore_id,
                self.report.status.as_str(),
                &utc_now(),
                &document,
            )
            .await?;
        Ok(self.report)
    }
}

/// Where a restored DB instance or cluster goes in the place: what the place holds of the
/// recorded and default groups, then [`network::db_network`]'s choice. `Err`: invalid input
/// (nowhere to go), or the place could not be read.
async fn db_network_there(
    app: &App,
    at: &Where,
    options: &RestoreOptions,
    recorded: network::RecordedDbNetwork<'_>,
) -> Result<network::DbNetwork, AppError> {
    let read = |e: CloudError| AppError::of_cloud(&e, "nothing was restored");
    let groups = network::db_candidates(options, recorded, &at.defaults);
    let found = look_in(app, at, (Vec::new(), groups, Vec::new())).await?;
    db_network_in(app, at, options, recorded, &found)
        .await
        .map_err(read)?
        .map_err(|why| AppError::invalid(format!("{why}; nothing was restored")))
}

/// A recorded DB parameter or option group, used only where it exists in the place; an
/// engine default (`default.…`, `default:…`) is left to RDS, which picks the target's own.
async fn optional_group(
    what: &str,
    recorded: Option<&String>,
    default_prefix: &str,
    exists: impl std::future::Future<Output = Result<bool, CloudError>>,
    place: &Place,
    messages: &mut Vec<String>,
) -> Result<Option<String>, CloudError> {
    let Some(group) = recorded.filter(|g| !g.starts_with(default_prefix)) else {
        return Ok(None);
    };
    if exists.await? {
        return Ok(Some(group.clone()));
    }
    messages.push(format!(
        "{what} {group} does not exist in {place}: the engine's default is used"
    ));
    Ok(None)
}

async fn restore_instance(
    app: &App,
    ready: Ready<'_>,
    config: &Ec2Config,
    options: &RestoreOptions,
    waiting: Waiting,
    progress: ProgressFn<'_>,
) -> Result<RestoreReport, AppError> {
    let at = &ready.at;
    let region = at.place.region.as_str();
    let found = look_around(app, at, options, Some(config)).await?;
    let net =
        network::instance_network(options, config, &at.defaults, &found, &at.place, &at.field)
            .map_err(|why| AppError::invalid(format!("{why}; nothing was restored")))?;
    let instance_type = options
        .instance_type
        .clone()
        .or_else(|| config.instance.instance_type.clone())
        .ok_or_else(|| {
            AppError::invalid(
                "the restore point does not record the instance type: give --instance-type; \
                 nothing was restored",
            )
        })?;
    let tags = ready.tags();
    let image = image_request(
        config,
        &ready.name,
        &format!(
            "snaprelay restore {} of {} (restore point {})",
            ready.restore_id, ready.point.point.resource_id, ready.point.id.0
        ),
        &tags,
    )
    .map_err(|why| AppError::invalid(format!("{why}; nothing was restored")))?;
    refuse_taken_name(app, &ready).await?;

    let cloud = app.cloud.as_ref();
    let mut run = Run::begin(app, &ready).await?;
    run.report.messages.extend(net.messages.clone());
    run.making();
    progress(&format!("registering image {} in {}", ready.name, at.place));
    let image_id = match cloud.register_image(&at.access, region, &image).await {
        Ok(id) => id,
        Err(e) => {
            run.fail(format!("RegisterImage: {e}"));
            return run.end().await;
        }
    };
    run.made(CreatedKind::Image, &image_id, "available");
    progress(&format!("launching {instance_type} from {image_id}"));
    let launch = launch_request(&image_id, &instance_type, &net, &tags, &ready.restore_id);
    // The image was just registered; the launch's ClientToken makes a retry launch nothing
    // twice.
    let launched = once_visible("InvalidAMIID.NotFound", || {
        cloud.run_instance(&at.access, region, &launch)
    })
    .await;
    if !options.keep_image {
        match cloud.deregister_image(&at.access, region, &image_id).await {
            Ok(()) => run.set_state(&image_id, "deregistered"),
            Err(e) => run.report.messages.push(format!(
                "image {image_id} could not be deregistered ({e}); it pins the replica's \
                 snapshots against retention until it is"
            )),
        }
    }
    let machine = match launched {
        Ok(m) => m,
        Err(e) => {
            run.fail(format!("RunInstances: {e}"));
            return run.end().await;
        }
    };
    run.made(CreatedKind::Instance, &machine.id, &machine.state);
    if options.no_wait {
        return run.end().await;
    }
    let id = machine.id.clone();
    let waited = until_running(
        app,
        at,
        &id,
        waiting,
        Instant::now(),
        &format!("instance {id}"),
        progress,
    )
    .await;
    match waited {
        Ok(m) => {
            run.set_state(&id, &m.state);
            for v in &m.volumes {
                run.made(CreatedKind::Volume, &v.volume_id, "in-use");
            }
            progress(&format!("instance {id} is running"));
        }
        Err(why) => run.fail(why),
    }
    run.end().await
}

/// Refuses the flags of `given` that are set and apply only to `--as instance`: the restore
/// goes `into` a place they have no meaning for, and they would be silently dropped.
fn refuse_instance_only(given: &[(&str, bool)], into: &str) -> Result<(), AppError> {
    let set: Vec<&str> = given
        .iter()
        .filter_map(|(flag, set)| set.then_some(*flag))
        .collect();
    if set.is_empty() {
        return Ok(());
    }
    Err(AppError::invalid(format!(
        "{} appl{} only to --as instance; {into}; nothing was restored",
        set.join(", "),
        if set.len() == 1 { "ies" } else { "y" }
    )))
}

async fn restore_volumes(
    app: &App,
    ready: Ready<'_>,
    options: &RestoreOptions,
    waiting: Waiting,
    progress: ProgressFn<'_>,
) -> Result<RestoreReport, AppError> {
    let at = &ready.at;
    let region = at.place.region.as_str();
    let config = ready.point.point.config.as_ref().and_then(|c| c.ec2());
    let cloud = app.cloud.as_ref();
    if let Some(z) = &options.availability_zone {
        // A role that may not list the zones gets the check by name only, and CreateVolume
        // has the last word, as before the zones were looked up.
        let zones = match cloud.availability_zones(&at.access, region).await {
            Ok(zones) => Some(zones),
            Err(e) if e.is_access_denied() => {
                progress(&format!(
                    "the zones of {region} could not be listed ({e}): --availability-zone \
                     {z} is checked by its name only"
                ));
                None
            }
            Err(e) => return Err(AppError::of_cloud(&e, "nothing was restored")),
        };
        let known = match &zones {
            Some(zones) => zones.contains(z),
            None => z.starts_with(region),
        };
        if !known {
            return Err(AppError::invalid(format!(
                "--availability-zone {z}: not a zone of {region}{}; nothing was restored",
                zones
                    .map(|zones| format!(" (it has {})", zones.join(", ")))
                    .unwrap_or_default()
            )));
        }
    }
    let zone = match &options.availability_zone {
        Some(z) => z.clone(),
        None => volume_zone(app, at, config)
            .await
            .map_err(|e| AppError::of_cloud(&e, "nothing was restored"))?,
    };
    let tags = ready.tags();
    let requests = volume_requests(&ready.point, config, &zone, &tags, &ready.restore_id);
    if requests.is_empty() {
        return Err(AppError::invalid(format!(
            "restore point {} holds no snapshot; nothing was restored",
            ready.point.id.0
        )));
    }
    let mut run = Run::begin(app, &ready).await?;
    run.making();
    let mut made = Vec::new();
    for request in &requests {
        progress(&format!(
            "creating a volume of {} in {zone}",
            request.snapshot_id
        ));
        match cloud.create_volume(&at.access, region, request).await {
            Ok(v) => {
                run.made(CreatedKind::Volume, &v.id, &v.state);
                made.push(v.id);
            }
            Err(e) => {
                run.fail(format!("CreateVolume of {}: {e}", request.snapshot_id));
                return run.end().await;
            }
        }
    }
    if options.no_wait {
        return run.end().await;
    }
    let what = format!("{} volume(s)", made.len());
    let waited = until_available(app, at, &made, waiting, Instant::now(), &what, progress).await;
    match waited {
        Ok(found) => {
            for v in found {
                run.set_state(&v.id, &v.state);
            }
        }
        Err(why) => run.fail(why),
    }
    run.end().await
}

async fn restore_db(
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
    let fallback = RdsConfig::default();
    let config: &RdsConfig = ready
        .point
        .point
        .config
        .as_ref()
        .and_then(|c| c.rds())
        .unwrap_or(&fallback);
    let net = db_network_there(app, at, options, config.into()).await?;
    let mut messages = net.messages.clone();
    let parameter_group = optional_group(
        "DB parameter group",
        config.db.db_parameter_group.as_ref(),
        "default.",
        cloud.db_parameter_group_exists(
            &at.access,
            region,
            config.db.db_parameter_group.as_deref().unwrap_or_default(),
        ),
        &at.place,
        &mut messages,
    )
    .await
    .map_err(read)?;
    let option_group = optional_group(
        "option group",
        config.db.option_group.as_ref(),
        "default:",
        cloud.option_group_exists(
            &at.access,
            region,
            config.db.option_group.as_deref().unwrap_or_default(),
        ),
        &at.place,
        &mut messages,
    )
    .await
    .map_err(read)?;
    let tags = ready.tags();
    let request = db_request(
        &ready.point,
        ready.point.point.config.as_ref().and_then(|c| c.rds()),
        &ready.name,
        options.db_instance_class.clone(),
        &net,
        parameter_group,
        option_group,
        config.db.multi_az.unwrap_or(false),
        &tags,
    )
    .map_err(|why| AppError::invalid(format!("{why}; nothing was restored")))?;
    // Without a recorded class (a point of an older version), RDS takes the snapshot's.
    refuse_taken_name(app, &ready).await?;

    let mut run = Run::begin(app, &ready).await?;
    run.report.messages.extend(messages);
    run.making();
    progress(&format!(
        "restoring DB instance {} in {}",
        ready.name, at.place
    ));
    let db = match cloud
        .restore_db_instance(&at.access, region, &request)
        .await
    {
        Ok(db) => db,
        Err(e) => {
            run.fail(format!("RestoreDBInstanceFromDBSnapshot: {e}"));
            return run.end().await;
        }
    };
    run.made(CreatedKind::DbInstance, &db.id, &db.status);
    if options.no_wait {
        return run.end().await;
    }
    let what = format!("DB instance {}", db.id);
    let waited =
        until_db_available(app, at, &db.id, waiting, Instant::now(), &what, progress).await;
    match waited {
        Ok(d) => run.set_state(&d.id, &d.status),
        Err(why) => run.fail(why),
    }
    run.end().await
}
