//! An evaluator for the part of the AWS policy language key policies and IAM policies use for
//! snapshot replication (issue 6, `snaprelay check`): Allow/Deny with an explicit Deny winning,
//! principals (an account, `:root`, role ARNs, `*`), action and resource wildcards, and the
//! condition operators these policies use on `kms:ViaService`, `kms:CallerAccount`,
//! `kms:GrantIsForAWSResource` and `aws:PrincipalAccount`.
//!
//! Semantics follow the IAM policy reference
//! (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html):
//! a request is allowed by a policy when some Allow statement matches it and no Deny statement
//! does. Anything this evaluator does not understand (`NotPrincipal`, an unknown condition
//! operator) is never taken as an Allow, and is taken as a possible Deny, so that `check` can
//! say "cannot prove" rather than "OK".

use std::collections::BTreeMap;

use serde_json::Value;

/// One statement of a policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub sid: Option<String>,
    pub allow: bool,
    /// `None`: the statement has no `Principal` (an IAM policy: it applies to its identity).
    pub principals: Option<Vec<String>>,
    pub actions: Match,
    pub resources: Match,
    pub conditions: Vec<Condition>,
    /// Parts the evaluator does not understand (`NotPrincipal`, ...).
    pub unsupported: Vec<String>,
}

/// `Action` / `Resource` (patterns that must match) or `NotAction` / `NotResource` (patterns
/// that must not).
#[derive(Clone, Debug, PartialEq)]
pub enum Match {
    Any(Vec<String>),
    NoneOf(Vec<String>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// `StringEquals`, `Bool`, ... without the set prefix and the `IfExists` suffix.
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
    pub if_exists: bool,
    /// `ForAllValues:` (every value of the key must match); otherwise any value may.
    pub for_all_values: bool,
}

/// Who makes the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub account: String,
    /// The role (or user) ARN; `None` for "any principal of the account".
    pub arn: Option<String>,
}

/// A request to evaluate: who, what, on which resource, and the request context.
#[derive(Clone, Debug, PartialEq)]
pub struct Request<'a> {
    pub caller: &'a Caller,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a BTreeMap<String, Vec<String>>,
}

/// What a policy says about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An Allow statement matches and no Deny does; the Allow statements' ids.
    Allowed(Vec<String>),
    /// A Deny statement matches.
    Denied(String),
    /// Nothing allows it.
    NotAllowed,
    /// Undecided: a Deny statement might apply, or nothing surely allows it but an Allow
    /// statement might (they have parts the evaluator does not understand).
    Unsure(String),
}

/// Why a policy document cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// Parses a policy document. Errors name the statement and field.
pub fn parse(document: &str) -> Result<Vec<Statement>, PolicyError> {
    let doc: Value = serde_json::from_str(document)
        .map_err(|e| PolicyError(format!("not a JSON policy document: {e}")))?;
    let statements = match doc.get("Statement") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(PolicyError("the policy has no Statement".into())),
    };
    statements
        .iter()
        .enumerate()
        .map(|(i, s)| statement(s).map_err(|e| PolicyError(format!("Statement[{i}]: {e}"))))
        .collect()
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                other => Err(PolicyError(format!("{field}: {other} is not a string"))),
            })
            .collect(),
        other => Err(PolicyError(format!(
            "{field}: {other} is not a string or a list of strings"
        ))),
    }
}

