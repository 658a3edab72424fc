//! The operator URL: `failover`, `approve`, `reject` and `drill` are requests to Lifeboat's
//! Function URL (AuthType AWS_IAM), signed with SigV4 as the caller's AWS identity. AWS verifies
//! the signature and the caller's `lambda:InvokeFunctionUrl`, then hands Lifeboat the principal:
//! what Lifeboat records as the requester or approver is what AWS verified, never what this
//! program says. By hand on purpose: the SDK has no client for a Function URL, so this is the SDK's
//! own signer (aws-sigv4) on the HTTP stack the SDK already builds (hyper, rustls).

use std::time::SystemTime;

use aws_config::SdkConfig;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use lifeboat_core::error::LifeboatError;
use serde_json::Value;

use crate::commands::CliError;

fn aws(what: impl Into<String>) -> CliError {
    CliError::Aws(LifeboatError::Rejected(what.into()))
}

/// POST `body` to the operator URL as the caller; Lifeboat's JSON answer.
pub async fn ask(sdk: &SdkConfig, url: &str, body: &Value) -> Result<Value, CliError> {
    if url.is_empty() {
        return Err(CliError::Problem(
            "the stack has no OperatorUrl output: deploy the current template, or set LIFEBOAT_OPERATOR_URL".into(),
        ));
    }
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
    let provider =
        sdk.credentials_provider().ok_or_else(|| aws("no AWS credentials: set a profile or AWS_* variables"))?;
    let creds = provider.provide_credentials().await.map_err(|e| {
        aws(format!(
            "no AWS credentials ({}): run `aws sso login`, pass --profile, or set AWS_* variables",
            first_line(&e.to_string())
        ))
    })?;
    let payload = body.to_string();
    let mut request = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("content-type", "application/json")
        .body(payload.clone())
        .map_err(|e| CliError::Problem(format!("operator URL {url}: {e}")))?;
    let host = request.uri().authority().map(|a| a.to_string()).unwrap_or_default();
    request.headers_mut().insert("host", host.parse().map_err(|_| CliError::Problem(format!("operator URL {url}")))?);
    let identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&region)
        .name("lambda")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| aws(format!("signing: {e}")))?
        .into();
    let headers: Vec<(&str, &str)> =
        request.headers().iter().filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v))).collect();
    let signable = SignableRequest::new("POST", url, headers.into_iter(), SignableBody::Bytes(payload.as_bytes()))
        .map_err(|e| aws(format!("signing: {e}")))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| aws(format!("signing: {e}")))?.into_parts();
    instructions.apply_to_request_http1x(&mut request);

    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::aws_lc_rs::default_provider())
        .map_err(|e| aws(format!("TLS: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let (parts, payload) = request.into_parts();
    let sent = client.request(http::Request::from_parts(parts, Full::new(Bytes::from(payload))));
    let response = tokio::time::timeout(std::time::Duration::from_secs(120), sent)
        .await
        .map_err(|_| aws(format!("{url} did not answer in 2 minutes")))?
        .map_err(|e| aws(format!("{url} unreachable: {}", first_line(&e.to_string()))))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.map_err(|e| aws(format!("{url}: {e}")))?.to_bytes();
    let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if (200..300).contains(&status) {
        return Ok(answer);
    }
    // Lifeboat's own refusals carry `error`; AWS's (an unsigned or unauthorised caller) don't.
    match answer["error"].as_str() {
        Some(why) if answer["retryable"] == true => Err(CliError::Aws(LifeboatError::Transient(why.to_owned()))),
        Some(why) if status < 500 => Err(CliError::from(LifeboatError::Rejected(why.to_owned()))),
        _ if status == 403 => Err(aws("AWS refused the request to Lifeboat's operator URL (403): your identity needs the stack's ApproverPolicy (lambda:InvokeFunctionUrl)")),
        _ => Err(aws(format!("Lifeboat's operator URL answered {status}: {}", first_line(&String::from_utf8_lossy(&bytes))))),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}
