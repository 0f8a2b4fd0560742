//! RDS: DB instances, manual DB snapshots (their per-Region quota), `restore` shares and
//! `CopyDBSnapshot` across Regions and accounts, each with the rule AWS applies
//! (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_CopyDBSnapshot.html).

use std::collections::BTreeSet;

use snaprelay_core::config::DbSetup;
use snaprelay_core::engine::Service;
use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{DbInstance, DbSnapshotStatus, SnapshotState, Tag};
use snaprelay_core::policy::Selector;
use snaprelay_core::ports::{CloudError, DbCopyRequest};
use tokio::time::Instant;

use crate::ebs::matches;
use crate::faults::error;
use crate::world::{PackedTags, SimDbSnapshot, World, db_snapshot_arn, lifecycle};

fn rds_error(operation: &str, region: &str, code: &str, message: &str) -> CloudError {
    error("rds", operation, region, code, message)
}

fn not_found(operation: &str, region: &str, id: &str) -> CloudError {
    rds_error(
        operation,
        region,
        "DBSnapshotNotFound",
        &format!("DBSnapshot {id} not found."),
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

    /// A DB snapshot named by its identifier (one of the caller's in `region`) or by its ARN
    /// (the caller's, or shared with it, in any Region); `None` if there is none the caller
    /// may use.
    pub fn db_snapshot_named(
        &self,
        caller: &AccountId,
        region: &str,
        reference: &str,
    ) -> Option<&SimDbSnapshot> {
        // arn:aws:rds:REGION:ACCOUNT:snapshot:ID
        let parts: Vec<&str> = reference.splitn(7, ':').collect();
        let (snapshot_region, account, id) = match parts.as_slice() {
            ["arn", _, "rds", r, a, "snapshot", id] => (*r, AccountId::parse(a), *id),
            _ => (region, Some(caller.clone()), reference),
        };
        account
            .and_then(|a| self.db_snapshots.get(&db_key(&a, snapshot_region, id)))
            .map(|s| &**s)
            .filter(|s| &s.account == caller || s.shared_with.contains(caller))
    }

    fn status(&self, s: &SimDbSnapshot, now: Instant) -> DbSnapshotStatus {
        let (state, progress) = lifecycle(s.started, s.duration, s.failure.as_deref(), now);
        let status = match state {
            SnapshotState::Completed => "available",
            SnapshotState::Error => "failed",
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

    fn manual_snapshots(&self, account: &AccountId, region: &str) -> usize {
        self.db_snapshots
            .values()
            .filter(|s| &s.account == account && s.region == region)
            .count()
    }

    fn check_manual_quota(
        &self,
        operation: &str,
        account: &AccountId,
        region: &str,
    ) -> Result<(), CloudError> {
        // "Manual DB snapshots: 100 per Region" by default (CHAP_Limits.html).
        if self.manual_snapshots(account, region) >= self.quotas.rds_manual_snapshots {
            return Err(rds_error(
                operation,
                region,
                "SnapshotQuotaExceeded",
                "Request would result in user exceeding the allowed number of DB snapshots.",
            ));
        }
        Ok(())
    }

    pub fn create_db_snapshot(
        &mut self,
        caller: &AccountId,
        region: &str,
        db_instance_id: &str,
        snapshot_id: &str,
        tags: &[Tag],
        now: Instant,
    ) -> Result<DbSnapshotStatus, CloudError> {
        let op = "CreateDBSnapshot";
        let db = self
            .dbs
            .get(&db_key(caller, region, db_instance_id))
            .filter(|d| d.status(now).is_some())
            .ok_or_else(|| {
                rds_error(
                    op,
                    region,
                    "DBInstanceNotFound",
                    &format!("DBInstance {db_instance_id} not found."),
                )
            })?;
        if let Some(status) = db.status(now).filter(|s| *s != "available") {
            return Err(rds_error(
                op,
                region,
                "InvalidDBInstanceState",
                &format!("DB instance {db_instance_id} is {status}, not available."),
            ));
        }
        let (size_gib, kms_key, profile) = (db.size_gib, db.kms_key.clone(), db.profile.clone());
        let key = db_key(caller, region, snapshot_id);
        if self.db_snapshots.contains_key(&key) {
            return Err(rds_error(
                op,
                region,
                "DBSnapshotAlreadyExists",
                &format!(
                    "Cannot create the snapshot because a snapshot with the identifier {snapshot_id} already exists."
                ),
            ));
        }
        self.check_manual_quota(op, caller, region)?;
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
        };
        let status = self.status(&snapshot, now);
        self.db_snapshots.insert(key, Box::new(snapshot));
        Ok(status)
    }

    pub fn describe_db_snapshots(
        &self,
        caller: &AccountId,
        region: &str,
        ids: &[String],
        now: Instant,
    ) -> Vec<DbSnapshotStatus> {
        ids.iter()
            .filter_map(|id| self.db_snapshots.get(&db_key(caller, region, id)))
            .map(|s| self.status(s, now))
            .collect()
    }

    fn own_available(
        &self,
        operation: &str,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        now: Instant,
    ) -> Result<&SimDbSnapshot, CloudError> {
        let s = self
            .db_snapshots
            .get(&db_key(caller, region, snapshot_id))
            .ok_or_else(|| not_found(operation, region, snapshot_id))?;
        let (state, _) = lifecycle(s.started, s.duration, s.failure.as_deref(), now);
        if state == SnapshotState::Pending {
            return Err(rds_error(
                operation,
                region,
                "InvalidDBSnapshotState",
                &format!("DB snapshot {snapshot_id} is not in the available state."),
            ));
        }
        Ok(s)
    }

    /// `ModifyDBSnapshotAttribute` `restore` for one account. A snapshot under the account's
    /// `aws/rds` key cannot be shared (share-encrypted-snapshot.html).
    pub fn set_db_snapshot_share(
        &mut self,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        account: &AccountId,
        shared: bool,
        now: Instant,
    ) -> Result<(), CloudError> {
        let op = "ModifyDBSnapshotAttribute";
        let s = self.own_available(op, caller, region, snapshot_id, now)?;
        if shared
            && let Some(key) = &s.kms_key
            && self.key_is_aws_managed(key)
        {
            return Err(rds_error(
                op,
                region,
                "InvalidParameterValue",
                "The DB snapshot is encrypted with the default AWS KMS key (aws/rds) of its \
                 account and can't be shared. Copy it with a customer managed key and share the copy.",
            ));
        }
        let key = db_key(caller, region, snapshot_id);
        if let Some(s) = self.db_snapshots.get_mut(&key) {
            if shared {
                s.shared_with.insert(account.clone());
            } else {
                s.shared_with.remove(account);
            }
        }
        Ok(())
    }

    /// `DescribeDBSnapshotAttributes` `restore` of one of the caller's DB snapshots.
    pub fn db_snapshot_shares(
        &self,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
    ) -> Result<Vec<String>, CloudError> {
        self.db_snapshots
            .get(&db_key(caller, region, snapshot_id))
            .map(|s| s.shared_with.iter().map(ToString::to_string).collect())
            .ok_or_else(|| not_found("DescribeDBSnapshotAttributes", region, snapshot_id))
    }

    /// `CopyDBSnapshot` in the destination `region` by `caller`. Key problems are refused at
    /// once with `KMSKeyNotAccessibleFault`, as RDS does.
    pub fn copy_db_snapshot(
        &mut self,
        caller: &AccountId,
        region: &str,
        request: &DbCopyRequest,
        now: Instant,
    ) -> Result<DbSnapshotStatus, CloudError> {
        let op = "CopyDBSnapshot";
        let source = self
            .db_snapshot_named(caller, region, &request.source_arn)
            .cloned()
            .ok_or_else(|| not_found(op, region, &request.source_arn))?;
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
                "InvalidDBSnapshotState",
                &format!("DB snapshot {source_id} is not in the available state."),
            ));
        }
        let target = db_key(caller, region, &request.target_id);
        if self.db_snapshots.contains_key(&target) {
            return Err(rds_error(
                op,
                region,
                "DBSnapshotAlreadyExists",
                &format!(
                    "Cannot copy the snapshot because a snapshot with the identifier {} already exists.",
                    request.target_id
                ),
            ));
        }
        let shared = &source.account != caller;
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
        if !self.admit_copy(Service::Rds, caller, region, now) {
            return Err(rds_error(
                op,
                region,
                "SnapshotQuotaExceeded",
                &format!(
                    "Cannot copy more than {} snapshots across regions",
                    self.quotas.rds_copies
                ),
            ));
        }
        self.check_manual_quota(op, caller, region)?;
        let failure = self.faults.on_copy();
        let t = self.timing.clone();
        let duration = t.duration(
            t.rds_copy_base,
            t.rds_copy_per_gib,
            source.size_gib,
            false,
            &mut self.rng,
        );
        self.start_copy(Service::Rds, caller, region, now + duration, duration);
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
            copy_of: Some(db_snapshot_arn(&source.region, &source.account, &source.id)),
            chain: source.chain + duration,
        };
        let status = self.status(&snapshot, now);
        self.db_snapshots.insert(target, Box::new(snapshot));
        Ok(status)
    }

    pub fn delete_db_snapshot(
        &mut self,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        self.own_available("DeleteDBSnapshot", caller, region, snapshot_id, now)?;
        self.db_snapshots
            .remove(&db_key(caller, region, snapshot_id));
        Ok(())
    }
}
