//! A pruner run: what asked for it, which databases and regions it covers, the plan per database
//! and region, and the summary people read. The keep/delete decisions are `retention::plan`'s.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arn::RdsArn;
use crate::config::{Config, Database};
use crate::copy::RegionListings;
use crate::error::LifeboatError;
use crate::event::{self, EventError, Trigger};
use crate::retention::{self, Action, DeleteReason, Scope};

/// What a run was asked to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PruneRequest {
    /// Report the plan, delete nothing (on top of each database's own `retention.dry_run`).
    pub dry_run: bool,
    /// Only this database (by config name); all databases with a retention policy otherwise.
    pub database: Option<String>,
    /// When the schedule fired. The plan is made as of then (never later than the wall clock), so
    /// a replayed or late-retried event makes the same plan, not a newer one.
    pub at: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manual {
    #[serde(default)]
    dry_run: bool,
    database: Option<String>,
}

/// A scheduled EventBridge event, or a manual `{"dry_run": bool, "database": "name"}` (both optional).
pub fn parse_request(payload: &Value) -> Result<PruneRequest, EventError> {
    if payload.get("detail-type").is_some() {
        return match event::classify(payload)? {
            Trigger::Sweep { at } => Ok(PruneRequest { at, ..PruneRequest::default() }),
            _ => Err(EventError(format!(
                "the pruner runs on a schedule, not on `{}` events",
                payload["detail-type"].as_str().unwrap_or("?")
            ))),
        };
    }
    let manual: Manual = serde_json::from_value(payload.clone()).map_err(|e| {
        EventError(format!(r#"expected a Scheduled Event or {{"dry_run": true|false, "database": "<name>"}}: {e}"#))
    })?;
    Ok(PruneRequest { dry_run: manual.dry_run, database: manual.database, at: None })
}

/// The moment the plan is made as of (`event::as_of`).
pub fn as_of(request: &PruneRequest, wall_clock: DateTime<Utc>) -> DateTime<Utc> {
    event::as_of(request.at, wall_clock)
}

/// The databases a run covers. Naming a database that isn't configured, or has no retention
/// policy, is an error: silently pruning nothing would look like success.
pub fn select<'a>(config: &'a Config, request: &PruneRequest) -> Result<Vec<&'a Database>, LifeboatError> {
    match &request.database {
        Some(name) => {
            let Some(db) = config.database_named(name) else {
                let known: Vec<&str> = config.databases.iter().map(|d| d.name.as_str()).collect();
                return Err(LifeboatError::Rejected(format!(
                    "no database named `{name}` in Lifeboat's config (configured: {})",
                    known.join(", ")
                )));
            };
            if db.retention.is_none() {
                return Err(LifeboatError::Rejected(format!("database `{name}` has no retention policy")));
            }
            Ok(vec![db])
        }
        None => Ok(config.databases.iter().filter(|d| d.retention.is_some()).collect()),
    }
}

/// Regions to list, each once: the sources and every DR region of the selected databases (DR
/// regions also for source-only policies, to see which source snapshots still have a copy in flight).
pub fn regions_to_list(databases: &[&Database]) -> Vec<String> {
    let regions: BTreeSet<String> = databases
        .iter()
        .flat_map(|db| std::iter::once(db.source.region.clone()).chain(db.copy_to.iter().map(|t| t.region.clone())))
        .collect();
    regions.into_iter().collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub id: String,
    pub why: String,
}

/// One database's snapshots in one region: the plan, then what came of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupReport {
    pub database: String,
    pub region: String,
    pub scope: Scope,
    pub dry_run: bool,
    pub kept: Vec<Item>,
    pub deleted: Vec<Item>,
    /// Planned deletions a dry run didn't make.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_delete: Vec<Item>,
    pub skipped: Vec<Item>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<Item>,
    /// Deletions to make (empty in a dry run); the function reports each back with `record`.
    #[serde(skip)]
    pub to_delete: Vec<(RdsArn, String)>,
}

