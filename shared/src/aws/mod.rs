//! Adapters between the domain and AWS. Built once at init; each SDK behind its own feature.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, ConfigLoader};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

pub use aws_config::SdkConfig;

/// One SDK client per region, made on first use and shared after: a snapshot, a secret or a
/// cluster is asked in its own region.
pub(crate) struct PerRegion<C>(std::sync::Mutex<std::collections::BTreeMap<String, C>>);

impl<C> Default for PerRegion<C> {
    fn default() -> Self {
        PerRegion(std::sync::Mutex::default())
    }
}

impl<C: Clone> PerRegion<C> {
    /// The client of `region`, made by `make` (given the region) the first time.
    pub(crate) fn get(&self, region: &str, make: impl FnOnce(aws_config::Region) -> C) -> C {
        // A poisoned lock only means another invocation panicked mid-insert; the map is still whole.
        let mut clients = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients.entry(region.to_owned()).or_insert_with(|| make(aws_config::Region::new(region.to_owned()))).clone()
    }
}

use crate::error::{retryable_code, LifeboatError};

#[cfg(feature = "ssm")]
pub mod active;
#[cfg(feature = "arc")]
pub mod arc;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
#[cfg(feature = "config")]
pub mod config_store;
#[cfg(feature = "data-api")]
pub mod data_api;
#[cfg(feature = "db")]
pub mod db;
#[cfg(feature = "ec2")]
pub mod ec2;
#[cfg(feature = "events")]
pub mod events;
#[cfg(feature = "s3")]
pub mod evidence;
#[cfg(feature = "iam")]
pub mod iam;
#[cfg(feature = "dynamodb")]
pub mod incidents;
#[cfg(feature = "invoke")]
pub mod invoke;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "organizations")]
pub mod organizations;
#[cfg(feature = "rds")]
pub mod rds;
#[cfg(feature = "rds")]
pub mod recovery;
#[cfg(feature = "route53")]
pub mod route53;
#[cfg(feature = "secrets")]
pub mod secrets;
#[cfg(feature = "sfn")]
pub mod sfn;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "ssm")]
pub mod ssm;

#[cfg(feature = "config")]
pub use config_store::{ConfigCache, ConfigSource, CONFIG_TTL, DEFAULT_CONFIG_PARAM};

/// SDK settings every Lifeboat function shares. Standard retry: 5 attempts, exponential backoff
/// with jitter (longer for throttling). Not adaptive: under 20% injected faults its client-side
/// rate limiter stretched one sweep to 407 s where standard took 24 s (tests/tests/chaos.rs,
/// RELIABILITY.md), past the copier's 120 s timeout; what the SDK doesn't absorb, the Lambda
/// retry and the next sweep or schedule do. Timeouts stay well inside the Lambda timeout so a
/// hung call becomes a retryable error.
/// The standard `AWS_ENDPOINT_URL` is honoured, which is how the local emulator is reached.
pub fn sdk_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(5))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(40))
                .build(),
        )
}

/// Tell retryable from non-retryable AWS failures.
pub fn sdk_error<E, R>(operation: &str, err: SdkError<E, R>) -> LifeboatError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let message = format!("{operation}: {}", DisplayErrorContext(&err));
    let retryable = match &err {
        SdkError::ServiceError(e) => e.err().code().is_some_and(retryable_code),
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        _ => false,
    };
    if retryable {
        LifeboatError::Transient(message)
    } else {
        LifeboatError::Rejected(message)
    }
}

/// The AWS error code, for the few codes that mean success to an idempotent caller.
pub fn error_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    match err {
        SdkError::ServiceError(e) => e.err().code(),
        _ => None,
    }
}

/// An environment variable the function can't run without (set by the template): a missing
/// one fails the init, naming it.
pub fn required_env(name: &str) -> Result<String, LifeboatError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| LifeboatError::Rejected(format!("{name} is not set")))
}

/// What every function's `main` starts with: JSON logs as the function's logging settings ask
/// (`AWS_LAMBDA_LOG_FORMAT`, `AWS_LAMBDA_LOG_LEVEL`), and the SDK config (`sdk_loader`).
pub async fn start() -> SdkConfig {
    lambda_runtime::tracing::init_default_subscriber();
    sdk_loader().load().await
}

/// `sdk` making one attempt per call: for a look that is repeated on its own schedule, where the
/// SDK's backoff would only hide the answer (a throttled region answered).
pub fn without_retries(sdk: &SdkConfig) -> SdkConfig {
    sdk.to_builder().retry_config(RetryConfig::disabled()).build()
}

