//! `snaprelay restore RESOURCE_ID [...]` (SPEC 6.2): flags in, the application's `restore`,
//! the document out. Exit code 0 `Success`, 1 `Failed`, 2 invalid input (nothing made).

use snaprelay_core::app::{Waiting, restore};
use snaprelay_core::ids::RoleArn;
use snaprelay_core::restore::{
    PlaceChoice, PointChoice, RestoreAs, RestoreOptions, RestoreReport, RestoreStatus,
};

use crate::output;
use crate::{Outcome, Pacing};

use super::{Settings, aws_app, emit, load_policy, open_existing_store, print_json};

/// The flags of `restore` (SPEC 6.2).
#[derive(clap::Args)]
pub struct Flags {
    /// The instance id, DB instance identifier or DB cluster identifier, as `restore-points`
    /// lists it.
    pub resource_id: String,
    /// The restore point number (`restore-points`), or `latest` (the newest complete one).
    #[arg(long, value_name = "ID|latest")]
    pub point: Option<String>,
    /// `source`, or ACCOUNT/REGION of a target. Default: the policy's first target.
    #[arg(long, value_name = "source|ACCOUNT/REGION")]
    pub place: Option<String>,
    /// What to restore as: instance or volumes (EC2, default instance), db (RDS, Aurora).
    #[arg(long = "as", value_name = "instance|volumes|db")]
    pub restore_as: Option<String>,
    /// The instance's Name tag, the image name, the volumes' Name tag, the DB instance
    /// identifier, or the Aurora cluster's (and its writer's) identifier. Default:
    /// snaprelay-restore-<restore id>.
    #[arg(long)]
    pub name: Option<String>,
    /// Where volumes are created (one of the Region's available zones, as
    /// DescribeAvailabilityZones names them). Default: the recorded zone's letter, else the first.
    #[arg(long, value_name = "AZ")]
    pub availability_zone: Option<String>,
    /// The subnet to launch into. Default: the recorded one where it exists, else the
    /// target's restore defaults, else the default VPC's.
    #[arg(long, value_name = "ID")]
    pub subnet: Option<String>,
    /// Security groups, comma-separated. Default: as for --subnet.
    #[arg(long, value_name = "ID,ID")]
    pub security_groups: Option<String>,
    /// Default: the recorded instance type.
    #[arg(long, value_name = "TYPE")]
    pub instance_type: Option<String>,
    /// Default: the recorded DB instance class (of an Aurora cluster, its writer's).
    #[arg(long, value_name = "CLASS")]
    pub db_instance_class: Option<String>,
    /// Act with this role instead of the place's (the target's role, the source's).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Keep the image an instance was launched from (it pins the replica's snapshots
    /// against retention while it exists).
    #[arg(long)]
    pub keep_image: bool,
    /// Return once everything is asked for, without waiting for it to be usable (an Aurora
    /// cluster is still waited for: its writer can only be added to an available cluster).
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub pacing: Pacing,
}

/// The flags checked: each bad one named with its value.
fn options(flags: Flags) -> Result<RestoreOptions, Outcome> {
    let bad = |flag: &str, value: &str, why: &str| {
        Outcome::Invalid(format!(
            "{flag} {}: {why}; nothing was restored",
            output::shown(value)
        ))
    };
    let point = match &flags.point {
        None => PointChoice::Latest,
        Some(p) => PointChoice::parse(p)
            .ok_or_else(|| bad("--point", p, "is not a restore point number or `latest`"))?,
    };
    let place = match &flags.place {
        None => PlaceChoice::Default,
        Some(p) => PlaceChoice::parse(p).ok_or_else(|| {
            bad(
                "--place",
                p,
                "is not `source` or ACCOUNT/REGION (a 12-digit account id and a Region name)",
            )
        })?,
    };
    let restore_as = match &flags.restore_as {
        None => None,
        Some(a) => Some(
            RestoreAs::parse(a).ok_or_else(|| bad("--as", a, "is not instance, volumes or db"))?,
        ),
    };
    let security_groups = match &flags.security_groups {
        None => None,
        Some(list) => {
            let groups: Vec<String> = list.split(',').map(|g| g.trim().to_owned()).collect();
            if let Some(g) = groups
                .iter()
                .find(|g| !snaprelay_core::ids::is_ec2_id(g, "sg"))
            {
                return Err(bad(
                    "--security-groups",
                    g,
                    "is not sg- followed by 8 or 17 lowercase hex digits",
                ));
            }
            Some(groups)
        }
    };
    if let Some(s) = &flags.subnet
        && !snaprelay_core::ids::is_ec2_id(s, "subnet")
    {
        return Err(bad(
            "--subnet",
            s,
            "is not subnet- followed by 8 or 17 lowercase hex digits",
        ));
    }
    if let Some(z) = &flags.availability_zone
        && !snaprelay_core::ids::is_availability_zone(z)
    {
        return Err(bad(
            "--availability-zone",
            z,
            "is not an Availability Zone name",
        ));
    }
    let role_arn = match &flags.role_arn {
        None => None,
        Some(r) => {
            Some(RoleArn::parse(r).ok_or_else(|| bad("--role-arn", r, "is not an IAM role ARN"))?)
        }
    };
    for (flag, value) in [
        ("--instance-type", &flags.instance_type),
        ("--db-instance-class", &flags.db_instance_class),
    ] {
        if let Some(v) = value
            && (v.is_empty()
                || v.len() > 64
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-'))
        {
            return Err(bad(
                flag,
                v,
                "is not an instance type or class (t3.micro, db.t3.micro)",
            ));
        }
    }
    Ok(RestoreOptions {
        resource_id: flags.resource_id,
        point,
        place,
        restore_as,
        name: flags.name,
        availability_zone: flags.availability_zone,
        subnet: flags.subnet,
        security_groups,
        instance_type: flags.instance_type,
        db_instance_class: flags.db_instance_class,
        role_arn,
        keep_image: flags.keep_image,
        no_wait: flags.no_wait,
    })
}

pub async fn run(settings: &Settings, flags: Flags) -> Outcome {
    let result = async {
        let policy = load_policy(settings)?;
        let options = options(flags)?;
        let store = open_existing_store(settings).await?;
        let hook = crate::fault::abort_hook().map_err(Outcome::Invalid)?;
        let app = aws_app(&policy, store, hook, settings.lease_ttl).await?;
        let waiting = Waiting {
            poll: settings
                .poll_interval
                .max(std::time::Duration::from_millis(200)),
            ..Waiting::default()
        };
        let progress = |line: &str| crate::stderr::message(line);
        let report = restore(&app, &policy, &options, waiting, &progress).await?;
        if settings.json {
            print_json(&report)?;
        } else {
            emit(&text(&report));
        }
        Ok::<_, Outcome>(Outcome::Code(match report.status {
            RestoreStatus::Success => 0,
            RestoreStatus::Failed => 1,
        }))
    };
    result.await.unwrap_or_else(|o| o)
}

/// The document for people.
fn text(r: &RestoreReport) -> String {
    let mut out = format!(
        "restore {}: {} {} from restore point {} ({}) in {}/{}: {} in {:.1} s\n",
        r.restore_id,
        r.resource.resource_type,
        output::escape_controls(&r.resource.id),
        r.point.id,
        r.point.created_at,
        r.account,
        r.region,
        r.status.as_str(),
        r.seconds
    );
    for c in &r.created {
        out.push_str(&format!(
            "  {:<14} {}  {}\n",
            c.kind.as_str(),
            c.id,
            c.state
        ));
    }
    for m in &r.messages {
        out.push_str(&format!("  - {}\n", output::escape_controls(m)));
    }
    out
}
