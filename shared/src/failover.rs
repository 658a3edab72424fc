//! Failover: each database's plan as its config states it (strategy, target, approval, what
//! starts it, the endpoints that follow), and what starts one: an alarm going into ALARM, an AWS
//! Health issue, or a person's request. Pure; the failover functions (issue 9) act on these.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::arn::{RdsArn, RdsResource};
use crate::config::{Config, Database, Tier};
use crate::event::EventError;
use crate::health::{ClusterMembers, HealthEvent};
use crate::incident::{kebab_names, Kind};

pub mod steps;

pub const ALARM_EVENT: &str = "CloudWatch Alarm State Change";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Promote a read replica (instance), or an Aurora cross-region replica cluster.
    PromoteReplica,
    /// `FailoverDBCluster` within the region.
    AuroraFailover,
    /// Aurora global database, planned: no data loss.
    GlobalSwitchover,
    /// Aurora global database, unplanned (`AllowDataLoss`).
    GlobalFailover,
    /// Restore the newest available Lifeboat DR copy into a new instance (or cluster + instance).
    RestoreLatestCopy,
    /// `RebootDBInstance` with `ForceFailover`: the endpoint stays.
    RebootMultiAz,
    /// Restore to a given time into a new database: manual requests only (data corruption).
    PointInTime,
}

kebab_names!(Strategy, "promote-replica, aurora-failover, global-switchover, global-failover, restore-latest-copy, reboot-multi-az, point-in-time",
    PromoteReplica => "promote-replica", AuroraFailover => "aurora-failover",
    GlobalSwitchover => "global-switchover", GlobalFailover => "global-failover",
    RestoreLatestCopy => "restore-latest-copy", RebootMultiAz => "reboot-multi-az",
    PointInTime => "point-in-time");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    Required,
    Auto,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    pub strategy: Strategy,
    /// The replica, cluster or global cluster member that takes over (not for restores or reboots).
    #[serde(default, deserialize_with = "de_opt_arn")]
    pub target: Option<RdsArn>,
    pub approval: Approval,
    #[serde(default = "default_approval_timeout", deserialize_with = "crate::config::de_duration")]
    pub approval_timeout: Duration,
    #[serde(default)]
    pub triggers: Triggers,
    pub dns: Option<Dns>,
    /// SSM parameter the applications read the endpoint from.
    pub endpoint_parameter: Option<String>,
    pub restore: Option<Restore>,
}

fn default_approval_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

fn de_opt_arn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RdsArn>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| s.parse().map_err(serde::de::Error::custom)).transpose()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// CloudWatch alarm names whose move into ALARM starts a failover.
    #[serde(default)]
    pub alarms: Vec<String>,
    /// An open AWS Health RDS issue in the database's region, naming it, starts one.
    #[serde(default)]
    pub health: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    pub zone_id: String,
    pub record: String,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
}

fn default_ttl() -> u32 {
    60
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    /// DR region to restore in; needed only when the database copies to several.
    pub region: Option<String>,
    pub instance_class: String,
    pub subnet_group: String,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// In the DR region: RDS would otherwise restore with its default groups, losing settings
    /// such as `rds.force_ssl` or `max_connections` (see `restore.rs`).
    pub parameter_group: Option<String>,
    /// Aurora and Multi-AZ DB clusters.
    pub cluster_parameter_group: Option<String>,
    /// Defaults to `copy_to[].option_group` of the region (TDE copies need one to restore).
    pub option_group: Option<String>,
    /// Default: Multi-AZ for a production database's failover, single-AZ for a drill.
    pub multi_az: Option<bool>,
}

