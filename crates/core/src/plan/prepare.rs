//! Before anything changes: resolve every account and key the policy names, take the
//! inventory of the source account, and plan. Only read calls are made here, so an error found
//! here leaves AWS untouched.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::ids::{AccountId, KeyRef, key_arn_parts};
use crate::model::{KeyManager, Resource};
use crate::plan::keys::resolve_key;
use crate::plan::{Estate, Plan, ResolvedTarget, plan};
use crate::policy::{Policy, ResourceType, Selector, Target};
use crate::ports::{Access, Cloud, CloudError, RegionStatus};

/// Why a session could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The policy does not fit the estate (exit code 2): each line names the field and value.
    #[error("the policy does not fit what AWS reports:\n{}", .0.iter().map(|e| format!("  - {e}")).collect::<Vec<_>>().join("\n"))]
    Input(Vec<String>),
    /// AWS could not be asked (credentials, network, permissions).
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

/// A plan and the credentials it will run with.
pub struct Prepared {
    pub plan: Plan,
    pub source_access: Access,
}

/// Resolves accounts and keys, takes the inventory, and plans.
pub async fn prepare(cloud: &dyn Cloud, policy: &Policy) -> Result<Prepared, PrepareError> {
    let mut known = Known {
        cloud,
        accounts: HashMap::new(),
        regions: HashMap::new(),
    };
    let mut problems = Vec::new();

    let source_access = Access::role(policy.source.role_arn.clone());
    let source_account = known.of(&source_access).await?;
    let mut usable_regions = Vec::new();
    for (i, region) in policy.source.regions.iter().enumerate() {
        match known
            .region_problem(&source_access, &source_account, region)
            .await?
        {
            Some(why) => problems.push(format!("source.regions[{i}] = \"{region}\": {why}")),
            None => usable_regions.push(region),
        }
    }

    let has_rds = policy
        .source
        .resources
        .iter()
        .any(|r| r.resource_type == ResourceType::Rds);
    let mut targets = Vec::new();
    for (index, t) in policy.targets.iter().enumerate() {
        let field = format!("targets[{index}]");
        let access = target_access(t, &source_access, &source_account);
        let account = known.of(&access).await?;
        if let Some(declared) = &t.account
            && declared != &account
        {
            problems.push(format!(
                "{field}.account = \"{declared}\": the credentials for this target ({access}) act in \
                 account {account}; set {field}.role_arn to a role in account {declared}"
            ));
            continue;
        }
        if let Some(why) = known.region_problem(&access, &account, &t.region).await? {
            problems.push(format!("{field}.region = \"{}\": {why}", t.region));
            continue;
        }
        if account == source_account && policy.source.regions.contains(&t.region) {
            problems.push(format!(
                "{field}: account {account} Region {} is the source itself; a replica must be in \
                 another Region or account",
                t.region
            ));
            continue;
        }
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
        // RDS across accounts and Regions in two steps: the intermediate copy is made in each
        // source Region, in the target account, with the staging key.
        let mut staging_keys = BTreeMap::new();
        if has_rds && account != source_account && !t.rds_single_step {
            let default_key = KeyRef::AliasName("alias/aws/rds".into());
            let staging = t.staging_kms_key.as_ref().unwrap_or(&default_key);
            for region in usable_regions.iter().filter(|r| ***r != t.region) {
                match resolve_key(cloud, &access, &account, region, staging).await? {
                    // SPEC workflow C: the intermediate copy is encrypted with a key of the
                    // target account in the source Region.
                    Ok(info) if info.account != account => problems.push(format!(
                        "{field}.staging_kms_key = \"{staging}\": {} is a key of account {}; the \
                         intermediate copy in account {account} must be encrypted with a key of \
                         that account",
                        info.arn, info.account
                    )),
                    Ok(info) => {
                        staging_keys.insert((*region).clone(), info);
                    }
                    Err(why) => problems.push(format!(
                        "{field}.staging_kms_key = \"{staging}\" (the key of the intermediate RDS \
                         copy in {region}): {why}"
                    )),
                }
            }
        }
        targets.push(ResolvedTarget {
            index,
            account,
            region: t.region.clone(),
            access,
            key,
            staging_keys,
            rds_single_step: t.rds_single_step,
            staging_declared: t.staging_kms_key.is_some(),
        });
    }

    if !problems.is_empty() {
        return Err(PrepareError::Input(problems));
    }
    let mut estate = Estate::default();
    let mut messages = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, sel) in policy.source.resources.iter().enumerate() {
        let mut found: Vec<Resource> = Vec::new();
        for region in &policy.source.regions {
            match sel.resource_type {
                ResourceType::Ec2 => found.extend(
                    cloud
                        .find_instances(&source_access, region, &sel.selector)
                        .await?
                        .into_iter()
                        .map(Resource::Ec2),
                ),
                ResourceType::Rds => found.extend(
                    cloud
                        .find_db_instances(&source_access, region, &sel.selector)
                        .await?
                        .into_iter()
                        .map(Resource::Rds),
                ),
            }
        }
        let kind = match sel.resource_type {
            ResourceType::Ec2 => "EC2 instance",
            ResourceType::Rds => "DB instance",
        };
        match &sel.selector {
            Selector::Ids(ids) => {
                for (j, id) in ids.iter().enumerate() {
                    // RDS identifiers are case-insensitive (RDS stores them in lowercase).
                    if !found.iter().any(|r| r.id().eq_ignore_ascii_case(id)) {
                        problems.push(format!(
                            "source.resources[{i}].ids[{j}] = \"{id}\": no such {kind} in account \
                             {source_account}, Regions {}",
                            policy.source.regions.join(", ")
                        ));
                    }
                }
            }
            Selector::Tags(tags) if found.is_empty() => messages.push(format!(
                "source.resources[{i}]: no {kind} in account {source_account}, Regions {} has the \
                 tags {}",
                policy.source.regions.join(", "),
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
    if !problems.is_empty() {
        return Err(PrepareError::Input(problems));
    }

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
        })
        .collect();
    for arn in key_arns {
        let region = key_arn_parts(&arn).map(|(r, _)| r);
        let Some(region) = region else {
            estate
                .key_errors
                .insert(arn.clone(), "not a KMS key ARN".into());
            continue;
        };
        match cloud.describe_key(&source_access, &region, &arn).await {
            Ok(info) => {
                estate.keys.insert(arn, info);
            }
            Err(e) => {
                estate.key_errors.insert(arn, e.to_string());
            }
        }
    }

    Ok(Prepared {
        plan: plan(&policy.name, &source_account, &targets, &estate, messages),
        source_access,
    })
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
