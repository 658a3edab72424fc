use aws_config::SdkConfig;

use crate::error::LifeboatError;

pub struct Notifier {
    client: aws_sdk_sns::Client,
}

impl Notifier {
    pub fn new(sdk: &SdkConfig) -> Self {
        Notifier { client: aws_sdk_sns::Client::new(sdk) }
    }

    pub async fn publish(&self, topic_arn: &str, subject: &str, message: &str) -> Result<(), LifeboatError> {
        // SNS subjects are limited to 100 characters.
        let subject: String = subject.chars().take(100).collect();
        self.client
            .publish()
            .topic_arn(topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| super::sdk_error("sns:Publish", e))?;
        Ok(())
    }
}
