//! snapshot-pruner against the moto emulator, with months of snapshots seeded by moving its clock.
//! The expected keep sets below are worked out by hand from the calendar, not by the planner.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use lifeboat_core::aws::CONFIG_TTL;
use lifeboat_core::error::LifeboatError;
use lifeboat_tests::*;
use serde_json::{json, Value};

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";
const MANAGED: (&str, &str) = ("lifeboat:managed", "true");

/// 2026-08-31 is a Monday; the schedule fires at 04:00, before that day's snapshot.
const AS_OF: &str = "2026-08-31T04:00:00Z";

struct World {
    moto: Moto,
    pruner: snapshot_pruner::Deps,
    queue: String,
    key: String,
}

fn day(d: &str) -> DateTime<Utc> {
    let date: NaiveDate = d.parse().unwrap();
    Utc.from_utc_datetime(&date.and_hms_opt(12, 0, 0).unwrap())
}

fn config_yaml(key: &str, orders_dry_run: bool) -> String {
    format!(
        r#"
databases:
  - name: orders-prod
    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders
    tier: production
    rpo: 24h
    rto: 1h
    copy_to:
      - {{ region: {DR}, kms_key: "{key}" }}
    retention:
      source: {{ daily: 7, weekly: 4, monthly: 3, min_keep: 3 }}
      copies: {{ daily: 3, weekly: 2, monthly: 2, min_keep: 2 }}
      dry_run: {orders_dry_run}
  - name: catalog-aurora
    source: arn:aws:rds:{SRC}:{ACCOUNT}:cluster:catalog
    tier: production
    rpo: 24h
    rto: 1h
    copy_to:
      - {{ region: {DR}, kms_key: "{key}" }}
    retention:
      copies: {{ daily: 3, min_keep: 1 }}
"#
    )
}

/// orders: a managed manual snapshot every day at 12:00 from May 1 to Aug 30 2026, each copied to
/// the DR region by the real copier; catalog: a cluster snapshot a day for the last 6 days. Plus
/// what must never be touched: an untagged manual snapshot, a managed snapshot of an unprotected
/// database, a user's own snapshot in the DR region, and RDS's automated snapshots.
async fn seeded(orders_dry_run: bool) -> World {
    let moto = Moto::start();
    let key = kms_key(&moto, DR).await;
    let (topic, queue) = topic_with_queue(&moto, SRC).await;
    moto.set_clock(day("2026-04-30"));
    create_instance(&moto, SRC, "orders").await;
    create_instance(&moto, SRC, "billing").await;
    create_instance(&moto, DR, "scratch").await;
    create_cluster(&moto, SRC, "catalog").await;
    let yaml = config_yaml(&key, orders_dry_run);
    let sdk = moto.sdk(SRC).await;
    let copier = snapshot_copier::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk);
    // Re-read on every run, so a test can edit the document between runs.
    let pruner =
        snapshot_pruner::Deps::new(config_in_ssm(&moto, &yaml, std::time::Duration::ZERO).await, &sdk, Some(&topic));

    snapshot(&moto, SRC, "orders", "orders-before-upgrade", &[("purpose", "pre-upgrade")]).await;
    snapshot(&moto, SRC, "billing", "billing-2026-04-30", &[MANAGED]).await;
    snapshot(&moto, DR, "scratch", "scratch-keep-me", &[]).await;

    let mut d = day("2026-05-01");
    while d < day("2026-08-31") {
        moto.set_clock(d);
        let arn = snapshot(&moto, SRC, "orders", &format!("orders-{}", d.format("%Y-%m-%d")), &[MANAGED]).await;
        copy(&copier, &arn, "rds-db-snapshot-manual-created.json").await;
        if d >= day("2026-08-25") {
            let arn = cluster_snapshot(&moto, SRC, "catalog", &format!("catalog-{}", d.format("%Y-%m-%d")), &[]).await;
            copy(&copier, &arn, "rds-cluster-snapshot-manual-created.json").await;
        }
        d += Duration::days(1);
    }
    World { moto, pruner, queue, key }
}

async fn copy(copier: &snapshot_copier::Deps, arn: &str, file: &str) {
    let report = snapshot_copier::handle(copier, event(file, Some(arn)), Utc::now()).await.expect("copy");
    assert_eq!(report.started.len(), 1, "{report:?}");
}

fn scheduled() -> Value {
    let mut v = event("pruner-scheduled.json", None);
    v["time"] = AS_OF.into();
    v
}

