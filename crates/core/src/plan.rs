//! The planner: for every selected instance and every target, which workflow of the SPEC
//! applies, or why no replica is made. Pure: it reads what the inventory found and decides.
//!
//! The rules, in the order they are applied for one instance and one target:
//! 1. An instance with no EBS volume has nothing to snapshot: `Warning`, no replica.
//! 2. A source key that could not be read, or is not usable: `Failed` for that target.
//! 3. Another account and a volume under an AWS managed key (`aws/ebs`): `Failed`, no share
//!    is made (AWS refuses to share such snapshots).
//! 4. An encrypted instance and a target without a key: `Warning`, no replica (the seed).
//! 5. Otherwise the replica is made, by workflow A (same account) or B (another account),
//!    encrypted with the target key when there is one (unencrypted volumes included).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ids::AccountId;
use crate::model::{Instance, KeyInfo, KeyManager};
use crate::ports::Access;
use crate::status::Status;

/// A target of the policy with its account and key resolved against AWS.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedTarget {
    /// Position in the policy's `targets`.
    pub index: usize,
    pub account: AccountId,
    pub region: String,
    #[serde(skip)]
    pub access: Access,
    pub key: Option<KeyInfo>,
}

impl ResolvedTarget {
    pub fn label(&self) -> String {
        format!("targets[{}] ({} {})", self.index, self.account, self.region)
    }
}

