//! snapshot-copier: every snapshot of a protected database that should have a DR copy gets one.
//! The decisions are `lifeboat_core::copy`'s; this crate reads RDS, asks, and writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lifeboat_core::arn::{RdsArn, RdsResource};
use lifeboat_core::aws::events::Bus;
use lifeboat_core::aws::rds::{CopyOutcome, Kinds, Rds};
use lifeboat_core::aws::{ConfigCache, SdkConfig};
use lifeboat_core::config::Config;
use lifeboat_core::copy::{self, CopyRequest, NotCopied, Planned, RegionListings, FAILED};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::event::{self, Trigger};
use lifeboat_core::snapshot::{TAG_VAULTED, TAG_VAULT_SOURCE, TAG_VAULT_TRANSIT};
use lifeboat_core::vault::{self, VaultMessage};
use lifeboat_core::{metrics, retention, text};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::{info, warn};

pub struct Deps {
    pub config: ConfigCache,
    pub rds: Rds,
    /// This account's default bus: a rule forwards what is said there to the vault's.
    pub bus: Bus,
    /// Print each run's EMF metrics line to stdout, where Lambda hands it to CloudWatch.
    pub emit_metrics: bool,
}

impl Deps {
    /// The config read once now, so a broken one fails the init.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        Ok(Deps::new(ConfigCache::snapshot_jobs_from_env(sdk).await?, sdk))
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig) -> Self {
        Deps { config, rds: Rds::new(sdk), bus: Bus::new(sdk), emit_metrics: true }
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
    /// The vault path: transit copies started, shares announced to the vault, snapshots the vault
    /// now holds (their transit copy unshared and deleted), and what people must know.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vault_started: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vault_shared: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vaulted: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vault_warnings: Vec<String>,
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

    fn lists(&self) -> [(&'static str, &Vec<String>); 10] {
        [
            ("failed", &self.failed),
            ("deferred", &self.deferred),
            ("unprotected", &self.unprotected),
            ("quota_warnings", &self.quota_warnings),
            ("vault_warnings", &self.vault_warnings),
            ("started", &self.started),
            ("vault_started", &self.vault_started),
            ("vault_shared", &self.vault_shared),
            ("vaulted", &self.vaulted),
            ("already_copied", &self.already_copied),
        ]
    }

    /// The run in one line whatever the fleet's size: how many of each, per region (the part of
    /// an entry before its first `:`), and the first ten of what needs people (failures,
    /// deferrals, unprotected databases, warnings); every entry is on the `copier list` lines.
    pub fn digest(&self) -> Value {
        const FIRST: usize = 10;
        let mut counts = serde_json::Map::new();
        let mut first = serde_json::Map::new();
        for (name, list) in self.lists() {
            counts.insert(name.into(), json!(list.len()));
            if matches!(name, "failed" | "deferred" | "unprotected" | "quota_warnings" | "vault_warnings")
                && !list.is_empty()
            {
                let shown: Vec<&String> = list.iter().take(FIRST).collect();
                first.insert(name.into(), json!({"first": shown, "more": list.len().saturating_sub(FIRST)}));
            }
        }
        let mut by_region: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
        for (name, list) in [("started", &self.started), ("deferred", &self.deferred), ("failed", &self.failed)] {
            for entry in list {
                let region = entry.split(':').next().unwrap_or_default();
                *by_region.entry(region).or_default().entry(name).or_default() += 1;
            }
        }
        json!({
            "trigger": self.trigger,
            "ignored": self.ignored,
            "api_calls": self.api_calls,
            "counts": counts,
            "by_region": by_region,
            "needs_people": first,
        })
    }

    /// Into the log, no line growing with the fleet: each list as `copier list` lines (split
    /// when long), then the digest as the one `copier run` line.
    pub fn log(&self) {
        for (list, entries) in self.lists() {
            let lines = text::lines_of(entries, text::LOG_LINE_BUDGET);
            let parts = lines.len();
            for (n, line) in lines.iter().enumerate() {
                info!(trigger = %self.trigger, list, part = n + 1, parts, entries = %line, "copier list");
            }
        }
        let digest = text::fit(&self.digest().to_string(), text::LOG_LINE_BUDGET, " [cut]");
        info!(report = %digest, "copier run");
    }
}

pub async fn handle(deps: &Deps, payload: Value, wall_clock: DateTime<Utc>) -> Result<Report, LifeboatError> {
    let calls_before = deps.rds.calls();
    let mut report = Report::default();
    // The vault's answer is Lifeboat's own event, not one of AWS's: read before `classify`.
    if let Some(message) = vault::message(&payload) {
        report.trigger = "vault".into();
        let result = match (message, deps.config.get().await) {
            (Ok(VaultMessage::Vaulted { from, shared, copy }), Ok(config)) => {
                on_vaulted(deps, &config, &from, &shared, &copy, &mut report).await
            }
            (Ok(other), Ok(_)) => {
                report.ignored = Some(format!("{other:?} is the vault's business, not this account's copier's"));
                Ok(())
            }
            (Err(e), _) => Err(LifeboatError::from(e)),
            (_, Err(e)) => Err(e),
        };
        report.api_calls = deps.rds.calls() - calls_before;
        report.log();
        return result.map(|()| report);
    }
    let trigger = event::classify(&payload)?;
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
    report.log();
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
    LifeboatError::all(errors)
}

async fn sweep(deps: &Deps, config: &Config, now: DateTime<Utc>, report: &mut Report) -> Result<(), LifeboatError> {
    let kinds = Kinds {
        instances: config.databases.iter().any(|d| !d.is_cluster()),
        clusters: config.databases.iter().any(|d| d.is_cluster()),
    };
    let mut listings = RegionListings::new();
    let mut quotas = BTreeMap::new();
    for region in copy::regions_to_list(config) {
        let snapshots = deps.rds.list(&region, kinds).await?;
        listings.insert(region.clone(), snapshots);
        // The account's own maximum, once per region and run ("The description for a quota
        // includes the quota name, current usage toward that quota, and the quota's maximum
        // value": DescribeAccountAttributes, RDS API reference). Without it (a throttled or denied
        // call) the listing is counted against the default: a warning can wait for the next sweep.
        match deps.rds.snapshot_quotas(&region).await {
            Ok(q) => {
                quotas.insert(region, q);
            }
            Err(e) => warn!(%region, error = %e, "snapshot quotas not read: counting against the default"),
        }
    }
    let plan = copy::plan_sweep(config, &listings, now);
    // Every region Lifeboat writes to is listed here, so this is where the quota is watched: of
    // the kinds the fleet has, as the account's other snapshots are no warning about Lifeboat's.
    report.quota_warnings = retention::quota_warnings(&listings, |region, kind| {
        let q = quotas.get(region)?;
        match kind {
            RdsResource::ClusterSnapshot if kinds.clusters => q.clusters,
            RdsResource::InstanceSnapshot if kinds.instances => q.instances,
            _ => None,
        }
    });
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
    send_to_vaults(deps, config, &listings, report, &mut errors).await;
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
    LifeboatError::all(errors)
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

/// The sweep's vault work (see `lifeboat_core::vault`): transit copies started, failed ones
/// cleared, ready ones shared with the vault account alone and announced on the bus.
async fn send_to_vaults(
    deps: &Deps,
    config: &Config,
    listings: &RegionListings,
    report: &mut Report,
    errors: &mut Vec<LifeboatError>,
) {
    let empty = Vec::new();
    for db in config.databases.iter() {
        let Some(v) = &db.vault else { continue };
        let plan = vault::plan_sends(
            db,
            listings.get(&db.source.region).unwrap_or(&empty),
            listings.get(&v.region).unwrap_or(&empty),
        );
        report.vault_warnings.extend(plan.warnings.iter().cloned());
        for arn in &plan.delete_failed {
            match deps.rds.delete(arn).await {
                Ok(_) => report
                    .failed
                    .push(format!("{}:{}: the transit copy to the vault failed; deleted it", arn.region, arn.id)),
                Err(e) => {
                    report
                        .failed
                        .push(format!("{}:{}: deleting the failed transit copy failed: {e}", arn.region, arn.id));
                    errors.push(e);
                }
            }
        }
        for t in &plan.deferred {
            report.deferred.push(format!("{}: copy quota full (vault transit)", label(&t.copy)));
        }
        for t in &plan.transits {
            match deps.rds.copy(&t.copy).await {
                Ok(CopyOutcome::Started | CopyOutcome::AlreadyThere) => report.vault_started.push(label(&t.copy)),
                Ok(CopyOutcome::QuotaFull) => report.deferred.push(format!("{}: snapshot quota full", label(&t.copy))),
                Err(e) => {
                    report.failed.push(format!("{} (vault transit): {e}", label(&t.copy)));
                    errors.push(e);
                }
            }
        }
        for (database, transit) in &plan.share {
            let detail = serde_json::json!({
                "snapshot": transit.to_string(),
                "database": database,
                "retention_seconds": v.retention.as_secs(),
            });
            let shared = async {
                deps.rds.share(transit, &v.account, true).await?;
                deps.bus.put(vault::SOURCE_EVENTS, vault::SHARED, &detail).await
            };
            match shared.await {
                Ok(()) => {
                    report.vault_shared.push(format!("{}:{} -> account {}", transit.region, transit.id, v.account))
                }
                Err(e) => {
                    report.failed.push(format!("{}:{} (sharing with the vault): {e}", transit.region, transit.id));
                    errors.push(e);
                }
            }
        }
    }
}

/// The vault holds a copy of `shared`: mark its source snapshot vaulted, stop sharing the transit
/// copy and delete it. Safe to receive twice: a transit already gone means this ran before. Only
/// from the vault account the database names, and only for this account's transit copies.
async fn on_vaulted(
    deps: &Deps,
    config: &Config,
    from: &str,
    shared: &RdsArn,
    copy: &RdsArn,
    report: &mut Report,
) -> Result<(), LifeboatError> {
    let Some(db) = config.databases.iter().find(|db| {
        db.source.account == shared.account
            && db.vault.as_ref().is_some_and(|v| v.account == from && v.region == shared.region)
    }) else {
        return Err(LifeboatError::Rejected(format!(
            "account {from} is not the vault of any database whose transit copies live in {} of account {}",
            shared.region, shared.account
        )));
    };
    let Some(transit) = deps.rds.describe(shared).await? else {
        report.ignored = Some(format!("{shared} is gone: the vault's answer was handled before"));
        return Ok(());
    };
    if transit.tags.get(TAG_VAULT_TRANSIT).map(String::as_str) != Some(from) {
        return Err(LifeboatError::Rejected(format!("{shared} is not a transit copy to vault account {from}")));
    }
    if copy.account != from {
        return Err(LifeboatError::Rejected(format!("{copy} is not in vault account {from}")));
    }
    if let Some(source) = transit.tags.get(TAG_VAULT_SOURCE).and_then(|s| s.parse::<RdsArn>().ok()) {
        // The source may be gone (an automated snapshot past its retention): the vault has it.
        if deps.rds.describe(&source).await?.is_some() {
            deps.rds.tag(&source, TAG_VAULTED, &copy.to_string()).await?;
        }
    }
    deps.rds.share(shared, from, false).await?;
    deps.rds.delete(shared).await?;
    report.vaulted.push(format!("{} ({}) -> {copy}", shared, db.name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ten_thousand_database_sweeps_log_lines_stay_bounded_and_hold_every_entry() {
        let n = 10_000;
        let report = Report {
            trigger: "sweep".into(),
            started: (0..n).map(|i| format!("us-west-2:lifeboat-fleet-{i:05}-snap-0-0a1b2c3d")).collect(),
            already_copied: (0..n).map(|i| format!("us-west-2:fleet-{i:05}")).collect(),
            deferred: (0..n).map(|i| format!("eu-west-1:lifeboat-fleet-{i:05}-snap-0: snapshot quota full")).collect(),
            failed: vec!["us-west-2: fleet-00042 has no kms_key for an encrypted snapshot".into()],
            api_calls: 2 * n,
            ..Report::default()
        };
        let digest = report.digest();
        assert!(digest.to_string().len() <= text::LOG_LINE_BUDGET / 4, "{} bytes", digest.to_string().len());
        assert_eq!(digest["counts"]["already_copied"], n);
        assert_eq!(digest["by_region"]["eu-west-1"]["deferred"], n);
        assert_eq!(digest["by_region"]["us-west-2"], json!({"started": n, "failed": 1}));
        assert_eq!(digest["needs_people"]["deferred"]["more"], n - 10);
        assert_eq!(digest["needs_people"]["failed"]["first"][0], report.failed[0]);
        for (_, list) in report.lists() {
            let lines = text::lines_of(list, text::LOG_LINE_BUDGET);
            assert!(lines.iter().all(|l| l.len() <= text::LOG_LINE_BUDGET));
            assert_eq!(lines.iter().map(|l| l.split(", ").count()).sum::<usize>(), list.len());
        }
    }
}
