//! snapshot-copier: every snapshot of a protected database that should have a DR copy gets one.
//! The decisions are `lifeboat_core::copy`'s; this crate reads RDS, asks, and writes.

use chrono::{DateTime, Utc};
use lifeboat_core::arn::{RdsArn, RdsResource};
use lifeboat_core::aws::rds::{CopyOutcome, Kinds, Rds};
use lifeboat_core::aws::{ConfigCache, SdkConfig};
use lifeboat_core::config::Config;
use lifeboat_core::copy::{self, CopyRequest, NotCopied, Planned, RegionListings, FAILED};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::event::{self, Trigger};
use lifeboat_core::{metrics, retention};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

pub struct Deps {
    pub config: ConfigCache,
    pub rds: Rds,
    /// Print each run's EMF metrics line to stdout, where Lambda hands it to CloudWatch.
    pub emit_metrics: bool,
}

impl Deps {
    /// The config read once now, so a broken one fails the init.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        Ok(Deps::new(ConfigCache::snapshot_jobs_from_env(sdk).await?, sdk))
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig) -> Self {
        Deps { config, rds: Rds::new(sdk), emit_metrics: true }
    }
}

/// What a run did; returned to the caller and logged, its counts also as metrics.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub trigger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// `region:target-id` of each copy started.
    pub started: Vec<String>,
    pub already_copied: Vec<String>,
    /// Copies left for the next sweep: a full copy quota, or a source not yet available.
    pub deferred: Vec<String>,
    /// Copies that failed or were refused, and failed copies RDS reported (replaced).
    pub failed: Vec<String>,
    /// Databases with no available snapshot at all in their source region.
    pub unprotected: Vec<String>,
    pub quota_warnings: Vec<String>,
    pub api_calls: usize,
}

impl Report {
    /// The counts the template alarms on, as one CloudWatch EMF line.
    pub fn metrics(&self, at: DateTime<Utc>) -> String {
        let mut counts = vec![("CopiesStarted", self.started.len()), ("CopiesFailed", self.failed.len())];
        // Only the sweep sees the whole fleet: an event run's zeros would mask what its deferrals,
        // unprotected databases and quota mean to the alarms.
        if self.trigger == "sweep" {
            counts.extend([
                ("CopiesDeferred", self.deferred.len()),
                ("UnprotectedDatabases", self.unprotected.len()),
                ("QuotaWarnings", self.quota_warnings.len()),
            ]);
        }
        metrics::emf_line(at, &[("Function", "snapshot-copier")], &counts)
    }
}

pub async fn handle(deps: &Deps, payload: Value, wall_clock: DateTime<Utc>) -> Result<Report, LifeboatError> {
    let calls_before = deps.rds.calls();
    let trigger = event::classify(&payload)?;
    let mut report = Report::default();
    let result = match trigger {
        Trigger::Ignored { reason } => {
            report.trigger = "ignored".into();
            report.ignored = Some(reason);
            Ok(())
        }
        Trigger::SnapshotCreated { snapshot, event_id } => {
            report.trigger = event_id;
            match deps.config.get().await {
                Ok(config) => on_snapshot(deps, &config, &snapshot, &mut report).await,
                Err(e) => Err(e),
            }
        }
        Trigger::Sweep { at } => {
            report.trigger = "sweep".into();
            match deps.config.get().await {
                Ok(config) => sweep(deps, &config, event::as_of(at, wall_clock), &mut report).await,
                Err(e) => Err(e),
            }
        }
    };
    report.api_calls = deps.rds.calls() - calls_before;
    info!(report = %serde_json::to_string(&report).unwrap_or_default(), "copier run");
    if deps.emit_metrics {
        println!("{}", report.metrics(wall_clock));
    }
    result.map(|()| report)
}

async fn on_snapshot(deps: &Deps, config: &Config, arn: &RdsArn, report: &mut Report) -> Result<(), LifeboatError> {
    // Decided before any call: a stack receives every snapshot event of its region (and those
    // forwarded to it), most of them none of Lifeboat's business.
    if !config.protects_snapshots_in(&arn.region, &arn.account) {
        report.ignored =
            Some(format!("{arn} is in {} of account {}, where Lifeboat protects no database", arn.region, arn.account));
        return Ok(());
    }
    let Some(snapshot) = deps.rds.describe(arn).await? else {
        // Deleted since the event (events arrive late, or out of order): nothing to copy, and
        // the sweep keeps every protected database's copies whatever happened to an event.
        report.ignored = Some(format!("snapshot {arn} does not exist (deleted since the event?)"));
        return Ok(());
    };
    let db_kind =
        if arn.resource == RdsResource::ClusterSnapshot { RdsResource::Cluster } else { RdsResource::Instance };
    let Some(db) = config.database_for(&arn.region, &arn.account, db_kind, &snapshot.database_id) else {
        report.ignored = Some(format!(
            "{} is a snapshot of {} in {}, which Lifeboat does not protect",
            arn, snapshot.database_id, arn.region
        ));
        return Ok(());
    };
    let plans = match copy::plan_for_snapshot(db, &snapshot) {
        Ok(plans) => plans,
        Err(NotCopied::IsLifeboatCopy) => {
            report.ignored = Some(format!("{arn} is a Lifeboat copy; copies are never copied again"));
            return Ok(());
        }
        Err(NotCopied::NoCopyTargets) => {
            report.ignored = Some(format!("{} has no copy_to regions", db.name));
            return Ok(());
        }
        Err(NotCopied::NotAvailable(status)) => {
            // Lambda's two retries come within minutes; the sweep comes back until it's available.
            report.deferred.push(format!("{arn}: {status}, not yet available; the sweep copies it"));
            return Ok(());
        }
    };
    let mut errors = Vec::new();
    for planned in plans {
        match planned {
            // Reported (CopiesFailed alarms on it), not an error: retrying can't fix a config
            // or a tag, and a dead letter per snapshot would bury the one message that matters.
            Planned::Refused { region, reason } => report.failed.push(format!("{region}: {reason}")),
            Planned::Copy(mut req) => {
                // Check first: a replayed event must succeed even when the region's quota is full.
                match deps.rds.describe(&req.target).await {
                    Ok(Some(target)) if target.status == FAILED => {
                        req.replaces_failed = true;
                        start(deps, &req, report, &mut errors).await;
                    }
                    Ok(Some(target)) if target.status == "deleting" => {
                        report.deferred.push(format!("{}: the earlier copy is still being deleted", label(&req)));
                    }
                    Ok(Some(_)) => report.already_copied.push(label(&req)),
                    Ok(None) => start(deps, &req, report, &mut errors).await,
                    Err(e) => {
                        report.failed.push(format!("{}: {e}", label(&req)));
                        errors.push(e);
                    }
                }
            }
        }
    }
    combine(errors)
}

