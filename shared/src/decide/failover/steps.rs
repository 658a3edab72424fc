//! The failover's steps as `infra/failover.asl.json` runs them, one `failover-steps` invocation
//! each: what every step decides from the execution's state and what the adapters read. The state
//! machine holds the order and the state; every step is safe to run twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Dns, DnsMode, Request, Strategy};
use crate::config::{Database, Tier};
use crate::event::EventError;
use crate::incident::Entry;
use crate::restore::{self, Origin, RestoreSpec, Settings, Shape};
use crate::snapshot::Snapshot;

/// How often the state machine looks at a database coming up, unless the trigger is told otherwise.
pub const POLL_SECONDS: u64 = 30;
pub use crate::config::failover::{recovery_wait, MACHINE_TIMEOUT, STEPS_BUDGET};
/// Route 53 reports a change INSYNC within about a minute; one still PENDING after this is a
/// failure people must look at (the rest of the failover is done, and the message says so).
pub const DNS_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The state machine's input, and the state every step receives: steps add their results under
/// `preflight`, `recovery`, `status`, `dns` (the ASL's `ResultPath`s). It says *which* incident
/// and database; whether an approval is needed and what was decided are never taken from it: the
/// steps re-derive the one from the stack's config and read the other from the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub incident_id: String,
    pub database: String,
    pub strategy: Strategy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_time: Option<DateTime<Utc>>,
    pub approval_required: bool,
    pub approval_timeout_seconds: u64,
    pub poll_seconds: u64,
    pub recovery_timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preflight: Option<Preflight>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Availability>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsChange>,
    /// What a `Catch` caught: Step Functions' `{Error, Cause}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    /// The DNS step's failure, caught so the rest of the failover goes on: Route 53's control
    /// plane (us-east-1 only) may be what failed. The record is left for people, with the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_error: Option<Value>,
    /// Set by verify while DNS is left for people and `DNS_TIMEOUT` since has not passed: the
    /// state machine verifies again after `poll_seconds`, and the pass that finds the record naming
    /// the new primary resolves the incident (always written: the machine's Choice reads it).
    #[serde(default)]
    pub dns_recheck: bool,
    /// The database's config has `validate`: the machine checks the data inside the new primary
    /// before DNS moves (its Choice reads this; the DNS and endpoint steps re-derive it).
    #[serde(default)]
    pub data_checks: bool,
    /// The data checks' verdict, for the machine's Choice only: the DNS and endpoint steps read
    /// the report the validator recorded on the incident, never this.
    #[serde(default)]
    pub data_passed: bool,
    /// A planned failback (the incident's kind, re-derived by every step from the store):
    /// preflight refuses it unless the way back is ready (`failback_ready`).
    #[serde(default)]
    pub failback: bool,
    /// What a `Catch` caught from the data checks (they could not run: a person decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_error: Option<Value>,
}

/// Production always waits for a person. So does a request that overrides the configured
/// strategy, or a database with no failover section: nobody agreed to that plan beforehand.
pub fn approval_required(db: &Database, strategy: Strategy) -> bool {
    db.tier == Tier::Production || db.failover.as_ref().is_none_or(|f| f.approval.required() || f.strategy != strategy)
}

