//! Step 1: each target key as the target's credentials see it in the target's Region: it
//! exists there, is enabled, symmetric `ENCRYPT_DECRYPT` and customer managed. The key is
//! judged by [`resolve_key`], as `prepare` judges it; what does not fit is a finding with its
//! fix instead of an input error.

use crate::model::{KeyInfo, KeyManager};
use crate::plan::keys::{KeyProblem, resolve_key};
use crate::plan::prepare::target_access;
use crate::policy::Policy;
use crate::ports::{Access, Cloud, CloudError};

use super::fixes::{
    cancel_deletion_fix, create_key_fix, enable_key_fix, key_policy_fix, trust_policy_fix,
};
use super::principals::principal_entry;
use super::{Finding, Holds};

pub(super) async fn target_keys(
    cloud: &dyn Cloud,
    policy: &Policy,
) -> Result<Vec<Finding>, CloudError> {
    let source = Access::role(policy.source.role_arn.clone());
    let source_account = match cloud.account_of(&source).await {
        Ok(a) => a,
        // No answer from AWS is no verdict on permissions: the check stops with the error.
        Err(e) if e.is_credentials() || e.is_unreachable() => return Err(e),
        Err(e) => return Ok(vec![credentials_finding(&source, "source", &e)]),
    };
    let mut findings = Vec::new();
    for (i, t) in policy.targets.iter().enumerate() {
        let Some(key) = &t.kms_key else { continue };
        let access = target_access(t, &source, &source_account);
        let account = match cloud.account_of(&access).await {
            Ok(a) => a,
            Err(e) if e.is_unreachable() => return Err(e),
            Err(e) => {
                findings.push(credentials_finding(&access, &format!("targets[{i}]"), &e));
                continue;
            }
        };
        // (A key ARN of another Region is refused when the policy is read.)
        let fitness = resolve_key(cloud, &access, &account, &t.region, key).await?;
        let principal = principal_entry(&access, None);
        let (status, detail, fix) = judge(&fitness, &t.region, &principal);
        findings.push(Finding {
            status,
            check: "target key".into(),
            principal,
            actions: vec![],
            resource: format!("targets[{i}].kms_key = {key}"),
            detail,
            fix,
        });
    }
    Ok(findings)
}

/// What a target key's fitness for a replica in `region` means for `check`: whether it holds,
/// why, and the fix. `principal` is the target's credentials as a key policy names them.
pub(super) fn judge(
    fitness: &Result<KeyInfo, KeyProblem>,
    region: &str,
    principal: &str,
) -> (Holds, String, Option<String>) {
    let missing = |detail: String, fix: String| (Holds::Missing, detail, Some(fix));
    match fitness {
        Err(KeyProblem::OtherRegion {
            key, key_region, ..
        }) => missing(
            format!("{key} is in {key_region}; a replica in {region} needs a key of {region}"),
            create_key_fix(region),
        ),
        Err(KeyProblem::Unusable { info, .. }) if info.state == "PendingDeletion" => missing(
            format!("{} is scheduled for deletion", info.arn),
            cancel_deletion_fix(region, &info.arn),
        ),
        Err(KeyProblem::Unusable { info, .. }) if !info.is_enabled() => missing(
            format!("{} is {}, not Enabled", info.arn, info.state),
            enable_key_fix(region, &info.arn),
        ),
        Ok(info) | Err(KeyProblem::Unusable { info, .. }) if info.manager == KeyManager::Aws => {
            missing(
                format!(
                    "{} is an AWS managed key; replicas are encrypted with a customer managed key",
                    info.arn
                ),
                create_key_fix(region),
            )
        }
        Err(KeyProblem::Unusable { why, .. }) => missing(why.clone(), create_key_fix(region)),
        Ok(info) => (
            Holds::Ok,
            format!("{}: enabled, symmetric, customer managed", info.arn),
            None,
        ),
        Err(KeyProblem::NotFound { message, .. }) => missing(
            format!("no such key in {region} ({message})"),
            create_key_fix(region),
        ),
        Err(KeyProblem::Denied { message, .. }) => missing(
            format!("the target's credentials may not describe it ({message})"),
            key_policy_fix(&["kms:DescribeKey".to_owned()], principal),
        ),
    }
}

/// Credentials that cannot be used at all (a role that cannot be assumed): nothing else about
/// them can be checked.
fn credentials_finding(access: &Access, whose: &str, e: &CloudError) -> Finding {
    let role = access.role_arn.as_ref().map(|r| r.to_string());
    Finding {
        status: Holds::Missing,
        check: "credentials".into(),
        principal: access.to_string(),
        actions: vec!["sts:AssumeRole".into()],
        resource: role.clone().unwrap_or_default(),
        detail: format!("the {whose} credentials cannot be used: {e}"),
        fix: role.as_deref().map(trust_policy_fix),
    }
}
