//! The fix of each finding: a key-policy statement, an IAM policy, a command. Policy
//! documents are built as data and written by serde_json, so that a fix is always a JSON
//! document its reader can paste (the e2e tests apply them to moto as they are printed). They
//! are written on one line: a fix is also quoted inside `run`'s refusals.

use serde::Serialize;
use serde_json::{Value, json};

/// The fix of a Deny statement: snaprelay does not guess what else it is there for.
pub(super) const REMOVE_THE_DENY: &str = "remove or narrow the Deny statement named above";

/// The actions as a fix names them (the wildcards AWS's documented statements use), sorted.
pub(super) fn as_written(actions: &[String]) -> Vec<String> {
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

/// An Allow statement of an IAM, key or trust policy, its elements in the order AWS's
/// documentation writes them.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Allow {
    sid: String,
    effect: &'static str,
    /// `{"AWS": ARN}`; none in an IAM policy, which applies to its identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    principal: Option<Value>,
    action: Vec<String>,
    /// `"*"` or a list of ARNs; none in a role's trust policy, where AWS refuses a Resource
    /// (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html).
    #[serde(skip_serializing_if = "Value::is_null")]
    resource: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    condition: Option<Value>,
}

impl Allow {
    fn new(sid: impl Into<String>, action: Vec<String>, resource: Value) -> Self {
        Self {
            sid: sid.into(),
            effect: "Allow",
            principal: None,
            action,
            resource,
            condition: None,
        }
    }

    fn to(mut self, aws_principal: &str) -> Self {
        self.principal = Some(json!({ "AWS": aws_principal }));
        self
    }
}

/// An IAM policy document.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Document {
    version: &'static str,
    statement: Vec<Allow>,
}

/// `value` as one line of JSON.
fn json_text(value: &impl Serialize) -> String {
    // Strings, lists and maps of strings only: serde_json cannot fail on them.
    serde_json::to_string(value).unwrap_or_default()
}

/// The key-policy statements that allow `actions` to `principal`: AWS's documented "Allow
/// use of the key" and, for `kms:CreateGrant`, "Allow attachment of persistent resources".
/// https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html
pub(super) fn key_policy_fix(actions: &[String], principal: &str) -> String {
    // Sids must be unique in a key policy: they name the principal's account (or role).
    let who = principal
        .strip_prefix("arn:aws:iam::")
        .and_then(|rest| rest.strip_suffix(":root"))
        .unwrap_or(principal);
    let (grant, other): (Vec<String>, Vec<String>) = actions
        .iter()
        .cloned()
        .partition(|a| a == "kms:CreateGrant");
    let mut statements = Vec::new();
    if !other.is_empty() {
        statements.push(
            Allow::new(
                format!("Allow use of the key for snaprelay in {who}"),
                as_written(&other),
                json!("*"),
            )
            .to(principal),
        );
    }
    if !grant.is_empty() {
        let mut attach = Allow::new(
            format!("Allow attachment of persistent resources for snaprelay in {who}"),
            grant,
            json!("*"),
        )
        .to(principal);
        attach.condition = Some(json!({ "Bool": { "kms:GrantIsForAWSResource": "true" } }));
        statements.push(attach);
    }
    format!(
        "add these statements to the key policy's Statement list: {}",
        json_text(&statements)
    )
}

/// The IAM policy that allows `missing` (action, resource) pairs to `who`: KMS actions on
/// their keys, EC2 and RDS actions on `*`.
pub(super) fn iam_policy_fix(who: &str, missing: &[(String, String)]) -> String {
    let actions: Vec<String> = missing.iter().map(|(a, _)| a.clone()).collect();
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
    let document = Document {
        version: "2012-10-17",
        statement: vec![Allow::new(
            "SnaprelayReplication",
            as_written(&actions),
            json!(on),
        )],
    };
    format!("attach to {who} the IAM policy {}", json_text(&document))
}

/// The trust-policy statement that lets the credentials snaprelay runs with assume `role`.
pub(super) fn trust_policy_fix(role: &str) -> String {
    let statement = Allow::new(
        "AllowSnaprelay",
        vec!["sts:AssumeRole".to_owned()],
        Value::Null,
    )
    .to("AMBIENT-PRINCIPAL-ARN");
    format!(
        "let the ambient principal assume {role}: in the role's trust policy, {}",
        json_text(&statement)
    )
}

/// A target key that cannot serve: make (or replicate) one that can.
pub(super) fn create_key_fix(region: &str) -> String {
    format!(
        "use a customer managed symmetric key of {region}: aws kms create-key --region {region} \
         (or, for a multi-Region key, aws kms replicate-key --key-id KEY --replica-region {region}), \
         then name it in kms_key"
    )
}

/// A key scheduled for deletion is also disabled: both are undone.
pub(super) fn cancel_deletion_fix(region: &str, arn: &str) -> String {
    format!(
        "aws kms cancel-key-deletion --region {region} --key-id {arn} && aws kms enable-key \
         --region {region} --key-id {arn}"
    )
}

pub(super) fn enable_key_fix(region: &str, arn: &str) -> String {
    format!("aws kms enable-key --region {region} --key-id {arn}")
}
