//! Why a task, or one target of it, failed: typed, so that what the operator can do about it
//! ([`TaskError::guidance`]) is decided from what happened, not from the words of a message.

use std::fmt;

use crate::ids::AccountId;
use crate::model::SnapshotState;
use crate::ports::CloudError;
use crate::runtime::{Interrupted, Progressing, WaitError};

/// A failure of a workflow step.
#[derive(Clone, Debug, PartialEq)]
pub enum TaskError {
    /// An AWS call failed: what it was for (`share snap-1 with account 2222…`), and AWS's
    /// answer.
    Aws {
        doing: String,
        error: Box<CloudError>,
    },
    /// Waiting for snapshots ended without their end: what was waited for, and why.
    Wait {
        doing: String,
        error: Box<WaitError>,
    },
    /// Snapshots ended in state `error`, each with AWS's state message; `doing` is the step
    /// they belonged to when it is worth naming (`copy to 2222…/eu-west-1`).
    Snapshots {
        doing: Option<String>,
        failures: Vec<SnapshotFailure>,
    },
    /// The session was interrupted (SIGINT/SIGTERM): when (`before X was shared`, `while
    /// waiting for a copy slot in …`).
    Interrupted { when: String },
    /// Something the task made is left in AWS: what, and how to remove it.
    Left { what: String, remedy: String },
    /// A failure, and what the cleanup after it could not undo.
    Several(Vec<TaskError>),
    /// What could not be done because of an earlier failure.
    Because { what: String, cause: Box<TaskError> },
    /// A copy into another account failed on a key: nearly always the source key's policy.
    SourceKey {
        cause: Box<TaskError>,
        keys: Vec<String>,
        account: AccountId,
    },
    /// A rule of the workflow refused it, before AWS was asked.
    Refused(String),
}

/// A snapshot that ended in state `error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFailure {
    pub snapshot: String,
    /// AWS's state message, when it gave one (RDS gives none).
    pub message: Option<String>,
}

impl TaskError {
    /// For `map_err`: an AWS call made to `doing` failed.
    pub fn aws(doing: impl Into<String>) -> impl FnOnce(CloudError) -> Self {
        let doing = doing.into();
        move |error| Self::Aws {
            doing,
            error: Box::new(error),
        }
    }

    /// For `map_err`: a wait made to `doing` ended without the snapshots' end.
    pub fn wait(doing: impl Into<String>) -> impl FnOnce(WaitError) -> Self {
        let doing = doing.into();
        move |error| Self::Wait {
            doing,
            error: Box::new(error),
        }
    }

    pub fn interrupted(when: impl Into<String>) -> Self {
        Self::Interrupted { when: when.into() }
    }

    /// All of `errors` as one failure; `None` when there is none.
    pub fn all(mut errors: Vec<TaskError>) -> Option<Self> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Self::Several(errors)),
        }
    }

    /// This failure, then what its cleanup left (nothing: the failure alone).
    pub fn then(self, left: Vec<TaskError>) -> Self {
        if left.is_empty() {
            return self;
        }
        let mut all = match self {
            Self::Several(v) => v,
            one => vec![one],
        };
        all.extend(left);
        Self::Several(all)
    }

    /// The same failure, said to be on a source key when AWS's answer concerns a key.
    pub fn on_source_keys(self, keys: &[&str], account: &AccountId) -> Self {
        if keys.is_empty() || !self.concerns_key() {
            return self;
        }
        let mut keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        keys.sort_unstable();
        keys.dedup();
        Self::SourceKey {
            cause: Box::new(self),
            keys,
            account: account.clone(),
        }
    }

    /// Whether the session was interrupted before or during this.
    pub fn is_interrupted(&self) -> bool {
        match self {
            Self::Interrupted { .. } => true,
            Self::Wait { error, .. } => matches!(**error, WaitError::Interrupted { .. }),
            Self::Several(all) => all.first().is_some_and(Self::is_interrupted),
            Self::SourceKey { cause, .. } | Self::Because { cause, .. } => cause.is_interrupted(),
            _ => false,
        }
    }

    /// Whether AWS's answer concerns a KMS key. AWS gives the reason of a failed copy only as
    /// an error code or a state message ("Given key ID is not accessible"), so those are what
    /// is read: https://docs.aws.amazon.com/ebs/latest/userguide/share-kms-key.html
    fn concerns_key(&self) -> bool {
        let mentions_key = |text: &str| {
            let lower = text.to_ascii_lowercase();
            lower.contains("key") || lower.contains("kms")
        };
        let aws_said_key = |error: &CloudError| {
            error.code.as_deref().is_some_and(mentions_key) || mentions_key(&error.message)
        };
        match self {
            Self::Aws { error, .. } => aws_said_key(error),
            Self::Wait { error, .. } => match &**error {
                WaitError::Cloud(error) => aws_said_key(error),
                _ => false,
            },
            Self::Snapshots { failures, .. } => failures
                .iter()
                .any(|f| f.message.as_deref().is_some_and(mentions_key)),
            Self::Several(all) => all.first().is_some_and(Self::concerns_key),
            Self::Because { cause, .. } => cause.concerns_key(),
            _ => false,
        }
    }

    /// What the operator can do about it, when snaprelay knows.
    pub fn guidance(&self) -> Option<String> {
        match self {
            Self::SourceKey { keys, account, .. } => Some(format!(
                "Check that the key policy of the source key {} admits account {account} \
                 (kms:DescribeKey, kms:CreateGrant, kms:Decrypt, kms:ReEncrypt*, \
                 kms:GenerateDataKey*) and that the target role's IAM policy allows the same \
                 actions on it",
                keys.join(", ")
            )),
            Self::Left { remedy, .. } => Some(remedy.clone()),
            Self::Aws { error, .. } if error.is_access_denied() => Some(
                "`snaprelay check` shows which permission is missing and the statement that \
                 grants it"
                    .to_owned(),
            ),
            Self::Interrupted { .. } => Some(
                "the next `snaprelay run` resumes the session and finishes what is left".to_owned(),
            ),
            Self::Several(all) => all.first().and_then(Self::guidance),
            Self::Because { cause, .. } => cause.guidance(),
            _ => None,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Aws { doing, error } => write!(f, "could not {doing}: {error}"),
            Self::Wait { doing, error } => write!(f, "could not {doing}: {error}"),
            Self::Snapshots { doing, failures } => {
                if let Some(doing) = doing {
                    write!(f, "{doing} failed: ")?;
                }
                let list: Vec<String> = failures.iter().map(ToString::to_string).collect();
                f.write_str(&list.join("; "))
            }
            Self::Interrupted { when } => write!(f, "{Interrupted} {when}"),
            Self::Left { what, remedy } => write!(f, "{what}; {remedy}"),
            Self::Several(all) => {
                let list: Vec<String> = all.iter().map(ToString::to_string).collect();
                f.write_str(&list.join("; "))
            }
            Self::SourceKey { cause, .. } => {
                let cause = cause.to_string();
                write!(
                    f,
                    "{}. {}",
                    cause.trim_end_matches('.'),
                    self.guidance().unwrap_or_default()
                )
            }
            Self::Because { what, cause } => write!(f, "{what}: {cause}"),
            Self::Refused(why) => f.write_str(why),
        }
    }
}

