//! Drills in the incident table: one drill per database at a time (a lock that expires), and
//! each result kept as the database's last and under its own id.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::{s, ts, IncidentStore, CONDITION_FAILED, KEEP_CLOSED_DAYS};
use crate::aws::{error_code, sdk_error};
use crate::drill::DrillResult;
use crate::error::LifeboatError;

impl IncidentStore {
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
        out.item.as_ref().and_then(|i| drill_of(database, i)).transpose()
    }
}

/// The drill result a `drill#<database>` item holds.
pub(super) fn drill_of(
    database: &str,
    item: &std::collections::HashMap<String, AttributeValue>,
) -> Option<Result<DrillResult, LifeboatError>> {
    let text = item.get("result")?.as_s().ok()?;
    Some(serde_json::from_str(text).map_err(|e| LifeboatError::Rejected(format!("drill#{database}: {e}"))))
}
