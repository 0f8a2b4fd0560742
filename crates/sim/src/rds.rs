//! RDS: DB instances and Aurora DB clusters, manual DB snapshots and DB cluster snapshots
//! (their per-Region quota), `restore` shares and copies across Regions and accounts, each
//! with the rule AWS applies
//! (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html,
//! https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBClusterSnapshot.html).
//! The two kinds of snapshot follow the same rules, with the operation names, error codes
//! and copy quota of their own API; and a DB cluster snapshot shared from another account is
//! copied only within its Region.

use std::collections::{BTreeSet, HashMap};

use snaprelay_core::config::{DbSetup, ServerlessV2Scaling};
use snaprelay_core::engine::Service;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{
    ClusterMember, DbCluster, DbInstance, DbKind, DbSnapshotStatus, SnapshotState, Tag,
};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{CloudError, DbCopyRequest};
use tokio::time::Instant;

use crate::ebs::matches;
use crate::faults::error;
use crate::world::{PackedTags, SimDb, SimDbSnapshot, World, lifecycle, snapshot_arn};

fn rds_error(operation: &str, region: &str, code: &str, message: &str) -> CloudError {
    error("rds", operation, region, code, message)
}

/// The operation names and error codes of one kind's API.
struct Api {
    create: &'static str,
    copy: &'static str,
    delete: &'static str,
    modify_attribute: &'static str,
    describe_attributes: &'static str,
    db_not_found: &'static str,
    invalid_db_state: &'static str,
    not_found: &'static str,
    already_exists: &'static str,
    invalid_state: &'static str,
    /// How the messages name a snapshot.
    noun: &'static str,
    service: Service,
}

fn api(kind: DbKind) -> &'static Api {
    const INSTANCE: Api = Api {
        create: "CreateDBSnapshot",
        copy: "CopyDBSnapshot",
        delete: "DeleteDBSnapshot",
        modify_attribute: "ModifyDBSnapshotAttribute",
        describe_attributes: "DescribeDBSnapshotAttributes",
        db_not_found: "DBInstanceNotFound",
        invalid_db_state: "InvalidDBInstanceState",
        not_found: "DBSnapshotNotFound",
        already_exists: "DBSnapshotAlreadyExists",
        invalid_state: "InvalidDBSnapshotState",
        noun: "DB snapshot",
        service: Service::Rds,
    };
    // Error codes of API_CopyDBClusterSnapshot.html / API_CreateDBClusterSnapshot.html.
    const CLUSTER: Api = Api {
        create: "CreateDBClusterSnapshot",
        copy: "CopyDBClusterSnapshot",
        delete: "DeleteDBClusterSnapshot",
        modify_attribute: "ModifyDBClusterSnapshotAttribute",
        describe_attributes: "DescribeDBClusterSnapshotAttributes",
        db_not_found: "DBClusterNotFoundFault",
        invalid_db_state: "InvalidDBClusterStateFault",
        not_found: "DBClusterSnapshotNotFoundFault",
        already_exists: "DBClusterSnapshotAlreadyExistsFault",
        invalid_state: "InvalidDBClusterSnapshotStateFault",
        noun: "DB cluster snapshot",
        service: Service::Aurora,
    };
    match kind {
        DbKind::Instance => &INSTANCE,
        DbKind::Cluster => &CLUSTER,
    }
}

fn not_found(kind: DbKind, operation: &str, region: &str, id: &str) -> CloudError {
    let a = api(kind);
    rds_error(
        operation,
        region,
        a.not_found,
        &format!("{} {id} not found.", a.noun),
    )
}

pub(crate) type DbKey = (AccountId, String, String);

pub(crate) fn db_key(account: &AccountId, region: &str, id: &str) -> DbKey {
    // DB identifiers are case-insensitive; AWS stores them in lower case.
    (account.clone(), region.to_owned(), id.to_ascii_lowercase())
}