impl Execution {
    pub fn new(db: &Database, req: &Request, incident_id: &str, poll: Duration) -> Execution {
        let timeout =
            db.failover.as_ref().map_or(crate::config::failover::default_approval_timeout(), |f| f.approval_timeout);
        Execution {
            incident_id: incident_id.to_owned(),
            database: db.name.clone(),
            strategy: req.strategy,
            restore_time: req.restore_time,
            approval_required: approval_required(db, req.strategy),
            approval_timeout_seconds: timeout.as_secs().max(1),
            poll_seconds: poll.as_secs().max(1),
            recovery_timeout_seconds: recovery_wait(db.rto).as_secs(),
            preflight: None,
            recovery: None,
            status: None,
            dns: None,
            error: None,
            dns_error: None,
            dns_recheck: false,
            data_checks: db.validate.is_some(),
            data_passed: false,
            data_error: None,
            failback: req.kind == crate::incident::Kind::Failback,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Preflight,
    Act,
    Status,
    Dns,
    DnsStatus,
    Endpoint,
    Verify,
    /// The data checks failed or could not run: the incident awaits a person again.
    Hold,
    /// Approval refused or timed out: nothing was changed.
    Abort,
    /// A step failed for good: say what was done and what was not.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRequest {
    pub action: Action,
    pub execution: Execution,
}

pub fn parse(payload: &Value) -> Result<StepRequest, EventError> {
    serde_json::from_value(payload.clone()).map_err(|e| {
        EventError(format!(r#"expected {{"action": "preflight" | "act" | ..., "execution": {{...}}}}: {e}"#))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResourceKind {
    Instance,
    Cluster,
}

/// The database that is (or becomes) the primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub region: String,
    pub kind: ResourceKind,
    pub id: String,
    /// For a cluster Lifeboat creates (a restore), its first instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The newest point in time it holds, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_to: Option<DateTime<Utc>>,
}

/// What RDS says of an instance or cluster, as far as a failover needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbState {
    pub id: String,
    pub status: String,
    pub endpoint: Option<String>,
    pub multi_az: bool,
    /// A read replica's source (instances: `ReadReplicaSourceDBInstanceIdentifier`; clusters:
    /// `ReplicationSourceIdentifier`). moto keeps it after promotion, so it's evidence, not proof.
    pub replica_of: Option<String>,
    pub latest_restorable: Option<DateTime<Utc>>,
    /// A cluster's writer instance.
    pub writer: Option<String>,
    pub members: Vec<String>,
    pub availability_zone: Option<String>,
    pub engine_version: Option<String>,
    pub engine: Option<String>,
    pub port: Option<i32>,
    pub tags: std::collections::BTreeMap<String, String>,
    /// Its KMS key when its storage is encrypted (a key of its own region).
    pub kms_key: Option<String>,
    /// What a restore of this database must carry over (its network, groups, class, Multi-AZ).
    pub settings: Settings,
    /// A read replica's replication as RDS reports it (`StatusInfos`, type `read replication`).
    pub replication: Option<Replication>,
    /// Its ARN (`DBInstanceArn` / `DBClusterArn`).
    pub arn: Option<String>,
    /// A cluster's HTTP endpoint (the RDS Data API) is enabled (`HttpEndpointEnabled`).
    pub data_api: bool,
}

/// A cluster's place in its Aurora global database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub global: String,
    pub is_writer: bool,
    /// The member a switchover or failover under way is moving the writer to.
    pub moving_to: Option<String>,
    /// The global cluster's own status (`available`, `modifying`, ...).
    pub status: Option<String>,
}

/// `DescribeDBInstances` `StatusInfos` of type `read replication`: the status (`replicating`,
/// `replication stop point set`, `replication stop point reached`, `error`, `stopped`,
/// `terminated`), whether the instance is operating normally, and the error's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replication {
    pub status: String,
    pub normal: Option<bool>,
    pub message: Option<String>,
}

impl Replication {
    /// Broken: RDS says `error`, `stopped` or `terminated`, or not operating normally.
    pub fn broken(&self) -> bool {
        self.normal == Some(false) || matches!(self.status.as_str(), "error" | "stopped" | "terminated")
    }
}

impl DbState {
    pub fn available(&self) -> bool {
        self.status == "available"
    }

    /// It replicates from `source`: RDS names a same-region source by identifier, a
    /// cross-region one by ARN.
    pub fn replicates_from(&self, source: &crate::arn::RdsArn) -> bool {
        self.replica_of.as_deref().is_some_and(|r| r == source.to_string() || r == source.id)
    }
}

/// A global database's secondary is `available` before, during and after a switchover: it is the
/// new primary only once it is the global writer, and the switchover is over.
pub fn global_writer_yet(s: &mut DbState, writes: bool) {
    if !writes {
        s.status = format!("{} (not yet the global database's writer)", s.status);
    }
}

/// RDS statuses from which a database doesn't come up by waiting.
pub fn hopeless(status: &str) -> bool {
    matches!(
        status,
        "failed"
            | "incompatible-restore"
            | "incompatible-parameters"
            | "incompatible-network"
            | "incompatible-option-group"
            | "restore-error"
            | "storage-full"
            | "inaccessible-encryption-credentials"
            | "deleting"
            | "stopped"
    )
}

/// What preflight found out before anyone approves: who takes over and what data may be lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preflight {
    /// One line for people: what will happen.
    pub plan: String,
    /// Expected data loss in seconds, when it can be known before acting.
    pub expected_loss_seconds: Option<i64>,
    /// How the loss was estimated.
    pub loss_basis: String,
    pub within_rpo: Option<bool>,
    /// The DR copy a restore will use (restore-latest-copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The writer before a cluster failover and the AZ before a forced reboot: the act step
    /// compares against them, so running it twice doesn't fail over twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    pub recovered_to: Option<DateTime<Utc>>,
    /// What a restore will create, with which settings (restore-latest-copy, point-in-time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<RestoreSpec>,
}

/// What preflight's adapter read, per strategy.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The replica / cluster / instance that takes over, or the source of a point-in-time restore.
    pub target: Option<DbState>,
    pub replica_lag_seconds: Option<f64>,
    /// The newest available DR copy (restore-latest-copy).
    pub copy: Option<Snapshot>,
    /// The engine of the DR copy a cluster restore uses (Aurora or a Multi-AZ DB cluster).
    pub copy_engine: Option<String>,
}

