use aws_config::{Region, SdkConfig};
use aws_sdk_sns::types::MessageAttributeValue;

use crate::error::LifeboatError;
use crate::message::{Attribute, Message};

/// Publishes to one SNS topic, with a client in the topic's own region (the function may run elsewhere).
pub struct Notifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl Notifier {
    pub fn new(sdk: &SdkConfig, topic_arn: &str) -> Self {
        let mut conf = aws_sdk_sns::config::Builder::from(sdk);
        if let Some(region) = topic_arn.split(':').nth(3).filter(|r| !r.is_empty()) {
            conf = conf.region(Region::new(region.to_owned()));
        }
        Notifier { client: aws_sdk_sns::Client::from_conf(conf.build()), topic_arn: topic_arn.to_owned() }
    }

    /// People get the text, machines the facts (`MessageStructure=json`), and every subscriber
    /// can filter on the message attributes.
    pub async fn publish(&self, m: &Message) -> Result<(), LifeboatError> {
        let mut req = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(&m.subject)
            .message_structure("json")
            .message(m.sns_structured());
        for (k, v) in &m.attributes {
            let (data_type, value) = match v {
                Attribute::Text(t) => ("String", t.clone()),
                Attribute::List(l) => ("String.Array", serde_json::to_string(l).unwrap_or_default()),
            };
            let value = MessageAttributeValue::builder()
                .data_type(data_type)
                .string_value(value)
                .build()
                .map_err(|e| LifeboatError::Rejected(format!("attribute {k}: {e}")))?;
            req = req.message_attributes(*k, value);
        }
        req.send().await.map_err(|e| super::sdk_error("sns:Publish", e))?;
        Ok(())
    }

    /// The AWS Chatbot custom-notification JSON, as the whole message of a Chatbot topic.
    pub async fn publish_chat(&self, m: &Message) -> Result<(), LifeboatError> {
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(m.chat.to_string())
            .send()
            .await
            .map_err(|e| super::sdk_error("sns:Publish", e))?;
        Ok(())
    }
}
