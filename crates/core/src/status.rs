//! Task and session statuses (SPEC section 1): a session is as bad as its worst task.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Ordered from best to worst, so `max` gives the worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Status {
    Success,
    Warning,
    Failed,
}

impl Status {
    pub fn worst(statuses: impl IntoIterator<Item = Status>) -> Status {
        statuses.into_iter().max().unwrap_or(Status::Success)
    }

    /// The exit code of `run` (SPEC section 5).
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Success => 0,
            Status::Warning => 3,
            Status::Failed => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => "Success",
            Status::Warning => "Warning",
            Status::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "Success" => Some(Status::Success),
            "Warning" => Some(Status::Warning),
            "Failed" => Some(Status::Failed),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_as_bad_as_its_worst_task() {
        assert_eq!(
            Status::worst([Status::Success, Status::Warning]),
            Status::Warning
        );
        assert_eq!(
            Status::worst([Status::Failed, Status::Warning, Status::Success]),
            Status::Failed
        );
        assert_eq!(Status::worst([]), Status::Success);
    }

    #[test]
    fn run_exit_codes_follow_the_spec() {
        assert_eq!(Status::Success.exit_code(), 0);
        assert_eq!(Status::Warning.exit_code(), 3);
        assert_eq!(Status::Failed.exit_code(), 1);
    }
}
