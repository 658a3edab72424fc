//! Classify what invoked a function: which RDS events mean "a snapshot to copy", which are noise.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::arn::{RdsArn, RdsResource};

pub const DB_SNAPSHOT_EVENT: &str = "RDS DB Snapshot Event";
pub const CLUSTER_SNAPSHOT_EVENT: &str = "RDS DB Cluster Snapshot Event";
pub const SCHEDULED_EVENT: &str = "Scheduled Event";

/// RDS event IDs that announce a snapshot ready to copy.
/// 0042 manual / 0091 automated DB snapshot created; 0075 manual / 0169 automated cluster snapshot created.
const DB_SNAPSHOT_CREATED: [&str; 2] = ["RDS-EVENT-0042", "RDS-EVENT-0091"];
const CLUSTER_SNAPSHOT_CREATED: [&str; 2] = ["RDS-EVENT-0075", "RDS-EVENT-0169"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    SnapshotCreated { snapshot: RdsArn, event_id: String },
    Sweep { at: Option<DateTime<Utc>> },
    Ignored { reason: String },
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("malformed event: {0}")]
pub struct EventError(pub String);

#[derive(Debug, Deserialize)]
struct RdsEventDetail {
    #[serde(rename = "EventID")]
    event_id: String,
    #[serde(rename = "SourceArn")]
    source_arn: Option<String>,
}

/// The moment a scheduled run plans as of: the event's time, never after the wall clock (a forged
/// future time would age every snapshot), so a replayed or late-retried event makes the same plan.
pub fn as_of(event_time: Option<DateTime<Utc>>, wall_clock: DateTime<Utc>) -> DateTime<Utc> {
    event_time.map_or(wall_clock, |at| at.min(wall_clock))
}

pub fn classify(event: &Value) -> Result<Trigger, EventError> {
    let envelope: EventBridgeEvent<Value> =
        serde_json::from_value(event.clone()).map_err(|e| EventError(format!("not an EventBridge event: {e}")))?;
    match envelope.detail_type.as_str() {
        SCHEDULED_EVENT if envelope.source == "aws.events" => Ok(Trigger::Sweep { at: envelope.time }),
        kind @ (DB_SNAPSHOT_EVENT | CLUSTER_SNAPSHOT_EVENT) if envelope.source == "aws.rds" => {
            let detail: RdsEventDetail = serde_json::from_value(envelope.detail)
                .map_err(|e| EventError(format!("{kind} without an RDS event detail: {e}")))?;
            let (wanted, resource) = if kind == DB_SNAPSHOT_EVENT {
                (&DB_SNAPSHOT_CREATED, RdsResource::InstanceSnapshot)
            } else {
                (&CLUSTER_SNAPSHOT_CREATED, RdsResource::ClusterSnapshot)
            };
            if !wanted.contains(&detail.event_id.as_str()) {
                return Ok(Trigger::Ignored { reason: format!("{} is not a snapshot-created event", detail.event_id) });
            }
            // Older RDS events carry the ARN only in `resources`.
            let arn_text = detail
                .source_arn
                .or_else(|| envelope.resources.and_then(|r| r.into_iter().next()))
                .ok_or_else(|| EventError(format!("{} names no snapshot ARN", detail.event_id)))?;
            let snapshot: RdsArn = arn_text.parse().map_err(|e| EventError(format!("{e}")))?;
            if snapshot.resource != resource {
                return Err(EventError(format!("{kind} names `{snapshot}`, which is not a {resource:?}")));
            }
            Ok(Trigger::SnapshotCreated { snapshot, event_id: detail.event_id })
        }
        other => Ok(Trigger::Ignored {
            reason: format!("`{other}` from `{}` is not an event Lifeboat acts on", envelope.source),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn every_sample_event_round_trips_through_the_eventbridge_type() {
        for entry in std::fs::read_dir(format!("{}/../events", env!("CARGO_MANIFEST_DIR"))).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                let value = load(&name);
                // Manual invocations and deliberately broken samples are not EventBridge events.
                if name.starts_with("malformed") || value.get("detail-type").is_none() {
                    continue;
                }
                let typed: EventBridgeEvent<Value> = serde_json::from_value(value.clone()).unwrap();
                let back = serde_json::to_value(&typed).unwrap();
                assert_eq!(back["detail"], value["detail"], "{name}");
                assert_eq!(back["detail-type"], value["detail-type"], "{name}");
            }
        }
    }

    #[test]
    fn automated_db_snapshot_created_is_a_copy_trigger() {
        let t = classify(&load("rds-db-snapshot-automated-created.json")).unwrap();
        let Trigger::SnapshotCreated { snapshot, event_id } = t else { panic!("{t:?}") };
        assert_eq!(event_id, "RDS-EVENT-0091");
        assert_eq!(snapshot.resource, RdsResource::InstanceSnapshot);
        assert!(snapshot.id.starts_with("rds:"));
    }

    #[test]
    fn manual_db_and_cluster_snapshots_are_copy_triggers() {
        for (file, resource) in [
            ("rds-db-snapshot-manual-created.json", RdsResource::InstanceSnapshot),
            ("rds-cluster-snapshot-manual-created.json", RdsResource::ClusterSnapshot),
            ("rds-cluster-snapshot-automated-created.json", RdsResource::ClusterSnapshot),
        ] {
            match classify(&load(file)).unwrap() {
                Trigger::SnapshotCreated { snapshot, .. } => assert_eq!(snapshot.resource, resource, "{file}"),
                other => panic!("{file}: {other:?}"),
            }
        }
    }

    #[test]
    fn scheduled_event_is_a_sweep() {
        assert!(matches!(classify(&load("scheduled-sweep.json")).unwrap(), Trigger::Sweep { at: Some(_) }));
    }

    #[test]
    fn deleted_and_copy_events_are_ignored_with_a_reason() {
        for file in ["rds-db-snapshot-deleted.json", "rds-db-snapshot-copy-finished.json"] {
            let Trigger::Ignored { reason } = classify(&load(file)).unwrap() else { panic!("{file}") };
            assert!(reason.contains("RDS-EVENT-"), "{reason}");
        }
    }

    #[test]
    fn malformed_events_are_errors() {
        assert!(classify(&load("malformed-snapshot-event.json")).is_err());
        assert!(classify(&serde_json::json!({"hello": "world"})).is_err());
        assert!(classify(&serde_json::json!([1, 2])).is_err());
        let mut wrong_kind = load("rds-db-snapshot-manual-created.json");
        wrong_kind["detail"]["SourceArn"] = "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:x".into();
        assert!(classify(&wrong_kind).is_err());
    }

    #[test]
    fn unrelated_event_is_ignored() {
        let e = serde_json::json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}});
        assert!(matches!(classify(&e).unwrap(), Trigger::Ignored { .. }));
    }
}
