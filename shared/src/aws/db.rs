//! The databases themselves: the data validator's connection to a recovered PostgreSQL or
//! MySQL/MariaDB database, and the heartbeat writer's to a primary. No decisions: what an answer
//! means is `decide::validate`'s.
//!
//! TLS is required and verified against `Roots` (RDS's global bundle in AWS, the emulator's CA in
//! tests), hostname or IP included; a server that offers no TLS is refused, never asked in
//! plaintext. Both drivers run on the rustls 0.23 + aws-lc-rs stack the AWS SDK already builds:
//! - PostgreSQL: `tokio-postgres` (rust-postgres, the maintained async client) with
//!   `tokio-postgres-rustls` (a thin `MakeTlsConnect` over tokio-rustls, with SCRAM channel
//!   binding). `SslMode::Require` fails when the server answers the SSLRequest with "no".
//! - MySQL/MariaDB: `mysql_async` (the maintained async client; sqlx would bring its own runtime
//!   layer and macros for one query shape), default features off: text protocol, rustls,
//!   pure-Rust zlib, no derive macros. Its built-in roots (webpki-roots) are switched off, so only
//!   `Roots` is trusted, and `prefer_socket` too: on a loopback host it would otherwise move to the
//!   server's Unix socket, where it does not use TLS.
//!
//! A statement's failure is its own answer; the others still run. PostgreSQL aborts the whole
//! transaction on any error, so each statement runs under a savepoint rolled back on failure;
//! MySQL rolls back only the failed statement.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio::time::timeout as within;

pub use super::secrets::Login;
use crate::config::validate::HEARTBEAT_TABLE;
use crate::decide::validate::{Answer, DbFailure};
use crate::error::LifeboatError;

/// How long a connection (TCP, TLS, login) may take: an RDS endpoint in the same VPC answers in
/// milliseconds; silence this long is a security group dropping packets.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much longer than the server's own statement timeout the client waits before it gives up
/// on the connection: the server's cancel is the expected end, this is the backstop when the
/// server or the network stops answering.
pub const BACKSTOP: Duration = Duration::from_secs(5);
/// The validator's and the heartbeat writer's name in `pg_stat_activity`.
const APPLICATION: &str = "lifeboat";

/// The two protocols Lifeboat speaks; RDS's engine names map onto them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    /// An RDS engine name (`DescribeDBInstances` / `DescribeDBClusters` `Engine`): `postgres`,
    /// `aurora-postgresql`, `mysql`, `mariadb`, `aurora-mysql` (and `aurora`, Aurora MySQL 1's).
    /// None for the engines Lifeboat can't check inside (Oracle, SQL Server, Db2).
    pub fn of(engine: &str) -> Option<Engine> {
        match engine.trim().to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" | "aurora-postgresql" => Some(Engine::Postgres),
            "mysql" | "mariadb" | "aurora-mysql" | "aurora" => Some(Engine::Mysql),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }
}

/// Where a database answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub engine: Engine,
    pub host: String,
    pub port: u16,
    /// The database (MySQL: the schema) to connect to.
    pub database: String,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.port, self.database)
    }
}

/// The certificate authorities a database's certificate must chain to, read once at init.
#[derive(Clone)]
pub struct Roots {
    /// PostgreSQL's TLS settings, built once: only these roots, aws-lc-rs, TLS 1.2 and 1.3.
    postgres: Arc<rustls::ClientConfig>,
    /// The usable certificates as PEM, for `mysql_async`, which builds its own TLS settings per
    /// connection.
    pem: Arc<[u8]>,
    count: usize,
    ignored: usize,
}

impl std::fmt::Debug for Roots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Roots({} certificates, {} ignored)", self.count, self.ignored)
    }
}

