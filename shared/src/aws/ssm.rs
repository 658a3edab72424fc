use aws_config::SdkConfig;

use crate::error::LifeboatError;

pub async fn read_parameter(sdk: &SdkConfig, name: &str) -> Result<String, LifeboatError> {
    let out = aws_sdk_ssm::Client::new(sdk)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| super::sdk_error(&format!("ssm:GetParameter {name}"), e))?;
    out.parameter
        .and_then(|p| p.value)
        .ok_or_else(|| LifeboatError::Rejected(format!("SSM parameter {name} has no value")))
}