impl World {
    pub fn find_db_instances(
        &self,
        caller: &AccountId,
        region: &str,
        selector: &Selector,
        now: Instant,
    ) -> Vec<DbInstance> {
        self.dbs
            .values()
            .filter(|d| &d.account == caller && d.region == region)
            .filter(|d| d.status(now).is_some())
            .filter(|d| matches(selector, &d.id, &d.tags))
            .map(|d| DbInstance {
                id: d.id.clone(),
                arn: d.arn(),
                region: d.region.clone(),
                engine: d.profile.engine.clone(),
                encrypted: d.kms_key.is_some(),
                kms_key_id: d.kms_key.clone(),
                cluster: d.cluster.clone(),
                size_gib: Some(i64::from(d.size_gib)),
                setup: DbSetup {
                    engine_version: Some(d.profile.engine_version.clone()),
                    db_instance_class: Some(d.profile.class.clone()),
                    port: Some(d.profile.port),
                    storage_type: Some(d.profile.storage_type.clone()),
                    iops: d.profile.iops,
                    multi_az: Some(d.multi_az),
                    db_subnet_group: d.db_subnet_group.clone(),
                    db_parameter_group: Some(d.db_parameter_group.clone()),
                    option_group: Some(d.option_group.clone()),
                    vpc_security_group_ids: d.vpc_security_group_ids.clone(),
                    tags: d.tags.clone(),
                },
            })
            .collect()
    }

    /// `DescribeDBClusters`: the Aurora clusters of the caller in `region` matching the
    /// selector, with their members.
    pub fn find_db_clusters(
        &self,
        caller: &AccountId,
        region: &str,
        selector: &Selector,
        now: Instant,
    ) -> Vec<DbCluster> {
        self.clusters
            .values()
            .filter(|c| &c.account == caller && c.region == region)
            .filter(|c| c.status(now).is_some())
            .filter(|c| c.profile.engine.starts_with("aurora"))
            .filter(|c| matches(selector, &c.id, &c.tags))
            .map(|c| DbCluster {
                db: DbInstance {
                    id: c.id.clone(),
                    arn: format!("arn:aws:rds:{}:{}:cluster:{}", c.region, c.account, c.id),
                    region: c.region.clone(),
                    engine: c.profile.engine.clone(),
                    encrypted: c.kms_key.is_some(),
                    kms_key_id: c.kms_key.clone(),
                    cluster: None,
                    size_gib: Some(i64::from(c.size_gib)),
                    setup: DbSetup {
                        engine_version: Some(c.profile.engine_version.clone()),
                        port: Some(c.profile.port),
                        storage_type: Some("aurora".to_owned()),
                        // The cluster's DB cluster parameter group: the engine's default.
                        db_parameter_group: Some(crate::databases::default_parameter_group(
                            &c.profile.engine,
                            &c.profile.engine_version,
                        )),
                        db_subnet_group: c.db_subnet_group.clone(),
                        vpc_security_group_ids: c.vpc_security_group_ids.clone(),
                        tags: c.tags.clone(),
                        ..DbSetup::default()
                    },
                },
                members: self
                    .dbs
                    .values()
                    .filter(|d| d.account == c.account && d.region == c.region)
                    .filter(|d| d.cluster.as_deref() == Some(c.id.as_str()))
                    .enumerate()
                    .map(|(i, d)| ClusterMember {
                        db_instance_id: d.id.clone(),
                        writer: i == 0,
                        db_instance_class: Some(d.profile.class.clone()),
                    })
                    .collect(),
                engine_mode: Some("provisioned".to_owned()),
                serverless_v2_scaling: c
                    .serverless_v2
                    .map(|(min, max)| ServerlessV2Scaling::of_acu(Some(min), Some(max))),
            })
            .collect()
    }

    fn snaps(&self, kind: DbKind) -> &HashMap<DbKey, Box<SimDbSnapshot>> {
        match kind {
            DbKind::Instance => &self.db_snapshots,
            DbKind::Cluster => &self.cluster_snapshots,
        }
    }

    fn snaps_mut(&mut self, kind: DbKind) -> &mut HashMap<DbKey, Box<SimDbSnapshot>> {
        match kind {
            DbKind::Instance => &mut self.db_snapshots,
            DbKind::Cluster => &mut self.cluster_snapshots,
        }
    }

    fn databases(&self, kind: DbKind) -> &std::collections::BTreeMap<DbKey, SimDb> {
        match kind {
            DbKind::Instance => &self.dbs,
            DbKind::Cluster => &self.clusters,
        }
    }

    /// A DB snapshot or DB cluster snapshot (`...:cluster-snapshot:ID` ARNs) named by its
    /// identifier (one of the caller's in `region`) or by its ARN (the caller's, or shared with
    /// it, in any Region); `None` if there is none the caller may use.
    pub(crate) fn snapshot_named(
        &self,
        kind: DbKind,
        caller: &AccountId,
        region: &str,
        reference: &str,
    ) -> Option<&SimDbSnapshot> {
        // arn:aws:rds:REGION:ACCOUNT:snapshot:ID (cluster-snapshot for a cluster)
        let segment = match kind {
            DbKind::Instance => "snapshot",
            DbKind::Cluster => "cluster-snapshot",
        };
        let parts: Vec<&str> = reference.splitn(7, ':').collect();
        let (snapshot_region, account, id) = match parts.as_slice() {
            ["arn", _, "rds", r, a, seg, id] if *seg == segment => (*r, AccountId::parse(a), *id),
            ["arn", ..] => return None,
            _ => (region, Some(caller.clone()), reference),
        };
        account
            .and_then(|a| self.snaps(kind).get(&db_key(&a, snapshot_region, id)))
            .map(|s| &**s)
            .filter(|s| &s.account == caller || s.shared_with.contains(caller))
    }

