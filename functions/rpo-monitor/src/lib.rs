//! rpo-monitor: how much data would a recovery lose right now, per database and DR region, against
//! its RPO; and (`readiness`) could each database fail over right now. The measure is `lifeboat_core::rpo`'s, the wording `message`'s; this crate lists RDS,
//! reads CloudWatch, logs the metrics, and tells people once when a breach starts or ends.

use std::collections::BTreeMap;

pub mod readiness;

use chrono::{DateTime, Utc};
use lifeboat_core::aws::arc::RoutingControls;
use lifeboat_core::aws::cloudwatch::Metrics;
use lifeboat_core::aws::ec2::Network;
use lifeboat_core::aws::iam::Policies;
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::kms::Keys;
use lifeboat_core::aws::rds::{Kinds, Rds};
use lifeboat_core::aws::route53::Dns;
use lifeboat_core::aws::sns::Notifier;
use lifeboat_core::aws::{optional_env, required_env, ConfigCache, SdkConfig};
use lifeboat_core::copy::{self, RegionListings};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::event::{self, EventError, Trigger};
use lifeboat_core::message;
use lifeboat_core::rpo::{self, Assessment};
use lifeboat_core::text::{lines_of, LOG_LINE_BUDGET};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

pub struct Deps {
    pub config: ConfigCache,
    pub rds: Rds,
    pub metrics: Metrics,
    pub store: IncidentStore,
    pub topic: Notifier,
    pub dns: Dns,
    pub keys: Keys,
    pub ssm: aws_sdk_ssm::Client,
    /// The approval links' signing key (readiness checks it exists and is long enough).
    pub approval_key_param: Option<String>,
    /// The failover-steps function's role, whose permissions readiness simulates.
    pub steps_role: Option<String>,
    /// The data validator's role (LIFEBOAT_VALIDATOR_ROLE_ARN): readiness simulates whether it may
    /// read each database's validate logins.
    pub validator_role: Option<String>,
    pub policies: Policies,
    pub network: Network,
    pub arc: RoutingControls,
    pub region: String,
}

