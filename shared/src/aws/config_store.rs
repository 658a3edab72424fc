//! Where the policy document lives, and the copy each function keeps of it: an SSM parameter for
//! a small fleet, an S3 object for one an SSM parameter can't hold (`config::Store`), a file for
//! local runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{optional_env, own_only_from_env, sdk_error, ssm, SdkConfig};
use crate::active::Active;
use crate::config::{store_limit, Config, Store};
use crate::error::LifeboatError;

/// Where the policy document comes from (`first_of`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(String),
    /// `s3://bucket/key` (`LIFEBOAT_CONFIG_OBJECT`, the template's `ConfigObject`).
    Object {
        bucket: String,
        key: String,
    },
    /// An SSM parameter, String or SecureString.
    Parameter(String),
}

pub const DEFAULT_CONFIG_PARAM: &str = "/lifeboat/config";

/// How long a function trusts the document it read: long enough to cost one call a minute under
/// load (for an object, a 304 while it is unchanged), short enough that an emergency
/// `dry_run: true` takes effect without a cold start.
pub const CONFIG_TTL: Duration = Duration::from_secs(60);

impl ConfigSource {
    /// As the template sets the function's environment (`first_of`).
    pub fn from_env() -> Result<Self, LifeboatError> {
        Self::first_of(
            optional_env("LIFEBOAT_CONFIG_FILE"),
            optional_env("LIFEBOAT_CONFIG_OBJECT"),
            optional_env("LIFEBOAT_CONFIG_PARAM"),
        )
    }

    /// The order every reader (the functions, `lifeboat`) takes: a file (local runs), else an S3
    /// object, else the SSM parameter, `/lifeboat/config` unless named.
    pub fn first_of(
        file: Option<String>,
        object: Option<String>,
        parameter: Option<String>,
    ) -> Result<Self, LifeboatError> {
        match (file, object) {
            (Some(path), _) => Ok(ConfigSource::File(path)),
            (None, Some(url)) => ConfigSource::object(&url),
            (None, None) => Ok(ConfigSource::Parameter(parameter.unwrap_or_else(|| DEFAULT_CONFIG_PARAM.to_owned()))),
        }
    }

    /// `s3://bucket/key`.
    pub fn object(url: &str) -> Result<Self, LifeboatError> {
        url.strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
            .map(|(bucket, key)| ConfigSource::Object { bucket: bucket.to_owned(), key: key.to_owned() })
            .ok_or_else(|| {
                LifeboatError::Rejected(format!("LIFEBOAT_CONFIG_OBJECT is `{url}`: expected s3://bucket/key"))
            })
    }
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(path) => write!(f, "file {path}"),
            ConfigSource::Object { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            ConfigSource::Parameter(name) => write!(f, "SSM parameter {name}"),
        }
    }
}

/// The document as last read, and the object's ETag to ask S3 whether it changed since.
struct Read {
    at: Instant,
    config: Arc<Config>,
    etag: Option<String>,
}

/// The policy document, re-read when older than its TTL. A document that no longer parses fails
/// the invocation (NonRetryable, before any AWS write) rather than acting on the stale one: the
/// edit may have been the emergency brake.
pub struct ConfigCache {
    source: ConfigSource,
    ssm: aws_sdk_ssm::Client,
    s3: aws_sdk_s3::Client,
    ttl: Duration,
    current: tokio::sync::Mutex<Option<Read>>,
    /// Only the databases whose source is in this region (`snapshot_jobs_from_env`).
    sources_in: Option<String>,
    /// Only the databases whose source is in this account (`snapshot_jobs_from_env`).
    sources_of: Option<String>,
    /// Each moved database as it serves now (`following_active`), and how long a read of the
    /// active sides is trusted.
    followed: Option<tokio::sync::Mutex<Option<Followed>>>,
    actives_ttl: Duration,
}

struct Followed {
    at: Instant,
    /// The document it was derived from: a newer one derives again.
    from: Arc<Config>,
    config: Arc<Config>,
    actives: Arc<Vec<Active>>,
}

impl ConfigCache {
    pub fn new(source: ConfigSource, sdk: &SdkConfig, ttl: Duration) -> Self {
        ConfigCache {
            source,
            ssm: aws_sdk_ssm::Client::new(sdk),
            s3: aws_sdk_s3::Client::new(sdk),
            ttl,
            current: tokio::sync::Mutex::new(None),
            sources_in: None,
            sources_of: None,
            followed: None,
            actives_ttl: ttl,
        }
    }

    /// For the jobs that look after a database where it serves now (copier, pruner, rpo-monitor,
    /// drills, the trigger, the operator): each moved database follows its active side
    /// (`decide::active::follow`). The failover's own steps and the approvals keep the document
    /// as written: they carry out the plan it states.
    pub fn following_active(mut self) -> Self {
        self.followed = Some(tokio::sync::Mutex::new(None));
        self
    }

