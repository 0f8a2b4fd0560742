//! What the plan's replicas need each role to be allowed: the KMS actions on every key a
//! replica uses (each source key, each target key, each staging key), and the EC2 and RDS
//! actions of each workflow in each account and Region. Pure: read from the plan.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::AccountId;
use crate::model::Resource;
use crate::plan::prepare::Prepared;
use crate::plan::{Decision, Reencrypt, Workflow};
use crate::ports::Access;

/// The KMS actions a principal needs on a key whose snapshots it copies or creates (SPEC
/// section 3): `kms:ReEncrypt*` and `kms:GenerateDataKey*` as the operations EBS and RDS call.
pub(super) const KMS_ACTIONS: [&str; 6] = [
    "kms:DescribeKey",
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKeyWithoutPlaintext",
];

/// What a restore or drill reads of a place's network and makes of it: a drill's isolated
/// security group, for instances and DB instances alike.
const RESTORE_NETWORK: &[&str] = &[
    "ec2:DescribeVpcs",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeSubnets",
    "ec2:DescribeSecurityGroups",
    "ec2:CreateSecurityGroup",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:DeleteSecurityGroup",
    "ec2:CreateTags",
];

/// An instance or its volumes, from EBS snapshots.
const RESTORE_EC2: &[&str] = &[
    "ec2:DescribeImages",
    "ec2:DescribeInstances",
    "ec2:DescribeVolumes",
    "ec2:DescribeKeyPairs",
    "ec2:RegisterImage",
    "ec2:DeregisterImage",
    "ec2:RunInstances",
    "ec2:TerminateInstances",
    "ec2:CreateVolume",
    "ec2:DeleteVolume",
];

/// A DB instance, from a DB snapshot.
const RESTORE_RDS: &[&str] = &[
    "rds:DescribeDBInstances",
    "rds:DescribeDBSubnetGroups",
    "rds:DescribeDBParameterGroups",
    "rds:DescribeOptionGroups",
    "rds:RestoreDBInstanceFromDBSnapshot",
    "rds:DeleteDBInstance",
    "rds:AddTagsToResource",
];

/// Who uses a key, and for what (to say in the finding).
pub(super) struct Purpose {
    pub key_region: String,
    /// The credentials that can read the key's policy (the key's own account).
    pub owner: Access,
    pub what: BTreeSet<String>,
    /// `ec2` or `rds`: the service that uses the key (`kms:ViaService`).
    pub services: BTreeSet<&'static str>,
}

impl Purpose {
    /// A key's use, before any service or replica is known; `owner` reads its policy.
    pub fn new(key: &str, owner: &Access) -> Self {
        Self {
            key_region: crate::ids::key_arn_parts(key)
                .map(|(r, _)| r)
                .unwrap_or_default(),
            owner: owner.clone(),
            what: BTreeSet::new(),
            services: BTreeSet::new(),
        }
    }

    pub fn add(&mut self, service: &'static str, what: &str) {
        self.services.insert(service);
        self.what.insert(what.to_owned());
    }

    /// The replicas that use the key, as findings say them.
    pub fn uses(&self) -> String {
        self.what.iter().cloned().collect::<Vec<_>>().join("; ")
    }
}

