//! Each message once: a claim (`marker#<incident>#<key>`) taken before publishing, marked sent
//! after, given back when publishing failed, taken over when abandoned; and remembered yes/no
//! states (a breach and since when) that say when a notice is owed.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use chrono::{DateTime, Utc};

use super::{incident_key, s, ts, IncidentStore, CONDITION_FAILED, KEEP_MARKER_DAYS, TX_CANCELLED};
use crate::aws::{error_code, sdk_error};
use crate::error::LifeboatError;
use crate::incident::Status;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to publish; mark it sent after, or release it if publishing failed.
    Claimed,
    /// Published before: don't again.
    Sent,
    /// Another invocation claimed it moments ago and is publishing.
    InFlight,
}

/// A claim not marked sent after this long was abandoned: a live holder publishes and marks it
/// within 80 s (the SDK gives each call 40 s at most), and a retry this much later takes it over.
const CLAIM_STALE_SECS: i64 = 90;

/// Seconds to wait for another invocation's claim to be marked sent.
const IN_FLIGHT_WAITS: usize = 3;

/// A remembered yes/no item: `on`, and `since` (the epoch when unreadable).
pub(super) fn state_of(item: &HashMap<String, AttributeValue>) -> (bool, DateTime<Utc>) {
    let on = item.get("on").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
    let since = item
        .get("since")
        .and_then(|v| v.as_s().ok())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default();
    (on, since)
}

fn marker_key(incident_id: Option<&str>, key: &str) -> AttributeValue {
    s(format!("marker#{}#{key}", incident_id.unwrap_or("-")))
}

