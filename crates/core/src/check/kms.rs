//! Step 3: a principal's use of a key, from both sides. The key side (its key policy, then
//! its grants) and the principal's side (its IAM policies) must both allow the KMS actions of
//! SPEC section 3, except that a key policy naming the role itself in its own account needs no
//! IAM permission; an explicit Deny on either side wins.
//! https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html

use std::collections::{BTreeMap, BTreeSet};

use crate::access::{self, Caller, Request, Statement, Verdict};
use crate::ports::{Cloud, KeyGrant};

use super::fixes::{REMOVE_THE_DENY, as_written, key_policy_fix};
use super::iam::{IamRequest, iam_finding};
use super::needs::{KMS_ACTIONS, Purpose};
use super::principals::{Principal, Principals, principal_entry};
use super::{Finding, Holds};

/// The findings of `p`'s use of `key`: the key side's, then the principal's.
pub(super) async fn kms_findings(
    cloud: &dyn Cloud,
    principals: &mut Principals,
    p: &Principal,
    key: &str,
    purpose: &Purpose,
) -> Vec<Finding> {
    let Some(user) = KeyUser::of(p, key) else {
        let why = p.error.clone().unwrap_or_default();
        return vec![unknown(p, key, why)];
    };
    let uses = purpose.uses();
    let statements = key_policy(cloud, key, purpose).await;
    let grants = cloud
        .key_grants(&purpose.owner, &purpose.key_region, key)
        .await
        .unwrap_or_default();
    let mut findings = Vec::new();
    let direct = match statements {
        Err(why) => {
            findings.push(unknown(p, key, why));
            BTreeSet::new()
        }
        Ok(statements) => {
            let side = KeySide::evaluate(&statements, &grants, &user, key, purpose);
            findings.push(side.finding(&user.entry(p), key, &uses));
            side.direct
        }
    };
    // The principal's side, always: an explicit Deny there wins over any key policy.
    let requests = iam_requests(&user, key, purpose, &direct);
    let mut finding = iam_finding(cloud, principals, p, &requests).await;
    finding.detail = format!("{} (for {uses})", finding.detail);
    findings.push(finding);
    findings
}

/// The key's policy, read with the key's own account's credentials; `Err` says why it is
/// not known.
async fn key_policy(
    cloud: &dyn Cloud,
    key: &str,
    purpose: &Purpose,
) -> Result<Vec<Statement>, String> {
    match cloud
        .key_policy(&purpose.owner, &purpose.key_region, key)
        .await
    {
        Ok(doc) => access::parse(&doc).map_err(|e| format!("the key policy cannot be read: {e}")),
        Err(e) => Err(format!(
            "the key policy could not be read with {} ({e}); allow kms:GetKeyPolicy to have it \
             checked",
            purpose.owner
        )),
    }
}

/// The principal as a key policy sees its requests.
pub(super) struct KeyUser {
    /// The account the principal acts in.
    pub account: String,
    /// The account the key belongs to.
    pub key_account: String,
    pub role: Option<String>,
}

impl KeyUser {
    /// `None` when the principal's account could not be found out.
    pub fn of(p: &Principal, key: &str) -> Option<Self> {
        Some(Self {
            account: p.account.as_ref()?.to_string(),
            key_account: crate::ids::key_arn_parts(key)
                .map(|(_, a)| a.to_string())
                .unwrap_or_default(),
            role: p.role.as_ref().map(|r| r.to_string()),
        })
    }

    fn caller(&self) -> Caller {
        Caller {
            account: self.account.clone(),
            arn: self.role.clone(),
        }
    }

    /// A caller only statements naming the role itself (or "*") match.
    fn the_role_only(&self) -> Caller {
        Caller {
            account: "000000000000".into(),
            arn: self.role.clone(),
        }
    }

    /// How the key policy (and its fix) names the principal.
    fn entry(&self, p: &Principal) -> String {
        principal_entry(
            &p.access,
            Some((&self.account, &self.key_account, self.role.as_deref())),
        )
    }
}

/// What the key policy and its grants say of each KMS action, through each service that
/// uses the key (each calls KMS with its own `kms:ViaService`).
#[derive(Debug, Default)]
pub(super) struct KeySide {
    /// `ACTION (statement)` of each Deny.
    pub denied: Vec<String>,
    /// Actions that neither the key policy nor a grant allows.
    pub missing: Vec<String>,
    /// `ACTION via SERVICE (statement)` of each statement snaprelay cannot decide.
    pub unsure: Vec<String>,
    /// The actions the key policy (or a grant) gives the role itself, in its own account:
    /// its IAM policies need not allow them (but an explicit Deny there still wins).
    pub direct: BTreeSet<&'static str>,
}

