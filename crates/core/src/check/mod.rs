//! `snaprelay check`: before the first run, whether every role and key the policy will use
//! allows what the SPEC's workflows do, and the statement that fixes what does not.
//!
//! 1. The target keys: they exist in their Region, are enabled, symmetric `ENCRYPT_DECRYPT`
//!    and customer managed. Then the policy is planned as `run` would plan it (every account,
//!    Region and key resolved, the inventory taken); what does not fit is a finding.
//! 2. The plan's refusals (a volume under `aws/ebs` to another account, ...) are findings.
//! 3. For every key a replica uses (each source key, each target key, each staging key), and
//!    the principal that uses it (the target's credentials): the key side (its key policy,
//!    then its grants) and the principal's side (the role's IAM policies) must both allow the
//!    KMS actions of SPEC section 3, except that a key policy naming the role itself in its
//!    own account needs no IAM permission.
//!    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
//! 4. The EC2 and RDS actions of each workflow, in each role's IAM policies.
//!
//! The policies are evaluated by [`crate::access`], which never counts what it does not
//! understand as an Allow. Only roles' policies are read (inline and attached managed ones);
//! permission boundaries, session policies and SCPs are not, and the report says so.
//!
//! Where each part lives: `keys` (step 1), `needs` (what steps 3 and 4 ask of whom, from the
//! plan), `kms` (step 3, the key side), `iam` (the principal's side of steps 3 and 4),
//! `principals` (who the credentials are, their IAM policies), `fixes` (the fix texts).

mod fixes;
mod iam;
mod keys;
mod kms;
mod needs;
mod principals;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::plan::Decision;
use crate::plan::prepare::{PrepareError, Prepared, prepare};
use crate::policy::Policy;
use crate::ports::Cloud;

use iam::service_finding;
use keys::target_keys;
use kms::kms_findings;
use needs::{Needs, Purpose, SourceKeyUse, cross_account_source_keys, source_keys};
use principals::Principals;

/// Whether a requirement holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Holds {
    Ok,
    Missing,
    /// Could not be decided (a policy that cannot be read, a principal that is not a role).
    Unknown,
}

impl Holds {
    /// Its name in the JSON document.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "missing",
            Self::Unknown => "unknown",
        }
    }
}

/// One requirement and whether it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub status: Holds,
    /// What was looked at: `target key`, `key policy`, `IAM policy`, `plan`, `credentials`.
    pub check: String,
    /// Who must be allowed (a role ARN, an account), when it is about permissions.
    pub principal: String,
    /// The actions required (for a missing finding: those missing).
    pub actions: Vec<String>,
    pub resource: String,
    pub detail: String,
    /// What to add or do: a key-policy statement, an IAM policy, a command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The result of `check`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CheckReport {
    pub policy: String,
    pub findings: Vec<Finding>,
    /// Said when some checks could not run (they need the findings above fixed first).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What `restore` and `drill` need of each place's role (SPEC 6.2, 6.3). Reported, with
    /// fixes, but not part of [`CheckReport::holds`]: a run does not need them, and a restore
    /// may act with another role (`--role-arn`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore_and_drill: Vec<Finding>,
    /// What `plan` needs to size incremental EBS copies (SPEC 6.5): `ebs:ListChangedBlocks`
    /// for the source role. Reported, with a fix, but not part of [`CheckReport::holds`]:
    /// without it those sizes are `unknown`, and nothing else changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub estimates: Vec<Finding>,
}

impl CheckReport {
    pub fn holds(&self) -> bool {
        self.findings.iter().all(|f| f.status != Holds::Missing)
    }
}

/// Runs every check. Errors are a policy that does not fit AWS (invalid input, as for `plan`
/// and `run`: an unknown Region, a missing instance...) and AWS calls that could not be made
/// at all (no credentials, no network); what AWS refuses is a finding.
pub async fn check(cloud: &dyn Cloud, policy: &Policy) -> Result<CheckReport, PrepareError> {
    let mut report = CheckReport {
        policy: policy.name.clone(),
        ..CheckReport::default()
    };
    report.findings.extend(target_keys(cloud, policy).await?);
    if !report.holds() {
        report
            .notes
            .push("the permission checks run once the target keys above are fixed".to_owned());
        return Ok(report);
    }
    let prepared = prepare(cloud, policy).await?;
    report.findings.extend(plan_refusals(&prepared));
    let needs = Needs::of(&prepared);
    report.findings.extend(permissions(cloud, &needs).await);
    report.restore_and_drill = restore_permissions(cloud, &needs).await;
    report.estimates = estimate_permissions(cloud, &prepared).await;
    report.notes.push(
        "IAM: the roles' inline and attached policies are evaluated; permission boundaries, \
         session policies and organization SCPs are not"
            .to_owned(),
    );
    Ok(report)
}

/// What `run` checks before it starts: for each replica in another account, whether the
/// source key's policy and grants let the target's credentials use it. A replica for which
/// that surely does not hold is refused with the finding and its fix, instead of a copy that
/// AWS fails, often hours later; what cannot be decided is left to AWS. Returns how many
/// replicas were refused.
pub async fn preflight(cloud: &dyn Cloud, prepared: &mut Prepared) -> usize {
    let uses = cross_account_source_keys(prepared);
    let refusals = key_refusals(cloud, &uses).await;
    refuse(prepared, &refusals)
}