/// A source key used by a target's credentials through one service: EC2 and RDS use a key
/// with their own `kms:ViaService`, and a key policy may admit one and not the other.
pub(super) type SourceKeyUse = (Access, String, &'static str);

/// What the plan's replicas need, gathered from every task.
#[derive(Default)]
pub(super) struct Needs {
    /// Per (credentials, key ARN).
    pub kms: BTreeMap<(Access, String), Purpose>,
    /// Per credentials: the (action, resource) pairs their IAM policies must allow.
    pub service: BTreeMap<Access, BTreeSet<(String, String)>>,
    /// Per credentials of a place (each target, the source): what `restore` and `drill`
    /// call there (SPEC 6.2, 6.3).
    pub restore: BTreeMap<Access, BTreeSet<(String, String)>>,
}

impl Needs {
    pub fn of(prepared: &Prepared) -> Self {
        let plan = &prepared.plan;
        let source = &prepared.source_access;
        let mut needs = Needs::default();
        for task in &plan.tasks {
            let (service, source_keys) = source_keys(&task.resource);
            for t in &task.targets {
                let Decision::Replicate {
                    workflow,
                    kms_key_id,
                    staging_kms_key_id,
                    two_step,
                    reencrypt,
                    ..
                } = &t.decision
                else {
                    continue;
                };
                let target = &plan.targets[t.target];
                let user = &target.access;
                let cross = *workflow != Workflow::SameAccount;
                let label = format!("{} {} to {}", task.resource_type, task.id, target.label());
                for key in &shared_keys(&task.resource, reencrypt.as_ref(), &source_keys) {
                    needs.kms_use(user, key, source, service, &label);
                }
                if let Some(r) = reencrypt {
                    // The default-key workaround's copy, made and deleted by the source role
                    // in the source Region: it reads the snapshot under the AWS managed key and
                    // encrypts the copy under the re-encrypt key.
                    let what = format!("{label} (the copy under the re-encrypt key)");
                    for key in source_keys.iter().chain([&r.kms_key_id.as_str()]) {
                        needs.kms_use(source, key, source, service, &what);
                    }
                    // The copy and its deletion are the resource type's API calls (an Aurora
                    // cluster's are DB cluster snapshot calls).
                    let source_side = (source, &plan.source_account);
                    let api = task.resource_type.as_str();
                    needs.service_actions(source_side, api, false, false, &task.region);
                }
                if let Some(key) = kms_key_id {
                    needs.kms_use(user, key, user, service, &label);
                }
                if let (true, Some(key)) = (*two_step, staging_kms_key_id) {
                    needs.kms_use(user, key, user, service, &label);
                }
                let source_side = (source, &plan.source_account);
                let target_side = (user, &target.account);
                // The API is the resource type's: an Aurora cluster's snapshots are DB cluster
                // snapshots (its keys are still used through RDS, `service`).
                let api = task.resource_type.as_str();
                needs.service_actions(source_side, api, true, cross, &task.region);
                needs.service_actions(target_side, api, false, cross, &target.region);
                if *two_step {
                    // Workflow C's intermediate copy, in the source Region.
                    needs.service_actions(target_side, api, false, cross, &task.region);
                }
                // A restore in the source account may pass the recorded instance profile.
                let same_account = target.account == plan.source_account;
                needs.restore_actions(user, service, same_account);
            }
            needs.restore_actions(source, service, true);
        }
        needs
    }

    /// What `restore` and `drill` call with `who` for resources of `service`.
    fn restore_actions(&mut self, who: &Access, service: &'static str, may_pass_role: bool) {
        let set = self.restore.entry(who.clone()).or_default();
        for a in RESTORE_NETWORK.iter().chain(match service {
            "ec2" => RESTORE_EC2,
            _ => RESTORE_RDS,
        }) {
            set.insert(((*a).to_owned(), "*".to_owned()));
        }
        if may_pass_role && service == "ec2" {
            set.insert(("iam:PassRole".to_owned(), "*".to_owned()));
        }
    }

    fn kms_use(
        &mut self,
        user: &Access,
        key: &str,
        owner: &Access,
        service: &'static str,
        what: &str,
    ) {
        self.kms
            .entry((user.clone(), key.to_owned()))
            .or_insert_with(|| Purpose::new(key, owner))
            .add(service, what);
    }

    /// The EC2, RDS or Aurora actions `who` (credentials acting in an account) makes in
    /// `region`; `api` is the resource type (`ec2`, `rds`, `aurora`).
    fn service_actions(
        &mut self,
        (who, account): (&Access, &AccountId),
        api: &'static str,
        source_side: bool,
        cross: bool,
        region: &str,
    ) {
        let resource = match api {
            "ec2" => format!("arn:aws:ec2:{region}::snapshot/*"),
            "aurora" => format!("arn:aws:rds:{region}:{account}:cluster-snapshot:*"),
            _ => format!("arn:aws:rds:{region}:{account}:snapshot:*"),
        };
        let set = self.service.entry(who.clone()).or_default();
        for a in service_actions(api, source_side, cross) {
            let resource = if a.contains(":Describe") {
                "*".to_owned()
            } else {
                resource.clone()
            };
            set.insert((a.to_owned(), resource));
        }
    }
}

/// The actions of `api` (a resource type) on one side of a replica; the source side shares
/// its snapshots when the replica is in another account.
fn service_actions(api: &str, source_side: bool, cross: bool) -> Vec<&'static str> {
    let actions: &[&'static str] = match (api, source_side) {
        ("ec2", true) => &[
            "ec2:CreateSnapshots",
            "ec2:CreateTags",
            "ec2:DescribeInstances",
            "ec2:DescribeSnapshots",
            "ec2:DeleteSnapshot",
        ],
        ("ec2", false) => &[
            "ec2:CopySnapshot",
            "ec2:CreateTags",
            "ec2:DescribeSnapshots",
            "ec2:DeleteSnapshot",
        ],
        ("aurora", true) => &[
            "rds:CreateDBClusterSnapshot",
            "rds:AddTagsToResource",
            "rds:DescribeDBClusters",
            // The members' classes, which DescribeDBClusters does not say.
            "rds:DescribeDBInstances",
            "rds:DescribeDBClusterSnapshots",
            "rds:DeleteDBClusterSnapshot",
        ],
        ("aurora", false) => &[
            "rds:CopyDBClusterSnapshot",
            "rds:AddTagsToResource",
            "rds:DescribeDBClusterSnapshots",
            "rds:DeleteDBClusterSnapshot",
        ],
        (_, true) => &[
            "rds:CreateDBSnapshot",
            "rds:AddTagsToResource",
            "rds:DescribeDBInstances",
            "rds:DescribeDBSnapshots",
            "rds:DeleteDBSnapshot",
        ],
        (_, false) => &[
            "rds:CopyDBSnapshot",
            "rds:AddTagsToResource",
            "rds:DescribeDBSnapshots",
            "rds:DeleteDBSnapshot",
        ],
    };
    let share = match api {
        "ec2" => "ec2:ModifySnapshotAttribute",
        "aurora" => "rds:ModifyDBClusterSnapshotAttribute",
        _ => "rds:ModifyDBSnapshotAttribute",
    };
    actions
        .iter()
        .copied()
        .chain((source_side && cross).then_some(share))
        .collect()
}

