//! The RDS Data API (rds-data): the data checks of an Aurora cluster asked over HTTPS, for a
//! validator outside the cluster's VPC (`validate.connect.data_api`). The Data API logs in with
//! the secret's user itself (the caller needs `secretsmanager:GetSecretValue` on it and
//! `rds-data:*Transaction` / `rds-data:ExecuteStatement` on the cluster), so no CA bundle, socket
//! or driver is involved; the statements are the direct connection's (`aws::db`), one call each.
//!
//! Data API reference (https://docs.aws.amazon.com/rdsdataservice/latest/APIReference/):
//! BeginTransaction pins one database connection to a transaction id until CommitTransaction or
//! RollbackTransaction ("A transaction times out if no calls use its transaction ID in three
//! minutes ... rolled back automatically"); a call "times out if it's not finished processing
//! within 45 seconds" (StatementTimeoutException). The cluster's HTTP endpoint must be enabled
//! (HttpEndpointNotEnabledException; RDS's EnableHttpEndpoint). A statement the database refuses is
//! DatabaseErrorException with the database's own message, which names PostgreSQL's SQLSTATE or
//! MySQL's error number: that is how a wrong password or the session's own timeout is told apart.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::Region;
use aws_sdk_rdsdata::types::Field;
use aws_sdk_rdsdata::Client;
use aws_smithy_runtime_api::client::result::SdkError;

use super::db::Engine;
use super::{error_code, sdk_error, SdkConfig};
use crate::decide::validate::{Answer, DbFailure};
use crate::error::LifeboatError;

/// The Data API's own limit on a call (the User Guide's 45 seconds): a check's timeout above it
/// is cut to it.
pub const CALL_LIMIT: Duration = Duration::from_secs(45);

/// Where the checks go: the cluster (its ARN), the secret the Data API logs in with, the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub arn: String,
    pub region: String,
    pub engine: Engine,
    pub secret: String,
    pub database: String,
}

/// One client per region, made on first use (a cluster is asked in its own region).
pub struct DataApi {
    sdk: SdkConfig,
    clients: Mutex<BTreeMap<String, Client>>,
}

/// What one statement got: the first column of the first row, or the database's refusal; Err for
/// AWS itself not answering (throttled, 5xx, the network), which is worth trying again.
type Said = Result<Result<Option<String>, DbFailure>, LifeboatError>;

impl DataApi {
    pub fn new(sdk: &SdkConfig) -> Self {
        DataApi { sdk: sdk.clone(), clients: Mutex::default() }
    }

    fn client(&self, region: &str) -> Client {
        // A poisoned lock only means another invocation panicked mid-insert; the map is still whole.
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let client = clients.entry(region.to_owned()).or_insert_with(|| {
            let conf = aws_sdk_rdsdata::config::Builder::from(&self.sdk).region(Region::new(region.to_owned())).build();
            Client::from_conf(conf)
        });
        client.clone()
    }

