//! failover-trigger: an alarm into ALARM, an AWS Health issue, RDS saying the target replica's
//! replication broke, the stack's own probe of the primary, or a person's request opens the
//! database's incident and starts the failover state machine, once. What to do is
//! `lifeboat_core::failover`'s decision; this crate opens, starts and reports.

use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_core::arn::RdsResource;
use lifeboat_core::aws::events::Bus;
use lifeboat_core::aws::incidents::{IncidentStore, Opened};
use lifeboat_core::aws::rds::Rds;
use lifeboat_core::aws::sfn::{Started, StepFunctions};
use lifeboat_core::aws::{optional_env, own_only_from_env, required_env, ConfigCache, SdkConfig};
use lifeboat_core::config::{Config, Database};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::failover::steps::{recovered_from, Execution, POLL_SECONDS};
use lifeboat_core::failover::{self, Request, Start};
use lifeboat_core::health::{ClusterMembers, HealthEvent};
use lifeboat_core::incident::{Entry, Incident, Status};
use lifeboat_core::probe::{self, Look, Verdict};
use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

pub struct Deps {
    pub config: ConfigCache,
    pub store: IncidentStore,
    pub sfn: StepFunctions,
    pub state_machine: String,
    /// Only to read which instances belong to a protected Aurora cluster (Health names those).
    pub rds: Rds,
    /// The probe's looks: one attempt each, no SDK retry. A throttled look answers at once (the
    /// region is up: no signal) instead of backing off past the look's deadline and passing for
    /// a region that doesn't answer; the probe looks again next minute.
    pub probe_rds: Rds,
    /// How often the execution looks at a database coming up (tests: 1 s).
    pub poll: Duration,
    /// Where this stack runs, and whether it runs every database's recovery (`all`: one stack)
    /// or only those it owns (`own`: a stack in each region, `LIFEBOAT_RECOVERS=own`).
    pub region: String,
    pub own_only: bool,
    /// Asks a vault to share its newest copy, for a restore from the vault.
    pub bus: Bus,
}

impl Deps {
    /// As the template configures it; the config read once now, so a broken one fails the init.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let config = ConfigCache::following_from_env(sdk).await?;
        let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
        let machine = required_env("LIFEBOAT_FAILOVER_STATE_MACHINE_ARN")?;
        let poll = optional_env("LIFEBOAT_FAILOVER_POLL_SECONDS").and_then(|s| s.parse().ok()).unwrap_or(POLL_SECONDS);
        let mut deps = Deps::new(config, sdk, &table, &machine, Duration::from_secs(poll));
        deps.own_only = own_only_from_env()?;
        Ok(deps)
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig, table: &str, state_machine: &str, poll: Duration) -> Self {
        Deps {
            config,
            store: IncidentStore::new(sdk, table),
            sfn: StepFunctions::new(sdk),
            rds: Rds::new(sdk),
            probe_rds: Rds::new(&lifeboat_core::aws::without_retries(sdk)),
            bus: Bus::new(sdk),
            state_machine: state_machine.to_owned(),
            poll,
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            own_only: false,
        }
    }
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// The execution started now, or the one already running for this incident.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    pub started: bool,
    /// Another incident of the database was open: this trigger went on its timeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub joined: Option<String>,
    /// The other databases the same trigger (an AWS Health issue) touches, one report each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Report>,
    /// A probe run: what each look found.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<String>,
}

/// When the trigger happened: an EventBridge event's own time, so a redelivery names the same
/// incident; else (a person's request) now.
fn trigger_time(payload: &Value, now: DateTime<Utc>) -> DateTime<Utc> {
    payload
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or(now, |t| t.with_timezone(&Utc))
}

