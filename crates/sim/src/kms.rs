//! KMS as snapshots meet it: customer managed keys with a key policy that admits accounts, the
//! AWS managed `aws/ebs` and `aws/rds` keys (created on first use, never usable by another
//! account), aliases, and `DescribeKey` on each of the four ways to name a key.

use std::collections::BTreeSet;

use snaprelay_core::ids::{AccountId, KeyRef};
use snaprelay_core::model::{KeyInfo, KeyManager};
use snaprelay_core::ports::CloudError;

use crate::faults::error;
use crate::world::{Key, World};

/// `alias/aws/ebs` or `alias/aws/rds`: AWS creates these keys in an account and Region the
/// first time they are needed, including when `DescribeKey` names the alias
/// (https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#aws-managed-key).
fn is_predefined_alias(alias: &str) -> bool {
    matches!(alias, "alias/aws/ebs" | "alias/aws/rds")
}

impl World {
    pub fn create_key(
        &mut self,
        account: &AccountId,
        region: &str,
        manager: KeyManager,
        alias: Option<&str>,
        admits: &[AccountId],
    ) -> String {
        let id = self.new_key_id();
        let arn = format!("arn:aws:kms:{region}:{account}:key/{id}");
        self.keys.insert(
            arn.clone(),
            Key {
                arn: arn.clone(),
                account: account.clone(),
                region: region.to_owned(),
                manager,
                state: "Enabled".into(),
                usage: "ENCRYPT_DECRYPT".into(),
                spec: "SYMMETRIC_DEFAULT".into(),
                admits: admits.iter().cloned().collect::<BTreeSet<_>>(),
            },
        );
        if let Some(alias) = alias {
            let name = if alias.starts_with("alias/") {
                alias.to_owned()
            } else {
                format!("alias/{alias}")
            };
            self.aliases
                .insert((account.clone(), region.to_owned(), name), arn.clone());
        }
        arn
    }

    /// The ARN of the AWS managed key behind `alias/aws/ebs` or `alias/aws/rds` of an account
    /// in a Region, made on first use.
    pub fn default_key(&mut self, account: &AccountId, region: &str, alias: &str) -> String {
        let slot = (account.clone(), region.to_owned(), alias.to_owned());
        if let Some(arn) = self.aliases.get(&slot) {
            return arn.clone();
        }
        self.create_key(account, region, KeyManager::Aws, Some(alias), &[])
    }

    /// The key a reference names, as `caller` sees it from `region`; `None` if there is none.
    pub fn find_key(&mut self, caller: &AccountId, region: &str, key: &str) -> Option<&Key> {
        let arn = match KeyRef::parse(key)? {
            KeyRef::KeyArn { arn, region: r, .. } => (r == region).then_some(arn)?,
            KeyRef::AliasArn {
                region: r,
                account,
                arn,
            } => {
                let name = arn
                    .split_once(":alias/")
                    .map(|(_, n)| format!("alias/{n}"))?;
                if r != region {
                    return None;
                }
                self.aliases.get(&(account, r, name))?.clone()
            }
            KeyRef::AliasName(name) if is_predefined_alias(&name) => {
                self.default_key(caller, region, &name)
            }
            KeyRef::AliasName(name) => self
                .aliases
                .get(&(caller.clone(), region.to_owned(), name))?
                .clone(),
            KeyRef::KeyId(id) => format!("arn:aws:kms:{region}:{caller}:key/{id}"),
        };
        self.keys.get(&arn)
    }

    /// KMS `GetKeyPolicy`: the documented default key policy, plus AWS's documented
    /// statements for another account's use of the key for each account it admits
    /// (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html).
    /// AWS managed keys answer their fixed policy: use through the service, by the owner only.
    pub fn key_policy(
        &mut self,
        caller: &AccountId,
        region: &str,
        key_arn: &str,
    ) -> Result<String, CloudError> {
        let key = self
            .keys
            .get(key_arn)
            .filter(|k| &k.account == caller && k.region == region)
            .ok_or_else(|| {
                error(
                    "kms",
                    "GetKeyPolicy",
                    region,
                    "NotFoundException",
                    &format!("Key '{key_arn}' does not exist"),
                )
            })?;
        let owner = &key.account;
        let statements = if key.manager == KeyManager::Aws {
            vec![format!(
                r#"{{"Sid":"Allow access through the service for all principals in the account","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:CreateGrant","kms:DescribeKey"],"Resource":"*","Condition":{{"StringEquals":{{"kms:CallerAccount":"{owner}"}},"StringLike":{{"kms:ViaService":["ec2.{region}.amazonaws.com","rds.{region}.amazonaws.com"]}}}}}}"#
            )]
        } else {
            let mut statements = vec![format!(
                r#"{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{owner}:root"}},"Action":"kms:*","Resource":"*"}}"#
            )];
            if !key.admits.is_empty() {
                let principals = key
                    .admits
                    .iter()
                    .map(|a| format!(r#""arn:aws:iam::{a}:root""#))
                    .collect::<Vec<_>>()
                    .join(",");
                statements.push(format!(
                    r#"{{"Sid":"Allow use of the key","Effect":"Allow","Principal":{{"AWS":[{principals}]}},"Action":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],"Resource":"*"}}"#
                ));
                statements.push(format!(
                    r#"{{"Sid":"Allow attachment of persistent resources","Effect":"Allow","Principal":{{"AWS":[{principals}]}},"Action":["kms:CreateGrant","kms:ListGrants","kms:RevokeGrant"],"Resource":"*","Condition":{{"Bool":{{"kms:GrantIsForAWSResource":"true"}}}}}}"#
                ));
            }
            statements
        };
        Ok(format!(
            r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[{}]}}"#,
            statements.join(",")
        ))
    }

    /// KMS `DescribeKey`. A key of another account is described only when its key policy
    /// admits the caller, and must be named by ARN.
    pub fn describe_key(
        &mut self,
        caller: &AccountId,
        region: &str,
        key: &str,
    ) -> Result<KeyInfo, CloudError> {
        let not_found = || {
            error(
                "kms",
                "DescribeKey",
                region,
                "NotFoundException",
                &format!("Key '{key}' does not exist"),
            )
        };
        let found = self.find_key(caller, region, key).ok_or_else(not_found)?;
        if &found.account != caller
            && !(found.manager == KeyManager::Customer && found.admits.contains(caller))
        {
            return Err(error(
                "kms",
                "DescribeKey",
                region,
                "AccessDeniedException",
                &format!(
                    "User: arn:aws:sts::{caller}:assumed-role/snaprelay is not authorized to \
                     perform: kms:DescribeKey on resource: {} because no resource-based policy \
                     allows the kms:DescribeKey action",
                    found.arn
                ),
            ));
        }
        Ok(KeyInfo {
            arn: found.arn.clone(),
            account: found.account.clone(),
            region: found.region.clone(),
            manager: found.manager,
            state: found.state.clone(),
            usage: found.usage.clone(),
            spec: found.spec.clone(),
        })
    }

    /// Whether `caller` can use the key `arn` to read or write a snapshot.
    pub fn key_usable(&self, caller: &AccountId, arn: &str) -> bool {
        self.keys.get(arn).is_some_and(|k| k.usable_by(caller))
    }

    pub fn key_is_aws_managed(&self, arn: &str) -> bool {
        self.keys
            .get(arn)
            .is_some_and(|k| k.manager == KeyManager::Aws)
    }
}
