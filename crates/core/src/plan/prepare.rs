//! Before anything changes: resolve every account and key the policy names, take the
//! inventory of the source account, and plan. Only read calls are made here, so an error found
//! here leaves AWS untouched.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ids::{AccountId, KeyRef, key_arn_parts};
use crate::model::{KeyInfo, KeyManager, Resource};
use crate::plan::keys::resolve_key;
use crate::plan::{Estate, Plan, ResolvedTarget, plan};
use crate::policy::{Policy, ResourceType, Selector, Target};
use crate::ports::{Access, Cloud, CloudError, RegionStatus};

/// Why a session could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The policy does not fit the estate (exit code 2): each line names the field and value.
    #[error("the policy does not fit what AWS reports:\n{}", listed(.0))]
    Input(Vec<String>),
    /// AWS could not be asked (credentials, network, permissions).
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// The problems, one a line: the first 20, then how many more (10,000 ids that match nothing
/// are one message, not 10,000 lines).
fn listed(problems: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut lines: Vec<String> = problems
        .iter()
        .take(SHOWN)
        .map(|e| format!("  - {e}"))
        .collect();
    if problems.len() > SHOWN {
        lines.push(format!(
            "  ({} more problems not shown)",
            problems.len() - SHOWN
        ));
    }
    lines.join("\n")
}

/// A plan and the credentials it will run with.
pub struct Prepared {
    pub plan: Plan,
    pub source_access: Access,
}

/// Resolves accounts and keys, takes the inventory, and plans. Every problem of the policy
/// against what AWS reports is gathered before any is returned, so that one run shows them all.
pub async fn prepare(cloud: &dyn Cloud, policy: &Policy) -> Result<Prepared, PrepareError> {
    let mut known = Known {
        cloud,
        accounts: HashMap::new(),
        regions: HashMap::new(),
    };
    let mut problems = Vec::new();
    let source_access = Access::role(policy.source.role_arn.clone());
    let source_account = known.of(&source_access).await?;
    let source = Source {
        access: &source_access,
        account: &source_account,
        usable_regions: usable_source_regions(
            &mut known,
            policy,
            &source_access,
            &source_account,
            &mut problems,
        )
        .await?,
    };
    let mut targets = Vec::new();
    for (index, t) in policy.targets.iter().enumerate() {
        if let Some(target) =
            resolve_target(&mut known, policy, &source, index, t, &mut problems).await?
        {
            targets.push(target);
        }
    }
    if !problems.is_empty() {
        return Err(PrepareError::Input(problems));
    }
    let reencrypt_keys = reencrypt_keys(cloud, policy, &source, &mut problems).await?;
    let (mut estate, messages) = inventory(cloud, policy, &source, &mut problems).await?;
    if !problems.is_empty() {
        return Err(PrepareError::Input(problems));
    }
    estate.reencrypt_keys = reencrypt_keys;
    describe_source_keys(cloud, &source_access, &mut estate).await;
    Ok(Prepared {
        plan: plan(&policy.name, &source_account, &targets, &estate, messages),
        source_access,
    })
}

/// `[source] reencrypt_keys`, resolved with the source credentials in their Regions: each
/// must be an enabled, symmetric, customer managed key of the source account (a snapshot is
/// copied under it in the source account before it is shared).
async fn reencrypt_keys(
    cloud: &dyn Cloud,
    policy: &Policy,
    source: &Source<'_>,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<String, KeyInfo>, CloudError> {
    let mut keys = BTreeMap::new();
    for (region, key) in &policy.source.reencrypt_keys {
        if !source.usable_regions.contains(region) {
            continue;
        }
        let field = format!("source.reencrypt_keys.{region} = \"{key}\"");
        match resolve_key(cloud, source.access, source.account, region, key).await? {
            Err(problem) => problems.push(format!("{field}: {problem}")),
            Ok(info) if info.manager == KeyManager::Aws => problems.push(format!(
                "{field}: {} is an AWS managed key; a re-encrypt key must be a customer managed \
                 key whose key policy admits the target accounts",
                info.arn
            )),
            Ok(info) if &info.account != source.account => problems.push(format!(
                "{field}: {} is a key of account {}; a re-encrypt key must be a key of the \
                 source account {}",
                info.arn, info.account, source.account
            )),
            Ok(info) => {
                keys.insert(region.clone(), info);
            }
        }
    }
    Ok(keys)
}

/// The source credentials, their account, and the source Regions they may use.
struct Source<'a> {
    access: &'a Access,
    account: &'a AccountId,
    usable_regions: Vec<String>,
}

/// The source Regions the account may use; the others are problems.
async fn usable_source_regions(
    known: &mut Known<'_>,
    policy: &Policy,
    access: &Access,
    account: &AccountId,
    problems: &mut Vec<String>,
) -> Result<Vec<String>, CloudError> {
    let mut usable = Vec::new();
    for (i, region) in policy.source.regions.iter().enumerate() {
        match known.region_problem(access, account, region).await? {
            Some(why) => problems.push(format!("source.regions[{i}] = \"{region}\": {why}")),
            None => usable.push(region.clone()),
        }
    }
    Ok(usable)
}

