//! Whether a KMS key named in the policy can encrypt replicas in a Region, as the credentials
//! that will use it see it. One function for `prepare` (which turns a problem into an input
//! error) and `check` (which turns it into a finding and its fix).

use std::fmt;

use crate::ids::{AccountId, KeyRef};
use crate::model::KeyInfo;
use crate::ports::{Access, Cloud, CloudError};

/// Why a key cannot encrypt a replica where it is used.
#[derive(Clone, Debug, PartialEq)]
pub enum KeyProblem {
    /// KMS keys are regional: a copy's key must be in the Region the copy is made in.
    OtherRegion {
        /// The key as the policy names it, or its ARN once KMS described it.
        key: String,
        key_region: String,
        region: String,
    },
    /// The key exists but cannot encrypt snapshots (not enabled, not symmetric
    /// `ENCRYPT_DECRYPT`); `why` says which.
    Unusable { info: KeyInfo, why: String },
    /// The credentials may not describe the key (AWS's message).
    Denied {
        access: Access,
        account: AccountId,
        message: String,
    },
    /// KMS knows no such key in that account and Region (AWS's message).
    NotFound {
        account: AccountId,
        region: String,
        message: String,
    },
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyProblem::OtherRegion {
                key_region, region, ..
            } => write!(
                f,
                "the key is in {key_region}, but it is used in {region}; KMS keys are regional \
                 (use the key's replica in {region}, or alias/NAME for a key of that Region)"
            ),
            KeyProblem::Unusable { why, .. } => f.write_str(why),
            KeyProblem::Denied {
                access,
                account,
                message,
            } => write!(
                f,
                "the credentials used there ({access}) may not use this key ({message}); a key of \
                 another account needs a key policy that admits account {account}"
            ),
            KeyProblem::NotFound {
                account,
                region,
                message,
            } => write!(
                f,
                "no such key in account {account} Region {region} ({message})"
            ),
        }
    }
}

/// Resolves `key` for use in `region` by `access` (credentials acting in `account`): the key,
/// or why it cannot serve. Whether it may be AWS managed is the caller's to decide (a target
/// key may not, a staging key may). `Err` is an AWS call that could not be made at all.
pub async fn resolve_key(
    cloud: &dyn Cloud,
    access: &Access,
    account: &AccountId,
    region: &str,
    key: &KeyRef,
) -> Result<Result<KeyInfo, KeyProblem>, CloudError> {
    if let Some(pinned) = key.region()
        && pinned != region
    {
        return Ok(Err(KeyProblem::OtherRegion {
            key: key.as_str().to_owned(),
            key_region: pinned.to_owned(),
            region: region.to_owned(),
        }));
    }
    Ok(
        match cloud.describe_key(access, region, key.as_str()).await {
            Ok(info) if info.region != region => Err(KeyProblem::OtherRegion {
                key: info.arn,
                key_region: info.region,
                region: region.to_owned(),
            }),
            Ok(info) => match info.unusable_for_snapshots() {
                Some(why) => Err(KeyProblem::Unusable { info, why }),
                None => Ok(info),
            },
            Err(e) if e.is_access_denied() => Err(KeyProblem::Denied {
                access: access.clone(),
                account: account.clone(),
                message: e.message,
            }),
            Err(e) if e.is_not_found() => Err(KeyProblem::NotFound {
                account: account.clone(),
                region: region.to_owned(),
                message: e.message,
            }),
            Err(e) => return Err(e),
        },
    )
}