/// Why `db.failover` can't work as written; `None` when it can.
pub fn invalid(db: &Database, f: &Failover) -> Option<(&'static str, String)> {
    use Strategy::*;
    if f.approval == Approval::Auto && db.tier == Tier::Production {
        return Some(("approval", "must be `required` for a production database".into()));
    }
    let cluster = db.is_cluster();
    let target = f.target.as_ref();
    let needs = |kind: RdsResource, what: &str| -> Option<(&'static str, String)> {
        match target {
            None => Some(("target", format!("{} needs the {what} that takes over", f.strategy))),
            Some(t) if t.resource != kind => {
                Some(("target", format!("{} takes over with a {what}, not `{t}`", f.strategy)))
            }
            Some(t) if *t == db.source => Some(("target", "is the source itself".into())),
            Some(t) if t.account != db.source.account || t.partition != db.source.partition => {
                Some(("target", "must be in the source's account and partition".into()))
            }
            Some(_) => None,
        }
    };
    let problem = match f.strategy {
        PromoteReplica if cluster => needs(RdsResource::Cluster, "replica cluster"),
        PromoteReplica => needs(RdsResource::Instance, "read replica instance"),
        AuroraFailover if !cluster => Some(("strategy", "aurora-failover needs a cluster source".into())),
        AuroraFailover => match target {
            Some(t) if t.resource != RdsResource::Instance || t.region != db.source.region => Some((
                "target",
                "aurora-failover's optional target is an instance of the cluster, in its region".into(),
            )),
            _ => None,
        },
        GlobalSwitchover | GlobalFailover if !cluster => {
            Some(("strategy", format!("{} needs an Aurora global database (a cluster source)", f.strategy)))
        }
        GlobalSwitchover | GlobalFailover => needs(RdsResource::Cluster, "secondary cluster in another region")
            .or_else(|| {
                (target.is_some_and(|t| t.region == db.source.region))
                    .then(|| ("target", "must be the secondary cluster, in another region".into()))
            }),
        RestoreLatestCopy => match &f.restore {
            None => {
                Some(("restore", "restore-latest-copy needs instance_class and subnet_group to restore into".into()))
            }
            Some(_) if db.copy_to.is_empty() => {
                Some(("strategy", "restore-latest-copy needs copy_to: there are no DR copies".into()))
            }
            Some(r) => match &r.region {
                Some(region) if !db.copy_to.iter().any(|t| &t.region == region) => {
                    Some(("restore.region", format!("{region} is not one of copy_to's regions")))
                }
                None if db.copy_to.len() > 1 => Some(("restore.region", "name one of copy_to's regions".into())),
                _ => None,
            },
        },
        RebootMultiAz if cluster => Some(("strategy", "reboot-multi-az is for DB instances".into())),
        RebootMultiAz => None,
        PointInTime => {
            Some(("strategy", "point-in-time is for manual requests only (`strategy` in the request)".into()))
        }
    };
    if problem.is_some() {
        return problem;
    }
    // The machine's own timeout runs no Catch: an execution that reached it would leave the
    // incident open and nobody told, so the waits the config asks for must fit inside it.
    let worst = f.approval_timeout + steps::recovery_wait(db.rto) + steps::STEPS_BUDGET;
    if worst > steps::MACHINE_TIMEOUT {
        let h = |d: Duration| crate::message::human(chrono::Duration::from_std(d).unwrap_or_default());
        return Some((
            "approval_timeout",
            format!(
                "{} to approve plus up to {} for the recovery (twice the RTO) and {} for the other steps is more \
                 than the failover state machine's {}: shorten approval_timeout or the rto",
                h(f.approval_timeout),
                h(steps::recovery_wait(db.rto)),
                h(steps::STEPS_BUDGET),
                h(steps::MACHINE_TIMEOUT)
            ),
        ));
    }
    if let Some(dns) = &f.dns {
        if dns.zone_id.trim().is_empty() || dns.record.trim().is_empty() {
            return Some(("dns", "needs zone_id and record".into()));
        }
    }
    if let Some(p) = &f.endpoint_parameter {
        if !p.starts_with('/') {
            return Some(("endpoint_parameter", format!("`{p}` is not an SSM parameter path (starting with /)")));
        }
    }
    None
}