fn loss(
    db: &Database,
    now: DateTime<Utc>,
    secs: Option<i64>,
    basis: String,
) -> (Option<i64>, String, Option<bool>, Option<DateTime<Utc>>) {
    let within = secs.map(|s| s <= db.rpo.as_secs() as i64);
    (secs, basis, within, secs.map(|s| now - chrono::Duration::seconds(s)))
}

/// How far behind the way back may be when a failback starts: it is planned, so it waits for a
/// replica that has (almost) caught up rather than losing what the primary has and it hasn't.
pub const FAILBACK_LAG_MAX: Duration = Duration::from_secs(30);

/// A failback goes only when the way back is available and its lag is known and small; else it
/// is refused before anything is asked or changed, saying what to wait for. A `switchover`
/// ("All secondary clusters are synchronized with the primary at the beginning of the process",
/// SwitchoverGlobalCluster) loses nothing whatever the lag: an unknown one does not stop it.
pub fn failback_ready(switchover: bool, ev: &Evidence) -> Result<(), String> {
    let Some(t) = &ev.target else { return Err("failback refused: the way back is gone".into()) };
    if !t.available() {
        return Err(format!("failback refused: the way back {} is {}, not available", t.id, t.status));
    }
    let bound = FAILBACK_LAG_MAX.as_secs() as f64;
    match ev.replica_lag_seconds {
        Some(l) if (0.0..=bound).contains(&l) => Ok(()),
        Some(l) if l < 0.0 => Err(format!("failback refused: {}'s replication is broken (lag {l})", t.id)),
        Some(l) => Err(format!(
            "failback refused: the way back {} is {l:.0} s behind (at most {bound:.0} s for a planned move): wait \
             for it to catch up",
            t.id
        )),
        None if switchover => Ok(()),
        None => Err(format!(
            "failback refused: {}'s replication lag is unknown, so what the move would lose is too: wait for a \
             datapoint",
            t.id
        )),
    }
}