impl Roots {
    /// The certificates of a PEM bundle that can be trust anchors. One that can't is left out and
    /// counted (`ignored`): the databases whose CA it is fail with `Tls`, the others still work. A
    /// bundle with none is refused.
    pub fn from_pem(pem: &[u8]) -> Result<Roots, String> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("not a PEM bundle: {e}"))?;
        if certs.is_empty() {
            return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        let count = certs.len();
        let mut store = rustls::RootCertStore::empty();
        // mysql_async reads the bundle again at each connection and refuses it whole for one
        // certificate it can't use: it gets the usable ones only, as PEM again.
        let mut usable = String::new();
        for cert in certs {
            if store.add(cert.clone()).is_ok() {
                usable.push_str(&pem_of(&cert));
            }
        }
        if store.is_empty() {
            return Err(format!("none of its {count} certificates can be a trust anchor"));
        }
        // mysql_async asks rustls for the process's default provider; make it the one the SDK
        // uses (an error only says one is installed already).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let kept = store.len();
        let postgres =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS settings: {e}"))?
                .with_root_certificates(store)
                .with_no_client_auth();
        Ok(Roots { postgres: Arc::new(postgres), pem: usable.into_bytes().into(), count: kept, ignored: count - kept })
    }

    /// How many trust anchors the bundle gave.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many of the bundle's certificates could not be trust anchors (left out).
    pub fn ignored(&self) -> usize {
        self.ignored
    }
}

/// A certificate as PEM: base64 in lines of 64 (RFC 7468).
fn pem_of(cert: &CertificateDer<'_>) -> String {
    use base64::Engine as _;
    let text = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
    let lines: Vec<&str> = text.as_bytes().chunks(64).filter_map(|c| std::str::from_utf8(c).ok()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// How long an IAM token is good for: RDS's own limit ("Each token has a lifetime of 15
/// minutes"); it is checked only at login, and each validation signs its own.
const TOKEN_SECONDS: u64 = 900;

/// RDS IAM database authentication: `user` with a token the function's own credentials sign now
/// for `ep` (host and port as it connects to them) in `region` (where the database is), sent as
/// the password over the verified TLS every connection has. Signing is local: Err only when the
/// function has no credentials to sign with. Why the SDK's generator: RDS's token is a SigV4
/// presigned `connect` URL; `aws_sdk_rds::auth_token` is AWS's own.
pub async fn iam_login(
    sdk: &super::SdkConfig,
    region: &str,
    ep: &Endpoint,
    user: &str,
) -> Result<Login, LifeboatError> {
    use aws_sdk_rds::auth_token::{AuthTokenGenerator, Config};
    let config = Config::builder()
        .hostname(&ep.host)
        .port(u64::from(ep.port))
        .username(user)
        .region(aws_sdk_rds::config::Region::new(region.to_owned()))
        .expires_in(TOKEN_SECONDS)
        .build()
        .map_err(|e| LifeboatError::Rejected(format!("an IAM token for {user}@{ep}: {e}")))?;
    let token = AuthTokenGenerator::new(config)
        .auth_token(sdk)
        .await
        .map_err(|e| LifeboatError::Transient(format!("no credentials to sign an IAM token for {user}@{ep}: {e}")))?;
    Ok(Login { user: user.to_owned(), password: token.as_str().to_owned(), token: true })
}

/// Connect (TLS required, verified against `roots`), then in ONE read-only transaction, with
/// `timeout` as each statement's server-side timeout and the session in UTC, run each statement
/// as a text query and answer its first column of the first row. A statement that fails is its
/// own `Err`, and the next still runs; the transaction is rolled back at the end. Err: nothing
/// could be asked (unreachable, TLS, login).
pub async fn ask(
    ep: &Endpoint,
    login: &Login,
    roots: &Roots,
    statements: &[&str],
    timeout: Duration,
) -> Result<Vec<Answer>, DbFailure> {
    match ep.engine {
        Engine::Postgres => postgres::ask(ep, login, roots, statements, timeout).await,
        Engine::Mysql => mysql::ask(ep, login, roots, statements, timeout).await,
    }
}

/// The heartbeat writer: in one short transaction, upsert row `id = 1` of `lifeboat_heartbeat`
/// with the server's own clock (`now()`, UTC), so the row says when the primary last committed.
pub async fn beat(ep: &Endpoint, login: &Login, roots: &Roots, timeout: Duration) -> Result<(), DbFailure> {
    match ep.engine {
        Engine::Postgres => postgres::beat(ep, login, roots, timeout).await,
        Engine::Mysql => mysql::beat(ep, login, roots, timeout).await,
    }
}

/// When the client's backstop fired: that statement timed out, and the connection can't be trusted
/// with the next, so those are not run.
fn backstop_fired(timeout: Duration) -> (DbFailure, DbFailure) {
    let waited = (timeout + BACKSTOP).as_secs();
    (
        DbFailure::Timeout(format!("no answer within {waited}s (the server did not end it at its own timeout)")),
        DbFailure::Timeout(format!("not run: the database stopped answering an earlier statement for {waited}s")),
    )
}

/// An error and its causes as one line: tokio-postgres's own text names only the kind ("error
/// connecting to server"), its cause says why ("Connection refused (os error 111)").
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        next = cause.source();
    }
    text
}

