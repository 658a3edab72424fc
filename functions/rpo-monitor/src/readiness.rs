//! `{"readiness": true}` (every 30 minutes) or `{"readiness": true, "database": "..."}`: the
//! read-only calls `lifeboat_core::readiness` needs, its verdict per database, one EMF metric
//! `FailoverReady` per database (and, for a whole run, one for the stack's region: the alarm's,
//! which a run that never finishes leaves missing), and one notice per run that says which
//! databases stopped being ready and which are ready again (the RPO notices' send-once rule). A
//! database whose facts could not be read is not ready, saying why; the others are checked all
//! the same.
//!
//! At fleet size every read of a resource databases share is made once per run (`Reads`), the
//! databases are read `CONCURRENCY` at a time, the table is read and written in batches, and
//! only what changed is written. The calls of a run checking D databases:
//!
//!   calls = 1·D_target + 1·D_replica + 2·D_global
//!         + 1 per distinct resource: per DR region its snapshot listing (a page per 100
//!           snapshots and kind) and DescribeAccountAttributes; per key DescribeKey (and
//!           GetKeyPolicy when a restore uses it); per SSM parameter GetParameter; per subnet,
//!           parameter or option group, security-group set, (region, engine, version, class)
//!           offering, DNS record, routing-control set: one read
//!         + at most 1 IAM simulation per distinct (request context, action), per 100 resources
//!         + ⌈(2·D + D_drilled) / 100⌉ BatchGetItem
//!         + ⌈verdicts changed / 25⌉ + ⌈states changed / 25⌉ + 1 BatchWriteItem
//!         + 3 when anything changed (the claim, the notice, its mark)
//!
//! D_target: databases with a `failover.target` (its DescribeDBInstances/Clusters); D_replica:
//! the promote-replica instances among them (their ReplicaLag); D_global: the global strategies
//! (their target's DescribeDBClusters and DescribeGlobalClusters). A database whose own values
//! enter a simulation's context (a restore's `lifeboat:database` tag, a record's name) is a
//! context of its own: restores and DNS moves add a simulation per database each. Measured: 30
//! databases sharing a DR key, a subnet group and the approval key, 10 calls
//! (tests/tests/readiness.rs); 200 in issue 30's proportions, 42 (tests/tests/fleet.rs).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use lifeboat_core::arn::RdsResource;
use lifeboat_core::aws::cloudwatch::Lag;
use lifeboat_core::aws::rds::{Kinds, Listed, SnapshotQuotas};
use lifeboat_core::aws::recovery::Group;
use lifeboat_core::aws::ssm::parameter;
use lifeboat_core::config::{Config, Database};
use lifeboat_core::drill::DrillResult;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::failover::steps::recovered_from;
use lifeboat_core::failover::{DnsMode, Strategy};
use lifeboat_core::readiness::{self, Change, Check, Facts, Need, Offered, Quota};
use lifeboat_core::rpo::newest_copy;
use lifeboat_core::snapshot::SnapshotType;
use lifeboat_core::text::{fit, lines_of, LOG_LINE_BUDGET};
use lifeboat_core::{message, metrics};
use serde::Serialize;
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::Deps;

/// Databases whose facts are read at once. Each reads one thing at a time, so at most this many
/// calls are in flight: a bound on what one run asks of a region's API rate (RDS's control plane
/// throttles per account and region), well inside the SDK's connection pool.
const CONCURRENCY: usize = 8;

#[derive(Debug, Serialize)]
pub struct Readiness {
    pub database: String,
    pub ready: bool,
    pub summary: String,
    pub checks: Vec<Check>,
}

/// The region a restore of `db` would run in: `restore.region`, else its only DR region.
fn restore_region<'a>(db: &'a Database, r: &'a lifeboat_core::failover::Restore) -> Option<&'a str> {
    r.region.as_deref().or_else(|| (db.copy_to.len() == 1).then(|| db.copy_to[0].region.as_str()))
}

/// What was gathered of one database: its facts and what its failover needs (None: no plan), or
/// why nothing could be.
type Gathered = Result<(Facts, Option<Vec<Need>>), LifeboatError>;

