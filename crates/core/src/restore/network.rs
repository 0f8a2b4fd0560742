//! Where in a place a restored resource goes (SPEC 6.2): the recorded subnet, security groups,
//! key pair, profile and DB groups where they exist there; else the target's `restore`
//! defaults from the policy; else the place's default VPC. Decided from what the place was
//! found to hold ([`Found`]), so that the choice is a plain function, tested without a cloud.

use crate::config::{AuroraConfig, Ec2Config, RdsConfig};
use crate::policy::RestoreDefaults;
use crate::ports::{Network, SecurityGroup, Subnet};

use super::{Place, RestoreOptions};

/// What the place holds of the subnets, groups and key pairs a restore could use.
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub default_network: Option<Network>,
    /// Those of the candidate subnets that exist there.
    pub subnets: Vec<Subnet>,
    /// Those of the candidate security groups that exist there.
    pub security_groups: Vec<SecurityGroup>,
    /// Those of the candidate key pairs that exist there.
    pub key_pairs: Vec<String>,
}

impl Found {
    fn subnet(&self, id: &str) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.id == id).or_else(|| {
            self.default_network
                .as_ref()
                .and_then(|n| n.subnets.iter().find(|s| s.id == id))
        })
    }

    fn group(&self, id: &str) -> Option<&SecurityGroup> {
        self.security_groups.iter().find(|g| g.id == id)
    }

    /// Whether every group exists, in `vpc` when one is asked.
    fn all_exist(&self, ids: &[String], vpc: Option<&str>) -> bool {
        ids.iter().all(|id| {
            self.group(id)
                .is_some_and(|g| vpc.is_none() || g.vpc_id.as_deref() == vpc)
        })
    }
}

/// Where an instance is launched, and what it runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceNetwork {
    pub subnet: Subnet,
    /// Empty: the VPC's default group (RunInstances takes it when none is given).
    pub security_group_ids: Vec<String>,
    pub key_name: Option<String>,
    pub iam_instance_profile_arn: Option<String>,
    /// What was used instead of what was recorded, and why.
    pub messages: Vec<String>,
}

/// The subnets, groups and key pairs worth looking up in the place for this restore.
pub fn candidates(
    options: &RestoreOptions,
    recorded: Option<&Ec2Config>,
    defaults: &RestoreDefaults,
) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut subnets: Vec<String> = options.subnet.iter().cloned().collect();
    subnets.extend(recorded.and_then(|c| c.instance.subnet_id.clone()));
    subnets.extend(defaults.subnet.clone());
    let mut groups: Vec<String> = options.security_groups.clone().unwrap_or_default();
    groups.extend(
        recorded
            .map(|c| c.instance.security_group_ids.clone())
            .unwrap_or_default(),
    );
    groups.extend(defaults.security_groups.iter().cloned());
    let keys = recorded
        .and_then(|c| c.instance.key_name.clone())
        .into_iter()
        .collect();
    subnets.dedup();
    groups.sort();
    groups.dedup();
    (subnets, groups, keys)
}

/// What a DB or cluster restore point records of where the database was: its DB subnet group
/// and VPC security groups.
#[derive(Clone, Copy, Debug)]
pub struct RecordedDbNetwork<'a> {
    pub db_subnet_group: Option<&'a String>,
    pub vpc_security_group_ids: &'a [String],
}

impl<'a> From<&'a RdsConfig> for RecordedDbNetwork<'a> {
    fn from(c: &'a RdsConfig) -> Self {
        Self {
            db_subnet_group: c.db.db_subnet_group.as_ref(),
            vpc_security_group_ids: &c.db.vpc_security_group_ids,
        }
    }
}

impl<'a> From<&'a AuroraConfig> for RecordedDbNetwork<'a> {
    fn from(c: &'a AuroraConfig) -> Self {
        Self {
            db_subnet_group: c.db_subnet_group.as_ref(),
            vpc_security_group_ids: &c.vpc_security_group_ids,
        }
    }
}

/// The security groups for an RDS or Aurora restore worth looking up.
pub fn db_candidates(
    options: &RestoreOptions,
    recorded: RecordedDbNetwork<'_>,
    defaults: &RestoreDefaults,
) -> Vec<String> {
    let mut groups: Vec<String> = options.security_groups.clone().unwrap_or_default();
    groups.extend(recorded.vpc_security_group_ids.iter().cloned());
    groups.extend(defaults.security_groups.iter().cloned());
    groups.sort();
    groups.dedup();
    groups
}

