//! data-validator: the data checks inside a recovered database — a step of the drill machine
//! (`{"action": "drill", "drill": <DrillRun>}`), of the failover machine before DNS moves
//! (`{"action": "failover", "execution": <Execution>}`), and on demand (`{"action": "validate"}`, a
//! target named by address) — and the heartbeat writer (`{"action": "heartbeat"}`, each minute). What an answer means is
//! `lifeboat_core::decide::validate`'s; this crate reads the logins, connects, asks, and answers
//! the report. Its own function: the database drivers stay out of the others' cold start.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures_util::{stream, StreamExt};
use lifeboat_core::arn::{ArnError, RdsArn, RdsResource};
use lifeboat_core::aws::data_api::{Cluster, DataApi};
use lifeboat_core::aws::db::{self, Endpoint, Engine, Login, Roots};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::rds::Rds;
use lifeboat_core::aws::secrets::Secrets;
use lifeboat_core::aws::{ConfigCache, SdkConfig};
use lifeboat_core::config::validate::{Heartbeat, Validate};
use lifeboat_core::config::{Config, Database};
use lifeboat_core::decide::drill::DrillRun;
use lifeboat_core::decide::failover::steps::{Execution, ResourceKind};
use lifeboat_core::decide::validate::{judge, Against, DataReport, DbFailure, Reached};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::event::EventError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

/// Databases the heartbeat writes to at once: each is a connection and a round trip or two, and
/// RDS's DescribeDB* (when an endpoint is looked up again) is throttled per account and region.
pub const HEARTBEATS_AT_ONCE: usize = 8;
/// The heartbeat's statement timeout: one upsert of one row.
pub const BEAT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a primary's endpoint, as RDS described it, is used before it is described again; a
/// beat that fails looks it up again at the next.
pub const ENDPOINT_TTL: Duration = Duration::from_secs(10 * 60);

pub struct Deps {
    /// Narrowed like the snapshot jobs' (`LIFEBOAT_RECOVERS=own`): the heartbeat writes to the
    /// primaries of this stack's region, which its subnets reach; validation reads every database.
    pub config: ConfigCache,
    pub rds: Rds,
    pub secrets: Secrets,
    /// Aurora clusters checked over the RDS Data API (`validate.connect.data_api`).
    pub data_api: DataApi,
    /// LIFEBOAT_DB_CA_BUNDLE: every connection's certificate must chain to one of these. None
    /// when the stack names no bundle: then nothing is connected to, and each request says why.
    pub roots: Option<Roots>,
    /// The incidents table (LIFEBOAT_INCIDENTS_TABLE): a failover's data report goes on its
    /// incident, where the DNS and endpoint steps read it.
    pub incidents: Option<IncidentStore>,
    /// This stack's region: where a bare identifier names an instance or cluster.
    pub region: String,
    /// This stack's account (LIFEBOAT_ACCOUNT_ID): an ARN of another is refused, not looked up here.
    pub account: Option<String>,
    /// The one database user this stack's role may connect as with an IAM token
    /// (LIFEBOAT_VALIDATOR_DB_USER, the stack's ValidatorDbUser: `rds-db:connect` on it only).
    pub iam_user: Option<String>,
    /// What IAM tokens are signed with: the function's own credentials.
    sdk: SdkConfig,
    endpoints: Mutex<BTreeMap<String, (Endpoint, Instant)>>,
}

impl Deps {
    /// As the template configures it; the CA bundle and the config read now, so a missing bundle
    /// or a broken document fails the init, loudly.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let roots = roots_from_env(sdk).await?;
        let config = ConfigCache::snapshot_jobs_from_env(sdk).await?;
        let incidents = std::env::var("LIFEBOAT_INCIDENTS_TABLE").ok().filter(|t| !t.is_empty());
        let mut deps = Deps::new(config, sdk, roots, incidents.as_deref());
        deps.account = lifeboat_core::aws::optional_env("LIFEBOAT_ACCOUNT_ID");
        deps.iam_user = lifeboat_core::aws::optional_env("LIFEBOAT_VALIDATOR_DB_USER");
        Ok(deps)
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig, roots: Option<Roots>, incidents: Option<&str>) -> Self {
        Deps {
            config,
            rds: Rds::new(sdk),
            secrets: Secrets::new(sdk),
            data_api: DataApi::new(sdk),
            roots,
            incidents: incidents.map(|table| IncidentStore::new(sdk, table)),
            region: sdk.region().map(|r| r.to_string()).unwrap_or_default(),
            account: None,
            iam_user: None,
            sdk: sdk.clone(),
            endpoints: Mutex::default(),
        }
    }

    fn roots(&self) -> Result<&Roots, LifeboatError> {
        self.roots.as_ref().ok_or_else(|| {
            LifeboatError::Rejected(
                "no CA bundle to verify the databases' certificates: set the stack's DbCaBundle parameter to \
                 s3://<bucket>/<key> of RDS's global bundle \
                 (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)"
                    .into(),
            )
        })
    }
}