/// Serve events of type `A` with `handle` until the sandbox ends; its errors reach Lambda as
/// `Retryable` / `NonRetryable` (`diagnostic`). Every function's `main` ends with it.
pub async fn serve<A, T, F, Fut>(handle: F) -> Result<(), lambda_runtime::Error>
where
    A: for<'de> serde::Deserialize<'de>,
    T: serde::Serialize,
    F: Fn(A, chrono::DateTime<chrono::Utc>) -> Fut,
    Fut: std::future::Future<Output = Result<T, LifeboatError>>,
{
    lambda_runtime::run(lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<A>| {
        let answer = handle(event.payload, chrono::Utc::now());
        async move { answer.await.map_err(diagnostic) }
    }))
    .await
}

/// `serve` for a run that may outgrow one invocation: `handle` also gets the moment to stop
/// starting work, `STOP_BEFORE_DEADLINE` (at most a quarter of the invocation) ahead of Lambda's
/// deadline (room to report, and to hand what is left to a continuation, before Lambda ends the
/// sandbox).
pub async fn serve_until<A, T, F, Fut>(handle: F) -> Result<(), lambda_runtime::Error>
where
    A: for<'de> serde::Deserialize<'de>,
    T: serde::Serialize,
    F: Fn(A, chrono::DateTime<chrono::Utc>, Option<std::time::Instant>) -> Fut,
    Fut: std::future::Future<Output = Result<T, LifeboatError>>,
{
    lambda_runtime::run(lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<A>| {
        let now = chrono::Utc::now();
        // `deadline` is Lambda's, in milliseconds since the epoch.
        let left = Duration::from_millis(event.context.deadline.saturating_sub(now.timestamp_millis().max(0) as u64));
        // A short invocation (a lowered timeout) keeps a quarter of its time; a deadline already
        // past is no deadline Lambda gave (a local runtime's), so there is none.
        let until = (!left.is_zero())
            .then(|| std::time::Instant::now() + left.saturating_sub(STOP_BEFORE_DEADLINE.min(left / 4)));
        let answer = handle(event.payload, now, until);
        async move { answer.await.map_err(diagnostic) }
    }))
    .await
}

/// What a run keeps of its invocation's time after it stops starting work: the calls in flight,
/// then the continuation and the summary, each up to the SDK's 40 s operation timeout.
pub const STOP_BEFORE_DEADLINE: Duration = Duration::from_secs(150);

/// `LIFEBOAT_RECOVERS` (the template's `Recovers`): `all` (one stack runs every recovery and
/// drill) or `own` (a stack in each region runs only those its region owns).
pub fn own_only_from_env() -> Result<bool, LifeboatError> {
    match optional_env("LIFEBOAT_RECOVERS").as_deref() {
        None | Some("all") => Ok(false),
        Some("own") => Ok(true),
        Some(other) => Err(LifeboatError::Rejected(format!("LIFEBOAT_RECOVERS is `{other}`: `all` or `own`"))),
    }
}

/// An optional setting: unset and empty are the same.
pub fn optional_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Lambda reports `errorType` Retryable / NonRetryable, for Step Functions `ErrorEquals` and alarms.
pub fn diagnostic(err: LifeboatError) -> Diagnostic {
    Diagnostic { error_type: err.error_type().to_owned(), error_message: err.to_string() }
}

#[cfg(feature = "rds")]
pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

/// A small S3 object whole (a CA bundle, a key list), refused before its body is read when it
/// is bigger than `limit` bytes: a wrong key (a backup, a log) must not fill the function's memory.
#[cfg(feature = "s3")]
pub async fn small_object(sdk: &SdkConfig, bucket: &str, key: &str, limit: u64) -> Result<Vec<u8>, LifeboatError> {
    let what = format!("s3:GetObject s3://{bucket}/{key}");
    let out = aws_sdk_s3::Client::new(sdk).get_object().bucket(bucket).key(key).send().await;
    let out = out.map_err(|e| sdk_error(&what, e))?;
    if out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or(0) > limit {
        return Err(LifeboatError::Rejected(format!("{what}: bigger than {limit} bytes")));
    }
    let body = out.body.collect().await.map_err(|e| LifeboatError::Transient(format!("{what}: {e}")))?;
    Ok(body.into_bytes().to_vec())
}
