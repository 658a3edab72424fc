//! The incident table (DynamoDB, one partition key `pk`). It stores what `incident.rs` decides
//! and enforces with conditions only what concurrency needs. One idea a file:
//! `lifecycle` (incidents, one open per database through the `open#<database>` pointer, each
//! timeline entry once), `claims` (each message once: `marker#<incident>#<key>`, and remembered
//! notice states), `drills` (the drill lock and results). Closed incidents and markers expire by
//! TTL. This file: the table's layout, shared by the three.

use std::collections::{BTreeMap, HashMap};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

use super::sdk_error;
use crate::error::LifeboatError;
use crate::incident::{Entry, Incident};

mod claims;
mod drills;
mod lifecycle;
mod readiness;

pub use claims::Claim;
pub use lifecycle::Opened;
pub use readiness::Remembered;

/// How long a closed incident stays for post-mortems and reports before TTL removes it.
const KEEP_CLOSED_DAYS: i64 = 400;
/// Health update markers only need to outlive EventBridge's redeliveries.
const KEEP_MARKER_DAYS: i64 = 30;
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
const TX_CANCELLED: &str = "TransactionCanceledException";
/// "A single operation can retrieve up to 16 MB of data, which can contain as many as 100 items"
/// (BatchGetItem, DynamoDB API reference); more keys are a ValidationException.
const BATCH_GET_MAX: usize = 100;
/// "A single call to BatchWriteItem can transmit up to 16MB of data over the network, consisting
/// of up to 25 item put or delete operations" (BatchWriteItem, DynamoDB API reference).
const BATCH_WRITE_MAX: usize = 25;
/// Rounds for a batch's unprocessed keys or items before the run gives up (retryable): DynamoDB
/// leaves them when throughput runs short, and "we strongly recommend that you use an exponential
/// backoff algorithm" for them (BatchGetItem, BatchWriteItem).
const BATCH_ROUNDS: u32 = 6;

type Item = HashMap<String, AttributeValue>;

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
    if let Some(data) = &i.data {
        item.insert("data".to_owned(), s(serde_json::to_string(data).unwrap_or_default()));
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
        severity: need("severity")?.parse().map_err(|e: crate::text::UnknownName| bad(&e.to_string()))?,
        kind: need("kind")?.parse().map_err(|e: crate::text::UnknownName| bad(&e.to_string()))?,
        status: need("status")?.parse().map_err(|e: crate::text::UnknownName| bad(&e.to_string()))?,
        started: time("started")?.ok_or_else(|| bad("no started"))?,
        ended: time("ended")?,
        execution_arn: text("execution_arn").map(str::to_owned),
        recovered_to: time("recovered_to")?,
        approval_task: text("approval_task").map(str::to_owned),
        data: text("data").map(serde_json::from_str).transpose().map_err(|e| bad(&format!("data: {e}")))?,
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

    /// The incidents `ids` name that are there, a hundred a read (BatchGetItem): the report's
    /// last moves, for a fleet that moved at once. One that can't be read is left out, logged.
    pub async fn get_many(&self, ids: &[&str]) -> Result<BTreeMap<String, Incident>, LifeboatError> {
        let items = self.batch_get(ids.iter().map(|id| format!("incident#{id}"))).await?;
        Ok(items
            .values()
            .filter_map(|item| from_item(item).map_err(|e| tracing::warn!(error = %e, "incident unreadable")).ok())
            .map(|i| (i.id.clone(), i))
            .collect())
    }

    /// Every incident, open or closed, newest first: a scan, for the operator's listing.
    pub async fn list_all(&self) -> Result<Vec<Incident>, LifeboatError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("begins_with(pk, :p)")
                .expression_attribute_values(":p", s("incident#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| sdk_error("dynamodb:Scan", e))?;
            for item in page.items() {
                out.push(from_item(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.started));
        Ok(out)
    }

    /// The items of `pks` that exist, by pk, strongly consistent like the GetItems they replace:
    /// 100 keys a call, and the keys DynamoDB left unprocessed asked again after a backoff.
    async fn batch_get(&self, pks: impl IntoIterator<Item = String>) -> Result<HashMap<String, Item>, LifeboatError> {
        // A key twice in one request is a ValidationException.
        let keys: Vec<Item> = pks
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|pk| HashMap::from([("pk".to_owned(), s(pk))]))
            .collect();
        let mut out = HashMap::new();
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut pending = chunk.to_vec();
            for round in 0.. {
                if pending.is_empty() {
                    break;
                }
                backoff(round, "dynamodb:BatchGetItem", pending.len()).await?;
                let ask = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, ask)
                    .send()
                    .await
                    .map_err(|e| sdk_error("dynamodb:BatchGetItem", e))?;
                for item in answer.responses().and_then(|r| r.get(&self.table)).into_iter().flatten() {
                    if let Some(pk) = item.get("pk").and_then(|v| v.as_s().ok()) {
                        out.insert(pk.clone(), item.clone());
                    }
                }
                pending = answer
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .map_or_else(Vec::new, |k| k.keys().to_vec());
            }
        }
        Ok(out)
    }

    /// Put `items` (each whole, by its pk), 25 a call, the unprocessed ones again after a backoff.
    async fn batch_put(&self, items: Vec<Item>) -> Result<(), LifeboatError> {
        // Two requests for one key in a call are a ValidationException: the last one stands.
        let by_pk: BTreeMap<String, Item> =
            items.into_iter().filter_map(|i| Some((i.get("pk")?.as_s().ok()?.clone(), i))).collect();
        let requests = by_pk
            .into_values()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(|e| LifeboatError::Rejected(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        for chunk in requests.chunks(BATCH_WRITE_MAX) {
            let mut pending = chunk.to_vec();
            for round in 0.. {
                if pending.is_empty() {
                    break;
                }
                backoff(round, "dynamodb:BatchWriteItem", pending.len()).await?;
                let answer = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| sdk_error("dynamodb:BatchWriteItem", e))?;
                pending = answer.unprocessed_items().and_then(|u| u.get(&self.table)).cloned().unwrap_or_default();
            }
        }
        Ok(())
    }
}

/// Before round `round` of a batch: nothing the first time, then 50 ms doubling; past
/// `BATCH_ROUNDS` a retryable error, so the run (or its retry) comes back to it.
async fn backoff(round: u32, call: &str, left: usize) -> Result<(), LifeboatError> {
    if round >= BATCH_ROUNDS {
        return Err(LifeboatError::Transient(format!(
            "{call}: {left} keys still unprocessed after {BATCH_ROUNDS} rounds (throughput exceeded); try again"
        )));
    }
    if round > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(50 << round)).await;
    }
    Ok(())
}