    /// `following_active`, reading the active sides on every call: for what acts on one
    /// database at a person's or a machine's request (the trigger, the failover's steps), where
    /// a minute-old view could miss the way back just built, or a move just made.
    pub fn following_active_fresh(mut self) -> Self {
        self.actives_ttl = Duration::ZERO;
        self.following_active()
    }

    /// For the copier, the pruner, rpo-monitor and the validator, each moved database where it
    /// serves now (`following_active`). With a stack in each region
    /// (`LIFEBOAT_RECOVERS=own`) a database's copies, retention and RPO are looked after by the
    /// stack of its source region alone, so each copy is started and each notice sent once; the
    /// other stacks see a config without it.
    /// In a recovery account (`restore.from_vault`) the config names databases of another,
    /// perhaps lost, account: their copies, retention and RPO are not this stack's
    /// (`LIFEBOAT_ACCOUNT_ID`, the template's `AWS::AccountId`).
    pub async fn snapshot_jobs_from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let mut cache = ConfigCache::new(ConfigSource::from_env()?, sdk, CONFIG_TTL).following_active();
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
        let cache = ConfigCache::new(ConfigSource::from_env()?, sdk, CONFIG_TTL);
        cache.get().await?;
        Ok(cache)
    }

    /// `from_env`, following each moved database's active side, read afresh on every call
    /// (`following_active_fresh`).
    pub async fn following_from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let cache = ConfigCache::new(ConfigSource::from_env()?, sdk, CONFIG_TTL).following_active_fresh();
        cache.get().await?;
        Ok(cache)
    }

    /// The config, narrowed to this stack's source region when `sources_only_in` says so.
    pub async fn get(&self) -> Result<Arc<Config>, LifeboatError> {
        Ok(self.narrowed(self.get_all().await?))
    }

    /// `get` and the active sides it followed, from one read of each.
    pub async fn get_followed(&self) -> Result<(Arc<Config>, Arc<Vec<Active>>), LifeboatError> {
        let (all, actives) = self.get_with_actives().await?;
        Ok((self.narrowed(all), actives))
    }

    fn narrowed(&self, all: Arc<Config>) -> Arc<Config> {
        if self.sources_in.is_none() && self.sources_of.is_none() {
            return all;
        }
        let mut config = (*all).clone();
        config.databases.retain(|db| {
            self.sources_in.as_ref().is_none_or(|r| &db.source.region == r)
                && self.sources_of.as_ref().is_none_or(|a| &db.source.account == a)
        });
        Arc::new(config)
    }

    /// The region the snapshot jobs are narrowed to, if they are.
    pub fn sources_in(&self) -> Option<&str> {
        self.sources_in.as_deref()
    }

    /// Every database, whatever the narrowing (readiness looks after the recoveries this stack
    /// runs, which `recovered_from` says, not where their sources are); moved ones where they
    /// serve now when the cache follows them.
    pub async fn get_all(&self) -> Result<Arc<Config>, LifeboatError> {
        Ok(self.get_with_actives().await?.0)
    }

    /// `get_all` and the active sides it followed (none when the cache doesn't follow them).
    pub async fn get_with_actives(&self) -> Result<(Arc<Config>, Arc<Vec<Active>>), LifeboatError> {
        let Some(followed) = &self.followed else { return Ok((self.written().await?, Arc::default())) };
        let mut followed = followed.lock().await;
        // A failed read fails the run (retryable): acting on the written source of a database
        // that moved would copy, prune and judge the old primary.
        let (written, actives) = if followed.as_ref().is_some_and(|f| f.at.elapsed() < self.actives_ttl) {
            (self.written().await?, None)
        } else {
            // Both at once: a cold start (and every `fresh` read) waits one round trip, not two.
            let (written, actives) = tokio::join!(self.written(), super::active::read_all(&self.ssm));
            (written?, Some(actives?))
        };
        if let (None, Some(f)) = (&actives, followed.as_ref().filter(|f| Arc::ptr_eq(&f.from, &written))) {
            return Ok((f.config.clone(), f.actives.clone()));
        }
        let actives = match actives {
            Some(read) => read,
            None => super::active::read_all(&self.ssm).await?,
        };
        for a in crate::active::unusable(&written, &actives) {
            tracing::warn!(database = %a.database, arn = %a.arn, "active side matches no database of the config: ignored");
        }
        let config = Arc::new(crate::active::follow(&written, &actives));
        let actives = Arc::new(actives);
        *followed =
            Some(Followed { at: Instant::now(), from: written, config: config.clone(), actives: actives.clone() });
        Ok((config, actives))
    }

    /// The document as written, whatever moved.
    pub async fn written(&self) -> Result<Arc<Config>, LifeboatError> {
        let mut current = self.current.lock().await;
        if let Some(read) = current.as_ref().filter(|r| r.at.elapsed() < self.ttl) {
            return Ok(read.config.clone());
        }
        let fetched = match &self.source {
            ConfigSource::File(path) => Fetched::Text(
                std::fs::read_to_string(path)
                    .map_err(|e| LifeboatError::Rejected(format!("cannot read LIFEBOAT_CONFIG_FILE {path}: {e}")))?,
                None,
            ),
            ConfigSource::Parameter(name) => Fetched::Text(ssm::read_parameter(&self.ssm, name).await?, None),
            ConfigSource::Object { bucket, key } => {
                let known = current.as_ref().and_then(|r| r.etag.as_deref());
                read_object(&self.s3, bucket, key, known).await?
            }
        };
        let (text, etag) = match (fetched, current.as_mut()) {
            // The document this cache parsed: trusted for another TTL, not parsed again.
            (Fetched::Unchanged, Some(read)) => {
                read.at = Instant::now();
                return Ok(read.config.clone());
            }
            (Fetched::Unchanged, None) => {
                return Err(LifeboatError::Transient(format!("{}: not modified, but never read", self.source)))
            }
            (Fetched::Text(text, etag), _) => (text, etag),
        };
        let config = Config::from_yaml(&text)?;
        for warning in config.warnings() {
            tracing::warn!(%warning, "config");
        }
        let config = Arc::new(config);
        *current = Some(Read { at: Instant::now(), config: config.clone(), etag });
        Ok(config)
    }
}