/// Preflight's verdict: the plan and the expected data loss, or why acting can't work.
pub fn preflight(db: &Database, exec: &Execution, ev: &Evidence, now: DateTime<Utc>) -> Result<Preflight, String> {
    use Strategy::*;
    let target = ev.target.as_ref();
    let need_available = |what: &str| -> Result<&DbState, String> {
        match target {
            None => Err(format!("{what} does not exist")),
            Some(t) if !t.available() => Err(format!("{what} {} is {}, not available", t.id, t.status)),
            Some(t) => Ok(t),
        }
    };
    let zero = |why: &str| loss(db, now, Some(0), why.to_owned());
    let mut before = None;
    let mut snapshot = None;
    let mut spec = None;
    let tags = [("lifeboat:incident", exec.incident_id.as_str()), ("lifeboat:database", db.name.as_str())];
    let shape = |engine: Option<&str>| match (db.is_cluster(), engine) {
        (false, _) => Ok(Shape::Instance),
        (true, Some(e)) => Ok(Shape::of_cluster(e)),
        (true, None) => Err("the cluster's engine is unknown: can't tell Aurora from a Multi-AZ DB cluster".to_owned()),
    };
    let (plan, (secs, basis, within, recovered_to)) = match exec.strategy {
        PromoteReplica => {
            let t = need_available("the replica")?;
            // A rebuilt or misconfigured target would get DNS, the parameter and "resolved"
            // without holding this database's data.
            if !t.replicates_from(&db.source) {
                return Err(format!(
                    "{} is not a replica of {} (it replicates from {}): promoting it would not recover this database",
                    t.id,
                    db.source,
                    t.replica_of.as_deref().unwrap_or("nothing")
                ));
            }
            let lag = ev.replica_lag_seconds.map(|l| l.ceil() as i64);
            let basis = match lag {
                Some(l) => format!("replica lag {l}s (CloudWatch ReplicaLag)"),
                None => "replica lag unknown (no ReplicaLag datapoint)".to_owned(),
            };
            (format!("promote replica {} to a standalone primary", t.id), loss(db, now, lag, basis))
        }
        AuroraFailover => {
            let t = need_available("the cluster")?;
            before = t.writer.clone();
            (
                format!("fail cluster {} over from writer {} to a reader", t.id, t.writer.as_deref().unwrap_or("?")),
                zero("none: Aurora replicas share the cluster volume"),
            )
        }
        GlobalSwitchover => {
            let t = need_available("the secondary cluster")?;
            (
                format!("switch the global database over to {} (planned)", t.id),
                zero("none: a switchover waits for replication"),
            )
        }
        GlobalFailover => {
            let t = need_available("the secondary cluster")?;
            (
                format!("fail the global database over to {} (AllowDataLoss)", t.id),
                loss(db, now, None, "up to the global database's replication lag (typically under a second)".into()),
            )
        }
        RestoreLatestCopy => {
            let Some(copy) = &ev.copy else {
                return Err(match exec.restore_time {
                    Some(t) => format!("no available Lifeboat DR copy taken at or before {t}"),
                    None => "no available Lifeboat DR copy to restore".into(),
                });
            };
            let point = copy.restore_point().unwrap_or(now);
            snapshot = Some(copy.arn.to_string());
            let secs = (now - point).num_seconds().max(0);
            let r = db.failover.as_ref().and_then(|f| f.restore.as_ref()).ok_or("no failover.restore")?;
            let region = copy.arn.region.clone();
            let settings = Settings::from_config(db, r, &region, restore::default_multi_az(db));
            let s = RestoreSpec::new(
                &region,
                shape(ev.copy_engine.as_deref())?,
                &new_database_id(&exec.incident_id),
                Origin::Snapshot { arn: copy.arn.to_string() },
                settings,
                "failover.restore",
            )
            .tagged(&tags)
            .checked_as(db);
            let plan = format!("restore DR copy {} into {} in {region} {}", copy.arn.id, s.id, s.describe());
            spec = Some(s);
            (
                plan,
                loss(
                    db,
                    now,
                    Some(secs),
                    match exec.restore_time {
                        Some(t) => format!(
                            "chosen: the newest DR copy at or before {}, which holds data until {}",
                            t.format("%Y-%m-%d %H:%M:%S UTC"),
                            point.format("%Y-%m-%d %H:%M:%S UTC")
                        ),
                        None => {
                            format!("the newest DR copy holds data until {}", point.format("%Y-%m-%d %H:%M:%S UTC"))
                        }
                    },
                ),
            )
        }
        RebootMultiAz => {
            let t = need_available("the instance")?;
            if !t.multi_az {
                return Err(format!("{} is not Multi-AZ: a forced failover needs a standby", t.id));
            }
            before = t.availability_zone.clone();
            (format!("reboot {} with failover to its standby", t.id), zero("none: the Multi-AZ standby is synchronous"))
        }
        PointInTime => {
            let t = need_available("the source")?;
            let Some(to) = exec.restore_time else {
                return Err("point-in-time needs restore_time".into());
            };
            if let Some(latest) = t.latest_restorable {
                if to > latest {
                    return Err(format!("restore_time {to} is after the latest restorable time {latest}"));
                }
            }
            let secs = (now - to).num_seconds().max(0);
            // In the source's own region and network, with its own groups: read from it.
            let s = RestoreSpec::new(
                &db.source.region,
                shape(t.engine.as_deref())?,
                &new_database_id(&exec.incident_id),
                Origin::PointInTime { source: t.id.clone(), time: to },
                t.settings.clone(),
                &format!("the source {}", t.id),
            )
            .tagged(&tags)
            .checked_as(db);
            let plan =
                format!("restore {} as of {} into {} {}", t.id, to.format("%Y-%m-%d %H:%M:%S UTC"), s.id, s.describe());
            spec = Some(s);
            (plan, (Some(secs), "chosen: everything after restore_time is left behind".to_owned(), None, Some(to)))
        }
    };
    Ok(Preflight {
        plan,
        expected_loss_seconds: secs,
        loss_basis: basis,
        within_rpo: within,
        snapshot,
        before,
        recovered_to,
        restore: spec,
    })
}

