//! The incident table (DynamoDB, one partition key `pk`). It stores what `incident.rs` decides
//! and enforces with conditions only what concurrency needs: one open incident per database
//! (`open#<database>` pointer), each timeline entry once (`entry_keys`), each message once
//! (`marker#<incident>#<key>` claims), each Health update once (`marker#-#<key>`). Closed
//! incidents and markers expire by TTL.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::{error_code, sdk_error};
use crate::drill::DrillResult;
use crate::error::LifeboatError;
use crate::incident::{Entry, Incident, Status};

/// How long a closed incident stays for post-mortems and reports before TTL removes it.
const KEEP_CLOSED_DAYS: i64 = 400;
/// Health update markers only need to outlive EventBridge's redeliveries.
const KEEP_MARKER_DAYS: i64 = 30;
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
const TX_CANCELLED: &str = "TransactionCanceledException";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours to publish; mark it sent after, or release it if publishing failed.
    Claimed,
    /// Published before: don't again.
    Sent,
    /// Another invocation claimed it moments ago and is publishing.
    InFlight,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Appended {
    Added,
    AlreadyThere,
    /// The incident closed: "also seen" belongs on a new one.
    Closed,
}

/// A claim not marked sent after this long was abandoned: a live holder publishes and marks it
/// within 80 s (the SDK gives each call 40 s at most), and a retry this much later takes it over.
const CLAIM_STALE_SECS: i64 = 90;

/// Seconds to wait for another invocation's claim to be marked sent.
const IN_FLIGHT_WAITS: usize = 3;

