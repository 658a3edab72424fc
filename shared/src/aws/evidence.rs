//! The evidence bucket: each record written once, never overwritten and never deleted by
//! Lifeboat (retention is the bucket's lifecycle and, when the stack turns it on, Object Lock).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use super::{error_code, sdk_error, SdkConfig};
use crate::error::LifeboatError;
use crate::message::evidence::Evidence;

pub struct EvidenceBucket {
    client: Client,
    bucket: String,
}

impl EvidenceBucket {
    pub fn new(sdk: &SdkConfig, bucket: &str) -> Self {
        EvidenceBucket { client: Client::new(sdk), bucket: bucket.to_owned() }
    }

    /// Where people read the record: the Markdown page.
    pub fn uri(&self, e: &Evidence) -> String {
        self.page(&e.key)
    }

    /// The page of the record under `key` (`message::evidence::drill_key`, `incident_key`).
    pub fn page(&self, key: &str) -> String {
        format!("s3://{}/{key}.md", self.bucket)
    }

    /// Write the record's JSON and its page, each only if it isn't there yet (`If-None-Match: *`,
    /// S3's conditional write), so a redelivered event or a retried step never writes a second
    /// version of the same record. True when this call wrote the page.
    pub async fn put_once(&self, e: &Evidence) -> Result<bool, LifeboatError> {
        let json = serde_json::to_vec_pretty(&e.json).map_err(|err| LifeboatError::Rejected(err.to_string()))?;
        self.put(&format!("{}.json", e.key), json, "application/json").await?;
        self.put(&format!("{}.md", e.key), e.markdown.clone().into_bytes(), "text/markdown; charset=utf-8").await
    }

    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<bool, LifeboatError> {
        let sent = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .if_none_match("*")
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            // 412: it is there already. 409 ConditionalRequestConflict (another write of the same
            // key under way) is retryable (`retryable_code`).
            Err(err) if error_code(&err) == Some("PreconditionFailed") => Ok(false),
            Err(err) => Err(sdk_error("s3:PutObject", err)),
        }
    }
}