/// Bigger than any CA bundle (RDS's global bundle is ~160 KB): a wrong key is refused, not read.
const BUNDLE_LIMIT: u64 = 1 << 20;

/// The PEM bundle LIFEBOAT_DB_CA_BUNDLE names (RDS's global bundle in AWS): `s3://bucket/key`
/// (the stack's DbCaBundle) or a file path. Unset or empty: None. One that is named but can't be
/// read or holds no usable certificate fails the init, loudly.
pub async fn roots_from_env(sdk: &SdkConfig) -> Result<Option<Roots>, LifeboatError> {
    let Some(path) = std::env::var("LIFEBOAT_DB_CA_BUNDLE").ok().filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let pem = match path.strip_prefix("s3://").and_then(|rest| rest.split_once('/')) {
        Some((bucket, key)) => lifeboat_core::aws::small_object(sdk, bucket, key, BUNDLE_LIMIT).await?,
        None => std::fs::read(&path)
            .map_err(|e| LifeboatError::Rejected(format!("LIFEBOAT_DB_CA_BUNDLE {path} can't be read: {e}")))?,
    };
    let roots =
        Roots::from_pem(&pem).map_err(|why| LifeboatError::Rejected(format!("LIFEBOAT_DB_CA_BUNDLE {path}: {why}")))?;
    if roots.ignored() > 0 {
        let (ignored, kept) = (roots.ignored(), roots.len());
        warn!(bundle = %path, ignored, kept, "certificates that can't be trust anchors left out");
    }
    Ok(Some(roots))
}

/// Where the recovered database answers, as the state machine found it (`DescribeDBInstances`'
/// endpoint address and port, and its engine).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub address: String,
    pub port: u16,
    /// RDS's engine name: `postgres`, `aurora-postgresql`, `mysql`, `mariadb`, `aurora-mysql`.
    pub engine: String,
    /// The cluster's ARN when the target is a cluster: the Data API is asked by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The region RDS described it in: an IAM token is signed for it (else this stack's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// What a validation is aimed at: where the database answers (`Target`, as a machine found it), or
