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

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::access::{self, Caller, Request, Statement, Verdict};
use crate::ids::{AccountId, RoleArn};
use crate::model::{KeyManager, Resource};
use crate::plan::prepare::{PrepareError, Prepared, prepare, target_access};
use crate::plan::{Decision, Workflow};
use crate::policy::Policy;
use crate::ports::{Access, Cloud, CloudError, KeyGrant};

/// Whether a requirement holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Holds {
    Ok,
    Missing,
    /// Could not be decided (a policy that cannot be read, a principal that is not a role).
    Unknown,
}

/// One requirement and whether it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub status: Holds,
    /// What was looked at: `target key`, `key policy`, `IAM policy`, `plan`, `policy`.
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
}

impl CheckReport {
    pub fn holds(&self) -> bool {
        self.findings.iter().all(|f| f.status != Holds::Missing)
    }
}

/// The KMS actions a principal needs on a key whose snapshots it copies or creates (SPEC
/// section 3): `kms:ReEncrypt*` and `kms:GenerateDataKey*` as the operations EBS and RDS call.
const KMS_ACTIONS: [&str; 6] = [
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKeyWithoutPlaintext",
];

/// The actions as a fix names them (the wildcards AWS's documented statements use).
fn as_written(actions: &[String]) -> Vec<String> {
    let mut out: Vec<String> = actions
        .iter()
        .map(|a| match a.as_str() {
            "kms:ReEncryptFrom" | "kms:ReEncryptTo" => "kms:ReEncrypt*".to_owned(),
            "kms:GenerateDataKeyWithoutPlaintext" => "kms:GenerateDataKey*".to_owned(),
            other => other.to_owned(),
        })
        .collect();
    out.sort();
    out.dedup();
    out
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
    report.findings.extend(refusals(&prepared));
    let mut principals = Principals::default();
    let needs = Needs::of(&prepared);
    for ((user, key), purpose) in &needs.kms {
        let principal = principals.get(cloud, user).await;
        report
            .findings
            .extend(kms_findings(cloud, &mut principals, &principal, key, purpose).await);
    }
    for (user, actions) in &needs.service {
        let principal = principals.get(cloud, user).await;
        report
            .findings
            .push(service_finding(cloud, &mut principals, &principal, actions).await);
    }
    report.notes.push(
        "IAM: the roles' inline and attached policies are evaluated; permission boundaries, \
         session policies and organization SCPs are not"
            .to_owned(),
    );
    Ok(report)
}