/// A connection's failure, naming where it went when that is the point (unreachable, TLS).
fn at(ep: &Endpoint, failure: DbFailure) -> DbFailure {
    match failure {
        DbFailure::Unreachable(why) => DbFailure::Unreachable(format!("{}:{}: {why}", ep.host, ep.port)),
        DbFailure::Tls(why) => DbFailure::Tls(format!("{}:{}: {why}", ep.host, ep.port)),
        other => other,
    }
}

/// The rustls error somewhere in `e`'s chain, said as rustls says it (an untrusted or expired
/// certificate, a name it isn't for). `io::Error::source` skips the error it wraps, so each
/// `io::Error` is opened by hand.
fn tls_cause(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            if let Some(found) = tls_cause(inner) {
                return Some(found);
            }
        }
        next = err.source();
    }
    None
}

/// PostgreSQL's SQLSTATE codes (Appendix A of its manual), by what a person does about them.
/// `connecting`: the login and the session's set-up, where a permission error is the login's.
pub(super) fn postgres_failure(code: &str, message: String, connecting: bool) -> DbFailure {
    match code {
        // invalid_authorization_specification (wrong user, or pg_hba refuses), invalid_password,
        // invalid_catalog_name (no such database: `connect.database`).
        "28000" | "28P01" | "3D000" => DbFailure::Credentials(message),
        // insufficient_privilege at login: no CONNECT on the database.
        "42501" if connecting => DbFailure::Credentials(message),
        // query_canceled (statement_timeout), lock_not_available, idle_in_transaction_session_timeout.
        "57014" | "55P03" | "25P03" => DbFailure::Timeout(message),
        // too_many_connections, cannot_connect_now (starting, recovering), admin/crash shutdown,
        // any connection exception, insufficient resources: the server, not the request.
        "53300" | "57P01" | "57P02" | "57P03" => DbFailure::Unreachable(message),
        c if c.starts_with("08") || c.starts_with("53") => DbFailure::Unreachable(message),
        _ => DbFailure::Sql(message),
    }
}

/// MySQL's and MariaDB's server error numbers, by what a person does about them.
pub(super) fn mysql_failure(code: u16, message: String, connecting: bool) -> DbFailure {
    match code {
        // ER_ACCESS_DENIED_ERROR, ER_ACCESS_DENIED_NO_PASSWORD_ERROR, ER_NOT_SUPPORTED_AUTH_MODE,
        // ER_HOST_NOT_PRIVILEGED, ER_MUST_CHANGE_PASSWORD(_LOGIN), ER_ACCOUNT_HAS_BEEN_LOCKED.
        1045 | 1698 | 1251 | 1130 | 1820 | 1862 | 3118 => DbFailure::Credentials(message),
        // ER_DBACCESS_DENIED_ERROR, ER_BAD_DB_ERROR: `connect.database` is not this user's to use.
        1044 | 1049 if connecting => DbFailure::Credentials(message),
        // MariaDB's ER_STATEMENT_TIMEOUT (max_statement_time), MySQL's ER_QUERY_TIMEOUT
        // (max_execution_time), ER_LOCK_WAIT_TIMEOUT, ER_QUERY_INTERRUPTED.
        1969 | 3024 | 1205 | 1317 => DbFailure::Timeout(message),
        // ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS, ER_HOST_IS_BLOCKED,
        // ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED.
        1040 | 1203 | 1129 | 1053 | 1927 => DbFailure::Unreachable(message),
        _ => DbFailure::Sql(message),
    }
}

mod postgres {
    use tokio_postgres::config::SslMode;
    use tokio_postgres::{Client, SimpleQueryMessage};