fn statement(s: &Value) -> Result<Statement, PolicyError> {
    let allow = match s.get("Effect").and_then(Value::as_str) {
        Some("Allow") => true,
        Some("Deny") => false,
        other => {
            return Err(PolicyError(format!(
                "Effect: {other:?} is neither Allow nor Deny"
            )));
        }
    };
    let mut unsupported = Vec::new();
    if s.get("NotPrincipal").is_some() {
        unsupported.push("NotPrincipal".to_owned());
    }
    let principals = match s.get("Principal") {
        None => None,
        Some(Value::String(star)) if star == "*" => Some(vec!["*".to_owned()]),
        Some(Value::Object(map)) => {
            let mut all = Vec::new();
            for (kind, v) in map {
                if kind == "AWS" {
                    all.extend(strings(v, "Principal.AWS")?);
                } else {
                    // Service principals (ec2.amazonaws.com, ...) are not callers snaprelay has.
                    all.extend(strings(v, kind)?.into_iter().map(|p| format!("{kind}:{p}")));
                }
            }
            Some(all)
        }
        Some(other) => return Err(PolicyError(format!("Principal: {other} is not understood"))),
    };
    let pick = |yes: &str, no: &str| -> Result<Match, PolicyError> {
        match (s.get(yes), s.get(no)) {
            (Some(v), None) => Ok(Match::Any(strings(v, yes)?)),
            (None, Some(v)) => Ok(Match::NoneOf(strings(v, no)?)),
            _ => Err(PolicyError(format!("give exactly one of {yes} and {no}"))),
        }
    };
    let actions = pick("Action", "NotAction")?;
    let resources = match (s.get("Resource"), s.get("NotResource")) {
        (None, None) => Match::Any(vec!["*".to_owned()]),
        _ => pick("Resource", "NotResource")?,
    };
    let mut conditions = Vec::new();
    if let Some(block) = s.get("Condition") {
        let Some(block) = block.as_object() else {
            return Err(PolicyError("Condition is not an object".into()));
        };
        for (op, keys) in block {
            let Some(keys) = keys.as_object() else {
                return Err(PolicyError(format!("Condition.{op} is not an object")));
            };
            let (for_all_values, rest) = match op.split_once(':') {
                Some(("ForAllValues", rest)) => (true, rest),
                Some(("ForAnyValue", rest)) => (false, rest),
                _ => (false, op.as_str()),
            };
            let (operator, if_exists) = match rest.strip_suffix("IfExists") {
                Some(base) => (base, true),
                None => (rest, false),
            };
            for (key, values) in keys {
                conditions.push(Condition {
                    operator: operator.to_owned(),
                    key: key.clone(),
                    values: strings(values, &format!("Condition.{op}.{key}"))?,
                    if_exists,
                    for_all_values,
                });
            }
        }
    }
    Ok(Statement {
        sid: s.get("Sid").and_then(Value::as_str).map(str::to_owned),
        allow,
        principals,
        actions,
        resources,
        conditions,
        unsupported,
    })
}

/// `*` matches any run of characters, `?` any one.
fn wildcard(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let norm = |s: &str| {
        if ignore_case {
            s.to_ascii_lowercase()
        } else {
            s.to_owned()
        }
    };
    let (p, t) = (norm(pattern), norm(text));
    let (p, t): (Vec<char>, Vec<char>) = (p.chars().collect(), t.chars().collect());
    // Iterative matching with backtracking to the last `*`.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Match {
    fn matches(&self, value: &str, ignore_case: bool) -> bool {
        match self {
            Match::Any(patterns) => patterns.iter().any(|p| wildcard(p, value, ignore_case)),
            Match::NoneOf(patterns) => !patterns.iter().any(|p| wildcard(p, value, ignore_case)),
        }
    }
}

/// Whether a `Principal` entry names the caller. An account (`111122223333` or
/// `arn:aws:iam::111122223333:root`) names every principal of the account: the key policy
/// delegates to that account's IAM policies.
fn principal_matches(entry: &str, caller: &Caller) -> bool {
    if entry == "*" {
        return true;
    }
    if entry == caller.account {
        return true;
    }
    if let Some(rest) = entry.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if let [_, "iam", "", account, resource] = parts.as_slice() {
            if *resource == "root" {
                return *account == caller.account;
            }
            return caller.arn.as_deref() == Some(entry);
        }
    }
    false
}

/// The condition keys whose presence in a request is known: a request evaluated here carries
/// each that applies to it, and lacks the others.
pub const MODELLED_KEYS: [&str; 4] = [
    "kms:CallerAccount",
    "kms:ViaService",
    "kms:GrantIsForAWSResource",
    "aws:PrincipalAccount",
];