impl Deps {
    /// As the template configures it; the config read once now, so a broken one fails the init.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let config = ConfigCache::snapshot_jobs_from_env(sdk).await?;
        let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
        let mut deps = Deps::new(config, sdk, &table, &required_env("LIFEBOAT_TOPIC_ARN")?);
        deps.approval_key_param = optional_env("LIFEBOAT_APPROVAL_SECRET_PARAM");
        deps.steps_role = optional_env("LIFEBOAT_STEPS_ROLE_ARN");
        deps.validator_role = optional_env("LIFEBOAT_VALIDATOR_ROLE_ARN");
        Ok(deps)
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig, table: &str, topic_arn: &str) -> Self {
        Deps {
            config,
            rds: Rds::new(sdk),
            metrics: Metrics::new(sdk),
            store: IncidentStore::new(sdk, table),
            topic: Notifier::new(sdk, topic_arn),
            dns: Dns::new(sdk),
            keys: Keys::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            approval_key_param: None,
            steps_role: None,
            validator_role: None,
            policies: Policies::new(sdk),
            network: Network::new(sdk),
            arc: RoutingControls::new(sdk),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub assessments: Vec<Assessment>,
    /// Databases with no available snapshot in their source region.
    pub unprotected: Vec<String>,
    /// Subjects of the breach / recovery notices sent.
    pub published: Vec<String>,
    /// A readiness run: each database's checks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub readiness: Vec<readiness::Readiness>,
    /// A readiness run's EMF lines, as printed (for tests; the log has them already).
    #[serde(skip)]
    pub datapoints: Vec<String>,
}

/// What a run answers Lambda: the whole report for a few databases (someone invoking it by hand
/// reads the checks), else counts and the first names. Lambda's response stops at 6 MB, and a
/// readiness verdict with its checks is 2-3 KB: the whole report would not fit 3,000 databases.
pub const WHOLE_ANSWER_UP_TO: usize = 50;

impl Report {
    pub fn answer(&self) -> Value {
        if self.readiness.len().max(self.assessments.len()) <= WHOLE_ANSWER_UP_TO {
            return serde_json::to_value(self).unwrap_or_default();
        }
        let first = |names: Vec<&str>| -> Value {
            serde_json::json!({"count": names.len(), "first": names.iter().take(WHOLE_ANSWER_UP_TO).collect::<Vec<_>>()})
        };
        serde_json::json!({
            "checked": self.readiness.len(),
            "not_ready": first(self.readiness.iter().filter(|r| !r.ready).map(|r| r.database.as_str()).collect()),
            "assessed": self.assessments.len(),
            "breached": first(self.assessments.iter().filter(|a| a.breached).map(|a| a.database.as_str()).collect()),
            "unprotected": first(self.unprotected.iter().map(String::as_str).collect()),
            "published": self.published,
            "full_report": "the function's log: one line per database",
        })
    }
}

/// A scheduled run, or a manual `{}`.
pub async fn handle(deps: &Deps, payload: Value, wall_clock: DateTime<Utc>) -> Result<Report, LifeboatError> {
    if payload.get("readiness").and_then(Value::as_bool) == Some(true) {
        let config = deps.config.get_all().await?;
        let only = payload.get("database").and_then(Value::as_str);
        let mut report = Report::default();
        report.readiness =
            readiness::run(deps, &config, only, wall_clock, &mut report.published, &mut report.datapoints).await?;
        readiness::log_summary(&report.readiness, &report.published);
        return Ok(report);
    }
    let now = match &payload {
        Value::Object(o) if o.is_empty() => wall_clock,
        _ => match event::classify(&payload)? {
            Trigger::Sweep { at } => event::as_of(at, wall_clock),
            _ => return Err(EventError("rpo-monitor runs on a schedule, or on {}".into()).into()),
        },
    };
    let config = deps.config.get().await?;
    let kinds = Kinds {
        instances: config.databases.iter().any(|d| !d.is_cluster()),
        clusters: config.databases.iter().any(|d| d.is_cluster()),
    };
    let mut listings = RegionListings::new();
    for region in copy::regions_to_list(&config) {
        let snapshots = deps.rds.list(&region, kinds).await?;
        listings.insert(region, snapshots);
    }
    // Replica lag, read once per replica; a read that fails counts as "not measured".
    let mut lags = BTreeMap::new();
    for (region, id) in rpo::replicas(&config) {
        let lag = deps.metrics.replica_lag(&region, &id, now).await.unwrap_or_else(|e| {
            warn!(error = %e, replica = %id, "replica lag not read");
            None
        });
        lags.insert((region, id), lag);
    }
    let lag = |region: &str, id: &str| lags.get(&(region.to_owned(), id.to_owned())).copied().flatten();
    let mut report = Report {
        assessments: rpo::assess(&config, &listings, &lag, now),
        unprotected: copy::unprotected(&config, &listings),
        published: Vec::new(),
        readiness: Vec::new(),
        datapoints: Vec::new(),
    };
    for a in &report.assessments {
        println!("{}", a.metrics(wall_clock));
    }
    let told = tell_if_changed(deps, &report.assessments, now, &mut report.published).await;
    log_summary(&report);
    told.map(|()| report)
}

/// The run's log line: counts, and the breached and unprotected by name in lines of at most
/// `LOG_LINE_BUDGET` (each assessment's figures are its EMF line).
fn log_summary(report: &Report) {
    let breached: Vec<String> =
        report.assessments.iter().filter(|a| a.breached).map(|a| format!("{} in {}", a.database, a.region)).collect();
    let breached = lines_of(&breached, LOG_LINE_BUDGET);
    let unprotected = lines_of(&report.unprotected, LOG_LINE_BUDGET);
    info!(
        assessed = report.assessments.len(),
        breached = report.assessments.iter().filter(|a| a.breached).count(),
        breached_names = %breached.first().map_or("", String::as_str),
        unprotected = report.unprotected.len(),
        unprotected_names = %unprotected.first().map_or("", String::as_str),
        published = ?report.published,
        "rpo run"
    );
    for more in breached.iter().skip(1) {
        info!(breached_names = %more, "rpo run, breached (continued)");
    }
    for more in unprotected.iter().skip(1) {
        info!(unprotected_names = %more, "rpo run, unprotected (continued)");
    }
}

/// One notice when breaches start or end, never on every run: the states are kept in the
/// incident table (read and written in batches), and the run's crossings are told in one notice,
/// claimed once for that set of crossings and each marked told before the states are written.
async fn tell_if_changed(
    deps: &Deps,
    assessments: &[Assessment],
    now: DateTime<Utc>,
    published: &mut Vec<String>,
) -> Result<(), LifeboatError> {
    let keys: Vec<String> = assessments.iter().map(Assessment::state_key).collect();
    let was = deps.store.states(&keys).await?;
    let mut changed = Vec::new();
    let mut lines = Vec::new();
    for (a, key) in assessments.iter().zip(&keys) {
        let (breached, since) = was.get(key).copied().unwrap_or((false, DateTime::<Utc>::MIN_UTC));
        if breached != a.breached {
            lines.push(format!("{key}#{}#{}", a.breached, since.timestamp()));
            changed.push(a);
        }
    }
    if lines.is_empty() {
        return Ok(());
    }
    // Each crossing is marked told before the states are written: a run retried in between tells
    // only the crossings not told yet, whatever else crossed meanwhile.
    let already = deps.store.told(&lines).await?;
    let (untold, lines): (Vec<&Assessment>, Vec<String>) =
        changed.iter().zip(lines).filter(|(_, line)| !already.contains(line)).map(|(a, l)| (*a, l)).unzip();
    if !lines.is_empty() {
        let claim = lifeboat_core::readiness::claim_for("rpo", lines.clone());
        let m = message::rpo_changes(&untold);
        if deps.store.send_once(None, &claim, now, deps.topic.publish(&m)).await? {
            published.push(m.subject.clone());
        }
        deps.store.mark_told(&lines, now).await?;
    }
    let states: Vec<(String, bool, DateTime<Utc>)> = changed.iter().map(|a| (a.state_key(), a.breached, now)).collect();
    deps.store.set_states(&states).await
}