/// an instance or cluster for RDS to describe (`{"id": ...}`: an identifier in this stack's region,
/// or an RDS ARN naming its region and kind; `lifeboat validate --target`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Aim {
    At(Target),
    Named(Named),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Named {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Request {
    Validate {
        database: String,
        /// None: the database's primary, where it serves now.
        #[serde(default)]
        target: Option<Aim>,
        /// `{"failed_at": ...}` (a failover), `{"recovery_point": ...}` (a drill, a point-in-time
        /// restore), or null (on demand: checks only, no loss measured).
        #[serde(default)]
        against: Option<Against>,
        /// The incident or drill this validation belongs to, echoed in the answer and the log.
        #[serde(default)]
        run: Option<String>,
    },
    /// After the drill machine's Check: the restored copy's data, measured against the point in
    /// time it holds; the run comes back with `data`.
    Drill {
        drill: Box<DrillRun>,
    },
    /// After the failover machine found the new primary available, before DNS moves: its data,
    /// measured against the incident's start; the report goes on the incident, and the execution
    /// comes back with `data_passed` for the machine's Choice.
    Failover {
        execution: Box<Execution>,
    },
    Heartbeat {},
}

pub fn parse(payload: Value) -> Result<Request, EventError> {
    serde_json::from_value(payload).map_err(|e| {
        EventError(format!(
            "data-validator: {e}; expected {{\"action\": \"validate\", \"database\", \"target\": {{\"address\", \
             \"port\", \"engine\"}} or {{\"id\"}} or none, \"against\", \"run\"}}, {{\"action\": \"drill\", \"drill\"}}, \
             {{\"action\": \"failover\", \"execution\"}} or {{\"action\": \"heartbeat\"}}"
        ))
    })
}

pub async fn handle(
    deps: &Deps,
    payload: Value,
    now: DateTime<Utc>,
    until: Option<Instant>,
) -> Result<Value, LifeboatError> {
    match parse(payload)? {
        Request::Validate { database, target, against, run } => {
            let target = aimed(deps, &database, target).await?;
            let report = validate(deps, &database, &target, against, now).await?;
            let (passed, summary) = (report.passed, report.summary());
            info!(%database, run = run.as_deref().unwrap_or_default(), passed, %summary, "data-validator");
            let mut answer = serde_json::to_value(&report)
                .map_err(|e| LifeboatError::Rejected(format!("data report as JSON: {e}")))?;
            if let Value::Object(fields) = &mut answer {
                fields.insert("database".into(), Value::String(database));
                fields.insert("target".into(), serde_json::to_value(&target).unwrap_or_default());
                if let Some(run) = run {
                    fields.insert("run".into(), Value::String(run));
                }
            }
            Ok(answer)
        }
        Request::Drill { drill } => {
            let run = on_drill(deps, *drill, now).await?;
            serde_json::to_value(&run).map_err(|e| LifeboatError::Rejected(format!("drill as JSON: {e}")))
        }
        Request::Failover { execution } => {
            let exec = on_failover(deps, *execution, now).await?;
            serde_json::to_value(&exec).map_err(|e| LifeboatError::Rejected(format!("execution as JSON: {e}")))
        }
        Request::Heartbeat {} => {
            let beats = heartbeat(deps, until).await?;
            info!(written = beats.written, failed = beats.failed.len(), skipped = beats.skipped, "heartbeat");
            Ok(serde_json::to_value(&beats).unwrap_or_default())
        }
    }
}

/// The checks of `database`'s `validate` section, asked of the database at `target`. What the
/// database answered, failures included, is the report; an error is for what the report can't
/// say (no such database or section, an engine Lifeboat can't check, AWS not answering).
pub async fn validate(
    deps: &Deps,
    database: &str,
    target: &Target,
    against: Option<Against>,
    now: DateTime<Utc>,
) -> Result<DataReport, LifeboatError> {
    let config = deps.config.get_all().await?;
    let (db, v) = checkable(&config, database)?;
    let engine = Engine::of(&target.engine).ok_or_else(|| {
        LifeboatError::Rejected(format!(
            "{database}: engine `{}` can't be checked inside (PostgreSQL, MySQL and MariaDB can)",
            target.engine
        ))
    })?;
    let asked = if v.connect.data_api {
        deps.data_api.ask(&over_data_api(database, target, engine, v)?, &v.statements(), v.timeout).await?
    } else {
        let ep =
            Endpoint { engine, host: target.address.clone(), port: target.port, database: v.connect.database.clone() };
        let roots = deps.roots()?;
        match (&v.connect.iam_user, &v.connect.secret) {
            (Some(user), _) => {
                deps.may_connect_as(database, user)?;
                let region = target.region.as_deref().unwrap_or(&deps.region);
                let login = db::iam_login(&deps.sdk, region, &ep, user).await?;
                db::ask(&ep, &login, roots, &v.statements(), v.timeout)
                    .await
                    .map_err(|refused| token_refused(refused, user))
            }
            (None, Some(secret)) => {
                with_login(&deps.secrets, secret, async |login| {
                    db::ask(&ep, login, roots, &v.statements(), v.timeout).await
                })
                .await?
            }
            (None, None) => {
                return Err(LifeboatError::Rejected(format!(
                    "{database}: validate.connect names no secret or iam_user"
                )))
            }
        }
    };
    Ok(judge(v, Reached::zip(v, asked), against, db.rpo, now))
}

/// A login refused with an IAM token: what RDS needs for one, beside the database's own words.
fn token_refused(refused: DbFailure, user: &str) -> DbFailure {
    match refused {
        DbFailure::Credentials(why) => DbFailure::Credentials(format!(
            "{why} (IAM token for {user}: the instance or cluster needs IAM database authentication enabled, \
             {user} needs `GRANT rds_iam` on PostgreSQL or `IDENTIFIED WITH AWSAuthenticationPlugin AS 'RDS'` on \
             MySQL, and the validator's role rds-db:connect on it)"
        )),
        other => other,
    }
}

impl Deps {
    /// The validator's role may connect only as the stack's ValidatorDbUser: a config naming
    /// another is refused here, by name, rather than left to fail as a wrong password would.
    fn may_connect_as(&self, database: &str, user: &str) -> Result<(), LifeboatError> {
        match self.iam_user.as_deref() {
            Some(own) if own == user => Ok(()),
            Some(own) => Err(LifeboatError::Rejected(format!(
                "{database}: validate.connect.iam_user is {user}, and this stack's validator may connect only as {own} \
                 (its ValidatorDbUser parameter): name {own}, or deploy with ValidatorDbUser={user}"
            ))),
            None => Err(LifeboatError::Rejected(format!(
                "{database}: validate.connect.iam_user is {user}, and this stack names no ValidatorDbUser \
                 (LIFEBOAT_VALIDATOR_DB_USER): its validator may connect as no user with an IAM token"
            ))),
        }
    }
}

/// Where the Data API asks: the target's cluster (in the region its ARN names), with the login
/// `connect.secret` holds, which the Data API reads itself.
fn over_data_api(database: &str, target: &Target, engine: Engine, v: &Validate) -> Result<Cluster, LifeboatError> {
    let arn = target.cluster.as_deref().ok_or_else(|| {
        LifeboatError::Rejected(format!(
            "{database}: validate.connect.data_api asks an Aurora cluster, and {} is an instance: name its cluster",
            target.address
        ))
    })?;
    if !target.engine.starts_with("aurora") {
        return Err(LifeboatError::Rejected(format!(
            "{database}: the RDS Data API serves Aurora only, and {arn} is {}: connect directly",
            target.engine
        )));
    }
    let region = arn.parse::<RdsArn>().map_err(|e| LifeboatError::Rejected(e.to_string()))?.region;
    Ok(Cluster {
        arn: arn.to_owned(),
        region,
        engine,
        secret: v.connect.secret.clone().ok_or_else(|| {
            LifeboatError::Rejected(format!("{database}: the RDS Data API logs in with validate.connect.secret only"))
        })?,
        database: v.connect.database.clone(),
    })
}

/// `database` and its `validate` section, or why nothing can be checked inside it.
fn checkable<'a>(config: &'a Config, database: &str) -> Result<(&'a Database, &'a Validate), LifeboatError> {
    let db = config
        .database_named(database)
        .ok_or_else(|| LifeboatError::Rejected(format!("no database named `{database}` in Lifeboat's config")))?;
    let v = db.validate.as_ref().ok_or_else(|| {
        LifeboatError::Rejected(format!(
            "{database} has no validate section: nothing to check inside it (give it validate: with connect and \
             checks, freshness or heartbeat)"
        ))
    })?;
    Ok((db, v))
}