impl IncidentStore {
    /// A remembered yes/no (e.g. "this database's RPO is breached in that region") and since when.
    pub async fn state(&self, key: &str) -> Result<Option<(bool, DateTime<Utc>)>, LifeboatError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("state#{key}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb:GetItem", e))?;
        Ok(out.item.as_ref().map(state_of))
    }

    /// `state` of each of `keys` that has one, in as few BatchGetItem calls as 100 keys a call allow.
    pub async fn states(&self, keys: &[String]) -> Result<HashMap<String, (bool, DateTime<Utc>)>, LifeboatError> {
        let items = self.batch_get(keys.iter().map(|k| format!("state#{k}"))).await?;
        Ok(keys.iter().filter_map(|k| Some((k.clone(), state_of(items.get(&format!("state#{k}"))?)))).collect())
    }

    /// `set_state` of each (key, on, since), 25 a BatchWriteItem call.
    pub async fn set_states(&self, states: &[(String, bool, DateTime<Utc>)]) -> Result<(), LifeboatError> {
        let items = states
            .iter()
            .map(|(key, on, since)| {
                HashMap::from([
                    ("pk".to_owned(), s(format!("state#{key}"))),
                    ("on".to_owned(), AttributeValue::Bool(*on)),
                    ("since".to_owned(), ts(*since)),
                ])
            })
            .collect();
        self.batch_put(items).await
    }

    /// Which of `changes` (each a change's own key, e.g. `ready#<db>#true#<since>`) were told in
    /// an earlier notice (`mark_told`): a run that tells several at once under one claim, retried
    /// after the notice went out but before its states were written, tells only the others.
    pub async fn told(&self, changes: &[String]) -> Result<std::collections::HashSet<String>, LifeboatError> {
        let items = self.batch_get(changes.iter().map(|k| format!("told#{k}"))).await?;
        Ok(changes.iter().filter(|k| items.contains_key(&format!("told#{k}"))).cloned().collect())
    }

    /// Mark `changes` told, 25 a BatchWriteItem call; kept as long as send-once markers are.
    pub async fn mark_told(&self, changes: &[String], now: DateTime<Utc>) -> Result<(), LifeboatError> {
        let expires = AttributeValue::N((now.timestamp() + KEEP_MARKER_DAYS * 86_400).to_string());
        let items = changes
            .iter()
            .map(|k| {
                HashMap::from([
                    ("pk".to_owned(), s(format!("told#{k}"))),
                    ("at".to_owned(), ts(now)),
                    ("expires_at".to_owned(), expires.clone()),
                ])
            })
            .collect();
        self.batch_put(items).await
    }

    pub async fn set_state(&self, key: &str, on: bool, since: DateTime<Utc>) -> Result<(), LifeboatError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("state#{key}")))
            .item("on", AttributeValue::Bool(on))
            .item("since", ts(since))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("dynamodb:PutItem", e))
    }

    /// Claim `key` before publishing something once: for incident `id` while it is still in
    /// `status` (a message read before a concurrent change must not go out after it), or on its
    /// own (Health notices). A claim nobody marked sent within `CLAIM_STALE_SECS` was abandoned
    /// by a function that died mid-publish, and is taken over: better twice than never. Each
    /// claim carries its own random token: when DynamoDB wrote it but its answer was lost, the
    /// SDK's retry of the same request finds the claim its own, not another delivery's (without
    /// it, that message was never sent: tests/tests/chaos.rs loses that answer).
    pub async fn claim(
        &self,
        incident: Option<(&str, Status)>,
        key: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim, LifeboatError> {
        let pk = marker_key(incident.map(|(id, _)| id), key);
        let token = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", pk.clone())
            .item("claimed_at", AttributeValue::N(now.timestamp().to_string()))
            .item("claimed_by", s(&token))
            .item("sent", AttributeValue::Bool(false))
            .item("expires_at", AttributeValue::N((now.timestamp() + KEEP_MARKER_DAYS * 86_400).to_string()))
            .condition_expression("attribute_not_exists(pk) OR claimed_by = :me OR (sent = :f AND claimed_at < :stale)")
            .expression_attribute_values(":me", s(&token))
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .expression_attribute_values(":stale", AttributeValue::N((now.timestamp() - CLAIM_STALE_SECS).to_string()))
            .build()
            .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        let result = match incident {
            None => {
                // The same item and condition as the transaction's Put, as a plain PutItem.
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .set_item(Some(put.item().clone()))
                    .set_condition_expression(put.condition_expression().map(str::to_owned))
                    .set_expression_attribute_values(put.expression_attribute_values().cloned())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (error_code(&e) == Some(CONDITION_FAILED), sdk_error("dynamodb:PutItem", e)))
            }
            Some((id, status)) => {
                let check = ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("pk", incident_key(id))
                    .condition_expression("#s = :status")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":status", s(status.as_str()))
                    .build()
                    .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
                self.client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().condition_check(check).build())
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| (error_code(&e) == Some(TX_CANCELLED), sdk_error("dynamodb:TransactWriteItems", e)))
            }
        };
        match result {
            Ok(()) => Ok(Claim::Claimed),
            Err((true, _)) => {
                let marker = self
                    .client
                    .get_item()
                    .table_name(&self.table)
                    .key("pk", pk)
                    .consistent_read(true)
                    .send()
                    .await
                    .map_err(|e| sdk_error("dynamodb:GetItem", e))?;
                match marker.item.as_ref().and_then(|m| m.get("sent")).and_then(|v| v.as_bool().ok()) {
                    Some(true) => Ok(Claim::Sent),
                    Some(false) => Ok(Claim::InFlight),
                    // No marker: the incident's status moved on since it was read.
                    None => Err(LifeboatError::Transient(format!("incident changed while claiming {key}; try again"))),
                }
            }
            Err((false, e)) => Err(e),
        }
    }

    /// Claim `key`, `send`, then mark it sent, or give the claim back if sending failed: true
    /// when this invocation sent it, false when it had been sent already. A claim held by another
    /// invocation is a duplicate sending right now (marked sent within a second or two), or one
    /// that died or failed to give it back: after a short wait it is a Retryable error, so a
    /// retry after `CLAIM_STALE_SECS` takes it over. (Reporting success there lost the message for
    /// good: tests/tests/chaos.rs at 60% faults.)
    pub async fn send_once(
        &self,
        incident: Option<(&str, Status)>,
        key: &str,
        now: DateTime<Utc>,
        send: impl std::future::Future<Output = Result<(), LifeboatError>>,
    ) -> Result<bool, LifeboatError> {
        let id = incident.map(|(id, _)| id);
        let mut claim = self.claim(incident, key, now).await?;
        for _ in 0..IN_FLIGHT_WAITS {
            if claim != Claim::InFlight {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            claim = self.claim(incident, key, now).await?;
        }
        match claim {
            Claim::Claimed => {}
            Claim::Sent => return Ok(false),
            Claim::InFlight => {
                return Err(LifeboatError::Transient(format!(
                    "{key} is being sent by another invocation, or was abandoned by one: retry later"
                )))
            }
        }
        if let Err(e) = send.await {
            // Best effort: if this fails too, the claim goes stale and a later retry takes it over.
            let _ = self.release(id, key).await;
            return Err(e);
        }
        self.mark_sent(id, key).await?;
        Ok(true)
    }

    /// The claimed message went out.
    pub async fn mark_sent(&self, incident_id: Option<&str>, key: &str) -> Result<(), LifeboatError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", marker_key(incident_id, key))
            .update_expression("SET sent = :t")
            .expression_attribute_values(":t", AttributeValue::Bool(true))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("dynamodb:UpdateItem", e))
    }

    /// Give a claim back after the publish it guarded failed, so a retry publishes.
    pub async fn release(&self, incident_id: Option<&str>, key: &str) -> Result<(), LifeboatError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", marker_key(incident_id, key))
            .condition_expression("sent = :f")
            .expression_attribute_values(":f", AttributeValue::Bool(false))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("dynamodb:DeleteItem", e))
    }
}