/// What `run` checks before it starts: for each replica in another account, whether the
/// source key's policy and grants let the target's credentials use it. A replica for which that surely does not hold
/// is refused with the finding and its fix, instead of a copy that AWS fails, often hours
/// later; what cannot be decided is left to AWS. Returns how many replicas were refused.
pub async fn preflight(cloud: &dyn Cloud, prepared: &mut Prepared) -> usize {
    // Per (target credentials, source key, service): EC2 and RDS use a key with their own
    // kms:ViaService, and a key policy may admit one and not the other.
    let mut uses: BTreeMap<(Access, String, &'static str), Purpose> = BTreeMap::new();
    for task in &prepared.plan.tasks {
        let (service, keys) = source_keys(&task.resource);
        for t in &task.targets {
            if let Decision::Replicate { workflow, .. } = &t.decision
                && *workflow != Workflow::SameAccount
            {
                let target = &prepared.plan.targets[t.target];
                let label = format!("{} {} to {}", task.resource_type, task.id, target.label());
                for key in &keys {
                    uses.entry((target.access.clone(), (*key).to_owned(), service))
                        .or_insert_with(|| Purpose::new(key, &prepared.source_access))
                        .add(service, &label);
                }
            }
        }
    }
    let mut principals = Principals::default();
    let mut refusals: BTreeMap<(Access, String, &'static str), String> = BTreeMap::new();
    for ((user, key, service), purpose) in &uses {
        let principal = principals.get(cloud, user).await;
        let findings = kms_findings(cloud, &mut principals, &principal, key, purpose).await;
        // Only the key's side: the roles' IAM policies are `check`'s to report (they may be
        // unreadable, or rest on what snaprelay does not evaluate).
        if let Some(f) = findings
            .iter()
            .find(|f| f.status == Holds::Missing && f.check == "key policy")
        {
            let fix = f
                .fix
                .as_deref()
                .map(|x| format!("; to fix it, {x}"))
                .unwrap_or_default();
            refusals.insert(
                (user.clone(), key.clone(), service),
                format!(
                    "the preflight check found that {} cannot use source key {key} through \
                     {service}: {}{fix}",
                    principal_name(&principal),
                    f.detail
                ),
            );
        }
    }
    let mut refused = 0;
    let targets = prepared.plan.targets.clone();
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

fn principal_name(p: &Principal) -> String {
    p.role
        .as_ref()
        .map(|r| r.to_string())
        .or(p.other.clone())
        .unwrap_or_else(|| p.access.to_string())
}

/// The service of a resource and the keys of its snapshots.
fn source_keys(resource: &Resource) -> (&'static str, Vec<&str>) {
    match resource {
        Resource::Ec2(i) => (
            "ec2",
            i.volumes
                .iter()
                .filter_map(|v| v.kms_key_id.as_deref())
                .collect(),
        ),
        Resource::Rds(d) => ("rds", d.kms_key_id.as_deref().into_iter().collect()),
    }
}

/// Step 1: each target key as the target's credentials see it in the target's Region.
async fn target_keys(cloud: &dyn Cloud, policy: &Policy) -> Result<Vec<Finding>, CloudError> {
    let source = Access::role(policy.source.role_arn.clone());
    let source_account = match cloud.account_of(&source).await {
        Ok(a) => a,
        Err(e) => return Ok(vec![assume_finding(&source, "source", &e)]),
    };
    let mut findings = Vec::new();
    for (i, t) in policy.targets.iter().enumerate() {
        let Some(key) = &t.kms_key else { continue };
        let access = target_access(t, &source, &source_account);
        let field = format!("targets[{i}].kms_key");
        let finding = |status, detail: String, fix: Option<String>| Finding {
            status,
            check: "target key".into(),
            principal: principal_entry(&access, None),
            actions: vec![],
            resource: format!("{field} = {key}"),
            detail,
            fix,
        };
        let region = &t.region;
        if let Err(e) = cloud.account_of(&access).await {
            findings.push(assume_finding(&access, &format!("targets[{i}]"), &e));
            continue;
        }
        // (A key ARN of another Region is refused when the policy is read.)
        findings.push(match cloud.describe_key(&access, region, key.as_str()).await {
            Ok(info) if info.region != *region => finding(
                Holds::Missing,
                format!(
                    "{} is in {}; a replica in {region} needs a key of {region}",
                    info.arn, info.region
                ),
                Some(create_key_fix(region)),
            ),
            Ok(info) if info.state == "PendingDeletion" => finding(
                Holds::Missing,
                format!("{} is scheduled for deletion", info.arn),
                Some(format!(
                    "aws kms cancel-key-deletion --region {region} --key-id {arn} && aws kms \
                     enable-key --region {region} --key-id {arn}",
                    arn = info.arn
                )),
            ),
            Ok(info) if !info.is_enabled() => finding(
                Holds::Missing,
                format!("{} is {}, not Enabled", info.arn, info.state),
                Some(format!(
                    "aws kms enable-key --region {region} --key-id {}",
                    info.arn
                )),
            ),
            Ok(info) if info.manager == KeyManager::Aws => finding(
                Holds::Missing,
                format!(
                    "{} is an AWS managed key; replicas are encrypted with a customer managed key",
                    info.arn
                ),
                Some(create_key_fix(region)),
            ),
            Ok(info) => match info.unusable_for_snapshots() {
                Some(why) => finding(Holds::Missing, why, Some(create_key_fix(region))),
                None => finding(
                    Holds::Ok,
                    format!("{}: enabled, symmetric, customer managed", info.arn),
                    None,
                ),
            },
            Err(e) if e.is_not_found() => finding(
                Holds::Missing,
                format!("no such key in {region} ({})", e.message),
                Some(create_key_fix(region)),
            ),
            Err(e) if e.is_access_denied() => finding(
                Holds::Missing,
                format!("the target's credentials may not describe it ({})", e.message),
                Some(key_policy_fix(
                    &["kms:DescribeKey".to_owned()],
                    &principal_entry(&access, None),
                )),
            ),
            Err(e) => return Err(e),
        });
    }
    Ok(findings)
}

fn create_key_fix(region: &str) -> String {
    format!(
        "use a customer managed symmetric key of {region}: aws kms create-key --region {region} \
         (or, for a multi-Region key, aws kms replicate-key --key-id KEY --replica-region {region}), \
         then name it in kms_key"
    )
}

fn assume_finding(access: &Access, whose: &str, e: &CloudError) -> Finding {
    Finding {
        status: Holds::Missing,
        check: "credentials".into(),
        principal: access.to_string(),
        actions: vec!["sts:AssumeRole".into()],
        resource: access
            .role_arn
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default(),
        detail: format!("the {whose} credentials cannot be used: {e}"),
        fix: access.role_arn.as_ref().map(|r| {
            format!(
                "let the ambient principal assume {r}: in the role's trust policy, {}",
                json_statement(
                    "AllowSnaprelay",
                    "\"AWS\": \"AMBIENT-PRINCIPAL-ARN\"",
                    &["sts:AssumeRole".to_owned()],
                    None
                )
            )
        }),
    }
}

/// Step 2: what the plan refuses outright.
fn refusals(prepared: &Prepared) -> Vec<Finding> {
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

/// Who uses a key, and for what (to say in the finding).
struct Purpose {
    key_region: String,
    /// The credentials that can read the key's policy (the key's own account).
    owner: Access,
    what: BTreeSet<String>,
    /// `ec2` or `rds`: the service that uses the key (`kms:ViaService`).
    services: BTreeSet<&'static str>,
}

impl Purpose {
    /// A key's use, before any service or replica is known; `owner` reads its policy.
    fn new(key: &str, owner: &Access) -> Self {
        Self {
            key_region: crate::ids::key_arn_parts(key)
                .map(|(r, _)| r)
                .unwrap_or_default(),
            owner: owner.clone(),
            what: BTreeSet::new(),
            services: BTreeSet::new(),
        }
    }

    fn add(&mut self, service: &'static str, what: &str) {
        self.services.insert(service);
        self.what.insert(what.to_owned());
    }
}

/// What the plan's replicas need, gathered from every task.
#[derive(Default)]
struct Needs {
    kms: BTreeMap<(Access, String), Purpose>,
    service: BTreeMap<Access, BTreeSet<(String, String)>>,
}

impl Needs {
    fn of(prepared: &Prepared) -> Self {
        let plan = &prepared.plan;
        let source = &prepared.source_access;
        let mut needs = Needs::default();
        for task in &plan.tasks {
            let (service, source_keys) = source_keys(&task.resource);
            for t in &task.targets {
                let Decision::Replicate {
                    workflow,
                    kms_key_id,
                    staging_kms_key_id,
                    two_step,
                    ..
                } = &t.decision
                else {
                    continue;
                };
                let target = &plan.targets[t.target];
                let user = &target.access;
                let cross = *workflow != Workflow::SameAccount;
                let label = format!("{} {} to {}", task.resource_type, task.id, target.label());
                for key in &source_keys {
                    needs.kms_use(user, key, source, service, &label);
                }
                if let Some(key) = kms_key_id {
                    needs.kms_use(user, key, user, service, &label);
                }
                if let (true, Some(key)) = (*two_step, staging_kms_key_id) {
                    needs.kms_use(user, key, user, service, &label);
                }
                let source_side = (source, &plan.source_account);
                let target_side = (user, &target.account);
                needs.service_actions(source_side, service, true, cross, &task.region);
                needs.service_actions(target_side, service, false, cross, &target.region);
                if *two_step {
                    needs.service_actions(target_side, service, false, cross, &task.region);
                }
            }
        }
        needs
    }

    fn kms_use(
        &mut self,
        user: &Access,
        key: &str,
        owner: &Access,
        service: &'static str,
        what: &str,
    ) {
        self.kms
            .entry((user.clone(), key.to_owned()))
            .or_insert_with(|| Purpose::new(key, owner))
            .add(service, what);
    }

    /// The EC2 or RDS actions `who` (credentials acting in an account) makes in `region`.
    fn service_actions(
        &mut self,
        (who, account): (&Access, &AccountId),
        service: &'static str,
        source_side: bool,
        cross: bool,
        region: &str,
    ) {
        let actions: &[&str] = match (service, source_side) {
            ("ec2", true) => &[
                "ec2:CreateSnapshots",
                "ec2:CreateTags",
                "ec2:DescribeInstances",
                "ec2:DescribeSnapshots",
                "ec2:DeleteSnapshot",
            ],
            ("ec2", false) => &[
                "ec2:CopySnapshot",
                "ec2:CreateTags",
                "ec2:DescribeSnapshots",
                "ec2:DeleteSnapshot",
            ],
            (_, true) => &[
                "rds:CreateDBSnapshot",
                "rds:AddTagsToResource",
                "rds:DescribeDBInstances",
                "rds:DescribeDBSnapshots",
                "rds:DeleteDBSnapshot",
            ],
            (_, false) => &[
                "rds:CopyDBSnapshot",
                "rds:AddTagsToResource",
                "rds:DescribeDBSnapshots",
                "rds:DeleteDBSnapshot",
            ],
        };
        let share = match service {
            "ec2" => "ec2:ModifySnapshotAttribute",
            _ => "rds:ModifyDBSnapshotAttribute",
        };
        let resource = match service {
            "ec2" => format!("arn:aws:ec2:{region}::snapshot/*"),
            _ => format!("arn:aws:rds:{region}:{account}:snapshot:*"),
        };
        let set = self.service.entry(who.clone()).or_default();
        for a in actions
            .iter()
            .copied()
            .chain((source_side && cross).then_some(share))
        {
            let resource = if a.contains(":Describe") {
                "*".to_owned()
            } else {
                resource.clone()
            };
            set.insert((a.to_owned(), resource));
        }
    }
}

/// A set of credentials as a principal policies can name.
#[derive(Clone)]
struct Principal {
    access: Access,
    account: Option<AccountId>,
    /// The role, when the credentials are a role's (named in the policy, or the ambient
    /// credentials of an assumed role).
    role: Option<RoleArn>,
    /// What the caller is, when it is not a role (a user, the root).
    other: Option<String>,
    /// Why the principal could not be found out.
    error: Option<String>,
}

#[derive(Default)]
struct Principals {
    known: BTreeMap<Access, Principal>,
    policies: BTreeMap<Access, Result<Vec<Statement>, (Holds, String)>>,
}

impl Principals {
    async fn get(&mut self, cloud: &dyn Cloud, access: &Access) -> Principal {
        if let Some(p) = self.known.get(access) {
            return p.clone();
        }
        let mut p = Principal {
            access: access.clone(),
            account: None,
            role: access.role_arn.clone(),
            other: None,
            error: None,
        };
        match cloud.caller_arn(access).await {
            Ok(arn) => {
                p.account = arn.split(':').nth(4).and_then(AccountId::parse);
                if p.role.is_none() {
                    p.role = assumed_role(&arn);
                    if p.role.is_none() {
                        p.other = Some(arn);
                    }
                }
            }
            Err(e) => p.error = Some(e.to_string()),
        }
        self.known.insert(access.clone(), p.clone());
        p
    }

    /// The principal's IAM policies, parsed; `Err` says why they are not known.
    /// The principal's IAM policies as one list of statements (IAM evaluates them
    /// together: any explicit Deny wins, any Allow allows). Statements without a `Sid` are
    /// named by their place. `Err` says why they are not known, and whether that is a problem
    /// in itself (a role that does not exist) or only unknown.
    async fn policies(
        &mut self,
        cloud: &dyn Cloud,
        p: &Principal,
    ) -> Result<Vec<Statement>, (Holds, String)> {
        if let Some(known) = self.policies.get(&p.access) {
            return known.clone();
        }
        let result = match (&p.role, &p.other, &p.error) {
            (_, _, Some(e)) => Err((Holds::Unknown, e.clone())),
            (Some(role), _, _) => match cloud.role_policies(&p.access, role.name()).await {
                Ok(documents) => {
                    let mut all = Vec::new();
                    let mut failed = None;
                    for (name, d) in &documents {
                        match access::parse(d) {
                            Ok(statements) => {
                                all.extend(statements.into_iter().enumerate().map(
                                    |(i, mut st)| {
                                        let sid = st.sid.take().map_or_else(
                                            || format!("Statement[{i}]"),
                                            |sid| format!("Sid {sid:?}"),
                                        );
                                        st.sid = Some(format!("{sid} in policy {name} of {role}"));
                                        st
                                    },
                                ));
                            }
                            Err(e) => {
                                failed =
                                    Some(format!("policy {name} of {role} cannot be read: {e}"))
                            }
                        }
                    }
                    match failed {
                        Some(why) => Err((Holds::Unknown, why)),
                        None => Ok(all),
                    }
                }
                Err(e) if e.is_not_found() => Err((
                    Holds::Missing,
                    format!(
                        "role {role} does not exist in account {} ({e}); create it, with a trust \
                         policy that lets the credentials snaprelay runs with assume it, and the \
                         permissions this check lists",
                        role.account()
                    ),
                )),
                Err(e) => Err((
                    Holds::Unknown,
                    format!(
                        "the IAM policies of {role} could not be read ({e}); allow \
                         iam:ListRolePolicies, iam:GetRolePolicy, iam:ListAttachedRolePolicies, \
                         iam:GetPolicy and iam:GetPolicyVersion on it to have them checked"
                    ),
                )),
            },
            (None, Some(other), _) => Err((
                Holds::Unknown,
                format!(
                    "{other} is not a role: only roles' IAM policies are evaluated; give role_arn \
                     in the policy to have them checked"
                ),
            )),
            (None, None, _) => Err((Holds::Unknown, "the principal is unknown".to_owned())),
        };
        self.policies.insert(p.access.clone(), result.clone());
        result
    }
}

/// A key-policy statement as findings name it: `Sid "..."`, or `Statement[N]` without a Sid.
fn named(sid: &str) -> String {
    if sid.starts_with("Statement[") {
        sid.to_owned()
    } else {
        format!("Sid {sid:?}")
    }
}

/// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` as the role `arn:aws:iam::ACCOUNT:role/NAME`.
fn assumed_role(arn: &str) -> Option<RoleArn> {
    let mut parts = arn.splitn(6, ':');
    let (_, partition, service, _, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if service != "sts" {
        return RoleArn::parse(arn);
    }
    let name = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    RoleArn::parse(&format!("arn:{partition}:iam::{account}:role/{name}"))
}

/// The request context EBS and RDS give KMS when they use a key on a principal's behalf.
fn kms_context(
    account: &str,
    service: &str,
    region: &str,
    action: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut context = BTreeMap::from([
        ("kms:CallerAccount".to_owned(), vec![account.to_owned()]),
        ("aws:PrincipalAccount".to_owned(), vec![account.to_owned()]),
        (
            "kms:ViaService".to_owned(),
            vec![format!("{service}.{region}.amazonaws.com")],
        ),
    ]);
    if action == "kms:CreateGrant" {
        // The grants EBS and RDS create for a copy are for an AWS resource.
        context.insert(
            "kms:GrantIsForAWSResource".to_owned(),
            vec!["true".to_owned()],
        );
    }
    context
}

/// Step 3: a principal's use of a key, from both sides.
async fn kms_findings(
    cloud: &dyn Cloud,
    principals: &mut Principals,
    p: &Principal,
    key: &str,
    purpose: &Purpose,
) -> Vec<Finding> {
    let region = &purpose.key_region;
    let Some(account) = p.account.as_ref().map(AccountId::as_str) else {
        return vec![unknown(
            "key policy",
            p,
            key,
            p.error.clone().unwrap_or_default(),
        )];
    };
    let key_account = crate::ids::key_arn_parts(key)
        .map(|(_, a)| a.to_string())
        .unwrap_or_default();
    let uses = purpose.what.iter().cloned().collect::<Vec<_>>().join("; ");
    let role_arn = p.role.as_ref().map(|r| r.to_string());
    let caller = Caller {
        account: account.to_owned(),
        arn: role_arn.clone(),
    };
    // Only statements naming the role itself (or "*") match this caller.
    let the_role_only = Caller {
        account: "000000000000".into(),
        arn: role_arn.clone(),
    };

    // The key side.
    let statements = match cloud.key_policy(&purpose.owner, region, key).await {
        Ok(doc) => access::parse(&doc).map_err(|e| format!("the key policy cannot be read: {e}")),
        Err(e) => Err(format!(
            "the key policy could not be read with {} ({e}); allow kms:GetKeyPolicy to have it \
             checked",
            purpose.owner
        )),
    };
    let grants: Vec<KeyGrant> = cloud
        .key_grants(&purpose.owner, region, key)
        .await
        .unwrap_or_default();
    let mut findings = Vec::new();
    let mut missing_key_side = Vec::new();
    let mut denied = Vec::new();
    let mut unsure = Vec::new();
    // The actions the key policy grants the role itself, in its own account: its IAM
    // policies need not allow them (but an explicit Deny there still wins).
    let mut direct: BTreeSet<&str> = KMS_ACTIONS.into_iter().collect();
    match &statements {
        Err(why) => {
            direct.clear();
            findings.push(unknown("key policy", p, key, why.clone()));
        }
        Ok(statements) => {
            // Each service that uses the key calls KMS with its own kms:ViaService.
            for (action, service) in KMS_ACTIONS
                .iter()
                .flat_map(|a| purpose.services.iter().map(move |s| (*a, *s)))
            {
                let context = kms_context(account, service, region, action);
                let request = |caller| Request {
                    caller,
                    action,
                    resource: key,
                    context: &context,
                };
                let mut is_direct = false;
                match access::evaluate(statements, &request(&caller)) {
                    Verdict::Denied(sid) => denied.push(format!("{action} ({})", named(&sid))),
                    Verdict::Allowed(_) => {
                        is_direct = account == key_account
                            && matches!(
                                access::evaluate(statements, &request(&the_role_only)),
                                Verdict::Allowed(_)
                            );
                    }
                    Verdict::NotAllowed | Verdict::Unsure(_)
                        if granted(&grants, action, account, role_arn.as_deref()) =>
                    {
                        is_direct = account == key_account;
                    }
                    Verdict::Unsure(sid) => {
                        unsure.push(format!("{action} via {service} ({})", named(&sid)));
                    }
                    Verdict::NotAllowed => missing_key_side.push(action.to_owned()),
                }
                if !is_direct {
                    direct.remove(action);
                }
            }
            missing_key_side.dedup();
            let entry = principal_entry(
                &p.access,
                Some((account, &key_account, role_arn.as_deref())),
            );
            findings.push(if !denied.is_empty() {
                Finding {
                    status: Holds::Missing,
                    check: "key policy".into(),
                    principal: entry.clone(),
                    actions: as_written(&KMS_ACTIONS.map(str::to_owned)),
                    resource: key.to_owned(),
                    detail: format!(
                        "denied by the key policy: {} (for {uses})",
                        denied.join(", ")
                    ),
                    fix: Some("remove or narrow the Deny statement named above".to_owned()),
                }
            } else if !missing_key_side.is_empty() {
                Finding {
                    status: Holds::Missing,
                    check: "key policy".into(),
                    principal: entry.clone(),
                    actions: as_written(&missing_key_side),
                    resource: key.to_owned(),
                    detail: format!(
                        "the key policy (and its grants) do not allow {} for {entry} (for {uses})",
                        as_written(&missing_key_side).join(", ")
                    ),
                    fix: Some(key_policy_fix(&missing_key_side, &entry)),
                }
            } else if !unsure.is_empty() {
                Finding {
                    status: Holds::Unknown,
                    check: "key policy".into(),
                    principal: entry,
                    actions: as_written(&KMS_ACTIONS.map(str::to_owned)),
                    resource: key.to_owned(),
                    detail: format!(
                        "may be allowed by statements with conditions or elements snaprelay does \
                         not evaluate: {} (for {uses})",
                        unsure.join(", ")
                    ),
                    fix: None,
                }
            } else {
                Finding {
                    status: Holds::Ok,
                    check: "key policy".into(),
                    principal: entry,
                    actions: as_written(&KMS_ACTIONS.map(str::to_owned)),
                    resource: key.to_owned(),
                    detail: format!("allowed (for {uses})"),
                    fix: None,
                }
            });
        }
    }

    // The principal's side, always: an explicit Deny there wins over any key policy.
    let requests: Vec<IamRequest> = KMS_ACTIONS
        .iter()
        .flat_map(|a| {
            purpose.services.iter().map(|service| IamRequest {
                action: (*a).to_owned(),
                resource: key.to_owned(),
                context: kms_context(account, service, region, a),
                optional: direct.contains(a),
            })
        })
        .collect();
    let mut finding = iam_finding(cloud, principals, p, &requests).await;
    finding.detail = format!("{} (for {uses})", finding.detail);
    findings.push(finding);
    findings
}

/// One request a principal's IAM policies are asked about.
struct IamRequest {
    action: String,
    resource: String,
    context: BTreeMap<String, Vec<String>>,
    /// Allowed anyway (by the key policy naming the principal): only a Deny counts.
    optional: bool,
}

/// Whether a grant gives `principal` (or its account) the operation of `action`.
fn granted(grants: &[KeyGrant], action: &str, account: &str, role: Option<&str>) -> bool {
    let operation = action.trim_start_matches("kms:");
    let root = format!("arn:aws:iam::{account}:root");
    grants.iter().any(|g| {
        (Some(g.grantee.as_str()) == role || g.grantee == root || g.grantee == account)
            && g.operations.iter().any(|o| o == operation)
    })
}

/// Step 4: a principal's EC2 and RDS actions.
async fn service_finding(
    cloud: &dyn Cloud,
    principals: &mut Principals,
    p: &Principal,
    actions: &BTreeSet<(String, String)>,
) -> Finding {
    let account = p
        .account
        .as_ref()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let requests: Vec<IamRequest> = actions
        .iter()
        .map(|(action, resource)| IamRequest {
            action: action.clone(),
            resource: resource.clone(),
            context: BTreeMap::from([("aws:PrincipalAccount".to_owned(), vec![account.clone()])]),
            optional: false,
        })
        .collect();
    iam_finding(cloud, principals, p, &requests).await
}

/// Whether the principal's IAM policies, taken together as IAM does, allow each request.
async fn iam_finding(
    cloud: &dyn Cloud,
    principals: &mut Principals,
    p: &Principal,
    requests: &[IamRequest],
) -> Finding {
    let who = principal_name(p);
    let resources: BTreeSet<&str> = requests.iter().map(|r| r.resource.as_str()).collect();
    let resource = resources.into_iter().collect::<Vec<_>>().join(", ");
    let all: Vec<String> = as_written(
        &requests
            .iter()
            .map(|r| r.action.clone())
            .collect::<Vec<_>>(),
    );
    let finding = |status, detail: String, fix: Option<String>, actions: Vec<String>| Finding {
        status,
        check: "IAM policy".into(),
        principal: who.clone(),
        actions,
        resource: resource.clone(),
        detail,
        fix,
    };
    let statements = match principals.policies(cloud, p).await {
        Ok(s) => s,
        Err((status, why)) => return finding(status, why, None, all),
    };
    let caller = Caller {
        account: p
            .account
            .as_ref()
            .map(|a| a.to_string())
            .unwrap_or_default(),
        arn: p.role.as_ref().map(|r| r.to_string()),
    };
    let mut missing: Vec<(String, String)> = Vec::new();
    let mut denied = Vec::new();
    let mut unsure = Vec::new();
    for r in requests {
        let request = Request {
            caller: &caller,
            action: &r.action,
            resource: &r.resource,
            context: &r.context,
        };
        match access::evaluate(&statements, &request) {
            Verdict::Denied(sid) => denied.push(format!("{} ({sid})", r.action)),
            Verdict::Allowed(_) => {}
            Verdict::Unsure(sid) => unsure.push(format!("{} ({sid})", r.action)),
            Verdict::NotAllowed if r.optional => {}
            Verdict::NotAllowed => missing.push((r.action.clone(), r.resource.clone())),
        }
    }
    denied.dedup();
    unsure.dedup();
    missing.dedup();
    if !denied.is_empty() {
        return finding(
            Holds::Missing,
            format!("denied by an IAM policy: {}", denied.join(", ")),
            Some("remove or narrow the Deny statement named above".to_owned()),
            all,
        );
    }
    if !missing.is_empty() {
        let names: Vec<String> = missing.iter().map(|(a, _)| a.clone()).collect();
        let mut on: Vec<String> = missing
            .iter()
            .map(|(_, r)| {
                if r.starts_with("arn:aws:kms") {
                    r.clone()
                } else {
                    "*".to_owned()
                }
            })
            .collect();
        on.sort();
        on.dedup();
        return finding(
            Holds::Missing,
            format!(
                "the IAM policies of {who} do not allow {}",
                as_written(&names).join(", ")
            ),
            Some(format!(
                "attach to {who} the IAM policy {{\"Version\": \"2012-10-17\", \"Statement\": [{}]}}",
                json_statement_on("SnaprelayReplication", &names, &on)
            )),
            as_written(&names),
        );
    }
    if !unsure.is_empty() {
        return finding(
            Holds::Unknown,
            format!(
                "may be allowed or denied by statements with conditions or elements snaprelay \
                 does not evaluate: {}",
                unsure.join(", ")
            ),
            None,
            all,
        );
    }
    finding(Holds::Ok, "allowed".into(), None, all)
}

fn unknown(check: &str, p: &Principal, key: &str, why: String) -> Finding {
    Finding {
        status: Holds::Unknown,
        check: check.into(),
        principal: p.access.to_string(),
        actions: as_written(&KMS_ACTIONS.map(str::to_owned)),
        resource: key.to_owned(),
        detail: why,
        fix: None,
    }
}

/// How a key policy names the principal: the role itself in the key's own account, the
/// account (`arn:aws:iam::ACCOUNT:root`) across accounts, as AWS's documented examples do.
fn principal_entry(access: &Access, who: Option<(&str, &str, Option<&str>)>) -> String {
    match who {
        Some((account, key_account, Some(role))) if account == key_account => role.to_owned(),
        Some((account, _, _)) => format!("arn:aws:iam::{account}:root"),
        None => access
            .role_arn
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_else(|| access.to_string()),
    }
}

/// The key-policy statements that allow `actions` to `principal`: AWS's documented "Allow
/// use of the key" and, for `kms:CreateGrant`, "Allow attachment of persistent resources".
fn key_policy_fix(actions: &[String], principal: &str) -> String {
    // Sids must be unique in a key policy: they name the principal's account (or role).
    let who = principal
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_suffix(":root"))
        .unwrap_or(principal);
    let principal = format!("\"AWS\": \"{principal}\"");
    let (grant, other): (Vec<String>, Vec<String>) = actions
        .iter()
        .cloned()
        .partition(|a| a == "kms:CreateGrant");
    let mut statements = Vec::new();
    if !other.is_empty() {
        statements.push(json_statement(
            &format!("Allow use of the key for snaprelay in {who}"),
            &principal,
            &as_written(&other),
            None,
        ));
    }
    if !grant.is_empty() {
        statements.push(json_statement(
            &format!("Allow attachment of persistent resources for snaprelay in {who}"),
            &principal,
            &grant,
            Some("\"Bool\": {\"kms:GrantIsForAWSResource\": \"true\"}"),
        ));
    }
    format!(
        "add these statements to the key policy's Statement list: [{}]",
        statements.join(", ")
    )
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_statement(
    sid: &str,
    principal: &str,
    actions: &[String],
    condition: Option<&str>,
) -> String {
    let condition = condition
        .map(|c| format!(", \"Condition\": {{{c}}}"))
        .unwrap_or_default();
    format!(
        "{{\"Sid\": \"{sid}\", \"Effect\": \"Allow\", \"Principal\": {{{principal}}}, \"Action\": \
         [{}], \"Resource\": \"*\"{condition}}}",
        quoted(actions)
    )
}

fn json_statement_on(sid: &str, actions: &[String], resources: &[String]) -> String {
    format!(
        "{{\"Sid\": \"{sid}\", \"Effect\": \"Allow\", \"Action\": [{}], \"Resource\": [{}]}}",
        quoted(&as_written(actions)),
        quoted(resources)
    )
}
