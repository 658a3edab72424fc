//! Errors that say whether trying again can help. Lambda reports `error_type()` as the errorType,
//! which Step Functions `Retry`/`Catch` match with `ErrorEquals`.

use thiserror::Error;

use crate::config::ConfigError;
use crate::event::EventError;

#[derive(Debug, Error)]
pub enum LifeboatError {
    #[error(transparent)]
    BadEvent(#[from] EventError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The request names something that isn't there or isn't allowed (missing snapshot, unknown
    /// database, access denied): the same request will fail the same way.
    #[error("{0}")]
    Rejected(String),
    /// AWS said try later: throttling, quotas that free up, snapshots still being made, outages.
    #[error("{0}")]
    Transient(String),
}

impl LifeboatError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LifeboatError::Transient(_))
    }

    pub fn error_type(&self) -> &'static str {
        if self.is_retryable() {
            "Retryable"
        } else {
            "NonRetryable"
        }
    }
}

/// AWS error codes after which the same call can succeed later. Copy quotas are among them: copies
/// in flight finish, and the sweep catches up.
pub fn retryable_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "InternalError"
            | "SnapshotQuotaExceeded"
            | "SnapshotQuotaExceededFault"
            | "InvalidDBSnapshotState"
            | "InvalidDBSnapshotStateFault"
            | "InvalidDBClusterSnapshotStateFault"
            | "InvalidDBInstanceState"
            | "InvalidDBClusterStateFault"
            | "ProvisionedThroughputExceededException"
            | "TransactionConflictException"
            | "InternalServerError"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_throttling_are_retryable_bad_input_is_not() {
        assert!(retryable_code("SnapshotQuotaExceeded"));
        assert!(retryable_code("Throttling"));
        assert!(!retryable_code("DBSnapshotNotFound"));
        assert!(!retryable_code("KMSKeyNotAccessibleFault"));
        assert_eq!(LifeboatError::Transient("x".into()).error_type(), "Retryable");
        assert_eq!(LifeboatError::BadEvent(EventError("x".into())).error_type(), "NonRetryable");
    }
}