/// One target, resolved: its account (as its credentials act in), Region, key, and the
/// staging keys of RDS workflow C; `None` (with the problems said) when it does not fit.
async fn resolve_target(
    known: &mut Known<'_>,
    policy: &Policy,
    source: &Source<'_>,
    index: usize,
    t: &Target,
    problems: &mut Vec<String>,
) -> Result<Option<ResolvedTarget>, CloudError> {
    let field = format!("targets[{index}]");
    let access = target_access(t, source.access, source.account);
    let account = known.of(&access).await?;
    if let Some(declared) = &t.account
        && declared != &account
    {
        problems.push(format!(
            "{field}.account = \"{declared}\": the credentials for this target ({access}) act in \
             account {account}; set {field}.role_arn to a role in account {declared}"
        ));
        return Ok(None);
    }
    if let Some(why) = known.region_problem(&access, &account, &t.region).await? {
        problems.push(format!("{field}.region = \"{}\": {why}", t.region));
        return Ok(None);
    }
    if &account == source.account && policy.source.regions.contains(&t.region) {
        problems.push(format!(
            "{field}: account {account} Region {} is the source itself; a replica must be in \
             another Region or account",
            t.region
        ));
        return Ok(None);
    }
    let cloud = known.cloud;
    let key = match &t.kms_key {
        None => None,
        Some(k) => match resolve_key(cloud, &access, &account, &t.region, k).await? {
            Ok(info) if info.manager == KeyManager::Aws => {
                problems.push(format!(
                    "{field}.kms_key = \"{k}\": {} is an AWS managed key; replicas must be \
                     encrypted with a customer managed key",
                    info.arn
                ));
                None
            }
            Ok(info) => Some(info),
            Err(why) => {
                problems.push(format!("{field}.kms_key = \"{k}\": {why}"));
                None
            }
        },
    };
    // Workflow C's intermediate copy: for DB instances unless rds_single_step, and always for
    // Aurora clusters, whose shared snapshots AWS copies only within their Region.
    let needs_staging = policy
        .source
        .resources
        .iter()
        .any(|r| match r.resource_type {
            ResourceType::Rds => !t.rds_single_step,
            ResourceType::Aurora => true,
            ResourceType::Ec2 => false,
        });
    let staging_keys = if needs_staging && &account != source.account {
        staging_keys(cloud, source, &field, t, &access, &account, problems).await?
    } else {
        BTreeMap::new()
    };
    Ok(Some(ResolvedTarget {
        index,
        account,
        region: t.region.clone(),
        access,
        key,
        staging_keys,
        rds_single_step: t.rds_single_step,
        staging_declared: t.staging_kms_key.is_some(),
    }))
}