/// What `run`'s preflight looks at: each source key of a replica in another account, per
/// target credentials and service.
pub(super) fn cross_account_source_keys(prepared: &Prepared) -> BTreeMap<SourceKeyUse, Purpose> {
    let mut uses: BTreeMap<SourceKeyUse, Purpose> = BTreeMap::new();
    for task in &prepared.plan.tasks {
        let (service, keys) = source_keys(&task.resource);
        for t in &task.targets {
            if let Decision::Replicate {
                workflow,
                reencrypt,
                ..
            } = &t.decision
                && *workflow != Workflow::SameAccount
            {
                let target = &prepared.plan.targets[t.target];
                let label = format!("{} {} to {}", task.resource_type, task.id, target.label());
                for key in &shared_keys(&task.resource, reencrypt.as_ref(), &keys) {
                    uses.entry((target.access.clone(), (*key).to_owned(), service))
                        .or_insert_with(|| Purpose::new(key, &prepared.source_access))
                        .add(service, &label);
                }
            }
        }
    }
    uses
}

/// The keys of the snapshots another account copies: the source keys, except that the
/// default-key workaround shares copies under the re-encrypt key instead of those under
/// `aws/ebs` or `aws/rds`; that key is the one the target must be let use.
fn shared_keys<'a>(
    resource: &'a Resource,
    reencrypt: Option<&'a Reencrypt>,
    source_keys: &[&'a str],
) -> Vec<&'a str> {
    match (reencrypt, resource) {
        (Some(r), Resource::Ec2(i)) => i
            .volumes
            .iter()
            .filter_map(|v| match r.volumes.contains(&v.id) {
                true => Some(r.kms_key_id.as_str()),
                false => v.kms_key_id.as_deref(),
            })
            .collect(),
        (Some(r), _) => vec![r.kms_key_id.as_str()],
        (None, _) => source_keys.to_vec(),
    }
}

/// The service of a resource and the keys of its snapshots.
pub(super) fn source_keys(resource: &Resource) -> (&'static str, Vec<&str>) {
    match resource {
        Resource::Ec2(i) => (
            "ec2",
            i.volumes
                .iter()
                .filter_map(|v| v.kms_key_id.as_deref())
                .collect(),
        ),
        Resource::Rds(d) => ("rds", d.kms_key_id.as_deref().into_iter().collect()),
        Resource::Aurora(c) => ("rds", c.db.kms_key_id.as_deref().into_iter().collect()),
    }
}