    fn status(&self, s: &SimDbSnapshot, now: Instant) -> DbSnapshotStatus {
        let (state, progress) = lifecycle(s.started, s.duration, s.failure.as_deref(), now);
        let status = match state {
            SnapshotState::Completed => "available",
            SnapshotState::Error => "failed",
            // A DB cluster snapshot copy is "copying" ("Valid statuses are the following:
            // available, copying, creating": API_DBClusterSnapshot.html).
            _ if s.copy_of.is_some() && s.kind == DbKind::Cluster => "copying",
            // A copy is queued ("pending") before it is "creating".
            _ if s.copy_of.is_some() && progress < 10 => "pending",
            _ => "creating",
        };
        DbSnapshotStatus {
            id: s.id.clone(),
            arn: s.arn(),
            status: status.to_owned(),
            progress: Some(progress),
            encrypted: s.kms_key.is_some(),
            kms_key_id: s.kms_key.clone(),
            tags: s.tags.unpack(),
        }
    }

    fn manual_snapshots(&self, kind: DbKind, account: &AccountId, region: &str) -> usize {
        self.snaps(kind)
            .values()
            .filter(|s| &s.account == account && s.region == region)
            .count()
    }

    fn check_manual_quota(
        &self,
        kind: DbKind,
        operation: &str,
        account: &AccountId,
        region: &str,
    ) -> Result<(), CloudError> {
        // "Manual DB snapshots: 100 per Region" by default (CHAP_Limits.html); manual DB
        // cluster snapshots have a quota of the same size.
        if self.manual_snapshots(kind, account, region) >= self.quotas.rds_manual_snapshots {
            return Err(rds_error(
                operation,
                region,
                "SnapshotQuotaExceeded",
                "Request would result in user exceeding the allowed number of DB snapshots.",
            ));
        }
        Ok(())
    }

    /// `CreateDBSnapshot` (`CreateDBClusterSnapshot` of a cluster).
    #[allow(clippy::too_many_arguments)]
    pub fn create_db_snapshot(
        &mut self,
        kind: DbKind,
        caller: &AccountId,
        region: &str,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
        now: Instant,
    ) -> Result<DbSnapshotStatus, CloudError> {
        let a = api(kind);
        let op = a.create;
        let db = self
            .databases(kind)
            .get(&db_key(caller, region, db_instance_id))
            .filter(|d| d.status(now).is_some())
            .ok_or_else(|| {
                rds_error(
                    op,
                    region,
                    a.db_not_found,
                    &format!("{db_instance_id} not found."),
                )
            })?;
        if let Some(status) = db.status(now).filter(|s| *s != "available") {
            return Err(rds_error(
                op,
                region,
                a.invalid_db_state,
                &format!("{db_instance_id} is {status}, not available."),
            ));
        }
        let (size_gib, kms_key, profile) = (db.size_gib, db.kms_key.clone(), db.profile.clone());
        let key = db_key(caller, region, snapshot_id);
        if self.snaps(kind).contains_key(&key) {
            return Err(rds_error(
                op,
                region,
                a.already_exists,
                &format!(
                    "Cannot create the snapshot because a snapshot with the identifier {snapshot_id} already exists."
                ),
            ));
        }
        self.check_manual_quota(kind, op, caller, region)?;
        let t = self.timing.clone();
        let duration = t.duration(
            t.rds_snapshot_base,
            t.rds_snapshot_per_gib,
            size_gib,
            false,
            &mut self.rng,
        );
        let snapshot = SimDbSnapshot {
            id: key.2.clone(),
            account: caller.clone(),
            region: region.to_owned(),
            profile,
            size_gib,
            kms_key,
            started: now,
            duration,
            failure: None,
            shared_with: BTreeSet::new(),
            tags: PackedTags::pack(tags),
            copy_of: None,
            chain: duration,
            kind,
        };
        let status = self.status(&snapshot, now);
        self.snaps_mut(kind).insert(key, Box::new(snapshot));
        Ok(status)
    }

