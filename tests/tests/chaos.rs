//! Chaos: with 20% of the calls to RDS, SSM, SNS and DynamoDB failing (AWS's throttling errors,
//! 503s, dropped connections and answers lost after AWS acted, injected between the SDK and moto by
//! scripts/moto_server.py's `Faults`, from a seed), the
//! copier's sweep, the pruner and the notifier reach the same end state as without faults — over
//! the SDK's retries and, when those run out, the next invocation (as Lambda's retry or the next
//! schedule would run it): every snapshot copied exactly once, nothing deleted that the fault-free
//! plan keeps, every message sent once. Several seeds; the figures go to RELIABILITY.md.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::incident::{Entry, Incident, Kind};
use lifeboat_tests::*;
use serde_json::{json, Value};

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";
/// The seeds the test command runs; `LIFEBOAT_CHAOS_SEEDS=1,2,3,...` (scripts/chaos.sh) runs more.
const SEEDS: &str = "1,7";
/// Invocations a run may take before the test calls it lost (Lambda retries twice; the sweep
/// and the schedules come back): far more than 20% faults need.
const INVOCATIONS: usize = 12;

/// 20% of the calls to each service fail; `LIFEBOAT_CHAOS_RATE` (scripts/chaos.sh) sets another rate.
/// The fault kinds for `service`; `LIFEBOAT_CHAOS_KINDS=throttle,drop` (scripts/chaos.sh) picks
/// others. No lost answers for SNS: a retried Publish is a second message (SNS standard topics
/// don't deduplicate), which `an_answer_lost_after_each_write_...` in chaos.rs shows apart.
fn kinds(service: &str) -> Vec<String> {
    let kinds = std::env::var("LIFEBOAT_CHAOS_KINDS").unwrap_or_else(|_| "throttle,unavailable,drop,lost".into());
    kinds.split(',').map(|k| k.trim().to_owned()).filter(|k| !(service == "sns" && k == "lost")).collect()
}