impl KeySide {
    pub fn evaluate(
        statements: &[Statement],
        grants: &[KeyGrant],
        user: &KeyUser,
        key: &str,
        purpose: &Purpose,
    ) -> Self {
        let region = &purpose.key_region;
        let caller = user.caller();
        let the_role_only = user.the_role_only();
        let own_account = user.account == user.key_account;
        let mut side = KeySide {
            direct: KMS_ACTIONS.into_iter().collect(),
            ..KeySide::default()
        };
        for (action, service) in KMS_ACTIONS
            .iter()
            .flat_map(|a| purpose.services.iter().map(move |s| (*a, *s)))
        {
            let context = kms_context(&user.account, service, region, action);
            let request = |caller| Request {
                caller,
                action,
                resource: key,
                context: &context,
            };
            let mut is_direct = false;
            match access::evaluate(statements, &request(&caller)) {
                Verdict::Denied(sid) => side.denied.push(format!("{action} ({})", named(&sid))),
                Verdict::Allowed(_) => {
                    is_direct = own_account
                        && matches!(
                            access::evaluate(statements, &request(&the_role_only)),
                            Verdict::Allowed(_)
                        );
                }
                Verdict::NotAllowed | Verdict::Unsure(_)
                    if granted(grants, action, &user.account, user.role.as_deref()) =>
                {
                    is_direct = own_account;
                }
                Verdict::Unsure(sid) => {
                    side.unsure
                        .push(format!("{action} via {service} ({})", named(&sid)));
                }
                Verdict::NotAllowed => side.missing.push(action.to_owned()),
            }
            if !is_direct {
                side.direct.remove(action);
            }
        }
        side.missing.dedup();
        side
    }

    /// The key side's finding: a Deny first, then what is missing, then what is unsure.
    pub fn finding(&self, entry: &str, key: &str, uses: &str) -> Finding {
        let finding = |status, actions, detail, fix| Finding {
            status,
            check: "key policy".into(),
            principal: entry.to_owned(),
            actions,
            resource: key.to_owned(),
            detail,
            fix,
        };
        let all = as_written(&KMS_ACTIONS.map(str::to_owned));
        if !self.denied.is_empty() {
            finding(
                Holds::Missing,
                all,
                format!(
                    "denied by the key policy: {} (for {uses})",
                    self.denied.join(", ")
                ),
                Some(REMOVE_THE_DENY.to_owned()),
            )
        } else if !self.missing.is_empty() {
            let missing = as_written(&self.missing);
            finding(
                Holds::Missing,
                missing.clone(),
                format!(
                    "the key policy (and its grants) do not allow {} for {entry} (for {uses})",
                    missing.join(", ")
                ),
                Some(key_policy_fix(&self.missing, entry)),
            )
        } else if !self.unsure.is_empty() {
            finding(
                Holds::Unknown,
                all,
                format!(
                    "may be allowed by statements with conditions or elements snaprelay does \
                     not evaluate: {} (for {uses})",
                    self.unsure.join(", ")
                ),
                None,
            )
        } else {
            finding(Holds::Ok, all, format!("allowed (for {uses})"), None)
        }
    }
}

/// The requests the principal's IAM policies are asked about: every KMS action through every
/// service; those in `direct` only count if denied.
fn iam_requests(
    user: &KeyUser,
    key: &str,
    purpose: &Purpose,
    direct: &BTreeSet<&str>,
) -> Vec<IamRequest> {
    KMS_ACTIONS
        .iter()
        .flat_map(|a| {
            purpose.services.iter().map(|service| IamRequest {
                action: (*a).to_owned(),
                resource: key.to_owned(),
                context: kms_context(&user.account, service, &purpose.key_region, a),
                optional: direct.contains(a),
            })
        })
        .collect()
}

/// The request context EBS and RDS give KMS when they use a key on a principal's behalf.
pub(super) fn kms_context(
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

/// Whether a grant gives `role` (or its account) the operation of `action`.
pub(super) fn granted(
    grants: &[KeyGrant],
    action: &str,
    account: &str,
    role: Option<&str>,
) -> bool {
    let operation = action.trim_start_matches("kms:");
    let root = format!("arn:aws:iam::{account}:root");
    grants.iter().any(|g| {
        (Some(g.grantee.as_str()) == role || g.grantee == root || g.grantee == account)
            && g.operations.iter().any(|o| o == operation)
    })
}

/// A key-policy statement as findings name it: `Sid "..."`, or `Statement[N]` without a Sid.
fn named(sid: &str) -> String {
    if sid.starts_with("Statement[") {
        sid.to_owned()
    } else {
        format!("Sid {sid:?}")
    }
}

/// A key side that could not be decided (its policy unreadable, the principal unknown).
fn unknown(p: &Principal, key: &str, why: String) -> Finding {
    Finding {
        status: Holds::Unknown,
        check: "key policy".into(),
        principal: p.access.to_string(),
        actions: as_written(&KMS_ACTIONS.map(str::to_owned)),
        resource: key.to_owned(),
        detail: why,
        fix: None,
    }
}
