//! snapshot-pruner: deletes the snapshots Lifeboat owns that its retention policy no longer keeps.
//! The plan is `lifeboat_core::prune`'s and `retention`'s; this crate lists, deletes and reports.

use chrono::{DateTime, Utc};
use lifeboat_core::aws::rds::{Kinds, Rds};
use lifeboat_core::aws::sns::Notifier;
use lifeboat_core::aws::{optional_env, ConfigCache, SdkConfig};
use lifeboat_core::copy::RegionListings;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::message;
use lifeboat_core::prune::{self, Summary};
use serde_json::Value;
use tracing::{error, info};

pub struct Deps {
    pub config: ConfigCache,
    pub rds: Rds,
    pub notifier: Option<Notifier>,
}

impl Deps {
    /// As the template configures it (the topic is optional); the config read once now.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let config = ConfigCache::snapshot_jobs_from_env(sdk).await?;
        Ok(Deps::new(config, sdk, optional_env("LIFEBOAT_TOPIC_ARN").as_deref()))
    }

    /// `topic_arn`: the stack's `NotificationTopicArn` (`LIFEBOAT_TOPIC_ARN`), the one topic IAM
    /// lets the function publish to; without it the summary is only logged.
    pub fn new(config: ConfigCache, sdk: &SdkConfig, topic_arn: Option<&str>) -> Self {
        Deps { config, rds: Rds::new(sdk), notifier: topic_arn.map(|t| Notifier::new(sdk, t)) }
    }
}

/// One run. Deletion failures don't stop the rest: the summary names them and the run then fails
/// (retryable when any failure may pass), and a retry is harmless since deleting what's gone succeeds.
pub async fn handle(deps: &Deps, payload: Value, wall_clock: DateTime<Utc>) -> Result<Summary, LifeboatError> {
    let calls_before = deps.rds.calls();
    let request = prune::parse_request(&payload)?;
    let config = deps.config.get().await?;
    let databases = prune::select(&config, &request)?;
    let kinds = Kinds {
        instances: databases.iter().any(|d| !d.is_cluster()),
        clusters: databases.iter().any(|d| d.is_cluster()),
    };
    let mut listings = RegionListings::new();
    for region in prune::regions_to_list(&databases) {
        let snapshots = deps.rds.list(&region, kinds).await?;
        listings.insert(region, snapshots);
    }
    let mut summary = prune::plan_run(&databases, &listings, &request, prune::as_of(&request, wall_clock));

    let mut errors = Vec::new();
    for group in &mut summary.groups {
        for (arn, why) in std::mem::take(&mut group.to_delete) {
            let outcome = deps.rds.delete(&arn).await;
            // Deleted or already gone are both "deleted"; the summary doesn't need the difference.
            group.record(&arn, &why, outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
            if let Err(e) = outcome {
                errors.push(e);
            }
        }
    }
    summary.api_calls = deps.rds.calls() - calls_before;
    info!(summary = %serde_json::to_string(&summary).unwrap_or_default(), "pruner run");

    if summary.worth_telling() {
        if let Some(notifier) = &deps.notifier {
            if let Err(e) = notifier.publish(&message::pruner_summary(&summary)).await {
                error!(error = %e, "could not publish the pruner summary");
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        return Ok(summary);
    }
    let message = format!(
        "pruner run incomplete ({} deleted, {} failed): {}",
        summary.deleted(),
        summary.failed(),
        errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    );
    if errors.iter().any(LifeboatError::is_retryable) {
        Err(LifeboatError::Transient(message))
    } else {
        Err(LifeboatError::Rejected(message))
    }
}
