//! Secrets Manager: the logins the data validator and the heartbeat writer connect with, read
//! from RDS-shaped secrets (JSON with `username` and `password`, as RDS writes them for a managed
//! master password and as Secrets Manager's rotation templates expect:
//! https://docs.aws.amazon.com/secretsmanager/latest/userguide/reference_secret_json_structure.html).
//!
//! GetSecretValue (Secrets Manager API reference,
//! https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html) is
//! called in the secret's own region, the one its ARN names. Its refusals
//! (ResourceNotFoundException, AccessDeniedException, DecryptionFailure: the caller lacks
//! kms:Decrypt on the secret's key, InvalidRequestException: the secret is scheduled for deletion,
//! InvalidParameterException) are the answer `DbFailure::SecretUnreadable`, with what AWS said;
//! throttling, InternalServiceError and the network are worth trying again, so they are the
//! invocation's (retryable) error instead.
//!
//! Logins are kept for `LOGIN_TTL` (AWS recommends caching secret values): the heartbeat writer
//! would otherwise read every secret every minute. A login the database refuses is forgotten
//! (`forget`), so a rotated password is read again at once.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_smithy_runtime_api::client::result::SdkError;

use super::{error_code, sdk_error, PerRegion, SdkConfig};
use crate::config::validate::secret_arn;
use crate::decide::validate::DbFailure;
use crate::error::{retryable_code, LifeboatError};

/// A user and its password, from a Secrets Manager secret, or an RDS IAM token (`db::iam_login`).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    pub user: String,
    pub password: String,
    /// The password is an IAM token: MySQL must send it as it is (`mysql_clear_password`, what
    /// RDS's AWSAuthenticationPlugin asks for), which a password login never allows.
    pub token: bool,
}

// By hand: a login in a log line or a panic message must not carry its password.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("token", &self.token)
            .finish()
    }
}

/// How long a login read is used before it is read again.
pub const LOGIN_TTL: Duration = Duration::from_secs(5 * 60);

/// One client per region, made on first use (a secret is read in its own region), and the logins
/// read lately.
pub struct Secrets {
    sdk: SdkConfig,
    clients: PerRegion<Client>,
    logins: Mutex<BTreeMap<String, (Login, Instant)>>,
}

impl Secrets {
    pub fn new(sdk: &SdkConfig) -> Self {
        Secrets { sdk: sdk.clone(), clients: PerRegion::default(), logins: Mutex::default() }
    }

    fn client(&self, region: &str) -> Client {
        let conf = |r| aws_sdk_secretsmanager::config::Builder::from(&self.sdk).region(r).build();
        self.clients.get(region, |r| Client::from_conf(conf(r)))
    }

    /// The login `arn` holds. Outer `Err`: AWS could not answer now (try again); inner `Err`: it
    /// answered, and the secret can't be used (`DbFailure::SecretUnreadable`, a result to report).
    pub async fn login(&self, arn: &str) -> Result<Result<Login, DbFailure>, LifeboatError> {
        let kept = self.logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(arn).cloned();
        if let Some((login, _)) = kept.filter(|(_, at)| at.elapsed() < LOGIN_TTL) {
            return Ok(Ok(login));
        }
        let region = match secret_arn(arn) {
            Ok(parts) => parts.region.to_owned(),
            Err(why) => return Ok(Err(DbFailure::SecretUnreadable(why))),
        };
        let read = match self.client(&region).get_secret_value().secret_id(arn).send().await {
            Ok(out) => out,
            Err(e) if transient(&e) => return Err(sdk_error(&format!("secretsmanager:GetSecretValue {arn}"), e)),
            Err(e) => {
                let said = sdk_error(&format!("secretsmanager:GetSecretValue {arn}"), e);
                return Ok(Err(DbFailure::SecretUnreadable(said.to_string())));
            }
        };
        let login = match read.secret_string() {
            Some(text) => parse(arn, text),
            None => Err(DbFailure::SecretUnreadable(format!(
                "{arn} holds binary data (SecretBinary), not RDS's JSON with username and password"
            ))),
        };
        if let Ok(l) = &login {
            let mut logins = self.logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            logins.insert(arn.to_owned(), (l.clone(), Instant::now()));
        }
        Ok(login)
    }

    /// Drop the login kept for `arn`: the database refused it (a rotated password).
    pub fn forget(&self, arn: &str) {
        self.logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(arn);
    }
}

/// Whether asking again may get the secret: throttling, Secrets Manager's own trouble, the network.
fn transient<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(_) => error_code(e).is_some_and(|c| c == "InternalServiceError" || retryable_code(c)),
        _ => false,
    }
}

/// RDS's secret JSON as a login; what is wrong with it is said without a word of its value
/// (serde's own messages quote the text they refuse). Its other keys (engine, host, port, dbname)
/// are ignored: the validator connects where the recovery put the database, not where the
/// secret says the source is.
fn parse(arn: &str, text: &str) -> Result<Login, DbFailure> {
    let shape = r#"RDS's secret JSON {"username": "...", "password": "..."}"#;
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(text) else {
        return Err(DbFailure::SecretUnreadable(format!("{arn} is not {shape}")));
    };
    let field = |k: &str| fields.get(k).and_then(serde_json::Value::as_str).filter(|v| !v.is_empty());
    match (field("username"), field("password")) {
        (Some(user), Some(password)) => {
            Ok(Login { user: user.to_owned(), password: password.to_owned(), token: false })
        }
        (None, _) => Err(DbFailure::SecretUnreadable(format!("{arn} has no username (a non-empty string): {shape}"))),
        (_, None) => Err(DbFailure::SecretUnreadable(format!("{arn} has no password (a non-empty string): {shape}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-validator-Ab12";

    #[test]
    fn an_rds_secret_is_a_login_and_anything_else_is_named_without_its_value() {
        let rds = r#"{"engine":"postgres","host":"orders.x.rds.amazonaws.com","port":5432,"username":"lifeboat_validator","password":"p4ss-w0rd","dbname":"orders"}"#;
        assert_eq!(
            parse(ARN, rds),
            Ok(Login { user: "lifeboat_validator".into(), password: "p4ss-w0rd".into(), token: false })
        );
        let managed = r#"{"username":"postgres","password":"managed-by-rds"}"#;
        assert_eq!(parse(ARN, managed).map(|l| l.user), Ok("postgres".to_owned()));
        for (bad, says) in [
            (r#"{"username":"u"}"#, "password"),
            (r#"{"user":"u","password":"hunter2"}"#, "username"),
            (r#"{"username":"u","password":""}"#, "no password"),
            (r#"{"username":"u","password":98765}"#, "no password"),
            (r#"{"username":["hunter2"],"password":"x"}"#, "no username"),
            (r#""hunter2""#, "is not RDS's secret JSON"),
            ("postgres://u:hunter2@host/db", "is not RDS's secret JSON"),
        ] {
            let got = parse(ARN, bad).unwrap_err();
            assert_eq!(got.name(), "secret-unreadable", "{bad}");
            assert!(got.detail().contains(says) && got.detail().contains(ARN), "{bad}: {got}");
            assert!(!got.detail().contains("hunter2") && !got.detail().contains("98765"), "{bad}: {got}");
        }
    }

    #[test]
    fn a_login_never_prints_its_password() {
        let login = Login { user: "lifeboat_validator".into(), password: "hunter2-secret".into(), token: false };
        let shown = format!("{login:?}");
        assert!(shown.contains("lifeboat_validator") && !shown.contains("hunter2"), "{shown}");
    }
}