/// The drill's restored copy (its instance, or its cluster's writer endpoint) checked, measured
/// against its recovery point: a drill whose checks fail is a failed drill (`drill::result`).
pub async fn on_drill(deps: &Deps, mut run: DrillRun, now: DateTime<Utc>) -> Result<DrillRun, LifeboatError> {
    let target = answering(deps, &run.region, &run.temporary, run.cluster).await?;
    let against = run.recovery_point.map(Against::RecoveryPoint);
    let report = validate(deps, &run.database, &target, against, now).await?;
    info!(drill = %run.drill_id, database = %run.database, passed = report.passed, summary = %report.summary(), "drill data checks");
    run.data = Some(report);
    Ok(run)
}

/// The failover's new primary checked, measured against the moment the primary failed (the
/// incident's start). The report and its timeline entry go on the incident, written by this
/// function's role; the DNS and endpoint steps re-read them there, never the execution's
/// `data_passed`, which only steers the machine.
pub async fn on_failover(deps: &Deps, mut exec: Execution, now: DateTime<Utc>) -> Result<Execution, LifeboatError> {
    let store = deps.incidents.as_ref().ok_or_else(|| {
        LifeboatError::Rejected(
            "LIFEBOAT_INCIDENTS_TABLE is not set: a failover's data report has nowhere to go".into(),
        )
    })?;
    let incident = store
        .get(&exec.incident_id)
        .await?
        .ok_or_else(|| LifeboatError::Rejected(format!("no incident {}", exec.incident_id)))?;
    if incident.database != exec.database {
        return Err(LifeboatError::Rejected(format!(
            "incident {} is about {}, not {}: refusing to check one database for another's failover",
            incident.id, incident.database, exec.database
        )));
    }
    let recovery = exec.recovery.as_ref().ok_or_else(|| {
        LifeboatError::Rejected(format!("{}: the execution names no recovered database to check", exec.incident_id))
    })?;
    let cluster = recovery.kind == ResourceKind::Cluster;
    let target = answering(deps, &recovery.region, &recovery.id, cluster).await?;
    // A failback is planned: what it leaves behind is measured against when it began.
    let against = if incident.kind == lifeboat_core::incident::Kind::Failback {
        Against::MoveBegan(incident.started)
    } else {
        Against::FailedAt(incident.started)
    };
    let report = validate(deps, &exec.database, &target, Some(against), now).await?;
    let entry = incident
        .data_checked(&report, &recovery.id, "data-validator")
        .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
    store.record_data(&incident.id, &entry, &report).await?;
    info!(incident = %incident.id, database = %exec.database, passed = report.passed, summary = %report.summary(), "failover data checks");
    exec.data_passed = report.passed;
    Ok(exec)
}