/// The instance (or cluster) a restore creates, named from the incident so a retried restore
/// finds its own work: at most 63 letters, digits and single hyphens, starting with a letter.
pub fn new_database_id(incident_id: &str) -> String {
    let mut out = String::from("lf-");
    for c in incident_id.to_ascii_lowercase().chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    // Ids end with their time and hash (`-20261125t1942z-3f2a`, 20 characters): keep those,
    // shorten the database name before them. `out` is ASCII, so byte offsets are characters.
    if out.len() > 63 {
        const TAIL: usize = 20;
        let tail = out[out.len() - TAIL..].to_owned();
        out.truncate(63 - TAIL);
        out = format!("{}{tail}", out.trim_end_matches('-'));
    }
    out.trim_end_matches('-').to_owned()
}

/// The DR region a restore-latest-copy restores in: the one `restore.region` names, or the
/// database's only DR region (config validation requires one of the two).
pub fn restore_region(db: &Database) -> Option<&str> {
    let named = db.failover.as_ref().and_then(|f| f.restore.as_ref()).and_then(|r| r.region.as_deref());
    named.or_else(|| (db.copy_to.len() == 1).then(|| db.copy_to[0].region.as_str()))
}

/// The region whose stack runs `db`'s recovery by `strategy`: where the database that takes over
/// lives (the replica, the global secondary, the DR copy's region), or the source's own region
/// for the strategies that act there. With a stack in several regions (`LIFEBOAT_RECOVERS=own`),
/// only this region's opens an incident for it, so two regions never run one database's
/// recovery: ownership is decided by the config both read, not by a race between their tables.
pub fn recovered_from(db: &Database, strategy: Strategy) -> &str {
    use Strategy::*;
    let target = db.failover.as_ref().and_then(|f| f.target.as_ref()).map(|t| t.region.as_str());
    match strategy {
        PromoteReplica | GlobalSwitchover | GlobalFailover => target.unwrap_or(&db.source.region),
        RestoreLatestCopy => restore_region(db).unwrap_or(&db.source.region),
        AuroraFailover | RebootMultiAz | PointInTime => &db.source.region,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Availability {
    pub available: bool,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsChange {
    /// Route 53's change id, or none when the record is not Lifeboat's to move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    pub insync: bool,
}

/// Whether a DNS move left for people at `left` is still worth looking for at `now`: for
/// `DNS_TIMEOUT`; after that the failover fails (traffic never moved) rather than staying open
/// with nobody looking.
pub fn dns_still_awaited(left: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    (now - left).to_std().is_ok_and(|waited| waited < DNS_TIMEOUT) || now < left
}

/// The status step's verdict: still coming up (wait and look again), up, or never coming up.
pub fn judge(
    state: Option<&DbState>,
    started: DateTime<Utc>,
    timeout: Duration,
    now: DateTime<Utc>,
) -> Result<Availability, String> {
    match state {
        Some(s) if s.available() && s.endpoint.is_some() => {
            Ok(Availability { available: true, status: s.status.clone(), endpoint: s.endpoint.clone() })
        }
        Some(s) if hopeless(&s.status) => Err(format!("{} is {}: it will not become available", s.id, s.status)),
        _ if (now - started).to_std().is_ok_and(|waited| waited > timeout) => Err(format!(
            "the new primary is not available {} after the recovery started",
            crate::text::human(chrono::Duration::from_std(timeout).unwrap_or_default())
        )),
        Some(s) => Ok(Availability { available: false, status: s.status.clone(), endpoint: None }),
        None => Ok(Availability { available: false, status: "not visible yet".into(), endpoint: None }),
    }
}

/// The AWS CLI command that moves `d.record` to `endpoint`, for people to run when the DNS step
/// could not: the same UPSERT Lifeboat makes (Route 53's control plane is in us-east-1 only), or
/// the same routing control flip, on the endpoint to try first (any other of the cluster's does).
pub fn dns_command(d: &Dns, endpoint: &str, first: &str, last: &str) -> String {
    if let (DnsMode::RoutingControl, Some(rc), Some(at)) =
        (d.mode, &d.routing_controls, d.endpoints_in_order(first, last).first())
    {
        let entries = serde_json::json!([
            {"RoutingControlArn": rc.on, "RoutingControlState": "On"},
            {"RoutingControlArn": rc.off, "RoutingControlState": "Off"}]);
        return format!(
            "aws route53-recovery-cluster update-routing-control-states --update-routing-control-state-entries \
             '{entries}' --region {} --endpoint-url {}",
            at.region, at.url
        );
    }
    let batch = serde_json::json!({"Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
        "Name": d.record, "Type": "CNAME", "TTL": d.ttl, "ResourceRecords": [{"Value": endpoint}]}}]});
    format!("aws route53 change-resource-record-sets --hosted-zone-id {} --change-batch '{batch}'", d.zone_id)
}

