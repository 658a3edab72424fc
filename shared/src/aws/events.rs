//! EventBridge: what one account tells another (the source to its vault, the vault back). Each
//! function puts events on its own account's default bus; a rule of its stack forwards them to the
//! other account's bus, whose policy admits that account alone (EventBridge's cross-account
//! delivery: "the external account must have an EventBridge rule with your account's event bus
//! as a target").

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use serde_json::Value;

use super::{sdk_error, SdkConfig};
use crate::error::LifeboatError;

pub struct Bus {
    client: Client,
}

impl Bus {
    pub fn new(sdk: &SdkConfig) -> Self {
        Bus { client: Client::new(sdk) }
    }

    /// One event on this account's default bus. PutEvents answers 200 with a failed entry count
    /// for entries it dropped: those are errors here, retryable as EventBridge's own throttling is.
    pub async fn put(&self, source: &str, detail_type: &str, detail: &Value) -> Result<(), LifeboatError> {
        let entry =
            PutEventsRequestEntry::builder().source(source).detail_type(detail_type).detail(detail.to_string()).build();
        let out = self.client.put_events().entries(entry).send().await.map_err(|e| sdk_error("events:PutEvents", e))?;
        if out.failed_entry_count() > 0 {
            let why = out
                .entries()
                .iter()
                .filter_map(|e| e.error_code().map(|c| format!("{c}: {}", e.error_message().unwrap_or_default())))
                .collect::<Vec<_>>()
                .join("; ");
            return Err(LifeboatError::Transient(format!("events:PutEvents dropped the event: {why}")));
        }
        Ok(())
    }
}
