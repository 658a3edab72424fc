//! The approval page in a real browser: headless Chromium (Debian's), driven by playwright-core
//! (tests/browser/approval.mjs), through a failover waiting for approval in moto's Step Functions
//! interpreter with the real binaries: a tampered link shows a refusal and no form; the real link
//! shows the plan and a form; typing the database name and a name and submitting approves; the
//! failover then completes; the link opened again says it was decided.

use std::process::Command;
use std::time::Duration;

use lifeboat_tests::*;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_person_approves_in_a_browser_and_a_tampered_link_is_refused() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    create_instance(&moto, "us-east-1", "orders-prod").await;
    read_replica(&moto, "us-west-2", "orders-replica", &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod"))
        .await;
    let yaml = format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:{ACCOUNT}:db:orders-replica\n      approval: required\n"
    );
    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
    let report =
        bed.trigger("request", &json!({"database": "orders-prod", "reason": "primary down", "requested_by": "pat"}));
    let execution = report["execution_arn"].as_str().expect("execution").to_owned();

    let ask = loop {
        if let Some(n) = notices(&moto, "us-east-1", &inbox).await.into_iter().find(|n| n.subject.contains("approval"))
        {
            break n;
        }
        bed.watch.check_alive();
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let approve = line_after(&ask.text, "Approve: ").to_owned();
    // One character of the signature changed.
    let (rest, last) = approve.split_at(approve.len() - 1);
    let tampered = format!("{rest}{}", if last == "A" { "B" } else { "A" });

    let out = Command::new("node")
        .arg(repo_root().join("tests/browser/approval.mjs"))
        .args([&approve, &tampered, "orders-prod", "Pat Browser"])
        .output()
        .expect("run node");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_str(said.trim()).expect("the script's JSON");
    assert!(seen["tampered"]["text"].as_str().unwrap_or_default().contains("signature is not valid"), "{seen}");
    assert!(seen["page"]["plan"].as_str().unwrap_or_default().contains("promote replica orders-replica"), "{seen}");
    assert!(seen["decided"]["text"].as_str().unwrap_or_default().contains("Approved by Pat Browser"), "{seen}");
    assert!(seen["again"]["text"].as_str().unwrap_or_default().contains("Already decided"), "{seen}");

    let sfn = aws_sdk_sfn::Client::new(&moto.sdk("us-east-1").await);
    let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    let stored =
        raw_item(&moto, "us-east-1", &table, &format!("incident#{}", report["incident_id"].as_str().unwrap())).await;
    assert_eq!(stored["status"], "resolved", "{stored}");
    assert!(stored.to_string().contains("approved by Pat Browser"), "{stored}");
}