fn ids(seen: &Seen) -> BTreeSet<String> {
    seen.iter().map(|s| s.0.clone()).collect()
}

/// The source snapshot ID each Lifeboat copy in a listing was made from.
fn copies_of(seen: &Seen) -> BTreeSet<String> {
    seen.iter()
        .filter_map(|s| s.3.iter().find(|(k, _)| k == "lifeboat:source-arn"))
        .map(|(_, arn)| arn.rsplit(':').next().unwrap_or_default().to_owned())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_exactly_the_gfs_set_in_both_regions_and_nothing_it_does_not_own_is_touched() {
    let w = seeded(false).await;
    let summary = snapshot_pruner::handle(&w.pruner, scheduled(), Utc::now()).await.expect("prune");

    let src = db_snapshots(&w.moto, SRC).await;
    let orders: BTreeSet<String> = ids(&src).into_iter().filter(|i| i.starts_with("orders-2026")).collect();
    // daily 7: Aug 25..30 (Aug 31 has none yet); weekly 4: Aug 30, Aug 23, Aug 16 (this week has
    // none); monthly 3: Aug 30, Jul 31, Jun 30; min_keep 3: Aug 28..30.
    let want_source = names(&[
        "orders-2026-06-30",
        "orders-2026-07-31",
        "orders-2026-08-16",
        "orders-2026-08-23",
        "orders-2026-08-25",
        "orders-2026-08-26",
        "orders-2026-08-27",
        "orders-2026-08-28",
        "orders-2026-08-29",
        "orders-2026-08-30",
    ]);
    assert_eq!(orders, want_source);
    // Never owned, so never touched: untagged, unprotected database, automated.
    for untouchable in ["orders-before-upgrade", "billing-2026-04-30"] {
        assert!(ids(&src).contains(untouchable), "{untouchable} was deleted");
    }
    assert_eq!(src.iter().filter(|s| s.0.starts_with("rds:")).count(), 2, "automated snapshots: {src:?}");

    let dr = db_snapshots(&w.moto, DR).await;
    // daily 3: Aug 29, 30; weekly 2: Aug 30; monthly 2: Aug 30, Jul 31; min_keep 2: Aug 29, 30.
    assert_eq!(copies_of(&dr), names(&["orders-2026-07-31", "orders-2026-08-29", "orders-2026-08-30"]));
    assert!(ids(&dr).contains("scratch-keep-me"));
    assert!(dr.iter().any(|s| s.0.starts_with("rds:scratch")));
    // Cluster copies: RDS gives them no original creation time; the copier's tag carries it.
    let dr_clusters = cluster_snapshots(&w.moto, DR).await;
    assert_eq!(copies_of(&dr_clusters), names(&["catalog-2026-08-29", "catalog-2026-08-30"]));
    let catalog_sources = ids(&cluster_snapshots(&w.moto, SRC).await).into_iter().filter(|i| i.starts_with("catalog-"));
    assert_eq!(catalog_sources.count(), 6, "cluster sources have no source policy");

    let deleted = (122 - 10) + (122 - 3) + (6 - 2);
    assert_eq!(summary.deleted(), deleted);
    // One listing per region and kind (moto returns one page), then one call per deletion.
    assert_eq!(summary.api_calls, 4 + deleted);
    let told = notifications(&w.moto, SRC, &w.queue).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].0.contains(&format!("{deleted} snapshots deleted")), "{}", told[0].0);
    assert!(told[0].1.contains("deleted orders-2026-08-24 (outside policy)"), "{}", told[0].1);

    // EventBridge delivers at least once: the same event again deletes nothing and tells no one.
    let before = everything(&w.moto, &[SRC, DR]).await;
    let again = snapshot_pruner::handle(&w.pruner, scheduled(), Utc::now()).await.expect("replay");
    assert_eq!(again.deleted(), 0);
    assert_eq!(everything(&w.moto, &[SRC, DR]).await, before);
    assert!(notifications(&w.moto, SRC, &w.queue).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_delete_nothing_and_report_the_plan() {
    let w = seeded(true).await;
    let before = everything(&w.moto, &[SRC, DR]).await;

    // Global dry run, by invocation.
    let summary = snapshot_pruner::handle(&w.pruner, json!({"dry_run": true}), Utc::now()).await.expect("dry run");
    assert_eq!(everything(&w.moto, &[SRC, DR]).await, before);
    assert_eq!(summary.deleted(), 0);
    assert!(summary.groups.iter().all(|g| g.dry_run));
    assert!(summary.groups.iter().any(|g| !g.would_delete.is_empty()), "{summary:?}");

    // Per-database dry run from the config: orders stays whole, catalog is pruned.
    let summary = snapshot_pruner::handle(&w.pruner, scheduled(), Utc::now()).await.expect("scheduled");
    let after = everything(&w.moto, &[SRC, DR]).await;
    assert_eq!(
        after.iter().map(|r| r.1.clone()).collect::<Vec<_>>(),
        before.iter().map(|r| r.1.clone()).collect::<Vec<_>>()
    );
    let orders = summary.groups.iter().filter(|g| g.database == "orders-prod");
    assert!(orders.clone().all(|g| g.dry_run && g.deleted.is_empty()));
    assert_eq!(orders.map(|g| g.would_delete.len()).sum::<usize>(), (122 - 10) + (122 - 3));
    assert_eq!(summary.deleted(), 4);
    assert_eq!(copies_of(&cluster_snapshots(&w.moto, DR).await).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_fail_clearly_and_touch_nothing() {
    let w = seeded(false).await;
    let before = everything(&w.moto, &[SRC, DR]).await;
    for (payload, says) in [
        (json!({"database": "ordres-prod"}), "ordres-prod"),
        (json!({"dryrun": true}), "dryrun"),
        (event("rds-db-snapshot-manual-created.json", None), "schedule"),
    ] {
        let err = snapshot_pruner::handle(&w.pruner, payload, Utc::now()).await.unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        assert!(err.to_string().contains(says), "{err}");
    }
    assert_eq!(everything(&w.moto, &[SRC, DR]).await, before);
    assert!(notifications(&w.moto, SRC, &w.queue).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_refused_delete_does_not_stop_the_rest_and_a_retry_finishes() {
    let w = seeded(false).await;
    w.moto.set_faults(&[("DeleteDBSnapshot", "orders-2026-08-24", "Throttling")]);
    let err = snapshot_pruner::handle(&w.pruner, scheduled(), Utc::now()).await.unwrap_err();
    assert!(matches!(err, LifeboatError::Transient(_)), "{err}");
    assert!(err.to_string().contains("1 failed"), "{err}");
    let left: BTreeSet<String> =
        ids(&db_snapshots(&w.moto, SRC).await).into_iter().filter(|i| i.starts_with("orders-2026")).collect();
    assert_eq!(left.len(), 11, "everything else was deleted: {left:?}");
    assert!(left.contains("orders-2026-08-24"));
    let told = notifications(&w.moto, SRC, &w.queue).await;
    assert!(told.len() == 1 && told[0].0.contains("FAILED"), "{told:?}");
    assert!(told[0].1.contains("FAILED to delete orders-2026-08-24"), "{}", told[0].1);

    w.moto.set_faults(&[]);
    let retry = snapshot_pruner::handle(&w.pruner, scheduled(), Utc::now()).await.expect("retry");
    assert_eq!(retry.deleted(), 1);
    assert!(!ids(&db_snapshots(&w.moto, SRC).await).contains("orders-2026-08-24"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_config_takes_effect_without_a_cold_start_and_a_broken_one_deletes_nothing() {
    let w = seeded(false).await;
    let before = everything(&w.moto, &[SRC, DR]).await;
    // The emergency brake: dry_run set in the parameter, as a SecureString this time.
    put_config(&w.moto, &config_yaml(&w.key, true), aws_sdk_ssm::types::ParameterType::SecureString).await;
    let summary = snapshot_pruner::handle(&w.pruner, json!({"database": "orders-prod"}), Utc::now()).await.unwrap();
    assert!(summary.groups.iter().all(|g| g.dry_run && g.deleted.is_empty()), "{summary:?}");
    assert_eq!(everything(&w.moto, &[SRC, DR]).await, before);

    // A typo in the edit: the run refuses, clearly, rather than acting on the old document.
    let broken = config_yaml(&w.key, false).replace("min_keep: 3", "min_kepp: 3");
    put_config(&w.moto, &broken, aws_sdk_ssm::types::ParameterType::String).await;
    let err = snapshot_pruner::handle(&w.pruner, scheduled(), Utc::now()).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("min_kepp"), "{err}");
    assert_eq!(everything(&w.moto, &[SRC, DR]).await, before);
    assert!(notifications(&w.moto, SRC, &w.queue).await.is_empty());
}
