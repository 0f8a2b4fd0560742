//! The planner: for every selected instance and every target, which workflow of the SPEC
//! applies, or why no replica is made. Pure: it reads what the inventory found and decides.
//!
//! The rules, in the order they are applied for one resource and one target:
//! 1. Nothing to snapshot (an instance without EBS volume) or a DB of an Aurora cluster (not
//!    supported yet): `Warning`, no replica.
//! 2. A source key that could not be read, or is not usable: `Failed` for that target.
//! 3. Another account and a source key that is AWS managed (`aws/ebs`, `aws/rds`): `Failed`,
//!    no share is made (AWS refuses to share such snapshots).
//! 4. An encrypted resource and a target without a key: `Warning`, no replica (the seed).
//! 5. Otherwise the replica is made: workflow A in the source account, B (EC2) or C (RDS)
//!    in another, encrypted with the target key when there is one. A replica left unencrypted,
//!    or under a key of another account than the target's, ends `Warning`.
//! 6. RDS across accounts and Regions copies twice (workflow C), the first copy encrypted with
//!    the target's staging key in the source Region (`staging_kms_key`, else the target
//!    account's `aws/rds` key there), unless `rds_single_step` asks for one copy.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::ids::AccountId;
use crate::model::{DbInstance, DbKind, Instance, KeyInfo, KeyManager, Resource, ResourceType};
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
    /// RDS workflow C: the key of the intermediate copy, per source Region.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub staging_keys: BTreeMap<String, KeyInfo>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rds_single_step: bool,
    /// Whether the policy names a staging key for this target.
    #[serde(skip)]
    pub staging_declared: bool,
}

impl ResolvedTarget {
    pub fn label(&self) -> String {
        format!("targets[{}] ({} {})", self.index, self.account, self.region)
    }
}