/// The subnet and groups of a restored instance. `Err` is invalid input: a flag or policy
/// default naming what does not exist there, or nowhere to go at all.
pub fn instance_network(
    options: &RestoreOptions,
    recorded: &Ec2Config,
    defaults: &RestoreDefaults,
    found: &Found,
    place: &Place,
    target_field: &str,
) -> Result<InstanceNetwork, String> {
    let mut messages = Vec::new();
    let subnet = pick_subnet(
        options,
        recorded,
        defaults,
        found,
        place,
        target_field,
        &mut messages,
    )?;
    let groups = pick_groups(
        options,
        &recorded.instance.security_group_ids,
        defaults,
        found,
        Some(&subnet.vpc_id),
        place,
        target_field,
        &mut messages,
    )?;
    let key_name = match &recorded.instance.key_name {
        Some(k) if found.key_pairs.contains(k) => Some(k.clone()),
        Some(k) => {
            messages.push(format!(
                "key pair {k} does not exist in {place}: the instance is launched without one"
            ));
            None
        }
        None => None,
    };
    // An instance profile lives in the account that made it; another account's is no use.
    let iam_instance_profile_arn = match &recorded.instance.iam_instance_profile_arn {
        Some(arn) if profile_account(arn) == Some(place.account.as_str()) => Some(arn.clone()),
        Some(arn) => {
            messages.push(format!(
                "instance profile {arn} is of another account than {place}: the instance is \
                 launched without one"
            ));
            None
        }
        None => None,
    };
    Ok(InstanceNetwork {
        subnet,
        security_group_ids: groups,
        key_name,
        iam_instance_profile_arn,
        messages,
    })
}

/// The account of an instance profile ARN (`arn:aws:iam::123456789012:instance-profile/x`).
fn profile_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| a.len() == 12)
}

fn pick_subnet(
    options: &RestoreOptions,
    recorded: &Ec2Config,
    defaults: &RestoreDefaults,
    found: &Found,
    place: &Place,
    target_field: &str,
    messages: &mut Vec<String>,
) -> Result<Subnet, String> {
    if let Some(id) = &options.subnet {
        return found
            .subnet(id)
            .cloned()
            .ok_or_else(|| format!("--subnet {id}: no such subnet in {place}"));
    }
    if let Some(id) = &recorded.instance.subnet_id {
        if let Some(s) = found.subnet(id) {
            return Ok(s.clone());
        }
        messages.push(format!("recorded subnet {id} does not exist in {place}"));
    }
    if let Some(id) = &defaults.subnet {
        return found.subnet(id).cloned().ok_or_else(|| {
            format!("{target_field}.restore.subnet = \"{id}\": no such subnet in {place}")
        });
    }
    let Some(network) = &found.default_network else {
        return Err(format!(
            "{place} has no default VPC and the policy gives no {target_field}.restore.subnet: \
             name one with --subnet, or set restore = {{ subnet = \"subnet-…\" }} on that target"
        ));
    };
    let zones: Vec<String> = network
        .subnets
        .iter()
        .map(|s| s.availability_zone.clone())
        .collect();
    let zone = options.availability_zone.clone().or_else(|| {
        super::zone_like(
            recorded.instance.availability_zone.as_deref(),
            &place.region,
            &zones,
        )
    });
    let mut subnets: Vec<&Subnet> = network.subnets.iter().collect();
    subnets.sort_by(|a, b| (&a.availability_zone, &a.id).cmp(&(&b.availability_zone, &b.id)));
    let chosen = zone
        .as_deref()
        .and_then(|z| subnets.iter().find(|s| s.availability_zone == z))
        .or(subnets.first())
        .ok_or_else(|| {
            format!(
                "the default VPC {} of {place} has no subnet",
                network.vpc_id
            )
        })?;
    messages.push(format!(
        "launched in subnet {} ({}) of the default VPC {}",
        chosen.id, chosen.availability_zone, network.vpc_id
    ));
    Ok((*chosen).clone())
}

