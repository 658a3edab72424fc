//! A pruner run: what asked for it, which databases and regions it covers, the plan per database
//! and region, and the summary people read. The keep/delete decisions are `retention::plan`'s.

use std::collections::{BTreeMap, BTreeSet};

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneRequest {
    /// Report the plan, delete nothing (on top of each database's own `retention.dry_run`).
    pub dry_run: bool,
    /// Only this database (by config name); all databases with a retention policy otherwise.
    pub database: Option<String>,
    /// When the schedule fired. The plan is made as of then (never later than the wall clock), so
    /// a replayed or late-retried event makes the same plan, not a newer one.
    pub at: Option<DateTime<Utc>>,
    /// 1 for a run the schedule or a person started; n for its (n-1)th continuation.
    pub part: u32,
}

impl Default for PruneRequest {
    fn default() -> Self {
        PruneRequest { dry_run: false, database: None, at: None, part: 1 }
    }
}

/// Groups (a database in a region) up to which a run answers its whole summary (`answer`).
pub const WHOLE_ANSWER_UP_TO: usize = 50;

/// A run that can't finish in one invocation hands on at most this many times: a fleet needing
/// more is past what one stack's pruner serves (docs/deployment.md), and a bug can't loop forever.
pub const MAX_PARTS: u32 = 24;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manual {
    #[serde(default)]
    dry_run: bool,
    database: Option<String>,
    /// A continuation's: the first part's plan time and which part this is (`continuation`).
    as_of: Option<DateTime<Utc>>,
    part: Option<u32>,
}

/// What the next part of an unfinished run is asked (the pruner's continuation event's detail):
/// the first part's plan time, so every part plans as of the same moment.
pub fn continuation(summary: &Summary, request: &PruneRequest) -> Value {
    let mut next = serde_json::json!({"as_of": summary.as_of, "part": request.part + 1});
    if let Some(db) = &request.database {
        next["database"] = db.clone().into();
    }
    next
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
    let part = manual.part.unwrap_or(1);
    if part == 0 || part > MAX_PARTS {
        return Err(EventError(format!("part {part}: a run has parts 1 to {MAX_PARTS}")));
    }
    Ok(PruneRequest { dry_run: manual.dry_run, database: manual.database, at: manual.as_of, part })
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

/// The run's plan and what came of it. The quota is not judged here: the listings are from before
/// the deletions, and the copier's sweep watches it against the account's own maximum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub as_of: DateTime<Utc>,
    pub dry_run: bool,
    pub groups: Vec<GroupReport>,
    pub api_calls: usize,
    /// Which part of the run this was (1 unless an earlier part ran out of time).
    pub part: u32,
    /// Deletions planned but not started before the invocation's time ran out: the next part's.
    pub left: usize,
}

