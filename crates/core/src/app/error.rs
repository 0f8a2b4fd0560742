//! One error type at the application boundary: every failure falls in one class, and the class
//! fixes the exit code and the JSON `code` (SPEC section 5).

use crate::engine::PrepareError;
use crate::ports::{CloudError, StoreError};

/// The class of a failure. `invalid_input` exits 2 (nothing was done); every other class 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A bad policy, flag, id or Region, a name already taken.
    InvalidInput,
    /// No credentials, or credentials AWS does not accept.
    Credentials,
    /// AWS (or the endpoint) could not be reached.
    Network,
    /// AWS refused a call for want of a permission.
    Permission,
    /// Any other refusal or failure AWS answered with.
    Aws,
    /// The state store could not be read or written.
    State,
    /// Another holder has what this needs (a session of the policy is running).
    Conflict,
    /// A bug of snaprelay's.
    Internal,
}

impl ErrorKind {
    /// The `code` of a JSON error document.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::Credentials => "credentials",
            Self::Network => "network",
            Self::Permission => "permission",
            Self::Aws => "aws",
            Self::State => "state",
            Self::Conflict => "conflict",
            Self::Internal => "internal",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Self::InvalidInput => 2,
            _ => 1,
        }
    }
}

/// A use case's failure: its class and a message that names the thing and the remedy.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A failure to prepare a plan: the policy does not fit AWS (invalid input), or AWS could
    /// not be asked; `then` says what that left undone (`nothing was changed`).
    pub fn of_prepare(e: PrepareError, then: &str) -> Self {
        match e {
            e @ PrepareError::Input(_) => Self::invalid(e.to_string()),
            PrepareError::Cloud(e) => Self::of_cloud(&e, then),
        }
    }

    /// A cloud error, classed by what AWS answered.
    pub fn of_cloud(e: &CloudError, then: &str) -> Self {
        Self::new(Self::class_of(e), format!("{e}; {then}"))
    }

    /// The class of a failed call: no answer (credentials, network), else what AWS answered.
    pub fn class_of(e: &CloudError) -> ErrorKind {
        if e.is_credentials() {
            ErrorKind::Credentials
        } else if e.is_unreachable() {
            ErrorKind::Network
        } else if e.is_access_denied() {
            ErrorKind::Permission
        } else {
            ErrorKind::Aws
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        Self::new(ErrorKind::State, e.to_string())
    }
}
