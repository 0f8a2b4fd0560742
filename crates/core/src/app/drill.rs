//! `drill` (SPEC 6.3): restore the newest complete point of each resource in each place as a
//! temporary, isolated resource, check it, time it, and delete everything it made. A drill
//! holds the policy's lease (no session, retention or other drill of the policy meanwhile),
//! removes first what earlier drills left, and records its result per restore point.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use tokio::sync::Semaphore;

use crate::config::Ec2Config;
use crate::model::{ResourceType, SnapshotKind};
use crate::policy::Policy;
use crate::ports::{CloudError, Find, Operation, OperationKind, PointFilter};
use crate::report::LastDrill;
use crate::report::RecordedRestorePoint;
use crate::restore::build::{
    cluster_request, db_request, image_request, is_serverless_v1, launch_request, made_tags,
    volume_requests, writer_class, writer_request,
};
use crate::restore::drill::{
    Check, DrillReport, DrillResult, DrillStatus, checks, cluster_checks, db_checks,
    instance_checks, smallest_aurora_class, smallest_of_family, volume_checks,
};
use crate::restore::network::{self, Found};
use crate::restore::{
    Created, CreatedKind, DRILL_TAG, PlaceChoice, PointChoice, ResourceRef, RestoreOptions,
    choose_point, new_drill_id,
};
use crate::runtime::clock::utc_now;

use super::restore::{
    ProgressFn, SERVERLESS_V1, Waiting, Where, db_network_in, look_around, make_cluster,
    once_visible, pick_place, places, until_available, until_db_available, until_running,
    volume_zone,
};
use super::{App, AppError, hold_policy, leftovers, still_running};

/// How long a drill waits for its instances and DB instances to be gone before deleting their
/// volumes and groups: a DB instance takes minutes to delete, whatever the drill's timeout.
const CLEANUP_PATIENCE: Duration = Duration::from_secs(30 * 60);

/// What `drill` is asked (SPEC 6.3).
#[derive(Clone, Debug)]
pub struct DrillOptions {
    /// Only this resource; `None`: every resource of the policy with restore points.
    pub resource: Option<String>,
    /// `Default`: every target.
    pub place: PlaceChoice,
    pub keep: bool,
    pub small: bool,
    /// Per resource: from the first restore call to usable and checked.
    pub timeout: Duration,
    /// Restores at once per place.
    pub concurrency: usize,
    /// The drill's id (the API answers it before the drill has begun); `None`: a fresh one.
    pub id: Option<String>,
}

impl Default for DrillOptions {
    fn default() -> Self {
        Self {
            resource: None,
            place: PlaceChoice::Default,
            keep: false,
            small: false,
            timeout: Duration::from_secs(60 * 60),
            concurrency: 2,
            id: None,
        }
    }
}

/// `snaprelay drill`. `Err`: the drill did not begin (invalid input, the lease held by a
/// session or another drill, the state or AWS unreadable).
pub async fn drill(
    app: &App,
    policy: &Policy,
    options: &DrillOptions,
    poll: Duration,
    progress: ProgressFn<'_>,
) -> Result<DrillReport, AppError> {
    let store = app.store.as_ref();
    let Some(lease) = hold_policy(app, &policy.name, true).await? else {
        return Err(still_running(store, &policy.name).await);
    };
    let ttl = app.lease_ttl;
    let result = tokio::select! {
        r = drill_held(app, policy, options, poll, progress) => r,
        lost = super::run::keep(store, &lease, ttl) => Err(lost),
    };
    store.release_lease(lease).await?;
    result
}