/// What starts a failover, as the trigger classifies it: one request per database (an AWS Health
/// issue may touch several, and EventBridge delivers it once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    Failover(Vec<Request>),
    Ignored { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub database: String,
    pub kind: Kind,
    pub strategy: Strategy,
    /// What happened, for the incident's first entry.
    pub reason: String,
    pub by: String,
    /// The trigger's own identity: the same trigger delivered again opens nothing new.
    pub seed: String,
    pub restore_time: Option<DateTime<Utc>>,
    /// When it began, where the trigger itself says so and every redelivery or update says the
    /// same (a Health issue's `startTime`); else the envelope's time or now.
    pub began: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manual {
    database: String,
    reason: String,
    requested_by: String,
    strategy: Option<String>,
    restore_time: Option<DateTime<Utc>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: AlarmState,
    previous_state: Option<AlarmState>,
}

#[derive(Deserialize)]
struct AlarmState {
    value: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    timestamp: String,
}

/// Classify what reached the failover trigger. `now` bounds a point-in-time request.
pub fn classify(config: &Config, payload: &Value, now: DateTime<Utc>) -> Result<Start, EventError> {
    classify_with(config, payload, now, &ClusterMembers::new())
}

/// As `classify`, knowing the instances of protected Aurora clusters a Health event may name.
pub fn classify_with(
    config: &Config,
    payload: &Value,
    now: DateTime<Utc>,
    members: &ClusterMembers,
) -> Result<Start, EventError> {
    let ignore = |reason: String| Ok(Start::Ignored { reason });
    if payload.get("detail-type").and_then(Value::as_str) == Some(ALARM_EVENT) {
        let detail: AlarmDetail = serde_json::from_value(payload["detail"].clone())
            .map_err(|e| EventError(format!("{ALARM_EVENT} without an alarm detail: {e}")))?;
        if detail.state.value != "ALARM" {
            return ignore(format!("alarm {} went to {}, not ALARM", detail.alarm_name, detail.state.value));
        }
        if detail.previous_state.as_ref().is_some_and(|p| p.value == "ALARM") {
            return ignore(format!("alarm {} was already in ALARM", detail.alarm_name));
        }
        let Some((db, f)) = config.databases.iter().find_map(|db| {
            db.failover.as_ref().filter(|f| f.triggers.alarms.contains(&detail.alarm_name)).map(|f| (db, f))
        }) else {
            return ignore(format!("alarm {} is in no database's failover.triggers.alarms", detail.alarm_name));
        };
        return Ok(Start::Failover(vec![Request {
            database: db.name.clone(),
            kind: Kind::Outage,
            strategy: f.strategy,
            reason: format!("CloudWatch alarm {} is ALARM: {}", detail.alarm_name, detail.state.reason),
            by: "CloudWatch".into(),
            seed: format!("alarm:{}:{}", detail.alarm_name, detail.state.timestamp),
            restore_time: None,
            began: None,
        }]));
    }
    if let Some(h) = HealthEvent::parse(payload)? {
        if h.is_closed() || h.status_code != "open" {
            return ignore(format!("{} is {}, not open", h.event_arn, h.status_code));
        }
        let affected = match h.affected_with(config, members) {
            Ok(dbs) => dbs,
            Err(reason) => return ignore(reason),
        };
        // Every update of the issue carries a new envelope `time` ("the time at which the
        // notification was sent"): the incident is named from the issue's own start and ARN, so
        // an issue starts at most one failover per database, also after that incident closed.
        let began = h.began();
        let requests: Vec<Request> = affected
            .into_iter()
            .filter_map(|db| db.failover.as_ref().filter(|f| f.triggers.health).map(|f| (db, f)))
            .map(|(db, f)| Request {
                database: db.name.clone(),
                kind: Kind::Region,
                strategy: f.strategy,
                reason: format!("AWS Health: {}", h.description()),
                by: "AWS Health".into(),
                seed: format!("health:{}", h.event_arn),
                restore_time: None,
                began,
            })
            .collect();
        if requests.is_empty() {
            return ignore(format!("{} touches no database with failover.triggers.health", h.event_arn));
        }
        return Ok(Start::Failover(requests));
    }
    if payload.get("detail-type").is_some() {
        return ignore(format!(
            "`{}` is not an event that starts a failover",
            payload["detail-type"].as_str().unwrap_or("?")
        ));
    }
    let m: Manual = serde_json::from_value(payload.clone()).map_err(|e| {
        EventError(format!(
            r#"expected an alarm or Health event, or {{"database", "reason", "requested_by", "strategy"?, "restore_time"?}}: {e}"#
        ))
    })?;
    let Some(db) = config.database_named(&m.database) else {
        return Err(EventError(format!("no database named `{}` in Lifeboat's config", m.database)));
    };
    if m.reason.trim().is_empty() || m.requested_by.trim().is_empty() {
        return Err(EventError("reason and requested_by must say why and who".into()));
    }
    let strategy = match (&m.strategy, db.failover.as_ref()) {
        (Some(s), _) => s.parse().map_err(|e| EventError(format!("strategy: {e}")))?,
        (None, Some(f)) => f.strategy,
        (None, None) => {
            return Err(EventError(format!("{} has no failover section and the request names no strategy", db.name)))
        }
    };
    match (strategy, m.restore_time) {
        (Strategy::PointInTime, None) => return Err(EventError("point-in-time needs restore_time".into())),
        (Strategy::PointInTime, Some(t)) if t >= now => {
            return Err(EventError(format!("restore_time {t} is not in the past")));
        }
        (Strategy::PointInTime, Some(_)) => {}
        (_, Some(_)) => return Err(EventError("restore_time is only for the point-in-time strategy".into())),
        (_, None) => {}
    }
    Ok(Start::Failover(vec![Request {
        database: db.name.clone(),
        kind: if strategy == Strategy::PointInTime { Kind::Data } else { Kind::Manual },
        strategy,
        reason: m.reason,
        by: m.requested_by,
        seed: format!("manual:{}", payload),
        restore_time: m.restore_time,
        began: None,
    }]))
}

/// Step Functions execution names are 1 to 80 characters (StartExecution); letters, digits, `-`
/// and `_` only, so CloudWatch Logs takes them too.
pub const EXECUTION_NAME_MAX: usize = 80;

/// The Step Functions execution name for an incident: the same incident never starts two, and
/// two incidents never share one. Incident ids end with their minute and hash
/// (`-20261125T1942Z-3f2a`): that tail is kept whole and the database name before it shortened,
/// so long names can't make incidents of the same hour collide (a closed execution's name
/// answers ExecutionAlreadyExists, and no failover would run).
pub fn execution_name(incident_id: &str) -> String {
    fitted_name(incident_id, 20)
}

/// `name` as an execution name: cleaned, and when too long, shortened before its last
/// `keep_tail` characters (the unique part), with a hash of the whole name where it was cut.
pub fn fitted_name(name: &str, keep_tail: usize) -> String {
    use sha2::{Digest, Sha256};
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    if clean.len() <= EXECUTION_NAME_MAX {
        return clean;
    }
    // ASCII now, so byte offsets are characters.
    let (head, tail) = clean.split_at(clean.len() - keep_tail.min(EXECUTION_NAME_MAX - 10));
    let hash: String = Sha256::digest(name.as_bytes()).iter().take(2).map(|b| format!("{b:02x}")).collect();
    let room = EXECUTION_NAME_MAX - tail.len() - hash.len() - 1;
    format!("{}-{hash}{tail}", &head[..room])
}

#[cfg(test)]
mod tests;
