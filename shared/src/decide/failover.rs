//! Failover: what starts one (an alarm going into ALARM, an AWS Health issue, a person's request)
//! and its steps (`steps`). Each database's plan as its config states it is the config's
//! (`config::failover`), re-exported here. Pure; the failover functions act on these.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

pub use crate::config::failover::{
    Approval, ClusterEndpoint, Dns, DnsMode, Failover, Restore, RoutingControls, Strategy, Triggers, REPLICA_BROKEN,
};
use crate::config::Config;
use crate::event::EventError;
use crate::health::{ClusterMembers, HealthEvent};
use crate::incident::Kind;

pub mod steps;

pub const ALARM_EVENT: &str = "CloudWatch Alarm State Change";
pub const RDS_INSTANCE_EVENT: &str = "RDS DB Instance Event";

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
    /// A planned move back along the way back re-protect built (`lifeboat failback`).
    #[serde(default)]
    failback: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: AlarmState,
    previous_state: Option<AlarmState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RdsEventDetail {
    #[serde(rename = "EventID")]
    event_id: String,
    source_arn: String,
    #[serde(default)]
    message: String,
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
    if payload.get("detail-type").and_then(Value::as_str) == Some(RDS_INSTANCE_EVENT) {
        let detail: RdsEventDetail = serde_json::from_value(payload["detail"].clone())
            .map_err(|e| EventError(format!("{RDS_INSTANCE_EVENT} without EventID and SourceArn: {e}")))?;
        if !REPLICA_BROKEN.contains(&detail.event_id.as_str()) {
            return ignore(format!("{} is not a replica's replication breaking", detail.event_id));
        }
        let Some((db, f)) = config.databases.iter().find_map(|db| {
            db.failover
                .as_ref()
                .filter(|f| f.triggers.replica_events)
                .filter(|f| f.target.as_ref().is_some_and(|t| t.to_string() == detail.source_arn))
                .map(|f| (db, f))
        }) else {
            return ignore(format!(
                "{} is no failover target with failover.triggers.replica_events",
                detail.source_arn
            ));
        };
        return Ok(Start::Failover(vec![Request {
            database: db.name.clone(),
            kind: Kind::Outage,
            strategy: f.strategy,
            reason: format!("RDS {} on the replica {}: {}", detail.event_id, detail.source_arn, detail.message),
            by: "RDS events".into(),
            seed: format!("rds:{}:{}", detail.event_id, detail.source_arn),
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
    if m.failback {
        return failback(db, m, payload);
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
        // The newest copy taken at or before it: after ransomware, the newest may be the attacker's.
        (Strategy::RestoreLatestCopy, Some(t)) if t >= now => {
            return Err(EventError(format!("restore_time {t} is not in the past")));
        }
        (Strategy::RestoreLatestCopy, Some(_)) => {}
        (_, Some(_)) => {
            return Err(EventError(
                "restore_time is only for the point-in-time and restore-latest-copy strategies".into(),
            ))
        }
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
    let clean: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    if clean.len() <= EXECUTION_NAME_MAX {
        return clean;
    }
    // ASCII now, so byte offsets are characters.
    let (head, tail) = clean.split_at(clean.len() - keep_tail.min(EXECUTION_NAME_MAX - 10));
    let hash = crate::text::short_digest(name, 2);
    let room = EXECUTION_NAME_MAX - tail.len() - hash.len() - 1;
    format!("{}-{hash}{tail}", &head[..room])
}

/// A failback: the database moved (a failover resolved elsewhere) and re-protect built the way
/// back, which is now its plan (`active::follow`); refused, saying what is missing, otherwise.
fn failback(db: &crate::config::Database, m: Manual, payload: &Value) -> Result<Start, EventError> {
    let Some(home) = &db.moved_from else {
        return Err(EventError(format!(
            "{} has not failed over: it serves where the config says; nothing to fail back",
            db.name
        )));
    };
    let Some(f) = db.failover.as_ref().filter(|f| f.target.is_some()) else {
        return Err(EventError(format!(
            "{} serves in {} and has no way back to {} yet: `lifeboat reprotect {}` builds it",
            db.name, db.source.region, home.region, db.name
        )));
    };
    if m.strategy.is_some() || m.restore_time.is_some() {
        return Err(EventError("a failback takes the way back re-protect built: no strategy or restore_time".into()));
    }
    Ok(Start::Failover(vec![Request {
        database: db.name.clone(),
        kind: Kind::Failback,
        // Planned, both regions up: a global database switches over ("to fall back to the
        // original primary after a global database failover", SwitchoverGlobalCluster), no loss.
        strategy: match f.strategy {
            crate::config::failover::Strategy::GlobalFailover => crate::config::failover::Strategy::GlobalSwitchover,
            s => s,
        },
        reason: m.reason,
        by: m.requested_by,
        seed: format!("failback:{payload}"),
        restore_time: None,
        began: None,
    }]))
}

#[cfg(test)]
mod tests;
