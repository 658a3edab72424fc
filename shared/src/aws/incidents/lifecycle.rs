//! An incident's life in the table: opened once per database (the `open#<database>` pointer and
//! the incident in one transaction), its timeline entries each once, its moves as `incident.rs`
//! allows them, closed (freeing the database), listed while open.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use chrono::{DateTime, Utc};

use super::{
    entry_value, incident_key, open_key, s, to_item, ts, IncidentStore, CONDITION_FAILED, KEEP_CLOSED_DAYS,
    TX_CANCELLED,
};
use crate::aws::{error_code, sdk_error};
use crate::error::LifeboatError;
use crate::incident::{Entry, Incident, Status};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Appended {
    Added,
    AlreadyThere,
    /// The incident closed: "also seen" belongs on a new one.
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    New(Incident),
    /// The database already had an open incident: the trigger is an "also seen" entry on it
    /// (or the same trigger delivered again, which adds nothing).
    AlreadyOpen(Incident),
}

impl IncidentStore {
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

    /// The data checks' report on the incident and its timeline entry (`Incident::data_checked`):
    /// the report first, so whoever reads the entry finds it. Only the validator's role writes it;
    /// the DNS and endpoint steps read it from here. A repeat writes the same entry once.
    pub async fn record_data(
        &self,
        id: &str,
        entry: &Entry,
        report: &crate::decide::validate::DataReport,
    ) -> Result<(), LifeboatError> {
        self.set(id, "data", s(serde_json::to_string(report).unwrap_or_default())).await?;
        self.record(id, entry).await.map(|_| ())
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
                .condition_expression(
                    "attribute_exists(pk) AND NOT contains(entry_keys, :k) AND #s IN (:o1, :o2, :o3, :o4)",
                )
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":o1", s(Status::Declared.as_str()))
                .expression_attribute_values(":o2", s(Status::AwaitingApproval.as_str()))
                .expression_attribute_values(":o3", s(Status::Recovering.as_str()))
                .expression_attribute_values(":o4", s(Status::DnsPending.as_str()))
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
}
