//! The incident table (DynamoDB, one partition key `pk`). It stores what `incident.rs` decides
//! and enforces with conditions only what concurrency needs: one open incident per database
//! (`open#<database>` pointer), each timeline entry once (`entry_keys`), each message once
//! (`published`), each Health update once (`marker#<key>`). Closed incidents expire by TTL.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, ReturnValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{error_code, sdk_error};
use crate::error::LifeboatError;
use crate::incident::{Entry, Incident, Status};

/// How long a closed incident stays for post-mortems and reports before TTL removes it.
const KEEP_CLOSED_DAYS: i64 = 400;
/// Health update markers only need to outlive EventBridge's redeliveries.
const KEEP_MARKER_DAYS: i64 = 30;
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
const TX_CANCELLED: &str = "TransactionCanceledException";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    New(Incident),
    /// The database already had an open incident: the trigger is an "also seen" entry on it
    /// (or the same trigger delivered again, which adds nothing).
    AlreadyOpen(Incident),
}

pub struct IncidentStore {
    client: Client,
    table: String,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn ts(t: DateTime<Utc>) -> AttributeValue {
    s(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

fn entry_value(e: &Entry) -> AttributeValue {
    s(serde_json::to_string(e).unwrap_or_default())
}

fn incident_key(id: &str) -> AttributeValue {
    s(format!("incident#{id}"))
}

fn open_key(database: &str) -> AttributeValue {
    s(format!("open#{database}"))
}

fn to_item(i: &Incident) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        ("pk".to_owned(), incident_key(&i.id)),
        ("id".to_owned(), s(&i.id)),
        ("database".to_owned(), s(&i.database)),
        ("tier".to_owned(), s(i.tier.as_str())),
        ("severity".to_owned(), s(i.severity.as_str())),
        ("kind".to_owned(), s(i.kind.as_str())),
        ("status".to_owned(), s(i.status.as_str())),
        ("started".to_owned(), ts(i.started)),
        ("timeline".to_owned(), AttributeValue::L(i.timeline.iter().map(entry_value).collect())),
        ("entry_keys".to_owned(), AttributeValue::Ss(i.timeline.iter().map(|e| e.key.clone()).collect())),
    ]);
    for (k, v) in [("ended", i.ended), ("recovered_to", i.recovered_to)] {
        if let Some(v) = v {
            item.insert(k.to_owned(), ts(v));
        }
    }
    if let Some(arn) = &i.execution_arn {
        item.insert("execution_arn".to_owned(), s(arn));
    }
    item
}

fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Incident, LifeboatError> {
    let bad = |what: &str| LifeboatError::Rejected(format!("incident item {:?}: {what}", item.get("pk")));
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str);
    let need = |k: &str| text(k).ok_or_else(|| bad(&format!("no {k}")));
    let time = |k: &str| -> Result<Option<DateTime<Utc>>, LifeboatError> {
        text(k)
            .map(|t| {
                DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc)).map_err(|e| bad(&format!("{k}: {e}")))
            })
            .transpose()
    };
    let parse = |k: &str| -> Result<String, LifeboatError> { Ok(need(k)?.to_owned()) };
    let timeline = item
        .get("timeline")
        .and_then(|v| v.as_l().ok())
        .map(|l| {
            l.iter()
                .map(|e| {
                    e.as_s()
                        .ok()
                        .and_then(|t| serde_json::from_str::<Entry>(t).ok())
                        .ok_or_else(|| bad("unreadable timeline entry"))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?
        .unwrap_or_default();
    let tier = serde_json::from_value(serde_json::Value::String(parse("tier")?)).map_err(|e| bad(&e.to_string()))?;
    Ok(Incident {
        id: parse("id")?,
        database: parse("database")?,
        tier,
        severity: need("severity")?.parse().map_err(|e: crate::incident::IncidentError| bad(&e.to_string()))?,
        kind: need("kind")?.parse().map_err(|e: crate::incident::IncidentError| bad(&e.to_string()))?,
        status: need("status")?.parse().map_err(|e: crate::incident::IncidentError| bad(&e.to_string()))?,
        started: time("started")?.ok_or_else(|| bad("no started"))?,
        ended: time("ended")?,
        execution_arn: text("execution_arn").map(str::to_owned),
        recovered_to: time("recovered_to")?,
        timeline,
    })
}

impl IncidentStore {
    pub fn new(sdk: &SdkConfig, table: &str) -> Self {
        IncidentStore { client: Client::new(sdk), table: table.to_owned() }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Incident>, LifeboatError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", incident_key(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb:GetItem", e))?;
        out.item.as_ref().map(from_item).transpose()
    }

    /// The open incident of `database`, if any.
    pub async fn open_for(&self, database: &str) -> Result<Option<Incident>, LifeboatError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", open_key(database))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb:GetItem", e))?;
        match out.item.as_ref().and_then(|i| i.get("incident_id")).and_then(|v| v.as_s().ok()) {
            Some(id) => self.get(id).await,
            None => Ok(None),
        }
    }

    /// Open `incident`, unless its database has one open already: then `also_seen` goes on that
    /// one's timeline. The pointer and the incident are written in one transaction, so two
    /// triggers racing open exactly one.
    pub async fn open(&self, incident: &Incident, also_seen: &Entry) -> Result<Opened, LifeboatError> {
        let pointer = Put::builder()
            .table_name(&self.table)
            .item("pk", open_key(&incident.database))
            .item("incident_id", s(&incident.id))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        let item = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(incident)))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(pointer).build())
            .transact_items(TransactWriteItem::builder().put(item).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(Opened::New(incident.clone())),
            Err(e) if error_code(&e) == Some(TX_CANCELLED) => {
                let Some(open) = self.open_for(&incident.database).await? else {
                    // Closed between our write and our read: the caller's retry opens a new one.
                    return Err(LifeboatError::Transient(format!(
                        "{}: an incident was open, then closed, while opening {}",
                        incident.database, incident.id
                    )));
                };
                if open.id != incident.id {
                    self.record(&open.id, also_seen).await?;
                }
                Ok(Opened::AlreadyOpen(self.get(&open.id).await?.unwrap_or(open)))
            }
            Err(e) => Err(sdk_error("dynamodb:TransactWriteItems", e)),
        }
    }

    /// Append `entry` to the timeline unless an entry with its key is there. True when added.
    pub async fn record(&self, id: &str, entry: &Entry) -> Result<bool, LifeboatError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", incident_key(id))
            .update_expression("SET timeline = list_append(timeline, :e) ADD entry_keys :ks")
            .condition_expression("attribute_exists(pk) AND NOT contains(entry_keys, :k)")
            .expression_attribute_values(":e", AttributeValue::L(vec![entry_value(entry)]))
            .expression_attribute_values(":ks", AttributeValue::Ss(vec![entry.key.clone()]))
            .expression_attribute_values(":k", s(&entry.key))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some(CONDITION_FAILED) => match self.get(id).await? {
                Some(_) => Ok(false),
                None => Err(LifeboatError::Rejected(format!("no incident {id}"))),
            },
            Err(e) => Err(sdk_error("dynamodb:UpdateItem", e)),
        }
    }

    /// Move incident `id` to `to`, as `incident.rs` allows, with its timeline entry. Closing also
    /// frees the database for its next incident, in the same transaction. A repeat of a move
    /// already made is a no-op; a move the status doesn't allow is NonRetryable.
    pub async fn transition(
        &self,
        id: &str,
        to: Status,
        at: DateTime<Utc>,
        by: &str,
        what: &str,
    ) -> Result<Incident, LifeboatError> {
        let Some(mut incident) = self.get(id).await? else {
            return Err(LifeboatError::Rejected(format!("no incident {id}")));
        };
        if incident.status == to {
            return Ok(incident);
        }
        let entry = incident.transition(to, at, by, what).map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("pk", incident_key(id))
            .condition_expression("#s = :from AND NOT contains(entry_keys, :k)")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":from", s(incident.status.as_str()))
            .expression_attribute_values(":to", s(to.as_str()))
            .expression_attribute_values(":e", AttributeValue::L(vec![entry_value(&entry)]))
            .expression_attribute_values(":ks", AttributeValue::Ss(vec![entry.key.clone()]))
            .expression_attribute_values(":k", s(&entry.key));
        let closing = !to.is_open();
        update = if closing {
            let expires = at.timestamp() + KEEP_CLOSED_DAYS * 86_400;
            update
                .update_expression(
                    "SET #s = :to, ended = :ended, expires_at = :exp, timeline = list_append(timeline, :e) ADD entry_keys :ks",
                )
                .expression_attribute_values(":ended", ts(at))
                .expression_attribute_values(":exp", AttributeValue::N(expires.to_string()))
        } else {
            update.update_expression("SET #s = :to, timeline = list_append(timeline, :e) ADD entry_keys :ks")
        };
        let mut tx = self.client.transact_write_items().transact_items(
            TransactWriteItem::builder()
                .update(update.build().map_err(|e| LifeboatError::Rejected(e.to_string()))?)
                .build(),
        );
        if closing {
            let free = Delete::builder()
                .table_name(&self.table)
                .key("pk", open_key(&incident.database))
                .condition_expression("incident_id = :id")
                .expression_attribute_values(":id", s(id))
                .build()
                .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
            tx = tx.transact_items(TransactWriteItem::builder().delete(free).build());
        }
        match tx.send().await {
            Ok(_) => {
                incident.apply(entry, Some(to));
                Ok(incident)
            }
            // Someone else moved it first (or this is a replay): report what the table holds.
            Err(e) if error_code(&e) == Some(TX_CANCELLED) => match self.get(id).await? {
                Some(now) if now.status == to => Ok(now),
                Some(now) => Err(LifeboatError::Transient(format!(
                    "incident {id} changed while moving to {to} (now {}); try again",
                    now.status
                ))),
                None => Err(LifeboatError::Rejected(format!("no incident {id}"))),
            },
            Err(e) => Err(sdk_error("dynamodb:TransactWriteItems", e)),
        }
    }

    /// Close an incident: resolved, aborted or failed.
    pub async fn close(
        &self,
        id: &str,
        to: Status,
        at: DateTime<Utc>,
        by: &str,
        what: &str,
    ) -> Result<Incident, LifeboatError> {
        if to.is_open() {
            return Err(LifeboatError::Rejected(format!("{to} does not close an incident")));
        }
        self.transition(id, to, at, by, what).await
    }

    /// Every open incident (one per database at most): the pointers, then their incidents.
    pub async fn list_open(&self) -> Result<Vec<Incident>, LifeboatError> {
        let mut ids = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", s("open#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb:Scan", e))?;
            ids.extend(page.items().iter().filter_map(|i| i.get("incident_id")).filter_map(|v| v.as_s().ok()).cloned());
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let mut open = Vec::new();
        for id in ids {
            if let Some(i) = self.get(&id).await? {
                open.push(i);
            }
        }
        Ok(open)
    }

    /// Claim `key` before publishing something once: on incident `id` (its `published` set), or
    /// as a standalone marker. False when someone already did.
    pub async fn claim(&self, id: Option<&str>, key: &str, now: DateTime<Utc>) -> Result<bool, LifeboatError> {
        let result = match id {
            Some(id) => self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", incident_key(id))
                .update_expression("ADD published :ks")
                .condition_expression("attribute_exists(pk) AND NOT contains(published, :k)")
                .expression_attribute_values(":ks", AttributeValue::Ss(vec![key.to_owned()]))
                .expression_attribute_values(":k", s(key))
                .return_values(ReturnValue::None)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_code(&e) == Some(CONDITION_FAILED), sdk_error("dynamodb:UpdateItem", e))),
            None => self
                .client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(format!("marker#{key}")))
                .item("expires_at", AttributeValue::N((now.timestamp() + KEEP_MARKER_DAYS * 86_400).to_string()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_code(&e) == Some(CONDITION_FAILED), sdk_error("dynamodb:PutItem", e))),
        };
        match result {
            Ok(()) => Ok(true),
            Err((true, _)) => Ok(false),
            Err((false, e)) => Err(e),
        }
    }

    /// Give a claim back after the publish it guarded failed, so a retry publishes.
    pub async fn release(&self, id: Option<&str>, key: &str) -> Result<(), LifeboatError> {
        let result = match id {
            Some(id) => self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", incident_key(id))
                .update_expression("DELETE published :ks")
                .expression_attribute_values(":ks", AttributeValue::Ss(vec![key.to_owned()]))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error("dynamodb:UpdateItem", e)),
            None => self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(format!("marker#{key}")))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error("dynamodb:DeleteItem", e)),
        };
        result
    }
}
