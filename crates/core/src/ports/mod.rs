//! The ports the core drives: the cloud (AWS through the SDK, or a simulator) and the state
//! store (SQLite). Adapters live in their own crates; the core never sees an SDK type.

use std::fmt;

use crate::ids::RoleArn;
use crate::model::Tag;

mod cloud;
mod restore;
mod state;
pub use cloud::*;
pub use restore::*;
pub use state::*;

/// A URL as adapters may print it: without the password it may carry
/// (`postgres://user:secret@host/db` → `postgres://user:***@host/db`). Everything before the
/// last `@` counts as user information, so that a password with `/` or `@` in it is hidden too
/// (a path with an `@` is hidden with it, which errs on the safe side).
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let shown = match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    };
    // A password may also come as a query parameter (`?password=...`, as libpq takes it).
    match shown.split_once('?') {
        Some((base, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=***")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{base}?{}", query.join("&"))
        }
        None => shown,
    }
}

/// Whose credentials a call is made with: a role assumed with STS, or the ambient credentials
/// of the default chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Access {
    pub role_arn: Option<RoleArn>,
}

impl Access {
    pub fn ambient() -> Self {
        Self { role_arn: None }
    }

    pub fn role(role_arn: Option<RoleArn>) -> Self {
        Self { role_arn }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.role_arn {
            Some(r) => write!(f, "role {r}"),
            None => f.write_str("the ambient credentials"),
        }
    }
}

/// An AWS call that failed: which call, and what AWS said.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{service} {operation} in {region} failed: {}{message}", code.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct CloudError {
    pub service: &'static str,
    pub operation: &'static str,
    pub region: String,
    /// The AWS error code (`InvalidSnapshot.NotFound`, `AccessDenied`, ...), when AWS gave one.
    pub code: Option<String>,
    pub message: String,
    /// Whether AWS answered at all.
    pub reach: Reach,
}

/// Whether a failed call reached AWS: a permission verdict is only ever drawn from an answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reach {
    /// AWS answered, with `code` and `message`.
    #[default]
    Answered,
    /// The call was never signed: no credentials were found (the SDK's default chain:
    /// environment, profile, web identity, container, instance metadata).
    NoCredentials,
    /// The endpoint could not be reached (DNS, connection, timeout), or did not answer as AWS.
    Unreachable,
}

impl CloudError {
    /// The credentials are missing, or AWS does not accept them as credentials (an unknown
    /// access key, a bad signature, an expired token): not a question of permissions.
    pub fn is_credentials(&self) -> bool {
        self.reach == Reach::NoCredentials
            || matches!(
                self.code.as_deref(),
                Some(
                    "InvalidClientTokenId"
                        | "UnrecognizedClientException"
                        | "SignatureDoesNotMatch"
                        | "InvalidSignatureException"
                        | "ExpiredToken"
                        | "ExpiredTokenException"
                        | "InvalidAccessKeyId"
                )
            )
    }

    /// AWS, or the endpoint, could not be reached.
    pub fn is_unreachable(&self) -> bool {
        self.reach == Reach::Unreachable
    }

    /// AWS refused the call because a quota is used up (concurrent snapshot copies per
    /// destination Region, the per-volume snapshot rate): the work waits and is tried again,
    /// it does not fail (SPEC section 3).
    pub fn is_quota(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "ResourceLimitExceeded"
                    | "SnapshotQuotaExceeded"
                    | "SnapshotCreationPerVolumeRateExceeded"
                    | "ConcurrentSnapshotLimitExceeded"
            )
        )
    }

    /// AWS refused the call for its request rate; it is retried with backoff and jitter.
    pub fn is_throttling(&self) -> bool {
        matches!(
            self.code.as_deref(),
            Some(
                "RequestLimitExceeded"
                    | "Throttling"
                    | "ThrottlingException"
                    | "TooManyRequestsException"
                    | "RequestThrottled"
            )
        )
    }

    /// (EC2's `AuthFailure` is counted here: it also answers a call in a Region not enabled
    /// for the account.)
    pub fn is_access_denied(&self) -> bool {
        self.code.as_deref().is_some_and(|c| {
            c.contains("AccessDenied") || c == "UnauthorizedOperation" || c == "AuthFailure"
        })
    }

    pub fn is_not_found(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|c| c.contains("NotFound") || c == "NoSuchEntity")
    }
}

/// Parameters of an RDS `CopyDBSnapshot`, called in the destination Region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbCopyRequest {
    /// The source snapshot's ARN: required for a snapshot of another Region or account.
    pub source_arn: String,
    /// `TargetDBSnapshotIdentifier`.
    pub target_id: String,
    /// The key that encrypts the copy (a key of the caller's account in the destination
    /// Region; mandatory for a shared encrypted snapshot).
    pub kms_key_arn: Option<String>,
    pub tags: Vec<Tag>,
}

/// A Region and whether the account may use it (opt-in Regions must be enabled first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionStatus {
    pub name: String,
    pub enabled: bool,
}

/// Parameters of an EBS `CopySnapshot`, called in the destination Region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyRequest {
    pub source_region: String,
    pub source_snapshot_id: String,
    /// The key that encrypts the copy; `None` copies without re-encrypting.
    pub kms_key_arn: Option<String>,
    pub description: String,
    pub tags: Vec<Tag>,
}

/// What EBS direct `ListChangedBlocks` found between two snapshots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangedBlocks {
    /// Blocks that differ (written in either snapshot and not the same in both).
    pub blocks: u64,
    /// `BlockSize` in bytes (524,288: 512 KiB).
    pub block_size: u64,
}

impl ChangedBlocks {
    pub fn bytes(&self) -> u64 {
        self.blocks.saturating_mul(self.block_size)
    }
}

/// A KMS grant: who may use the key for which operations, without the key policy saying so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGrant {
    pub grantee: String,
    /// `Decrypt`, `CreateGrant`, ...
    pub operations: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn a_url_is_printed_without_its_password() {
        assert_eq!(
            redacted_url("postgres://u:secret@db:5432/x"),
            "postgres://u:***@db:5432/x"
        );
        assert_eq!(redacted_url("http://u:p/a?s@h:1"), "http://u:***@h:1");
        assert_eq!(redacted_url("http://u:p@ss@h"), "http://u:***@h");
        assert_eq!(redacted_url("http://127.0.0.1:9"), "http://127.0.0.1:9");
        assert_eq!(redacted_url("not a url"), "not a url");
        assert_eq!(
            redacted_url("postgres://u@db/x?sslmode=require&password=hunter2&Password=x"),
            "postgres://u:***@db/x?sslmode=require&password=***&Password=***"
        );
    }
}
