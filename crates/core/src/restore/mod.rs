//! Restoring from a restore point (SPEC 6.2): which point, in which place, as what, under
//! which name, and the document `restore --output json` prints. What is made, and how the
//! network of the place is chosen, is in [`build`] and [`network`]; the use case that runs
//! them is `app::restore`.

pub mod build;
pub mod drill;
pub mod network;

use serde::Serialize;

use crate::ids::{AccountId, RoleArn};
use crate::model::{ResourceType, SnapshotKind};
use crate::report::{PointStatus, RecordedRestorePoint};
use crate::runtime::clock::new_session_id;

/// The tag that marks what a restore made, valued with its restore id.
pub const RESTORE_TAG: &str = crate::model::tags::RESTORE;
/// The tag that marks what a drill made, valued with its drill id.
pub const DRILL_TAG: &str = crate::model::tags::DRILL;

/// What to restore as (`--as`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RestoreAs {
    /// An EC2 instance, from an image of the point's snapshots.
    Instance,
    /// One EBS volume per snapshot.
    Volumes,
    /// An RDS DB instance.
    Db,
}

impl RestoreAs {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "instance" => Some(Self::Instance),
            "volumes" => Some(Self::Volumes),
            "db" => Some(Self::Db),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Instance => "instance",
            Self::Volumes => "volumes",
            Self::Db => "db",
        }
    }

    /// Whether a resource of this type can be restored as this.
    pub fn fits(self, resource_type: ResourceType) -> bool {
        match resource_type {
            ResourceType::Ec2 => self != Self::Db,
            ResourceType::Rds | ResourceType::Aurora => self == Self::Db,
        }
    }
}

/// Which restore point (`--point`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PointChoice {
    /// The newest complete point of the resource in the place.
    #[default]
    Latest,
    /// The point of that number.
    Id(i64),
}

impl PointChoice {
    pub fn parse(s: &str) -> Option<Self> {
        if s == "latest" {
            return Some(Self::Latest);
        }
        s.parse::<i64>().ok().filter(|n| *n > 0).map(Self::Id)
    }
}

/// Where to restore (`--place`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PlaceChoice {
    /// The policy's first target (or, with `--point ID`, that point's place).
    #[default]
    Default,
    /// The source account, in the resource's Region.
    Source,
    /// `ACCOUNT/REGION`: a target of the policy, or the source.
    At { account: AccountId, region: String },
}

impl PlaceChoice {
    /// `source` or `ACCOUNT/REGION`.
    pub fn parse(s: &str) -> Option<Self> {
        if s == "source" {
            return Some(Self::Source);
        }
        let (account, region) = s.split_once('/')?;
        let account = AccountId::parse(account)?;
        crate::ids::is_region(region).then(|| Self::At {
            account,
            region: region.to_owned(),
        })
    }
}

/// What `restore` is asked, flags as given (SPEC 6.2).
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    pub resource_id: String,
    pub point: PointChoice,
    pub place: PlaceChoice,
    pub restore_as: Option<RestoreAs>,
    pub name: Option<String>,
    pub availability_zone: Option<String>,
    pub subnet: Option<String>,
    pub security_groups: Option<Vec<String>>,
    pub instance_type: Option<String>,
    pub db_instance_class: Option<String>,
    pub role_arn: Option<RoleArn>,
    pub keep_image: bool,
    pub no_wait: bool,
}

/// What a restore (or drill) made, as the JSON document lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Created {
    #[serde(rename = "type")]
    pub kind: CreatedKind,
    pub id: String,
    /// As AWS last said (`available`, `running`, ...); `deregistered`, `terminated`,
    /// `deleted` once it is gone.
    pub state: String,
}

