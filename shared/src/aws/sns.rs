use aws_config::{Region, SdkConfig};

use crate::error::LifeboatError;

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

    pub async fn publish(&self, subject: &str, message: &str) -> Result<(), LifeboatError> {
        // SNS refuses subjects over 100 characters.
        let subject: String = subject.chars().take(100).collect();
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| super::sdk_error("sns:Publish", e))?;
        Ok(())
    }
}
