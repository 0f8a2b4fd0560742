//! The principal's side: whether a role's IAM policies, taken together as IAM does, allow
//! the requests a run makes with it (the KMS requests of step 3, the EC2 and RDS actions of
//! step 4).

use std::collections::{BTreeMap, BTreeSet};

use crate::access::{self, Caller, Request, Statement, Verdict};
use crate::ports::Cloud;

use super::fixes::{REMOVE_THE_DENY, as_written, iam_policy_fix};
use super::principals::{Principal, Principals};
use super::{Finding, Holds};

/// One request a principal's IAM policies are asked about.
pub(super) struct IamRequest {
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, Vec<String>>,
    /// Allowed anyway (by the key policy naming the principal): only a Deny counts.
    pub optional: bool,
}

/// Step 4: a principal's EC2 and RDS actions, as (action, resource) pairs.
pub(super) async fn service_finding(
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

/// Whether the principal's IAM policies allow each request; one finding for all of them.
pub(super) async fn iam_finding(
    cloud: &dyn Cloud,
    principals: &mut Principals,
    p: &Principal,
    requests: &[IamRequest],
) -> Finding {
    let who = p.name();
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
    let v = Verdicts::of(&statements, &caller, requests);
    if !v.denied.is_empty() {
        return finding(
            Holds::Missing,
            format!("denied by an IAM policy: {}", v.denied.join(", ")),
            Some(REMOVE_THE_DENY.to_owned()),
            all,
        );
    }
    if !v.missing.is_empty() {
        let names: Vec<String> = v.missing.iter().map(|(a, _)| a.clone()).collect();
        return finding(
            Holds::Missing,
            format!(
                "the IAM policies of {who} do not allow {}",
                as_written(&names).join(", ")
            ),
            Some(iam_policy_fix(&who, &v.missing)),
            as_written(&names),
        );
    }
    if !v.unsure.is_empty() {
        return finding(
            Holds::Unknown,
            format!(
                "may be allowed or denied by statements with conditions or elements snaprelay \
                 does not evaluate: {}",
                v.unsure.join(", ")
            ),
            None,
            all,
        );
    }
    finding(Holds::Ok, "allowed".into(), None, all)
}

/// What the IAM policies say of the requests, by kind of answer.
struct Verdicts {
    /// `ACTION (statement)` of each explicit Deny.
    denied: Vec<String>,
    /// `ACTION (statement)` of each statement snaprelay cannot decide.
    unsure: Vec<String>,
    /// (action, resource) that nothing allows.
    missing: Vec<(String, String)>,
}

impl Verdicts {
    fn of(statements: &[Statement], caller: &Caller, requests: &[IamRequest]) -> Self {
        let mut v = Verdicts {
            denied: Vec::new(),
            unsure: Vec::new(),
            missing: Vec::new(),
        };
        for r in requests {
            let request = Request {
                caller,
                action: &r.action,
                resource: &r.resource,
                context: &r.context,
            };
            match access::evaluate(statements, &request) {
                Verdict::Denied(sid) => v.denied.push(format!("{} ({sid})", r.action)),
                Verdict::Allowed(_) => {}
                Verdict::Unsure(sid) => v.unsure.push(format!("{} ({sid})", r.action)),
                Verdict::NotAllowed if r.optional => {}
                Verdict::NotAllowed => v.missing.push((r.action.clone(), r.resource.clone())),
            }
        }
        v.denied.dedup();
        v.unsure.dedup();
        v.missing.dedup();
        v
    }
}
