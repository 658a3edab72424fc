//! The real `snapshot-copier` binary, run by `cargo lambda watch` (the Lambda runtime API emulator)
//! and invoked with a sample payload from events/, against the moto emulator; then the real
//! `snapshot-pruner` binary, as a dry run; then the real `notifier` on an AWS Health sample.

use lifeboat_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_binary_copies_a_snapshot_through_the_lambda_runtime_api() {
    let moto = Moto::start();
    let key = kms_key(&moto, "us-west-2").await;
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    create_instance(&moto, "us-east-1", "orders-prod").await;
    let arn = snapshot(&moto, "us-east-1", "orders-prod", "orders-before-upgrade", &[]).await;

    let dir = std::env::temp_dir().join(format!("lifeboat-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 1, min_keep: 1 }}\n"
        ),
    )
    .unwrap();
    let payload = dir.join("event.json");
    std::fs::write(&payload, event("rds-db-snapshot-manual-created.json", Some(&arn)).to_string()).unwrap();

    let port = free_port().to_string();
    let mut watch = Watch::start(
        &moto,
        &port,
        &dir,
        &[
            ("LIFEBOAT_CONFIG_FILE", config.to_str().unwrap()),
            ("LIFEBOAT_INCIDENTS_TABLE", &table),
            ("LIFEBOAT_TOPIC_ARN", &topic),
        ],
    );

    let output = watch.invoke("snapshot-copier", &payload);
    let report: serde_json::Value = serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("{e}: {output}"));
    assert_eq!(report["trigger"], "RDS-EVENT-0042", "{report}");
    assert_eq!(report["started"].as_array().map(Vec::len), Some(1), "{report}");

    let copies: Vec<_> =
        db_snapshots(&moto, "us-west-2").await.into_iter().filter(|s| s.0.starts_with("lifeboat-")).collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(copies[0].2.as_deref(), Some(key.as_str()));

    // The pruner binary too, as a dry run: it reports its plan and deletes nothing.
    let before = everything(&moto, &["us-east-1", "us-west-2"]).await;
    let dry_run = repo_root().join("events/pruner-dry-run.json");
    let output = watch.invoke("snapshot-pruner", &dry_run);
    let summary: serde_json::Value = serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("{e}: {output}"));
    assert_eq!(summary["dry_run"], true, "{summary}");
    assert_eq!(summary["groups"][0]["kept"].as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(everything(&moto, &["us-east-1", "us-west-2"]).await, before);

    // The notifier binary: a Health event about orders-prod becomes one notice.
    let output = watch.invoke("notifier", &repo_root().join("events/health-rds-issue-open.json"));
    let report: serde_json::Value = serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("{e}: {output}"));
    assert_eq!(report["published"].as_array().map(Vec::len), Some(1), "{report}");
    let told = notices(&moto, "us-east-1", &inbox).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].subject.contains("orders-prod"), "{}", told[0].subject);

    // Bad input through the real runtime: Lambda's errorType says NonRetryable, and nothing moved.
    let before = everything(&moto, &["us-east-1", "us-west-2"]).await;
    let said = watch.invoke_failing("snapshot-copier", &repo_root().join("events/malformed-snapshot-event.json"));
    assert!(said.contains("NonRetryable") && said.contains("malformed event"), "{said}");
    let said = watch.invoke_failing("notifier", &repo_root().join("events/notifier-declared.json"));
    assert!(said.contains("NonRetryable") && said.contains("no incident"), "{said}");
    assert_eq!(everything(&moto, &["us-east-1", "us-west-2"]).await, before);
    assert!(notices(&moto, "us-east-1", &inbox).await.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}