async fn drill_held(
    app: &App,
    policy: &Policy,
    options: &DrillOptions,
    poll: Duration,
    progress: ProgressFn<'_>,
) -> Result<DrillReport, AppError> {
    let points = app
        .store
        .find_restore_points(&PointFilter {
            policy: Some(&policy.name),
            resource: options.resource.as_deref(),
            ..PointFilter::default()
        })
        .await?;
    if let Some(r) = &options.resource
        && points.is_empty()
    {
        return Err(AppError::invalid(format!(
            "--resource {r}: policy {} has no restore point of it; nothing was drilled",
            policy.name
        )));
    }
    let source_region = points
        .iter()
        .rev()
        .find(|p| p.point.kind == SnapshotKind::Source)
        .map(|p| p.point.place.region.clone());
    let all = places(app, policy, None, source_region.as_slice()).await?;
    let chosen: Vec<Where> = match &options.place {
        PlaceChoice::Default => all
            .iter()
            .filter(|w| w.kind == SnapshotKind::Replica)
            .cloned()
            .collect(),
        choice => vec![pick_place(&all, choice, None)?.clone()],
    };
    // Resources in the order their first point was made.
    let mut resources: Vec<(ResourceType, String)> = Vec::new();
    for p in &points {
        let r = (p.point.resource_type, p.point.resource_id.clone());
        if !resources.contains(&r) {
            resources.push(r);
        }
    }

    let drill_id = options.id.clone().unwrap_or_else(new_drill_id);
    let started_at = utc_now();
    app.store
        .begin_operation(&Operation {
            id: drill_id.clone(),
            kind: OperationKind::Drill,
            policy: policy.name.clone(),
            status: "Running".into(),
            started_at: started_at.clone(),
            ended_at: None,
            holder: app.holder.clone(),
            document: None,
        })
        .await?;
    let mut messages = Vec::new();

    // What earlier drills left: no drill of the policy runs but this one (it holds the lease).
    for at in &chosen {
        match leftovers::find(app, at, DRILL_TAG, &policy.name).await {
            Ok(left) => {
                let mut known = Vec::new();
                for l in left.into_iter().filter(|l| l.made_by != drill_id) {
                    // Another installation's drill of a policy of the same name is not ours.
                    match app.store.operation(&l.made_by).await {
                        Ok(Some(_)) => known.push(l),
                        _ => messages.push(format!(
                            "{} {} in {} was made by drill {}, which this state does not \
                             know: left alone",
                            l.id, l.state, at.place, l.made_by
                        )),
                    }
                }
                let left = known;
                if left.is_empty() {
                    continue;
                }
                progress(&format!(
                    "removing {} thing(s) earlier drills left in {}",
                    left.len(),
                    at.place
                ));
                let problems = leftovers::remove(app, at, &left, CLEANUP_PATIENCE, poll).await;
                messages.push(format!(
                    "removed what earlier drills left in {}: {}",
                    at.place,
                    left.iter()
                        .map(|l| l.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                messages.extend(problems);
            }
            Err(e) => messages.push(format!(
                "could not look for what earlier drills left in {}: {e}",
                at.place
            )),
        }
    }

    let ctx = Drill {
        app,
        policy,
        drill_id: &drill_id,
        options,
        waiting: Waiting {
            poll,
            timeout: options.timeout,
        },
        progress,
    };
    let mut jobs = Vec::new();
    let mut n = 0usize;
    for at in &chosen {
        let gate = Arc::new(Semaphore::new(options.concurrency.max(1)));
        for (resource_type, id) in &resources {
            n += 1;
            let gate = gate.clone();
            let ctx = &ctx;
            let points = &points;
            jobs.push(async move {
                let _slot = gate.acquire().await;
                ctx.one(at, *resource_type, id, points, n).await
            });
        }
    }
    let results: Vec<DrillResult> = futures_util::future::join_all(jobs).await;

    for r in &results {
        if let Some(point) = r.point_id {
            app.store
                .record_drill_of(
                    crate::ids::RestorePointId(point),
                    &LastDrill {
                        drill_id: drill_id.clone(),
                        status: r.status.as_str().to_owned(),
                        rto_seconds: r.rto_seconds,
                        at: utc_now(),
                    },
                )
                .await?;
        }
    }
    let status = if !results.is_empty() && results.iter().all(|r| r.status == DrillStatus::Passed) {
        DrillStatus::Passed
    } else {
        DrillStatus::Failed
    };
    if results.is_empty() {
        messages.push("nothing to drill: the policy has no restore point in these places".into());
    }
    let report = DrillReport {
        drill_id: drill_id.clone(),
        policy: policy.name.clone(),
        status,
        started_at,
        ended_at: utc_now(),
        results,
        messages,
    };
    let document = serde_json::to_string(&report).unwrap_or_default();
    app.store
        .end_operation(&drill_id, status.as_str(), &report.ended_at, &document)
        .await?;
    Ok(report)
}

/// One drill under way.
struct Drill<'a> {
    app: &'a App,
    policy: &'a Policy,
    drill_id: &'a str,
    options: &'a DrillOptions,
    waiting: Waiting,
    progress: ProgressFn<'a>,
}

/// What a restore made and how it stood when last seen.
#[derive(Default)]
struct Made {
    created: Vec<Created>,
    /// From the first call that made something.
    started: Option<Instant>,
    rto: Option<f64>,
}

impl Made {
    fn add(&mut self, kind: CreatedKind, id: &str, state: &str) {
        self.created.push(Created {
            kind,
            id: id.to_owned(),
            state: state.to_owned(),
        });
    }

    fn usable(&mut self) {
        self.rto = self
            .started
            .map(|s| (s.elapsed().as_secs_f64() * 10.0).round() / 10.0);
    }
}

impl Drill<'_> {
    async fn one(
        &self,
        at: &Where,
        resource_type: ResourceType,
        resource_id: &str,
        points: &[RecordedRestorePoint],
        n: usize,
    ) -> DrillResult {
        let mut result = DrillResult {
            resource: ResourceRef {
                resource_type,
                id: resource_id.to_owned(),
            },
            point_id: None,
            account: at.place.account.to_string(),
            region: at.place.region.clone(),
            status: DrillStatus::Failed,
            rto_seconds: None,
            checks: Vec::new(),
            cleaned_up: true,
            messages: Vec::new(),
            created: Vec::new(),
        };
        let point = match choose_point(points, resource_id, &at.place, at.kind, PointChoice::Latest)
        {
            Ok(p) => p,
            Err(why) => {
                result.messages.push(why);
                return result;
            }
        };
        result.point_id = Some(point.id.0);
        let name = format!("snaprelay-drill-{}-{n}", self.drill_id);
        (self.progress)(&format!(
            "drilling {resource_id} from restore point {} in {} as {name}",
            point.id.0, at.place
        ));
        let mut made = Made::default();
        let outcome = match resource_type {
            ResourceType::Rds => self.db(at, point, &name, &mut made).await,
            ResourceType::Aurora => {
                self.cluster(at, point, &name, &mut made, &mut result.messages)
                    .await
            }
            ResourceType::Ec2 => match point.point.config.as_ref().and_then(|c| c.ec2()) {
                Some(config) if config.is_plain_linux() => {
                    self.instance(at, point, config, &name, &mut made).await
                }
                other => {
                    result.messages.push(match other {
                        Some(c) => format!(
                            "{} ({}) cannot be rebuilt as an instance: its volumes are drilled",
                            resource_id,
                            c.instance.platform_details.as_deref().unwrap_or("?")
                        ),
                        None => "the restore point was recorded without the instance's \
                                 configuration: its volumes are drilled"
                            .to_owned(),
                    });
                    self.volumes(at, point, other, &name, &mut made).await
                }
            },
        };
        match outcome {
            Ok(checks) => result.checks = checks,
            Err(why) => result.messages.push(why),
        }
        result.rto_seconds = made.rto;
        if self.options.keep {
            result.cleaned_up = false;
            result.messages.push(format!(
                "kept as asked (--keep): `snaprelay gc --yes` or the next drill deletes what is \
                 tagged {DRILL_TAG}={}",
                self.drill_id
            ));
        } else if !made.created.is_empty() {
            let left: Vec<leftovers::Leftover> = made
                .created
                .iter()
                .filter(|c| c.state != "deregistered")
                .map(|c| leftovers::Leftover {
                    kind: c.kind,
                    id: c.id.clone(),
                    state: c.state.clone(),
                    account: at.place.account.to_string(),
                    region: at.place.region.clone(),
                    tag: DRILL_TAG,
                    made_by: self.drill_id.to_owned(),
                })
                .collect();
            (self.progress)(&format!("{name}: deleting what the drill made"));
            let problems =
                leftovers::remove(self.app, at, &left, CLEANUP_PATIENCE, self.waiting.poll).await;
            result.cleaned_up = problems.is_empty();
            result.messages.extend(problems);
        }
        result.created = made.created;
        result.settle(self.options.keep);
        (self.progress)(&format!(
            "{resource_id} in {}: {}",
            at.place,
            result.status.as_str()
        ));
        result
    }

    fn tags(&self, name: &str) -> Vec<crate::model::Tag> {
        made_tags(DRILL_TAG, self.drill_id, &self.policy.name, name)
    }

    /// A security group with no inbound and no outbound rule, in `vpc`: a drill's restored
    /// copy of production never talks to anything.
    async fn isolated_group(
        &self,
        at: &Where,
        vpc: &str,
        name: &str,
        tags: &[crate::model::Tag],
        made: &mut Made,
    ) -> Result<String, String> {
        let cloud = self.app.cloud.as_ref();
        let region = at.place.region.as_str();
        let group = cloud
            .create_security_group(
                &at.access,
                region,
                vpc,
                name,
                "snaprelay drill: no inbound, no outbound",
                tags,
            )
            .await
            .map_err(|e| format!("CreateSecurityGroup: {e}"))?;
        made.add(CreatedKind::SecurityGroup, &group, "exists");
        // The group was just made: EC2 may not know it yet for a moment.
        once_visible("InvalidGroup.NotFound", || {
            cloud.revoke_all_egress(&at.access, region, &group)
        })
        .await
        .map_err(|e| format!("RevokeSecurityGroupEgress of {group}: {e}"))?;
        Ok(group)
    }

    async fn instance(
        &self,
        at: &Where,
        point: &RecordedRestorePoint,
        config: &Ec2Config,
        name: &str,
        made: &mut Made,
    ) -> Result<Vec<Check>, String> {
        let cloud = self.app.cloud.as_ref();
        let region = at.place.region.as_str();
        let options = RestoreOptions::default();
        let found = look_around(self.app, at, &options, Some(config))
            .await
            .map_err(|e| e.message)?;
        let mut net = network::instance_network(
            &options,
            config,
            &at.defaults,
            &found,
            &at.place,
            &at.field,
        )?;
        let tags = self.tags(name);
        let instance_type = config
            .instance
            .instance_type
            .clone()
            .map(|t| {
                if self.options.small {
                    smallest_of_family(&t)
                } else {
                    t
                }
            })
            .ok_or("the restore point does not record the instance type")?;
        let image = image_request(
            config,
            name,
            &format!("snaprelay drill {}", self.drill_id),
            &tags,
        )?;
        let group = self
            .isolated_group(at, &net.subnet.vpc_id, name, &tags, made)
            .await?;
        // The RTO counts from the first restore call, the image's.
        made.started = Some(Instant::now());
        net.security_group_ids = vec![group];
        // A drill needs no way in: no key pair, no profile.
        net.key_name = None;
        net.iam_instance_profile_arn = None;
        let image_id = cloud
            .register_image(&at.access, region, &image)
            .await
            .map_err(|e| format!("RegisterImage: {e}"))?;
        made.add(CreatedKind::Image, &image_id, "available");
        let launch = launch_request(&image_id, &instance_type, &net, &tags, name);
        let launched = once_visible("InvalidAMIID.NotFound", || {
            cloud.run_instance(&at.access, region, &launch)
        })
        .await;
        // Deregistered at once: an image would pin the replica's snapshots against retention.
        if cloud
            .deregister_image(&at.access, region, &image_id)
            .await
            .is_ok()
            && let Some(c) = made.created.iter_mut().find(|c| c.id == image_id)
        {
            c.state = "deregistered".into();
        }
        let machine = launched.map_err(|e| format!("RunInstances: {e}"))?;
        made.add(CreatedKind::Instance, &machine.id, &machine.state);
        let since = made.started.unwrap_or_else(Instant::now);
        let what = format!("{name}: instance {}", machine.id);
        let running = until_running(
            self.app,
            at,
            &machine.id,
            self.waiting,
            since,
            &what,
            self.progress,
        )
        .await;
        let m = match running {
            Ok(m) => m,
            Err(why) => {
                return Ok(vec![Check::new(checks::INSTANCE_RUNNING, false, why)]);
            }
        };
        made.usable();
        let volume_ids: Vec<String> = m.volumes.iter().map(|v| v.volume_id.clone()).collect();
        for id in &volume_ids {
            made.add(CreatedKind::Volume, id, "in-use");
        }
        let volumes = self.volume_facts(at, &volume_ids).await?;
        Ok(instance_checks(
            config,
            &m.state,
            &volumes,
            &replica_keys(point),
        ))
    }

    async fn volume_facts(
        &self,
        at: &Where,
        ids: &[String],
    ) -> Result<Vec<(String, i64, Option<String>)>, String> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self
            .app
            .cloud
            .find_volumes(&at.access, &at.place.region, &Find::Ids(ids))
            .await
            .map_err(|e| format!("DescribeVolumes: {e}"))?;
        Ok(found
            .into_iter()
            .map(|v| (v.id, v.size_gib, v.kms_key_id))
            .collect())
    }

    async fn volumes(
        &self,
        at: &Where,
        point: &RecordedRestorePoint,
        config: Option<&Ec2Config>,
        name: &str,
        made: &mut Made,
    ) -> Result<Vec<Check>, String> {
        let cloud = self.app.cloud.as_ref();
        let region = at.place.region.as_str();
        let zone = volume_zone(self.app, at, config)
            .await
            .map_err(|e| format!("DescribeVpcs: {e}"))?;
        let tags = self.tags(name);
        let requests = volume_requests(point, config, &zone, &tags, name);
        made.started = Some(Instant::now());
        let mut ids = Vec::new();
        for request in &requests {
            let v = cloud
                .create_volume(&at.access, region, request)
                .await
                .map_err(|e| format!("CreateVolume of {}: {e}", request.snapshot_id))?;
            made.add(CreatedKind::Volume, &v.id, &v.state);
            ids.push(v.id);
        }
        let since = made.started.unwrap_or_else(Instant::now);
        let what = format!("{name}: {} volume(s)", ids.len());
        let available = until_available(
            self.app,
            at,
            &ids,
            self.waiting,
            since,
            &what,
            self.progress,
        )
        .await;
        let found = match available {
            Ok(found) => found,
            Err(why) => return Ok(vec![Check::new(checks::VOLUME_AVAILABLE, false, why)]),
        };
        made.usable();
        let recorded = config
            .cloned()
            .unwrap_or_else(|| Ec2Config::of_snapshots(&point.point.place));
        let facts: Vec<(String, i64, Option<String>)> = found
            .iter()
            .map(|v| (v.id.clone(), v.size_gib, v.kms_key_id.clone()))
            .collect();
        let mut out = vec![Check::new(
            checks::VOLUME_AVAILABLE,
            true,
            format!("{} volume(s) available", found.len()),
        )];
        out.extend(volume_checks(&recorded, &facts, &replica_keys(point)));
        Ok(out)
    }

    async fn db(
        &self,
        at: &Where,
        point: &RecordedRestorePoint,
        name: &str,
        made: &mut Made,
    ) -> Result<Vec<Check>, String> {
        let cloud = self.app.cloud.as_ref();
        let region = at.place.region.as_str();
        let config = point.point.config.as_ref().and_then(|c| c.rds());
        let fallback = crate::config::RdsConfig::default();
        let recorded = config.unwrap_or(&fallback);
        let (mut net, vpc) = self.db_network(at, recorded.into()).await?;
        let tags = self.tags(name);
        let group = self.isolated_group(at, &vpc, name, &tags, made).await?;
        made.started = Some(Instant::now());
        net.vpc_security_group_ids = vec![group];
        let class = recorded.db.db_instance_class.clone().map(|c| {
            if self.options.small {
                smallest_of_family(&c)
            } else {
                c
            }
        });
        // Without a recorded class (a point of an older version), RDS takes the snapshot's.
        let request = db_request(point, config, name, class, &net, None, None, false, &tags)?;
        let db = cloud
            .restore_db_instance(&at.access, region, &request)
            .await
            .map_err(|e| format!("RestoreDBInstanceFromDBSnapshot: {e}"))?;
        made.add(CreatedKind::DbInstance, &db.id, &db.status);
        let since = made.started.unwrap_or_else(Instant::now);
        let what = format!("{name}: DB instance");
        let available = until_db_available(
            self.app,
            at,
            &db.id,
            self.waiting,
            since,
            &what,
            self.progress,
        )
        .await;
        match available {
            Ok(d) => {
                made.usable();
                Ok(db_checks(
                    config,
                    &d.status,
                    &d.engine,
                    d.engine_version.as_deref(),
                ))
            }
            Err(why) => Ok(vec![Check::new(checks::DB_AVAILABLE, false, why)]),
        }
    }
}

