//! RDS as a restore meets it: `RestoreDBInstanceFromDBSnapshot` from a DB snapshot of the
//! caller's or shared with it, `DeleteDBInstance`, and the DB subnet, parameter and option
//! groups a restore may name, each with the rule AWS applies
//! (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RestoreDBInstanceFromDBSnapshot.html).
//!
//! The groups AWS provides are always there: a `default.<family>` parameter group and a
//! `default:<engine>-<major>` option group for every engine (AWS makes them on first use),
//! and the `default` DB subnet group wherever the Region has a default VPC. Others exist once
//! a test makes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use snaprelay_core::ids::AccountId;
use snaprelay_core::model::{DbKind, SnapshotState, Tag};
use snaprelay_core::ports::{CloudError, DbRestoreRequest, DbStatus, Find};
use tokio::time::Instant;

use crate::faults::error;
use crate::rds::{DbKey, db_key};
use crate::world::{DbGroup, DbProfile, SimDb, World, lifecycle};

fn rds_error(operation: &str, region: &str, code: &str, message: &str) -> CloudError {
    error("rds", operation, region, code, message)
}

/// The engine version, port and class a test's DB instance runs with when the test does not
/// say: a current version of each engine and its default port.
pub(crate) fn default_profile(engine: &str) -> DbProfile {
    let (version, port) = match engine {
        "postgres" => ("16.3", 5432),
        "aurora-postgresql" => ("16.2", 5432),
        "mysql" => ("8.0.36", 3306),
        "aurora-mysql" => ("8.0.mysql_aurora.3.05.2", 3306),
        "mariadb" => ("10.11.8", 3306),
        e if e.starts_with("oracle") => ("19.0.0.0.ru-2024-04.rur-2024-04.r1", 1521),
        e if e.starts_with("sqlserver") => ("16.00.4125.3.v1", 1433),
        _ => ("1.0", 5432),
    };
    DbProfile {
        engine: engine.to_owned(),
        engine_version: version.to_owned(),
        port,
        // Aurora has no micro class: its smallest memory-optimized one.
        class: if engine.starts_with("aurora") {
            "db.r6g.large"
        } else {
            "db.t3.micro"
        }
        .to_owned(),
        storage_type: "gp2".to_owned(),
        iops: None,
    }
}

/// The major version a parameter group family is named after: `16` of `16.3`, `8.0` of
/// MySQL's `8.0.36`.
fn major_version<'a>(engine: &str, version: &'a str) -> &'a str {
    let components = if engine.contains("mysql") || engine == "mariadb" {
        2
    } else {
        1
    };
    let end = version
        .match_indices('.')
        .nth(components - 1)
        .map_or(version.len(), |(i, _)| i);
    &version[..end]
}

/// `default.postgres16`, `default.mysql8.0`.
pub(crate) fn default_parameter_group(engine: &str, version: &str) -> String {
    format!("default.{engine}{}", major_version(engine, version))
}

/// `default:postgres-16`, `default:mysql-8-0`.
pub(crate) fn default_option_group(engine: &str, version: &str) -> String {
    format!(
        "default:{engine}-{}",
        major_version(engine, version).replace('.', "-")
    )
}

fn db_status(d: &SimDb, status: &str) -> DbStatus {
    DbStatus {
        id: d.id.clone(),
        arn: d.arn(),
        status: status.to_owned(),
        engine: d.profile.engine.clone(),
        engine_version: Some(d.profile.engine_version.clone()),
        kms_key_id: d.kms_key.clone(),
        cluster: d.cluster.clone(),
        tags: d.tags.iter().map(|(k, v)| Tag::new(k, v.clone())).collect(),
    }
}