    /// `DescribeDBSnapshots` (`DescribeDBClusterSnapshots`) of the caller's own snapshots.
    pub fn describe_db_snapshots(
        &self,
        kind: DbKind,
        caller: &AccountId,
        region: &str,
        ids: &[String],
        now: Instant,
    ) -> Vec<DbSnapshotStatus> {
        ids.iter()
            .filter_map(|id| self.snaps(kind).get(&db_key(caller, region, id)))
            .map(|s| self.status(s, now))
            .collect()
    }

    /// The ids of the caller's snapshots of `kind` in `region` that carry `tag`.
    pub fn tagged_db_snapshots(
        &self,
        kind: DbKind,
        caller: &AccountId,
        region: &str,
        tag: &Tag,
    ) -> Vec<String> {
        self.snaps(kind)
            .values()
            .filter(|s| &s.account == caller && s.region == region)
            .filter(|s| s.tags.unpack().contains(tag))
            .map(|s| s.id.clone())
            .collect()
    }

    fn own_available(
        &self,
        kind: DbKind,
        operation: &str,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        now: Instant,
    ) -> Result<&SimDbSnapshot, CloudError> {
        let a = api(kind);
        let s = self
            .snaps(kind)
            .get(&db_key(caller, region, snapshot_id))
            .ok_or_else(|| not_found(kind, operation, region, snapshot_id))?;
        let (state, _) = lifecycle(s.started, s.duration, s.failure.as_deref(), now);
        if state == SnapshotState::Pending {
            return Err(rds_error(
                operation,
                region,
                a.invalid_state,
                &format!("{} {snapshot_id} is not in the available state.", a.noun),
            ));
        }
        Ok(s)
    }

    /// `ModifyDBSnapshotAttribute` (`ModifyDBClusterSnapshotAttribute`) `restore` for one
    /// account. A snapshot under the account's `aws/rds` key cannot be shared
    /// (share-encrypted-snapshot.html, in the RDS and the Aurora User Guide alike).
    #[allow(clippy::too_many_arguments)]
    pub fn set_db_snapshot_share(
        &mut self,
        kind: DbKind,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
        now: Instant,
    ) -> Result<(), CloudError> {
        let op = api(kind).modify_attribute;
        let s = self.own_available(kind, op, caller, region, snapshot_id, now)?;
        if shared
            && let Some(key) = &s.kms_key
            && self.key_is_aws_managed(key)
        {
            return Err(rds_error(
                op,
                region,
                "InvalidParameterValue",
                &format!(
                    "The {} is encrypted with the default AWS KMS key (aws/rds) of its account \
                     and can't be shared. Copy it with a customer managed key and share the copy.",
                    api(kind).noun
                ),
            ));
        }
        let key = db_key(caller, region, snapshot_id);
        if let Some(s) = self.snaps_mut(kind).get_mut(&key) {
            if shared {
                s.shared_with.insert(account.clone());
            } else {
                s.shared_with.remove(account);
            }
        }
        Ok(())
    }

    /// `DescribeDBSnapshotAttributes` (`DescribeDBClusterSnapshotAttributes`) `restore` of
    /// one of the caller's snapshots.
    pub fn db_snapshot_shares(
        &self,
        kind: DbKind,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.snaps(kind)
            .get(&db_key(caller, region, snapshot_id))
            .map(|s| s.shared_with.iter().map(ToString::to_string).collect())
            .ok_or_else(|| not_found(kind, api(kind).describe_attributes, region, snapshot_id))
    }

