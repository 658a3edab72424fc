//! snapshot-copier against the moto emulator: real RDS state in, real copies out.

use chrono::Utc;
use lifeboat_core::arn::RdsArn;
use lifeboat_core::aws::CONFIG_TTL;
use lifeboat_core::copy::target_identifier;
use lifeboat_tests::*;
use serde_json::Value;
use snapshot_copier::{Deps, Report};

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";
const DR2: &str = "eu-west-1";

struct World {
    moto: Moto,
    deps: Deps,
    west_key: String,
    eu_key: String,
    yaml: String,
}

async fn handle(deps: &Deps, payload: Value) -> Result<Report, lifeboat_core::error::LifeboatError> {
    snapshot_copier::handle(deps, payload, Utc::now()).await
}

/// orders (instance) copies to two DR regions; catalog (unencrypted Aurora cluster) and ledger
/// (encrypted Aurora cluster) to one.
async fn world_with(moto: Moto) -> World {
    world_yaml(moto, "").await
}

/// `extra` is appended to the databases list.
async fn world_yaml(moto: Moto, extra: &str) -> World {
    let west_key = kms_key(&moto, DR).await;
    let eu_key = kms_key(&moto, DR2).await;
    create_instance(&moto, SRC, "orders").await;
    create_cluster(&moto, SRC, "catalog").await;
    create_cluster_with(&moto, SRC, "ledger", true).await;
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
  - name: ledger-aurora
    source: arn:aws:rds:{SRC}:{ACCOUNT}:cluster:ledger
    tier: production
    rpo: 1h
    rto: 1h
    copy_to:
      - {{ region: {DR}, kms_key: "{west_key}" }}
{extra}"#
    );
    let config = config_in_ssm(&moto, &yaml, CONFIG_TTL).await;
    let deps = Deps::new(config, &moto.sdk(SRC).await);
    World { moto, deps, west_key, eu_key, yaml }
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
async fn cluster_snapshots_are_copied_with_the_key_only_when_encrypted() {
    // CopyDBClusterSnapshot refuses a KmsKeyId for an unencrypted source (our moto enforces it).
    let w = world().await;
    let plain = cluster_snapshot(&w.moto, SRC, "catalog", "catalog-pre-release", &[]).await;
    let report = handle(&w.deps, event("rds-cluster-snapshot-manual-created.json", Some(&plain))).await.unwrap();
    assert_eq!(report.started, vec![format!("{DR}:{}", target_of(&plain))]);
    let secret = cluster_snapshot(&w.moto, SRC, "ledger", "ledger-pre-release", &[]).await;
    let report = handle(&w.deps, event("rds-cluster-snapshot-manual-created.json", Some(&secret))).await.unwrap();
    assert_eq!(report.started, vec![format!("{DR}:{}", target_of(&secret))]);

    let seen = cluster_snapshots(&w.moto, DR).await;
    let c = copies(&seen);
    assert_eq!(c.len(), 2, "{seen:?}");
    let of = |arn: &str| c.iter().find(|s| s.0 == target_of(arn)).copied().unwrap();
    let plain_copy = w
        .moto
        .rds(DR)
        .await
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(target_of(&plain))
        .send()
        .await
        .unwrap();
    assert_eq!(
        plain_copy.db_cluster_snapshots()[0].storage_encrypted(),
        Some(false),
        "an unencrypted cluster snapshot is copied unencrypted"
    );
    assert_eq!(of(&secret).2.as_deref(), Some(w.west_key.as_str()), "re-encrypted with the DR region's key");
    assert!(has_tag(&of(&plain).3, "lifeboat:database", "catalog-aurora"));
    assert!(copies(&cluster_snapshots(&w.moto, DR2).await).is_empty(), "catalog has no copy_to eu-west-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn automated_snapshot_events_find_their_snapshot_and_copy_it() {
    // DescribeDBSnapshots needs SnapshotType for an automated identifier (our moto enforces it).
    let w = world().await;
    let auto = db_snapshots(&w.moto, SRC).await.into_iter().find(|s| s.0.starts_with("rds:orders")).unwrap().0;
    let arn = format!("arn:aws:rds:{SRC}:{ACCOUNT}:snapshot:{auto}");
    let report = handle(&w.deps, event("rds-db-snapshot-automated-created.json", Some(&arn))).await.unwrap();
    assert_eq!(report.started.len(), 2, "{report:?}");
    let auto_cluster =
        cluster_snapshots(&w.moto, SRC).await.into_iter().find(|s| s.0.starts_with("rds:catalog")).unwrap().0;
    let arn = format!("arn:aws:rds:{SRC}:{ACCOUNT}:cluster-snapshot:{auto_cluster}");
    let report = handle(&w.deps, event("rds-cluster-snapshot-automated-created.json", Some(&arn))).await.unwrap();
    assert_eq!(report.started, vec![format!("{DR}:{}", target_of(&arn))], "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_from_regions_and_accounts_lifeboat_does_not_protect_are_ignored_without_a_call() {
    let w = world().await;
    let before = everything(&w.moto, &[SRC, DR, DR2]).await;
    for arn in [
        "arn:aws:rds:eu-central-1:123456789012:snapshot:rds:elsewhere-2026-11-24-03-10".to_owned(),
        format!("arn:aws:rds:{SRC}:210987654321:snapshot:rds:orders-2026-11-24-03-10"),
        // A Lifeboat copy's own "created" event in the DR region, where nothing is a source.
        format!("arn:aws:rds:{DR}:{ACCOUNT}:snapshot:lifeboat-orders-1-0a1b2c3d"),
    ] {
        let report = handle(&w.deps, event("rds-db-snapshot-automated-created.json", Some(&arn))).await.unwrap();
        let why = report.ignored.as_deref().unwrap_or_default();
        assert!(why.contains("protects no database"), "{arn}: {report:?}");
        assert_eq!(report.api_calls, 0, "{report:?}");
    }
    let sample = handle(&w.deps, event("rds-db-snapshot-other-region.json", None)).await.unwrap();
    assert!(sample.ignored.as_deref().unwrap_or_default().contains("ap-southeast-2"), "{sample:?}");
    assert_eq!(everything(&w.moto, &[SRC, DR, DR2]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_copy_is_reported_deleted_and_copied_again() {
    // The instances' automated snapshots are an hour older, so the sweep's newest is this one.
    let moto = Moto::start();
    moto.set_clock(Utc::now() - chrono::Duration::hours(1));
    let w = world_with(moto).await;
    w.moto.set_clock(Utc::now());
    let arn = snapshot(&w.moto, SRC, "orders", "orders-manual-1", &[]).await;
    let e = event("rds-db-snapshot-manual-created.json", Some(&arn));
    handle(&w.deps, e.clone()).await.unwrap();
    // RDS gave up on the us-west-2 copy (a KMS key policy problem, say).
    set_snapshot_status(&w.moto, DR, "db", &target_of(&arn), "failed");

    let replay = handle(&w.deps, e.clone()).await.unwrap();
    assert_eq!(replay.started, vec![format!("{DR}:{}", target_of(&arn))], "{replay:?}");
    assert_eq!(replay.failed.len(), 1, "reported as a failure: {replay:?}");
    assert!(replay.failed[0].contains("failed"), "{replay:?}");
    assert_eq!(replay.already_copied, vec![format!("{DR2}:{}", target_of(&arn))]);
    let seen = db_snapshots(&w.moto, DR).await;
    assert_eq!(copies(&seen).len(), 1, "{seen:?}");
    assert_eq!(copies(&seen)[0].1, "available");

    // The sweep finds failed copies too.
    set_snapshot_status(&w.moto, DR2, "db", &target_of(&arn), "failed");
    let sweep = handle(&w.deps, sweep_at(Utc::now())).await.unwrap();
    assert!(sweep.started.contains(&format!("{DR2}:{}", target_of(&arn))), "{sweep:?}");
    assert!(sweep.failed.iter().any(|f| f.contains(DR2) && f.contains("failed")), "{sweep:?}");
    assert_eq!(copies(&db_snapshots(&w.moto, DR2).await)[0].1, "available");
    let quiet = handle(&w.deps, sweep_at(Utc::now())).await.unwrap();
    assert!(quiet.failed.is_empty() && !quiet.started.contains(&format!("{DR2}:{}", target_of(&arn))), "{quiet:?}");

    // A failed copy whose source is gone: nothing will replace it, so it is deleted and reported.
    let src = w.moto.rds(SRC).await;
    src.delete_db_snapshot().db_snapshot_identifier("orders-manual-1").send().await.unwrap();
    set_snapshot_status(&w.moto, DR, "db", &target_of(&arn), "failed");
    let sweep = handle(&w.deps, sweep_at(Utc::now())).await.unwrap();
    assert!(sweep.failed.iter().any(|f| f.contains(&target_of(&arn)) && f.contains("nothing needs it")), "{sweep:?}");
    assert!(copies(&db_snapshots(&w.moto, DR).await).iter().all(|c| c.0 != target_of(&arn)), "deleted");
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
    // Deleted before its "created" event was handled (late or out-of-order delivery).
    let gone = format!("arn:aws:rds:{SRC}:{ACCOUNT}:snapshot:never-existed");
    let before = everything(&w.moto, &[SRC, DR, DR2]).await;
    for e in [
        event("rds-db-snapshot-deleted.json", Some(&orders)),
        event("rds-db-snapshot-copy-finished.json", Some(&orders)),
        event("rds-db-snapshot-manual-created.json", Some(&unprotected)),
        event("rds-db-snapshot-manual-created.json", Some(&gone)),
    ] {
        let report = handle(&w.deps, e).await.unwrap();
        assert!(report.ignored.is_some() && report.started.is_empty(), "{report:?}");
    }
    assert_eq!(everything(&w.moto, &[SRC, DR, DR2]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_events_are_non_retryable_and_change_nothing() {
    let w = world().await;
    snapshot(&w.moto, SRC, "orders", "orders-manual-1", &[]).await;
    let before = everything(&w.moto, &[SRC, DR, DR2]).await;
    for e in [
        event("malformed-snapshot-event.json", None),
        serde_json::json!({"not": "an event"}),
        serde_json::json!("just a string"),
        event("rds-db-snapshot-manual-created.json", Some("arn:aws:s3:::bucket")),
    ] {
        let err = handle(&w.deps, e.clone()).await.unwrap_err();
        assert!(!err.is_retryable(), "{e}: {err}");
        assert_eq!(err.error_type(), "NonRetryable");
    }
    assert_eq!(everything(&w.moto, &[SRC, DR, DR2]).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_arn_too_long_for_a_tag_is_reported_not_sent_to_rds() {
    // RDS refuses tag values over 256 characters (our moto too); this ARN would be the
    // lifeboat:source-arn tag of its copy.
    let w = world().await;
    let arn = snapshot(&w.moto, SRC, "orders", &format!("orders-{}", "x".repeat(220)), &[]).await;
    let before = everything(&w.moto, &[SRC, DR, DR2]).await;
    let report = handle(&w.deps, event("rds-db-snapshot-manual-created.json", Some(&arn))).await.unwrap();
    assert_eq!(report.failed.len(), 2, "one per DR region: {report:?}");
    assert!(report.failed.iter().all(|f| f.contains("lifeboat:source-arn") && f.contains("256")), "{report:?}");
    assert_eq!(report.api_calls, 1, "only the source was read: {report:?}");
    assert!(report.metrics(Utc::now()).contains(r#""CopiesFailed":2"#));
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

fn sweep_at(at: chrono::DateTime<Utc>) -> Value {
    let mut e = event("scheduled-sweep.json", None);
    e["time"] = at.to_rfc3339().into();
    e
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_copies_policy_the_sweep_copies_each_databases_newest_snapshot() {
    // The databases (and the automated snapshots moto makes with them) are older than both.
    let moto = Moto::start();
    moto.set_clock(Utc::now() - chrono::Duration::hours(6));
    let w = world_with(moto).await;
    w.moto.set_clock(Utc::now() - chrono::Duration::hours(3));
    let old = snapshot(&w.moto, SRC, "orders", "orders-older", &[]).await;
    w.moto.set_clock(Utc::now() - chrono::Duration::hours(1));
    let newest = snapshot(&w.moto, SRC, "orders", "orders-newest", &[]).await;
    let cluster = cluster_snapshot(&w.moto, SRC, "catalog", "catalog-newest", &[]).await;
    w.moto.set_clock(Utc::now());
    let ledger = cluster_snapshots(&w.moto, SRC).await.into_iter().find(|s| s.0.starts_with("rds:ledger")).unwrap().0;
    let ledger = format!("arn:aws:rds:{SRC}:{ACCOUNT}:cluster-snapshot:{ledger}");

    let report = handle(&w.deps, sweep_at(Utc::now())).await.unwrap();
    let mut started = report.started.clone();
    started.sort();
    let mut want = vec![
        format!("{DR}:{}", target_of(&newest)),
        format!("{DR2}:{}", target_of(&newest)),
        format!("{DR}:{}", target_of(&cluster)),
        format!("{DR}:{}", target_of(&ledger)),
    ];
    want.sort();
    assert_eq!(started, want, "{report:?}");
    assert!(!report.started.iter().any(|s| s.contains(&target_of(&old))));
    // Three regions listed once each (two kinds) and their snapshot quotas read once each, then
    // four copies: no per-snapshot calls.
    assert_eq!(report.api_calls, 3 * 2 + 3 + 4, "{report:?}");
    assert!(report.unprotected.is_empty() && report.failed.is_empty(), "{report:?}");

    let again = handle(&w.deps, sweep_at(Utc::now())).await.unwrap();
    assert!(again.started.is_empty(), "{again:?}");
    assert_eq!(copies(&db_snapshots(&w.moto, DR).await).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_copies_every_snapshot_the_copies_policy_keeps_and_reports_databases_without_any() {
    // Noon yesterday, so "the last 3 days" never straddles midnight whatever time the test runs.
    let base = (Utc::now() - chrono::Duration::days(1)).date_naive().and_hms_opt(12, 0, 0).unwrap().and_utc();
    let moto = Moto::start();
    moto.set_clock(base - chrono::Duration::days(10));
    let billing = format!(
        r#"  - name: billing
    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:billing
    tier: production
    rpo: 24h
    rto: 4h
    copy_to: [{{ region: {DR} }}]
    retention:
      copies: {{ daily: 3, min_keep: 1 }}
  - name: ghost
    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:ghost
    tier: non-production
    rpo: 24h
    rto: 4h
    copy_to: [{{ region: {DR} }}]
"#
    );
    let w = world_yaml(moto, &billing).await;
    create_instance(&w.moto, SRC, "billing").await;
    let mut taken = Vec::new();
    for (days_ago, id) in [(9, "billing-old"), (2, "billing-pre-migration"), (1, "billing-d1"), (0, "billing-d0")] {
        w.moto.set_clock(base - chrono::Duration::days(days_ago));
        taken.push(snapshot(&w.moto, SRC, "billing", id, &[]).await);
    }
    w.moto.set_clock(Utc::now());
    // Every event was lost (or deferred for quota): the sweep alone restores the policy's set.
    let at = base + chrono::Duration::hours(1);
    let report = snapshot_copier::handle(&w.deps, sweep_at(at), at).await.unwrap();
    let billing_copies: Vec<&String> = report.started.iter().filter(|s| s.contains("billing")).collect();
    let want: Vec<String> = taken[1..].iter().map(|a| format!("{DR}:{}", target_of(a))).collect();
    assert_eq!(billing_copies.len(), 3, "{report:?}");
    assert!(want.iter().all(|w| report.started.contains(w)), "{report:?}");
    assert_eq!(report.unprotected, vec!["ghost".to_string()], "no snapshot at all is reported, not only logged");
    assert!(report.metrics(at).contains(r#""UnprotectedDatabases":1"#), "{}", report.metrics(at));

    // Three days on, retention let two of them go; the sweep does not bring them back.
    let dr = w.moto.rds(DR).await;
    for arn in &taken[1..3] {
        dr.delete_db_snapshot().db_snapshot_identifier(target_of(arn)).send().await.unwrap();
    }
    let later = base + chrono::Duration::days(3) + chrono::Duration::hours(1);
    let report = snapshot_copier::handle(&w.deps, sweep_at(later), later).await.unwrap();
    assert!(!report.started.iter().any(|s| s.contains("billing")), "{report:?}");
    assert!(report.already_copied.contains(&format!("{DR}:billing")), "{report:?}");
}

/// The sweep judges a region's manual snapshots against the account's own quota there
/// (DescribeAccountAttributes, once a region a run), not RDS's default 100; when that can't be
/// read, it counts the listing against the default instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_warnings_name_the_accounts_own_maximum_and_fall_back_to_counting() {
    // The emulator's quota is its snapshot limit: 10 here, where 9 manual snapshots are 90 %.
    let w = world_with(Moto::start_with(&[("MOTO_RDS_SNAPSHOT_LIMIT", "10")])).await;
    create_instance(&w.moto, DR, "filler").await;
    for n in 0..9 {
        snapshot(&w.moto, DR, "filler", &format!("filler-{n}"), &[]).await;
    }
    let report = handle(&w.deps, sweep_at(Utc::now())).await.unwrap();
    assert_eq!(
        report.quota_warnings,
        [format!("{DR} holds 9 of 10 manual DB snapshots allowed by the account's quota there")],
        "{report:?}"
    );
    assert!(report.metrics(Utc::now()).contains(r#""QuotaWarnings":1"#));

    // Denied the read, the sweep goes on: 9 counted against the default 100 is no warning.
    w.moto.post(
        "/_lifeboat/faults",
        &serde_json::json!({"faults": [{"operation": "DescribeAccountAttributes", "code": "AccessDenied"}]}),
    );
    let report = handle(&w.deps, sweep_at(Utc::now())).await.unwrap();
    assert!(report.quota_warnings.is_empty(), "{report:?}");
    assert_eq!(w.moto.fault_counts()["injected"].as_object().map(|m| m.values().count()), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_refusal_is_deferred_not_an_error_and_the_sweep_catches_up() {
    // moto refuses a copy once a region holds this many DB snapshots, as RDS does at its quota.
    let w = world_with(Moto::start_with(&[("MOTO_RDS_SNAPSHOT_LIMIT", "2")])).await;
    // The source's automated snapshot (made with the instance) is the one to copy.
    let auto = db_snapshots(&w.moto, SRC).await.into_iter().find(|s| s.0.starts_with("rds:orders")).unwrap().0;
    let arn = format!("arn:aws:rds:{SRC}:{ACCOUNT}:snapshot:{auto}");
    // Fill us-west-2 up to the limit: an instance's automated snapshot and a manual one.
    create_instance(&w.moto, DR, "filler").await;
    snapshot(&w.moto, DR, "filler", "filler-manual", &[]).await;

    // Lambda's retries come within minutes and a quota takes longer: no error, no dead letter.
    let report = handle(&w.deps, event("rds-db-snapshot-automated-created.json", Some(&arn))).await.unwrap();
    assert_eq!(report.deferred.len(), 1, "{report:?}");
    assert!(report.deferred[0].starts_with(&format!("{DR}:")) && report.deferred[0].contains("quota"), "{report:?}");
    assert!(copies(&db_snapshots(&w.moto, DR).await).is_empty());
    assert_eq!(copies(&db_snapshots(&w.moto, DR2).await).len(), 1, "the other region is not held back");

    // Room frees up; the next sweep copies what the refused event could not.
    w.moto.rds(DR).await.delete_db_snapshot().db_snapshot_identifier("filler-manual").send().await.unwrap();
    let report = handle(&w.deps, sweep_at(Utc::now())).await.unwrap();
    assert!(report.started.contains(&format!("{DR}:{}", target_of(&arn))), "{report:?}");
    assert_eq!(copies(&db_snapshots(&w.moto, DR).await).len(), 1);
    assert_eq!(copies(&db_snapshots(&w.moto, DR2).await).len(), 1, "no second copy in eu-west-1");
}

/// The copier of a stack in `region`, with `LIFEBOAT_RECOVERS=own`.
async fn scoped_copier(w: &World, region: &str) -> Deps {
    let config = config_in_ssm(&w.moto, &w.yaml, CONFIG_TTL).await.sources_only_in(region);
    Deps::new(config, &w.moto.sdk(region).await)
}

/// A stack in each region (`LIFEBOAT_RECOVERS=own`): the DR region's stack copies nothing of the
/// databases whose source is in us-east-1, so each copy is started, and each notice sent, by one
/// stack, the source region's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_stack_in_each_region_only_the_source_regions_stack_copies() {
    let w = world().await;
    let manual = snapshot(&w.moto, SRC, "orders", "orders-manual", &[]).await;
    let west = scoped_copier(&w, DR).await;
    let sweep = handle(&west, sweep_at(Utc::now())).await.unwrap();
    assert!(sweep.started.is_empty() && sweep.failed.is_empty(), "{sweep:?}");
    let event = handle(&west, event("rds-db-snapshot-manual-created.json", Some(&manual))).await.unwrap();
    assert!(event.started.is_empty() && event.ignored.is_some(), "{event:?}");
    assert!(copies(&db_snapshots(&w.moto, DR).await).is_empty());

    let east = scoped_copier(&w, SRC).await;
    let sweep = handle(&east, sweep_at(Utc::now())).await.unwrap();
    assert!(sweep.started.contains(&format!("{DR}:{}", target_of(&manual))), "{sweep:?}");
}
