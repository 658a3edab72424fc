//! snapshot-pruner: deletes the snapshots Lifeboat owns that its retention policy no longer keeps.
//! The plan is `lifeboat_core::prune`'s and `retention`'s; this crate lists, deletes and reports.

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use lifeboat_core::arn::RdsArn;
use lifeboat_core::aws::events::Bus;
use lifeboat_core::aws::rds::{Kinds, Rds};
use lifeboat_core::aws::sns::Notifier;
use lifeboat_core::aws::{optional_env, ConfigCache, SdkConfig};
use lifeboat_core::copy::RegionListings;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::prune::{self, PruneRequest, Summary};
use lifeboat_core::{message, text};
use serde_json::Value;
use std::time::Instant;
use tracing::{error, info};

pub struct Deps {
    pub config: ConfigCache,
    pub rds: Rds,
    pub notifier: Option<Notifier>,
    /// Where an unfinished run asks for its next part (`CONTINUE_SOURCE`); None: the next
    /// scheduled run finishes it.
    pub bus: Option<Bus>,
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
        Deps {
            config,
            rds: Rds::new(sdk),
            notifier: topic_arn.map(|t| Notifier::new(sdk, t)),
            bus: Some(Bus::new(sdk)),
        }
    }
}

/// Deletions in flight at once: RDS throttles an account's calls per region (a burst of 300, 12
/// a second sustained); a few at once keep a run short without spending the burst other callers
/// in the account need, and the SDK's retry absorbs a throttled one.
pub const DELETES_AT_ONCE: usize = 4;

/// Where an unfinished run's next part is asked for: an event on this account's default bus,
/// which the stack's rule `PruneContinues` hands to the pruner (its detail is the request).
pub const CONTINUE_SOURCE: &str = "lifeboat";
pub const CONTINUE_DETAIL_TYPE: &str = "Lifeboat pruner continues";

/// One run, however long it takes (tests, and people invoking it by hand with a long timeout).
pub async fn handle(deps: &Deps, payload: Value, wall_clock: DateTime<Utc>) -> Result<Summary, LifeboatError> {
    handle_until(deps, payload, wall_clock, None).await
}