/// The steps a failover records on the incident's timeline, by key, in order, with what people
/// call them.
pub const STEPS: [(&str, &str); 7] = [
    ("step:preflight", "preflight checks"),
    ("approval:", "approval"),
    ("step:act", "recovery action"),
    ("step:available", "new primary available"),
    ("step:dns", "DNS record moved"),
    ("step:endpoint", "endpoint parameter written"),
    ("step:verified", "verified"),
];

/// What was done and what was not, from the timeline: the failed message says both.
pub fn done_and_left(timeline: &[Entry], approval_required: bool) -> (Vec<&'static str>, Vec<&'static str>) {
    STEPS
        .iter()
        .filter(|(key, _)| approval_required || *key != "approval:")
        .map(|(key, name)| (timeline.iter().any(|e| e.key.starts_with(key)), *name))
        .fold((Vec::new(), Vec::new()), |(mut done, mut left), (is_done, name)| {
            if is_done {
                done.push(name);
            } else {
                left.push(name);
            }
            (done, left)
        })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dns_move_left_for_people_is_awaited_for_half_an_hour_then_given_up() {
        let left = chrono::DateTime::from_timestamp(1_795_549_500, 0).unwrap();
        assert!(super::dns_still_awaited(left, left));
        assert!(super::dns_still_awaited(left, left + chrono::Duration::minutes(29)));
        assert!(!super::dns_still_awaited(left, left + chrono::Duration::minutes(30)));
        assert!(!super::dns_still_awaited(left, left + chrono::Duration::hours(5)));
    }

    use super::*;
    use crate::config::Config;
    use crate::failover::{classify, Start};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 0).unwrap()
    }

    fn config() -> Config {
        Config::from_yaml(include_str!("../../../../examples/lifeboat.yaml")).unwrap()
    }

    fn exec_for(payload: Value) -> (Config, Execution) {
        let config = config();
        let Start::Failover(mut reqs) = classify(&config, &payload, now()).unwrap() else { panic!("ignored") };
        let req = reqs.remove(0);
        let db = config.database_named(&req.database).unwrap();
        let exec = Execution::new(db, &req, "orders-prod-20261125T1942Z-3f2a", Duration::from_secs(1));
        (config.clone(), exec)
    }

    fn available(id: &str) -> DbState {
        DbState {
            id: id.into(),
            status: "available".into(),
            endpoint: Some(format!("{id}.x.rds.amazonaws.com")),
            ..Default::default()
        }
    }

    #[test]
    fn production_always_waits_for_approval_and_so_does_an_overridden_strategy() {
        let config = config();
        for db in &config.databases {
            if db.tier == Tier::Production {
                for s in [Strategy::PromoteReplica, Strategy::RestoreLatestCopy, Strategy::PointInTime] {
                    assert!(approval_required(db, s), "{}", db.name);
                }
            }
        }
        let staging = Config::from_yaml(
            "databases:\n  - name: staging\n    source: arn:aws:rds:us-east-1:123456789012:db:staging\n    tier: non-production\n    rpo: 1h\n    rto: 4h\n    failover: { strategy: reboot-multi-az, approval: auto }\n",
        )
        .unwrap();
        let db = &staging.databases[0];
        assert!(!approval_required(db, Strategy::RebootMultiAz));
        assert!(approval_required(db, Strategy::PointInTime), "an override needs a person");
    }

    #[test]
    fn preflight_states_the_plan_and_the_expected_loss_or_refuses() {
        let (config, mut exec) =
            exec_for(serde_json::json!({"database": "orders-prod", "reason": "r", "requested_by": "a"}));
        let db = config.database_named("orders-prod").unwrap();
        exec.strategy = Strategy::PromoteReplica;
        let replica = DbState { replica_of: Some(db.source.to_string()), ..available("orders-replica") };
        let ev = Evidence { target: Some(replica.clone()), replica_lag_seconds: Some(3.2), ..Default::default() };
        let p = preflight(db, &exec, &ev, now()).unwrap();
        assert_eq!(p.expected_loss_seconds, Some(4));
        assert_eq!(p.within_rpo, Some(true));
        assert_eq!(p.recovered_to, Some(now() - chrono::Duration::seconds(4)));
        assert!(p.plan.contains("orders-replica"), "{}", p.plan);

        let lagging = Evidence { replica_lag_seconds: Some(3600.0), ..ev.clone() };
        assert_eq!(preflight(db, &exec, &lagging, now()).unwrap().within_rpo, Some(false));

        // A target rebuilt from another source, or already standalone, holds other data.
        for other in [Some("arn:aws:rds:us-east-1:123456789012:db:orders-staging"), None] {
            let stale = Evidence {
                target: Some(DbState { replica_of: other.map(Into::into), ..replica.clone() }),
                ..ev.clone()
            };
            let err = preflight(db, &exec, &stale, now()).unwrap_err();
            assert!(err.contains("is not a replica of arn:aws:rds:us-east-1:123456789012:db:orders-prod"), "{err}");
        }
        let same_region = Evidence {
            target: Some(DbState { replica_of: Some("orders-prod".into()), ..replica.clone() }),
            ..ev.clone()
        };
        assert!(preflight(db, &exec, &same_region, now()).is_ok(), "a same-region source is named by its identifier");

        let down = Evidence { target: Some(DbState { status: "storage-full".into(), ..replica.clone() }), ..ev };
        let err = preflight(db, &exec, &down, now()).unwrap_err();
        assert!(err.contains("storage-full"), "{err}");
        assert!(preflight(db, &exec, &Evidence::default(), now()).unwrap_err().contains("does not exist"));

        exec.strategy = Strategy::RebootMultiAz;
        let single = Evidence { target: Some(available("orders-prod")), ..Default::default() };
        assert!(preflight(db, &exec, &single, now()).unwrap_err().contains("not Multi-AZ"));
        let multi = Evidence {
            target: Some(DbState {
                multi_az: true,
                availability_zone: Some("us-east-1a".into()),
                ..available("orders-prod")
            }),
            ..Default::default()
        };
        let p = preflight(db, &exec, &multi, now()).unwrap();
        assert_eq!((p.expected_loss_seconds, p.before.as_deref()), (Some(0), Some("us-east-1a")));

        exec.strategy = Strategy::PointInTime;
        exec.restore_time = Some(now() - chrono::Duration::minutes(10));
        let latest = Evidence {
            target: Some(DbState {
                latest_restorable: Some(now() - chrono::Duration::minutes(20)),
                ..available("orders-prod")
            }),
            ..Default::default()
        };
        assert!(preflight(db, &exec, &latest, now()).unwrap_err().contains("latest restorable"));
    }

    #[test]
    fn restore_names_are_valid_rds_identifiers_and_stable() {
        let id = new_database_id("orders-prod-20261125T1942Z-3f2a");
        assert_eq!(id, "lf-orders-prod-20261125t1942z-3f2a");
        let long = new_database_id(&format!("{}--x-20261125T1942Z-3f2a", "a".repeat(80)));
        assert!(long.len() <= 63 && long.ends_with("-20261125t1942z-3f2a") && !long.contains("--"), "{long}");
    }

    proptest::proptest! {
        #[test]
        fn every_id_makes_a_valid_rds_identifier(id in ".{0,120}") {
            let out = new_database_id(&id);
            proptest::prop_assert!(out.len() <= 63 && out.starts_with("lf") && !out.contains("--") && !out.ends_with('-'), "{}", out);
            proptest::prop_assert!(out.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{}", out);
        }
    }

    #[test]
    fn waiting_ends_with_available_or_a_clear_failure() {
        let t = Duration::from_secs(600);
        let started = now();
        assert!(judge(Some(&available("x")), started, t, now()).unwrap().available);
        let creating = DbState { status: "creating".into(), endpoint: None, ..available("x") };
        assert!(!judge(Some(&creating), started, t, now()).unwrap().available);
        assert!(!judge(None, started, t, now()).unwrap().available);
        let late = now() + chrono::Duration::minutes(11);
        assert!(judge(Some(&creating), started, t, late).unwrap_err().contains("not available 10m"));
        let failed = DbState { status: "incompatible-restore".into(), ..creating };
        assert!(judge(Some(&failed), started, t, now()).unwrap_err().contains("incompatible-restore"));
    }

    #[test]
    fn each_recovery_has_one_owning_region_where_the_database_that_takes_over_lives() {
        let config = config();
        let orders = config.database_named("orders-prod").unwrap();
        assert_eq!(recovered_from(orders, Strategy::PromoteReplica), "us-west-2", "the replica's region");
        assert_eq!(recovered_from(orders, Strategy::PointInTime), "us-east-1", "in the source's region");
        assert_eq!(recovered_from(orders, Strategy::RebootMultiAz), "us-east-1");
        assert_eq!(recovered_from(orders, Strategy::RestoreLatestCopy), "us-west-2", "its only DR region");
    }

    #[test]
    fn the_dns_command_is_the_upsert_lifeboat_would_have_made() {
        let d = Dns {
            zone_id: "Z0123".into(),
            record: "db.orders.internal".into(),
            ttl: 60,
            mode: DnsMode::Upsert,
            routing_controls: None,
        };
        let c = dns_command(&d, "orders-replica.x.us-west-2.rds.amazonaws.com", "us-west-2", "us-east-1");
        assert!(
            c.starts_with("aws route53 change-resource-record-sets --hosted-zone-id Z0123 --change-batch '"),
            "{c}"
        );
        let batch: Value = serde_json::from_str(c.split('\'').nth(1).unwrap()).unwrap();
        let set = &batch["Changes"][0]["ResourceRecordSet"];
        assert_eq!(batch["Changes"][0]["Action"], "UPSERT");
        assert_eq!(
            (set["Name"].as_str(), set["Type"].as_str(), set["TTL"].as_u64()),
            (Some("db.orders.internal"), Some("CNAME"), Some(60))
        );
        assert_eq!(set["ResourceRecords"][0]["Value"], "orders-replica.x.us-west-2.rds.amazonaws.com");
    }

    #[test]
    fn with_routing_controls_the_command_flips_both_at_an_endpoint_outside_the_failing_region() {
        let rc =
            |id: &str| format!("arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol/{id}");
        let endpoint = |region: &str| crate::config::failover::ClusterEndpoint {
            region: region.into(),
            url: format!("https://host-x.{region}.example.aws/v1"),
        };
        let d = Dns {
            zone_id: "Z0123".into(),
            record: "db.orders.internal".into(),
            ttl: 60,
            mode: DnsMode::RoutingControl,
            routing_controls: Some(crate::config::failover::RoutingControls {
                on: rc("west"),
                off: rc("east"),
                cluster_endpoints: vec![endpoint("us-east-1"), endpoint("eu-west-1"), endpoint("us-west-2")],
            }),
        };
        let order: Vec<&str> =
            d.endpoints_in_order("us-west-2", "us-east-1").iter().map(|e| e.region.as_str()).collect();
        assert_eq!(order, ["us-west-2", "eu-west-1", "us-east-1"]);
        let c = dns_command(&d, "unused", "ap-southeast-2", "us-east-1");
        assert!(c.contains("--region eu-west-1 --endpoint-url https://host-x.eu-west-1.example.aws/v1"), "{c}");
        let entries: Value = serde_json::from_str(c.split('\'').nth(1).unwrap()).unwrap();
        assert_eq!(entries[0]["RoutingControlArn"], rc("west"));
        assert_eq!(entries[0]["RoutingControlState"], "On");
        assert_eq!(entries[1]["RoutingControlState"], "Off");
        assert!(d.plan().contains("no Route 53 control plane call"), "{}", d.plan());
    }

    #[test]
    fn a_global_secondary_is_the_new_primary_only_once_it_writes() {
        let t = Duration::from_secs(600);
        let mut secondary = available("catalog-west");
        global_writer_yet(&mut secondary, false);
        let a = judge(Some(&secondary), now(), t, now()).unwrap();
        assert!(!a.available && a.status.contains("not yet the global database's writer"), "{a:?}");
        let mut writing = available("catalog-west");
        global_writer_yet(&mut writing, true);
        assert!(judge(Some(&writing), now(), t, now()).unwrap().available);
    }

    #[test]
    fn a_failure_says_what_was_done_and_what_was_not() {
        let tl = [
            Entry::new(now(), "t", "declared", "declared"),
            Entry::new(now(), "s", "preflight", "step:preflight"),
            Entry::new(now(), "alice", "approved", "approval:ab12"),
            Entry::new(now(), "s", "promoted", "step:act"),
        ];
        let (done, left) = done_and_left(&tl, true);
        assert_eq!(done, ["preflight checks", "approval", "recovery action"]);
        assert_eq!(left, ["new primary available", "DNS record moved", "endpoint parameter written", "verified"]);
        let (done, _) = done_and_left(&tl[..2], false);
        assert_eq!(done, ["preflight checks"]);
    }

    #[test]
    fn step_requests_parse_strictly() {
        let (_, exec) = exec_for(serde_json::json!({"database": "orders-prod", "reason": "r", "requested_by": "a"}));
        let payload = serde_json::json!({"action": "dns-status", "execution": exec});
        assert_eq!(parse(&payload).unwrap().action, Action::DnsStatus);
        assert!(parse(&serde_json::json!({"action": "explode", "execution": exec})).is_err());
        assert!(parse(&serde_json::json!({"action": "act"})).is_err());
    }
}