#[allow(clippy::too_many_arguments)]
fn pick_groups(
    options: &RestoreOptions,
    recorded: &[String],
    defaults: &RestoreDefaults,
    found: &Found,
    vpc: Option<&str>,
    place: &Place,
    target_field: &str,
    messages: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    if let Some(ids) = &options.security_groups {
        if let Some(missing) = ids
            .iter()
            .find(|id| !found.all_exist(&[(*id).clone()], vpc))
        {
            return Err(format!(
                "--security-groups: {missing} does not exist in {place}{}",
                vpc.map(|v| format!(" (in VPC {v})")).unwrap_or_default()
            ));
        }
        return Ok(ids.clone());
    }
    if !recorded.is_empty() {
        if found.all_exist(recorded, vpc) {
            return Ok(recorded.to_vec());
        }
        messages.push(format!(
            "recorded security groups {} do not all exist in {place}",
            recorded.join(", ")
        ));
    }
    if !defaults.security_groups.is_empty() {
        if let Some(missing) = defaults
            .security_groups
            .iter()
            .find(|id| !found.all_exist(&[(*id).clone()], vpc))
        {
            return Err(format!(
                "{target_field}.restore.security_groups: {missing} does not exist in {place}{}",
                vpc.map(|v| format!(" (in VPC {v})")).unwrap_or_default()
            ));
        }
        return Ok(defaults.security_groups.clone());
    }
    messages.push("using the VPC's default security group".into());
    Ok(Vec::new())
}

/// Where a restored DB instance goes: its subnet group and VPC security groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbNetwork {
    /// `None`: the default VPC's default subnet group.
    pub db_subnet_group: Option<String>,
    /// The VPC of that subnet group, where the security groups are.
    pub vpc_id: Option<String>,
    pub vpc_security_group_ids: Vec<String>,
    pub messages: Vec<String>,
}

/// The subnet group and groups of a restored DB instance or cluster. `recorded_group_vpc`
/// and `default_group_vpc` are the VPCs of the recorded DB subnet group and of the policy's
/// where they exist there. The security groups must be in the VPC of the subnet group chosen
/// (RDS refuses others): one given by flag or policy elsewhere is invalid input.
#[allow(clippy::too_many_arguments)]
pub fn db_network(
    options: &RestoreOptions,
    recorded: RecordedDbNetwork<'_>,
    defaults: &RestoreDefaults,
    found: &Found,
    recorded_group_vpc: Option<&str>,
    default_group_vpc: Option<&str>,
    place: &Place,
    target_field: &str,
) -> Result<DbNetwork, String> {
    let mut messages = Vec::new();
    let db_subnet_group = match (recorded.db_subnet_group, &defaults.db_subnet_group) {
        (Some(g), _) if recorded_group_vpc.is_some() && g != "default" => Some(g.clone()),
        (recorded_group, Some(d)) => {
            if let Some(g) = recorded_group.filter(|g| *g != "default") {
                messages.push(format!(
                    "recorded DB subnet group {g} does not exist in {place}"
                ));
            }
            if default_group_vpc.is_none() {
                return Err(format!(
                    "{target_field}.restore.db_subnet_group = \"{d}\": no such DB subnet group \
                     in {place}"
                ));
            }
            Some(d.clone())
        }
        (recorded_group, None) => {
            if let Some(g) = recorded_group.filter(|g| *g != "default") {
                messages.push(format!(
                    "recorded DB subnet group {g} does not exist in {place}"
                ));
            }
            if found.default_network.is_none() {
                return Err(format!(
                    "{place} has no default VPC and the policy gives no \
                     {target_field}.restore.db_subnet_group: set restore = {{ db_subnet_group \
                     = \"…\" }} on that target"
                ));
            }
            None
        }
    };
    let vpc = match &db_subnet_group {
        Some(g) if Some(g) == recorded.db_subnet_group => recorded_group_vpc,
        Some(_) => default_group_vpc,
        None => found.default_network.as_ref().map(|n| n.vpc_id.as_str()),
    };
    let groups = pick_groups(
        options,
        recorded.vpc_security_group_ids,
        defaults,
        found,
        vpc,
        place,
        target_field,
        &mut messages,
    )?;
    Ok(DbNetwork {
        db_subnet_group,
        vpc_id: vpc.map(str::to_owned),
        vpc_security_group_ids: groups,
        messages,
    })
}