impl Created {
    /// Notes in `created` that what is of `kind` and `id` is now `state`: its entry is updated,
    /// or added the first time. Kind and id together name it (an Aurora cluster and its writer
    /// share an identifier).
    pub fn note(created: &mut Vec<Created>, kind: CreatedKind, id: &str, state: &str) {
        match created.iter_mut().find(|c| c.kind == kind && c.id == id) {
            Some(c) => c.state = state.to_owned(),
            None => created.push(Created {
                kind,
                id: id.to_owned(),
                state: state.to_owned(),
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CreatedKind {
    #[serde(rename = "image")]
    Image,
    #[serde(rename = "instance")]
    Instance,
    #[serde(rename = "volume")]
    Volume,
    #[serde(rename = "db-instance")]
    DbInstance,
    #[serde(rename = "db-cluster")]
    DbCluster,
    #[serde(rename = "security-group")]
    SecurityGroup,
}

impl CreatedKind {
    /// Its name in the JSON documents (`image`, `db-instance`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Instance => "instance",
            Self::Volume => "volume",
            Self::DbInstance => "db-instance",
            Self::DbCluster => "db-cluster",
            Self::SecurityGroup => "security-group",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceRef {
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PointRef {
    pub id: i64,
    pub created_at: String,
}

/// `Success` or `Failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum RestoreStatus {
    Success,
    Failed,
}

impl RestoreStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::Failed => "Failed",
        }
    }
}

/// The document `restore --output json` prints (SPEC 6.2).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RestoreReport {
    pub restore_id: String,
    pub policy: String,
    pub resource: ResourceRef,
    pub point: PointRef,
    pub account: String,
    pub region: String,
    pub status: RestoreStatus,
    /// From the first call that made something to usable (or to the failure).
    pub seconds: f64,
    pub created: Vec<Created>,
    pub messages: Vec<String>,
}

/// Something a restore or drill made, found by its tag (`gc`, and a drill cleaning up after
/// earlier ones).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Remnant {
    #[serde(rename = "type")]
    pub kind: CreatedKind,
    pub id: String,
    pub state: String,
    pub account: String,
    pub region: String,
    /// `snaprelay:drill` or `snaprelay:restore`.
    pub tag: &'static str,
    /// The drill or restore id.
    pub made_by: String,
}

/// A new restore id (`r-20261205t011700z-3f9a`): sortable, lowercase, so that the default
/// name `snaprelay-restore-<id>` is a valid DB identifier.
pub fn new_restore_id() -> String {
    format!("r-{}", new_session_id().to_ascii_lowercase())
}

/// A new drill id (`d-…`), likewise.
pub fn new_drill_id() -> String {
    format!("d-{}", new_session_id().to_ascii_lowercase())
}

/// A place a restore point is in: an account and a Region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub account: AccountId,
    pub region: String,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.account, self.region)
    }
}

/// The restore point to restore from, among the recorded points of one resource: the one
/// named, else the newest complete one in `place` of the kind that lives there (a replica in
/// a target, the source point in the source).
pub fn choose_point<'a>(
    points: &'a [RecordedRestorePoint],
    resource_id: &str,
    place: &Place,
    kind: SnapshotKind,
    choice: PointChoice,
) -> Result<&'a RecordedRestorePoint, String> {
    let of_resource = points.iter().filter(|p| p.point.resource_id == resource_id);
    match choice {
        PointChoice::Id(id) => {
            let Some(point) = points.iter().find(|p| p.id.0 == id) else {
                return Err(format!("--point {id}: there is no restore point {id}"));
            };
            if point.point.resource_id != resource_id {
                return Err(format!(
                    "--point {id}: restore point {id} is of {}, not {resource_id}",
                    point.point.resource_id
                ));
            }
            if point.point.place.account != place.account.as_str()
                || point.point.place.region != place.region
            {
                return Err(format!(
                    "--point {id}: restore point {id} is in {}/{}, not {place}",
                    point.point.place.account, point.point.place.region
                ));
            }
            if point.status != PointStatus::Complete {
                return Err(format!(
                    "--point {id}: retention deleted restore point {id} (or some of its \
                     snapshots); choose another with `snaprelay restore-points`"
                ));
            }
            Ok(point)
        }
        PointChoice::Latest => of_resource
            .filter(|p| {
                p.status == PointStatus::Complete
                    && p.point.kind == kind
                    && p.point.place.account == place.account.as_str()
                    && p.point.place.region == place.region
            })
            .max_by(|a, b| {
                (a.point.created_at.as_str(), a.id.0).cmp(&(b.point.created_at.as_str(), b.id.0))
            })
            .ok_or_else(|| {
                format!("{resource_id} has no complete restore point in {place}; `snaprelay restore-points` lists them")
            }),
    }
}

/// Whether `name` can name everything a restore makes: an instance's `Name` tag, an AMI name
/// (3-128 characters) and a DB instance identifier (letters, digits, hyphens, 63 at most).
/// The narrowest rule, RDS's, is the one of them all, so one name fits every kind.
pub fn name_problem(name: &str) -> Option<String> {
    if name.len() < 3 {
        return Some("is shorter than 3 characters (an AMI name needs 3)".into());
    }
    if !crate::ids::is_db_identifier(name, crate::ids::DB_INSTANCE_ID_MAX) {
        return Some(format!(
            "is not a valid name: letters, digits and hyphens, starting with a letter, at most \
             {} characters, no two hyphens in a row and none at the end",
            crate::ids::DB_INSTANCE_ID_MAX
        ));
    }
    None
}

/// The Availability Zone of `region` with the letter of `recorded` (`us-east-1b` →
/// `eu-west-1b`), when the zone exists there.
pub fn zone_like(recorded: Option<&str>, region: &str, zones: &[String]) -> Option<String> {
    let letter =
        recorded?.strip_prefix(recorded?.trim_end_matches(|c: char| c.is_ascii_lowercase()))?;
    let zone = format!("{region}{letter}");
    zones.contains(&zone).then_some(zone)
}

#[cfg(test)]
mod tests;