/// One read per key per run, however many databases ask for it at once: the first asks, the
/// others wait for its answer. A failure is remembered too (as its text and whether it may pass),
/// so a throttled or refused read is not asked again by every database that shares it.
struct Memo<K, V>(Mutex<HashMap<K, Memoized<V>>>);

/// One key's answer, once it is in; a failure as its text.
type Memoized<V> = Arc<OnceCell<Result<V, String>>>;

impl<K, V> Default for Memo<K, V> {
    fn default() -> Self {
        Memo(Mutex::new(HashMap::new()))
    }
}

impl<K: Hash + Eq, V: Clone> Memo<K, V> {
    async fn get<F: Future<Output = Result<V, LifeboatError>>>(
        &self,
        key: K,
        read: impl FnOnce() -> F,
    ) -> Result<V, LifeboatError> {
        // A poisoned lock only means a panic mid-insert elsewhere; the map is still whole.
        let cell = self.0.lock().unwrap_or_else(PoisonError::into_inner).entry(key).or_default().clone();
        // A refusal (AccessDenied) is the answer for every database that shares the resource; a
        // failure that may pass (throttling past the SDK's retries) is not kept, so the next
        // database asks again instead of a whole DR region's databases going "not ready" at once.
        let answer = cell
            .get_or_try_init(|| async {
                match read().await {
                    Ok(v) => Ok(Ok(v)),
                    Err(e) if e.is_retryable() => Err(e),
                    Err(e) => Ok(Err(e.to_string())),
                }
            })
            .await?;
        answer.clone().map_err(LifeboatError::Rejected)
    }
}

/// What a run reads of resources databases share, each once.
#[derive(Default)]
struct Reads {
    /// A DR region's snapshots (both kinds) with their engines.
    listings: Memo<String, Arc<Listed>>,
    quotas: Memo<String, SnapshotQuotas>,
    /// (region, key): KeyState.
    keys: Memo<(String, String), Option<String>>,
    /// (region, key): the key policy.
    key_policies: Memo<(String, String), Option<String>>,
    /// An SSM parameter's length, None when it doesn't exist (the approval key's, the endpoints').
    parameters: Memo<String, Option<usize>>,
    /// (region, kind, name): exists.
    groups: Memo<(String, String, String), bool>,
    /// (region, ids): those missing.
    security_groups: Memo<(String, Vec<String>), Vec<String>>,
    /// (region, engine, version, class): offered.
    offers: Memo<(String, String, String, String), bool>,
    /// (zone, record): why an UPSERT would be refused; Err: unreadable.
    records: Memo<(String, String), Result<Option<String>, String>>,
    /// The routing controls and the order their endpoints are read in.
    controls: Memo<String, Result<(String, String, String), String>>,
}

impl Reads {
    async fn group(&self, deps: &Deps, region: &str, kind: Group, name: &str) -> Result<bool, LifeboatError> {
        let key = (region.to_owned(), format!("{kind:?}"), name.to_owned());
        self.groups.get(key, || deps.rds.group_exists(region, kind, name)).await
    }

    /// A parameter's length (the approval key's is judged by it), None when it doesn't exist.
    async fn parameter_length(&self, deps: &Deps, name: &str) -> Result<Option<usize>, LifeboatError> {
        let read = || async { Ok(parameter(&deps.ssm, name).await?.map(|v| v.len())) };
        self.parameters.get(name.to_owned(), read).await
    }
}

