//! The places a restore or drill can go to (the policy's targets and its source), with the
//! credentials that act there, and what a place holds that a restore could use.

use crate::config::Ec2Config;
use crate::model::SnapshotKind;
use crate::plan::prepare::target_access;
use crate::policy::{Policy, RestoreDefaults};
use crate::ports::{Access, CloudError, Find};
use crate::restore::network::{self, Found};
use crate::restore::{Place, PlaceChoice, RestoreOptions, zone_like};

use super::super::{App, AppError};

/// A place of the policy a restore can go to, with the credentials that act there.
#[derive(Clone, Debug)]
pub(crate) struct Where {
    pub place: Place,
    pub access: Access,
    /// The kind of restore point that lives there.
    pub kind: SnapshotKind,
    /// `targets[N]` or `source`, for messages naming the policy.
    pub field: String,
    pub defaults: RestoreDefaults,
}

/// The places of the policy: each target, then the source in `source_regions`, each
/// with its account resolved as the credentials act in it.
pub(crate) async fn places(
    app: &App,
    policy: &Policy,
    role_arn: Option<&crate::ids::RoleArn>,
    source_regions: &[String],
) -> Result<Vec<Where>, AppError> {
    let cloud = app.cloud.as_ref();
    let source_access = Access::role(policy.source.role_arn.clone());
    let source_account = cloud
        .account_of(&source_access)
        .await
        .map_err(|e| AppError::of_cloud(&e, "nothing was restored"))?;
    let override_access = role_arn.map(|r| Access::role(Some(r.clone())));
    let mut places = Vec::new();
    for (i, t) in policy.targets.iter().enumerate() {
        let access = override_access
            .clone()
            .unwrap_or_else(|| target_access(t, &source_access, &source_account));
        let account = match t.declared_account() {
            Some(a) => a.clone(),
            None => cloud
                .account_of(&access)
                .await
                .map_err(|e| AppError::of_cloud(&e, "nothing was restored"))?,
        };
        places.push(Where {
            place: Place {
                account,
                region: t.region.clone(),
            },
            access,
            kind: SnapshotKind::Replica,
            field: format!("targets[{i}]"),
            defaults: t.restore.clone(),
        });
    }
    for region in source_regions {
        places.push(Where {
            place: Place {
                account: source_account.clone(),
                region: region.to_owned(),
            },
            access: override_access.clone().unwrap_or(source_access.clone()),
            kind: SnapshotKind::Source,
            field: "source".into(),
            defaults: RestoreDefaults::default(),
        });
    }
    Ok(places)
}

/// The place `choice` names among `places`.
pub(crate) fn pick_place<'a>(
    places: &'a [Where],
    choice: &PlaceChoice,
    point_place: Option<Place>,
) -> Result<&'a Where, AppError> {
    let source = || places.iter().find(|w| w.kind == SnapshotKind::Source);
    let found = match choice {
        PlaceChoice::Source => source().ok_or_else(|| {
            AppError::invalid(
                "--place source: the resource has no restore point in the source; nothing was \
                 restored",
            )
        })?,
        PlaceChoice::At { account, region } => places
            .iter()
            .find(|w| &w.place.account == account && &w.place.region == region)
            .ok_or_else(|| {
                AppError::invalid(format!(
                    "--place {account}/{region}: not a place of the policy (places: {}); \
                     nothing was restored",
                    places
                        .iter()
                        .map(|w| w.place.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        PlaceChoice::Default => match point_place {
            Some(p) => places.iter().find(|w| w.place == p).ok_or_else(|| {
                AppError::invalid(format!(
                    "--point: the point is in {p}, which is no longer a place of the policy; \
                         nothing was restored"
                ))
            })?,
            None => places.first().ok_or_else(|| {
                AppError::invalid("the policy has no target; name --place source")
            })?,
        },
    };
    Ok(found)
}

/// The zone volumes are made in: the recorded zone's letter in this Region, else its first
/// zone (from the default VPC's subnets), else its `a` zone, which every Region has.
pub(crate) async fn volume_zone(
    app: &App,
    at: &Where,
    config: Option<&Ec2Config>,
) -> Result<String, CloudError> {
    let region = at.place.region.as_str();
    let zones: Vec<String> = app
        .cloud
        .default_network(&at.access, region)
        .await?
        .map(|n| n.subnets.into_iter().map(|s| s.availability_zone).collect())
        .unwrap_or_default();
    Ok(zone_like(
        config.and_then(|c| c.instance.availability_zone.as_deref()),
        region,
        &zones,
    )
    .or_else(|| zones.iter().min().cloned())
    .unwrap_or_else(|| format!("{region}a")))
}

/// What the place holds of an instance's candidate network (see [`look_in`]).
pub(crate) async fn look_around(
    app: &App,
    at: &Where,
    options: &RestoreOptions,
    recorded: Option<&Ec2Config>,
) -> Result<Found, AppError> {
    look_in(
        app,
        at,
        network::candidates(options, recorded, &at.defaults),
    )
    .await
}

/// The place's default network, and those of the candidate subnets, security groups and key
/// pairs that exist there (none asked for, none looked up).
pub(crate) async fn look_in(
    app: &App,
    at: &Where,
    (subnets, groups, keys): (Vec<String>, Vec<String>, Vec<String>),
) -> Result<Found, AppError> {
    let cloud = app.cloud.as_ref();
    let region = at.place.region.as_str();
    let read = |e: CloudError| AppError::of_cloud(&e, "nothing was restored");
    Ok(Found {
        default_network: cloud
            .default_network(&at.access, region)
            .await
            .map_err(read)?,
        subnets: if subnets.is_empty() {
            Vec::new()
        } else {
            cloud
                .subnets(&at.access, region, &subnets)
                .await
                .map_err(read)?
        },
        security_groups: if groups.is_empty() {
            Vec::new()
        } else {
            cloud
                .find_security_groups(&at.access, region, &Find::Ids(&groups))
                .await
                .map_err(read)?
        },
        key_pairs: if keys.is_empty() {
            Vec::new()
        } else {
            cloud
                .key_pairs(&at.access, region, &keys)
                .await
                .map_err(read)?
        },
    })
}

/// The VPC of a DB subnet group in the place; `None` when it does not exist there (or is
/// `default`, the default VPC's group, which RDS takes when none is named).
async fn subnet_group_vpc(
    app: &App,
    at: &Where,
    group: Option<&String>,
) -> Result<Option<String>, CloudError> {
    match group {
        Some(g) if g != "default" => {
            app.cloud
                .db_subnet_group_vpc(&at.access, &at.place.region, g)
                .await
        }
        _ => Ok(None),
    }
}

/// The network a DB instance or cluster goes into ([`network::db_network`]), with the VPCs of
/// the recorded and of the default DB subnet group looked up in the place. The outer `Err` is
/// AWS not answering; the inner one, a choice that does not hold there.
pub(crate) async fn db_network_in(
    app: &App,
    at: &Where,
    options: &RestoreOptions,
    recorded: network::RecordedDbNetwork<'_>,
    found: &Found,
) -> Result<Result<network::DbNetwork, String>, CloudError> {
    let recorded_vpc = subnet_group_vpc(app, at, recorded.db_subnet_group).await?;
    let default_vpc = subnet_group_vpc(app, at, at.defaults.db_subnet_group.as_ref()).await?;
    Ok(network::db_network(
        options,
        recorded,
        &at.defaults,
        found,
        recorded_vpc.as_deref(),
        default_vpc.as_deref(),
        &at.place,
        &at.field,
    ))
}
