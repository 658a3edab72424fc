//! Errors that say whether trying again can help. Lambda reports `error_type()` as the errorType,
//! which Step Functions `Retry`/`Catch` match with `ErrorEquals`.

use thiserror::Error;

use crate::event::EventError;

/// The policy document can't be used as written: the field, and why.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("config is not valid YAML for Lifeboat: {0}")]
    Parse(String),
    #[error("config field {field}: {why}")]
    Invalid { field: String, why: String },
}

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
    /// RDS is still making what this step needs (a copy before a restore): worth asking again for
    /// hours, not seconds, so it has its own errorType for the state machine's `Retry`.
    #[error("{0}")]
    InProgress(String),
}

impl LifeboatError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, LifeboatError::Transient(_) | LifeboatError::InProgress(_))
    }

    /// One run's several failures as one: none is success; retryable if any part of the run may
    /// succeed later (a retry, or the next schedule, finishes the job), else not. Its message
    /// names the first ten and counts the rest, as a fleet's run may fail thousands of times.
    pub fn all(errors: Vec<LifeboatError>) -> Result<(), LifeboatError> {
        if errors.is_empty() {
            return Ok(());
        }
        let first: Vec<String> = errors.iter().take(10).map(ToString::to_string).collect();
        let message = format!("{}{}", first.join("; "), crate::text::and_more(first.len(), errors.len()));
        if errors.iter().any(LifeboatError::is_retryable) {
            Err(LifeboatError::Transient(message))
        } else {
            Err(LifeboatError::Rejected(message))
        }
    }

    pub fn error_type(&self) -> &'static str {
        match self {
            LifeboatError::InProgress(_) => "InProgress",
            e if e.is_retryable() => "Retryable",
            _ => "NonRetryable",
        }
    }
}

/// What a Step Functions `Catch` caught (`{"Error", "Cause"}`): the error's name, and what it
/// said. When a Lambda step failed, the Cause is its `{"errorType", "errorMessage"}`: the message.
pub fn caught(e: &serde_json::Value) -> (Option<&str>, String) {
    let cause = e.get("Cause").and_then(serde_json::Value::as_str).unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|c| c.get("errorMessage").and_then(serde_json::Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| cause.to_owned());
    (e.get("Error").and_then(serde_json::Value::as_str), message)
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
            // S3's conditional write (If-None-Match) raced another write of the same key: "On a
            // 409 failure you should retry" (S3 API reference); the retry then finds it written.
            | "ConditionalRequestConflict"
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
        assert!(retryable_code("ConditionalRequestConflict"), "an evidence write raced: retry, then it is there");
        assert!(!retryable_code("PreconditionFailed"), "it is there: not an error to retry");
        assert_eq!(LifeboatError::Transient("x".into()).error_type(), "Retryable");
        assert_eq!(LifeboatError::BadEvent(EventError("x".into())).error_type(), "NonRetryable");
    }

    #[test]
    fn ten_thousand_failures_are_one_error_naming_ten() {
        let errors = (0..10_000).map(|n| LifeboatError::Transient(format!("copy {n}: Throttling"))).collect();
        let e = LifeboatError::all(errors).unwrap_err();
        assert!(e.is_retryable());
        assert!(e.to_string().ends_with("copy 9: Throttling, and 9990 more"), "{e}");
        assert!(e.to_string().len() < 1024, "{e}");
    }

    #[test]
    fn a_caught_lambda_error_says_its_own_message() {
        let lambda = serde_json::json!({"Error": "NonRetryable", "Cause": r#"{"errorType":"NonRetryable","errorMessage":"preflight: gone"}"#});
        assert_eq!(caught(&lambda), (Some("NonRetryable"), "preflight: gone".to_owned()));
        let timeout = serde_json::json!({"Error": "States.Timeout", "Cause": "waited too long"});
        assert_eq!(caught(&timeout), (Some("States.Timeout"), "waited too long".to_owned()));
        assert_eq!(caught(&serde_json::json!({})), (None, String::new()));
    }
}