/// What a `find_*` of DB instances or clusters lists of `map`, gone ones included (the caller
/// filters them by status): by identifier, by name (the identifier), or every one of the
/// caller's there carrying the tag key.
pub(crate) fn found<'a>(
    map: &'a BTreeMap<DbKey, SimDb>,
    caller: &AccountId,
    region: &str,
    find: &Find<'_>,
) -> Vec<&'a SimDb> {
    match find {
        Find::Ids(ids) => ids
            .iter()
            .filter_map(|id| map.get(&db_key(caller, region, id)))
            .collect(),
        Find::Name(id) => map.get(&db_key(caller, region, id)).into_iter().collect(),
        Find::TagKey(key) => map
            .values()
            .filter(|d| &d.account == caller && d.region == region)
            .filter(|d| d.tags.contains_key(*key))
            .collect(),
    }
}

impl World {
    /// RDS `DescribeDBInstances` of the caller's DB instances there (a deleted one until it is
    /// gone); [`Find::Name`] is the identifier.
    pub fn find_dbs(
        &self,
        caller: &AccountId,
        region: &str,
        find: &Find<'_>,
        now: Instant,
    ) -> Vec<DbStatus> {
        found(&self.dbs, caller, region, find)
            .into_iter()
            .filter_map(|d| d.status(now).map(|status| db_status(d, status)))
            .collect()
    }

    /// Makes a DB subnet, parameter or option group of an account in a Region.
    pub fn add_db_group(&mut self, kind: DbGroup, account: &AccountId, region: &str, name: &str) {
        self.db_groups.insert((
            kind,
            account.clone(),
            region.to_owned(),
            name.to_ascii_lowercase(),
        ));
    }

    /// Whether a group of `kind` named `name` exists for the caller there (names are
    /// case-insensitive in RDS).
    pub fn db_group_exists(
        &mut self,
        kind: DbGroup,
        caller: &AccountId,
        region: &str,
        name: &str,
    ) -> bool {
        let name = name.to_ascii_lowercase();
        let provided = match kind {
            DbGroup::Subnet => name == "default" && self.network(caller, region).is_some(),
            DbGroup::Parameter | DbGroup::ClusterParameter => name.starts_with("default."),
            DbGroup::Option => name.starts_with("default:"),
        };
        provided
            || self
                .db_groups
                .contains(&(kind, caller.clone(), region.to_owned(), name))
    }

    /// The VPC of a DB subnet group: the default VPC's for `default`; a group a test made
    /// lives in a VPC of its own (the simulator keeps no subnets behind it).
    pub fn db_subnet_group_vpc(
        &mut self,
        caller: &AccountId,
        region: &str,
        name: &str,
    ) -> Option<String> {
        if !self.db_group_exists(DbGroup::Subnet, caller, region, name) {
            return None;
        }
        if name.eq_ignore_ascii_case("default") {
            return self.network(caller, region).map(|n| n.vpc_id);
        }
        Some(format!("vpc-of-{}", name.to_ascii_lowercase()))
    }

    /// The key a new DB instance `id` of the caller takes there; RDS refuses an identifier
    /// already in use (`DBInstanceAlreadyExists`).
    pub(crate) fn free_db_key(
        &self,
        op: &'static str,
        caller: &AccountId,
        region: &str,
        id: &str,
    ) -> Result<DbKey, CloudError> {
        let key = db_key(caller, region, id);
        if self.dbs.contains_key(&key) {
            return Err(rds_error(
                op,
                region,
                "DBInstanceAlreadyExists",
                &format!("DB instance {id} already exists."),
            ));
        }
        Ok(key)
    }