    /// `aws::db::ask` over the Data API: in ONE read-only transaction, with `timeout` as each
    /// statement's server-side timeout and the session in UTC, each statement's first column of
    /// the first row. A statement that fails is its own `Err` and the next still runs; the
    /// transaction is rolled back at the end. Inner `Err`: nothing could be asked (the HTTP
    /// endpoint off, the login refused, the secret unreadable); outer: AWS did not answer.
    pub async fn ask(
        &self,
        at: &Cluster,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Result<Vec<Answer>, DbFailure>, LifeboatError> {
        let client = self.client(&at.region);
        let began =
            client.begin_transaction().resource_arn(&at.arn).secret_arn(&at.secret).database(&at.database).send().await;
        let tx = match began {
            Ok(out) => out.transaction_id.unwrap_or_default(),
            Err(e) => return refused("rds-data:BeginTransaction", &at.arn, e).map(Err),
        };
        let asked = self.asked(&client, at, &tx, statements, timeout.min(CALL_LIMIT)).await;
        // Nothing was written (read only); a rollback AWS can't take now ends by itself within
        // three minutes, so its failure changes no answer.
        let _ =
            client.rollback_transaction().resource_arn(&at.arn).secret_arn(&at.secret).transaction_id(&tx).send().await;
        asked
    }

    async fn asked(
        &self,
        client: &Client,
        at: &Cluster,
        tx: &str,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Result<Vec<Answer>, DbFailure>, LifeboatError> {
        let say = async |sql: &str| -> Said {
            let out = client
                .execute_statement()
                .resource_arn(&at.arn)
                .secret_arn(&at.secret)
                .database(&at.database)
                .transaction_id(tx)
                .sql(sql)
                .send()
                .await;
            match out {
                Ok(out) => Ok(Ok(out.records().first().and_then(|row| row.first()).and_then(text))),
                Err(e) => refused("rds-data:ExecuteStatement", &at.arn, e).map(Err),
            }
        };
        for sql in prelude(at.engine, timeout) {
            match say(&sql).await? {
                Ok(_) => {}
                // MariaDB has no max_execution_time, MySQL no max_statement_time: each is set,
                // and the one the server doesn't know is no failure.
                Err(DbFailure::Sql(why)) if at.engine == Engine::Mysql && why.contains(UNKNOWN_VARIABLE) => {}
                Err(f) => return Ok(Err(f)),
            }
        }
        let mut answers = Vec::with_capacity(statements.len());
        for sql in statements {
            let answer = match at.engine {
                Engine::Mysql => say(sql).await?,
                // PostgreSQL aborts the whole transaction on any error: each check under a
                // savepoint rolled back on failure, as the direct connection does.
                Engine::Postgres => {
                    if let Err(f) = say("savepoint lifeboat_check").await? {
                        answers.push(Err(f));
                        continue;
                    }
                    let answer = say(sql).await?;
                    let after = if answer.is_ok() {
                        "release savepoint lifeboat_check"
                    } else {
                        "rollback to savepoint lifeboat_check"
                    };
                    if let Err(f) = say(after).await? {
                        answers.push(answer);
                        answers.extend(statements[answers.len()..].iter().map(|_| Err(left(&f))));
                        return Ok(Ok(answers));
                    }
                    answer
                }
            };
            answers.push(answer);
        }
        Ok(Ok(answers))
    }
}

/// MySQL's ER_UNKNOWN_SYSTEM_VARIABLE, as the Data API passes the server's message on.
const UNKNOWN_VARIABLE: &str = "1193";

/// The direct connection's session, statement by statement (the Data API takes one per call).
/// PostgreSQL: the Data API's BEGIN has run, no query yet, so the transaction can still be made
/// repeatable read and read only. MySQL: a transaction can't be made read only once begun, so a
/// read-only one is started in its place on the same pinned connection (the empty one the Data
/// API began commits implicitly: nothing in it).
fn prelude(engine: Engine, timeout: Duration) -> Vec<String> {
    match engine {
        Engine::Postgres => vec![
            "set transaction isolation level repeatable read read only".into(),
            "set session characteristics as transaction read only".into(),
            format!("set local statement_timeout = {}", timeout.as_millis()),
            "set local time zone 'UTC'".into(),
        ],
        Engine::Mysql => vec![
            "set session time_zone = '+00:00'".into(),
            format!("set session max_statement_time = {:.3}", timeout.as_secs_f64()),
            format!("set session max_execution_time = {}", timeout.as_millis()),
            "set session transaction read only".into(),
            "start transaction with consistent snapshot, read only".into(),
        ],
    }
}

fn left(f: &DbFailure) -> DbFailure {
    DbFailure::Sql(format!("not run: the validator's transaction can't go on ({f})"))
}

/// A Data API value as text, as the database would write it (`decide::validate` reads numbers and
/// timestamps from text). Timestamps come as "YYYY-MM-DD HH:MM:SS[.fff]" in UTC.
pub fn text(field: &Field) -> Option<String> {
    match field {
        Field::IsNull(true) => None,
        Field::LongValue(n) => Some(n.to_string()),
        Field::DoubleValue(n) => Some(n.to_string()),
        Field::StringValue(s) => Some(s.clone()),
        Field::BooleanValue(b) => Some(b.to_string()),
        _ => None,
    }
}

/// What a refusal means. The Data API's own codes: the endpoint off, the secret, the database
/// not there or waking; DatabaseErrorException: the database's message, named by its SQLSTATE or
/// error number. AWS's throttling and 5xx stay the invocation's retryable error.
fn refused<E, R>(operation: &str, arn: &str, e: SdkError<E, R>) -> Result<DbFailure, LifeboatError>
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let message = match &e {
        SdkError::ServiceError(s) => s.err().message().unwrap_or_default().to_owned(),
        _ => String::new(),
    };
    let failure = match error_code(&e) {
        Some("HttpEndpointNotEnabledException") => DbFailure::Unreachable(format!(
            "the Data API is not enabled on {arn}: enable it (aws rds enable-http-endpoint --resource-arn {arn}) \
             or connect directly (validate.connect without data_api)"
        )),
        Some("SecretsErrorException" | "InvalidSecretException") => DbFailure::SecretUnreadable(message),
        Some("AccessDeniedException" | "ForbiddenException") => DbFailure::Credentials(format!(
            "AWS refused the validator's role ({message}): it needs rds-data:BeginTransaction, ExecuteStatement and \
             RollbackTransaction on {arn}, and secretsmanager:GetSecretValue on the secret"
        )),
        Some(
            "DatabaseNotFoundException"
            | "DatabaseUnavailableException"
            | "DatabaseResumingException"
            | "InvalidResourceStateException"
            | "BadRequestException",
        ) => DbFailure::Unreachable(format!("{operation} on {arn}: {message}")),
        Some("StatementTimeoutException") => DbFailure::Timeout(message),
        Some("DatabaseErrorException") => database_error(message),
        _ => return Err(sdk_error(operation, e)),
    };
    Ok(failure)
}

/// The database's own refusal, passed on by the Data API, named as a direct connection names it.
fn database_error(message: String) -> DbFailure {
    let said = |needles: &[&str]| needles.iter().any(|n| message.contains(n));
    if said(&["28P01", "28000", "password authentication failed", "Access denied for user", "1045"]) {
        DbFailure::Credentials(message)
    } else if said(&[
        "57014",
        "statement timeout",
        "1969",
        "3024",
        "max_statement_time exceeded",
        "execution time exceeded",
    ]) {
        DbFailure::Timeout(message)
    } else {
        DbFailure::Sql(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_text_and_null_as_none() {
        assert_eq!(text(&Field::LongValue(1200)), Some("1200".into()));
        assert_eq!(text(&Field::StringValue("2026-12-07 14:01:18.5".into())), Some("2026-12-07 14:01:18.5".into()));
        assert_eq!(text(&Field::IsNull(true)), None);
        assert_eq!(text(&Field::DoubleValue(0.5)), Some("0.5".into()));
    }

    #[test]
    fn the_databases_refusals_are_named_as_a_direct_connection_names_them() {
        let named = |m: &str| database_error(m.to_owned()).name();
        assert_eq!(named("ERROR: password authentication failed for user \"v\"; SQLState: 28P01"), "credentials");
        assert_eq!(named("ERROR: canceling statement due to statement timeout; SQLState: 57014"), "timeout");
        assert_eq!(named("ERROR: 1969 Query execution was interrupted (max_statement_time exceeded)"), "timeout");
        assert_eq!(named("ERROR: relation \"users\" does not exist; SQLState: 42P01"), "sql");
        assert_eq!(named("ERROR: 1193 Unknown system variable 'max_execution_time'"), "sql");
    }

    #[test]
    fn a_read_only_snapshot_is_asked_for_on_both_engines() {
        let pg = prelude(Engine::Postgres, Duration::from_millis(1500));
        assert!(pg[0].contains("repeatable read read only") && pg.iter().any(|s| s.ends_with("= 1500")), "{pg:?}");
        let my = prelude(Engine::Mysql, Duration::from_secs(2));
        assert!(my.last().is_some_and(|s| s.contains("read only")), "{my:?}");
    }
}