fn chaos(seed: u64) -> Value {
    let rate: f64 = std::env::var("LIFEBOAT_CHAOS_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(0.2);
    let services = ["rds", "ssm", "sns", "dynamodb"];
    json!({"faults": services.iter().map(|s| json!({"service": s, "rate": rate, "seed": seed, "kinds": kinds(s)})).collect::<Vec<_>>()})
}

fn faults_stats(moto: &Moto) -> (u64, u64, Value) {
    let v = moto.fault_counts();
    (summed(&v, "calls"), summed(&v, "injected"), v["kinds"].clone())
}

/// Copy counts per source snapshot in the DR region (by `lifeboat:source-arn`).
async fn copies_per_source(moto: &Moto) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for seen in [db_snapshots(moto, DR).await, cluster_snapshots(moto, DR).await].iter().flatten() {
        if let Some((_, source)) = seen.3.iter().find(|(k, _)| k == "lifeboat:source-arn") {
            *out.entry(source.clone()).or_default() += 1;
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_20_percent_faults_copies_prunes_and_messages_converge_exactly_once() {
    let mut figures = Vec::new();
    let seeds = std::env::var("LIFEBOAT_CHAOS_SEEDS").unwrap_or_else(|_| SEEDS.to_owned());
    for seed in seeds.split(',').filter_map(|s| s.trim().parse::<u64>().ok()) {
        let started = std::time::Instant::now();
        let moto = Moto::start();
        let key = kms_key(&moto, DR).await;
        let (topic, inbox) = topic_with_queue(&moto, SRC).await;
        let table = incidents_table(&moto, SRC).await;
        let now = Utc::now();
        moto.set_clock(now - Duration::days(11));
        create_instance(&moto, SRC, "orders").await;
        create_cluster(&moto, SRC, "catalog").await;
        let days = |n: i64, name: &str| -> Vec<(String, chrono::DateTime<Utc>)> {
            (1..=n).rev().map(|d| (format!("{name}-{d}"), now - Duration::days(d))).collect()
        };
        let mut sources =
            taken_at(&moto, SRC, "orders", false, &days(10, "orders"), &[("lifeboat:managed", "true")]).await;
        sources.extend(taken_at(&moto, SRC, "catalog", true, &days(3, "catalog"), &[]).await);
        let yaml = format!(
            "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders\n    tier: production\n    rpo: 24h\n    rto: 1h\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{key}\" }}\n    retention:\n      source: {{ daily: 3, min_keep: 3 }}\n      copies: {{ daily: 20, min_keep: 20 }}\n  - name: catalog-aurora\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:cluster:catalog\n    tier: production\n    rpo: 24h\n    rto: 1h\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 20, min_keep: 20 }}\n"
        );
        let sdk = moto.sdk(SRC).await;
        // Re-read on every invocation, so SSM's faults are on the path too.
        let copier = snapshot_copier::Deps::new(config_in_ssm(&moto, &yaml, std::time::Duration::ZERO).await, &sdk);
        let pruner = snapshot_pruner::Deps::new(
            config_in_ssm(&moto, &yaml, std::time::Duration::ZERO).await,
            &sdk,
            Some(&topic),
        );
        let notifier = notifier::Deps::new(
            config_in_ssm(&moto, &yaml, std::time::Duration::ZERO).await,
            &sdk,
            &table,
            &topic,
            None,
        );

        // The fault-free plan: what retention deletes in the source region.
        let plan = snapshot_pruner::handle(&pruner, event("pruner-dry-run.json", None), now).await.expect("dry run");
        let planned: Vec<String> =
            plan.groups.iter().flat_map(|g| g.would_delete.iter().map(|i| i.id.clone())).collect();
        assert!(!planned.is_empty(), "the plan deletes something: {plan:?}");
        let _ = notices(&moto, SRC, &inbox).await;

        moto.post("/_lifeboat/faults", &chaos(seed));
        let mut invocations = BTreeMap::new();
        // Invocations that failed (after the SDK's own retries) and were run again.
        let mut failed = 0;
        // The sweep, as its schedule (and Lambda's retries) would run it, until nothing is left.
        for n in 1..=INVOCATIONS {
            invocations.insert("copier", n);
            match snapshot_copier::handle(&copier, event("scheduled-sweep.json", None), Utc::now()).await {
                Ok(r) if r.started.is_empty() && r.failed.is_empty() && r.deferred.is_empty() => break,
                Ok(_) => {}
                Err(e) => {
                    failed += 1;
                    assert!(e.is_retryable(), "a fault must read as retryable: {e}");
                }
            }
            assert!(n < INVOCATIONS, "seed {seed}: the sweep did not converge");
        }
        for n in 1..=INVOCATIONS {
            invocations.insert("pruner", n);
            match snapshot_pruner::handle(&pruner, json!({}), Utc::now()).await {
                Ok(s) if s.groups.iter().all(|g| g.failed.is_empty()) => break,
                Ok(_) => {}
                Err(e) => {
                    failed += 1;
                    assert!(e.is_retryable(), "a fault must read as retryable: {e}");
                }
            }
            assert!(n < INVOCATIONS, "seed {seed}: the pruner did not converge");
        }
        let store = IncidentStore::new(&sdk, &table);
        let config = lifeboat_core::config::Config::from_yaml(&yaml).unwrap();
        let incident =
            Incident::declare(config.database_named("orders-prod").unwrap(), Kind::Outage, now, "t", "down", "chaos");
        for n in 1..=INVOCATIONS {
            invocations.insert("notifier", n);
            let opened = store.open(&incident, &Entry::new(now, "t", "seen", "seen:chaos")).await;
            let told = match opened {
                Ok(_) => {
                    // Retries come a minute apart here, as Lambda's async ones roughly do (Step
                    // Functions' 8 attempts for a message span about 8 minutes): a claim a failed
                    // run abandoned goes stale (90 s) and a later retry takes it over.
                    let at = Utc::now() + Duration::minutes(n as i64 - 1);
                    notifier::handle(&notifier, json!({"incident_id": incident.id, "message": "declared"}), at).await
                }
                Err(e) => Err(e),
            };
            match told {
                Ok(_) => break,
                Err(e) => {
                    failed += 1;
                    assert!(e.is_retryable(), "a fault must read as retryable: {e}");
                }
            }
            assert!(n < INVOCATIONS, "seed {seed}: the notifier did not converge");
        }
        let (calls, injected, kinds) = faults_stats(&moto);
        moto.post("/_lifeboat/faults", &json!({"faults": []}));

        // Every source snapshot copied exactly once.
        let copies = copies_per_source(&moto).await;
        for s in &sources {
            assert_eq!(copies.get(s), Some(&1), "seed {seed}: {s} copied {:?} times", copies.get(s));
        }
        // Nothing deleted beyond the fault-free plan, and all of it deleted.
        let left: Vec<String> = db_snapshots(&moto, SRC).await.into_iter().map(|s| s.0).collect();
        for s in sources.iter().filter(|s| s.contains(":snapshot:")) {
            let id = s.rsplit(':').next().unwrap().to_owned();
            assert_eq!(left.contains(&id), !planned.contains(&id), "seed {seed}: {id}");
        }
        // The incident was told once, whatever failed on the way; the pruner summaries went out.
        let told: Vec<String> = notices(&moto, SRC, &inbox).await.into_iter().map(|n| n.subject).collect();
        assert_eq!(told.iter().filter(|s| s.contains("incident declared")).count(), 1, "seed {seed}: {told:?}");
        // Once told, a repeat sends nothing.
        notifier::handle(&notifier, json!({"incident_id": incident.id, "message": "declared"}), Utc::now())
            .await
            .unwrap();
        assert!(notices(&moto, SRC, &inbox).await.is_empty());
        figures.push(format!(
            "seed {seed}: {calls} calls, {injected} faults injected {kinds}, invocations {invocations:?} ({failed} failed and ran again), {:.0} s",
            started.elapsed().as_secs_f64()
        ));
        assert!(injected > 0, "seed {seed}: no fault was injected");
    }
    println!("CHAOS {}", figures.join("; "));
}

/// The worst fault for idempotence: AWS acts, and its answer is lost (`lost`: the emulator lets
/// the call through, then drops the connection), so the SDK sends the same call again. Once per
/// write operation Lifeboat uses: the end state is as if nothing had been lost, except for SNS,
/// whose standard topics have no deduplication: a lost `Publish` answer means a second copy of
/// the message, which carries the same `incident_id` and `message` attributes for subscribers
/// to drop it by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_lost_after_each_write_is_retried_without_doing_it_twice() {
    let moto = Moto::start();
    let key = kms_key(&moto, DR).await;
    let (topic, inbox) = topic_with_queue(&moto, SRC).await;
    let table = incidents_table(&moto, SRC).await;
    let now = Utc::now();
    moto.set_clock(now - Duration::days(5));
    create_instance(&moto, SRC, "orders-prod").await;
    let days: Vec<_> = (1..=4).rev().map(|d| (format!("orders-{d}"), now - Duration::days(d))).collect();
    let sources = taken_at(&moto, SRC, "orders-prod", false, &days, &[("lifeboat:managed", "true")]).await;
    let yaml = format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 24h\n    rto: 1h\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{key}\" }}\n    retention:\n      source: {{ daily: 2, min_keep: 2 }}\n      copies: {{ daily: 20, min_keep: 20 }}\n"
    );
    let sdk = moto.sdk(SRC).await;
    let config = || config_in_ssm(&moto, &yaml, std::time::Duration::from_secs(60));
    let copier = snapshot_copier::Deps::new(config().await, &sdk);
    let pruner = snapshot_pruner::Deps::new(config().await, &sdk, None);
    let notifier = notifier::Deps::new(config().await, &sdk, &table, &topic, None);
    let lose = |service: &str, operation: &str| {
        moto.post(
            "/_lifeboat/faults",
            &json!({"faults": [{"service": service, "operation": operation, "kinds": ["lost"], "times": 1}]}),
        );
    };
    let lost = |op: &str| moto.fault_counts()["injected"][op].as_u64().unwrap_or(0);

    // A copy whose answer was lost: the copier's retry finds it made, and nothing is copied twice.
    lose("rds", "CopyDBSnapshot");
    let report = snapshot_copier::handle(&copier, event("scheduled-sweep.json", None), now).await.expect("sweep");
    assert_eq!(lost("rds:CopyDBSnapshot"), 1);
    assert!(report.failed.is_empty(), "{report:?}");
    let again = snapshot_copier::handle(&copier, event("scheduled-sweep.json", None), now).await.expect("sweep");
    assert!(again.started.is_empty(), "{again:?}");
    let copies = copies_per_source(&moto).await;
    for s in &sources {
        assert_eq!(copies.get(s), Some(&1), "{s}: {copies:?}");
    }

    // A delete whose answer was lost: the retry finds it gone; exactly the plan is deleted.
    lose("rds", "DeleteDBSnapshot");
    let summary = snapshot_pruner::handle(&pruner, json!({}), now).await.expect("prune");
    assert_eq!(lost("rds:DeleteDBSnapshot"), 1);
    assert!(summary.groups.iter().all(|g| g.failed.is_empty()), "{summary:?}");
    let left: Vec<String> =
        db_snapshots(&moto, SRC).await.into_iter().map(|s| s.0).filter(|i| i.starts_with("orders-")).collect();
    assert_eq!(left, ["orders-1", "orders-2"], "daily: 2 keeps the newest two");

    // A Health notice whose claim (a conditional PutItem) was lost: still told, once.
    lose("dynamodb", "PutItem");
    notifier::handle(&notifier, event("health-rds-issue-open.json", None), now).await.expect("health");
    assert_eq!(lost("dynamodb:PutItem"), 1);
    let told = notices(&moto, SRC, &inbox).await;
    assert_eq!(told.len(), 1, "{:?}", told.iter().map(|n| &n.subject).collect::<Vec<_>>());

    // An incident opened, and its message claimed, by transactions whose answers were lost.
    let store = IncidentStore::new(&sdk, &table);
    let cfg = lifeboat_core::config::Config::from_yaml(&yaml).unwrap();
    let incident =
        Incident::declare(cfg.database_named("orders-prod").unwrap(), Kind::Outage, now, "t", "down", "lost");
    lose("dynamodb", "TransactWriteItems");
    store.open(&incident, &Entry::new(now, "t", "seen", "seen:lost")).await.expect("open");
    assert_eq!(lost("dynamodb:TransactWriteItems"), 1);
    lose("dynamodb", "TransactWriteItems");
    notifier::handle(&notifier, json!({"incident_id": incident.id, "message": "declared"}), now).await.expect("told");
    assert_eq!(lost("dynamodb:TransactWriteItems"), 1);
    let told = notices(&moto, SRC, &inbox).await;
    assert_eq!(told.len(), 1, "{:?}", told.iter().map(|n| &n.subject).collect::<Vec<_>>());
    let items = table_items(&moto, SRC, &table).await;
    assert_eq!(items.iter().filter(|i| i.contains("\"incident#")).count(), 1, "one incident: {items:?}");

    // A Publish whose answer was lost: SNS delivers the retry too. Two copies, one identity.
    lose("sns", "Publish");
    notifier::handle(&notifier, event("health-rds-issue-updated.json", None), now).await.expect("health");
    assert_eq!(lost("sns:Publish"), 1);
    let told = notices(&moto, SRC, &inbox).await;
    assert_eq!(told.len(), 2, "SNS delivered the retried Publish too");
    assert_eq!((&told[0].attributes, &told[0].raw), (&told[1].attributes, &told[1].raw), "the same message twice");
}
