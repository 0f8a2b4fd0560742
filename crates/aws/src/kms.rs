//! KMS: resolving a key id, alias or ARN to the key and who manages it.

use aws_sdk_kms::types::KeyManagerType;
use snaprelay_core::ids::key_arn_parts;
use snaprelay_core::model::{KeyInfo, KeyManager};
use snaprelay_core::ports::{CloudError, KeyGrant};

use crate::error::{cloud_error, malformed};

pub async fn describe_key(
    client: &aws_sdk_kms::Client,
    region: &str,
    key: &str,
) -> Result<KeyInfo, CloudError> {
    let out = client
        .describe_key()
        .key_id(key)
        .send()
        .await
        .map_err(|e| cloud_error("KMS", "DescribeKey", region, e))?;
    let malformed = |what: &str| {
        malformed(
            "KMS",
            "DescribeKey",
            region,
            format!("the answer for key {key} has {what}"),
        )
    };
    let meta = out
        .key_metadata()
        .ok_or_else(|| malformed("no KeyMetadata"))?;
    let arn = meta.arn().ok_or_else(|| malformed("no Arn"))?.to_owned();
    let (key_region, account) = key_arn_parts(&arn).ok_or_else(|| malformed("a malformed Arn"))?;
    Ok(KeyInfo {
        account,
        region: key_region,
        // The AWS managed keys (aws/ebs, aws/rds) are told apart by KeyManager, never by name.
        manager: match meta.key_manager() {
            Some(KeyManagerType::Aws) => KeyManager::Aws,
            _ => KeyManager::Customer,
        },
        state: meta
            .key_state()
            .map_or_else(|| "Unknown".to_owned(), |s| s.as_str().to_owned()),
        // AWS always reports KeyUsage; ENCRYPT_DECRYPT is CreateKey's default when an answer
        // leaves it out (moto does, for keys created without it).
        usage: meta
            .key_usage()
            .map_or_else(|| "ENCRYPT_DECRYPT".to_owned(), |u| u.as_str().to_owned()),
        spec: meta
            .key_spec()
            .map_or_else(|| "SYMMETRIC_DEFAULT".to_owned(), |s| s.as_str().to_owned()),
        arn,
    })
}

/// `GetKeyPolicy` with the only policy name KMS has, `default`.
pub async fn key_policy(
    client: &aws_sdk_kms::Client,
    region: &str,
    key_arn: &str,
) -> Result<String, CloudError> {
    let out = client
        .get_key_policy()
        .key_id(key_arn)
        .policy_name("default")
        .send()
        .await
        .map_err(|e| cloud_error("KMS", "GetKeyPolicy", region, e))?;
    out.policy().map(str::to_owned).ok_or_else(|| {
        malformed(
            "KMS",
            "GetKeyPolicy",
            region,
            format!("no policy in the answer for key {key_arn}"),
        )
    })
}

/// `ListGrants`, every page.
pub async fn key_grants(
    client: &aws_sdk_kms::Client,
    region: &str,
    key_arn: &str,
) -> Result<Vec<KeyGrant>, CloudError> {
    let pages: Vec<_> = client
        .list_grants()
        .key_id(key_arn)
        .into_paginator()
        .send()
        .try_collect()
        .await
        .map_err(|e| cloud_error("KMS", "ListGrants", region, e))?;
    Ok(pages
        .iter()
        .flat_map(|p| p.grants())
        .map(|g| KeyGrant {
            grantee: g.grantee_principal().unwrap_or_default().to_owned(),
            operations: g
                .operations()
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect(),
        })
        .collect())
}