    use super::*;

    /// A client and the task that drives its connection (ended by dropping the client).
    struct Session {
        client: Client,
        driver: tokio::task::JoinHandle<()>,
    }

    impl Session {
        /// Dropping the client sends Terminate; the driver then ends.
        async fn close(self) {
            drop(self.client);
            let _ = within(Duration::from_secs(2), self.driver).await;
        }
    }

    fn failure(e: &tokio_postgres::Error, connecting: bool) -> DbFailure {
        if let Some(db) = e.as_db_error() {
            let message = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            return postgres_failure(db.code().code(), message, connecting);
        }
        // tokio-postgres's own errors are known by their kind's text: "error performing TLS
        // handshake: server does not support TLS", "authentication error: ...", "error connecting
        // to server: Connection refused", "timeout waiting for server", "connection closed".
        let text = with_causes(e);
        if let Some(why) = tls_cause(e) {
            DbFailure::Tls(why)
        } else if text.starts_with("error performing TLS handshake") {
            DbFailure::Tls(text)
        } else if text.starts_with("authentication error") {
            DbFailure::Credentials(text)
        } else {
            DbFailure::Unreachable(text)
        }
    }

    async fn connect(ep: &Endpoint, login: &Login, roots: &Roots) -> Result<Session, DbFailure> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&ep.host)
            .port(ep.port)
            .dbname(&ep.database)
            .user(&login.user)
            .password(&login.password)
            .application_name(APPLICATION)
            .ssl_mode(SslMode::Require)
            .connect_timeout(CONNECT_TIMEOUT);
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*roots.postgres).clone());
        let (client, connection) = match within(CONNECT_TIMEOUT, config.connect(tls)).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(e)) => return Err(at(ep, failure(&e, true))),
            Err(_) => {
                return Err(at(ep, DbFailure::Unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()))))
            }
        };
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
        });
        Ok(Session { client, driver })
    }

    /// The first column of the first row, as PostgreSQL's text format writes it.
    fn first_text(messages: &[SimpleQueryMessage]) -> Option<String> {
        messages.iter().find_map(|m| match m {
            // A row without columns (`select;`) has no first column: no answer.
            SimpleQueryMessage::Row(row) => Some(row.try_get(0).ok().flatten().map(str::to_owned)),
            _ => None,
        })?
    }

    /// A statement of our own, under the backstop.
    async fn run(client: &Client, sql: &str, wait: Duration, connecting: bool) -> Result<(), DbFailure> {
        match within(wait, client.simple_query(sql)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(failure(&e, connecting)),
            Err(_) => Err(DbFailure::Timeout(format!("`{sql}`: no answer within {}s", wait.as_secs()))),
        }
    }

    pub(super) async fn ask(
        ep: &Endpoint,
        login: &Login,
        roots: &Roots,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Answer>, DbFailure> {
        let session = connect(ep, login, roots).await?;
        let mut broken = None;
        let answers = asked(&session.client, statements, timeout, &mut broken).await;
        // Nothing was written (read only): a connection that stopped answering is closed as it is,
        // and the server rolls back what it had.
        if broken.is_none() {
            let _ = run(&session.client, "rollback", BACKSTOP, false).await;
        }
        session.close().await;
        answers
    }

    /// `broken`: why the connection can't be used any more, once it can't.
    async fn asked(
        client: &Client,
        statements: &[&str],
        timeout: Duration,
        broken: &mut Option<DbFailure>,
    ) -> Result<Vec<Answer>, DbFailure> {
        let ms = timeout.as_millis();
        // One snapshot for every statement (repeatable read), so counts and the newest write
        // describe the same moment; `set local` ends with the transaction. Read only for the
        // session too: a check that ends the transaction itself (`commit; ...`) still can't write.
        let begin = format!(
            "set session characteristics as transaction read only; \
             begin isolation level repeatable read read only; set local statement_timeout = {ms}; \
             set local time zone 'UTC'"
        );
        run(client, &begin, CONNECT_TIMEOUT, true).await?;
        let mut answers = Vec::with_capacity(statements.len());
        for sql in statements {
            if let Some(f) = broken.as_ref() {
                answers.push(Err(f.clone()));
                continue;
            }
            if let Err(f) = run(client, "savepoint lifeboat_check", BACKSTOP, false).await {
                answers.push(Err(f.clone()));
                *broken = Some(f);
                continue;
            }
            match within(timeout + BACKSTOP, client.simple_query(sql)).await {
                Ok(Ok(messages)) => {
                    answers.push(Ok(first_text(&messages)));
                    if let Err(f) = run(client, "release savepoint lifeboat_check", BACKSTOP, false).await {
                        *broken = Some(left_transaction(f));
                    }
                }
                Ok(Err(e)) => {
                    answers.push(Err(failure(&e, false)));
                    // The failed statement aborted the transaction; back to before it.
                    if let Err(f) = run(client, "rollback to savepoint lifeboat_check", BACKSTOP, false).await {
                        *broken = Some(left_transaction(f));
                    }
                }
                Err(_) => {
                    let (this, rest) = backstop_fired(timeout);
                    answers.push(Err(this));
                    *broken = Some(rest);
                }
            }
        }
        Ok(answers)
    }

    /// The savepoint is gone when a statement ended the transaction itself (`commit; ...`): the
    /// statements after it are not run outside the validator's snapshot.
    fn left_transaction(f: DbFailure) -> DbFailure {
        match f {
            DbFailure::Sql(why) => {
                DbFailure::Sql(format!("not run: an earlier statement ended the validator's transaction ({why})"))
            }
            other => other,
        }
    }

    pub(super) async fn beat(ep: &Endpoint, login: &Login, roots: &Roots, timeout: Duration) -> Result<(), DbFailure> {
        let session = connect(ep, login, roots).await?;
        let ms = timeout.as_millis();
        // One round trip: a failed insert aborts the transaction, and `commit` then rolls it back.
        let sql = format!(
            "begin; set local statement_timeout = {ms}; set local time zone 'UTC'; \
             insert into {HEARTBEAT_TABLE} (id, at) values (1, now()) on conflict (id) do update set at = now(); \
             commit"
        );
        let wrote = match within(timeout + BACKSTOP, session.client.simple_query(&sql)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(failure(&e, false)),
            Err(_) => Err(backstop_fired(timeout).0),
        };
        session.close().await;
        wrote
    }
}

