//! Lambda Invoke (RequestResponse): the operator asks the data validator, which sits in the
//! stack's VPC beside the databases, for an on-demand check (`lifeboat validate`). Lambda API
//! reference, Invoke (https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html): a function
//! error is not an HTTP error; the answer is 200 with `X-Amz-Function-Error` set (`FunctionError`)
//! and the payload is the function's `{"errorType", "errorMessage"}`. Lifeboat's functions name
//! their errors `Retryable`, `InProgress` or `NonRetryable`, which keep their meaning here.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::Client;
use aws_smithy_runtime_api::client::result::SdkError;
use serde_json::Value;

use super::{sdk_error, SdkConfig};
use crate::error::LifeboatError;

/// How long one invocation may take: inside the operator's own 100 s timeout and the 2 minutes
/// `lifeboat` waits for it. A validation's connection and checks are each bounded by the
/// database's `validate.timeout`; checks slower than this in all belong in a drill, whose machine
/// waits for them.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(90);

pub struct Invoker {
    client: Client,
}

impl Invoker {
    pub fn new(sdk: &SdkConfig) -> Self {
        // One attempt: the SDK's 10 s attempt timeout would cut a validation short, and a second
        // attempt after a slow first would outlive the caller.
        let sdk = sdk
            .to_builder()
            .retry_config(RetryConfig::standard().with_max_attempts(1))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_attempt_timeout(INVOKE_TIMEOUT)
                    .operation_timeout(INVOKE_TIMEOUT)
                    .build(),
            )
            .build();
        Invoker { client: Client::new(&sdk) }
    }

    /// `function`'s answer to `payload`; its error, as it named it, otherwise.
    pub async fn call(&self, function: &str, payload: &Value) -> Result<Value, LifeboatError> {
        let out =
            self.client.invoke().function_name(function).payload(Blob::new(payload.to_string())).send().await.map_err(
                |e| match e {
                    // Not worth asking again at once: the function may still be at it, and would be again.
                    SdkError::TimeoutError(_) => LifeboatError::Rejected(format!(
                        "{function} did not answer within {} s (it may still be running)",
                        INVOKE_TIMEOUT.as_secs()
                    )),
                    e => sdk_error("lambda:Invoke", e),
                },
            )?;
        let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
        let answer: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match out.function_error() {
            None => Ok(answer),
            Some(kind) => Err(function_error(function, kind, &answer)),
        }
    }
}

/// A function error as the caller's own: `Retryable` and `InProgress` keep their kinds, the rest
/// (`NonRetryable`, `Unhandled`: a crash or a timeout) are the answer.
fn function_error(function: &str, kind: &str, answer: &Value) -> LifeboatError {
    let message = answer["errorMessage"].as_str().unwrap_or(kind);
    let named = answer["errorType"].as_str().unwrap_or(kind);
    match named {
        "Retryable" => LifeboatError::Transient(format!("{function}: {message}")),
        "InProgress" => LifeboatError::InProgress(format!("{function}: {message}")),
        _ => LifeboatError::Rejected(format!("{function}: {message}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_function_error_keeps_the_meaning_its_function_gave_it() {
        let busy = function_error("v", "Unhandled", &json!({"errorType": "Retryable", "errorMessage": "throttled"}));
        assert!(busy.is_retryable() && busy.to_string() == "v: throttled", "{busy}");
        let no = function_error("v", "Unhandled", &json!({"errorType": "NonRetryable", "errorMessage": "no database"}));
        assert!(!no.is_retryable() && no.to_string() == "v: no database", "{no}");
        let making = function_error("v", "Unhandled", &json!({"errorType": "InProgress", "errorMessage": "copying"}));
        assert_eq!(making.error_type(), "InProgress");
        let crashed = function_error("v", "Unhandled", &Value::Null);
        assert_eq!((crashed.is_retryable(), crashed.to_string()), (false, "v: Unhandled".to_owned()));
    }
}