impl Drill<'_> {
    /// Where a drill's DB instance or cluster goes (as a restore's, without flags), and the
    /// VPC of that subnet group, where the drill's group goes.
    async fn db_network(
        &self,
        at: &Where,
        recorded: network::RecordedDbNetwork<'_>,
    ) -> Result<(network::DbNetwork, String), String> {
        let read = |e: CloudError| e.to_string();
        let default_network = self
            .app
            .cloud
            .default_network(&at.access, &at.place.region)
            .await
            .map_err(read)?;
        let found = Found {
            default_network,
            ..Found::default()
        };
        let net = db_network_in(self.app, at, &RestoreOptions::default(), recorded, &found)
            .await
            .map_err(read)??;
        let vpc = net
            .vpc_id
            .clone()
            .ok_or("no VPC to put the drill's security group in")?;
        Ok((net, vpc))
    }

    /// An Aurora cluster and its writer, in the drill's group, never public.
    async fn cluster(
        &self,
        at: &Where,
        point: &RecordedRestorePoint,
        name: &str,
        made: &mut Made,
        messages: &mut Vec<String>,
    ) -> Result<Vec<Check>, String> {
        let config = point.point.config.as_ref().and_then(|c| c.aurora()).ok_or(
            "the restore point was recorded without the cluster's configuration, whose \
                    engine RestoreDBClusterFromSnapshot requires",
        )?;
        let class = writer_class(config, None)
            .map(|c| {
                if self.options.small {
                    smallest_aurora_class(&c)
                } else {
                    c
                }
            })
            .ok_or("the restore point records no instance class of the cluster's writer")?;
        if is_serverless_v1(config) {
            messages.push(SERVERLESS_V1.to_owned());
        }
        let (mut net, vpc) = self.db_network(at, config.into()).await?;
        let tags = self.tags(name);
        let group = self.isolated_group(at, &vpc, name, &tags, made).await?;
        net.vpc_security_group_ids = vec![group];
        // The engine's default cluster parameter group: a drill proves the data restores,
        // whatever the tuning.
        let request = cluster_request(point, config, name, &net, None, &tags)?;
        let writer = writer_request(config, name, &class, &tags);
        let since = Instant::now();
        made.started = Some(since);
        let created = &mut made.created;
        let outcome = make_cluster(
            self.app,
            at,
            &request,
            &writer,
            true,
            self.waiting,
            since,
            self.progress,
            &mut |kind, id, state| Created::note(created, kind, id, state),
        )
        .await;
        match outcome {
            Ok((cluster, writer)) => {
                made.usable();
                Ok(cluster_checks(
                    config,
                    &cluster.status,
                    (&writer.id, &writer.status),
                    &cluster.engine,
                    cluster.engine_version.as_deref(),
                ))
            }
            // Made but never usable: the check that failed says why.
            Err(why)
                if made
                    .created
                    .iter()
                    .any(|c| c.kind == CreatedKind::DbCluster) =>
            {
                Ok(vec![Check::new(checks::DB_AVAILABLE, false, why)])
            }
            Err(why) => Err(why),
        }
    }
}

/// The keys of the point's snapshots: a restored volume must be under one of them.
fn replica_keys(point: &RecordedRestorePoint) -> Vec<Option<String>> {
    point
        .point
        .place
        .snapshots
        .iter()
        .map(|s| s.kms_key_id.clone())
        .collect()
}