mod mysql {
    use mysql_async::prelude::Queryable;
    use mysql_async::{Conn, Opts, OptsBuilder, Row, SslOpts, Value};

    use super::*;

    /// ER_UNKNOWN_SYSTEM_VARIABLE: MySQL has no `max_statement_time`, MariaDB no `max_execution_time`.
    const UNKNOWN_VARIABLE: u16 = 1193;

    pub(super) fn failure(e: &mysql_async::Error, connecting: bool) -> DbFailure {
        use mysql_async::{DriverError, Error, IoError};
        match e {
            Error::Server(s) => mysql_failure(s.code, format!("{} (error {})", s.message, s.code), connecting),
            Error::Driver(DriverError::NoClientSslFlagFromServer) => {
                DbFailure::Tls("the server does not offer TLS, which the validator requires".into())
            }
            Error::Driver(
                DriverError::UnknownAuthPlugin { .. }
                | DriverError::CleartextPluginDisabled
                | DriverError::MysqlOldPasswordDisabled,
            ) => DbFailure::Credentials(e.to_string()),
            Error::Io(IoError::Tls(t)) => DbFailure::Tls(t.to_string()),
            // Its own text says "Input/output error: " twice before the reason.
            Error::Io(IoError::Io(io)) if tls_cause(io).is_none() => DbFailure::Unreachable(io.to_string()),
            other => match tls_cause(other) {
                Some(why) => DbFailure::Tls(why),
                None => DbFailure::Unreachable(other.to_string()),
            },
        }
    }

    fn options(ep: &Endpoint, login: &Login, roots: &Roots) -> Opts {
        let tls = SslOpts::default().with_root_certs(vec![roots.pem.to_vec().into()]).with_disable_built_in_roots(true);
        OptsBuilder::default()
            .ip_or_hostname(ep.host.clone())
            .tcp_port(ep.port)
            .user(Some(login.user.clone()))
            .pass(Some(login.password.clone()))
            .enable_cleartext_plugin(login.token)
            .db_name(Some(ep.database.clone()))
            .prefer_socket(false)
            .ssl_opts(tls)
            .into()
    }