/// What the inventory found in the source account.
#[derive(Clone, Debug, Default)]
pub struct Estate {
    pub instances: Vec<Instance>,
    /// Source keys by the key ARN the volumes report.
    pub keys: BTreeMap<String, KeyInfo>,
    /// Source keys that `DescribeKey` could not read, with AWS's answer.
    pub key_errors: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workflow {
    /// SPEC workflow A: copy to the target Region in the source account.
    SameAccount,
    /// SPEC workflow B: share with the target account, copy there, unshare.
    CrossAccountEc2,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Decision {
    Replicate {
        workflow: Workflow,
        /// The key that will encrypt the replica; `None` leaves an unencrypted copy unencrypted.
        kms_key_id: Option<String>,
        /// Why the replica, though made, deserves attention: the task ends `Warning`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
    },
    /// No replica; the task ends `Warning`.
    Skip { reason: String },
    /// No replica; the task ends `Failed`.
    Refuse { reason: String },
}

impl Decision {
    pub fn status(&self) -> Status {
        match self {
            Decision::Replicate { warnings, .. } if warnings.is_empty() => Status::Success,
            Decision::Replicate { .. } => Status::Warning,
            Decision::Skip { .. } => Status::Warning,
            Decision::Refuse { .. } => Status::Failed,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TargetPlan {
    pub target: usize,
    pub account: AccountId,
    pub region: String,
    #[serde(flatten)]
    pub decision: Decision,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskPlan {
    #[serde(rename = "type")]
    pub resource_type: &'static str,
    pub instance: Instance,
    /// Whether the source snapshots are taken (false only when there is nothing to snapshot).
    pub take_snapshot: bool,
    pub targets: Vec<TargetPlan>,
}

/// The plan of one session.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    pub policy: String,
    pub source_account: AccountId,
    pub targets: Vec<ResolvedTarget>,
    pub tasks: Vec<TaskPlan>,
    /// Session-wide remarks.
    pub messages: Vec<String>,
}

impl Plan {
    /// The status the session would end with if every replica it plans succeeded.
    pub fn expected_status(&self) -> Status {
        let remarks = if self.messages.is_empty() {
            Status::Success
        } else {
            Status::Warning
        };
        Status::worst(
            self.tasks
                .iter()
                .flat_map(|t| t.targets.iter().map(|p| p.decision.status()))
                .chain([remarks]),
        )
    }
}

/// Decides, for each instance and target, what happens.
pub fn plan(
    policy: &str,
    source_account: &AccountId,
    targets: &[ResolvedTarget],
    estate: &Estate,
    messages: Vec<String>,
) -> Plan {
    let tasks = estate
        .instances
        .iter()
        .map(|instance| TaskPlan {
            resource_type: "ec2",
            instance: instance.clone(),
            take_snapshot: !instance.volumes.is_empty(),
            targets: targets
                .iter()
                .map(|t| TargetPlan {
                    target: t.index,
                    account: t.account.clone(),
                    region: t.region.clone(),
                    decision: decide(source_account, t, instance, estate),
                })
                .collect(),
        })
        .collect();
    Plan {
        policy: policy.to_owned(),
        source_account: source_account.clone(),
        targets: targets.to_vec(),
        tasks,
        messages,
    }
}

fn decide(
    source_account: &AccountId,
    target: &ResolvedTarget,
    instance: &Instance,
    estate: &Estate,
) -> Decision {
    if instance.volumes.is_empty() {
        return Decision::Skip {
            reason: format!(
                "instance {} has no EBS volume attached: nothing to snapshot",
                instance.id
            ),
        };
    }
    let cross_account = &target.account != source_account;

    for v in instance.volumes.iter().filter(|v| v.encrypted) {
        let Some(key_arn) = &v.kms_key_id else {
            return Decision::Refuse {
                reason: format!(
                    "volume {} is encrypted but AWS reported no KmsKeyId for it",
                    v.id
                ),
            };
        };
        if let Some(err) = estate.key_errors.get(key_arn) {
            return Decision::Refuse {
                reason: format!(
                    "the source key {key_arn} of volume {} could not be read ({err}); the source role \
                     needs kms:DescribeKey on it, and the copy needs the source key",
                    v.id
                ),
            };
        }
        let Some(key) = estate.keys.get(key_arn) else {
            return Decision::Refuse {
                reason: format!(
                    "the source key {key_arn} of volume {} was not resolved",
                    v.id
                ),
            };
        };
        if !key.is_enabled() {
            return Decision::Refuse {
                reason: format!(
                    "volume {} is encrypted with key {} which is {}: its snapshots cannot be copied",
                    v.id, key.arn, key.state
                ),
            };
        }
        // https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html:
        // snapshots encrypted with an AWS managed key cannot be shared.
        if cross_account && key.manager == KeyManager::Aws {
            return Decision::Refuse {
                reason: format!(
                    "volume {} of instance {} is encrypted with the AWS managed key {} (alias aws/ebs); \
                     snapshots under an AWS managed key cannot be shared with account {} for {}, so no \
                     share is made. Remedy: encrypt the volume with a customer managed key whose key policy \
                     admits account {} (create an encrypted copy of a snapshot with that key and \
                     replace the volume from it), then run again",
                    v.id,
                    instance.id,
                    key.arn,
                    target.account,
                    target.label(),
                    target.account
                ),
            };
        }
    }

    match &target.key {
        None if instance.is_encrypted() => Decision::Skip {
            reason: format!(
                "instance {} has encrypted volumes ({}) and {} has no kms_key: no replica is made. \
                 Set kms_key on that target to a customer managed key in {}",
                instance.id,
                instance
                    .volumes
                    .iter()
                    .filter(|v| v.encrypted)
                    .map(|v| v.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                target.label(),
                target.region
            ),
        },
        key => Decision::Replicate {
            workflow: if cross_account {
                Workflow::CrossAccountEc2
            } else {
                Workflow::SameAccount
            },
            kms_key_id: key.as_ref().map(|k| k.arn.clone()),
            warnings: replica_warnings(target, instance),
        },
    }
}

/// What is worth a `Warning` about a replica that is made all the same.
fn replica_warnings(target: &ResolvedTarget, instance: &Instance) -> Vec<String> {
    let mut warnings = Vec::new();
    match &target.key {
        None => warnings.push(format!(
            "{} has no kms_key: the replica of instance {} is left unencrypted like its \
             volumes; set kms_key on that target to a customer managed key in {} to encrypt it",
            target.label(),
            instance.id,
            target.region
        )),
        // A replica in a DR account that depends on a key another account controls is lost
        // with that account's key (disabled, deleted, or its policy changed).
        Some(k) if k.account != target.account => warnings.push(format!(
            "the target key {} of {} belongs to account {}, not to the target account: its \
             replicas can be read only while account {} keeps that key and its policy; prefer a \
             key of account {}",
            k.arn,
            target.label(),
            k.account,
            k.account,
            target.account
        )),
        Some(_) => {}
    }
    warnings
}

#[cfg(test)]
mod tests;
