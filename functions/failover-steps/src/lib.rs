//! failover-steps: one step of the failover state machine per invocation (`action`). Each step
//! asks `lifeboat_core::failover::steps` what to do, makes the adapter calls, records what it did
//! on the incident's timeline, and is safe to run twice: the state machine retries `Retryable`.

use chrono::{DateTime, Utc};
use lifeboat_core::approval::{self, Decision};
use lifeboat_core::arn::{RdsArn, RdsResource};
use lifeboat_core::aws::active;
use lifeboat_core::aws::arc::{RoutingControls, States};
use lifeboat_core::aws::cloudwatch::{Lag, Metrics};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::rds::{Kinds, Rds};
use lifeboat_core::aws::recovery::Acted;
use lifeboat_core::aws::route53::Dns;
use lifeboat_core::aws::ssm::{parameter, write_parameter};
use lifeboat_core::aws::{optional_env, required_env, ConfigCache, SdkConfig};
use lifeboat_core::config::failover::short_control;
use lifeboat_core::config::Database;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::failover::steps::{
    self, done_and_left, judge, restore_region, Action, DnsChange, Evidence, Execution, Preflight, Resource,
    ResourceKind, DNS_TIMEOUT,
};
use lifeboat_core::failover::{Dns as DnsConfig, DnsMode, Failover, Strategy};
use lifeboat_core::incident::{Entry, Incident, Kind, Status};
use lifeboat_core::message::human;
use lifeboat_core::restore::{Origin, RestoreSpec};
use lifeboat_core::rpo::newest_copy;
use lifeboat_core::snapshot::FAILED;
use lifeboat_core::vault;
use serde_json::{json, Value};
use tracing::info;

pub struct Deps {
    pub config: ConfigCache,
    pub store: IncidentStore,
    pub rds: Rds,
    pub metrics: Metrics,
    pub dns: Dns,
    pub arc: RoutingControls,
    pub ssm: aws_sdk_ssm::Client,
    /// The stack's account (`LIFEBOAT_ACCOUNT_ID`), where what it recovers lives; the source's
    /// when unset.
    pub account: Option<String>,
}

impl Deps {
    /// As the template configures it; the config read once now, so a broken one fails the init.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let config = ConfigCache::following_from_env(sdk).await?;
        let mut deps = Deps::new(config, sdk, &required_env("LIFEBOAT_INCIDENTS_TABLE")?);
        deps.account = optional_env("LIFEBOAT_ACCOUNT_ID");
        Ok(deps)
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig, table: &str) -> Self {
        Deps {
            config,
            store: IncidentStore::new(sdk, table),
            rds: Rds::new(sdk),
            metrics: Metrics::new(sdk),
            dns: Dns::new(sdk),
            arc: RoutingControls::new(sdk),
            ssm: aws_sdk_ssm::Client::new(sdk),
            account: None,
        }
    }
}

const BY: &str = "failover-steps";
/// The timeline entry written before the recovery action is first asked for.
const REQUESTED: &str = "request:act";
/// A failback put the maintenance endpoint in the endpoint parameter (details: what it held).
const WRITES_STOPPED: &str = "writes:stopped";
/// How long a failback with writes stopped waits for the way back's lag to reach 0.
const DRAIN_MAX: std::time::Duration = std::time::Duration::from_secs(5 * 60);

fn rejected(step: Action, why: impl std::fmt::Display) -> LifeboatError {
    LifeboatError::Rejected(format!(
        "{}: {why}",
        serde_json::to_value(step).unwrap_or_default().as_str().unwrap_or("step")
    ))
}