/// A run's counts in one region and scope, all databases together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionCounts {
    pub region: String,
    pub scope: Scope,
    pub databases: usize,
    pub kept: usize,
    pub deleted: usize,
    pub would_delete: usize,
    pub skipped: usize,
    pub failed: usize,
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
    Summary { as_of: now, dry_run: request.dry_run, groups, api_calls: 0, part: request.part, left: 0 }
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

    /// The databases the run covered, each once, in the config's order.
    pub fn databases(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.groups.iter().map(|g| g.database.as_str()).filter(|d| seen.insert(*d)).collect()
    }

    /// Counts per region and scope, in region order.
    pub fn by_region(&self) -> Vec<RegionCounts> {
        let mut counts: BTreeMap<(&str, Scope), RegionCounts> = BTreeMap::new();
        for g in &self.groups {
            let c = counts.entry((g.region.as_str(), g.scope)).or_insert_with(|| RegionCounts {
                region: g.region.clone(),
                scope: g.scope,
                databases: 0,
                kept: 0,
                deleted: 0,
                would_delete: 0,
                skipped: 0,
                failed: 0,
            });
            c.databases += 1;
            c.kept += g.kept.len();
            c.deleted += g.deleted.len();
            c.would_delete += g.would_delete.len();
            c.skipped += g.skipped.len();
            c.failed += g.failed.len();
        }
        counts.into_values().collect()
    }

    /// The `n` groups people most need to see (most failures, then most deletions done or
    /// planned), in the run's order.
    pub fn worst(&self, n: usize) -> Vec<&GroupReport> {
        let mut ranked: Vec<usize> = (0..self.groups.len()).collect();
        let weight = |g: &GroupReport| (g.failed.len(), g.deleted.len() + g.would_delete.len());
        ranked.sort_by_key(|&i| std::cmp::Reverse(weight(&self.groups[i])));
        ranked.truncate(n);
        ranked.sort_unstable();
        ranked.into_iter().map(|i| &self.groups[i]).collect()
    }

    /// The run in one log line whatever the fleet's size: totals, counts per region, the ten
    /// groups with most failures and deletions (each group's items are on its own lines).
    /// What a run answers Lambda: the whole summary for up to `WHOLE_ANSWER_UP_TO` databases and
    /// regions (someone invoking it by hand reads the lists), else the digest: the whole summary
    /// grows with the fleet (~6 MB, Lambda's response limit, at 10,000 databases); the log has
    /// every list.
    pub fn answer(&self) -> Value {
        if self.groups.len() <= WHOLE_ANSWER_UP_TO {
            serde_json::to_value(self).unwrap_or_else(|_| self.digest())
        } else {
            self.digest()
        }
    }

    pub fn digest(&self) -> Value {
        let worst: Vec<Value> = self
            .worst(10)
            .into_iter()
            .map(|g| {
                serde_json::json!({
                    "database": g.database,
                    "region": g.region,
                    "scope": g.scope,
                    "deleted": g.deleted.len(),
                    "would_delete": g.would_delete.len(),
                    "failed": g.failed.len(),
                    "first_failure": g.failed.first().map(|i| format!("{}: {}", i.id, i.why)),
                })
            })
            .collect();
        serde_json::json!({
            "as_of": self.as_of,
            "dry_run": self.dry_run,
            "part": self.part,
            "left": self.left,
            "databases": self.databases().len(),
            "groups": self.groups.len(),
            "deleted": self.deleted(),
            "failed": self.failed(),
            "api_calls": self.api_calls,
            "by_region": self.by_region(),
            "worst": worst,
        })
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
        assert_eq!(r, PruneRequest { dry_run: true, database: Some("orders".into()), at: None, part: 1 });
        assert_eq!(parse_request(&json!({})).unwrap(), PruneRequest::default());
        // A typo must not turn a dry run into a real one.
        let e = parse_request(&json!({"dryrun": true})).unwrap_err();
        assert!(e.0.contains("dryrun"), "{e}");
        assert!(parse_request(&json!("prune")).is_err());
        assert!(parse_request(&json!({"dry_run": "yes"})).is_err());
    }

    #[test]
    fn a_continuation_asks_for_the_same_plan_and_the_next_part_and_stops_at_the_last() {
        let first = PruneRequest { database: Some("orders".into()), ..Default::default() };
        let summary = Summary {
            as_of: "2026-11-24T04:00:00Z".parse().unwrap(),
            dry_run: false,
            groups: Vec::new(),
            api_calls: 0,
            part: 1,
            left: 7,
        };
        let next = parse_request(&continuation(&summary, &first)).unwrap();
        assert_eq!(next, PruneRequest { at: Some(summary.as_of), part: 2, ..first.clone() });
        assert_eq!(as_of(&next, "2026-11-24T04:14:00Z".parse().unwrap()), summary.as_of);
        let last = PruneRequest { part: MAX_PARTS, ..first };
        let refused = parse_request(&continuation(&summary, &last)).unwrap_err();
        assert!(refused.0.contains(&format!("parts 1 to {MAX_PARTS}")), "{refused}");
        assert!(parse_request(&json!({"part": 0})).is_err());
        assert!(parse_request(&json!({"as_of": "yesterday", "part": 2})).is_err());
        let sample =
            parse_request(&serde_json::from_str(include_str!("../../../events/pruner-continues.json")).unwrap());
        assert_eq!(sample.unwrap().part, 2);
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
    fn the_runs_log_line_stays_bounded_at_ten_thousand_databases() {
        let item = |id: String| Item { id, why: "outside policy".into() };
        let groups: Vec<GroupReport> = (0..10_000)
            .map(|d| GroupReport {
                database: format!("fleet-{d:05}"),
                region: if d % 2 == 0 { "us-west-2" } else { "us-east-1" }.into(),
                scope: if d % 2 == 0 { Scope::Copies } else { Scope::Source },
                dry_run: false,
                kept: (0..3).map(|k| item(format!("fleet-{d:05}-{k}"))).collect(),
                deleted: (3..5).map(|k| item(format!("fleet-{d:05}-{k}"))).collect(),
                would_delete: Vec::new(),
                skipped: Vec::new(),
                failed: if d == 4_242 { vec![item("fleet-04242-9".into())] } else { Vec::new() },
                to_delete: Vec::new(),
            })
            .collect();
        let s = Summary {
            as_of: "2026-11-24T04:00:00Z".parse().unwrap(),
            dry_run: false,
            groups,
            api_calls: 20_004,
            part: 1,
            left: 0,
        };
        let line = s.digest().to_string();
        assert!(line.len() <= crate::text::LOG_LINE_BUDGET / 4, "{} bytes", line.len());
        let d = s.digest();
        assert_eq!(
            (d["databases"].clone(), d["deleted"].clone(), d["failed"].clone()),
            (json!(10_000), json!(20_000), json!(1))
        );
        assert_eq!(d["by_region"].as_array().map(Vec::len), Some(2));
        let worst = d["worst"].as_array().unwrap();
        assert_eq!(worst.len(), 10);
        assert!(worst.iter().any(|w| w["first_failure"] == "fleet-04242-9: outside policy"), "{worst:?}");
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