/// Where an instance (its endpoint) or a cluster (its writer endpoint) answers now, as RDS
/// describes it in `region`.
async fn answering(deps: &Deps, region: &str, id: &str, cluster: bool) -> Result<Target, LifeboatError> {
    let what = if cluster { "cluster" } else { "instance" };
    described(deps, region, id, cluster)
        .await?
        .ok_or_else(|| LifeboatError::Rejected(format!("RDS has no {what} {id} in {region}")))
}

/// `answering`, None when RDS has no such instance or cluster there (AWS's other refusals stay
/// errors: an access denied is not "not there").
async fn described(deps: &Deps, region: &str, id: &str, cluster: bool) -> Result<Option<Target>, LifeboatError> {
    let found = if cluster { deps.rds.cluster(region, id).await? } else { deps.rds.instance(region, id).await? };
    let what = if cluster { "cluster" } else { "instance" };
    let Some(state) = found else { return Ok(None) };
    let address = state.endpoint.clone().ok_or_else(|| {
        LifeboatError::Transient(format!("{what} {id} in {region} has no endpoint yet (status {})", state.status))
    })?;
    let port = state.port.and_then(|p| u16::try_from(p).ok()).ok_or_else(|| {
        LifeboatError::Transient(format!("{what} {id} in {region} has no port yet (status {})", state.status))
    })?;
    let engine = state.engine.clone().unwrap_or_default();
    let cluster = if cluster { state.arn.clone() } else { None };
    Ok(Some(Target { address, port, engine, cluster, region: Some(region.to_owned()) }))
}

/// Where to look for a target named on demand: (region, identifier, Some(cluster) when the name
/// says which, None: an instance, else a cluster). An ARN names its region and kind, and must be
/// of this stack's account (`account`, when known): the validator's role describes only its own.
pub fn named(id: &str, region: &str, account: Option<&str>) -> Result<(String, String, Option<bool>), LifeboatError> {
    let id = id.trim();
    if !id.starts_with("arn:") {
        return Ok((region.to_owned(), id.to_owned(), None));
    }
    let arn: RdsArn = id.parse().map_err(|e: ArnError| LifeboatError::Rejected(e.to_string()))?;
    if let Some(own) = account.filter(|own| *own != arn.account) {
        return Err(LifeboatError::Rejected(format!(
            "{id} is in account {}; this stack's validator checks account {own}'s databases: ask the stack there",
            arn.account
        )));
    }
    match arn.resource {
        RdsResource::Instance | RdsResource::Cluster => {
            Ok((arn.region, arn.id, Some(arn.resource == RdsResource::Cluster)))
        }
        _ => Err(LifeboatError::Rejected(format!("{id} is a snapshot: name the instance or cluster restored from it"))),
    }
}

/// Where a validation's aim answers: as given, as RDS describes the named instance or cluster
/// (`named`), or, with no aim, the database's primary where it serves now. The database and its
/// `validate` section are looked up first: a request for nothing checkable asks RDS nothing.
async fn aimed(deps: &Deps, database: &str, aim: Option<Aim>) -> Result<Target, LifeboatError> {
    let config = deps.config.get_all().await?;
    let (db, _) = checkable(&config, database)?;
    let id = match aim {
        // An address as a machine found it; a cluster ARN or region beside it is not taken on
        // its word (a token is signed for this stack's region).
        Some(Aim::At(target)) => return Ok(Target { cluster: None, region: None, ..target }),
        Some(Aim::Named(Named { id })) => id,
        None => return answering(deps, &db.source.region, &db.source.id, db.is_cluster()).await,
    };
    let (region, id, cluster) = named(&id, &deps.region, deps.account.as_deref())?;
    if let Some(cluster) = cluster {
        return answering(deps, &region, &id, cluster).await;
    }
    match described(deps, &region, &id, false).await? {
        Some(target) => Ok(target),
        None => described(deps, &region, &id, true).await?.ok_or_else(|| {
            LifeboatError::Rejected(format!(
                "RDS has no instance or cluster {id} in {region}: name one in this stack's region, or its ARN"
            ))
        }),
    }
}

/// `act` with the login the secret holds. A kept login the database refuses is read again, and
/// `act` tried once more if the secret changed (its password was rotated). Outer `Err`: AWS did
/// not answer; inner: the secret or the database's answer.
async fn with_login<T>(
    secrets: &Secrets,
    arn: &str,
    act: impl AsyncFn(&Login) -> Result<T, DbFailure>,
) -> Result<Result<T, DbFailure>, LifeboatError> {
    let login = match secrets.login(arn).await? {
        Ok(login) => login,
        Err(unreadable) => return Ok(Err(unreadable)),
    };
    let first = act(&login).await;
    if !matches!(first, Err(DbFailure::Credentials(_))) {
        return Ok(first);
    }
    secrets.forget(arn);
    match secrets.login(arn).await? {
        Ok(fresh) if fresh != login => Ok(act(&fresh).await),
        _ => Ok(first),
    }
}