/// The verdicts; `datapoints` gets each EMF line printed (per database, then the region's).
pub async fn run(
    deps: &Deps,
    config: &Config,
    only: Option<&str>,
    now: DateTime<Utc>,
    published: &mut Vec<String>,
    datapoints: &mut Vec<String>,
) -> Result<Vec<Readiness>, LifeboatError> {
    if let Some(name) = only {
        if config.database_named(name).is_none() {
            return Err(LifeboatError::Rejected(format!("no database named {name} in Lifeboat's config")));
        }
    }
    let dbs: Vec<&Database> =
        config.databases.iter().filter(|d| only.is_none_or(|n| n == d.name) && checks_here(deps, d)).collect();
    let mut failed = None;
    // What was last told and kept of each, in batches. Unread, the checks still run and the
    // datapoints are written, but nothing is told or kept (a retry does that).
    let asked: Vec<(&str, bool)> = dbs.iter().map(|d| (d.name.as_str(), d.drill.is_some())).collect();
    let mut remembered = match deps.store.remembered(&asked).await {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(error = %e, "readiness state not read");
            failed = Some(e);
            None
        }
    };
    let reads = Reads::default();
    let work = dbs.iter().map(|db| {
        let last_drill = db.drill.as_ref().map(|_| match &mut remembered {
            Some(r) => r.get_mut(&db.name).and_then(|r| r.last_drill.take()).transpose(),
            None => Err(LifeboatError::Transient("the incident table was not read".into())),
        });
        // On the heap: the SDK futures of a dozen services inside are too big for a worker thread's stack.
        Box::pin(facts(deps, &reads, db, last_drill, now))
    });
    let mut gathered: Vec<Gathered> = stream::iter(work).buffered(CONCURRENCY).collect().await;
    simulate(deps, &mut gathered).await;
    simulate_validator(deps, &dbs, &mut gathered).await;

    let mut out = Vec::new();
    let mut changes = Vec::new();
    let mut verdicts = Vec::new();
    let mut protected = Vec::new();
    for (db, got) in dbs.iter().zip(gathered) {
        // A read that fails (AccessDenied, throttling, an outage) is this database's verdict, not the run's end.
        let checks = match got {
            Ok((facts, _)) => readiness::evaluate(db, &facts, now),
            Err(e) => {
                warn!(database = %db.name, error = %e, "readiness facts not read");
                readiness::unreadable(&said(&e), e.is_retryable())
            }
        };
        let ready = readiness::ready(&checks);
        let summary = readiness::summary(&checks);
        if let Some(key) = readiness::protected_again(db, &checks) {
            protected.push((key, message::protected_again(db, &deps.region, &checks)));
        }
        let line = metrics::emf(
            now,
            &[("Database", &db.name), ("Region", &deps.region)],
            &[&["Database", "Region"]],
            &[("FailoverReady", i64::from(ready), "Count")],
        );
        println!("{line}");
        datapoints.push(line);
        // Each database its own log line, far under CloudWatch Logs' event limit whatever the fleet.
        let detail = fit(&serde_json::to_string(&checks).unwrap_or_default(), LOG_LINE_BUDGET, " [cut]");
        info!(database = %db.name, ready, summary = %fit(&summary, LOG_LINE_BUDGET / 4, " [cut]"), checks = %detail, "readiness verdict");
        if let Some(before) = remembered.as_ref().and_then(|r| r.get(&db.name)) {
            changes.extend(Change::of(&db.name, &checks, before.not_ready));
            if before.summary.as_deref() != Some(summary.as_str()) {
                verdicts.push((db.name.as_str(), summary.clone()));
            }
        }
        out.push(Readiness { database: db.name.clone(), ready, summary, checks });
    }
    // The stack's alarm watches this one (missing data breaches): every whole run writes it, 1
    // when each database it checks is ready (or it checks none), so only a run that never
    // finished leaves the alarm without a datapoint.
    if only.is_none() {
        let all = out.iter().all(|r| r.ready);
        let line = metrics::emf(
            now,
            &[("Region", &deps.region)],
            &[&["Region"]],
            &[("FailoverReady", i64::from(all), "Count")],
        );
        println!("{line}");
        datapoints.push(line);
    }
    if remembered.is_some() {
        if let Err(e) = tell(deps, &changes, now, published).await {
            failed.get_or_insert(e);
        }
        // Once per way back: the claim's key names it.
        for (key, m) in &protected {
            match deps.store.send_once(None, key, now, deps.topic.publish(m)).await {
                Ok(true) => published.push(m.subject.clone()),
                Ok(false) => {}
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        let verdicts: Vec<(&str, &str)> = verdicts.iter().map(|(d, s)| (*d, s.as_str())).collect();
        if let Err(e) = deps.store.put_verdicts(&verdicts, now, only.is_none() && failed.is_none()).await {
            failed.get_or_insert(e);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The run's one log line: counts, and the databases not ready by name, in lines of at most
/// `LOG_LINE_BUDGET` (each database's own line has the rest).
pub fn log_summary(verdicts: &[Readiness], published: &[String]) {
    let not_ready: Vec<&str> = verdicts.iter().filter(|r| !r.ready).map(|r| r.database.as_str()).collect();
    let lines = lines_of(&not_ready, LOG_LINE_BUDGET);
    info!(
        checked = verdicts.len(),
        ready = verdicts.len() - not_ready.len(),
        not_ready = not_ready.len(),
        not_ready_names = %lines.first().map_or("", String::as_str),
        published = ?published,
        "readiness run"
    );
    for more in lines.iter().skip(1) {
        info!(not_ready_names = %more, "readiness run, not ready (continued)");
    }
}

/// One notice for the run's changes, once: its claim is the changes' (`changes_claim`); each
/// change is marked told before the states are written, so a run retried in between (when other
/// changes may have joined) tells only what was not told yet.
async fn tell(
    deps: &Deps,
    changes: &[Change],
    now: DateTime<Utc>,
    published: &mut Vec<String>,
) -> Result<(), LifeboatError> {
    if changes.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> = changes.iter().map(readiness::change_key).collect();
    let already = deps.store.told(&keys).await?;
    let untold: Vec<Change> =
        changes.iter().filter(|c| !already.contains(&readiness::change_key(c))).cloned().collect();
    if !untold.is_empty() {
        let m = message::readiness_changes(&deps.region, &untold);
        if deps.store.send_once(None, &readiness::changes_claim(&untold), now, deps.topic.publish(&m)).await? {
            published.push(m.subject.clone());
        }
        let marks: Vec<String> = untold.iter().map(readiness::change_key).collect();
        deps.store.mark_told(&marks, now).await?;
    }
    let told: Vec<(&str, bool)> = changes.iter().map(|c| (c.database.as_str(), !c.ready())).collect();
    deps.store.set_ready(&told, now).await
}

/// The failover role's simulation for every database at once, each database's answer put in its
/// facts. IAM's control plane may be what is down: that is each one's warning, not a verdict.
async fn simulate(deps: &Deps, gathered: &mut [Gathered]) {
    let Some(role) = deps.steps_role.as_deref() else { return };
    let needs: Vec<Option<Vec<Need>>> = gathered.iter().map(|g| g.as_ref().ok().and_then(|(_, n)| n.clone())).collect();
    let answers = simulated(deps, role, &needs).await;
    for ((got, needs), answer) in gathered.iter_mut().zip(&needs).zip(answers) {
        let (Ok((f, _)), Some(needs), Some(answer)) = (got, needs, answer) else { continue };
        f.permissions =
            Some(answer.map(|denied| {
                (needs.len(), denied.iter().map(|n| (n.action.to_owned(), n.resource.clone())).collect())
            }));
    }
}

/// The data validator's role simulated on every database's logins at once, as `simulate` does
/// the steps' role; a database whose facts were not read is left out.
async fn simulate_validator(deps: &Deps, dbs: &[&Database], gathered: &mut [Gathered]) {
    let Some(role) = deps.validator_role.as_deref() else { return };
    let needs: Vec<Option<Vec<Need>>> = dbs
        .iter()
        .zip(gathered.iter())
        .map(|(db, g)| Some(readiness::validator_needs(db, &deps.region)).filter(|n| g.is_ok() && !n.is_empty()))
        .collect();
    let answers = simulated(deps, role, &needs).await;
    for (got, answer) in gathered.iter_mut().zip(answers) {
        let (Ok((f, _)), Some(answer)) = (got, answer) else { continue };
        f.validator = Some(answer.map(|denied| denied.iter().map(|n| n.resource.clone()).collect()));
    }
}

/// `role` simulated once on every database's needs (`Policies::allowed` asks per distinct
/// context, not per database): for each database with needs, those it may not make, or why the
/// simulation could not run.
async fn simulated<'a>(
    deps: &Deps,
    role: &str,
    needs: &'a [Option<Vec<Need>>],
) -> Vec<Option<Result<Vec<&'a Need>, String>>> {
    let all: Vec<Need> = needs.iter().flatten().flatten().cloned().collect();
    let answer = deps.policies.allowed(role, &all).await.map_err(|e| e.to_string());
    let mut at = 0;
    needs
        .iter()
        .map(|mine| {
            let mine = mine.as_ref()?;
            let denied = answer.as_ref().map_err(Clone::clone).map(|allowed| {
                mine.iter().zip(&allowed[at..at + mine.len()]).filter(|(_, ok)| !**ok).map(|(n, _)| n).collect()
            });
            at += mine.len();
            Some(denied)
        })
        .collect()
}

/// What a failed read said, for the person who reads the notice: the call, AWS's error code and
/// message (`rds:DescribeGlobalClusters: AccessDenied: ...`), not the SDK's dump of the response.
fn said(e: &LifeboatError) -> String {
    let text = e.to_string();
    let field = |name: &str| {
        let (_, rest) = text.split_once(&format!("{name}: Some(\""))?;
        rest.split_once("\")").map(|(v, _)| v.to_owned())
    };
    let call = text.split_once(": ").map_or("", |(c, _)| c);
    match (field("code"), field("message")) {
        (Some(code), Some(message)) => format!("{call}: {code}: {message}"),
        (Some(code), None) => format!("{call}: {code}"),
        // Not AWS's answer (a timeout, a connection that failed): the SDK's first words say which.
        _ => text.split(" (").next().unwrap_or(&text).chars().take(300).collect(),
    }
}

/// With a stack in each region, a database's readiness is checked by the stack that would run
/// its recovery (`recovered_from`), from where the failover would run; one stack checks them all.
fn checks_here(deps: &Deps, db: &Database) -> bool {
    let Some(region) = deps.config.sources_in() else { return true };
    match &db.failover {
        Some(f) => lifeboat_core::failover::steps::recovered_from(db, f.strategy) == region,
        None => db.source.region == region,
    }
}

/// `db`'s facts but its permissions, and the calls its failover needs (to simulate with every
/// other database's; None: nothing to simulate). `last_drill` is what the table held (for a
/// drilled database).
async fn facts(
    deps: &Deps,
    reads: &Reads,
    db: &Database,
    last_drill: Option<Result<Option<DrillResult>, LifeboatError>>,
    now: DateTime<Utc>,
) -> Gathered {
    let mut f = Facts::default();
    let failover = db.failover.as_ref();
    if let Some(t) = failover.and_then(|f| f.target.as_ref()) {
        let seen = if t.resource == RdsResource::Cluster {
            deps.rds.cluster(&t.region, &t.id).await?
        } else {
            deps.rds.instance(&t.region, &t.id).await?
        };
        if failover.is_some_and(|f| f.strategy == Strategy::PromoteReplica) {
            // An Aurora MySQL replica cluster reports its lag as AuroraBinlogReplicaLag.
            let metric = if t.resource == RdsResource::Cluster { Lag::BinlogCluster } else { Lag::Replica };
            let lag = deps.metrics.lag(&t.region, metric, &t.id, now).await.unwrap_or_else(|e| {
                warn!(error = %e, "replica lag not read");
                None
            });
            f.replica_lag_seconds = lag.map(f64::round);
        }
        f.target = Some(seen);
    }
    let group = |region, kind, name| reads.group(deps, region, kind, name);
    if let Some(r) = readiness::restore_of(db) {
        if let Some(region) = restore_region(db, r) {
            f.subnet_group = Some(group(region, Group::Subnet, &r.subnet_group).await?);
            if !r.security_groups.is_empty() {
                let key = (region.to_owned(), r.security_groups.clone());
                let missing =
                    reads.security_groups.get(key, || deps.network.missing_security_groups(region, &r.security_groups));
                f.missing_security_groups = Some(missing.await?);
            }
            if let Some(g) = &r.parameter_group {
                let kind = if db.is_cluster() { Group::ClusterParameter } else { Group::Parameter };
                f.parameter_group = Some((g.clone(), group(region, kind, g).await?));
            }
            if let Some(g) = &r.option_group {
                f.option_group = Some((g.clone(), group(region, Group::Option, g).await?));
            }
        }
    }
    let global_strategy =
        failover.is_some_and(|f| matches!(f.strategy, Strategy::GlobalSwitchover | Strategy::GlobalFailover));
    if let (Some(t), true) = (failover.and_then(|f| f.target.as_ref()), global_strategy) {
        let m = deps.rds.global_membership(&t.region, &t.to_string()).await?;
        f.global = Some(m.map(|m| (m.global, m.is_writer, m.status.unwrap_or_default())));
    }
    let mut needs = None;
    if let Some(role) = deps.steps_role.as_deref().filter(|_| failover.is_some()) {
        let global = f.global.as_ref().and_then(|g| g.as_ref()).map(|(id, _, _)| id.as_str());
        let account = role.split(':').nth(4).unwrap_or(&db.source.account);
        let wanted = readiness::needs(db, &deps.region, account, global);
        // Each key a restore uses, its policy read once: KMS lets the role's IAM policy count
        // only where the key's own policy says so.
        for n in wanted.iter().filter(|n| n.action.starts_with("kms:")) {
            if !f.key_policies.iter().any(|k| k.key == n.resource) {
                let region = n.resource.split(':').nth(3).unwrap_or(&deps.region);
                let key = (region.to_owned(), n.resource.clone());
                // A key that is gone has no policy: the dr-key check says so.
                let Some(policy) = reads.key_policies.get(key, || deps.keys.policy(region, &n.resource)).await? else {
                    continue;
                };
                let says = wanted
                    .iter()
                    .filter(|m| m.resource == n.resource)
                    .map(|m| (m.action, readiness::key_policy_says(&policy, &m.resource, role, m)))
                    .collect();
                f.key_policies.push(readiness::KeyAccess { key: n.resource.clone(), role: role.to_owned(), says });
            }
        }
        needs = Some(wanted);
    }
    for target in &db.copy_to {
        let region = target.region.as_str();
        if let Some(key) = &target.kms_key {
            let state = reads.keys.get((region.to_owned(), key.clone()), || deps.keys.state(region, key)).await?;
            f.dr_keys.push((target.region.clone(), key.clone(), state));
        }
        let both = Kinds { instances: true, clusters: true };
        let listed = reads
            .listings
            .get(region.to_owned(), || async { deps.rds.list_with_engines(region, both).await.map(Arc::new) })
            .await?;
        let (listing, engines) = (&listed.0, &listed.1);
        // The quota of the database's own kind: its DR copies count against that one alone.
        let quotas = reads.quotas.get(region.to_owned(), || deps.rds.snapshot_quotas(region)).await?;
        let (kind, resource, reported) = if db.is_cluster() {
            ("cluster", RdsResource::ClusterSnapshot, quotas.clusters)
        } else {
            ("instance", RdsResource::InstanceSnapshot, quotas.instances)
        };
        let counted =
            || listing.iter().filter(|s| s.snapshot_type == SnapshotType::Manual && s.arn.resource == resource).count();
        f.snapshot_quotas.push(Quota {
            region: target.region.clone(),
            kind,
            used: reported.map_or_else(counted, |(used, _)| used),
            max: reported.map(|(_, max)| max),
        });
        f.copies_in_flight.push((
            target.region.clone(),
            lifeboat_core::copy::in_flight(listing, RdsResource::InstanceSnapshot),
            lifeboat_core::copy::in_flight(listing, RdsResource::ClusterSnapshot),
        ));
        if failover.is_some_and(|f| f.strategy == Strategy::RestoreLatestCopy)
            && lifeboat_core::failover::steps::restore_region(db) == Some(region)
        {
            f.newest_copy = Some(newest_copy(db, listing).cloned());
        }
        // The class a restore asks for, offered for the engine and version of the copy it would
        // restore (as the listing says), in the region it would run in.
        let restore = readiness::restore_of(db).filter(|r| restore_region(db, r) == Some(region));
        if let (Some(r), Some((engine, version))) =
            (restore, newest_copy(db, listing).and_then(|copy| engines.get(&copy.arn)))
        {
            let key = (region.to_owned(), engine.clone(), version.clone(), r.instance_class.clone());
            let offered = reads.offers.get(key, || deps.rds.offers(region, engine, version, &r.instance_class)).await?;
            f.instance_class = Some(Offered {
                class: r.instance_class.clone(),
                engine: engine.clone(),
                version: version.clone(),
                offered,
            });
        }
    }
    if let Some((fo, d)) = failover.and_then(|fo| fo.dns.as_ref().map(|d| (fo, d))) {
        match d.mode {
            DnsMode::Upsert => {
                let key = (d.zone_id.clone(), d.record.clone());
                let read =
                    || async { Ok(deps.dns.cname_refused(&d.zone_id, &d.record).await.map_err(|e| e.to_string())) };
                f.dns = Some(reads.records.get(key, read).await?);
            }
            // Read where the failover would flip them: the recovering region's endpoint first.
            DnsMode::RoutingControl => {
                let (first, last) = (recovered_from(db, fo.strategy), db.source.region.as_str());
                let key = format!("{:?} {first} {last}", d.routing_controls);
                let read = || async {
                    let states = deps.arc.states(d, first, last).await;
                    Ok(states.map(|s| (s.on, s.off, s.region)).map_err(|e| e.to_string()))
                };
                f.routing_controls = Some(reads.controls.get(key, read).await?);
            }
        }
    }
    if let Some(name) = failover.and_then(|f| f.endpoint_parameter.as_deref()) {
        f.endpoint_parameter = Some(reads.parameter_length(deps, name).await?.is_some());
    }
    if let (Some(key), Some(_)) = (&deps.approval_key_param, failover) {
        f.approval_key_length = Some(reads.parameter_length(deps, key).await?);
    }
    if let Some(last) = last_drill {
        f.last_drill = Some(last?);
    }
    Ok((f, needs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_read_is_said_as_the_call_and_aws_answer_not_the_sdks_dump() {
        let dump = "rds:DescribeGlobalClusters: service error: unhandled error (AccessDenied): Error { code: \"AccessDenied\", \
                    message: \"User is not authorized\" } (ServiceError(ServiceError { source: Unhandled(Unhandled { source: \
                    ErrorMetadata { code: Some(\"AccessDenied\"), message: Some(\"User is not authorized\"), extras: None } }), \
                    raw: Response { status: StatusCode(400), headers: {} } }))";
        let e = LifeboatError::Rejected(dump.into());
        assert_eq!(said(&e), "rds:DescribeGlobalClusters: AccessDenied: User is not authorized");
        let down = LifeboatError::Transient(
            "kms:DescribeKey: dispatch failure (DispatchFailure(io: connection reset))".into(),
        );
        assert_eq!(said(&down), "kms:DescribeKey: dispatch failure");
    }

    #[tokio::test]
    async fn a_memo_reads_each_key_once_remembers_a_refusal_and_asks_again_after_a_passing_failure() {
        let memo: Memo<&str, usize> = Memo::default();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let read = |v: usize| {
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move { Ok(v) }
        };
        let (a, b) = tokio::join!(memo.get("k", || read(1)), memo.get("k", || read(2)));
        assert_eq!((a.unwrap(), b.unwrap()), (1, 1), "the second waits for the first's answer");
        assert_eq!(memo.get("other", || read(3)).await.unwrap(), 3);
        assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 2);

        let failing: Memo<&str, usize> = Memo::default();
        let throttled = || async { Err(LifeboatError::Transient("rds:DescribeDBSubnetGroups: Throttling".into())) };
        assert!(failing.get("k", throttled).await.unwrap_err().is_retryable());
        // Throttling may pass: the next database sharing the resource asks again.
        assert_eq!(failing.get("k", || async { Ok(7) }).await.unwrap(), 7);
        let denied: Memo<&str, usize> = Memo::default();
        let refused = denied.get("k", || async { Err(LifeboatError::Rejected("AccessDenied".into())) }).await;
        assert!(!refused.unwrap_err().is_retryable());
        let still = denied.get("k", || async { Ok(7) }).await.unwrap_err();
        assert!(still.to_string().contains("AccessDenied"), "a refusal is the answer for the run: {still}");
    }
}
