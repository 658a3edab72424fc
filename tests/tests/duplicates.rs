//! EventBridge delivers at least once, sometimes at the same moment: each trigger delivered three
//! times concurrently ends as delivered once — one copy, one notice, one incident and one
//! failover execution, one set of deletions — and a snapshot's events out of order do no harm.

use std::time::Duration;

use chrono::Utc;
use lifeboat_tests::*;
use serde_json::json;

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_concurrent_deliveries_end_as_one() {
    let moto = Moto::start();
    let key = kms_key(&moto, DR).await;
    let table = incidents_table(&moto, SRC).await;
    let (topic, inbox) = topic_with_queue(&moto, SRC).await;
    create_instance(&moto, SRC, "orders-prod").await;
    let yaml = format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{key}\" }}\n    retention:\n      source: {{ daily: 1, min_keep: 1 }}\n      copies: {{ daily: 5, min_keep: 5 }}\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:{DR}:{ACCOUNT}:db:orders-replica\n      approval: required\n      triggers: {{ alarms: [orders-prod-db-down], health: true }}\n"
    );
    let sdk = moto.sdk(SRC).await;
    let ttl = Duration::from_secs(60);
    let copier = snapshot_copier::Deps::new(config_in_ssm(&moto, &yaml, ttl).await, &sdk);
    let pruner = snapshot_pruner::Deps::new(config_in_ssm(&moto, &yaml, ttl).await, &sdk, Some(&topic));
    let notifier = notifier::Deps::new(config_in_ssm(&moto, &yaml, ttl).await, &sdk, &table, &topic, None);
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    // moto's default Step Functions backend records executions (and their names) without running them.
    let machine = sfn
        .create_state_machine()
        .name("lifeboat-failover")
        .definition(r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Succeed"}}}"#)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/lifeboat-test"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned();
    let trigger = failover_trigger::Deps::new(
        config_in_ssm(&moto, &yaml, ttl).await,
        &sdk,
        &table,
        &machine,
        Duration::from_secs(1),
    );

    // Out of order: the snapshot's "deleted" arrives before its "created"; both do nothing.
    let gone = snapshot(&moto, SRC, "orders-prod", "orders-gone", &[]).await;
    moto.rds(SRC).await.delete_db_snapshot().db_snapshot_identifier("orders-gone").send().await.unwrap();
    let deleted =
        snapshot_copier::handle(&copier, event("rds-db-snapshot-deleted.json", Some(&gone)), Utc::now()).await.unwrap();
    let created =
        snapshot_copier::handle(&copier, event("rds-db-snapshot-manual-created.json", Some(&gone)), Utc::now())
            .await
            .unwrap();
    assert!(deleted.started.is_empty() && created.started.is_empty(), "{deleted:?} {created:?}");
    assert!(db_snapshots(&moto, DR).await.is_empty());

    // The copier: one copy.
    let arn = snapshot(&moto, SRC, "orders-prod", "orders-1", &[("lifeboat:managed", "true")]).await;
    let e = event("rds-db-snapshot-manual-created.json", Some(&arn));
    let runs = tokio::join!(
        snapshot_copier::handle(&copier, e.clone(), Utc::now()),
        snapshot_copier::handle(&copier, e.clone(), Utc::now()),
        snapshot_copier::handle(&copier, e.clone(), Utc::now()),
    );
    let started: usize = [runs.0, runs.1, runs.2].into_iter().map(|r| r.expect("copier").started.len()).sum();
    assert_eq!(started, 1, "three deliveries start one copy");
    assert_eq!(db_snapshots(&moto, DR).await.len(), 1);

    // The notifier: one Health notice.
    let h = event("health-rds-issue-open.json", None);
    let runs = tokio::join!(
        notifier::handle(&notifier, h.clone(), Utc::now()),
        notifier::handle(&notifier, h.clone(), Utc::now()),
        notifier::handle(&notifier, h.clone(), Utc::now()),
    );
    for r in [runs.0, runs.1, runs.2] {
        r.expect("notifier");
    }
    assert_eq!(notices(&moto, SRC, &inbox).await.len(), 1, "one notice");

    // The failover trigger: one incident, one execution.
    let a = event("cloudwatch-alarm-into-alarm.json", None);
    let runs = tokio::join!(
        failover_trigger::handle(&trigger, a.clone(), Utc::now()),
        failover_trigger::handle(&trigger, a.clone(), Utc::now()),
        failover_trigger::handle(&trigger, a.clone(), Utc::now()),
    );
    let reports: Vec<_> = [runs.0, runs.1, runs.2].into_iter().map(|r| r.expect("trigger")).collect();
    let ids: std::collections::BTreeSet<_> = reports.iter().filter_map(|r| r.incident_id.clone()).collect();
    assert_eq!(ids.len(), 1, "{reports:?}");
    assert_eq!(reports.iter().filter(|r| r.started).count(), 1, "{reports:?}");
    let executions = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap();
    assert_eq!(executions.executions().len(), 1);
    let incidents = table_items(&moto, SRC, &table).await.into_iter().filter(|i| i.contains("incident#")).count();
    assert_eq!(incidents, 1);

    // The pruner: the same deletions as one run, none failed.
    moto.set_clock(Utc::now() + chrono::Duration::days(3));
    snapshot(&moto, SRC, "orders-prod", "orders-2", &[("lifeboat:managed", "true")]).await;
    let s = json!({});
    let runs = tokio::join!(
        snapshot_pruner::handle(&pruner, s.clone(), Utc::now() + chrono::Duration::days(3)),
        snapshot_pruner::handle(&pruner, s.clone(), Utc::now() + chrono::Duration::days(3)),
        snapshot_pruner::handle(&pruner, s.clone(), Utc::now() + chrono::Duration::days(3)),
    );
    for r in [runs.0, runs.1, runs.2] {
        let summary = r.expect("pruner");
        assert!(summary.groups.iter().all(|g| g.failed.is_empty()), "{summary:?}");
    }
    let left: Vec<String> =
        db_snapshots(&moto, SRC).await.into_iter().map(|s| s.0).filter(|id| id.starts_with("orders-")).collect();
    assert_eq!(left, ["orders-2"], "daily: 1 keeps the newest, once");
}