    /// `CopyDBSnapshot` (`CopyDBClusterSnapshot`) in the destination `region` by `caller`.
    /// Key problems are refused at once with `KMSKeyNotAccessibleFault`, as RDS does.
    pub fn copy_db_snapshot(
        &mut self,
        kind: DbKind,
        caller: &AccountId,
        region: &str,
        request: &DbCopyRequest,
        now: Instant,
    ) -> Result<DbSnapshotStatus, CloudError> {
        let a = api(kind);
        let op = a.copy;
        let source = self
            .snapshot_named(kind, caller, region, &request.source_arn)
            .cloned()
            .ok_or_else(|| not_found(kind, op, region, &request.source_arn))?;
        // "You can't copy a DB cluster snapshot across Regions and accounts in a single step"
        // (https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide/USER_CopySnapshot.html);
        // the emulator extension answers the same (moto_ext/aurora.py).
        if kind == DbKind::Cluster && &source.account != caller && source.region != region {
            return Err(rds_error(
                op,
                region,
                "InvalidParameterValue",
                "A DB cluster snapshot shared from another account can only be copied in its \
                 own AWS Region. Copy it within that Region first, then copy that copy to the \
                 other Region.",
            ));
        }
        let source_id = &source.id;
        let (state, _) = lifecycle(
            source.started,
            source.duration,
            source.failure.as_deref(),
            now,
        );
        if state != SnapshotState::Completed {
            return Err(rds_error(
                op,
                region,
                a.invalid_state,
                &format!("{} {source_id} is not in the available state.", a.noun),
            ));
        }
        let target = db_key(caller, region, &request.target_id);
        if self.snaps(kind).contains_key(&target) {
            return Err(rds_error(
                op,
                region,
                a.already_exists,
                &format!(
                    "Cannot copy the snapshot because a snapshot with the identifier {} already exists.",
                    request.target_id
                ),
            ));
        }
        let shared = &source.account != caller;
        // "If you copy an unencrypted DB cluster snapshot and specify a value for the KmsKeyId
        // parameter, an error is returned" (API_CopyDBClusterSnapshot.html); CopyDBSnapshot
        // encrypts the copy instead.
        if kind == DbKind::Cluster && source.kms_key.is_none() && request.kms_key_arn.is_some() {
            return Err(rds_error(
                op,
                region,
                "InvalidParameterValue",
                "KmsKeyId can't be specified when copying an unencrypted DB cluster snapshot.",
            ));
        }
        let kms_key = match (&request.kms_key_arn, &source.kms_key) {
            (None, Some(_)) if shared => {
                return Err(rds_error(
                    op,
                    region,
                    "InvalidParameterValue",
                    "Must specify new KMS key for cross account encrypted snapshot copy.",
                ));
            }
            (None, Some(_)) if source.region != region => {
                return Err(rds_error(
                    op,
                    region,
                    "InvalidParameterValue",
                    "Must specify new KMS key for cross region encrypted snapshot copy.",
                ));
            }
            (None, k) => k.clone(),
            (Some(key), _) => match self.find_key(caller, region, key) {
                Some(k) if k.usable_by(caller) => Some(k.arn.clone()),
                _ => {
                    return Err(rds_error(
                        op,
                        region,
                        "KMSKeyNotAccessibleFault",
                        &format!(
                            "The target KMS key [{key}] does not exist, is not enabled or you do \
                             not have permissions to access it."
                        ),
                    ));
                }
            },
        };
        if let Some(source_key) = &source.kms_key
            && !self.key_usable(caller, source_key)
        {
            return Err(rds_error(
                op,
                region,
                "KMSKeyNotAccessibleFault",
                &format!(
                    "The source snapshot KMS key [{source_key}] does not exist, is not enabled or \
                     you do not have permissions to access it."
                ),
            ));
        }
        if !self.admit_copy(a.service, caller, region, now) {
            let quota = match kind {
                DbKind::Instance => self.quotas.rds_copies,
                DbKind::Cluster => self.quotas.aurora_copies,
            };
            return Err(rds_error(
                op,
                region,
                "SnapshotQuotaExceeded",
                &format!("Cannot copy more than {quota} snapshots across regions"),
            ));
        }
        self.check_manual_quota(kind, op, caller, region)?;
        let failure = self.faults.on_copy();
        let t = self.timing.clone();
        let duration = t.duration(
            t.rds_copy_base,
            t.rds_copy_per_gib,
            source.size_gib,
            false,
            &mut self.rng,
        );
        self.start_copy(a.service, caller, region, now + duration, duration);
        let snapshot = SimDbSnapshot {
            id: target.2.clone(),
            account: caller.clone(),
            region: region.to_owned(),
            profile: source.profile.clone(),
            size_gib: source.size_gib,
            kms_key,
            started: now,
            duration,
            failure,
            shared_with: BTreeSet::new(),
            tags: PackedTags::pack(&request.tags),
            copy_of: Some(snapshot_arn(
                kind,
                &source.region,
                &source.account,
                &source.id,
            )),
            chain: source.chain + duration,
            kind,
        };
        let status = self.status(&snapshot, now);
        self.snaps_mut(kind).insert(target, Box::new(snapshot));
        Ok(status)
    }

    /// `DeleteDBSnapshot` (`DeleteDBClusterSnapshot`).
    pub fn delete_db_snapshot(
        &mut self,
        kind: DbKind,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        self.own_available(kind, api(kind).delete, caller, region, snapshot_id, now)?;
        self.snaps_mut(kind)
            .remove(&db_key(caller, region, snapshot_id));
        Ok(())
    }
}
