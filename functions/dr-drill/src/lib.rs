//! dr-drill: starts restore drills (on its schedule, for every database whose drill is due, or on
//! demand for one), runs each step of `infra/drill.asl.json`, and answers `{"report": true}` with
//! the recoverability report. What a drill is and when it passes is `lifeboat_core::drill`'s.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lifeboat_core::active::Active;
use lifeboat_core::aws::cloudwatch::Metrics;
use lifeboat_core::aws::evidence::EvidenceBucket;
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::rds::{Kinds, Rds};
use lifeboat_core::aws::sfn::{Started, StepFunctions};
use lifeboat_core::aws::sns::Notifier;
use lifeboat_core::aws::{optional_env, own_only_from_env, required_env, ConfigCache, SdkConfig};
use lifeboat_core::config::Config;
use lifeboat_core::copy::{self, RegionListings};
use lifeboat_core::drill::{
    self, Action, Check, DrillRequest, DrillResult, DrillRun, ReportRow, LOCK_FOR, TAG_DRILL, TAG_DRILL_ID,
};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::event;
use lifeboat_core::failover::steps::{hopeless, DbState};
use lifeboat_core::message::{self, evidence, Message};
use lifeboat_core::restore::{Origin, RestoreSpec, Settings, Shape};
use lifeboat_core::{rpo, text};
use serde_json::{json, Value};
use tracing::{info, warn};

pub struct Deps {
    pub config: ConfigCache,
    pub store: IncidentStore,
    pub rds: Rds,
    /// Replica lag, for the report's recovery points (as rpo-monitor reads it).
    pub metrics: Metrics,
    pub sfn: StepFunctions,
    pub topic: Notifier,
    /// The drill state machine (to start drills); steps and reports don't need it.
    pub state_machine: Option<String>,
    pub poll_seconds: u64,
    /// Where this stack runs, and whether it drills only the databases whose drill region is
    /// its own (`LIFEBOAT_RECOVERS=own`): two stacks drilling one database would delete each
    /// other's temporary databases as crashed drills' leftovers.
    pub region: String,
    pub own_only: bool,
    /// Only against an AWS emulator, whose endpoints are not in DNS: the resolvable-endpoint check
    /// says so instead of failing.
    pub emulated_endpoints: bool,
    /// Where each drill's record is kept, when the stack has the bucket.
    pub evidence: Option<EvidenceBucket>,
}

impl Deps {
    /// As the template configures it; the config read once now, so a broken one fails the init.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let config = ConfigCache::following_from_env(sdk).await?;
        let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
        let mut deps = Deps::new(config, sdk, &table, &required_env("LIFEBOAT_TOPIC_ARN")?);
        deps.state_machine = optional_env("LIFEBOAT_DRILL_STATE_MACHINE_ARN");
        deps.poll_seconds = optional_env("LIFEBOAT_DRILL_POLL_SECONDS").and_then(|s| s.parse().ok()).unwrap_or(30);
        deps.emulated_endpoints = optional_env("LIFEBOAT_EMULATED_ENDPOINTS").as_deref() == Some("true");
        deps.own_only = own_only_from_env()?;
        deps.evidence = optional_env("LIFEBOAT_EVIDENCE_BUCKET").map(|b| EvidenceBucket::new(sdk, &b));
        Ok(deps)
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig, table: &str, topic_arn: &str) -> Self {
        Deps {
            config,
            store: IncidentStore::new(sdk, table),
            rds: Rds::new(sdk),
            metrics: Metrics::new(sdk),
            sfn: StepFunctions::new(sdk),
            topic: Notifier::new(sdk, topic_arn),
            state_machine: None,
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            own_only: false,
            poll_seconds: 30,
            emulated_endpoints: false,
            evidence: None,
        }
    }
}

pub async fn handle(deps: &Deps, payload: Value, now: DateTime<Utc>) -> Result<Value, LifeboatError> {
    let out = match drill::parse(&payload)? {
        DrillRequest::Step { action, run } => json!(step(deps, action, *run, now).await?),
        DrillRequest::Report => report(deps, now).await?,
        DrillRequest::Start { database, at } => start(deps, database.as_deref(), event::as_of(at, now)).await?,
    };
    // A report or a start names every database: what grows with the fleet is logged on lines of
    // its own (`drill started`, the report's summary text), the answer cut to one bounded line.
    let line = text::fit(&out.to_string(), text::LOG_LINE_BUDGET, " [cut: the rest is in the answer]");
    info!(result = %line, "dr-drill");
    Ok(out)
}