/// Step 2: what the plan refuses outright.
fn plan_refusals(prepared: &Prepared) -> Vec<Finding> {
    let plan = &prepared.plan;
    let mut findings = Vec::new();
    for task in &plan.tasks {
        for t in &task.targets {
            if let Decision::Refuse { reason } = &t.decision {
                findings.push(Finding {
                    status: Holds::Missing,
                    check: "plan".into(),
                    principal: String::new(),
                    actions: vec![],
                    resource: format!(
                        "{} {} -> {}",
                        task.resource_type,
                        task.id,
                        plan.targets[t.target].label()
                    ),
                    detail: reason.clone(),
                    fix: None,
                });
            }
        }
    }
    findings
}

/// Steps 3 and 4: each key's use from both sides, then each role's EC2 and RDS actions.
async fn permissions(cloud: &dyn Cloud, needs: &Needs) -> Vec<Finding> {
    let mut principals = Principals::default();
    let mut findings = Vec::new();
    for ((user, key), purpose) in &needs.kms {
        let principal = principals.get(cloud, user).await;
        findings.extend(kms_findings(cloud, &mut principals, &principal, key, purpose).await);
    }
    for (user, actions) in &needs.service {
        let principal = principals.get(cloud, user).await;
        findings.push(service_finding(cloud, &mut principals, &principal, actions).await);
    }
    findings
}

/// What `plan`'s sizing of incremental EBS copies calls with the source role: EBS direct
/// `ListChangedBlocks` on the source snapshots of each Region with an instance.
async fn estimate_permissions(cloud: &dyn Cloud, prepared: &Prepared) -> Vec<Finding> {
    let actions: std::collections::BTreeSet<(String, String)> = prepared
        .plan
        .tasks
        .iter()
        .filter(|t| matches!(t.resource, crate::model::Resource::Ec2(_)))
        .map(|t| {
            (
                "ebs:ListChangedBlocks".to_owned(),
                format!("arn:aws:ec2:{}::snapshot/*", t.region),
            )
        })
        .collect();
    if actions.is_empty() {
        return Vec::new();
    }
    let mut principals = Principals::default();
    let principal = principals.get(cloud, &prepared.source_access).await;
    let mut f = service_finding(cloud, &mut principals, &principal, &actions).await;
    f.check = "plan estimates".into();
    vec![f]
}

/// What each place's role needs for `restore` and `drill`. The KMS side is the replication's
/// (a restore decrypts with the replica's key, as the copy encrypted with it).
async fn restore_permissions(cloud: &dyn Cloud, needs: &Needs) -> Vec<Finding> {
    let mut principals = Principals::default();
    let mut findings = Vec::new();
    for (user, actions) in &needs.restore {
        let principal = principals.get(cloud, user).await;
        let mut f = service_finding(cloud, &mut principals, &principal, actions).await;
        f.check = "restore and drill".into();
        findings.push(f);
    }
    findings
}

/// The preflight's reason to refuse each source key use whose key side surely does not allow
/// it. Only the key's side: the roles' IAM policies are `check`'s to report (they may be
/// unreadable, or rest on what snaprelay does not evaluate).
async fn key_refusals(
    cloud: &dyn Cloud,
    uses: &BTreeMap<SourceKeyUse, Purpose>,
) -> BTreeMap<SourceKeyUse, String> {
    let mut principals = Principals::default();
    let mut refusals = BTreeMap::new();
    for ((user, key, service), purpose) in uses {
        let principal = principals.get(cloud, user).await;
        let findings = kms_findings(cloud, &mut principals, &principal, key, purpose).await;
        let Some(f) = findings
            .iter()
            .find(|f| f.status == Holds::Missing && f.check == "key policy")
        else {
            continue;
        };
        let fix = f
            .fix
            .as_deref()
            .map(|x| format!("; to fix it, {x}"))
            .unwrap_or_default();
        refusals.insert(
            (user.clone(), key.clone(), *service),
            format!(
                "the preflight check found that {} cannot use source key {key} through \
                 {service}: {}{fix}",
                principal.name(),
                f.detail
            ),
        );
    }
    refusals
}

/// Refuses each replica one of whose source keys has a refusal; returns how many.
fn refuse(prepared: &mut Prepared, refusals: &BTreeMap<SourceKeyUse, String>) -> usize {
    let mut refused = 0;
    let targets = &prepared.plan.targets;
    for task in &mut prepared.plan.tasks {
        let (service, keys) = source_keys(&task.resource);
        for t in &mut task.targets {
            let access = &targets[t.target].access;
            let reason = keys
                .iter()
                .find_map(|k| refusals.get(&(access.clone(), (*k).to_owned(), service)));
            if let (Some(reason), Decision::Replicate { .. }) = (reason, &t.decision) {
                t.decision = Decision::Refuse {
                    reason: reason.clone(),
                };
                refused += 1;
            }
        }
    }
    refused
}
