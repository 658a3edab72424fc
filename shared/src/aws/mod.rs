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

#[cfg(feature = "ssm")]
use crate::config::Config;
use crate::error::{retryable_code, LifeboatError};

#[cfg(feature = "arc")]
pub mod arc;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
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
#[cfg(feature = "sfn")]
pub mod sfn;
#[cfg(feature = "sns")]
pub mod sns;
#[cfg(feature = "ssm")]
pub mod ssm;

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

/// Where the policy document comes from: `LIFEBOAT_CONFIG_FILE` for local runs, else the SSM
/// parameter `LIFEBOAT_CONFIG_PARAM` (default `/lifeboat/config`; String or SecureString).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(String),
    Parameter(String),
}

pub const DEFAULT_CONFIG_PARAM: &str = "/lifeboat/config";

/// How long a function trusts the document it read: long enough to cost one SSM call a minute
/// under load, short enough that an emergency `dry_run: true` takes effect without a cold start.
pub const CONFIG_TTL: Duration = Duration::from_secs(60);

impl ConfigSource {
    pub fn from_env() -> Self {
        match std::env::var("LIFEBOAT_CONFIG_FILE") {
            Ok(path) if !path.is_empty() => ConfigSource::File(path),
            _ => ConfigSource::Parameter(
                std::env::var("LIFEBOAT_CONFIG_PARAM").unwrap_or_else(|_| DEFAULT_CONFIG_PARAM.to_owned()),
            ),
        }
    }
}

/// The policy document, re-read when older than its TTL. A document that no longer parses fails
/// the invocation (NonRetryable, before any AWS write) rather than acting on the stale one: the
/// edit may have been the emergency brake.
#[cfg(feature = "ssm")]
pub struct ConfigCache {
    source: ConfigSource,
    ssm: aws_sdk_ssm::Client,
    ttl: Duration,
    current: tokio::sync::Mutex<Option<(std::time::Instant, std::sync::Arc<Config>)>>,
    /// Only the databases whose source is in this region (`snapshot_jobs_from_env`).
    sources_in: Option<String>,
    /// Only the databases whose source is in this account (`snapshot_jobs_from_env`).
    sources_of: Option<String>,
}

#[cfg(feature = "ssm")]
impl ConfigCache {
    pub fn new(source: ConfigSource, sdk: &SdkConfig, ttl: Duration) -> Self {
        ConfigCache {
            source,
            ssm: aws_sdk_ssm::Client::new(sdk),
            ttl,
            current: tokio::sync::Mutex::new(None),
            sources_in: None,
            sources_of: None,
        }
    }

    /// For the copier, the pruner and rpo-monitor: with a stack in each region
    /// (`LIFEBOAT_RECOVERS=own`) a database's copies, retention and RPO are looked after by the
    /// stack of its source region alone, so each copy is started and each notice sent once; the
    /// other stacks see a config without it.
    /// In a recovery account (`restore.from_vault`) the config names databases of another,
    /// perhaps lost, account: their copies, retention and RPO are not this stack's
    /// (`LIFEBOAT_ACCOUNT_ID`, the template's `AWS::AccountId`).
    pub async fn snapshot_jobs_from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let mut cache = ConfigCache::new(ConfigSource::from_env(), sdk, CONFIG_TTL);
        if own_only_from_env()? {
            cache = cache.sources_only_in(sdk.region().map(|r| r.to_string()).unwrap_or_default());
        }
        if let Some(account) = optional_env("LIFEBOAT_ACCOUNT_ID") {
            cache = cache.sources_only_of(account);
        }
        cache.get().await?;
        Ok(cache)
    }

    pub fn sources_only_in(mut self, region: impl Into<String>) -> Self {
        self.sources_in = Some(region.into());
        self
    }

    pub fn sources_only_of(mut self, account: impl Into<String>) -> Self {
        self.sources_of = Some(account.into());
        self
    }

    /// As every function's init builds it: the source the environment names, read once now so a
    /// broken document fails the init, loudly, before any event is touched.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let cache = ConfigCache::new(ConfigSource::from_env(), sdk, CONFIG_TTL);
        cache.get().await?;
        Ok(cache)
    }

    /// The config, narrowed to this stack's source region when `sources_only_in` says so.
    pub async fn get(&self) -> Result<std::sync::Arc<Config>, LifeboatError> {
        let all = self.get_all().await?;
        if self.sources_in.is_none() && self.sources_of.is_none() {
            return Ok(all);
        }
        let mut config = (*all).clone();
        config.databases.retain(|db| {
            self.sources_in.as_ref().is_none_or(|r| &db.source.region == r)
                && self.sources_of.as_ref().is_none_or(|a| &db.source.account == a)
        });
        Ok(std::sync::Arc::new(config))
    }

    /// The region the snapshot jobs are narrowed to, if they are.
    pub fn sources_in(&self) -> Option<&str> {
        self.sources_in.as_deref()
    }

    /// Every database, whatever the narrowing (readiness looks after the recoveries this stack
    /// runs, which `recovered_from` says, not where their sources are).
    pub async fn get_all(&self) -> Result<std::sync::Arc<Config>, LifeboatError> {
        let mut current = self.current.lock().await;
        if let Some((read_at, config)) = current.as_ref() {
            if read_at.elapsed() < self.ttl {
                return Ok(config.clone());
            }
        }
        let text = match &self.source {
            ConfigSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| LifeboatError::Rejected(format!("cannot read LIFEBOAT_CONFIG_FILE {path}: {e}")))?,
            ConfigSource::Parameter(name) => ssm::read_parameter(&self.ssm, name).await?,
        };
        let config = Config::from_yaml(&text)?;
        for warning in config.warnings() {
            tracing::warn!(%warning, "config");
        }
        let config = std::sync::Arc::new(config);
        *current = Some((std::time::Instant::now(), config.clone()));
        Ok(config)
    }
}

#[cfg(feature = "rds")]
pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}
