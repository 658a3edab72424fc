//! snapshot-copier against the moto emulator: real RDS state in, real copies out.

use lifeboat_core::arn::RdsArn;
use lifeboat_core::config::Config;
use lifeboat_core::copy::target_identifier;
use lifeboat_core::error::LifeboatError;
use lifeboat_tests::*;
use snapshot_copier::{handle, Deps};

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";
const DR2: &str = "eu-west-1";

struct World {
    moto: Moto,
    deps: Deps,
    west_key: String,
    eu_key: String,
}

/// orders (instance) copies to two DR regions, catalog (Aurora cluster) to one; ledger is unencrypted-less.
async fn world_with(moto: Moto) -> World {
    let west_key = kms_key(&moto, DR).await;
    let eu_key = kms_key(&moto, DR2).await;
    create_instance(&moto, SRC, "orders").await;
    create_cluster(&moto, SRC, "catalog").await;
    create_instance(&moto, SRC, "unprotected").await;
    let yaml = format!(
        r#"
databases:
  - name: orders-prod
    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders
    tier: production
    rpo: 5m
    rto: 30m
    copy_to:
      - {{ region: {DR}, kms_key: "{west_key}" }}
      - {{ region: {DR2}, kms_key: "{eu_key}" }}
  - name: catalog-aurora
    source: arn:aws:rds:{SRC}:{ACCOUNT}:cluster:catalog
    tier: production
    rpo: 1h
    rto: 1h
    copy_to:
      - {{ region: {DR}, kms_key: "{west_key}" }}
"#
    );
    let config = Config::from_yaml(&yaml).unwrap();
    let deps = Deps::new(config, &moto.sdk(SRC).await);
    World { moto, deps, west_key, eu_key }
}

async fn world() -> World {
    world_with(Moto::start()).await
}

fn target_of(arn: &str) -> String {
    target_identifier(&arn.parse::<RdsArn>().unwrap())
}

fn copies(seen: &Seen) -> Vec<&SeenSnapshot> {
    seen.iter().filter(|s| s.0.starts_with("lifeboat-")).collect()
}

