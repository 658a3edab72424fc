//! The incident table (DynamoDB, one partition key `pk`). It stores what `incident.rs` decides
//! and enforces with conditions only what concurrency needs. One idea a file:
//! `lifecycle` (incidents, one open per database through the `open#<database>` pointer, each
//! timeline entry once), `claims` (each message once: `marker#<incident>#<key>`, and remembered
//! notice states), `drills` (the drill lock and results). Closed incidents and markers expire by
//! TTL. This file: the table's layout, shared by the three.

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
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

/// How long a closed incident stays for post-mortems and reports before TTL removes it.
const KEEP_CLOSED_DAYS: i64 = 400;
/// Health update markers only need to outlive EventBridge's redeliveries.
const KEEP_MARKER_DAYS: i64 = 30;
const CONDITION_FAILED: &str = "ConditionalCheckFailedException";
const TX_CANCELLED: &str = "TransactionCanceledException";

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
        severity: need("severity")?.parse().map_err(|e: crate::text::UnknownName| bad(&e.to_string()))?,
        kind: need("kind")?.parse().map_err(|e: crate::text::UnknownName| bad(&e.to_string()))?,
        status: need("status")?.parse().map_err(|e: crate::text::UnknownName| bad(&e.to_string()))?,
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
        out.sort_by(|a, b| b.started.cmp(&a.started));
        Ok(out)
    }
}