/// What the inventory found in the source account.
#[derive(Clone, Debug, Default)]
pub struct Estate {
    pub resources: Vec<Resource>,
    /// Source keys by the key ARN the volumes and DB instances report.
    pub keys: BTreeMap<String, KeyInfo>,
    /// Source keys that `DescribeKey` could not read, with AWS's answer.
    pub key_errors: BTreeMap<String, String>,
    /// The default-key workaround's keys (`[source] reencrypt_keys`), resolved: per source
    /// Region, a customer managed key of the source account.
    pub reencrypt_keys: BTreeMap<String, KeyInfo>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workflow {
    /// SPEC workflow A: copy to the target Region in the source account.
    SameAccount,
    /// SPEC workflow B: share with the target account, copy there, unshare.
    CrossAccountEc2,
    /// SPEC workflow C: share, copy into the target account in the source Region, copy that
    /// to the target Region, delete the intermediate copy, unshare.
    CrossAccountRds,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Decision {
    Replicate {
        workflow: Workflow,
        /// The key that will encrypt the replica; `None` leaves an unencrypted copy unencrypted.
        kms_key_id: Option<String>,
        /// RDS workflow C in two steps: the key of the intermediate copy (`None` for an
        /// unencrypted DB, whose intermediate copy stays unencrypted).
        #[serde(skip_serializing_if = "Option::is_none")]
        staging_kms_key_id: Option<String>,
        /// RDS workflow C through an intermediate copy in the source Region.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        two_step: bool,
        /// RDS workflow C in one `CopyDBSnapshot` across accounts and Regions.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        single_step: bool,
        /// Why the replica, though made, deserves attention: the task ends `Warning`.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
        /// What is worth knowing about how the replica is made (cost, steps).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        notes: Vec<String>,
        /// The default-key workaround: snapshots under an AWS managed key are first copied
        /// in the source account under this key, and the copies are shared instead.
        #[serde(skip_serializing_if = "Option::is_none")]
        reencrypt: Option<Reencrypt>,
    },
    /// No replica; the task ends `Warning`.
    Skip { reason: String },
    /// No replica; the task ends `Failed`.
    Refuse { reason: String },
}

/// The default-key workaround of one replica (SPEC 6.4): AWS cannot share a snapshot under
/// `aws/ebs` or `aws/rds`, so a copy of it is made in the source account and Region under a
/// customer managed key, shared and copied by the target as usual, then unshared and deleted
/// once the target's copy is complete. The original is never shared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reencrypt {
    /// The key ARN of the extra copy.
    pub kms_key_id: String,
    /// EBS: the volumes whose snapshots need it (those under `aws/ebs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
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
    /// What the replica copies, with sizes (SPEC 6.5); filled by [`sizing::estimate`].
    pub copies: Vec<estimate::CopyEstimate>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TaskPlan {
    #[serde(rename = "type")]
    pub resource_type: ResourceType,
    pub id: String,
    pub region: String,
    /// `instance` (EC2) or `db_instance` (RDS), with what the inventory found.
    #[serde(flatten)]
    pub resource: Resource,
    /// Whether the source snapshots are taken (false when there is nothing to snapshot).
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
    /// The totals of the copies (SPEC 6.5), once [`sizing::estimate`] has sized them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate: Option<estimate::Estimate>,
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
        .resources
        .iter()
        .map(|resource| TaskPlan {
            resource_type: resource.kind(),
            id: resource.id().to_owned(),
            region: resource.region().to_owned(),
            resource: resource.clone(),
            take_snapshot: match resource {
                Resource::Ec2(i) => !i.volumes.is_empty(),
                Resource::Rds(d) => d.cluster.is_none(),
                Resource::Aurora(_) => true,
            },
            targets: targets
                .iter()
                .map(|t| TargetPlan {
                    target: t.index,
                    account: t.account.clone(),
                    region: t.region.clone(),
                    decision: decide(source_account, t, resource, estate),
                    copies: Vec::new(),
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
        estimate: None,
    }
}

fn decide(
    source_account: &AccountId,
    target: &ResolvedTarget,
    resource: &Resource,
    estate: &Estate,
) -> Decision {
    match resource {
        Resource::Ec2(instance) => decide_ec2(source_account, target, instance, estate),
        Resource::Rds(db) => decide_rds(source_account, target, db, DbKind::Instance, estate),
        Resource::Aurora(c) => decide_rds(source_account, target, &c.db, DbKind::Cluster, estate),
    }
}

fn decide_ec2(
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
    // The default-key workaround, where a re-encrypt key serves the instance's Region.
    let reencrypt_key = estate
        .reencrypt_keys
        .get(&instance.region)
        .filter(|_| cross_account);
    let mut reencrypted = Vec::new();
    for v in instance.volumes.iter().filter(|v| v.encrypted) {
        let what = format!("volume {} of instance {}", v.id, instance.id);
        // https://docs.aws.amazon.com/ebs/latest/userguide/ebs-modifying-snapshot-permissions.html:
        // snapshots encrypted with an AWS managed key cannot be shared.
        let remedy = format!(
            "set [source] reencrypt_keys = {{ \"{}\" = \"<ARN of a customer managed key of \
             the source account whose key policy admits account {}>\" }} in the policy, so that \
             snaprelay copies the snapshot under that key and shares the copy; or encrypt the \
             volume with a customer managed key whose key policy admits the target account \
             (create an encrypted copy of a snapshot with that key and replace the volume from \
             it)",
            instance.region, target.account
        );
        let aws_managed = aws_managed(v.kms_key_id.as_deref(), estate);
        if let Some(refusal) = source_key_refusal(
            &what,
            v.kms_key_id.as_deref(),
            "aws/ebs",
            &remedy,
            cross_account && !(aws_managed && reencrypt_key.is_some()),
            target,
            estate,
        ) {
            return refusal;
        }
        if aws_managed && reencrypt_key.is_some() {
            reencrypted.push(v.id.clone());
        }
    }
    let reencrypt = reencrypt_key
        .filter(|_| !reencrypted.is_empty())
        .map(|key| Reencrypt {
            kms_key_id: key.arn.clone(),
            volumes: reencrypted,
        });
    let notes = reencrypt.iter().map(|r| {
        let one = r.volumes.len() == 1;
        let gib: i64 = instance
            .volumes
            .iter()
            .filter(|v| r.volumes.contains(&v.id))
            .map(|v| i64::from(v.size_gib))
            .sum();
        format!(
            "default-key workaround: the snapshot{s} of {vols} under aws/ebs {is} first copied in \
             the source account under {key} (an extra full copy of {gib} GiB in {region}, every \
             run; deleted within the run, so it adds no monthly storage and no transfer), and \
             {copy} {is} shared instead; {it} {is} unshared and deleted once the copy in \
             {target} is complete. The original snapshot{s} {is} never shared",
            s = if one { "" } else { "s" },
            vols = r.volumes.join(", "),
            is = if one { "is" } else { "are" },
            copy = if one { "the copy" } else { "the copies" },
            it = if one { "it" } else { "they" },
            key = r.kms_key_id,
            region = instance.region,
            target = target.label()
        )
    });
    let notes: Vec<String> = notes.collect();
    if target.key.is_none() && instance.is_encrypted() {
        let encrypted: Vec<&str> = instance
            .volumes
            .iter()
            .filter(|v| v.encrypted)
            .map(|v| v.id.as_str())
            .collect();
        return no_target_key(
            target,
            &format!(
                "instance {} has encrypted volumes ({})",
                instance.id,
                encrypted.join(", ")
            ),
        );
    }
    Decision::Replicate {
        workflow: if cross_account {
            Workflow::CrossAccountEc2
        } else {
            Workflow::SameAccount
        },
        kms_key_id: target.key.as_ref().map(|k| k.arn.clone()),
        staging_kms_key_id: None,
        two_step: false,
        single_step: false,
        warnings: replica_warnings(target, &instance.id),
        notes,
        reencrypt,
    }
}

/// Whether `key_arn` is an AWS managed key (`aws/ebs`, `aws/rds`), as `DescribeKey` said.
fn aws_managed(key_arn: Option<&str>, estate: &Estate) -> bool {
    key_arn
        .and_then(|k| estate.keys.get(k))
        .is_some_and(|k| k.manager == KeyManager::Aws)
}

/// RDS and Aurora: workflow A in the source account, workflow C across accounts (SPEC
/// section 2), with DB snapshots or DB cluster snapshots.
fn decide_rds(
    source_account: &AccountId,
    target: &ResolvedTarget,
    db: &DbInstance,
    kind: DbKind,
    estate: &Estate,
) -> Decision {
    let cross_account = &target.account != source_account;
    if let Some(refusal) = rds_refusal(cross_account, target, db, kind, estate) {
        return refusal;
    }
    let mut kms_key_id = target.key.as_ref().map(|k| k.arn.clone());
    let mut warnings = replica_warnings(target, &db.id);
    if kind == DbKind::Cluster && !db.encrypted && kms_key_id.is_some() {
        // "If you copy an unencrypted DB cluster snapshot and specify a value for the KmsKeyId
        // parameter, an error is returned"
        // (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html):
        // unlike a DB snapshot, the copy cannot be encrypted on the way.
        kms_key_id = None;
        warnings.push(format!(
            "Aurora cluster {} is unencrypted and CopyDBClusterSnapshot cannot encrypt a copy, \
             so its replica in {} stays unencrypted despite the target's kms_key; encrypt the \
             cluster (restore it from a snapshot copied under a key) to encrypt its replicas",
            db.id,
            target.label()
        ));
    }
    // A shared DB cluster snapshot is copied only within its Region: "You can't copy a DB
    // cluster snapshot across Regions and accounts in a single step"
    // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html),
    // so rds_single_step never applies to a cluster.
    let single_step = kind == DbKind::Instance && target.rds_single_step;
    let two_step = cross_account && target.region != db.region && !single_step;
    let mut notes = unused_settings(cross_account, two_step, target, db, kind);
    if !cross_account {
        return Decision::Replicate {
            workflow: Workflow::SameAccount,
            kms_key_id,
            staging_kms_key_id: None,
            two_step: false,
            single_step: false,
            warnings,
            notes,
            reencrypt: None,
        };
    }
    let mut staging_kms_key_id = None;
    if two_step {
        // The intermediate copy of an encrypted snapshot needs a key of the target account in
        // the source Region; an unencrypted snapshot is copied as it is.
        if db.encrypted {
            let Some(staging) = target.staging_keys.get(&db.region) else {
                return Decision::Refuse {
                    reason: format!(
                        "{} has no staging key in {} for the intermediate copy of {} {}",
                        target.label(),
                        db.region,
                        kind.db_noun(),
                        db.id
                    ),
                };
            };
            staging_kms_key_id = Some(staging.arn.clone());
        }
        notes.push(two_step_note(target, db, kind));
    } else if target.region != db.region {
        notes.push(format!(
            "one CopyDBSnapshot across accounts and Regions ({} to {}): AWS supports it in most \
             commercial Regions; without rds_single_step the two-step flow is used",
            db.region, target.region
        ));
    }
    let reencrypt = reencrypt_of_db(cross_account, db, estate);
    if let Some(r) = &reencrypt {
        notes.push(format!(
            "default-key workaround: the {} under aws/rds is first copied in the source \
             account under {} (an extra full copy of {} in {}, every run; deleted within the \
             run, so it adds no monthly storage and no transfer), and the copy is shared \
             instead; it is unshared and deleted once the copy in {} is complete. The original \
             snapshot is never shared",
            kind.snapshot_noun(),
            r.kms_key_id,
            db.size_gib
                .map_or("the DB's allocated storage".to_owned(), |g| format!(
                    "{g} GiB"
                )),
            db.region,
            target.label()
        ));
    }
    Decision::Replicate {
        workflow: Workflow::CrossAccountRds,
        kms_key_id,
        staging_kms_key_id,
        two_step,
        single_step: target.region != db.region && single_step,
        warnings,
        notes,
        reencrypt,
    }
}

/// The default-key workaround of a DB to another account: its snapshot is under `aws/rds`
/// and a re-encrypt key serves its Region.
fn reencrypt_of_db(cross_account: bool, db: &DbInstance, estate: &Estate) -> Option<Reencrypt> {
    let key = estate.reencrypt_keys.get(&db.region)?;
    (cross_account && db.encrypted && aws_managed(db.kms_key_id.as_deref(), estate)).then(|| {
        Reencrypt {
            kms_key_id: key.arn.clone(),
            volumes: Vec::new(),
        }
    })
}

/// Why a DB cannot be replicated to `target` at all, if it cannot: an Aurora member, a source
/// key the target cannot use, no target key for an encrypted DB, a GovCloud copy.
fn rds_refusal(
    cross_account: bool,
    target: &ResolvedTarget,
    db: &DbInstance,
    kind: DbKind,
    estate: &Estate,
) -> Option<Decision> {
    if let Some(cluster) = &db.cluster {
        return Some(Decision::Skip {
            reason: format!(
                "DB instance {} belongs to Aurora cluster {cluster}: Aurora is snapshotted per \
                 cluster; select the cluster with type = \"aurora\" (ids = [\"{cluster}\"])",
                db.id
            ),
        });
    }
    if db.encrypted {
        let what = format!("{} {}", kind.db_noun(), db.id);
        // https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ShareSnapshot.html: a
        // snapshot encrypted with the default AWS managed key cannot be shared.
        let remedy = format!(
            "set [source] reencrypt_keys = {{ \"{}\" = \"<ARN of a customer managed key of \
             the source account whose key policy admits account {}>\" }} in the policy, so that \
             snaprelay copies the {} under that key and shares the copy; or restore \
             the DB from a snapshot re-encrypted with such a key",
            db.region,
            target.account,
            kind.snapshot_noun()
        );
        if let Some(refusal) = source_key_refusal(
            &what,
            db.kms_key_id.as_deref(),
            "aws/rds",
            &remedy,
            cross_account && reencrypt_of_db(cross_account, db, estate).is_none(),
            target,
            estate,
        ) {
            return Some(refusal);
        }
        if target.key.is_none() {
            return Some(no_target_key(
                target,
                &format!("{} {} is encrypted", kind.db_noun(), db.id),
            ));
        }
    }
    // CopyDBSnapshot across Regions needs a SigV4-presigned PreSignedUrl in AWS GovCloud (US)
    // and ignores it elsewhere ("This setting applies only to Amazon Web Services GovCloud (US)
    // Regions": https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html).
    // The Rust SDK does not make one (smithy-rs issue 124) and neither does snaprelay yet: say so
    // before anything is changed rather than fail at the copy.
    if target.region != db.region
        && (target.region.starts_with("us-gov-") || db.region.starts_with("us-gov-"))
    {
        return Some(Decision::Refuse {
            reason: format!(
                "copying {}s from {} to {} (AWS GovCloud) needs a presigned URL, which \
                 this version of snaprelay does not make; use a target in {}",
                kind.snapshot_noun(),
                db.region,
                target.region,
                db.region
            ),
        });
    }
    None
}

/// Notes on target settings that do not apply to this DB's replica.
fn unused_settings(
    cross_account: bool,
    two_step: bool,
    target: &ResolvedTarget,
    db: &DbInstance,
    kind: DbKind,
) -> Vec<String> {
    let mut notes = Vec::new();
    if target.staging_declared && !two_step {
        notes.push(format!(
            "staging_kms_key of {} is not used for {} {}: there is no intermediate copy ({})",
            target.label(),
            kind.db_noun(),
            db.id,
            if !cross_account {
                "same account"
            } else if target.region == db.region {
                "the target is in the DB's Region"
            } else {
                "rds_single_step"
            }
        ));
    }
    if !cross_account && target.rds_single_step {
        notes.push(format!(
            "rds_single_step of {} only concerns copies to another account",
            target.label()
        ));
    } else if kind == DbKind::Cluster && target.rds_single_step && target.region != db.region {
        notes.push(format!(
            "rds_single_step of {} is not used for Aurora cluster {}: AWS copies a DB cluster \
             snapshot shared from another account only within its Region (\"You can't copy a DB \
             cluster snapshot across Regions and accounts in a single step\", \
             https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html), \
             so it is copied in two steps",
            target.label(),
            db.id
        ));
    }
    notes
}

/// What workflow C in two steps does for this DB, and what it costs.
fn two_step_note(target: &ResolvedTarget, db: &DbInstance, kind: DbKind) -> String {
    let staging_key = match target.staging_keys.get(&db.region) {
        Some(k) if db.encrypted && k.manager == KeyManager::Aws => {
            format!(
                "encrypted with {} (the target account's aws/rds key)",
                k.arn
            )
        }
        Some(k) if db.encrypted => format!("encrypted with {}", k.arn),
        _ => "unencrypted, like the DB".to_owned(),
    };
    let avoid = match kind {
        DbKind::Instance => "rds_single_step = true avoids it where AWS supports a single copy",
        DbKind::Cluster => "AWS offers no single copy for a DB cluster snapshot",
    };
    format!(
        "two steps: the shared snapshot is copied into account {} in {} ({staging_key}), then \
         to {}; that second copy is a full, non-incremental copy every time ({avoid})",
        target.account, db.region, target.region
    )
}

/// Why the source key of `what` rules a replica out, if it does: unknown, unreadable,
/// disabled, or (across accounts) AWS managed.
fn source_key_refusal(
    what: &str,
    key_arn: Option<&str>,
    managed_alias: &str,
    remedy: &str,
    cross_account: bool,
    target: &ResolvedTarget,
    estate: &Estate,
) -> Option<Decision> {
    let refuse = |reason: String| Some(Decision::Refuse { reason });
    let Some(key_arn) = key_arn else {
        return refuse(format!(
            "{what} is encrypted but AWS reported no KmsKeyId for it"
        ));
    };
    if let Some(err) = estate.key_errors.get(key_arn) {
        return refuse(format!(
            "the source key {key_arn} of {what} could not be read ({err}); the source role needs \
             kms:DescribeKey on it, and the copy needs the source key"
        ));
    }
    let Some(key) = estate.keys.get(key_arn) else {
        return refuse(format!(
            "the source key {key_arn} of {what} was not resolved"
        ));
    };
    if !key.is_enabled() {
        return refuse(format!(
            "{what} is encrypted with key {} which is {}: its snapshots cannot be copied",
            key.arn, key.state
        ));
    }
    if cross_account && key.manager == KeyManager::Aws {
        return refuse(format!(
            "{what} is encrypted with the AWS managed key {} (alias {managed_alias}); snapshots \
             under an AWS managed key cannot be shared with account {} for {}, so no share is \
             made. Remedy: {remedy}, then run again",
            key.arn,
            target.account,
            target.label()
        ));
    }
    None
}

fn no_target_key(target: &ResolvedTarget, why: &str) -> Decision {
    Decision::Skip {
        reason: format!(
            "{why} and {} has no kms_key: no replica is made. Set kms_key on that target to a \
             customer managed key in {}",
            target.label(),
            target.region
        ),
    }
}

/// What is worth a `Warning` about a replica that is made all the same.
fn replica_warnings(target: &ResolvedTarget, resource_id: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    match &target.key {
        None => warnings.push(format!(
            "{} has no kms_key: the replica of {resource_id} is left unencrypted like its \
             source; set kms_key on that target to a customer managed key in {} to encrypt it",
            target.label(),
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

pub mod estimate;
pub mod keys;
pub mod prepare;
pub mod sizing;

#[cfg(test)]
mod tests;