pub async fn handle(deps: &Deps, payload: Value, now: DateTime<Utc>) -> Result<Report, LifeboatError> {
    let config = deps.config.get().await?;
    if payload.get("probe").and_then(Value::as_bool) == Some(true) {
        return probe_all(deps, &config, now).await;
    }
    let members = cluster_members(deps, &config, &payload).await;
    let requests = match failover::classify_with(&config, &payload, now, &members)? {
        Start::Ignored { reason } => {
            info!(%reason, "ignored");
            return Ok(Report { ignored: Some(reason), ..Report::default() });
        }
        Start::Failover(r) => r,
    };
    let at = trigger_time(&payload, now);
    let mut reports = Vec::new();
    let mut failed = None;
    // One database's failure never stops the others'; the retry (every step here is idempotent)
    // finishes what failed.
    for request in &requests {
        match start(deps, &config, request, request.began.unwrap_or(at)).await {
            Ok(r) => reports.push(r),
            Err(e) => {
                warn!(database = %request.database, error = %e, "failover not started");
                failed.get_or_insert(e);
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let mut report = reports.remove(0);
    report.also = reports;
    info!(report = %serde_json::to_string(&report).unwrap_or_default(), "failover-trigger run");
    Ok(report)
}

/// For a Health event naming instances: the instances of the protected Aurora clusters (with
/// failover.triggers.health) in its region, which Health names instead of the cluster. A cluster
/// that can't be read (its region may be the impaired one) is left unknown: possibly touched.
async fn cluster_members(deps: &Deps, config: &Config, payload: &Value) -> ClusterMembers {
    let mut out = ClusterMembers::new();
    let Ok(Some(h)) = HealthEvent::parse(payload) else { return out };
    for db in h.clusters_to_resolve(config) {
        let Some(f) = db.failover.as_ref().filter(|f| f.triggers.health) else { continue };
        if deps.own_only && recovered_from(db, f.strategy) != deps.region {
            continue;
        }
        // The cluster lives in the region Health says is impaired: its endpoint may hang, and the
        // trigger has 30 s for every database the event touches. A few seconds, then unknown.
        let read = tokio::time::timeout(MEMBERS_WITHIN, deps.rds.cluster(&db.source.region, &db.source.id)).await;
        let members = match read {
            Ok(Ok(c)) => Some(c.map(|c| c.members).unwrap_or_default()),
            Ok(Err(e)) => {
                warn!(database = %db.name, error = %e, "cluster members unreadable: the Health event may touch it");
                None
            }
            Err(_) => {
                warn!(database = %db.name, "cluster members not read in time: the Health event may touch it");
                None
            }
        };
        out.insert(db.name.clone(), members);
    }
    out
}

/// `{"probe": true}`, the stack's schedule: look at each primary this region recovers
/// (`lifeboat_core::probe`), remember since when one has been failing, and start its failover once
/// it has failed for `triggers.probe`. One database's failure never stops the others' looks.
async fn probe_all(deps: &Deps, config: &Config, now: DateTime<Utc>) -> Result<Report, LifeboatError> {
    use futures_util::StreamExt;
    let mut report = Report::default();
    let mut failed = None;
    // Concurrently, PROBES_AT_ONCE at a time, and all within one deadline for the whole run (the
    // function has 30 s): a database not looked at in time is no signal this minute, never a
    // verdict on its primary.
    let deadline = tokio::time::Instant::now() + PROBE_RUN_WITHIN;
    let looks = futures_util::stream::iter(probe::probed(&config.databases, &deps.region))
        .map(|(db, after)| async move {
            let one = tokio::time::timeout_at(deadline, probe_one(deps, config, db, after, now)).await;
            (
                db,
                one.unwrap_or_else(|_| {
                    Ok((format!("{}: not looked at within this run's {}s", db.name, PROBE_RUN_WITHIN.as_secs()), None))
                }),
            )
        })
        .buffer_unordered(PROBES_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    for (db, one) in looks {
        match one {
            Ok((said, started)) => {
                info!(database = %db.name, %said, "probe");
                report.probes.push(said);
                report.also.extend(started);
            }
            Err(e) => {
                warn!(database = %db.name, error = %e, "probe not recorded");
                failed.get_or_insert(e);
            }
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

async fn probe_one(
    deps: &Deps,
    config: &Config,
    db: &Database,
    after: Duration,
    now: DateTime<Utc>,
) -> Result<(String, Option<Report>), LifeboatError> {
    let look = look(deps, db).await;
    if let Look::Blind(_) = look {
        // The store is in this region too: touch nothing, remember nothing.
        let said = match probe::judge(db, after, &deps.region, &look, None, now) {
            Verdict::NoSignal(why) => why,
            other => format!("{}: {other:?}", db.name),
        };
        return Ok((said, None));
    }
    let key = format!("probe#{}", db.name);
    let failing_since = deps.store.state(&key).await?.filter(|(on, _)| *on).map(|(_, since)| since);
    match probe::judge(db, after, &deps.region, &look, failing_since, now) {
        Verdict::Healthy => {
            if failing_since.is_some() {
                deps.store.set_state(&key, false, now).await?;
            }
            Ok((format!("{}: the primary answers", db.name), None))
        }
        Verdict::NoSignal(why) => Ok((why, None)),
        Verdict::Suspect { since, why } => {
            if failing_since.is_none() {
                deps.store.set_state(&key, true, since).await?;
            }
            let lasts = lifeboat_core::text::human_std(after);
            Ok((format!("{}: {why}, since {}; a signal once it lasts {lasts}", db.name, since.to_rfc3339()), None))
        }
        Verdict::Down(request) => {
            let since = request.began.unwrap_or(now);
            if failing_since.is_none() {
                deps.store.set_state(&key, true, since).await?;
            }
            let said = format!("{}: down: {}", db.name, request.reason);
            let started = start(deps, config, &request, since).await?;
            Ok((said, Some(started)))
        }
    }
}

/// One look: this region about the database that would take over (any answer, "not found"
/// included, proves RDS here answers), then the primary's region about the primary. An impaired
/// endpoint may hang rather than refuse, so each gets `MEMBERS_WITHIN`.
async fn look(deps: &Deps, db: &Database) -> Look {
    let target = db.failover.as_ref().and_then(|f| f.target.as_ref()).filter(|t| t.region == deps.region);
    let ours = match target {
        Some(t) if t.resource == RdsResource::Cluster => {
            tokio::time::timeout(MEMBERS_WITHIN, deps.probe_rds.cluster(&deps.region, &t.id)).await
        }
        Some(t) => tokio::time::timeout(MEMBERS_WITHIN, deps.probe_rds.instance(&deps.region, &t.id)).await,
        None => tokio::time::timeout(MEMBERS_WITHIN, deps.probe_rds.instance(&deps.region, &db.source.id)).await,
    };
    match ours {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Look::Blind(e.to_string()),
        Err(_) => return Look::Blind(format!("no answer within {}s", MEMBERS_WITHIN.as_secs())),
    }
    let (region, id) = (&db.source.region, &db.source.id);
    let theirs = if db.is_cluster() {
        tokio::time::timeout(MEMBERS_WITHIN, deps.probe_rds.cluster(region, id)).await
    } else {
        tokio::time::timeout(MEMBERS_WITHIN, deps.probe_rds.instance(region, id)).await
    };
    match theirs {
        Ok(Ok(state)) => Look::Answered(state.map(|s| s.status)),
        // The SDK's "service error": the region answered, throttling or failing (5xx). Only a
        // call that got no answer at all (dispatch failure, timeout, a broken response) counts.
        Ok(Err(e)) if e.is_retryable() && e.to_string().contains(": service error") => Look::Unsure(e.to_string()),
        Ok(Err(e)) if e.is_retryable() => Look::Unreachable(e.to_string()),
        // Refused (no permission, say): not evidence of an outage.
        Ok(Err(e)) => Look::Blind(e.to_string()),
        Err(_) => Look::Unreachable(format!("no answer within {}s", MEMBERS_WITHIN.as_secs())),
    }
}

/// How long the trigger waits for one protected cluster's members.
const MEMBERS_WITHIN: Duration = Duration::from_secs(5);
/// The probe's looks in flight at once, and the whole run's deadline.
const PROBES_AT_ONCE: usize = 16;
const PROBE_RUN_WITHIN: Duration = Duration::from_secs(20);

/// Open one database's incident and start its execution, once.
async fn start(deps: &Deps, config: &Config, request: &Request, at: DateTime<Utc>) -> Result<Report, LifeboatError> {
    let Some(db) = config.database_named(&request.database) else {
        return Err(LifeboatError::Rejected(format!("no database named {}", request.database)));
    };
    let owner = recovered_from(db, request.strategy);
    if deps.own_only && owner != deps.region {
        let why =
            format!("{}'s recovery by {} runs in {owner}'s stack, not {}'s", db.name, request.strategy, deps.region);
        info!(%why, "not this region's");
        return Ok(Report { ignored: Some(why), ..Report::default() });
    }
    let incident = Incident::declare(db, request.kind, at, &request.by, &request.reason, &request.seed);
    let seen = Entry::new(at, &request.by, &format!("also seen: {}", request.reason), &format!("seen:{}", incident.id));
    let mut report = Report::default();
    let open = match deps.store.open(&incident, &seen).await? {
        Opened::New(i) => i,
        Opened::AlreadyOpen(i) if i.id == incident.id => i,
        Opened::AlreadyOpen(other) => {
            info!(incident = %other.id, "the database has an open incident; this trigger is on its timeline");
            report.joined = Some(other.id);
            return Ok(report);
        }
    };
    report.incident_id = Some(open.id.clone());
    if !open.status.is_open() {
        report.ignored = Some(format!("incident {} is {} already", open.id, open.status));
        return Ok(report);
    }
    match ask_and_start(deps, db, request, &open, report).await {
        // Refused for good (not a retry's to mend): no incident stays open that nothing runs.
        Err(e) if !e.is_retryable() && open.execution_arn.is_none() => {
            let what = format!("could not start the failover, nothing was changed: {e}");
            if let Err(closing) =
                deps.store.transition(&open.id, Status::Failed, Utc::now(), "failover-trigger", &what).await
            {
                warn!(incident = %open.id, error = %closing, "not closed");
            }
            Err(e)
        }
        other => other,
    }
}

async fn ask_and_start(
    deps: &Deps,
    db: &Database,
    request: &Request,
    open: &Incident,
    mut report: Report,
) -> Result<Report, LifeboatError> {
    if let Some(vault_account) =
        db.failover.as_ref().and_then(|f| f.restore.as_ref()).and_then(|r| r.from_vault.as_ref())
    {
        // The vault shares with this account only if its stack lists it (RestoreAccountIds), and
        // nothing is restored before the approval: asking again on a replay changes nothing.
        let detail = serde_json::json!({
            "database": lifeboat_core::vault::key_of(db), "incident": open.id, "not_after": request.restore_time,
        });
        deps.bus.put(lifeboat_core::vault::RECOVERY_EVENTS, lifeboat_core::vault::RESTORE_REQUESTED, &detail).await?;
        info!(vault = %vault_account, database = %db.name, "asked the vault for its newest copy");
    }
    let input = Execution::new(db, request, &open.id, deps.poll);
    let input = serde_json::to_string(&input).map_err(|e| LifeboatError::Rejected(e.to_string()))?;
    let name = failover::execution_name(&open.id);
    // StartExecution answers a running execution's name and input with that execution, as if
    // new: the incident, recording the execution once, says which delivery started it.
    let (arn, fresh) = match deps.sfn.start(&deps.state_machine, &name, &input).await? {
        Started::New(arn) => (arn, true),
        Started::AlreadyStarted(arn) => (arn, false),
    };
    let started = deps.store.set_execution(&open.id, &arn).await? && fresh;
    report.execution_arn = Some(arn);
    report.started = started;
    Ok(report)
}