async fn sweep(deps: &Deps, config: &Config, now: DateTime<Utc>, report: &mut Report) -> Result<(), LifeboatError> {
    let kinds = Kinds {
        instances: config.databases.iter().any(|d| !d.is_cluster()),
        clusters: config.databases.iter().any(|d| d.is_cluster()),
    };
    let mut listings = RegionListings::new();
    for region in copy::regions_to_list(config) {
        let snapshots = deps.rds.list(&region, kinds).await?;
        listings.insert(region, snapshots);
    }
    let plan = copy::plan_sweep(config, &listings, now);
    // Every region Lifeboat writes to is listed here, so this is where the quota is watched.
    report.quota_warnings = retention::quota_warnings(&listings);
    for name in &plan.unprotected {
        warn!(database = %name, "no available snapshot in the source region: nothing to copy or restore");
    }
    report.unprotected = plan.unprotected;
    report.already_copied = plan.up_to_date.iter().map(|(db, region)| format!("{region}:{db}")).collect();
    report.deferred = plan
        .deferred
        .iter()
        .map(|r| format!("{}: copy quota full, or the earlier copy is being deleted", label(r)))
        .collect();
    report.failed = plan.refused.iter().map(|(region, reason)| format!("{region}: {reason}")).collect();
    let mut errors = Vec::new();
    for arn in &plan.delete_failed {
        match deps.rds.delete(arn).await {
            Ok(_) => report.failed.push(format!(
                "{}:{}: RDS reports this copy failed; deleted it (nothing needs it now)",
                arn.region, arn.id
            )),
            Err(e) => {
                report.failed.push(format!(
                    "{}:{}: RDS reports this copy failed, and deleting it failed: {e}",
                    arn.region, arn.id
                ));
                errors.push(e);
            }
        }
    }
    for req in &plan.copies {
        start(deps, req, report, &mut errors).await;
    }
    combine(errors)
}

async fn start(deps: &Deps, req: &CopyRequest, report: &mut Report, errors: &mut Vec<LifeboatError>) {
    if req.replaces_failed {
        // Failed copies are reported, deleted and made again, never counted as done.
        if let Err(e) = deps.rds.delete(&req.target).await {
            report.failed.push(format!("{}: RDS reports this copy failed, and deleting it failed: {e}", label(req)));
            errors.push(e);
            return;
        }
        report.failed.push(format!("{}: RDS reports this copy failed; deleted it to copy again", label(req)));
    }
    match deps.rds.copy(req).await {
        Ok(CopyOutcome::Started) => report.started.push(label(req)),
        // The failed copy's identifier may take a moment to free up.
        Ok(CopyOutcome::AlreadyThere) if req.replaces_failed => {
            report.deferred.push(format!("{}: the failed copy is still being deleted", label(req)))
        }
        Ok(CopyOutcome::AlreadyThere) => report.already_copied.push(label(req)),
        Ok(CopyOutcome::QuotaFull) => report.deferred.push(format!("{}: snapshot quota full", label(req))),
        Err(e) => {
            warn!(copy = %label(req), error = %e, retryable = e.is_retryable(), "copy refused");
            report.failed.push(format!("{}: {e}", label(req)));
            errors.push(e);
        }
    }
}

fn label(req: &CopyRequest) -> String {
    format!("{}:{}", req.target.region, req.target.id)
}

/// One region's failure doesn't stop the others; the run then fails as a whole, retryable if any
/// part of it may succeed later (the sweep, or Lambda's retry, finishes the job).
fn combine(errors: Vec<LifeboatError>) -> Result<(), LifeboatError> {
    if errors.is_empty() {
        return Ok(());
    }
    let message = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    if errors.iter().any(LifeboatError::is_retryable) {
        Err(LifeboatError::Transient(message))
    } else {
        Err(LifeboatError::Rejected(message))
    }
}