/// RDS across accounts and Regions in two steps: the intermediate copy is made in each source
/// Region, in the target account, with the staging key (`aws/rds` of that account unless the
/// target names one).
async fn staging_keys(
    cloud: &dyn Cloud,
    source: &Source<'_>,
    field: &str,
    t: &Target,
    access: &Access,
    account: &AccountId,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<String, KeyInfo>, CloudError> {
    let default_key = KeyRef::AliasName("alias/aws/rds".into());
    let staging = t.staging_kms_key.as_ref().unwrap_or(&default_key);
    let mut keys = BTreeMap::new();
    for region in source.usable_regions.iter().filter(|r| **r != t.region) {
        match resolve_key(cloud, access, account, region, staging).await? {
            // SPEC workflow C: the intermediate copy is encrypted with a key of the target
            // account in the source Region.
            Ok(info) if &info.account != account => problems.push(format!(
                "{field}.staging_kms_key = \"{staging}\": {} is a key of account {}; the \
                 intermediate copy in account {account} must be encrypted with a key of that \
                 account",
                info.arn, info.account
            )),
            Ok(info) => {
                keys.insert(region.clone(), info);
            }
            Err(why) => problems.push(format!(
                "{field}.staging_kms_key = \"{staging}\" (the key of the intermediate RDS copy \
                 in {region}): {why}"
            )),
        }
    }
    Ok(keys)
}

/// The resources the policy selects, each once; ids that match nothing are problems, tag
/// selectors that match nothing are messages.
async fn inventory(
    cloud: &dyn Cloud,
    policy: &Policy,
    source: &Source<'_>,
    problems: &mut Vec<String>,
) -> Result<(Estate, Vec<String>), CloudError> {
    let mut estate = Estate::default();
    let mut messages = Vec::new();
    let mut seen = BTreeSet::new();
    let regions = policy.source.regions.join(", ");
    for (i, sel) in policy.source.resources.iter().enumerate() {
        let mut found: Vec<Resource> = Vec::new();
        for region in &policy.source.regions {
            match sel.resource_type {
                ResourceType::Ec2 => found.extend(
                    cloud
                        .find_instances(source.access, region, &sel.selector)
                        .await?
                        .into_iter()
                        .map(Resource::Ec2),
                ),
                ResourceType::Rds => found.extend(
                    cloud
                        .find_db_instances(source.access, region, &sel.selector)
                        .await?
                        .into_iter()
                        .map(Resource::Rds),
                ),
                ResourceType::Aurora => found.extend(
                    cloud
                        .find_db_clusters(source.access, region, &sel.selector)
                        .await?
                        .into_iter()
                        .map(Resource::Aurora),
                ),
            }
        }
        let kind = match sel.resource_type {
            ResourceType::Ec2 => "EC2 instance",
            ResourceType::Rds => "DB instance",
            ResourceType::Aurora => "Aurora DB cluster",
        };
        let account = source.account;
        match &sel.selector {
            Selector::Ids(ids) => {
                for (j, id) in ids.iter().enumerate() {
                    // RDS identifiers are case-insensitive (RDS stores them in lowercase).
                    if !found.iter().any(|r| r.id().eq_ignore_ascii_case(id)) {
                        problems.push(format!(
                            "source.resources[{i}].ids[{j}] = \"{id}\": no such {kind} in account \
                             {account}, Regions {regions}"
                        ));
                    }
                }
            }
            Selector::Tags(tags) if found.is_empty() => messages.push(format!(
                "source.resources[{i}]: no {kind} in account {account}, Regions {regions} has the \
                 tags {}",
                tags.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Selector::Tags(_) => {}
        }
        for resource in found {
            if seen.insert((resource.kind(), resource.id().to_owned())) {
                estate.resources.push(resource);
            }
        }
    }
    Ok((estate, messages))
}

/// What the source keys of the selected volumes and DBs are (managed by AWS or the customer,
/// ...); a key that cannot be described is noted, and the planner says so per resource.
async fn describe_source_keys(cloud: &dyn Cloud, access: &Access, estate: &mut Estate) {
    let key_arns: BTreeSet<String> = estate
        .resources
        .iter()
        .flat_map(|r| match r {
            Resource::Ec2(i) => i
                .volumes
                .iter()
                .filter_map(|v| v.kms_key_id.clone())
                .collect::<Vec<_>>(),
            Resource::Rds(d) => d.kms_key_id.iter().cloned().collect(),
            Resource::Aurora(c) => c.db.kms_key_id.iter().cloned().collect(),
        })
        .collect();
    for arn in key_arns {
        let Some((region, _)) = key_arn_parts(&arn) else {
            estate
                .key_errors
                .insert(arn.clone(), "not a KMS key ARN".into());
            continue;
        };
        match cloud.describe_key(access, &region, &arn).await {
            Ok(info) => {
                estate.keys.insert(arn, info);
            }
            Err(e) => {
                estate.key_errors.insert(arn, e.to_string());
            }
        }
    }
}

/// The credentials a target is worked on with: its role, else for a target in the source
/// account (named or by default) the source's credentials, else the ambient ones.
pub fn target_access(t: &Target, source: &Access, source_account: &AccountId) -> Access {
    match &t.role_arn {
        Some(role) => Access::role(Some(role.clone())),
        None if t.account.as_ref().is_none_or(|a| a == source_account) => source.clone(),
        None => Access::ambient(),
    }
}

/// What STS and EC2 say about each set of credentials, asked once.
struct Known<'a> {
    cloud: &'a dyn Cloud,
    accounts: HashMap<Access, AccountId>,
    regions: HashMap<Access, Vec<RegionStatus>>,
}

impl Known<'_> {
    async fn of(&mut self, access: &Access) -> Result<AccountId, CloudError> {
        if let Some(a) = self.accounts.get(access) {
            return Ok(a.clone());
        }
        let account = self.cloud.account_of(access).await?;
        self.accounts.insert(access.clone(), account.clone());
        Ok(account)
    }

    /// Why `region` cannot be used with these credentials, if it cannot: a name the syntax
    /// check let through but AWS does not know (a typo), or an opt-in Region not enabled.
    async fn region_problem(
        &mut self,
        access: &Access,
        account: &AccountId,
        region: &str,
    ) -> Result<Option<String>, CloudError> {
        if !self.regions.contains_key(access) {
            let list = self.cloud.regions(access).await?;
            self.regions.insert(access.clone(), list);
        }
        let known = &self.regions[access];
        Ok(match known.iter().find(|r| r.name == region) {
            Some(r) if r.enabled => None,
            Some(_) => Some(format!(
                "is an opt-in Region that account {account} has not enabled; enable it in the \
                 account settings first"
            )),
            None => {
                let mut names: Vec<&str> = known.iter().map(|r| r.name.as_str()).collect();
                names.sort_unstable();
                Some(format!(
                    "is not a Region AWS knows (known: {})",
                    names.join(", ")
                ))
            }
        })
    }
}
