//! rpo-monitor against moto: copies made by the real copier, the breach state in the incident
//! table, notices read from a subscribed queue. Replica lag is not emulated here: the CloudWatch
//! SDK speaks Smithy RPC v2 CBOR, which moto does not (getmoto/moto#9195); the lag read is tested
//! against aws-smithy-mocks (shared/src/aws/cloudwatch.rs) and its use in `rpo::assess`.

use chrono::{DateTime, Duration, Utc};
use lifeboat_core::aws::CONFIG_TTL;
use lifeboat_tests::*;
use rpo_monitor::{handle, Deps};
use serde_json::{json, Value};

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";

struct World {
    moto: Moto,
    deps: Deps,
    copier: snapshot_copier::Deps,
    inbox: String,
    table: String,
}

async fn world() -> World {
    let moto = Moto::start();
    moto.set_clock(Utc::now() - Duration::hours(1));
    let table = incidents_table(&moto, SRC).await;
    let (topic, inbox) = topic_with_queue(&moto, SRC).await;
    create_instance(&moto, SRC, "orders").await;
    let yaml = format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders\n    tier: production\n    rpo: 1h\n    rto: 30m\n    copy_to: [{{ region: {DR} }}]\n"
    );
    let sdk = moto.sdk(SRC).await;
    let deps = Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    let mut copier = snapshot_copier::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk);
    copier.emit_metrics = false;
    moto.set_clock(Utc::now());
    World { moto, deps, copier, inbox, table }
}

/// A snapshot taken now and copied to the DR region by the real copier.
async fn fresh_copy(w: &World, id: &str) {
    let arn = snapshot(&w.moto, SRC, "orders", id, &[]).await;
    let report =
        snapshot_copier::handle(&w.copier, event("rds-db-snapshot-manual-created.json", Some(&arn)), Utc::now())
            .await
            .unwrap();
    assert_eq!(report.started.len(), 1, "{report:?}");
}

fn tick(at: DateTime<Utc>) -> Value {
    let mut e = event("scheduled-sweep.json", None);
    e["time"] = json!(at);
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_is_told_once_when_it_starts_and_once_when_it_ends() {
    let w = world().await;
    fresh_copy(&w, "orders-1").await;
    let now = Utc::now();
    for _ in 0..2 {
        let r = handle(&w.deps, tick(now), now).await.unwrap();
        let a = &r.assessments[0];
        assert!(!a.breached && a.copy_age_seconds.is_some_and(|s| s < 60), "{a:?}");
        assert!(r.published.is_empty());
    }
    assert!(notices(&w.moto, SRC, &w.inbox).await.is_empty());

    // Two hours on, with no new copy: the newest is older than the 1h RPO.
    let later = now + Duration::hours(2);
    for _ in 0..3 {
        handle(&w.deps, tick(later), later).await.unwrap();
    }
    let got = notices(&w.moto, SRC, &w.inbox).await;
    assert_eq!(got.len(), 1, "once, not every run: {got:?}");
    assert_eq!(got[0].subject, "[P2] orders-prod in us-west-2: RPO BREACHED");
    assert!(got[0].text.contains("would lose: up to 2h"), "{}", got[0].text);

    // A new copy: one recovery notice.
    w.moto.set_clock(later);
    fresh_copy(&w, "orders-2").await;
    for _ in 0..2 {
        handle(&w.deps, tick(later + Duration::minutes(5)), later + Duration::minutes(5)).await.unwrap();
    }
    let got = notices(&w.moto, SRC, &w.inbox).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].subject.ends_with("RPO met again"), "{}", got[0].subject);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_copies_or_snapshots_is_breached_and_reported() {
    let w = world().await;
    // The instance's automated snapshot exists in the source region, but nothing was copied.
    let r = handle(&w.deps, json!({}), Utc::now()).await.unwrap();
    assert!(r.assessments[0].breached && r.assessments[0].recovery_point_age_seconds.is_none());
    assert!(r.unprotected.is_empty(), "it has a snapshot in its source region");
    let got = notices(&w.moto, SRC, &w.inbox).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].text.contains("no recovery point at all"), "{}", got[0].text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_input_is_refused_and_changes_nothing() {
    let w = world().await;
    let before = table_items(&w.moto, SRC, &w.table).await;
    for bad in [event("rds-db-snapshot-manual-created.json", None), json!({"report": true}), json!([1])] {
        let err = handle(&w.deps, bad.clone(), Utc::now()).await.unwrap_err();
        assert!(!err.is_retryable(), "{bad}: {err}");
    }
    assert_eq!(table_items(&w.moto, SRC, &w.table).await, before);
    assert!(notices(&w.moto, SRC, &w.inbox).await.is_empty());
}
