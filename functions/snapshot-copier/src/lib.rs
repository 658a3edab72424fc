//! snapshot-copier: every new snapshot of a protected database gets a copy in each DR region.
//! The decisions are `lifeboat_core::copy`'s; this crate reads RDS, asks, and writes.

use lifeboat_core::arn::RdsResource;
use lifeboat_core::aws::rds::{CopyOutcome, Kinds, Rds};
use lifeboat_core::aws::SdkConfig;
use lifeboat_core::config::Config;
use lifeboat_core::copy::{self, CopyRequest, NotCopied, Planned, RegionListings};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::event::{self, Trigger};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

pub struct Deps {
    pub config: Config,
    pub rds: Rds,
}

impl Deps {
    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let rds = Rds::new(sdk, &copy::regions_to_list(&config));
        Deps { config, rds }
    }
}

/// What a run did; returned to the caller and logged.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub trigger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    /// `region:target-id` of each copy started.
    pub started: Vec<String>,
    pub already_copied: Vec<String>,
    pub deferred: Vec<String>,
    pub failed: Vec<String>,
    pub api_calls: usize,
}

pub async fn handle(deps: &Deps, payload: Value) -> Result<Report, LifeboatError> {
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
            on_snapshot(deps, &snapshot, &mut report).await
        }
        Trigger::Sweep { .. } => {
            report.trigger = "sweep".into();
            sweep(deps, &mut report).await
        }
    };
    report.api_calls = deps.rds.calls() - calls_before;
    info!(report = %serde_json::to_string(&report).unwrap_or_default(), "copier run");
    result.map(|()| report)
}

async fn on_snapshot(deps: &Deps, arn: &lifeboat_core::arn::RdsArn, report: &mut Report) -> Result<(), LifeboatError> {
    let Some(snapshot) = deps.rds.describe(arn).await? else {
        return Err(LifeboatError::Rejected(format!("snapshot {arn} does not exist (deleted since the event?)")));
    };
    let db_kind =
        if arn.resource == RdsResource::ClusterSnapshot { RdsResource::Cluster } else { RdsResource::Instance };
    let Some(db) = deps.config.database_for(&arn.region, &arn.account, db_kind, &snapshot.database_id) else {
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
            return Err(LifeboatError::Transient(format!("{arn} is {status}, not yet available to copy")));
        }
    };
    let mut errors = Vec::new();
    for planned in plans {
        match planned {
            Planned::Refused { region, reason } => {
                report.failed.push(format!("{region}: {reason}"));
                errors.push(LifeboatError::Rejected(reason));
            }
            Planned::Copy(req) => {
                // Check first: a replayed event must succeed even when the region's quota is full.
                match deps.rds.describe(&req.target).await {
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

async fn sweep(deps: &Deps, report: &mut Report) -> Result<(), LifeboatError> {
    let kinds = Kinds {
        instances: deps.config.databases.iter().any(|d| !d.is_cluster()),
        clusters: deps.config.databases.iter().any(|d| d.is_cluster()),
    };
    let mut listings = RegionListings::new();
    for region in copy::regions_to_list(&deps.config) {
        let snapshots = deps.rds.list(&region, kinds).await?;
        listings.insert(region, snapshots);
    }
    let plan = copy::plan_sweep(&deps.config, &listings);
    for name in &plan.no_snapshot {
        warn!(database = %name, "no available snapshot in the source region to copy");
    }
    report.already_copied = plan.up_to_date.iter().map(|(db, region)| format!("{region}:{db}")).collect();
    report.deferred = plan.deferred.iter().map(label).collect();
    let mut errors: Vec<LifeboatError> = plan
        .refused
        .iter()
        .map(|(region, reason)| {
            report.failed.push(format!("{region}: {reason}"));
            LifeboatError::Rejected(reason.clone())
        })
        .collect();
    for req in &plan.copies {
        start(deps, req, report, &mut errors).await;
    }
    combine(errors)
}

async fn start(deps: &Deps, req: &CopyRequest, report: &mut Report, errors: &mut Vec<LifeboatError>) {
    match deps.rds.copy(req).await {
        Ok(CopyOutcome::Started) => report.started.push(label(req)),
        Ok(CopyOutcome::AlreadyThere) => report.already_copied.push(label(req)),
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
