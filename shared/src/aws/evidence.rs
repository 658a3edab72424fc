//! The evidence bucket: each record written once, never overwritten and never deleted by
//! Lifeboat (retention is the bucket's lifecycle and, when the stack turns it on, Object Lock).

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use tracing::{info, warn};

use super::{error_code, sdk_error, SdkConfig};
use crate::error::LifeboatError;
use crate::message::evidence::Evidence;
use crate::message::Message;

pub struct EvidenceBucket {
    client: Client,
    bucket: String,
}

impl EvidenceBucket {
    pub fn new(sdk: &SdkConfig, bucket: &str) -> Self {
        EvidenceBucket { client: Client::new(sdk), bucket: bucket.to_owned() }
    }

    /// The page of the record under `key` (`message::evidence::drill_key`, `incident_key`).
    pub fn page(&self, key: &str) -> String {
        format!("s3://{}/{key}.md", self.bucket)
    }

    /// `m` pointing at `record`, written once. When the record can't be built or written, `m` as
    /// it was and why: people are told either way, and the caller fails after telling them, so
    /// its retry writes the record (and tells no one twice).
    pub async fn keep(&self, record: Result<Evidence, LifeboatError>, m: Message) -> (Message, Option<LifeboatError>) {
        let written = match record {
            Ok(r) => self.put_once(&r).await.map(|fresh| (r.key, fresh)),
            Err(e) => Err(e),
        };
        match written {
            Ok((key, fresh)) => {
                if !fresh {
                    info!(%key, "evidence already kept");
                }
                (m.with_evidence(&self.page(&key)), None)
            }
            Err(e) => {
                warn!(error = %e, "evidence not written");
                (m, Some(e))
            }
        }
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
