//! Injected faults and the count of calls made: what tests and the benchmark ask of the
//! simulated AWS beyond its normal behaviour.

use std::collections::BTreeMap;

use snaprelay_core::ports::{CloudError, Reach};

/// A fault to inject.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The `nth` call (1-based) of `operation` (`"ec2:CopySnapshot"`, ...) answers this error.
    FailCall {
        operation: &'static str,
        nth: u64,
        code: &'static str,
        message: String,
    },
    /// The `nth` copy accepted (EBS or RDS, 1-based) ends in `error` / `failed` with this
    /// state message.
    FailCopy { nth: u64, message: String },
    /// This many calls in a thousand, chosen at random, answer `RequestLimitExceeded` (EC2) or
    /// `Throttling` (RDS, KMS, STS), as AWS does when a request rate is exceeded. Every call
    /// of the cloud port is subject to it, those of a restore included.
    Throttle { per_mille: u32 },
    /// The `nth` instance launched (1-based; a `RunInstances` answered from its `ClientToken`
    /// launches none) stays `pending` and never runs, until it is terminated.
    StayPending { nth: u64 },
    /// The `nth` instance launched (1-based) shuts itself down as it boots: `stopped` when it
    /// would have been `running` (an operating system that halts, with the instance's
    /// shutdown behavior `stop`).
    StopsItself { nth: u64 },
    /// The `nth` DB restore accepted (1-based) ends `failed` instead of `available`.
    FailDbRestore { nth: u64 },
}

/// Every call made, by operation, and the faults still armed.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    armed: Vec<Fault>,
    calls: BTreeMap<&'static str, u64>,
    copies: u64,
    launches: u64,
    db_restores: u64,
    pub(crate) throttled: u64,
    pub(crate) injected: u64,
}

impl Faults {
    pub(crate) fn inject(&mut self, fault: Fault) {
        self.armed.push(fault);
    }

    pub(crate) fn calls(&self) -> &BTreeMap<&'static str, u64> {
        &self.calls
    }

    /// Counts a call; answers the error a fault injects into it, if any. `draw` is a uniform
    /// number in [0, 1000) for throttling.
    pub(crate) fn on_call(
        &mut self,
        operation: &'static str,
        region: &str,
        draw: u32,
    ) -> Result<(), CloudError> {
        let n = self.calls.entry(operation).or_default();
        *n += 1;
        let n = *n;
        let (service, op) = operation.split_once(':').unwrap_or(("", operation));
        for fault in &self.armed {
            match fault {
                Fault::FailCall {
                    operation: o,
                    nth,
                    code,
                    message,
                } if *o == operation && *nth == n => {
                    self.injected += 1;
                    return Err(error(service, op, region, code, message));
                }
                Fault::Throttle { per_mille } if draw < *per_mille => {
                    self.throttled += 1;
                    let code = if service == "ec2" {
                        "RequestLimitExceeded"
                    } else {
                        "Throttling"
                    };
                    return Err(error(service, op, region, code, "Rate exceeded"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Counts an accepted copy; the state message it must fail with, if a fault says so.
    pub(crate) fn on_copy(&mut self) -> Option<String> {
        self.copies += 1;
        let n = self.copies;
        let message = self.armed.iter().find_map(|f| match f {
            Fault::FailCopy { nth, message } if *nth == n => Some(message.clone()),
            _ => None,
        });
        if message.is_some() {
            self.injected += 1;
        }
        message
    }

    /// Counts a launched instance; whether it must stay `pending`.
    /// Counts an accepted launch; whether it stays `pending`, and whether it stops itself.
    pub(crate) fn on_launch(&mut self) -> (bool, bool) {
        self.launches += 1;
        let n = self.launches;
        let stuck = self
            .armed
            .iter()
            .any(|f| matches!(f, Fault::StayPending { nth } if *nth == n));
        let stops = self
            .armed
            .iter()
            .any(|f| matches!(f, Fault::StopsItself { nth } if *nth == n));
        self.injected += u64::from(stuck) + u64::from(stops);
        (stuck, stops)
    }

    /// Counts an accepted DB restore; whether it must end `failed`.
    pub(crate) fn on_db_restore(&mut self) -> bool {
        self.db_restores += 1;
        let n = self.db_restores;
        let fails = self
            .armed
            .iter()
            .any(|f| matches!(f, Fault::FailDbRestore { nth } if *nth == n));
        self.injected += u64::from(fails);
        fails
    }
}

/// A `CloudError` as the SDK adapter would report it.
pub(crate) fn error(
    service: &str,
    operation: &str,
    region: &str,
    code: &str,
    message: &str,
) -> CloudError {
    CloudError {
        service: service_name(service),
        operation: static_name(operation),
        region: region.to_owned(),
        code: Some(code.to_owned()),
        message: message.to_owned(),
        reach: Reach::Answered,
    }
}

fn service_name(service: &str) -> &'static str {
    match service {
        "ec2" => "EC2",
        "rds" => "RDS",
        "kms" => "KMS",
        "sts" => "STS",
        _ => "AWS",
    }
}

/// The operation names the simulator answers, as `'static` strings for `CloudError`.
fn static_name(operation: &str) -> &'static str {
    const NAMES: &[&str] = &[
        "GetCallerIdentity",
        "DescribeRegions",
        "DescribeInstances",
        "DescribeKey",
        "CreateSnapshots",
        "DescribeSnapshots",
        "ModifySnapshotAttribute",
        "CopySnapshot",
        "DeleteSnapshot",
        "DescribeDBInstances",
        "CreateDBSnapshot",
        "DescribeDBSnapshots",
        "ModifyDBSnapshotAttribute",
        "CopyDBSnapshot",
        "DeleteDBSnapshot",
        "DescribeSnapshotAttribute",
        "DescribeDBSnapshotAttributes",
        "GetKeyPolicy",
        "ListGrants",
        "GetRolePolicy",
        "DescribeVpcs",
        "DescribeSubnets",
        "DescribeAvailabilityZones",
        "DescribeSecurityGroups",
        "DescribeKeyPairs",
        "CreateSecurityGroup",
        "RevokeSecurityGroupEgress",
        "DeleteSecurityGroup",
        "DescribeImages",
        "RegisterImage",
        "DeregisterImage",
        "RunInstances",
        "TerminateInstances",
        "DescribeVolumes",
        "CreateVolume",
        "DeleteVolume",
        "DescribeDBSubnetGroups",
        "DescribeDBParameterGroups",
        "DescribeOptionGroups",
        "RestoreDBInstanceFromDBSnapshot",
        "DeleteDBInstance",
        "DescribeDBClusters",
        "DescribeDBClusterParameterGroups",
        "RestoreDBClusterFromSnapshot",
        "CreateDBInstance",
        "DeleteDBCluster",
    ];
    NAMES
        .iter()
        .find(|n| **n == operation)
        .copied()
        .unwrap_or("call")
}
