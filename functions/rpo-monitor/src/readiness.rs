//! `{"readiness": true}` (every 30 minutes) or `{"readiness": true, "database": "..."}`: the
//! read-only calls `lifeboat_core::readiness` needs, its verdict per database, one EMF metric
//! `FailoverReady` per database (and, for a whole run, one for the stack's region: the alarm's,
//! which a run that never finishes leaves missing), and one notice when a database stops being
//! ready and one when it is ready again (the RPO notices' send-once rule). A database whose facts
//! could not be read is not ready, saying why; the others are checked all the same.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use lifeboat_core::arn::RdsResource;
use lifeboat_core::aws::rds::{Kinds, SnapshotQuotas};
use lifeboat_core::aws::recovery::Group;
use lifeboat_core::aws::ssm::parameter;
use lifeboat_core::config::{Config, Database};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::failover::steps::recovered_from;
use lifeboat_core::failover::{DnsMode, Strategy};
use lifeboat_core::readiness::{self, Check, Facts, Offered, Quota};
use lifeboat_core::rpo::newest_copy;
use lifeboat_core::snapshot::{Snapshot, SnapshotType};
use lifeboat_core::{message, metrics};
use serde::Serialize;
use tracing::warn;

use crate::Deps;

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

/// What readiness reads once per region for all its databases: the snapshot listing and the
/// account's snapshot quotas there.
#[derive(Default)]
struct PerRegion {
    listings: BTreeMap<String, Vec<Snapshot>>,
    quotas: BTreeMap<String, SnapshotQuotas>,
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
    let mut per_region = PerRegion::default();
    let mut out = Vec::new();
    let mut failed = None;
    for db in config.databases.iter().filter(|d| only.is_none_or(|n| n == d.name) && checks_here(deps, d)) {
        // On the heap: the SDK futures of a dozen services inside are too big for a worker thread's stack.
        // A read that fails (AccessDenied, throttling, an outage) is this database's verdict, not the run's end.
        let checks = match Box::pin(facts(deps, db, &mut per_region, now)).await {
            Ok(facts) => readiness::evaluate(db, &facts, now),
            Err(e) => {
                warn!(database = %db.name, error = %e, "readiness facts not read");
                readiness::unreadable(&said(&e), e.is_retryable())
            }
        };
        let ready = readiness::ready(&checks);
        let line = metrics::emf(
            now,
            &[("Database", &db.name), ("Region", &deps.region)],
            &[&["Database", "Region"]],
            &[("FailoverReady", i64::from(ready), "Count")],
        );
        println!("{line}");
        datapoints.push(line);
        if let Err(e) = tell_if_changed(deps, &db.name, &checks, now, published).await {
            failed.get_or_insert(e);
        }
        if let Err(e) = deps.store.put_readiness(&db.name, &readiness::summary(&checks), now).await {
            failed.get_or_insert(e);
        }
        out.push(Readiness { database: db.name.clone(), ready, summary: readiness::summary(&checks), checks });
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
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
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

async fn facts(
    deps: &Deps,
    db: &Database,
    per_region: &mut PerRegion,
    now: DateTime<Utc>,
) -> Result<Facts, LifeboatError> {
    let mut f = Facts::default();
    let failover = db.failover.as_ref();
    if let Some(t) = failover.and_then(|f| f.target.as_ref()) {
        let seen = if t.resource == RdsResource::Cluster {
            deps.rds.cluster(&t.region, &t.id).await?
        } else {
            deps.rds.instance(&t.region, &t.id).await?
        };
        if failover.is_some_and(|f| f.strategy == Strategy::PromoteReplica) && t.resource == RdsResource::Instance {
            let lag = deps.metrics.replica_lag(&t.region, &t.id, now).await.unwrap_or_else(|e| {
                warn!(error = %e, "replica lag not read");
                None
            });
            f.replica_lag_seconds = lag.map(|l| l as f64);
        }
        f.target = Some(seen);
    }
    if let Some(r) = readiness::restore_of(db) {
        if let Some(region) = restore_region(db, r) {
            f.subnet_group = Some(deps.rds.group_exists(region, Group::Subnet, &r.subnet_group).await?);
            if !r.security_groups.is_empty() {
                f.missing_security_groups =
                    Some(deps.network.missing_security_groups(region, &r.security_groups).await?);
            }
            if let Some(g) = &r.parameter_group {
                let kind = if db.is_cluster() { Group::ClusterParameter } else { Group::Parameter };
                f.parameter_group = Some((g.clone(), deps.rds.group_exists(region, kind, g).await?));
            }
            if let Some(g) = &r.option_group {
                f.option_group = Some((g.clone(), deps.rds.group_exists(region, Group::Option, g).await?));
            }
        }
    }
    let global_strategy =
        failover.is_some_and(|f| matches!(f.strategy, Strategy::GlobalSwitchover | Strategy::GlobalFailover));
    if let (Some(t), true) = (failover.and_then(|f| f.target.as_ref()), global_strategy) {
        let m = deps.rds.global_membership(&t.region, &t.to_string()).await?;
        f.global = Some(m.map(|m| (m.global, m.is_writer, m.status.unwrap_or_default())));
    }
    if let Some(role) = deps.steps_role.as_deref().filter(|_| failover.is_some()) {
        let global = f.global.as_ref().and_then(|g| g.as_ref()).map(|(id, _, _)| id.as_str());
        let account = role.split(':').nth(4).unwrap_or(&db.source.account);
        let needs = readiness::needs(db, &deps.region, account, global);
        // Each key a restore uses, its policy read once: KMS lets the role's IAM policy count
        // only where the key's own policy says so.
        for n in needs.iter().filter(|n| n.action.starts_with("kms:")) {
            if !f.key_policies.iter().any(|k| k.key == n.resource) {
                let region = n.resource.split(':').nth(3).unwrap_or(&deps.region);
                // A key that is gone has no policy: the dr-key check says so.
                let Some(policy) = deps.keys.policy(region, &n.resource).await? else { continue };
                let says = needs
                    .iter()
                    .filter(|m| m.resource == n.resource)
                    .map(|m| (m.action, readiness::key_policy_says(&policy, &m.resource, role, m)))
                    .collect();
                f.key_policies.push(readiness::KeyAccess { key: n.resource.clone(), role: role.to_owned(), says });
            }
        }
        // IAM's control plane may be what is down: that is a warning, not a verdict.
        f.permissions = Some(match deps.policies.denied(role, &needs).await {
            Ok(denied) => Ok((needs.len(), denied)),
            Err(e) => Err(e.to_string()),
        });
    }
    for target in &db.copy_to {
        if let Some(key) = &target.kms_key {
            let state = deps.keys.state(&target.region, key).await?;
            f.dr_keys.push((target.region.clone(), key.clone(), state));
        }
        if !per_region.listings.contains_key(&target.region) {
            let kinds = Kinds { instances: true, clusters: true };
            per_region.listings.insert(target.region.clone(), deps.rds.list(&target.region, kinds).await?);
        }
        if !per_region.quotas.contains_key(&target.region) {
            per_region.quotas.insert(target.region.clone(), deps.rds.snapshot_quotas(&target.region).await?);
        }
        let listing = &per_region.listings[&target.region];
        // The quota of the database's own kind: its DR copies count against that one alone.
        let quotas = per_region.quotas[&target.region];
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
            && lifeboat_core::failover::steps::restore_region(db) == Some(target.region.as_str())
        {
            f.newest_copy = Some(newest_copy(db, listing).cloned());
        }
        // The class a restore asks for, offered for the engine and version of the copy it would
        // restore, in the region it would run in.
        let restore = readiness::restore_of(db).filter(|r| restore_region(db, r) == Some(target.region.as_str()));
        if let (Some(r), Some(copy)) = (restore, newest_copy(db, listing)) {
            if let Some((engine, version)) = deps.rds.snapshot_engine(&copy.arn.to_string()).await? {
                let offered = deps.rds.offers(&target.region, &engine, &version, &r.instance_class).await?;
                f.instance_class = Some(Offered { class: r.instance_class.clone(), engine, version, offered });
            }
        }
    }
    if let Some((fo, d)) = failover.and_then(|fo| fo.dns.as_ref().map(|d| (fo, d))) {
        match d.mode {
            DnsMode::Upsert => {
                f.dns = Some(deps.dns.cname_refused(&d.zone_id, &d.record).await.map_err(|e| e.to_string()));
            }
            // Read where the failover would flip them: the recovering region's endpoint first.
            DnsMode::RoutingControl => {
                let read = deps.arc.states(d, recovered_from(db, fo.strategy), &db.source.region).await;
                f.routing_controls = Some(read.map(|s| (s.on, s.off, s.region)).map_err(|e| e.to_string()));
            }
        }
    }
    if let Some(name) = failover.and_then(|f| f.endpoint_parameter.as_deref()) {
        f.endpoint_parameter = Some(parameter(&deps.ssm, name).await?.is_some());
    }
    if let (Some(key), Some(_)) = (&deps.approval_key_param, failover) {
        f.approval_key_length = Some(parameter(&deps.ssm, key).await?.map(|k| k.len()));
    }
    if db.drill.is_some() {
        f.last_drill = Some(deps.store.last_drill(&db.name).await?);
    }
    Ok(f)
}

/// One notice when a database stops being ready, one when it is ready again, never on every run.
async fn tell_if_changed(
    deps: &Deps,
    database: &str,
    checks: &[Check],
    now: DateTime<Utc>,
    published: &mut Vec<String>,
) -> Result<(), LifeboatError> {
    let key = format!("ready#{database}");
    let not_ready = !readiness::ready(checks);
    // First run: ready is the quiet default, so only a database that starts out blocked is told.
    let (was_not_ready, since) = deps.store.state(&key).await?.unwrap_or((false, DateTime::<Utc>::MIN_UTC));
    if was_not_ready == not_ready {
        return Ok(());
    }
    let m = message::readiness_change(database, &deps.region, checks);
    // Named from when the previous state began (to the millisecond: runs on demand can come
    // within a second), so each change is told once, and a retried run tells it no twice.
    let claim = format!("{key}#{not_ready}#{}", since.timestamp_millis());
    if deps.store.send_once(None, &claim, now, deps.topic.publish(&m)).await? {
        published.push(m.subject.clone());
    }
    deps.store.set_state(&key, not_ready, now).await
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
}