/// What a read of the document brought: its text (and the object's ETag), or word that the object
/// is still the one read before.
enum Fetched {
    Text(String, Option<String>),
    Unchanged,
}

/// GetObject, conditional on `etag` when the document was read before: "If-None-Match: Return
/// the object only if its entity tag (ETag) is different from the one specified in this header;
/// otherwise, return a 304 Not Modified error." (S3 API reference, GetObject.) The Rust SDK hands
/// the 304 back as a service error carrying the raw response (aws-sdk-rust#534), as moto does.
async fn read_object(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
) -> Result<Fetched, LifeboatError> {
    let what = format!("s3:GetObject s3://{bucket}/{key}");
    let sent = s3.get_object().bucket(bucket).key(key).set_if_none_match(etag.map(str::to_owned)).send().await;
    let out = match sent {
        Ok(out) => out,
        Err(e) if etag.is_some() && e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => {
            return Ok(Fetched::Unchanged)
        }
        Err(e) => return Err(sdk_error(&what, e)),
    };
    // Refused before its body is read: a wrong key (a backup, a log) must not fill the
    // function's memory.
    let announced = out.content_length().and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    store_limit(announced, Store::Object).map_err(|why| LifeboatError::Rejected(format!("{what}: {why}")))?;
    let etag = out.e_tag().map(str::to_owned);
    let body = out.body.collect().await.map_err(|e| LifeboatError::Transient(format!("{what}: {e}")))?.to_vec();
    store_limit(body.len(), Store::Object).map_err(|why| LifeboatError::Rejected(format!("{what}: {why}")))?;
    let text = String::from_utf8(body).map_err(|e| LifeboatError::Rejected(format!("{what}: not UTF-8 text: {e}")))?;
    Ok(Fetched::Text(text, etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_comes_first_then_an_object_then_the_parameter() {
        let some = |s: &str| Some(s.to_owned());
        let file = ConfigSource::first_of(some("l.yaml"), some("s3://b/k"), some("/p")).unwrap();
        assert_eq!(file, ConfigSource::File("l.yaml".into()));
        let object = ConfigSource::first_of(None, some("s3://lifeboat-config/prod/lifeboat.yaml"), some("/p")).unwrap();
        assert_eq!(object, ConfigSource::Object { bucket: "lifeboat-config".into(), key: "prod/lifeboat.yaml".into() });
        assert_eq!(ConfigSource::first_of(None, None, some("/p")).unwrap(), ConfigSource::Parameter("/p".into()));
        assert_eq!(
            ConfigSource::first_of(None, None, None).unwrap(),
            ConfigSource::Parameter(DEFAULT_CONFIG_PARAM.into())
        );
    }

    #[test]
    fn an_object_is_named_by_an_s3_url_with_a_bucket_and_a_key() {
        for bad in ["lifeboat-config/lifeboat.yaml", "s3://lifeboat-config", "s3://lifeboat-config/", "s3:///k"] {
            let e = ConfigSource::object(bad).unwrap_err().to_string();
            assert!(e.contains("LIFEBOAT_CONFIG_OBJECT") && e.contains(bad) && e.contains("s3://bucket/key"), "{e}");
        }
    }
}