fn has_tag(tags: &[(String, String)], k: &str, v: &str) -> bool {
    tags.iter().any(|(tk, tv)| tk == k && tv == v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_snapshot_event_copies_to_each_dr_region_with_its_key_and_tags() {
    let w = world().await;
    let arn = snapshot(&w.moto, SRC, "orders", "orders-pre-migration", &[("team", "payments")]).await;
    let report = handle(&w.deps, event("rds-db-snapshot-manual-created.json", Some(&arn))).await.unwrap();
    assert_eq!(report.started.len(), 2, "{report:?}");
    assert!(report.api_calls <= 5, "an event should cost a handful of calls: {report:?}");

    for (region, key) in [(DR, &w.west_key), (DR2, &w.eu_key)] {
        let seen = db_snapshots(&w.moto, region).await;
        let c = copies(&seen);
        assert_eq!(c.len(), 1, "{region}: {seen:?}");
        let (id, _status, kms, tags) = c[0];
        assert_eq!(id, &target_of(&arn));
        assert_eq!(kms.as_deref(), Some(key.as_str()), "{region} copy must use {region}'s key");
        assert!(has_tag(tags, "lifeboat:managed", "true"), "{tags:?}");
        assert!(has_tag(tags, "lifeboat:database", "orders-prod"), "{tags:?}");
        assert!(has_tag(tags, "lifeboat:source-arn", &arn), "{tags:?}");
        assert!(has_tag(tags, "team", "payments"), "user tags travel with the copy: {tags:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_snapshot_event_copies_the_cluster_snapshot() {
    let w = world().await;
    let arn = cluster_snapshot(&w.moto, SRC, "catalog", "catalog-pre-release", &[]).await;
    let report = handle(&w.deps, event("rds-cluster-snapshot-manual-created.json", Some(&arn))).await.unwrap();
    assert_eq!(report.started, vec![format!("{DR}:{}", target_of(&arn))]);
    let seen = cluster_snapshots(&w.moto, DR).await;
    let c = copies(&seen);
    assert_eq!(c.len(), 1, "{seen:?}");
    assert_eq!(c[0].2.as_deref(), Some(w.west_key.as_str()));
    assert!(has_tag(&c[0].3, "lifeboat:database", "catalog-aurora"));
    assert!(copies(&cluster_snapshots(&w.moto, DR2).await).is_empty(), "catalog has no copy_to eu-west-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_event_leaves_exactly_one_copy() {
    let w = world().await;
    let arn = snapshot(&w.moto, SRC, "orders", "orders-manual-1", &[]).await;
    let e = event("rds-db-snapshot-manual-created.json", Some(&arn));
    let first = handle(&w.deps, e.clone()).await.unwrap();
    let second = handle(&w.deps, e).await.unwrap();
    assert_eq!(first.started.len(), 2);
    assert!(second.started.is_empty(), "{second:?}");
    assert_eq!(second.already_copied.len(), 2, "{second:?}");
    for region in [DR, DR2] {
        assert_eq!(copies(&db_snapshots(&w.moto, region).await).len(), 1, "{region}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_events_change_nothing() {
    let w = world().await;
    let orders = snapshot(&w.moto, SRC, "orders", "orders-manual-1", &[]).await;
    let unprotected = snapshot(&w.moto, SRC, "unprotected", "unprotected-1", &[]).await;
    let before = everything(&w.moto, &[SRC, DR, DR2]).await;
    for e in [
        event("rds-db-snapshot-deleted.json", Some(&orders)),
        event("rds-db-snapshot-copy-finished.json", Some(&orders)),
        event("rds-db-snapshot-manual-created.json", Some(&unprotected)),
    ] {
        let report = handle(&w.deps, e).await.unwrap();
        assert!(report.ignored.is_some() && report.started.is_empty(), "{report:?}");
    }
    assert_eq!(everything(&w.moto, &[SRC, DR, DR2]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_or_dangling_events_are_non_retryable_and_change_nothing() {
    let w = world().await;
    snapshot(&w.moto, SRC, "orders", "orders-manual-1", &[]).await;
    let before = everything(&w.moto, &[SRC, DR, DR2]).await;
    let missing = format!("arn:aws:rds:{SRC}:{ACCOUNT}:snapshot:never-existed");
    for e in [
        event("malformed-snapshot-event.json", None),
        serde_json::json!({"not": "an event"}),
        serde_json::json!("just a string"),
        event("rds-db-snapshot-manual-created.json", Some("arn:aws:s3:::bucket")),
        event("rds-db-snapshot-manual-created.json", Some(&missing)),
    ] {
        let err = handle(&w.deps, e.clone()).await.unwrap_err();
        assert!(!err.is_retryable(), "{e}: {err}");
        assert_eq!(err.error_type(), "NonRetryable");
    }
    assert_eq!(everything(&w.moto, &[SRC, DR, DR2]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lifeboat_copy_is_never_copied_back() {
    let w = world().await;
    let arn = snapshot(&w.moto, SRC, "orders", "orders-manual-1", &[]).await;
    handle(&w.deps, event("rds-db-snapshot-manual-created.json", Some(&arn))).await.unwrap();
    // Seen from a Lifeboat deployed in the DR region too: the copy's own "created" event.
    let copy_arn = format!("arn:aws:rds:{DR}:{ACCOUNT}:snapshot:{}", target_of(&arn));
    let before = everything(&w.moto, &[SRC, DR, DR2]).await;
    let report = handle(&w.deps, event("rds-db-snapshot-manual-created.json", Some(&copy_arn))).await.unwrap();
    assert!(report.started.is_empty() && report.ignored.is_some(), "{report:?}");
    assert_eq!(everything(&w.moto, &[SRC, DR, DR2]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_copies_the_newest_snapshot_whose_event_never_came() {
    // The databases (and the automated snapshots moto makes with them) are older than both.
    let moto = Moto::start();
    moto.set_clock(chrono::Utc::now() - chrono::Duration::hours(6));
    let w = world_with(moto).await;
    w.moto.set_clock(chrono::Utc::now() - chrono::Duration::hours(3));
    let old = snapshot(&w.moto, SRC, "orders", "orders-older", &[]).await;
    w.moto.set_clock(chrono::Utc::now() - chrono::Duration::hours(1));
    let newest = snapshot(&w.moto, SRC, "orders", "orders-newest", &[]).await;
    let cluster = cluster_snapshot(&w.moto, SRC, "catalog", "catalog-newest", &[]).await;
    w.moto.set_clock(chrono::Utc::now());

    let report = handle(&w.deps, event("scheduled-sweep.json", None)).await.unwrap();
    let mut started = report.started.clone();
    started.sort();
    let mut want = vec![
        format!("{DR}:{}", target_of(&newest)),
        format!("{DR2}:{}", target_of(&newest)),
        format!("{DR}:{}", target_of(&cluster)),
    ];
    want.sort();
    assert_eq!(started, want, "{report:?}");
    assert!(!report.started.iter().any(|s| s.contains(&target_of(&old))));
    // Three regions listed once each (two kinds), then three copies: no per-snapshot calls.
    assert_eq!(report.api_calls, 3 * 2 + 3, "{report:?}");

    let again = handle(&w.deps, event("scheduled-sweep.json", None)).await.unwrap();
    assert!(again.started.is_empty(), "{again:?}");
    assert_eq!(copies(&db_snapshots(&w.moto, DR).await).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_refusal_is_retryable_and_the_sweep_catches_up() {
    // moto refuses a copy once a region holds this many DB snapshots, as RDS does at its quota.
    let w = world_with(Moto::start_with(&[("MOTO_RDS_SNAPSHOT_LIMIT", "2")])).await;
    // The source's automated snapshot (made with the instance) is the one to copy.
    let auto = db_snapshots(&w.moto, SRC).await.into_iter().find(|s| s.0.starts_with("rds:orders")).unwrap().0;
    let arn = format!("arn:aws:rds:{SRC}:{ACCOUNT}:snapshot:{auto}");
    // Fill us-west-2 up to the limit.
    create_instance(&w.moto, DR, "filler-a").await;
    create_instance(&w.moto, DR, "filler-b").await;

    let err = handle(&w.deps, event("rds-db-snapshot-automated-created.json", Some(&arn))).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(matches!(err, LifeboatError::Transient(ref m) if m.contains("SnapshotQuotaExceeded")), "{err}");
    assert!(copies(&db_snapshots(&w.moto, DR).await).is_empty());
    assert_eq!(copies(&db_snapshots(&w.moto, DR2).await).len(), 1, "the other region is not held back");

    // Room frees up; the next sweep copies what the refused event could not.
    let dr = w.moto.rds(DR).await;
    for s in db_snapshots(&w.moto, DR).await {
        dr.delete_db_snapshot().db_snapshot_identifier(&s.0).send().await.unwrap();
    }
    let report = handle(&w.deps, event("scheduled-sweep.json", None)).await.unwrap();
    assert!(report.started.contains(&format!("{DR}:{}", target_of(&arn))), "{report:?}");
    assert_eq!(copies(&db_snapshots(&w.moto, DR).await).len(), 1);
    assert_eq!(copies(&db_snapshots(&w.moto, DR2).await).len(), 1, "no second copy in eu-west-1");
}