/// What a heartbeat run did: rows written, databases it could not write to, and those it did not
/// get to before the invocation's end.
#[derive(Debug, Default, Serialize)]
pub struct Beats {
    pub written: usize,
    pub failed: Vec<Missed>,
    #[serde(skip_serializing_if = "is_zero")]
    pub skipped: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Serialize)]
pub struct Missed {
    pub database: String,
    pub failure: Why,
}

/// Why a beat was not written: the database's answer (`{"kind": "unreachable", "detail": ...}`),
/// or AWS's when the endpoint or the secret could not be read (`{"kind": "aws", "detail": ...}`).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Why {
    Db(DbFailure),
    Aws { kind: &'static str, detail: String },
}

impl Why {
    fn aws(e: LifeboatError) -> Why {
        Why::Aws { kind: "aws", detail: e.to_string() }
    }
}

/// One heartbeat row written to the primary of every database of this stack with
/// `validate.heartbeat`, `HEARTBEATS_AT_ONCE` at a time. A beat that fails is reported and logged,
/// never retried: the next minute's is the retry, and a late one would only blur the recovery
/// point it marks.
pub async fn heartbeat(deps: &Deps, until: Option<Instant>) -> Result<Beats, LifeboatError> {
    let config = deps.config.get().await?;
    let due: Vec<(&Database, &Validate, &Heartbeat)> = config
        .databases
        .iter()
        .filter_map(|db| {
            let v = db.validate.as_ref()?;
            Some((db, v, v.heartbeat.as_ref()?))
        })
        .collect();
    let mut runs = stream::iter(due)
        .map(|(db, v, h)| async move {
            // Not started past the stop: the invocation ends before a connection would.
            if until.is_some_and(|u| Instant::now() >= u) {
                return (db.name.clone(), None);
            }
            (db.name.clone(), Some(beat(deps, db, v, h).await))
        })
        .buffered(HEARTBEATS_AT_ONCE);
    let mut beats = Beats::default();
    while let Some((database, outcome)) = runs.next().await {
        match outcome {
            None => beats.skipped += 1,
            Some(Ok(())) => beats.written += 1,
            Some(Err(failure)) => {
                warn!(%database, ?failure, "heartbeat not written");
                beats.failed.push(Missed { database, failure });
            }
        }
    }
    Ok(beats)
}

async fn beat(deps: &Deps, db: &Database, v: &Validate, h: &Heartbeat) -> Result<(), Why> {
    let roots = deps.roots().map_err(Why::aws)?;
    let ep = primary(deps, db, &v.connect.database).await.map_err(Why::aws)?;
    let wrote = with_login(&deps.secrets, &h.secret, async |login| db::beat(&ep, login, roots, BEAT_TIMEOUT).await)
        .await
        .map_err(Why::aws)?;
    if wrote.is_err() {
        // The primary may have moved (a failover, a replaced instance): describe it again next time.
        deps.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&db.name);
    }
    wrote.map_err(Why::Db)
}

