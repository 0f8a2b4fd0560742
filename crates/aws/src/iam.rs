//! IAM: the policy documents of a role, for `check` to evaluate. IAM answers documents
//! URL-encoded (RFC 3986): https://docs.aws.amazon.com/IAM/latest/APIReference/API_GetRolePolicy.html

use snaprelay_core::ports::CloudError;

use crate::error::{cloud_error, malformed};

/// The inline and attached managed policies of `role_name`: (name or ARN, JSON document).
pub async fn role_policies(
    client: &aws_sdk_iam::Client,
    role_name: &str,
) -> Result<Vec<(String, String)>, CloudError> {
    // IAM is global: errors name us-east-1, where its endpoint is.
    let region = "us-east-1";
    let mut documents = Vec::new();
    let inline: Vec<_> = client
        .list_role_policies()
        .role_name(role_name)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("IAM", "ListRolePolicies", region, e))?;
    for name in inline.iter().flat_map(|p| p.policy_names()) {
        let out = client
            .get_role_policy()
            .role_name(role_name)
            .policy_name(name)
            .send()
            .await
            .map_err(|e| cloud_error("IAM", "GetRolePolicy", region, e))?;
        documents.push((
            name.clone(),
            decoded(Some(out.policy_document()), "GetRolePolicy")?,
        ));
    }
    let attached: Vec<_> = client
        .list_attached_role_policies()
        .role_name(role_name)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("IAM", "ListAttachedRolePolicies", region, e))?;
    for arn in attached
        .iter()
        .flat_map(|p| p.attached_policies())
        .filter_map(|p| p.policy_arn())
    {
        let policy = client
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| cloud_error("IAM", "GetPolicy", region, e))?;
        let version = policy
            .policy()
            .and_then(|p| p.default_version_id())
            .ok_or_else(|| {
                malformed(
                    "IAM",
                    "GetPolicy",
                    region,
                    format!("no default version of {arn}"),
                )
            })?;
        let out = client
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| cloud_error("IAM", "GetPolicyVersion", region, e))?;
        documents.push((
            arn.to_owned(),
            decoded(
                out.policy_version().and_then(|v| v.document()),
                "GetPolicyVersion",
            )?,
        ));
    }
    Ok(documents)
}

fn decoded(document: Option<&str>, operation: &'static str) -> Result<String, CloudError> {
    let document = document.ok_or_else(|| {
        malformed(
            "IAM",
            operation,
            "us-east-1",
            "no policy document".to_owned(),
        )
    })?;
    Ok(percent_decoded(document))
}

/// `%XX` escapes decoded; a document that is not encoded (emulators send it as is) is kept.
fn percent_decoded(s: &str) -> String {
    if s.trim_start().starts_with('{') {
        return s.to_owned();
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decoded;

    #[test]
    fn documents_are_url_decoded_unless_they_are_plain_json() {
        assert_eq!(
            percent_decoded("%7B%22Effect%22%3A%22Allow%22%7D"),
            r#"{"Effect":"Allow"}"#
        );
        assert_eq!(percent_decoded(r#"{"a": "50%"}"#), r#"{"a": "50%"}"#);
    }
}