fn marker_key(incident_id: Option<&str>, key: &str) -> AttributeValue {
    s(format!("marker#{}#{key}", incident_id.unwrap_or("-")))
}

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
    if let Some(token) = &i.approval_task {
        item.insert("approval_task".to_owned(), s(token));
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
        approval_task: text("approval_task").map(str::to_owned),
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
    /// triggers racing open exactly one. The same trigger again (same id) adds nothing, also
    /// after its incident closed.
    pub async fn open(&self, incident: &Incident, also_seen: &Entry) -> Result<Opened, LifeboatError> {
        // An incident can close between our attempt and our look: a few rounds settle it.
        for _ in 0..3 {
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
                Ok(_) => return Ok(Opened::New(incident.clone())),
                Err(e) if error_code(&e) == Some(TX_CANCELLED) => {}
                Err(e) => return Err(sdk_error("dynamodb:TransactWriteItems", e)),
            }
            match self.open_for(&incident.database).await? {
                Some(open) if open.id == incident.id => return Ok(Opened::AlreadyOpen(open)),
                Some(open) => {
                    if self.append(&open.id, also_seen, true).await? != Appended::Closed {
                        let now = self.get(&open.id).await?.unwrap_or(open);
                        return Ok(Opened::AlreadyOpen(now));
                    }
                }
                None => {
                    if let Some(same) = self.get(&incident.id).await? {
                        // This trigger's incident, closed since: a redelivery opens nothing.
                        return Ok(Opened::AlreadyOpen(same));
                    }
                }
            }
        }
        Err(LifeboatError::Transient(format!(
            "{}: incidents kept opening and closing while opening {}; try again",
            incident.database, incident.id
        )))
    }

    /// Record the execution working on the incident, once: true for the call that recorded it,
    /// so of triggers delivered at the same moment exactly one reports having started it.
    pub async fn set_execution(&self, id: &str, execution_arn: &str) -> Result<bool, LifeboatError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", incident_key(id))
            .update_expression("SET execution_arn = :v")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(execution_arn)")
            .expression_attribute_values(":v", s(execution_arn))
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

    /// The task token an approval answers (the notifier sets it when it asks).
    pub async fn set_approval_task(&self, id: &str, token: &str) -> Result<(), LifeboatError> {
        self.set(id, "approval_task", s(token)).await
    }

    /// The newest point the recovered database holds (the failover steps measure it).
    pub async fn set_recovered_to(&self, id: &str, at: DateTime<Utc>) -> Result<(), LifeboatError> {
        self.set(id, "recovered_to", ts(at)).await
    }

    async fn set(&self, id: &str, field: &str, value: AttributeValue) -> Result<(), LifeboatError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", incident_key(id))
            .update_expression("SET #f = :v")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#f", field)
            .expression_attribute_values(":v", value)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some(CONDITION_FAILED) => {
                Err(LifeboatError::Rejected(format!("no incident {id}")))
            }
            Err(e) => Err(sdk_error("dynamodb:UpdateItem", e)),
        }
    }

    /// Append `entry` to the timeline unless an entry with its key is there. True when added.
    pub async fn record(&self, id: &str, entry: &Entry) -> Result<bool, LifeboatError> {
        Ok(self.append(id, entry, false).await? == Appended::Added)
    }

    async fn append(&self, id: &str, entry: &Entry, only_if_open: bool) -> Result<Appended, LifeboatError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", incident_key(id))
            .update_expression("SET timeline = list_append(timeline, :e) ADD entry_keys :ks")
            .expression_attribute_values(":e", AttributeValue::L(vec![entry_value(entry)]))
            .expression_attribute_values(":ks", AttributeValue::Ss(vec![entry.key.clone()]))
            .expression_attribute_values(":k", s(&entry.key));
        update = if only_if_open {
            update
                .condition_expression("attribute_exists(pk) AND NOT contains(entry_keys, :k) AND #s IN (:o1, :o2, :o3)")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":o1", s(Status::Declared.as_str()))
                .expression_attribute_values(":o2", s(Status::AwaitingApproval.as_str()))
                .expression_attribute_values(":o3", s(Status::Recovering.as_str()))
        } else {
            update.condition_expression("attribute_exists(pk) AND NOT contains(entry_keys, :k)")
        };
        match update.send().await {
            Ok(_) => Ok(Appended::Added),
            Err(e) if error_code(&e) == Some(CONDITION_FAILED) => match self.get(id).await? {
                Some(i) if i.timeline.iter().any(|e| e.key == entry.key) => Ok(Appended::AlreadyThere),
                Some(_) => Ok(Appended::Closed),
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
        self.transition_with(id, to, Entry::new(at, by, what, "")).await
    }

    /// `transition`, its entry carrying details (a failure's done / not done).
    pub async fn transition_with(&self, id: &str, to: Status, said: Entry) -> Result<Incident, LifeboatError> {
        let (at, by, what) = (said.at, said.by.as_str(), said.what.as_str());
        let Some(mut incident) = self.get(id).await? else {
            return Err(LifeboatError::Rejected(format!("no incident {id}")));
        };
        if incident.status == to {
            return Ok(incident);
        }
        let mut entry = incident.transition(to, at, by, what).map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        entry.details = said.details.clone();
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
        let Some(item) = out.item else { return Ok(None) };
        let on = item.get("on").and_then(|v| v.as_bool().ok()).copied().unwrap_or(false);
        let since = item
            .get("since")
            .and_then(|v| v.as_s().ok())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        Ok(Some((on, since)))
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

    /// Take `database`'s drill lock for `drill_id` until `until`: false when another drill holds
    /// it and has not outlived its lock (never two drills of one database at once).
    pub async fn lock_drill(
        &self,
        database: &str,
        drill_id: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, LifeboatError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("drill-lock#{database}")))
            .item("drill_id", s(drill_id))
            .item("until", ts(until))
            .condition_expression("attribute_not_exists(pk) OR drill_id = :me OR #u < :now")
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":me", s(drill_id))
            .expression_attribute_values(":now", ts(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if error_code(&e) == Some(CONDITION_FAILED) => Ok(false),
            Err(e) => Err(sdk_error("dynamodb:PutItem", e)),
        }
    }

    /// Give the lock back, if `drill_id` still holds it.
    pub async fn unlock_drill(&self, database: &str, drill_id: &str) -> Result<(), LifeboatError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("drill-lock#{database}")))
            .condition_expression("drill_id = :me")
            .expression_attribute_values(":me", s(drill_id))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some(CONDITION_FAILED) => Ok(()),
            Err(e) => Err(sdk_error("dynamodb:DeleteItem", e)),
        }
    }

    /// Keep a drill's result (kind `drill`): as the database's last, and under its own id.
    pub async fn put_drill_result(&self, r: &DrillResult) -> Result<(), LifeboatError> {
        let body = serde_json::to_string(r).map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        let expires = r.ended.timestamp() + KEEP_CLOSED_DAYS * 86_400;
        for pk in [format!("drill#{}", r.database), format!("drill#{}#{}", r.database, r.drill_id)] {
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(pk))
                .item("kind", s("drill"))
                .item("database", s(&r.database))
                .item("result", s(&body))
                .item("expires_at", AttributeValue::N(expires.to_string()))
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb:PutItem", e))?;
        }
        Ok(())
    }

    /// `database`'s last drill, if it ever had one.
    pub async fn last_drill(&self, database: &str) -> Result<Option<DrillResult>, LifeboatError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("drill#{database}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb:GetItem", e))?;
        out.item
            .as_ref()
            .and_then(|i| i.get("result"))
            .and_then(|v| v.as_s().ok())
            .map(|t| serde_json::from_str(t).map_err(|e| LifeboatError::Rejected(format!("drill#{database}: {e}"))))
            .transpose()
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
