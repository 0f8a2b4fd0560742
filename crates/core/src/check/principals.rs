//! The principals a policy's credentials are (who STS says they are), and their IAM policies,
//! each read once per `check`. Only roles' policies are read, inline and attached managed
//! ones; a user or the root is said to be unknown, not guessed.

use std::collections::BTreeMap;

use crate::access::{self, Statement};
use crate::ids::{AccountId, RoleArn};
use crate::ports::{Access, Cloud};

use super::Holds;

/// A set of credentials as a principal policies can name.
#[derive(Clone)]
pub(super) struct Principal {
    pub access: Access,
    pub account: Option<AccountId>,
    /// The role, when the credentials are a role's (named in the policy, or the ambient
    /// credentials of an assumed role).
    pub role: Option<RoleArn>,
    /// What the caller is, when it is not a role (a user, the root).
    pub other: Option<String>,
    /// Why the principal could not be found out.
    pub error: Option<String>,
}

impl Principal {
    /// The principal as findings name it: its role, else what STS says it is, else the
    /// credentials.
    pub fn name(&self) -> String {
        self.role
            .as_ref()
            .map(|r| r.to_string())
            .or(self.other.clone())
            .unwrap_or_else(|| self.access.to_string())
    }
}

/// The principals and their IAM policies, asked of AWS once each.
#[derive(Default)]
pub(super) struct Principals {
    known: BTreeMap<Access, Principal>,
    policies: BTreeMap<Access, Result<Vec<Statement>, (Holds, String)>>,
}

impl Principals {
    pub async fn get(&mut self, cloud: &dyn Cloud, access: &Access) -> Principal {
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

    /// The principal's IAM policies as one list of statements (IAM evaluates them
    /// together: any explicit Deny wins, any Allow allows). Statements are named by their Sid
    /// (or their place) and the policy they are in. `Err` says why they are not known, and
    /// whether that is a problem in itself (a role that does not exist) or only unknown.
    pub async fn policies(
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
                Ok(documents) => role_statements(role, &documents),
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

/// A role's policy documents (by name) parsed into one list, each statement named
/// `Sid "..." in policy NAME of ROLE` (or `Statement[N] in ...`).
fn role_statements(
    role: &RoleArn,
    documents: &[(String, String)],
) -> Result<Vec<Statement>, (Holds, String)> {
    let mut all = Vec::new();
    let mut failed = None;
    for (name, d) in documents {
        match access::parse(d) {
            Ok(statements) => {
                all.extend(statements.into_iter().enumerate().map(|(i, mut st)| {
                    let sid = st
                        .sid
                        .take()
                        .map_or_else(|| format!("Statement[{i}]"), |sid| format!("Sid {sid:?}"));
                    st.sid = Some(format!("{sid} in policy {name} of {role}"));
                    st
                }));
            }
            Err(e) => failed = Some(format!("policy {name} of {role} cannot be read: {e}")),
        }
    }
    match failed {
        Some(why) => Err((Holds::Unknown, why)),
        None => Ok(all),
    }
}

/// `arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION` as the role `arn:aws:iam::ACCOUNT:role/NAME`.
pub(super) fn assumed_role(arn: &str) -> Option<RoleArn> {
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

/// How a key policy names the principal: the role itself in the key's own account, the
/// account (`arn:aws:iam::ACCOUNT:root`) across accounts, as AWS's documented examples do.
/// `who`: the principal's account, the key's account and the role, once they are known.
pub(super) fn principal_entry(access: &Access, who: Option<(&str, &str, Option<&str>)>) -> String {
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
