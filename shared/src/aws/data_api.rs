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

use std::time::Duration;

use aws_sdk_rdsdata::types::Field;
use aws_sdk_rdsdata::Client;
use aws_smithy_runtime_api::client::result::SdkError;

use super::db::{mysql_failure, postgres_failure, Engine};
use super::{error_code, sdk_error, PerRegion, SdkConfig};
use crate::decide::validate::{Answer, DbFailure};
use crate::error::LifeboatError;

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
    clients: PerRegion<Client>,
}

/// What one statement got: the first column of the first row, or the database's refusal; Err for
/// AWS itself not answering (throttled, 5xx, the network), which is worth trying again.
type Said = Result<Result<Option<String>, DbFailure>, LifeboatError>;

impl DataApi {
    pub fn new(sdk: &SdkConfig) -> Self {
        DataApi { sdk: sdk.clone(), clients: PerRegion::default() }
    }

    fn client(&self, region: &str) -> Client {
        self.clients
            .get(region, |r| Client::from_conf(aws_sdk_rdsdata::config::Builder::from(&self.sdk).region(r).build()))
    }

    /// `aws::db::ask` over the Data API: each statement's first column of the first row, in a
    /// read-only transaction (PostgreSQL: repeatable read, `timeout` as each statement's
    /// server-side timeout, the transaction in UTC), rolled back at the end. The Data API aborts
    /// a transaction at any error ("Transaction has been aborted due to an error from a previous
    /// call", its troubleshooting guide), so a statement that fails is its own `Err` and the
    /// next runs in a new transaction. Only transaction-scoped settings: the Data API's
    /// connections are pooled, and a session setting would stay on one after the validator.
    /// Inner `Err`: nothing could be asked (the HTTP endpoint off, the login refused, the secret
    /// unreadable); outer: AWS did not answer.
    pub async fn ask(
        &self,
        at: &Cluster,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Result<Vec<Answer>, DbFailure>, LifeboatError> {
        let client = self.client(&at.region);
        let timeout = timeout.min(SERVER_LIMIT);
        let mut open = match self.begin(&client, at, timeout).await? {
            Ok(tx) => Some(tx),
            Err(f) => return Ok(Err(f)),
        };
        let mut answers = Vec::with_capacity(statements.len());
        for sql in statements {
            let tx = match open.take() {
                Some(tx) => tx,
                None => match self.begin(&client, at, timeout).await? {
                    Ok(tx) => tx,
                    Err(f) => {
                        answers.push(Err(f));
                        continue;
                    }
                },
            };
            match self.execute(&client, at, &tx, sql).await? {
                Ok(value) => {
                    answers.push(Ok(value));
                    open = Some(tx);
                }
                Err(f) => answers.push(Err(f)),
            }
        }
        if let Some(tx) = open {
            // Nothing was written (read only); a rollback AWS can't take now ends by itself
            // within three minutes, so its failure changes no answer.
            let rollback = client.rollback_transaction().resource_arn(&at.arn).secret_arn(&at.secret);
            let _ = rollback.transaction_id(tx).send().await;
        }
        Ok(Ok(answers))
    }

    /// A transaction with the engine's read-only set-up (`prelude`), or why none could be begun.
    async fn begin(
        &self,
        client: &Client,
        at: &Cluster,
        timeout: Duration,
    ) -> Result<Result<String, DbFailure>, LifeboatError> {
        let began =
            client.begin_transaction().resource_arn(&at.arn).secret_arn(&at.secret).database(&at.database).send().await;
        let tx = match began {
            Ok(out) => match out.transaction_id.filter(|id| !id.is_empty()) {
                Some(tx) => tx,
                // Without its id every statement would run on its own, committed automatically.
                None => {
                    return Ok(Err(DbFailure::Unreachable(format!(
                        "BeginTransaction on {} gave no transaction id",
                        at.arn
                    ))))
                }
            },
            Err(e) => return refused("rds-data:BeginTransaction", &at.arn, e).map(Err),
        };
        for sql in prelude(at.engine, timeout) {
            // A failed set-up statement has aborted the transaction already.
            if let Err(f) = self.execute(client, at, &tx, &sql).await? {
                return Ok(Err(f));
            }
        }
        Ok(Ok(tx))
    }

    async fn execute(&self, client: &Client, at: &Cluster, tx: &str, sql: &str) -> Said {
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
    }
}

/// Each statement's server-side timeout at most: under the Data API's own 45 s, so the
/// database's cancel (a named `timeout`) comes before the call's.
pub const SERVER_LIMIT: Duration = Duration::from_secs(40);

/// The read-only set-up, statement by statement (the Data API takes one per call), transaction
/// scoped only. PostgreSQL: the Data API's BEGIN has run and no query yet, so the transaction can
/// still be made repeatable read and read only, with `set local`s that end with it. MySQL: a
/// transaction can't be made read only once begun, so a read-only one with a consistent snapshot
/// is started in its place on the same pinned connection (the empty one the Data API began
/// commits implicitly: nothing in it); MySQL's timeout and time zone are session settings, so
/// there the Data API's 45 s is the timeout and timestamps are read in the cluster's time zone
/// (UTC unless its parameter group says otherwise).
fn prelude(engine: Engine, timeout: Duration) -> Vec<String> {
    match engine {
        Engine::Postgres => vec![
            "set transaction isolation level repeatable read read only".into(),
            format!("set local statement_timeout = {}", timeout.as_millis()),
            "set local time zone 'UTC'".into(),
        ],
        Engine::Mysql => vec!["start transaction with consistent snapshot, read only".into()],
    }
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
/// not there or waking, a transaction it ended, a value it can't carry; DatabaseErrorException:
/// the database's own refusal. Its 5xx and throttling stay the invocation's retryable error.
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
            | "BadRequestException"
            | "TransactionNotFoundException",
        ) => DbFailure::Unreachable(format!("{operation} on {arn}: {message}")),
        Some("UnsupportedResultException") => DbFailure::Sql(format!(
            "{message}: the Data API can't carry this column's type; cast it (::text, CAST(... AS CHAR))"
        )),
        Some("StatementTimeoutException") => DbFailure::Timeout(message),
        Some("DatabaseErrorException") => database_error(message),
        Some("InternalServerErrorException" | "ServiceUnavailableError") => {
            return Err(LifeboatError::Transient(format!("{operation} on {arn}: {message}")))
        }
        _ => return Err(sdk_error(operation, e)),
    };
    Ok(failure)
}