impl fmt::Display for SnapshotFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot {} ended in state error: {}",
            self.snapshot,
            self.message
                .as_deref()
                .unwrap_or("AWS gave no state message")
        )
    }
}

/// The snapshots among `statuses` that ended in `error`, with AWS's state message.
pub fn failures<S: Progressing>(statuses: &[S]) -> Vec<SnapshotFailure> {
    statuses
        .iter()
        .filter(|s| s.state() == SnapshotState::Error)
        .map(|s| SnapshotFailure {
            snapshot: s.id().to_owned(),
            message: s.message().map(str::to_owned),
        })
        .collect()
}

/// The one snapshot waited for, when it did not end in `error`.
pub fn one_ended_well<S: Progressing>(
    statuses: Vec<S>,
    doing: Option<String>,
) -> Result<S, TaskError> {
    all_ended_well(statuses, doing.clone())?
        .into_iter()
        .next()
        .ok_or(TaskError::Snapshots {
            doing,
            failures: vec![],
        })
}

/// `Ok(statuses)` when none ended in `error`, else the failures.
pub fn all_ended_well<S: Progressing>(
    statuses: Vec<S>,
    doing: Option<String>,
) -> Result<Vec<S>, TaskError> {
    let failures = failures(&statuses);
    if failures.is_empty() {
        Ok(statuses)
    } else {
        Err(TaskError::Snapshots { doing, failures })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy_failed(message: &str) -> TaskError {
        TaskError::Snapshots {
            doing: None,
            failures: vec![SnapshotFailure {
                snapshot: "snap-2".into(),
                message: Some(message.into()),
            }],
        }
    }

    #[test]
    fn a_copy_failed_on_a_key_names_the_source_keys_and_what_they_must_allow() {
        let account = AccountId::parse("222222222222").unwrap();
        let e = copy_failed("Given key ID is not accessible")
            .on_source_keys(&["arn:k2", "arn:k1", "arn:k2"], &account);
        let text = e.to_string();
        assert!(text.starts_with("snapshot snap-2 ended in state error: Given key ID"));
        assert!(text.contains("source key arn:k1, arn:k2 admits account 222222222222"));
        assert!(e.guidance().is_some());
    }

    #[test]
    fn a_failure_not_on_a_key_is_left_as_it_is() {
        let account = AccountId::parse("222222222222").unwrap();
        let e = copy_failed("internal error").on_source_keys(&["arn:k1"], &account);
        assert_eq!(e, copy_failed("internal error"));
    }

    #[test]
    fn what_a_cleanup_left_follows_the_failure() {
        let left = TaskError::Left {
            what: "snapshot snap-1 could not be deleted".into(),
            remedy: "delete it by hand".into(),
        };
        let e = TaskError::interrupted("before snap-1 was shared").then(vec![left]);
        assert!(e.is_interrupted());
        assert_eq!(
            e.to_string(),
            "the session was interrupted before snap-1 was shared; snapshot snap-1 could not \
             be deleted; delete it by hand"
        );
        assert_eq!(
            TaskError::Refused("no".into()).then(vec![]),
            TaskError::Refused("no".into())
        );
    }
}