    /// What a restore takes of the snapshot it names (the caller's, by identifier or ARN, or
    /// one shared with it, by ARN, in `region`): its DB profile, size and key. RDS refuses a
    /// snapshot that is not there, not yet `available`, or under a key the caller cannot use.
    pub(crate) fn restorable(
        &self,
        kind: DbKind,
        op: &str,
        caller: &AccountId,
        region: &str,
        snapshot_id: &str,
        now: Instant,
    ) -> Result<(Arc<DbProfile>, u32, Option<String>), CloudError> {
        let (missing, unavailable, called) = match kind {
            DbKind::Instance => (
                "DBSnapshotNotFound",
                "InvalidDBSnapshotState",
                "DB snapshot",
            ),
            DbKind::Cluster => (
                "DBClusterSnapshotNotFoundFault",
                "InvalidDBClusterSnapshotStateFault",
                "DB cluster snapshot",
            ),
        };
        let snapshot = self
            .snapshot_named(kind, caller, region, snapshot_id)
            .filter(|s| s.region == region)
            .ok_or_else(|| {
                let name = match kind {
                    DbKind::Instance => "DBSnapshot",
                    DbKind::Cluster => "DBClusterSnapshot",
                };
                rds_error(
                    op,
                    region,
                    missing,
                    &format!("{name} {snapshot_id} not found."),
                )
            })?;
        let (state, _) = lifecycle(
            snapshot.started,
            snapshot.duration,
            snapshot.failure.as_deref(),
            now,
        );
        if state != SnapshotState::Completed {
            return Err(rds_error(
                op,
                region,
                unavailable,
                &format!("{called} {snapshot_id} is not in the available state."),
            ));
        }
        if let Some(k) = &snapshot.kms_key
            && !self.key_usable(caller, k)
        {
            return Err(rds_error(
                op,
                region,
                "KMSKeyNotAccessibleFault",
                &format!(
                    "The specified KMS key [{k}] does not exist, is not enabled or you do not \
                     have permissions to access it."
                ),
            ));
        }
        Ok((
            snapshot.profile.clone(),
            snapshot.size_gib,
            snapshot.kms_key.clone(),
        ))
    }

    /// Refuses a group a restore names (kind, the name asked, RDS's not-found code, what it is
    /// called) that does not exist for the caller there.
    pub(crate) fn named_groups_exist(
        &mut self,
        op: &str,
        caller: &AccountId,
        region: &str,
        groups: &[(DbGroup, &Option<String>, &str, &str)],
    ) -> Result<(), CloudError> {
        for (kind, name, code, what) in groups {
            if let Some(name) = name
                && !self.db_group_exists(*kind, caller, region, name)
            {
                return Err(rds_error(
                    op,
                    region,
                    code,
                    &format!("{what} {name} not found."),
                ));
            }
        }
        Ok(())
    }

    /// The DB subnet group and VPC security groups of a restored DB instance or cluster: those
    /// asked, else the default VPC's (`default`, its default group); with neither, RDS refuses.
    pub(crate) fn restored_network(
        &mut self,
        op: &str,
        caller: &AccountId,
        region: &str,
        subnet_group: Option<&String>,
        groups: &[String],
    ) -> Result<(String, Vec<String>), CloudError> {
        let network = self.network(caller, region);
        let db_subnet_group = match (subnet_group, &network) {
            (Some(name), _) => name.to_ascii_lowercase(),
            (None, Some(_)) => "default".to_owned(),
            (None, None) => {
                return Err(rds_error(
                    op,
                    region,
                    "InvalidVPCNetworkStateFault",
                    "No default VPC for this account and Region: name a DB subnet group.",
                ));
            }
        };
        let vpc_security_group_ids = match (groups, &network) {
            ([], Some(n)) => vec![n.security_group.clone()],
            (ids, _) => ids.to_vec(),
        };
        Ok((db_subnet_group, vpc_security_group_ids))
    }