    async fn connect(ep: &Endpoint, login: &Login, roots: &Roots) -> Result<Conn, DbFailure> {
        match within(CONNECT_TIMEOUT, Conn::new(options(ep, login, roots))).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(at(ep, failure(&e, true))),
            Err(_) => Err(at(ep, DbFailure::Unreachable(format!("no answer within {}s", CONNECT_TIMEOUT.as_secs())))),
        }
    }

    /// A statement of our own, under the backstop; `tolerate` is an error number that is no error.
    async fn run(conn: &mut Conn, sql: &str, wait: Duration, tolerate: Option<u16>) -> Result<(), DbFailure> {
        match within(wait, conn.query_drop(sql)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(mysql_async::Error::Server(s))) if Some(s.code) == tolerate => Ok(()),
            Ok(Err(e)) => Err(failure(&e, true)),
            Err(_) => Err(DbFailure::Timeout(format!("`{sql}`: no answer within {}s", wait.as_secs()))),
        }
    }

    /// The session in UTC, and each statement's server-side timeout: MariaDB's
    /// `max_statement_time` (seconds, any statement) or MySQL's `max_execution_time`
    /// (milliseconds, SELECTs); each server ignores the other's, so both are set, tolerantly.
    async fn settle(conn: &mut Conn, timeout: Duration) -> Result<(), DbFailure> {
        run(conn, "set session time_zone = '+00:00'", CONNECT_TIMEOUT, None).await?;
        let seconds = format!("set session max_statement_time = {:.3}", timeout.as_secs_f64());
        run(conn, &seconds, CONNECT_TIMEOUT, Some(UNKNOWN_VARIABLE)).await?;
        let ms = format!("set session max_execution_time = {}", timeout.as_millis());
        run(conn, &ms, CONNECT_TIMEOUT, Some(UNKNOWN_VARIABLE)).await
    }

    /// The text protocol's first column as text; the other arms are the binary protocol's, for
    /// completeness.
    pub(super) fn text(value: &Value) -> Option<String> {
        match value {
            Value::NULL => None,
            Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
            Value::Int(n) => Some(n.to_string()),
            Value::UInt(n) => Some(n.to_string()),
            Value::Float(n) => Some(n.to_string()),
            Value::Double(n) => Some(n.to_string()),
            Value::Date(y, mo, d, h, mi, s, us) => Some(format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")),
            Value::Time(neg, days, h, mi, s, us) => {
                let sign = if *neg { "-" } else { "" };
                Some(format!("{sign}{:02}:{mi:02}:{s:02}.{us:06}", u32::from(*h) + days * 24))
            }
        }
    }

    pub(super) async fn ask(
        ep: &Endpoint,
        login: &Login,
        roots: &Roots,
        statements: &[&str],
        timeout: Duration,
    ) -> Result<Vec<Answer>, DbFailure> {
        let mut conn = connect(ep, login, roots).await?;
        let mut broken = None;
        let answers = asked(&mut conn, statements, timeout, &mut broken).await;
        // As PostgreSQL's: a connection that stopped answering is dropped as it is.
        if broken.is_none() {
            let _ = run(&mut conn, "rollback", BACKSTOP, None).await;
            let _ = within(Duration::from_secs(2), conn.disconnect()).await;
        }
        answers
    }

    /// `broken`: why the connection can't be used any more, once it can't.
    async fn asked(
        conn: &mut Conn,
        statements: &[&str],
        timeout: Duration,
        broken: &mut Option<DbFailure>,
    ) -> Result<Vec<Answer>, DbFailure> {
        settle(conn, timeout).await?;
        // Read only for the session too: a check that ends the transaction itself (`commit; ...`)
        // still can't write in the next.
        run(conn, "set session transaction read only", CONNECT_TIMEOUT, None).await?;
        run(conn, "start transaction with consistent snapshot, read only", CONNECT_TIMEOUT, None).await?;
        let mut answers = Vec::with_capacity(statements.len());
        for sql in statements {
            if let Some(f) = broken.as_ref() {
                answers.push(Err(f.clone()));
                continue;
            }
            match within(timeout + BACKSTOP, conn.query_first::<Row, _>(*sql)).await {
                Ok(Ok(row)) => answers.push(Ok(row.as_ref().and_then(|r| r.as_ref(0)).and_then(text))),
                Ok(Err(e)) => {
                    let f = failure(&e, false);
                    // A lost connection fails every statement after it the same way.
                    if !matches!(e, mysql_async::Error::Server(_)) {
                        *broken = Some(f.clone());
                    }
                    answers.push(Err(f));
                }
                Err(_) => {
                    let (this, rest) = backstop_fired(timeout);
                    answers.push(Err(this));
                    *broken = Some(rest);
                }
            }
        }
        Ok(answers)
    }

    pub(super) async fn beat(ep: &Endpoint, login: &Login, roots: &Roots, timeout: Duration) -> Result<(), DbFailure> {
        let mut conn = connect(ep, login, roots).await?;
        let wrote = async {
            settle(&mut conn, timeout).await?;
            // One statement in autocommit: its own short transaction.
            let sql = format!(
                "insert into {HEARTBEAT_TABLE} (id, at) values (1, now(6)) on duplicate key update at = now(6)"
            );
            match within(timeout + BACKSTOP, conn.query_drop(sql)).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(failure(&e, false)),
                Err(_) => Err(backstop_fired(timeout).0),
            }
        }
        .await;
        let _ = within(Duration::from_secs(2), conn.disconnect()).await;
        wrote
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A self-signed CA (openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 3650
    // -subj /CN=lifeboat-test-ca -addext basicConstraints=critical,CA:TRUE); public part only.
    const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBjjCCATOgAwIBAgIUGIJRWAzQfTSr7yMAzaGS2acd+48wCgYIKoZIzj0EAwIw
GzEZMBcGA1UEAwwQbGlmZWJvYXQtdGVzdC1jYTAgFw0yNjEyMDcwMTM3NTNaGA8y
MTI2MTExMzAxMzc1M1owGzEZMBcGA1UEAwwQbGlmZWJvYXQtdGVzdC1jYTBZMBMG
ByqGSM49AgEGCCqGSM49AwEHA0IABM5DghNTOqdRTHEHZkoe22upUAPuUWbT01I7
VnThgbcFYNxDlZ9mg8lr4Uvly9ePjLiKSFgD9l6cxG95y2maAgejUzBRMB0GA1Ud
DgQWBBQhqauh1NDPMF1SJA/H1/koUyLHtjAfBgNVHSMEGDAWgBQhqauh1NDPMF1S
JA/H1/koUyLHtjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDZ
6snuFNKER1QUQL8CeV73F9AqgAz4kwvOL8GAmr4JmgIhAPFI56lPuNy9TRLZBrbP
cP/g3BCemE+bujy/XkHosTQ1
-----END CERTIFICATE-----
";

    #[test]
    fn rds_engine_names_map_to_their_protocol_and_the_others_to_none() {
        for name in ["postgres", "aurora-postgresql", "POSTGRES "] {
            assert_eq!(Engine::of(name), Some(Engine::Postgres), "{name}");
        }
        for name in ["mysql", "mariadb", "aurora-mysql", "aurora"] {
            assert_eq!(Engine::of(name), Some(Engine::Mysql), "{name}");
        }
        for name in ["oracle-ee", "sqlserver-se", "db2-se", "docdb", "neptune", ""] {
            assert_eq!(Engine::of(name), None, "{name}");
        }
    }

    #[test]
    fn postgres_sqlstates_name_what_to_do() {
        let f = |code: &str, connecting: bool| postgres_failure(code, format!("said {code}"), connecting);
        assert_eq!(f("28P01", true), DbFailure::Credentials("said 28P01".into()));
        assert_eq!(f("28000", true).name(), "credentials");
        assert_eq!(f("3D000", true).name(), "credentials", "no such database: the connect section");
        assert_eq!(f("42501", true).name(), "credentials", "no CONNECT privilege");
        assert_eq!(f("42501", false).name(), "sql", "no SELECT on a table: the check's");
        assert_eq!(f("57014", false), DbFailure::Timeout("said 57014".into()));
        assert_eq!(f("55P03", false).name(), "timeout");
        assert_eq!(f("53300", true).name(), "unreachable");
        assert_eq!(f("57P03", true).name(), "unreachable", "the restore is still starting");
        assert_eq!(f("08006", false).name(), "unreachable");
        for sql in ["42P01", "42601", "42703", "22012", "25006"] {
            assert_eq!(f(sql, false), DbFailure::Sql(format!("said {sql}")), "{sql}");
        }
    }

    #[test]
    fn mysql_error_numbers_name_what_to_do() {
        let f = |code: u16, connecting: bool| mysql_failure(code, format!("said {code}"), connecting);
        assert_eq!(f(1045, true), DbFailure::Credentials("said 1045".into()));
        assert_eq!(f(1044, true).name(), "credentials");
        assert_eq!(f(1049, true).name(), "credentials");
        assert_eq!(f(1044, false).name(), "sql", "a check's `use other_db`");
        assert_eq!(f(1969, false), DbFailure::Timeout("said 1969".into()), "MariaDB max_statement_time");
        assert_eq!(f(3024, false).name(), "timeout", "MySQL max_execution_time");
        assert_eq!(f(1040, true).name(), "unreachable");
        for sql in [1146, 1064, 1054, 1142, 1792] {
            assert_eq!(f(sql, false), DbFailure::Sql(format!("said {sql}")), "{sql}");
        }
    }

    #[test]
    fn a_certificate_refused_anywhere_in_an_error_chain_is_found() {
        let refused = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        // As tokio-rustls hands it over: an io::Error wrapping rustls's, whose `source` skips it.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, refused.clone());
        assert_eq!(tls_cause(&io), Some(refused.to_string()));
        let driver = mysql_async::Error::Io(mysql_async::IoError::Io(io));
        assert_eq!(mysql::failure(&driver, true), DbFailure::Tls(refused.to_string()));
        let refused_port = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(tls_cause(&refused_port), None);
        let driver = mysql_async::Error::Io(mysql_async::IoError::Io(refused_port));
        assert_eq!(mysql::failure(&driver, true).name(), "unreachable");
        let no_tls = mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer);
        assert_eq!(mysql::failure(&no_tls, true).name(), "tls");
    }

    #[test]
    fn mysql_text_values_read_as_the_server_wrote_them() {
        use mysql_async::Value;
        assert_eq!(mysql::text(&Value::NULL), None);
        assert_eq!(mysql::text(&Value::Bytes(b"1042".to_vec())).as_deref(), Some("1042"));
        assert_eq!(
            mysql::text(&Value::Date(2026, 12, 7, 1, 2, 3, 123456)).as_deref(),
            Some("2026-12-07 01:02:03.123456")
        );
        assert_eq!(mysql::text(&Value::Time(true, 1, 2, 3, 4, 5)).as_deref(), Some("-26:03:04.000005"));
    }

    #[test]
    fn a_bundle_gives_its_usable_certificates_and_counts_the_others() {
        let roots = Roots::from_pem(TEST_CA.as_bytes()).expect("the test CA");
        assert_eq!((roots.len(), roots.ignored()), (1, 0));
        assert_eq!(String::from_utf8_lossy(&roots.pem), TEST_CA, "mysql_async gets the certificate as it was written");
        assert!(Roots::from_pem(b"").unwrap_err().contains("no PEM certificate"));
        assert!(Roots::from_pem(b"not a bundle at all").unwrap_err().contains("no PEM certificate"));
        // Valid base64, but not a certificate's DER.
        let damaged = "-----BEGIN CERTIFICATE-----\nTUlYQmpqQ0NBVE9nQXdJQkFnSVVHSUpSV0F6UWZUU3I3eU1B\n-----END CERTIFICATE-----\n";
        assert!(Roots::from_pem(damaged.as_bytes()).unwrap_err().contains("none of its 1"));
        let mixed = Roots::from_pem(format!("{damaged}{TEST_CA}").as_bytes()).expect("one usable");
        assert_eq!((mixed.len(), mixed.ignored()), (1, 1));
        assert_eq!(String::from_utf8_lossy(&mixed.pem), TEST_CA, "only the usable one goes to mysql_async");
    }
}