impl GroupReport {
    pub fn record(&mut self, arn: &RdsArn, why: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.deleted.push(Item { id: arn.id.clone(), why: why.to_owned() }),
            Err(e) => self.failed.push(Item { id: arn.id.clone(), why: e }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub as_of: DateTime<Utc>,
    pub dry_run: bool,
    pub groups: Vec<GroupReport>,
    pub quota_warnings: Vec<String>,
    pub api_calls: usize,
}

fn delete_reason(r: &DeleteReason) -> &'static str {
    match r {
        DeleteReason::OutsidePolicy => "outside policy",
        DeleteReason::OlderThanMaxAge => "older than max_age",
    }
}

/// The whole run's plan, from each region listed once. Pure: same input, same plan.
pub fn plan_run(
    databases: &[&Database],
    listings: &RegionListings,
    request: &PruneRequest,
    now: DateTime<Utc>,
) -> Summary {
    let pending = retention::pending_copy_sources(listings);
    let none = BTreeSet::new();
    let index = retention::Index::new(listings);
    let mut groups = Vec::new();
    for db in databases {
        let db_dry_run = request.dry_run || db.retention.as_ref().is_some_and(|r| r.dry_run);
        for group in index.groups(db) {
            let pending = if group.scope == Scope::Source { &pending } else { &none };
            let mut report = GroupReport {
                database: db.name.clone(),
                region: group.region.clone(),
                scope: group.scope,
                dry_run: db_dry_run,
                kept: Vec::new(),
                deleted: Vec::new(),
                would_delete: Vec::new(),
                skipped: Vec::new(),
                failed: Vec::new(),
                to_delete: Vec::new(),
            };
            for decision in retention::plan(group.snapshots.iter().copied(), group.policy, now, pending) {
                let id = decision.snapshot.arn.id.clone();
                match decision.action {
                    Action::Keep(reasons) => {
                        let why = reasons.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                        report.kept.push(Item { id, why });
                    }
                    Action::Skip(reason) => report.skipped.push(Item { id, why: reason.to_string() }),
                    Action::Delete(reason) if db_dry_run => {
                        report.would_delete.push(Item { id, why: delete_reason(&reason).to_owned() });
                    }
                    Action::Delete(reason) => {
                        report.to_delete.push((decision.snapshot.arn.clone(), delete_reason(&reason).to_owned()));
                    }
                }
            }
            groups.push(report);
        }
    }
    Summary {
        as_of: now,
        dry_run: request.dry_run,
        groups,
        quota_warnings: retention::quota_warnings(listings),
        api_calls: 0,
    }
}

impl Summary {
    pub fn deleted(&self) -> usize {
        self.groups.iter().map(|g| g.deleted.len()).sum()
    }

    pub fn failed(&self) -> usize {
        self.groups.iter().map(|g| g.failed.len()).sum()
    }

    /// People hear about a run that changed something or went wrong; quiet runs only log.
    pub fn worth_telling(&self) -> bool {
        self.deleted() > 0 || self.failed() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CONFIG: &str = "databases:
  - name: orders
    source: arn:aws:rds:us-east-1:123456789012:db:orders
    tier: production
    rpo: 5m
    rto: 30m
    copy_to: [{ region: us-west-2 }]
    retention:
      copies: { daily: 2, min_keep: 1 }
  - name: reports
    source: arn:aws:rds:eu-west-1:123456789012:db:reports
    tier: non-production
    rpo: 24h
    rto: 4h
";

    #[test]
    fn a_scheduled_event_runs_everything_as_of_its_time() {
        let r = parse_request(&serde_json::from_str(include_str!("../../../events/pruner-scheduled.json")).unwrap())
            .unwrap();
        assert!(!r.dry_run && r.database.is_none());
        assert_eq!(r.at.map(|t| t.to_rfc3339()), Some("2026-11-24T04:00:00+00:00".into()));
    }

    #[test]
    fn manual_requests_parse_and_typos_are_refused() {
        let r = parse_request(&json!({"dry_run": true, "database": "orders"})).unwrap();
        assert_eq!(r, PruneRequest { dry_run: true, database: Some("orders".into()), at: None });
        assert_eq!(parse_request(&json!({})).unwrap(), PruneRequest::default());
        // A typo must not turn a dry run into a real one.
        let e = parse_request(&json!({"dryrun": true})).unwrap_err();
        assert!(e.0.contains("dryrun"), "{e}");
        assert!(parse_request(&json!("prune")).is_err());
        assert!(parse_request(&json!({"dry_run": "yes"})).is_err());
    }

    #[test]
    fn snapshot_events_are_not_prune_requests() {
        let ev: Value =
            serde_json::from_str(include_str!("../../../events/rds-db-snapshot-manual-created.json")).unwrap();
        assert!(parse_request(&ev).unwrap_err().0.contains("schedule"));
    }

    #[test]
    fn a_future_event_time_is_clamped_to_the_wall_clock() {
        let wall = "2026-11-24T12:00:00Z".parse().unwrap();
        let late = PruneRequest { at: Some("2027-01-01T00:00:00Z".parse().unwrap()), ..Default::default() };
        assert_eq!(as_of(&late, wall), wall);
        let early = PruneRequest { at: Some("2026-11-24T04:00:00Z".parse().unwrap()), ..Default::default() };
        assert_eq!(as_of(&early, wall), early.at.unwrap());
    }

    #[test]
    fn selection_covers_databases_with_retention_and_refuses_unknown_names() {
        let config = Config::from_yaml(CONFIG).unwrap();
        let all = select(&config, &PruneRequest::default()).unwrap();
        assert_eq!(all.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["orders"]);
        assert_eq!(regions_to_list(&all), ["us-east-1", "us-west-2"]);
        let unknown = PruneRequest { database: Some("ordrs".into()), ..Default::default() };
        let e = select(&config, &unknown).unwrap_err().to_string();
        assert!(e.contains("ordrs") && e.contains("orders, reports"), "{e}");
        let no_policy = PruneRequest { database: Some("reports".into()), ..Default::default() };
        assert!(select(&config, &no_policy).unwrap_err().to_string().contains("no retention policy"));
    }
}