/// Run one step: the execution's state in, the state with this step's result added out (the
/// state machine replaces its state with it).
pub async fn handle(deps: &Deps, payload: Value, now: DateTime<Utc>) -> Result<Execution, LifeboatError> {
    let req = steps::parse(&payload)?;
    let exec = &req.execution;
    // Where each database served when this execution started: the moves of other incidents
    // (a failback starts where a failover left it), never its own, which its verify records.
    let written = deps.config.written().await?;
    let (_, actives) = deps.config.get_with_actives().await?;
    let before: Vec<_> = actives.iter().filter(|a| a.incident != exec.incident_id).cloned().collect();
    let config = lifeboat_core::active::follow(&written, &before);
    let Some(db) = config.database_named(&exec.database) else {
        return Err(rejected(req.action, format!("no database named {} in the config", exec.database)));
    };
    let Some(incident) = deps.store.get(&exec.incident_id).await? else {
        return Err(rejected(req.action, format!("no incident {}", exec.incident_id)));
    };
    if incident.database != db.name {
        return Err(rejected(req.action, format!("incident {} is not {}'s", incident.id, db.name)));
    }
    let mut next = exec.clone();
    // The config decides, not the input: an execution started by hand with
    // `approval_required: false` takes the state machine's Approval branch all the same.
    next.approval_required = steps::approval_required(db, exec.strategy);
    next.failback = incident.kind == Kind::Failback;
    let exec = &next.clone();
    // Each step's future on the heap: inline, the largest (with the incident and the execution
    // held across its awaits) made this one outgrow a 2 MB thread stack.
    let said = match req.action {
        Action::Preflight => json!(next.preflight.insert(Box::pin(preflight(deps, db, exec, &incident, now)).await?)),
        Action::Act => {
            if exec.failback && !incident.timeline.iter().any(|e| e.key == REQUESTED) {
                // The approval may have waited: the way back must still be ready when it moves.
                Box::pin(plan(deps, db, exec, now)).await?;
                if exec.strategy == Strategy::PromoteReplica {
                    Box::pin(drain(deps, db, exec, &incident, now)).await?;
                }
            }
            json!(next.recovery.insert(Box::pin(act(deps, db, exec, &incident, now)).await?))
        }
        Action::Status => json!(next.status.insert(Box::pin(status(deps, db, exec, &incident, now)).await?)),
        Action::Dns => {
            data_gate(db, &incident, req.action)?;
            json!(next.dns.insert(Box::pin(dns(deps, db, exec, now)).await?))
        }
        Action::DnsStatus => {
            let change = exec.dns.as_ref().and_then(|d| d.change_id.clone());
            let insync = match &change {
                Some(id) => deps.dns.insync(id).await?,
                None => true,
            };
            let moved = incident.timeline.iter().find(|e| e.key == "step:dns").map_or(now, |e| e.at);
            if !insync && (now - moved).to_std().is_ok_and(|waited| waited > DNS_TIMEOUT) {
                return Err(rejected(
                    req.action,
                    format!(
                        "Route 53 change {change:?} still PENDING after {}",
                        human(chrono::Duration::from_std(DNS_TIMEOUT).unwrap_or_default())
                    ),
                ));
            }
            json!(next.dns.insert(DnsChange { change_id: change, insync }))
        }
        Action::Endpoint => {
            data_gate(db, &incident, req.action)?;
            Box::pin(endpoint(deps, db, exec, now)).await?
        }
        Action::Hold => Box::pin(hold(deps, exec, &incident, now)).await?,
        Action::Verify => {
            let (said, recheck) = Box::pin(verify(deps, db, exec, &incident, now)).await?;
            next.dns_recheck = recheck;
            said
        }
        Action::Abort => Box::pin(abort(deps, exec, &incident, now)).await?,
        Action::Fail => Box::pin(fail(deps, exec, &incident, now)).await?,
    };
    info!(action = ?req.action, incident = %exec.incident_id, result = %said, "step");
    Ok(next)
}

async fn state(deps: &Deps, r: &Resource) -> Result<Option<steps::DbState>, LifeboatError> {
    deps.rds.database(&r.region, &r.id, r.kind == ResourceKind::Cluster, r.instance.as_deref()).await
}

/// What takes over, before anything is done (a restore: what preflight planned to create).
fn takes_over(db: &Database, exec: &Execution, f: Option<&Failover>) -> Result<Resource, LifeboatError> {
    use Strategy::*;
    let kind = if db.is_cluster() { ResourceKind::Cluster } else { ResourceKind::Instance };
    let resource = |region: &str, kind, id: &str| Resource {
        region: region.to_owned(),
        kind,
        id: id.to_owned(),
        instance: None,
        recovered_to: None,
    };
    let step = Action::Preflight;
    Ok(match exec.strategy {
        PromoteReplica | GlobalSwitchover | GlobalFailover => {
            let t = f
                .and_then(|f| f.target.as_ref())
                .ok_or_else(|| rejected(step, "the strategy needs failover.target"))?;
            let kind = if t.resource == RdsResource::Cluster { ResourceKind::Cluster } else { ResourceKind::Instance };
            resource(&t.region, kind, &t.id)
        }
        AuroraFailover | RebootMultiAz => resource(&db.source.region, kind, &db.source.id),
        RestoreLatestCopy | PointInTime => {
            let spec = planned_restore(exec, step)?;
            Resource { instance: spec.writer.clone(), ..resource(&spec.region, kind, &spec.id) }
        }
    })
}

fn planned_restore(exec: &Execution, step: Action) -> Result<&RestoreSpec, LifeboatError> {
    exec.preflight
        .as_ref()
        .and_then(|p| p.restore.as_ref())
        .ok_or_else(|| rejected(step, "preflight planned no restore"))
}

