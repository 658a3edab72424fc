use crate::error::LifeboatError;

/// A String or SecureString parameter's value (`WithDecryption` is ignored for String).
pub async fn read_parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<String, LifeboatError> {
    let out = ssm
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
