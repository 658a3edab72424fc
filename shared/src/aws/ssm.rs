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

/// The parameter's value, or None when it doesn't exist.
pub async fn parameter(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<Option<String>, LifeboatError> {
    match ssm.get_parameter().name(name).with_decryption(true).send().await {
        Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
        Err(e) if super::error_code(&e) == Some("ParameterNotFound") => Ok(None),
        Err(e) => Err(super::sdk_error(&format!("ssm:GetParameter {name}"), e)),
    }
}

/// Write `value` to the String parameter `name` unless it holds it already (a repeat writes
/// nothing, and no new parameter version appears).
pub async fn write_parameter(ssm: &aws_sdk_ssm::Client, name: &str, value: &str) -> Result<bool, LifeboatError> {
    let current = parameter(ssm, name).await?;
    if current.as_deref() == Some(value) {
        return Ok(false);
    }
    // A new parameter needs a Type; an existing one keeps its own when Type is left out.
    let put = ssm.put_parameter().name(name).value(value).overwrite(current.is_some());
    let put = if current.is_none() { put.r#type(aws_sdk_ssm::types::ParameterType::String) } else { put };
    put.send().await.map_err(|e| super::sdk_error(&format!("ssm:PutParameter {name}"), e))?;
    Ok(true)
}

/// The approval links' HMAC key: a SecureString parameter, read once on first use (most
/// invocations never sign or verify anything), refused when too short to be a key.
pub struct ApprovalKey {
    ssm: aws_sdk_ssm::Client,
    name: String,
    key: tokio::sync::OnceCell<Vec<u8>>,
}

impl ApprovalKey {
    pub fn new(sdk: &super::SdkConfig, name: &str) -> Self {
        ApprovalKey { ssm: aws_sdk_ssm::Client::new(sdk), name: name.to_owned(), key: tokio::sync::OnceCell::new() }
    }

    pub async fn get(&self) -> Result<&[u8], LifeboatError> {
        let key = self
            .key
            .get_or_try_init(|| async {
                let value = read_parameter(&self.ssm, &self.name).await?;
                if value.len() < crate::approval::MIN_KEY_BYTES {
                    return Err(LifeboatError::Rejected(format!(
                        "{} holds {} bytes; an approval key needs at least {} (e.g. `openssl rand -base64 48`)",
                        self.name,
                        value.len(),
                        crate::approval::MIN_KEY_BYTES
                    )));
                }
                Ok(value.into_bytes())
            })
            .await?;
        Ok(key)
    }
}
