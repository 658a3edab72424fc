//! What invoked the notifier: a message about an incident, an AWS Health event, or the schedule
//! that owes people progress updates. Pure classification; bad input is an error before any call.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::event::{self, EventError, Trigger};
use crate::health::HealthEvent;
use crate::incident::MessageKind;

#[derive(Debug, Clone, PartialEq)]
pub enum NotifyRequest {
    Incident {
        incident_id: String,
        message: MessageKind,
        /// For `approval-requested`: the Step Functions task that waits for the answer, and how
        /// long it waits.
        approval: Option<PendingTask>,
    },
    Health(Box<HealthEvent>),
    /// The schedule: progress updates for quiet open incidents, as of this time.
    Progress {
        at: Option<DateTime<Utc>>,
    },
    Ignored {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTask {
    pub token: String,
    pub expires_in_seconds: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Invocation {
    incident_id: String,
    message: String,
    task_token: Option<String>,
    expires_in_seconds: Option<u64>,
}

pub fn parse(payload: &Value) -> Result<NotifyRequest, EventError> {
    if payload.get("detail-type").is_some() {
        if let Some(h) = HealthEvent::parse(payload)? {
            return Ok(NotifyRequest::Health(Box::new(h)));
        }
        return Ok(match event::classify(payload)? {
            Trigger::Sweep { at } => NotifyRequest::Progress { at },
            Trigger::Ignored { reason } => NotifyRequest::Ignored { reason },
            Trigger::SnapshotCreated { event_id, .. } => {
                NotifyRequest::Ignored { reason: format!("{event_id} is the copier's, not the notifier's") }
            }
        });
    }
    let inv: Invocation = serde_json::from_value(payload.clone()).map_err(|e| {
        EventError(format!(
            r#"expected an AWS Health event, a Scheduled Event or {{"incident_id": "...", "message": "..."}}: {e}"#
        ))
    })?;
    if inv.incident_id.trim().is_empty() {
        return Err(EventError("incident_id is empty".into()));
    }
    let message = inv.message.parse().map_err(|e| EventError(format!("message: {e}")))?;
    // Both ask a person: the approval before anything changes, and the decision on a cut-over
    // its data checks held.
    let asks = matches!(message, MessageKind::ApprovalRequested | MessageKind::DataChecksFailed);
    let approval = match (asks, inv.task_token, inv.expires_in_seconds) {
        (true, Some(token), Some(secs)) if !token.is_empty() && secs > 0 => {
            Some(PendingTask { token, expires_in_seconds: secs })
        }
        (true, ..) => {
            return Err(EventError(format!("{message} needs task_token ($$.Task.Token) and expires_in_seconds")))
        }
        (false, None, None) => None,
        _ => {
            return Err(EventError(
                "task_token and expires_in_seconds are for approval-requested and data-checks-failed only".into(),
            ))
        }
    };
    Ok(NotifyRequest::Incident { incident_id: inv.incident_id, message, approval })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn each_input_is_classified() {
        assert!(matches!(parse(&load("health-rds-issue-open.json")).unwrap(), NotifyRequest::Health(_)));
        assert!(matches!(
            parse(&load("notifier-progress-schedule.json")).unwrap(),
            NotifyRequest::Progress { at: Some(_) }
        ));
        assert_eq!(
            parse(&load("notifier-declared.json")).unwrap(),
            NotifyRequest::Incident {
                incident_id: "orders-prod-20261125T1942Z-3f2a".into(),
                message: MessageKind::Declared,
                approval: None,
            }
        );
        assert!(matches!(parse(&load("rds-db-snapshot-manual-created.json")).unwrap(), NotifyRequest::Ignored { .. }));
    }

    #[test]
    fn bad_input_is_an_error_that_names_the_problem() {
        for (bad, says) in [
            (json!({"incident_id": "x", "message": "resolve"}), "approval-requested"),
            (json!({"incident_id": "x"}), "message"),
            (json!({"incident_id": "", "message": "declared"}), "empty"),
            (json!({"incident_id": "x", "message": "declared", "extra": 1}), "extra"),
            (json!("declared"), "expected"),
            (json!({"incident_id": "x", "message": "approval-requested"}), "task_token"),
            (json!({"incident_id": "x", "message": "declared", "task_token": "t", "expires_in_seconds": 5}), "only"),
        ] {
            let e = parse(&bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let mut broken = load("health-rds-issue-open.json");
        broken["detail"] = json!({});
        assert!(parse(&broken).is_err());
    }
}