/// One part of a run: deletions stop being started at `until`, and what is left is handed to the
/// next part (`prune::continuation`), which lists again and plans as of the same moment: it finds
/// what this part didn't delete, judged on what is there then (a copy that finished meanwhile
/// counts, as in any run), never wider than a fresh run would be. Deletion failures don't stop
/// the rest: the summary names them, and the run's last part then fails (retryable when any
/// failure may pass); a retry is harmless since deleting what's gone succeeds.
pub async fn handle_until(
    deps: &Deps,
    payload: Value,
    wall_clock: DateTime<Utc>,
    until: Option<Instant>,
) -> Result<Summary, LifeboatError> {
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

    let planned: Vec<(usize, RdsArn, String)> = summary
        .groups
        .iter_mut()
        .enumerate()
        .flat_map(|(g, group)| std::mem::take(&mut group.to_delete).into_iter().map(move |(arn, why)| (g, arn, why)))
        .collect();
    let total = planned.len();
    let mut started = 0;
    let mut errors = Vec::new();
    {
        let time_left = || until.is_none_or(|u| Instant::now() < u);
        let mut deletions = stream::iter(planned.into_iter().take_while(|_| time_left()).inspect(|_| started += 1))
            .map(|(g, arn, why)| async move {
                let outcome = deps.rds.delete(&arn).await;
                (g, arn, why, outcome)
            })
            .buffered(DELETES_AT_ONCE);
        while let Some((g, arn, why, outcome)) = deletions.next().await {
            // Deleted or already gone are both "deleted"; the summary doesn't need the difference.
            summary.groups[g].record(&arn, &why, outcome.as_ref().map(|_| ()).map_err(ToString::to_string));
            if let Err(e) = outcome {
                errors.push(e);
            }
        }
    }
    summary.left = total - started;
    summary.api_calls = deps.rds.calls() - calls_before;
    log(&summary);
    // Handed on, this part's failures are the next part's to retry (it plans again and finds
    // them still there): failing this invocation too would have Lambda retry it, and each retry
    // hand on once more.
    let handed_on = summary.left > 0 && continue_later(deps, &summary, &request, &mut errors).await;

    if summary.worth_telling() {
        if let Some(notifier) = &deps.notifier {
            let log_group = optional_env("AWS_LAMBDA_LOG_GROUP_NAME");
            if let Err(e) = notifier.publish(&message::pruner_summary(&summary, log_group.as_deref())).await {
                error!(error = %e, "could not publish the pruner summary");
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        return Ok(summary);
    }
    if handed_on {
        error!(failed = errors.len(), "pruner part failed deletions; the next part retries them");
        return Ok(summary);
    }
    let first: Vec<String> = errors.iter().take(10).map(ToString::to_string).collect();
    let message = format!(
        "pruner run incomplete ({} deleted, {} failed): {}{}",
        summary.deleted(),
        summary.failed(),
        first.join("; "),
        text::and_more(first.len(), errors.len())
    );
    if errors.iter().any(LifeboatError::is_retryable) {
        Err(LifeboatError::Transient(message))
    } else {
        Err(LifeboatError::Rejected(message))
    }
}

/// Hand what is left to the next part. A part that started no deletion at all (its time went on
/// listing) or the last part allowed would hand on for ever: that is the run's failure instead.
async fn continue_later(
    deps: &Deps,
    summary: &Summary,
    request: &PruneRequest,
    errors: &mut Vec<LifeboatError>,
) -> bool {
    let stuck = summary.deleted() + summary.failed() == 0;
    if stuck || request.part >= prune::MAX_PARTS {
        errors.push(LifeboatError::Rejected(format!(
            "pruner run part {} ran out of time with {} deletions left{}: give the function a longer timeout, or \
             prune fewer databases per stack (docs/deployment.md)",
            request.part,
            summary.left,
            if stuck { " and deleted nothing" } else { ", its last part" }
        )));
        return false;
    }
    let next = prune::continuation(summary, request);
    match &deps.bus {
        Some(bus) => {
            if let Err(e) = bus.put(CONTINUE_SOURCE, CONTINUE_DETAIL_TYPE, &next).await {
                error!(error = %e, "could not hand the rest of the run on");
                errors.push(e);
                return false;
            }
            info!(next = %next, left = summary.left, "pruner run continues");
            true
        }
        None => {
            errors.push(LifeboatError::Transient(format!(
                "pruner run part {} left {} deletions and has no bus to continue on: the next run deletes them",
                request.part, summary.left
            )));
            false
        }
    }
}

/// The run into the log, no line growing with the fleet: each database's items in one region as
/// `pruner list` lines (split when long), then the run's totals as one `pruner run` line.
fn log(summary: &Summary) {
    for g in &summary.groups {
        let lists = [
            ("kept", &g.kept),
            ("deleted", &g.deleted),
            ("would_delete", &g.would_delete),
            ("skipped", &g.skipped),
            ("failed", &g.failed),
        ];
        for (list, items) in lists {
            let items: Vec<String> = items.iter().map(|i| format!("{} ({})", i.id, i.why)).collect();
            let lines = text::lines_of(&items, text::LOG_LINE_BUDGET);
            let parts = lines.len();
            for (n, line) in lines.iter().enumerate() {
                info!(
                    as_of = %summary.as_of, database = %g.database, region = %g.region, scope = ?g.scope,
                    dry_run = g.dry_run, list, part = n + 1, parts, items = %line, "pruner list"
                );
            }
        }
    }
    let digest = text::fit(&summary.digest().to_string(), text::LOG_LINE_BUDGET, " [cut]");
    info!(summary = %digest, "pruner run");
}