    /// RDS `RestoreDBInstanceFromDBSnapshot`: a new DB instance, `creating` and then
    /// `available`, of an available DB snapshot in the same Region (the caller's, by
    /// identifier or ARN, or one shared with it, by ARN). It takes the snapshot's engine,
    /// version and key (which the caller must be able to use: RDS refuses the call with
    /// `KMSKeyNotAccessibleFault`) and, where the request says nothing, the class, port and
    /// storage of the snapshot's DB instance.
    pub fn restore_db_instance(
        &mut self,
        caller: &AccountId,
        region: &str,
        request: &DbRestoreRequest,
        now: Instant,
    ) -> Result<DbStatus, CloudError> {
        let op = "RestoreDBInstanceFromDBSnapshot";
        let key = self.free_db_key(op, caller, region, &request.db_instance_id)?;
        let (source, size_gib, kms_key) = self.restorable(
            DbKind::Instance,
            op,
            caller,
            region,
            &request.snapshot_id,
            now,
        )?;
        self.named_groups_exist(
            op,
            caller,
            region,
            &[
                (
                    DbGroup::Subnet,
                    &request.db_subnet_group,
                    "DBSubnetGroupNotFoundFault",
                    "DB subnet group",
                ),
                (
                    DbGroup::Parameter,
                    &request.db_parameter_group,
                    "DBParameterGroupNotFound",
                    "DB parameter group",
                ),
                (
                    DbGroup::Option,
                    &request.option_group,
                    "OptionGroupNotFoundFault",
                    "Option group",
                ),
            ],
        )?;
        let (db_subnet_group, vpc_security_group_ids) = self.restored_network(
            op,
            caller,
            region,
            request.db_subnet_group.as_ref(),
            &request.vpc_security_group_ids,
        )?;
        let profile = DbProfile {
            engine: source.engine.clone(),
            engine_version: source.engine_version.clone(),
            port: request.port.unwrap_or(source.port),
            class: request
                .db_instance_class
                .clone()
                .unwrap_or_else(|| source.class.clone()),
            storage_type: request
                .storage_type
                .clone()
                .unwrap_or_else(|| source.storage_type.clone()),
            iops: request.iops.or(source.iops),
        };
        let failed = self.faults.on_db_restore();
        let db = SimDb {
            id: key.2.clone(),
            account: caller.clone(),
            region: region.to_owned(),
            db_parameter_group: request.db_parameter_group.clone().unwrap_or_else(|| {
                default_parameter_group(&profile.engine, &profile.engine_version)
            }),
            option_group: request
                .option_group
                .clone()
                .unwrap_or_else(|| default_option_group(&profile.engine, &profile.engine_version)),
            profile: Arc::new(profile),
            size_gib,
            kms_key,
            cluster: None,
            tags: request
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect::<BTreeMap<_, _>>(),
            multi_az: request.multi_az,
            db_subnet_group: Some(db_subnet_group),
            vpc_security_group_ids,
            ready_at: Some(now + self.timing.db_restore),
            failed,
            gone_at: None,
            serverless_v2: None,
        };
        let status = db_status(&db, "creating");
        self.dbs.insert(key, db);
        Ok(status)
    }

    /// RDS `DeleteDBInstance` (without a final snapshot): `deleting`, then gone.
    pub fn delete_db_instance(
        &mut self,
        caller: &AccountId,
        region: &str,
        db_instance_id: &str,
        now: Instant,
    ) -> Result<(), CloudError> {
        let op = "DeleteDBInstance";
        let gone_at = now + self.timing.db_delete;
        let key = db_key(caller, region, db_instance_id);
        let db = self
            .dbs
            .get_mut(&key)
            .filter(|d| d.status(now).is_some())
            .ok_or_else(|| {
                rds_error(
                    op,
                    region,
                    "DBInstanceNotFound",
                    &format!("DBInstance {db_instance_id} not found."),
                )
            })?;
        if db.gone_at.is_some() {
            return Err(rds_error(
                op,
                region,
                "InvalidDBInstanceState",
                &format!("Instance {db_instance_id} is already being deleted."),
            ));
        }
        db.gone_at = Some(gone_at);
        self.ending_dbs.push(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_groups_are_named_after_the_engine_family() {
        assert_eq!(
            default_parameter_group("postgres", "16.3"),
            "default.postgres16"
        );
        assert_eq!(
            default_parameter_group("mysql", "8.0.36"),
            "default.mysql8.0"
        );
        assert_eq!(default_option_group("mysql", "8.0.36"), "default:mysql-8-0");
        assert_eq!(
            default_option_group("postgres", "16"),
            "default:postgres-16"
        );
    }
}