/// The database's own refusal, passed on with its code ("...; SQLState: 57014" from PostgreSQL,
/// "...; Error code: 1045; SQLState: 28000" from MySQL), named as a direct connection names it.
fn database_error(message: String) -> DbFailure {
    let after = |key: &str| {
        message
            .rsplit_once(key)
            .map(|(_, rest)| rest.split(|c: char| c == ';' || c.is_whitespace()).next().unwrap_or_default().to_owned())
    };
    if let Some(code) = after("Error code: ").and_then(|c| c.parse::<u16>().ok()) {
        return mysql_failure(code, message, false);
    }
    match after("SQLState: ").filter(|c| c.len() == 5) {
        Some(state) => postgres_failure(&state, message, false),
        None => DbFailure::Sql(message),
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
        assert_eq!(named("Query execution was interrupted, maximum statement execution time exceeded; Error code: 3024; SQLState: HY000"), "timeout");
        assert_eq!(
            named("Access denied for user 'v'@'%' (using password: YES); Error code: 1045; SQLState: 28000"),
            "credentials"
        );
        assert_eq!(named("ERROR: relation \"users\" does not exist; SQLState: 42P01"), "sql");
        // A code in the words, not at the end, names nothing.
        assert_eq!(named("ERROR: column \"28P01\" does not exist; SQLState: 42703"), "sql");
    }

    #[test]
    fn a_read_only_snapshot_is_asked_for_on_both_engines_with_nothing_left_on_the_session() {
        let pg = prelude(Engine::Postgres, Duration::from_millis(1500));
        assert!(pg[0].contains("repeatable read read only") && pg.iter().any(|s| s.ends_with("= 1500")), "{pg:?}");
        let my = prelude(Engine::Mysql, Duration::from_secs(2));
        assert!(my.iter().all(|s| s.contains("read only")), "{my:?}");
        assert!(pg.iter().chain(&my).all(|s| !s.contains("session")), "{pg:?} {my:?}");
    }
}