async fn preflight(
    deps: &Deps,
    db: &Database,
    exec: &Execution,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<Preflight, LifeboatError> {
    let (p, details) = plan(deps, db, exec, now).await?;
    deps.store.record(&incident.id, &Entry::new(now, BY, &p.plan, "step:preflight").with_details(details)).await?;
    if exec.approval_required && incident.status == Status::Declared {
        deps.store
            .transition(&incident.id, Status::AwaitingApproval, now, BY, &format!("approval requested: {}", p.plan))
            .await?;
    }
    Ok(p)
}

/// A planned failback by promotion with `failover.maintenance_endpoint`: the endpoint parameter
/// takes it first (applications that re-read it stop writing), then the promotion waits for the
/// way back's lag to read 0 (`InProgress`, which the machine retries each minute), `DRAIN_MAX`
/// at most: past that the parameter is put back and the failback fails with nothing promoted.
async fn drain(
    deps: &Deps,
    db: &Database,
    exec: &Execution,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<(), LifeboatError> {
    let Some(f) = db.failover.as_ref() else { return Ok(()) };
    let (Some(param), Some(pause)) = (f.endpoint_parameter.as_deref(), f.maintenance_endpoint.as_deref()) else {
        return Ok(());
    };
    let since = match incident.timeline.iter().find(|e| e.key == WRITES_STOPPED) {
        Some(e) => e.at,
        None => {
            let was = parameter(&deps.ssm, param).await?;
            // Recorded before the write: a lost answer still leaves what to put back.
            let details = json!({"parameter": param, "was": was}).to_string();
            let what = format!("writes stopped for the failback: {param} = {pause}");
            deps.store.record(&incident.id, &Entry::new(now, BY, &what, WRITES_STOPPED).with_details(details)).await?;
            write_parameter(&deps.ssm, param, pause).await?;
            now
        }
    };
    let target = takes_over(db, exec, Some(f))?;
    let metric = if target.kind == ResourceKind::Cluster { Lag::BinlogCluster } else { Lag::Replica };
    let lag = deps.metrics.lag(&target.region, metric, &target.id, now).await?;
    if lag == Some(0.0) {
        let what = format!("{} caught up: lag 0 with writes stopped", target.id);
        deps.store.record(&incident.id, &Entry::new(now, BY, &what, "writes:drained")).await?;
        return Ok(());
    }
    let seen = lag.map_or_else(|| "unknown".to_owned(), |l| format!("{l:.0} s"));
    if (now - since).to_std().is_ok_and(|waited| waited > DRAIN_MAX) {
        let back = resume_writes(deps, incident, now).await?;
        return Err(rejected(
            Action::Act,
            format!(
                "the way back {} did not reach lag 0 within {} of writes stopping (lag {seen}): {back}; nothing was \
                 promoted",
                target.id,
                human(chrono::Duration::from_std(DRAIN_MAX).unwrap_or_default())
            ),
        ));
    }
    Err(LifeboatError::InProgress(format!("writes stopped; waiting for {}'s lag to reach 0 (now {seen})", target.id)))
}

/// A failback that stopped writes and promoted nothing puts the endpoint parameter back as it
/// was (only while it still holds what the failback wrote there); says what it did.
async fn resume_writes(deps: &Deps, incident: &Incident, now: DateTime<Utc>) -> Result<String, LifeboatError> {
    let Some(stopped) = incident.timeline.iter().find(|e| e.key == WRITES_STOPPED) else {
        return Ok("writes were not stopped".into());
    };
    let said: Value = stopped.details.as_deref().and_then(|d| serde_json::from_str(d).ok()).unwrap_or_default();
    let (Some(param), Some(was)) = (said["parameter"].as_str(), said["was"].as_str()) else {
        return Ok("the endpoint parameter held nothing before: set it by hand".into());
    };
    if incident.timeline.iter().any(|e| e.key == REQUESTED) {
        return Ok(format!("{param} is left as it is: the promotion was asked for"));
    }
    write_parameter(&deps.ssm, param, was).await?;
    let what = format!("writes resumed: {param} = {was} again");
    deps.store.record(&incident.id, &Entry::new(now, BY, &what, "writes:resumed")).await?;
    Ok(format!("{param} is put back to {was}"))
}

/// What the failover would do now and what it would lose, with what the DNS move depends on:
/// preflight's reads and verdict, nothing written (`lifeboat plan` shows the same).
pub async fn plan(
    deps: &Deps,
    db: &Database,
    exec: &Execution,
    now: DateTime<Utc>,
) -> Result<(Preflight, String), LifeboatError> {
    use Strategy::*;
    let f = db.failover.as_ref();
    let mut ev = Evidence::default();
    match exec.strategy {
        PromoteReplica | GlobalSwitchover | GlobalFailover | AuroraFailover | RebootMultiAz => {
            let target = takes_over(db, exec, f)?;
            ev.target = state(deps, &target).await?;
            // A planned failback onto a cluster reads its lag too: a switchover or promotion
            // waits for it (writes stop meanwhile), and a promotion loses it.
            let lag = match (exec.strategy, target.kind) {
                (PromoteReplica, ResourceKind::Instance) => Some(Lag::Replica),
                (PromoteReplica, ResourceKind::Cluster) => Some(Lag::BinlogCluster),
                (GlobalSwitchover | GlobalFailover, _) if exec.failback => Some(Lag::GlobalSecondary),
                _ => None,
            };
            if let Some(metric) = lag {
                // The lag only informs the approver: CloudWatch impaired in an outage must not
                // stop the failover, so an unreadable lag is an unknown one (as in rpo-monitor).
                let lag = match deps.metrics.lag(&target.region, metric, &target.id, now).await {
                    Ok(lag) => lag,
                    // A planned failback waits for a lag it can read (retried), never guesses.
                    Err(e) if exec.failback => return Err(e),
                    Err(e) => {
                        tracing::warn!(error = %e, "replica lag not read; expected data loss unknown");
                        None
                    }
                };
                ev.replica_lag_seconds = lag.map(|l| l.round());
            }
        }
        PointInTime => {
            let source = Resource {
                region: db.source.region.clone(),
                kind: if db.is_cluster() { ResourceKind::Cluster } else { ResourceKind::Instance },
                id: db.source.id.clone(),
                instance: None,
                recovered_to: None,
            };
            ev.target = state(deps, &source).await?;
        }
        RestoreLatestCopy => {
            let region = restore_region(db).ok_or_else(|| rejected(Action::Preflight, "no DR region to restore in"))?;
            let kinds = Kinds { instances: !db.is_cluster(), clusters: db.is_cluster() };
            match from_vault(db) {
                Some(vault_account) => {
                    // The trigger asked the vault to share; it answers within seconds: retried.
                    let shared = deps.rds.list_shared(region, kinds).await?;
                    ev.copy = vault::newest_share(db, vault_account, &shared, exec.restore_time);
                    if ev.copy.is_none() {
                        return Err(LifeboatError::Transient(format!(
                            "vault account {vault_account} shares no copy of {} with this account in {region} yet",
                            vault::key_of(db)
                        )));
                    }
                }
                None => {
                    let mut listing = deps.rds.list(region, kinds).await?;
                    // A person chose a time: the newest copy taken at or before it.
                    listing.retain(|s| exec.restore_time.is_none_or(|t| s.restore_point().is_some_and(|p| p <= t)));
                    ev.copy = newest_copy(db, &listing).cloned();
                }
            }
            if let Some(copy) = ev.copy.as_ref().filter(|_| db.is_cluster()) {
                ev.copy_engine = deps.rds.snapshot_engine(&copy.arn.to_string()).await?.map(|(engine, _)| engine);
            }
        }
    }
    let dns_note = match f.and_then(|f| f.dns.as_ref()) {
        Some(d) => format!(" {}.{}", d.plan(), dns_preflight(deps, db, exec, d).await?),
        None => String::new(),
    };
    if exec.failback {
        // Planned: refused before any approval is asked for when the way back isn't ready.
        steps::failback_ready(exec.strategy == GlobalSwitchover, &ev)
            .map_err(|why| rejected(Action::Preflight, why))?;
        if let Some(d) = f.and_then(|f| f.dns.as_ref()).filter(|d| d.mode == DnsMode::RoutingControl) {
            failback_record(deps, d, &ev).await?;
        }
    }
    let p = steps::preflight(db, exec, &ev, now).map_err(|why| rejected(Action::Preflight, why))?;
    let loss = match p.expected_loss_seconds {
        Some(s) => format!("up to {}", human(chrono::Duration::seconds(s))),
        None => "unknown before acting".to_owned(),
    };
    let rpo = match p.within_rpo {
        Some(true) => format!("within the RPO of {}", human(chrono::Duration::seconds(db.rpo.as_secs() as i64))),
        Some(false) => format!("MORE than the RPO of {}", human(chrono::Duration::seconds(db.rpo.as_secs() as i64))),
        None => format!("RPO {}", human(chrono::Duration::seconds(db.rpo.as_secs() as i64))),
    };
    // The scheduled readiness run's last verdict: a blocked database still asks for approval,
    // but the request says what will fail. Unreadable, it is only unknown.
    let ready = match deps.store.readiness(&db.name).await {
        Ok(Some((summary, at))) => format!(" Readiness, checked {} ago: {summary}.", human(now - at)),
        Ok(None) => " Readiness: not checked yet.".to_owned(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness not read");
            " Readiness: not read.".to_owned()
        }
    };
    let details = format!("Expected data loss: {loss} ({}); {rpo}.{dns_note}{ready}", p.loss_basis);
    Ok((p, details))
}

/// What preflight can tell of the DNS move before anyone approves: a record an UPSERT can't
/// replace stops the failover now, not after the database moved; the routing controls' states
/// are read. Either control plane unreachable must not stop the recovery: the DNS step tries,
/// and leaves the move for people if it can't.
async fn dns_preflight(deps: &Deps, db: &Database, exec: &Execution, d: &DnsConfig) -> Result<String, LifeboatError> {
    match d.mode {
        DnsMode::Upsert => match deps.dns.cname_refused(&d.zone_id, &d.record).await {
            Ok(Some(why)) => Err(rejected(Action::Preflight, why)),
            Ok(None) => Ok(String::new()),
            Err(e) if e.is_retryable() => {
                tracing::warn!(error = %e, "DNS record not checked");
                Ok(format!(" DNS record {} not checked: Route 53 did not answer.", d.record))
            }
            Err(e) => Err(e),
        },
        DnsMode::RoutingControl => {
            let first = steps::recovered_from(db, exec.strategy);
            match deps.arc.states(d, first, &db.source.region).await {
                Ok(s) => Ok(format!(" Routing controls now: {}, read in {}.", controls_now(d, &s), s.region)),
                Err(e) if e.is_retryable() => {
                    tracing::warn!(error = %e, "routing controls not read");
                    Ok(" Routing controls not read: no cluster endpoint answered.".to_owned())
                }
                Err(e) => Err(rejected(Action::Preflight, e)),
            }
        }
    }
}

/// Routing controls move traffic between the records of a failover pair set up beforehand: the
/// home record still names the old primary, so flipping back would send the applications to
/// the diverged database. A failback goes only once that record names the way back (people
/// point it there: the command is in the refusal).
async fn failback_record(deps: &Deps, d: &DnsConfig, ev: &Evidence) -> Result<(), LifeboatError> {
    let Some(rc) = &d.routing_controls else { return Ok(()) };
    let endpoint = ev.target.as_ref().and_then(|t| t.endpoint.clone()).unwrap_or_default();
    let names = deps.dns.guarded_by(&d.zone_id, &d.record, &rc.on).await?;
    match names {
        Some(v) if v == endpoint => Ok(()),
        other => Err(rejected(
            Action::Preflight,
            format!(
                "failback refused: {}'s record guarded by routing control {} names {}, not the way back {endpoint}: \
                 flipping the controls would send the applications there. Point that record at {endpoint} (route53 \
                 change-resource-record-sets, UPSERT, same SetIdentifier, Failover and HealthCheckId), then ask again",
                d.record,
                short_control(&rc.on),
                other.as_deref().unwrap_or("nothing")
            ),
        )),
    }
}

/// "west Off, east On": each control by its short name, with its state.
fn controls_now(d: &DnsConfig, s: &States) -> String {
    let (on, off) =
        d.routing_controls.as_ref().map(|rc| (short_control(&rc.on), short_control(&rc.off))).unwrap_or_default();
    format!("{on} {}, {off} {}", s.on, s.off)
}

async fn act(
    deps: &Deps,
    db: &Database,
    exec: &Execution,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<Resource, LifeboatError> {
    use Strategy::*;
    let step = Action::Act;
    let Some(p) = &exec.preflight else { return Err(rejected(step, "no preflight result in the execution")) };
    // Never act on a database whose config demands an approval without one that Lifeboat itself
    // recorded on the incident (only Lifeboat's roles write the table), by someone the config
    // admits: whatever the execution's input says.
    let by = if steps::approval_required(db, exec.strategy) {
        match approval::recorded(incident) {
            Some((Decision::Approve, who))
                if db.approval().distinct_from_requester && approval::requesters(incident).any(|r| r == who) =>
            {
                return Err(rejected(step, format!("{who} requested this failover and may not approve it")))
            }
            Some((Decision::Approve, who)) => who.to_owned(),
            Some((Decision::Reject, who)) => return Err(rejected(step, format!("rejected by {who}"))),
            None => return Err(rejected(step, "this failover needs an approval and Lifeboat recorded none")),
        }
    } else {
        "failover-steps (the config needs no approval)".to_owned()
    };
    if !incident.status.is_open() {
        return Err(rejected(step, format!("incident {} is {}", incident.id, incident.status)));
    }
    if incident.status != Status::Recovering {
        deps.store.transition(&incident.id, Status::Recovering, now, &by, &format!("recovering: {}", p.plan)).await?;
    }
    let f = db.failover.as_ref();
    let mut target = takes_over(db, exec, f)?;
    // Asked before (this is a retry): what is found done is this failover's own doing.
    let requested = incident.timeline.iter().any(|e| e.key == REQUESTED);
    if !requested {
        deps.store.record(&incident.id, &Entry::new(now, BY, &format!("requested: {}", p.plan), REQUESTED)).await?;
    }
    let acted = match exec.strategy {
        PromoteReplica => {
            let cluster = target.kind == ResourceKind::Cluster;
            deps.rds.promote(&target.region, &target.id, cluster, requested).await?
        }
        AuroraFailover => {
            let to = f.and_then(|f| f.target.as_ref()).map(|t| t.id.as_str());
            deps.rds.failover_cluster(&target.region, &target.id, to, p.before.as_deref()).await?
        }
        GlobalSwitchover | GlobalFailover => {
            let arn = f.and_then(|f| f.target.as_ref()).map(|t| t.to_string()).unwrap_or_default();
            deps.rds.switch_global(&target.region, &arn, exec.strategy == GlobalFailover, requested).await?
        }
        RebootMultiAz => deps.rds.reboot_with_failover(&target.region, &target.id, p.before.as_deref()).await?,
        RestoreLatestCopy | PointInTime => {
            let spec = planned_restore(exec, step)?;
            if exec.strategy == RestoreLatestCopy && from_vault(db).is_some() {
                stage_from_vault(deps, db, spec).await?;
            }
            deps.rds.restore(spec).await?
        }
    };
    target.recovered_to = p.recovered_to;
    if let Some(to) = p.recovered_to {
        deps.store.set_recovered_to(&incident.id, to).await?;
    }
    let what = match acted {
        Acted::Started => format!("started: {}", p.plan),
        Acted::AlreadyDone => format!("already done: {}", p.plan),
    };
    deps.store.record(&incident.id, &Entry::new(now, BY, &what, "step:act")).await?;
    Ok(target)
}

async fn status(
    deps: &Deps,
    db: &Database,
    exec: &Execution,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<steps::Availability, LifeboatError> {
    let Some(r) = &exec.recovery else { return Err(rejected(Action::Status, "no recovery in the execution")) };
    if let Some(spec) = exec.preflight.as_ref().and_then(|p| p.restore.as_ref()) {
        // None: the cluster is still coming up; its writer is created at a later look.
        deps.rds.create_writer(spec).await?;
    }
    let started = incident.timeline.iter().find(|e| e.key == "step:act").map_or(now, |e| e.at);
    let timeout = std::time::Duration::from_secs(exec.recovery_timeout_seconds);
    let mut seen = state(deps, r).await?;
    let target = db.failover.as_ref().and_then(|f| f.target.as_ref());
    if let (Some(s), Some(t), Strategy::GlobalSwitchover | Strategy::GlobalFailover) =
        (seen.as_mut(), target, exec.strategy)
    {
        // The secondary is `available` all along: it is the new primary only once it writes.
        let m = deps.rds.global_membership(&r.region, &t.to_string()).await?;
        steps::global_writer_yet(s, m.is_some_and(|m| m.is_writer && m.moving_to.is_none()));
    }
    let a = judge(seen.as_ref(), started, timeout, now).map_err(|why| rejected(Action::Status, why))?;
    if a.available {
        let endpoint = a.endpoint.clone().unwrap_or_default();
        let e = Entry::new(now, BY, &format!("{} is available at {endpoint}", r.id), "step:available");
        deps.store.record(&incident.id, &e).await?;
    }
    Ok(a)
}

/// Traffic moves to the new primary only when its data checks passed or a person approved the
/// held cut-over: both read from the incident (the validator's report, the approval's record),
/// which only Lifeboat's roles write, never from the execution's state.
fn data_gate(db: &Database, incident: &Incident, step: Action) -> Result<(), LifeboatError> {
    if db.validate.is_none()
        || incident.data.as_ref().is_some_and(|r| r.passed)
        || approval::hold_approved(incident).is_some()
    {
        return Ok(());
    }
    let why = incident.data.as_ref().map_or_else(|| "the data checks have not reported".to_owned(), |r| r.summary());
    Err(rejected(step, format!("{why}, and no person approved moving traffic to the new primary")))
}

/// The data checks failed or could not run: the cut-over waits for a person, whom the notifier's
/// data-checks-failed message asks (with the task's links); the timeline says why.
async fn hold(deps: &Deps, exec: &Execution, incident: &Incident, now: DateTime<Utc>) -> Result<Value, LifeboatError> {
    let why = match (&incident.data, &exec.data_error) {
        (Some(r), _) if !r.passed => r.summary(),
        (_, Some(e)) => {
            let (name, message) = lifeboat_core::error::caught(e);
            format!("the data checks could not run ({}: {message})", name.unwrap_or("error"))
        }
        (Some(r), None) => r.summary(),
        (None, None) => "the data checks did not report".to_owned(),
    };
    let what = format!("{why}: the cut-over waits for a person (approve to move traffic anyway, reject to stop)");
    deps.store.record(&incident.id, &Entry::new(now, BY, &what, approval::HOLD_KEY)).await?;
    Ok(json!({ "held": what }))
}

fn endpoint_of(exec: &Execution, step: Action) -> Result<&str, LifeboatError> {
    exec.status
        .as_ref()
        .and_then(|s| s.endpoint.as_deref())
        .ok_or_else(|| rejected(step, "the new primary's endpoint is not known yet"))
}

async fn dns(deps: &Deps, db: &Database, exec: &Execution, now: DateTime<Utc>) -> Result<DnsChange, LifeboatError> {
    let Some(d) = db.failover.as_ref().and_then(|f| f.dns.as_ref()) else {
        return Ok(DnsChange { change_id: None, insync: true });
    };
    let endpoint = endpoint_of(exec, Action::Dns)?;
    if d.mode == DnsMode::RoutingControl {
        let Some(r) = &exec.recovery else { return Err(rejected(Action::Dns, "no recovery in the execution")) };
        let at = deps.arc.flip(d, &r.region, &db.source.region).await?;
        let (on, off) =
            d.routing_controls.as_ref().map(|rc| (short_control(&rc.on), short_control(&rc.off))).unwrap_or_default();
        let what = format!(
            "DNS {}: routing control {on} On and {off} Off (ARC cluster endpoint in {at}); Route 53 answers with \
             the record for {endpoint}",
            d.record
        );
        deps.store.record(&exec.incident_id, &Entry::new(now, BY, &what, "step:dns")).await?;
        return Ok(DnsChange { change_id: None, insync: true });
    }
    let comment = format!("Lifeboat failover, incident {}", exec.incident_id);
    let id = deps.dns.upsert_cname(&d.zone_id, &d.record, endpoint, d.ttl, &comment).await?;
    let e = Entry::new(now, BY, &format!("DNS {} now points at {endpoint} (TTL {}s)", d.record, d.ttl), "step:dns");
    deps.store.record(&exec.incident_id, &e).await?;
    Ok(DnsChange { change_id: Some(id), insync: false })
}

async fn endpoint(deps: &Deps, db: &Database, exec: &Execution, now: DateTime<Utc>) -> Result<Value, LifeboatError> {
    let Some(name) = db.failover.as_ref().and_then(|f| f.endpoint_parameter.as_deref()) else {
        return Ok(json!({"parameter": null}));
    };
    let endpoint = endpoint_of(exec, Action::Endpoint)?;
    let written = write_parameter(&deps.ssm, name, endpoint).await?;
    let e = Entry::new(now, BY, &format!("SSM {name} = {endpoint}"), "step:endpoint");
    deps.store.record(&exec.incident_id, &e).await?;
    Ok(json!({"parameter": name, "written": written}))
}

/// The new primary is available at the endpoint, and DNS and the parameter both name it. With the
/// DNS step caught (Route 53's control plane down), the record is left for people and the incident
/// is "recovered, DNS pending", still open; a later verify that finds the record naming the new
/// primary resolves it then (true: verify again later).
async fn verify(
    deps: &Deps,
    db: &Database,
    exec: &Execution,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Result<(Value, bool), LifeboatError> {
    let step = Action::Verify;
    let Some(r) = &exec.recovery else { return Err(rejected(step, "no recovery in the execution")) };
    let endpoint = endpoint_of(exec, step)?;
    let s = state(deps, r).await?.ok_or_else(|| rejected(step, format!("{} is gone", r.id)))?;
    let mut problems = Vec::new();
    if !s.available() || s.endpoint.as_deref() != Some(endpoint) {
        problems.push(format!("{} is {} at {:?}", s.id, s.status, s.endpoint));
    }
    let f = db.failover.as_ref();
    let mut checked = vec![format!("{} available", r.id)];
    let dns = f.and_then(|f| f.dns.as_ref());
    let mut left = None;
    if let (Some(d), Some(e)) = (dns, &exec.dns_error) {
        // Moved since (people ran the command, or the change went through after all): confirmed.
        // Unreadable (the control plane still down) or still the old one: left for people.
        match dns_names(deps, d, endpoint, &r.region, &db.source.region).await {
            Ok(Ok(seen)) => checked.push(seen),
            now_seen => {
                let (_, why) = lifeboat_core::error::caught(e);
                let what = match exec.dns.as_ref().and_then(|c| c.change_id.as_deref()) {
                    Some(change) => {
                        format!("DNS {}: change {change} was sent but not confirmed INSYNC ({why}); check it", d.record)
                    }
                    None => format!("DNS {} still names the old primary: the DNS step failed ({why})", d.record),
                };
                info!(seen = ?now_seen.map_err(|e| e.to_string()), "DNS not confirmed");
                let how = steps::dns_command(d, endpoint, &r.region, &db.source.region);
                let entry = Entry::new(now, BY, &what, "left:dns").with_details(how);
                deps.store.record(&exec.incident_id, &entry).await?;
                checked.push(format!("DNS {} left for people", d.record));
                left = Some(d);
            }
        }
    } else if let Some(d) = dns {
        match dns_names(deps, d, endpoint, &r.region, &db.source.region).await? {
            Ok(seen) => checked.push(seen),
            Err(problem) => problems.push(problem),
        }
    }
    if let Some(name) = f.and_then(|f| f.endpoint_parameter.as_deref()) {
        match parameter(&deps.ssm, name).await? {
            Some(v) if v == endpoint => checked.push(format!("SSM {name}")),
            other => problems.push(format!("SSM {name} holds {other:?}")),
        }
    }
    if !problems.is_empty() {
        return Err(rejected(step, problems.join("; ")));
    }
    let what = format!("verified: {}", checked.join(", "));
    deps.store.record(&exec.incident_id, &Entry::new(now, BY, &what, "step:verified")).await?;
    // Where it serves now, once it is verified there (its DNS may still be left for people: the
    // endpoint parameter names it already): from then on the copier, pruner, RPO monitor and
    // readiness look after the new primary, with no edit of the config.
    let account = deps.account.as_deref().unwrap_or(&db.source.account);
    let recorded = (exec.incident_id.as_str(), account);
    if let Some(a) = lifeboat_core::active::moved(db, exec.strategy, r, Some(endpoint), recorded, now) {
        // A round trip is one story: the move this one undoes is named on its timeline.
        let undone =
            active::read_all(&deps.ssm).await?.into_iter().find(|o| o.database == db.name && o.incident != a.incident);
        active::record(&deps.ssm, &a).await?;
        let after = undone.map_or_else(String::new, |o| format!("; back from where incident {} moved it", o.incident));
        let what = format!("active side: {} (was {}, left as it is{after})", a.arn, a.previous);
        deps.store.record(&exec.incident_id, &Entry::new(now, BY, &what, "active")).await?;
    }
    if let Some(d) = left {
        if incident.status != Status::DnsPending {
            let why = format!("recovered, DNS pending: {endpoint} is verified; DNS {} is left for people", d.record);
            deps.store.transition(&exec.incident_id, Status::DnsPending, now, BY, &why).await?;
        }
        let since = incident.timeline.iter().find(|e| e.key == "left:dns").map_or(now, |e| e.at);
        if !steps::dns_still_awaited(since, now) {
            // Not left open for ever with nobody looking: the failover failed to move traffic,
            // and the failed message says what was done and what is left (the command).
            return Err(rejected(
                step,
                format!(
                    "DNS {} still does not name {endpoint} {} after it was left for people: the database is \
                     recovered, its traffic is not; run the command on the timeline",
                    d.record,
                    human(chrono::Duration::from_std(DNS_TIMEOUT).unwrap_or_default())
                ),
            ));
        }
        return Ok((json!({"verified": checked, "dns_pending": true}), true));
    }
    let mut how = format!("resolved: {endpoint}");
    if let Some(d) = dns.filter(|_| incident.timeline.iter().any(|e| e.key == "left:dns")) {
        // The moment DNS was confirmed is the recovery's end: the RTO is measured to it.
        let what = format!("DNS {} names {endpoint}: confirmed by a later verify", d.record);
        deps.store.record(&exec.incident_id, &Entry::new(now, BY, &what, "confirmed:dns")).await?;
        how = format!("resolved: {endpoint}, DNS {} confirmed", d.record);
    }
    deps.store.transition(&exec.incident_id, Status::Resolved, now, BY, &how).await?;
    Ok((json!({"verified": checked}), false))
}

/// Whether DNS names the new primary now: what was seen (Ok) or what is wrong (Err); an error
/// when it can't be read.
async fn dns_names(
    deps: &Deps,
    d: &DnsConfig,
    endpoint: &str,
    region: &str,
    source_region: &str,
) -> Result<Result<String, String>, LifeboatError> {
    if d.mode == DnsMode::RoutingControl {
        let s = deps.arc.states(d, region, source_region).await?;
        return Ok(if s.on == "On" && s.off == "Off" {
            Ok(format!("DNS {} (routing controls, read in {})", d.record, s.region))
        } else {
            Err(format!("DNS {}: routing controls are {}", d.record, controls_now(d, &s)))
        });
    }
    Ok(match deps.dns.cname(&d.zone_id, &d.record).await? {
        Some(v) if v.eq_ignore_ascii_case(endpoint) => Ok(format!("DNS {}", d.record)),
        other => Err(format!("DNS {} points at {other:?}", d.record)),
    })
}

/// Step Functions' `{Error, Cause}` from a Catch.
fn caught(exec: &Execution) -> (String, String) {
    exec.error.as_ref().map_or_else(Default::default, |e| {
        let (name, message) = lifeboat_core::error::caught(e);
        (name.unwrap_or_default().to_owned(), message)
    })
}

async fn abort(deps: &Deps, exec: &Execution, incident: &Incident, now: DateTime<Utc>) -> Result<Value, LifeboatError> {
    let (error, _) = caught(exec);
    let decided = incident.timeline.iter().rev().find(|e| e.key.starts_with("approval:"));
    let why = match (error.as_str(), decided) {
        ("States.Timeout", _) => format!(
            "approval timed out after {}, nothing was changed",
            human(chrono::Duration::seconds(exec.approval_timeout_seconds as i64))
        ),
        (_, Some(d)) => format!("{}, nothing was changed", d.what),
        _ => format!("approval refused ({error}), nothing was changed"),
    };
    if incident.status.is_open() {
        deps.store.transition(&incident.id, Status::Aborted, now, BY, &why).await?;
    }
    Ok(json!({"aborted": why}))
}

async fn fail(deps: &Deps, exec: &Execution, incident: &Incident, now: DateTime<Utc>) -> Result<Value, LifeboatError> {
    let (error, message) = caught(exec);
    // A failback that stopped writes and promoted nothing lets the applications write again.
    if incident.status.is_open() && incident.timeline.iter().any(|e| e.key == WRITES_STOPPED) {
        resume_writes(deps, incident, now).await?;
    }
    let (done, left) = done_and_left(&incident.timeline, exec.approval_required);
    let details = format!("Done: {}. Not done: {}.", list(&done), list(&left));
    if incident.status.is_open() {
        let what = format!("{error}: {message}");
        let said = Entry::new(now, BY, &what, "").with_details(details);
        deps.store.transition_with(&incident.id, Status::Failed, said).await?;
    }
    Ok(json!({"failed": error, "done": done, "not_done": left}))
}

fn list(items: &[&str]) -> String {
    if items.is_empty() {
        "nothing".to_owned()
    } else {
        items.join(", ")
    }
}

/// The vault account a restore-latest-copy restores from, when it does.
fn from_vault(db: &Database) -> Option<&str> {
    db.failover.as_ref()?.restore.as_ref()?.from_vault.as_deref()
}

/// Before restoring from the vault: this account's own copy of the share the plan names, since RDS
/// restores no shared encrypted snapshot directly ("you can't restore a DB instance from a DB
/// snapshot that is both shared and encrypted. Instead, you can make a copy"). Started once;
/// `InProgress` until RDS has it, which the state machine retries for hours.
async fn stage_from_vault(deps: &Deps, db: &Database, spec: &RestoreSpec) -> Result<(), LifeboatError> {
    let step = Action::Act;
    let Origin::Snapshot { arn } = &spec.origin else {
        return Err(rejected(step, "a restore from the vault restores a snapshot"));
    };
    let share: RdsArn = arn.parse().map_err(|e| rejected(step, format!("{e}")))?;
    let key = db.copy_to.iter().find(|t| t.region == share.region).and_then(|t| t.kms_key.clone());
    let req = vault::local_copy(db, &share, key);
    match deps.rds.describe(&req.target).await? {
        Some(local) if local.is_available() => return Ok(()),
        Some(local) if local.status == FAILED => {
            deps.rds.delete(&req.target).await?;
            return Err(LifeboatError::InProgress(format!("the copy of {share} failed; copying it again")));
        }
        Some(local) => {
            return Err(LifeboatError::InProgress(format!("copying {share} into this account: {}", local.status)));
        }
        None => {}
    }
    deps.rds.copy(&req).await?;
    match deps.rds.describe(&req.target).await? {
        Some(local) if local.is_available() => Ok(()),
        other => Err(LifeboatError::InProgress(format!(
            "copying {share} into this account: {}",
            other.map_or_else(|| "started".to_owned(), |s| s.status)
        ))),
    }
}
