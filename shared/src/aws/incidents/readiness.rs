//! The last readiness verdict per database, for the approval request ("ready: yes / 2 warnings,
//! checked 12 minutes ago") and the CLI: rpo-monitor writes it every run, preflight reads it.

use chrono::{DateTime, Utc};

use super::{s, ts, IncidentStore};
use crate::aws::sdk_error;
use crate::error::LifeboatError;

impl IncidentStore {
    pub async fn put_readiness(&self, database: &str, summary: &str, at: DateTime<Utc>) -> Result<(), LifeboatError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("readiness#{database}")))
            .item("summary", s(summary))
            .item("at", ts(at))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("dynamodb:PutItem", e))
    }

    /// The last summary and when it was made.
    pub async fn readiness(&self, database: &str) -> Result<Option<(String, DateTime<Utc>)>, LifeboatError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("readiness#{database}")))
            .send()
            .await
            .map_err(|e| sdk_error("dynamodb:GetItem", e))?;
        let Some(item) = out.item else { return Ok(None) };
        let summary = item.get("summary").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let at = item
            .get("at")
            .and_then(|v| v.as_s().ok())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        Ok(Some((summary, at)))
    }
}