/// `Some(true/false)`: the condition holds or not; `None`: the operator or the key is not
/// understood.
fn condition_holds(c: &Condition, context: &BTreeMap<String, Vec<String>>) -> Option<bool> {
    let present = context
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&c.key))
        .map(|(_, v)| v);
    let Some(values) = present else {
        // A key the request is not modelled with (aws:PrincipalOrgID, aws:SourceIp, tags...)
        // has a value in AWS that is not known here: the condition might hold.
        if !MODELLED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(&c.key)) {
            return None;
        }
        // A key missing from the request: "the condition is false", except with `...IfExists`
        // and with the negated operators, "such as StringNotLike or ArnNotLike", for which "the
        // condition is true" (IAM reference, condition operators).
        let negated = c.operator.contains("Not");
        return Some(c.if_exists || negated);
    };
    let one = |v: &str| -> Option<bool> {
        Some(match c.operator.as_str() {
            "StringEquals" | "ArnEquals" => c.values.iter().any(|x| x == v),
            "StringEqualsIgnoreCase" => c.values.iter().any(|x| x.eq_ignore_ascii_case(v)),
            "StringLike" | "ArnLike" => c.values.iter().any(|x| wildcard(x, v, false)),
            "StringNotEquals" | "ArnNotEquals" => c.values.iter().all(|x| x != v),
            "StringNotLike" | "ArnNotLike" => c.values.iter().all(|x| !wildcard(x, v, false)),
            "Bool" => c.values.iter().any(|x| x.eq_ignore_ascii_case(v)),
            _ => return None,
        })
    };
    let mut results = Vec::with_capacity(values.len());
    for v in values {
        results.push(one(v)?);
    }
    Some(if c.for_all_values {
        results.iter().all(|r| *r)
    } else {
        results.iter().any(|r| *r)
    })
}

/// `Some(true)`: the statement applies to the request; `Some(false)`: it does not; `None`: it
/// might (it has parts the evaluator does not understand).
fn applies(s: &Statement, r: &Request<'_>) -> Option<bool> {
    if let Some(principals) = &s.principals
        && !principals.iter().any(|p| principal_matches(p, r.caller))
    {
        return Some(false);
    }
    if !s.actions.matches(r.action, true) || !s.resources.matches(r.resource, false) {
        return Some(false);
    }
    let mut unsure = !s.unsupported.is_empty();
    for c in &s.conditions {
        match condition_holds(c, r.context) {
            Some(false) => return Some(false),
            Some(true) => {}
            None => unsure = true,
        }
    }
    if unsure { None } else { Some(true) }
}

/// Evaluates one policy (a key policy, or an IAM policy of the caller) for a request.
pub fn evaluate(statements: &[Statement], r: &Request<'_>) -> Verdict {
    let label =
        |s: &Statement, i: usize| s.sid.clone().unwrap_or_else(|| format!("Statement[{i}]"));
    let mut maybe_denied = None;
    for (i, s) in statements.iter().enumerate().filter(|(_, s)| !s.allow) {
        match applies(s, r) {
            Some(true) => return Verdict::Denied(label(s, i)),
            None => maybe_denied = maybe_denied.or(Some(label(s, i))),
            Some(false) => {}
        }
    }
    // A Deny that might apply leaves the request undecided, whatever allows it.
    if let Some(sid) = maybe_denied {
        return Verdict::Unsure(sid);
    }
    let allowed: Vec<String> = statements
        .iter()
        .enumerate()
        .filter(|(_, s)| s.allow && applies(s, r) == Some(true))
        .map(|(i, s)| label(s, i))
        .collect();
    if !allowed.is_empty() {
        return Verdict::Allowed(allowed);
    }
    match statements
        .iter()
        .enumerate()
        .find(|(_, s)| s.allow && applies(s, r).is_none())
    {
        Some((i, s)) => Verdict::Unsure(label(s, i)),
        None => Verdict::NotAllowed,
    }
}

#[cfg(test)]
mod tests;