async fn start(deps: &Deps, only: Option<&str>, now: DateTime<Utc>) -> Result<Value, LifeboatError> {
    let config = deps.config.get().await?;
    if let Some(name) = only {
        match config.database_named(name) {
            None => return Err(LifeboatError::Rejected(format!("no database named `{name}` in Lifeboat's config"))),
            Some(db) if db.drill.is_none() => {
                return Err(LifeboatError::Rejected(format!("{name} has no drill section")))
            }
            Some(_) => {}
        }
    }
    let Some(machine) = &deps.state_machine else {
        return Err(LifeboatError::Rejected("LIFEBOAT_DRILL_STATE_MACHINE_ARN is not set".into()));
    };
    let mut started = Vec::new();
    let mut not_due = Vec::new();
    let mut failed = None;
    let mut mine = Vec::new();
    for db in &config.databases {
        let Some(d) = &db.drill else { continue };
        if only.is_some_and(|n| n != db.name) {
            continue;
        }
        if deps.own_only && drill::region(db, d).is_some_and(|r| r != deps.region) {
            if only.is_some() {
                let r = drill::region(db, d).unwrap_or_default();
                failed.get_or_insert(LifeboatError::Rejected(format!("{}'s drill runs in {r}'s stack", db.name)));
            }
            continue;
        }
        mine.push((db, d));
    }
    // The schedule asks when each drill last ran, all at once (100 keys a BatchGetItem); a drill
    // on demand starts whenever it last ran.
    let mut remembered = if only.is_none() {
        let asked: Vec<(&str, bool)> = mine.iter().map(|(db, _)| (db.name.as_str(), true)).collect();
        deps.store.remembered(&asked).await?
    } else {
        BTreeMap::new()
    };
    for (db, d) in mine {
        let last = match remembered.remove(&db.name).and_then(|r| r.last_drill).transpose() {
            Ok(last) => last.map(|r| r.started),
            Err(e) => {
                warn!(database = %db.name, error = %e, "drill not started: its last drill is unreadable");
                failed.get_or_insert(e);
                continue;
            }
        };
        // One database's trouble never leaves the others undrilled: the schedule's retry (a
        // start is idempotent per drill id) picks up what failed.
        match start_one(deps, machine, db, d, now, only.is_none().then_some(last)).await {
            Ok(Some(s)) => {
                info!(database = %db.name, drill = %s, "drill started");
                started.push(s)
            }
            Ok(None) => not_due.push(db.name.clone()),
            Err(e) => {
                warn!(database = %db.name, error = %e, "drill not started");
                failed.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(json!({"started": started, "not_due": not_due}))
}

/// Start `db`'s drill: on its schedule (`scheduled` holds when it last ran) if it is due, else on
/// demand; None when not due.
async fn start_one(
    deps: &Deps,
    machine: &str,
    db: &lifeboat_core::config::Database,
    d: &drill::Drill,
    now: DateTime<Utc>,
    scheduled: Option<Option<DateTime<Utc>>>,
) -> Result<Option<Value>, LifeboatError> {
    if scheduled.is_some_and(|last| !drill::due(d, last, now)) {
        return Ok(None);
    }
    let region = drill::region(db, d).ok_or_else(|| match &db.moved_from {
        // Its copies go to the DR regions but the one it now runs in: none is left here.
        Some(_) => LifeboatError::Rejected(format!(
            "{}: serves in {} since a failover, and no other DR region is configured: no DR copy of it to drill \
             until `lifeboat failback`",
            db.name, db.source.region
        )),
        None => LifeboatError::Rejected(format!("{}: no DR region", db.name)),
    })?;
    let run = DrillRun::new(db, d, &region, now, deps.poll_seconds);
    let input = serde_json::to_string(&run).map_err(|e| LifeboatError::Rejected(e.to_string()))?;
    let arn = match deps.sfn.start(machine, &run.drill_id, &input).await? {
        Started::New(arn) | Started::AlreadyStarted(arn) => arn,
    };
    Ok(Some(json!({"database": db.name, "drill_id": run.drill_id, "execution_arn": arn})))
}

async fn step(deps: &Deps, action: Action, mut run: DrillRun, now: DateTime<Utc>) -> Result<DrillRun, LifeboatError> {
    let config = deps.config.get().await?;
    let Some(db) = config.database_named(&run.database) else {
        return Err(LifeboatError::Rejected(format!("no database named {} in the config", run.database)));
    };
    let Some(d) = &db.drill else { return Err(LifeboatError::Rejected(format!("{} has no drill section", db.name))) };
    match action {
        Action::Prepare => {
            if !deps
                .store
                .lock_drill(
                    &db.name,
                    &run.drill_id,
                    now,
                    now + chrono::Duration::from_std(LOCK_FOR).unwrap_or_default(),
                )
                .await?
            {
                info!(database = %db.name, "another drill of this database is running: this one does nothing");
                run.skipped = true;
                return Ok(run);
            }
            // Anything of this database's drills that isn't this drill's is a crashed drill's.
            for (cluster, left) in deps.rds.tagged(&run.region, TAG_DRILL, &db.name).await? {
                if left.tags.get(TAG_DRILL_ID) == Some(&run.drill_id) {
                    continue;
                }
                let drill_id = left.tags.get(TAG_DRILL_ID).map(String::as_str).unwrap_or_default();
                delete(deps, &run.region, cluster, &left, drill_id).await?;
                run.leftovers.push(left.id.clone());
            }
            let kinds = Kinds { instances: !db.is_cluster(), clusters: db.is_cluster() };
            let listing = deps.rds.list(&run.region, kinds).await?;
            let Some(copy) = rpo::newest_copy(db, &listing) else {
                return Err(LifeboatError::Rejected(format!(
                    "no available Lifeboat DR copy of {} in {}",
                    db.name, run.region
                )));
            };
            let arn = copy.arn.to_string();
            // What the data checks' freshness is held against: the moment the copy's data is from.
            run.recovery_point = copy.restore_point();
            let shape = match deps.rds.snapshot_engine(&arn).await? {
                _ if !db.is_cluster() => Shape::Instance,
                Some((engine, _)) => Shape::of_cluster(&engine),
                None => return Err(LifeboatError::Transient(format!("{arn} is gone; the next drill tries again"))),
            };
            // The drill restores as a failover would, with the config's settings for the region;
            // single-AZ unless it says otherwise: the instance lives minutes.
            let settings = Settings::from_config(db, &d.restore, &run.region, false);
            let spec = RestoreSpec::new(
                &run.region,
                shape,
                &run.temporary,
                Origin::Snapshot { arn: arn.clone() },
                settings,
                "drill.restore",
            )
            .tagged(&[(TAG_DRILL, db.name.as_str()), (TAG_DRILL_ID, run.drill_id.as_str())])
            .checked_as(db);
            run.writer = spec.writer.clone();
            run.restore = Some(spec);
            run.snapshot = Some(arn);
        }
        Action::Restore => {
            let spec = run.restore.as_ref().ok_or_else(|| LifeboatError::Rejected("no restore planned".into()))?;
            deps.rds.restore(spec).await?;
            run.started.get_or_insert(now);
        }
        Action::Status => {
            if let Some(spec) = &run.restore {
                // An Aurora cluster gets its writer once it is available.
                deps.rds.create_writer(spec).await?;
            }
            let state = temporary_state(deps, &run).await?;
            match state {
                Some(s) if s.available() && s.endpoint.is_some() => {
                    run.available = true;
                    run.available_at.get_or_insert(now);
                    run.endpoint = s.endpoint.clone();
                    run.port = s.port;
                }
                Some(s) if hopeless(&s.status) => {
                    return Err(LifeboatError::Rejected(format!("{} is {}: the restore failed", s.id, s.status)))
                }
                _ => {
                    let waited = run.started.map_or(0, |t| (now - t).num_seconds());
                    if waited > run.timeout_seconds as i64 {
                        return Err(LifeboatError::Rejected(format!(
                            "{} not available after {}s: the restore is too slow to be a recovery",
                            run.temporary, waited
                        )));
                    }
                }
            }
        }
        Action::Check => run.checks = checks(deps, &run).await?,
        Action::Cleanup => {
            let state = temporary_state(deps, &run).await?;
            if let Some(s) = state {
                delete(deps, &run.region, run.cluster, &s, &run.drill_id).await?;
                if !run.cleaned_up.contains(&s.id) {
                    run.cleaned_up.push(s.id.clone());
                }
            }
            deps.store.unlock_drill(&db.name, &run.drill_id).await?;
        }
        Action::Record => {
            let result = drill::result(&run, db.rto, now);
            deps.store.put_drill_result(&result).await?;
            let m = message::drill_result(&result);
            // The record first, so the message can point at it.
            let (m, unkept) = match &deps.evidence {
                Some(bucket) => {
                    let readiness = deps.store.readiness(&result.database).await;
                    let record = readiness.map(|r| evidence::of_drill(&result, &m, r.as_ref(), now));
                    bucket.keep(record, m).await
                }
                None => (m, None),
            };
            tell_once(deps, &result, m, now).await?;
            if let Some(e) = unkept {
                return Err(e);
            }
            run.result = Some(result);
        }
    }
    Ok(run)
}

async fn temporary_state(deps: &Deps, run: &DrillRun) -> Result<Option<DbState>, LifeboatError> {
    deps.rds.database(&run.region, &run.temporary, run.cluster, run.writer.as_deref()).await
}

/// Delete a drill's instance or cluster: only ever one carrying this database's drill tag and
/// `drill_id` (the adapter checks the tag again before it deletes). What to delete follows the
/// drill's own kind: a cluster whose writer was never created has no members to tell it by.
async fn delete(deps: &Deps, region: &str, cluster: bool, s: &DbState, drill_id: &str) -> Result<(), LifeboatError> {
    if cluster {
        deps.rds.delete_cluster_tagged(region, &s.id, TAG_DRILL_ID, drill_id).await?;
    } else {
        deps.rds.delete_instance_tagged(region, &s.id, TAG_DRILL_ID, drill_id).await?;
    }
    Ok(())
}

async fn checks(deps: &Deps, run: &DrillRun) -> Result<Vec<Check>, LifeboatError> {
    let state = temporary_state(deps, run).await?;
    let mut out = Vec::new();
    let status = state.as_ref().map_or("gone".to_owned(), |s| s.status.clone());
    out.push(Check { name: "status".into(), passed: status == "available", detail: status });
    let restored = state.as_ref().and_then(|s| s.engine_version.clone());
    let expected = match &run.snapshot {
        Some(arn) => deps.rds.snapshot_engine(arn).await?.map(|(_, version)| version),
        None => None,
    };
    out.push(Check {
        name: "engine version".into(),
        passed: restored.is_some() && restored == expected,
        detail: format!(
            "restored {} from a copy of {}",
            restored.as_deref().unwrap_or("?"),
            expected.as_deref().unwrap_or("?")
        ),
    });
    out.push(resolves(run.endpoint.as_deref(), run.port, deps.emulated_endpoints).await);
    Ok(out)
}

async fn resolves(endpoint: Option<&str>, port: Option<i32>, emulated: bool) -> Check {
    let name = "endpoint resolves".to_owned();
    let Some(host) = endpoint else { return Check { name, passed: false, detail: "no endpoint".into() } };
    if emulated {
        return Check { name, passed: true, detail: format!("{host}: not looked up (emulated endpoints)") };
    }
    let port = u16::try_from(port.unwrap_or(5432)).unwrap_or(5432);
    match tokio::net::lookup_host((host, port)).await {
        Ok(mut addrs) => match addrs.next() {
            Some(a) => Check { name, passed: true, detail: format!("{host} -> {}", a.ip()) },
            None => Check { name, passed: false, detail: format!("{host}: no address") },
        },
        Err(e) => Check { name, passed: false, detail: format!("{host}: {e}") },
    }
}

/// The result, to the topic once (a retried record step doesn't tell people twice).
async fn tell_once(deps: &Deps, r: &DrillResult, m: Message, now: DateTime<Utc>) -> Result<(), LifeboatError> {
    let key = format!("drill:{}", r.drill_id);
    deps.store.send_once(None, &key, now, deps.topic.publish(&m)).await.map(|_| ())
}

/// Per database: how much a recovery would lose now (the worst DR region), the last drill and its
/// measured RTO.
async fn report(deps: &Deps, now: DateTime<Utc>) -> Result<Value, LifeboatError> {
    let (config, actives) = deps.config.get_followed().await?;
    let (rows, unreachable) = rows(deps, &config, &actives, now).await?;
    let mut text = drill::report_summary(&rows);
    for region in &unreachable {
        text.push_str(&format!("RDS in {region} did not answer: its snapshots are not counted.\n"));
    }
    Ok(json!({"databases": rows, "text": text, "unreachable": unreachable}))
}

/// The report's rows, and the regions whose RDS didn't answer. The report is read in the worst
/// hour too: a region down (the primary's, most likely) leaves its snapshots out, not the report.
pub async fn rows(
    deps: &Deps,
    config: &Config,
    actives: &[Active],
    now: DateTime<Utc>,
) -> Result<(Vec<ReportRow>, Vec<String>), LifeboatError> {
    let kinds = Kinds {
        instances: config.databases.iter().any(|d| !d.is_cluster()),
        clusters: config.databases.iter().any(|d| d.is_cluster()),
    };
    let mut listings = RegionListings::new();
    let mut unreachable = Vec::new();
    for region in copy::regions_to_list(config) {
        match deps.rds.list(&region, kinds).await {
            Ok(l) => {
                listings.insert(region.clone(), l);
            }
            Err(e) if e.is_retryable() => {
                warn!(%region, error = %e, "region not listed");
                unreachable.push(region);
            }
            Err(e) => return Err(e),
        }
    }
    // The same recovery points rpo-monitor measures: the newest copy, or the replica's lag (a
    // lag that can't be read is unknown, as there).
    let mut lags = std::collections::BTreeMap::new();
    for (region, id) in rpo::replicas(config) {
        let lag = deps.metrics.replica_lag(&region, &id, now).await.unwrap_or_else(|e| {
            warn!(error = %e, replica = %id, "replica lag not read");
            None
        });
        lags.insert((region, id), lag);
    }
    let lag = |region: &str, id: &str| lags.get(&(region.to_owned(), id.to_owned())).copied().flatten();
    let assessments = rpo::assess(config, &listings, &lag, now);
    let mut by_database: BTreeMap<&str, Vec<&rpo::Assessment>> = BTreeMap::new();
    for a in &assessments {
        by_database.entry(a.database.as_str()).or_default().push(a);
    }
    // The incidents that moved databases where they serve (their active sides): what each found
    // inside the new primary. A moved database is reported even with nothing protecting it yet
    // (its RPO breached says so). Unreadable, the report still says the rest.
    let moved_by: BTreeMap<&str, &str> = actives.iter().map(|a| (a.database.as_str(), a.incident.as_str())).collect();
    let reported: Vec<_> = config
        .databases
        .iter()
        .filter(|db| {
            by_database.contains_key(db.name.as_str()) || db.drill.is_some() || moved_by.contains_key(db.name.as_str())
        })
        .collect();
    let ids: Vec<&str> = reported.iter().filter_map(|db| moved_by.get(db.name.as_str()).copied()).collect();
    let moves = deps.store.get_many(&ids).await.unwrap_or_else(|e| {
        warn!(error = %e, "the moves' incidents unreadable");
        BTreeMap::new()
    });
    // Last drills and readiness verdicts in batches (100 keys a BatchGetItem), not two reads a
    // database; unreadable, the report still says what RDS does.
    let asked: Vec<(&str, bool)> = reported.iter().map(|db| (db.name.as_str(), true)).collect();
    let mut remembered = deps.store.remembered(&asked).await.unwrap_or_else(|e| {
        warn!(error = %e, "last drills and readiness verdicts unreadable");
        BTreeMap::new()
    });
    let mut rows = Vec::new();
    for db in reported {
        let moved = moved_by
            .get(db.name.as_str())
            .and_then(|id| moves.get(*id))
            .filter(|i| i.database == db.name)
            .and_then(message::move_data_line);
        let mine = by_database.remove(db.name.as_str()).unwrap_or_default();
        let kept = remembered.remove(&db.name).unwrap_or_default();
        let worst = if mine.iter().any(|a| a.recovery_point_age_seconds.is_none()) {
            None
        } else {
            mine.iter().filter_map(|a| a.recovery_point_age_seconds).max()
        };
        let last = kept
            .last_drill
            .and_then(|r| r.map_err(|e| warn!(error = %e, database = %db.name, "last drill unreadable")).ok());
        rows.push(ReportRow {
            database: db.name.clone(),
            rpo_seconds: db.rpo.as_secs(),
            recovery_point_age_seconds: worst,
            rpo_met: !mine.is_empty() && mine.iter().all(|a| !a.breached),
            rto_seconds: db.rto.as_secs(),
            last_drill: last.as_ref().map(|r| r.started),
            measured_rto_seconds: last.as_ref().and_then(|r| r.measured_rto_seconds),
            last_drill_passed: last.as_ref().map(|r| r.passed),
            readiness: kept.summary,
            last_drill_evidence: deps
                .evidence
                .as_ref()
                .zip(last.as_ref())
                .map(|(b, r)| b.page(&evidence::drill_key(r))),
            last_drill_data: last.as_ref().and_then(|r| r.data.as_ref()).map(lifeboat_core::message::data_line),
            last_move_data: moved,
        });
    }
    Ok((rows, unreachable))
}