/// Where `db`'s source answers now: DescribeDBInstances (an instance's endpoint) or
/// DescribeDBClusters (a cluster's writer endpoint) in its region, kept for `ENDPOINT_TTL`.
async fn primary(deps: &Deps, db: &Database, database: &str) -> Result<Endpoint, LifeboatError> {
    let kept = deps.endpoints.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&db.name).cloned();
    if let Some((ep, _)) = kept.filter(|(ep, at)| at.elapsed() < ENDPOINT_TTL && ep.database == database) {
        return Ok(ep);
    }
    let target = answering(deps, &db.source.region, &db.source.id, db.is_cluster()).await?;
    let engine = Engine::of(&target.engine).ok_or_else(|| {
        LifeboatError::Rejected(format!(
            "{}: engine {} can't take a heartbeat (PostgreSQL, MySQL and MariaDB can)",
            db.name, target.engine
        ))
    })?;
    let ep = Endpoint { engine, host: target.address, port: target.port, database: database.to_owned() };
    deps.endpoints
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(db.name.clone(), (ep.clone(), Instant::now()));
    Ok(ep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lifeboat_core::aws::{ConfigSource, CONFIG_TTL};
    use serde_json::json;

    #[test]
    fn both_actions_parse_and_anything_else_is_a_bad_event() {
        let v = parse(json!({
            "action": "validate", "database": "orders-prod",
            "target": {"address": "127.0.0.1", "port": 5432, "engine": "aurora-postgresql"},
            "against": {"failed_at": "2026-12-07T01:02:00Z"}, "run": "orders-prod-20261207T0102Z-3f2a"
        }))
        .unwrap();
        let Request::Validate { database, target: Some(Aim::At(target)), against, run } = v else { panic!("{v:?}") };
        assert_eq!(
            (database.as_str(), target.port, target.engine.as_str()),
            ("orders-prod", 5432, "aurora-postgresql")
        );
        assert_eq!(against.map(|a| a.time().to_rfc3339()), Some("2026-12-07T01:02:00+00:00".to_owned()));
        assert_eq!(run.as_deref(), Some("orders-prod-20261207T0102Z-3f2a"));
        let drill = json!({"action": "validate", "database": "d", "target": {"address": "h", "port": 3306, "engine": "mariadb"},
                           "against": {"recovery_point": "2026-12-07T00:00:00Z"}});
        assert!(matches!(parse(drill), Ok(Request::Validate { against: Some(Against::RecoveryPoint(_)), .. })));
        let on_demand = json!({"action": "validate", "database": "d", "target": {"address": "h", "port": 1, "engine": "mysql"}, "against": null});
        assert!(matches!(parse(on_demand), Ok(Request::Validate { against: None, run: None, .. })));
        // On demand: an instance or cluster named for RDS to describe, or none (the primary).
        let named = json!({"action": "validate", "database": "d", "target": {"id": "orders-pitr"}});
        assert!(
            matches!(parse(named), Ok(Request::Validate { target: Some(Aim::Named(Named { id })), .. }) if id == "orders-pitr")
        );
        let primary = json!({"action": "validate", "database": "d"});
        assert!(matches!(parse(primary), Ok(Request::Validate { target: None, .. })));
        assert_eq!(parse(json!({"action": "heartbeat"})), Ok(Request::Heartbeat {}));
        for bad in [
            json!({}),
            json!({"action": "drop-tables"}),
            json!({"action": "validate"}),
            json!({"action": "validate", "database": "d", "target": {"id": "x", "port": 1}}),
            json!({"action": "validate", "database": "d", "target": "orders-pitr"}),
            json!({"action": "validate", "database": "d", "target": {"address": "h", "port": 70000, "engine": "mysql"}}),
            json!({"action": "validate", "database": "d", "target": {"address": "h", "port": 1, "engine": "mysql", "user": "root"}}),
            json!({"action": "validate", "database": "d", "target": {"address": "h", "port": 1, "engine": "mysql"}, "against": {"yesterday": true}}),
        ] {
            let e = LifeboatError::from(parse(bad.clone()).unwrap_err());
            assert_eq!(e.error_type(), "NonRetryable", "{bad}");
            assert!(e.to_string().contains("\"action\": \"heartbeat\""), "says what it expects: {e}");
        }
    }

    #[test]
    fn a_target_named_on_demand_is_looked_up_where_its_name_says_and_only_in_this_account() {
        let own = Some("123456789012");
        assert_eq!(named(" orders-pitr ", "us-west-2", own).unwrap(), ("us-west-2".into(), "orders-pitr".into(), None));
        let arn = "arn:aws:rds:eu-west-1:123456789012:cluster:ledger-clone";
        assert_eq!(named(arn, "us-west-2", own).unwrap(), ("eu-west-1".into(), "ledger-clone".into(), Some(true)));
        let theirs = named("arn:aws:rds:us-west-2:210987654321:db:orders", "us-west-2", own).unwrap_err();
        assert!(!theirs.is_retryable() && theirs.to_string().contains("in account 210987654321"), "{theirs}");
        assert!(named("arn:aws:rds:us-west-2:210987654321:db:orders", "us-west-2", None).is_ok(), "account unknown");
        let snap = named("arn:aws:rds:us-west-2:123456789012:snapshot:s1", "us-west-2", own).unwrap_err();
        assert!(snap.to_string().contains("is a snapshot"), "{snap}");
        assert!(named("arn:aws:s3:::bucket", "us-west-2", own).is_err());
    }

    const CONFIG: &str = "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:123456789012:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n  - name: billing\n    source: arn:aws:rds:us-east-1:123456789012:db:billing\n    tier: production\n    rpo: 5m\n    rto: 30m\n    validate:\n      connect: { secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-v-Ab12\", database: billing }\n      checks:\n        - { name: invoices exist, sql: \"select count(*) from invoices\", expect: \">= 1\" }\n";

    fn deps(config: &str) -> (Deps, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("lifeboat-validator-{}-{}.yaml", std::process::id(), fastrand()));
        std::fs::write(&path, config).unwrap();
        let sdk = SdkConfig::builder().build();
        let cache = ConfigCache::new(ConfigSource::File(path.to_string_lossy().into_owned()), &sdk, CONFIG_TTL);
        let ca = "-----BEGIN CERTIFICATE-----\nMIIBjjCCATOgAwIBAgIUGIJRWAzQfTSr7yMAzaGS2acd+48wCgYIKoZIzj0EAwIw\nGzEZMBcGA1UEAwwQbGlmZWJvYXQtdGVzdC1jYTAgFw0yNjEyMDcwMTM3NTNaGA8y\nMTI2MTExMzAxMzc1M1owGzEZMBcGA1UEAwwQbGlmZWJvYXQtdGVzdC1jYTBZMBMG\nByqGSM49AgEGCCqGSM49AwEHA0IABM5DghNTOqdRTHEHZkoe22upUAPuUWbT01I7\nVnThgbcFYNxDlZ9mg8lr4Uvly9ePjLiKSFgD9l6cxG95y2maAgejUzBRMB0GA1Ud\nDgQWBBQhqauh1NDPMF1SJA/H1/koUyLHtjAfBgNVHSMEGDAWgBQhqauh1NDPMF1S\nJA/H1/koUyLHtjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDZ\n6snuFNKER1QUQL8CeV73F9AqgAz4kwvOL8GAmr4JmgIhAPFI56lPuNy9TRLZBrbP\ncP/g3BCemE+bujy/XkHosTQ1\n-----END CERTIFICATE-----\n";
        (Deps::new(cache, &sdk, Some(Roots::from_pem(ca.as_bytes()).unwrap()), None), path)
    }

    fn fastrand() -> u128 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_database_without_validate_or_an_engine_it_cannot_check_is_refused_for_good() {
        let (deps, path) = deps(CONFIG);
        let target =
            Target { address: "127.0.0.1".into(), port: 5432, engine: "postgres".into(), cluster: None, region: None };
        let e = validate(&deps, "orders-prod", &target, None, Utc::now()).await.unwrap_err();
        assert_eq!(e.error_type(), "NonRetryable");
        assert!(e.to_string().contains("orders-prod has no validate section"), "{e}");
        let e = validate(&deps, "nobody", &target, None, Utc::now()).await.unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("no database named `nobody`"), "{e}");
        let oracle = Target { engine: "oracle-ee".into(), ..target };
        let e = validate(&deps, "billing", &oracle, None, Utc::now()).await.unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("oracle-ee"), "{e}");
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn no_bundle_connects_to_nothing_and_a_named_unreadable_one_fails_the_init() {
        // One test for the variable: tests run in threads of one process.
        let sdk = SdkConfig::builder().build();
        std::env::remove_var("LIFEBOAT_DB_CA_BUNDLE");
        assert!(roots_from_env(&sdk).await.unwrap().is_none());
        let (mut deps, path) = deps(CONFIG);
        deps.roots = None;
        let target =
            Target { address: "127.0.0.1".into(), port: 5432, engine: "postgres".into(), cluster: None, region: None };
        let e = validate(&deps, "billing", &target, None, Utc::now()).await.unwrap_err();
        assert!(!e.is_retryable() && e.to_string().contains("DbCaBundle"), "says which parameter: {e}");
        let _ = std::fs::remove_file(path);
        std::env::set_var("LIFEBOAT_DB_CA_BUNDLE", "/nonexistent/global-bundle.pem");
        let e = roots_from_env(&sdk).await.unwrap_err().to_string();
        assert!(e.contains("/nonexistent/global-bundle.pem") && e.contains("can't be read"), "{e}");
        let empty = std::env::temp_dir().join(format!("lifeboat-empty-bundle-{}.pem", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        std::env::set_var("LIFEBOAT_DB_CA_BUNDLE", &empty);
        assert!(roots_from_env(&sdk).await.unwrap_err().to_string().contains("no PEM certificate"));
        std::env::remove_var("LIFEBOAT_DB_CA_BUNDLE");
        let _ = std::fs::remove_file(empty);
    }

    #[test]
    fn a_missed_beat_says_its_kind_and_detail_like_a_data_report() {
        let db = Missed { database: "orders".into(), failure: Why::Db(DbFailure::Credentials("refused".into())) };
        assert_eq!(
            serde_json::to_value(&db).unwrap(),
            json!({"database": "orders", "failure": {"kind": "credentials", "detail": "refused"}})
        );
        let aws =
            Missed { database: "orders".into(), failure: Why::aws(LifeboatError::Transient("Throttling".into())) };
        assert_eq!(serde_json::to_value(&aws).unwrap()["failure"], json!({"kind": "aws", "detail": "Throttling"}));
        let beats = Beats { written: 2, failed: vec![], skipped: 0 };
        assert_eq!(serde_json::to_value(&beats).unwrap(), json!({"written": 2, "failed": []}));
    }
}
