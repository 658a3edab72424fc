//! The failover end to end with real parts: moto's own Step Functions interpreter runs
//! infra/failover.asl.json; its Lambda tasks reach the real `failover-steps` and `notifier`
//! binaries in `cargo lambda watch` (scripts/moto_server.py forwards moto's Lambda invoke); the
//! trigger is the real `failover-trigger`; approvals go through the real `approval-handler`'s
//! Function URL over HTTP. Route 53, SSM, RDS, DynamoDB and SNS → SQS are moto's.

use std::time::{Duration, Instant};

use lifeboat_tests::*;
use serde_json::{json, Value};

async fn wait_for_notice(
    moto: &Moto,
    watch: &mut Watch,
    queue: &str,
    seen: &mut Vec<Notice>,
    subject_has: &str,
) -> Notice {
    let deadline = Instant::now() + Duration::from_secs(420);
    loop {
        seen.extend(notices(moto, "us-east-1", queue).await);
        if let Some(n) = seen.iter().find(|n| n.subject.contains(subject_has)) {
            return n.clone();
        }
        if let Some(n) = seen.iter().find(|n| n.subject.contains("FAILED") && !subject_has.contains("FAILED")) {
            panic!("waiting for `{subject_has}`, got {}:\n{}", n.subject, n.text);
        }
        watch.check_alive();
        assert!(Instant::now() < deadline, "no `{subject_has}` notice; got {:?}\n{}", subjects(seen), watch.log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn subjects(n: &[Notice]) -> Vec<&str> {
    n.iter().map(|n| n.subject.as_str()).collect()
}

async fn incident(moto: &Moto, table: &str, id: &str) -> Value {
    raw_item(moto, "us-east-1", table, &format!("incident#{id}")).await
}

fn keys(incident: &Value) -> Vec<String> {
    incident["timeline"].as_array().into_iter().flatten().filter_map(|e| e["key"].as_str().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approved_failover_moves_dns_and_endpoint_rejected_timed_out_and_failed_ones_say_so() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let east = moto.sdk("us-east-1").await;
    let sfn = aws_sdk_sfn::Client::new(&east);

    let zone = orders_with_replica(&moto).await;
    for (replica, source) in [("ledger-replica", "ledger-prod"), ("billing-replica", "billing-prod")] {
        create_instance(&moto, "us-east-1", source).await;
        read_replica(&moto, "us-west-2", replica, &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:{source}")).await;
    }
    let replica = ORDERS_REPLICA;
    let key = kms_key(&moto, "us-west-2").await;

    let replica_db = |name: &str, replica: &str, timeout: &str, extra: &str| {
        format!(
            "  - name: {name}\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:{ACCOUNT}:db:{replica}\n      approval: required\n      approval_timeout: {timeout}\n{extra}"
        )
    };
    let yaml = format!(
            "databases:\n{}{}{}  - name: audit-dev\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:audit-dev\n    tier: non-production\n    rpo: 1h\n    rto: 4h\n    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 1, min_keep: 1 }}\n    failover:\n      strategy: restore-latest-copy\n      approval: auto\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n",
            replica_db(
                "orders-prod",
                "orders-replica",
                "10m",
                &format!("      triggers: {{ alarms: [orders-prod-db-down] }}\n      dns: {{ zone_id: {zone}, record: db.orders.internal, ttl: 60 }}\n      endpoint_parameter: /orders/prod/db-endpoint\n"),
            ),
            replica_db("ledger-prod", "ledger-replica", "10m", ""),
            replica_db("billing-prod", "billing-replica", "3s", ""),
    );

    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
    let approval_url = bed.approval_url.clone();
    let mut seen = Vec::new();

    // Before anything runs: an alarm back to OK is ignored (and starts the trigger, which
    // cargo lambda builds on first use); bad input is NonRetryable through the real runtime.
    // Neither writes anything.
    let alarm = event("cloudwatch-alarm-into-alarm.json", None);
    let before = table_items(&moto, "us-east-1", &table).await;
    let ok_back = bed.trigger("back-to-ok", &event("cloudwatch-alarm-back-to-ok.json", None));
    assert!(ok_back["ignored"].as_str().unwrap_or_default().contains("not ALARM"), "{ok_back}");
    let mut broken = alarm.clone();
    broken["detail"] = json!({"alarmName": "orders-prod-db-down"});
    for (name, bad, says) in [
        ("unknown", json!({"database": "nope", "reason": "r", "requested_by": "x"}), "no database named `nope`"),
        ("broken-alarm", broken, "without an alarm detail"),
    ] {
        let file = bed.dir.join(format!("{name}.json"));
        std::fs::write(&file, bad.to_string()).unwrap();
        let said = bed.watch.invoke_failing("failover-trigger", &file);
        assert!(said.contains("NonRetryable") && said.contains(says), "{said}");
    }
    assert_eq!(table_items(&moto, "us-east-1", &table).await, before, "nothing written");

    // 1. The alarm goes into ALARM: one incident, one execution; a redelivery starts nothing.
    let report = bed.trigger("alarm", &alarm);
    assert_eq!(report["started"], true, "{report}");
    let id = report["incident_id"].as_str().unwrap().to_owned();
    let execution = report["execution_arn"].as_str().unwrap().to_owned();
    let again = bed.trigger("alarm-again", &alarm);
    assert_eq!((again["started"].clone(), again["execution_arn"].clone()), (json!(false), json!(execution)), "{again}");

    let ask = wait_for_notice(&moto, &mut bed.watch, &inbox, &mut seen, "awaits your approval").await;
    assert!(ask.text.contains("promote replica orders-replica"), "{}", ask.text);
    assert!(ask.text.contains("Expected data loss"), "{}", ask.text);
    assert!(!ask.text.contains("task-token"), "the message carries no task token: {}", ask.text);
    let approve = line_after(&ask.text, "Approve: ").to_owned();
    let reject = line_after(&ask.text, "Reject: ").to_owned();
    assert!(approve.starts_with(&approval_url) && reject.starts_with(&approval_url), "{approve}");

    // A GET shows the page and decides nothing (mail scanners fetch links).
    let page = http("GET", &approve, None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<form method=\"post\">") && page.body.contains("name=\"database\""), "{}", page.body);
    assert!(page.body.contains("promote replica orders-replica"), "{}", page.body);
    assert_eq!(incident(&moto, &table, &id).await["status"], "awaiting-approval");

    // Altered links are refused and change nothing.
    let altered = approve.replace("d=approve", "d=reject");
    let refused = http("GET", &altered, None);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("signature is not valid"), "{}", refused.body);
    let form = |url: &str, extra: &str| format!("{}&{extra}", url.split_once('?').unwrap().1);
    let refused = http("POST", &altered, Some(&form(&altered, "approver=mallory")));
    assert_eq!(refused.status, 403, "{}", refused.body);
    // Production asks for the database name.
    let unnamed = http("POST", &approve, Some(&form(&approve, "approver=alice&database=orders")));
    assert_eq!(unnamed.status, 400, "{}", unnamed.body);
    assert_eq!(incident(&moto, &table, &id).await["status"], "awaiting-approval");

    let decided = http("POST", &approve, Some(&form(&approve, "approver=Alice%20Ops&database=orders-prod")));
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert!(decided.body.contains("Approved by Alice Ops"), "{}", decided.body);
    let twice = http("POST", &approve, Some(&form(&approve, "approver=bob&database=orders-prod")));
    assert_eq!(twice.status, 409, "{}", twice.body);
    assert!(twice.body.contains("Already decided"), "{}", twice.body);
    let late_reject = http("GET", &reject, None);
    assert_eq!(late_reject.status, 409, "the reject link of a decided approval: {}", late_reject.body);

    let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}\n{}", bed.watch.log());
    let resolved = wait_for_notice(&moto, &mut bed.watch, &inbox, &mut seen, "resolved").await;
    assert!(resolved.text.contains("Data loss:"), "{}", resolved.text);
    assert_eq!(cname(&moto, &zone, "db.orders.internal").await.as_deref(), Some(replica));
    assert_eq!(orders_endpoint(&moto).await.as_deref(), Some(replica));
    let stored = incident(&moto, &table, &id).await;
    assert_eq!(stored["status"], "resolved", "{stored}");
    let k = keys(&stored);
    for want in FAILOVER_TIMELINE {
        assert!(k.iter().any(|x| x == want), "{want} missing from {k:?}");
    }
    assert!(k.iter().any(|x| x.starts_with("approval:")), "{k:?}");
    assert!(stored.to_string().contains("approved by Alice Ops"), "{stored}");
    let told: Vec<&str> = seen.iter().filter(|n| n.text.contains(&id)).map(|n| n.subject.as_str()).collect();
    assert_eq!(told.len(), 3, "declared, approval, resolved, once each: {told:?}");

    // 2. A person asks, then someone rejects: nothing changes, the incident is aborted.
    let report = bed.trigger(
        "ledger",
        &json!({"database": "ledger-prod", "reason": "primary unreachable", "requested_by": "carol"}),
    );
    let ledger = report["incident_id"].as_str().unwrap().to_owned();
    let ask = wait_for_notice(&moto, &mut bed.watch, &inbox, &mut seen, "ledger-prod: failover awaits").await;
    let reject = line_after(&ask.text, "Reject: ").to_owned();
    let decided = http("POST", &reject, Some(&form(&reject, "approver=dave")));
    assert_eq!(decided.status, 200, "{}", decided.body);
    let (status, _) =
        execution_ends(&sfn, report["execution_arn"].as_str().unwrap(), &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED");
    let aborted = wait_for_notice(&moto, &mut bed.watch, &inbox, &mut seen, "ledger-prod: recovery aborted").await;
    assert!(aborted.text.contains("rejected by dave, nothing was changed"), "{}", aborted.text);
    let stored = incident(&moto, &table, &ledger).await;
    assert_eq!(stored["status"], "aborted");
    assert!(!keys(&stored).iter().any(|k| k == "step:act"), "nothing was done: {stored}");

    // 3. Nobody answers: the approval times out and nothing changes.
    let report = bed.trigger(
        "billing",
        &json!({"database": "billing-prod", "reason": "replication broken", "requested_by": "erin"}),
    );
    let (status, _) =
        execution_ends(&sfn, report["execution_arn"].as_str().unwrap(), &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED");
    let aborted = wait_for_notice(&moto, &mut bed.watch, &inbox, &mut seen, "billing-prod: recovery aborted").await;
    assert!(aborted.text.contains("approval timed out after 3s, nothing was changed"), "{}", aborted.text);

    // 4. No DR copy to restore: the failover fails, and says what was done and what was not.
    let report =
        bed.trigger("audit", &json!({"database": "audit-dev", "reason": "instance lost", "requested_by": "frank"}));
    let (status, _) =
        execution_ends(&sfn, report["execution_arn"].as_str().unwrap(), &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "FAILED");
    let failed = wait_for_notice(&moto, &mut bed.watch, &inbox, &mut seen, "audit-dev: recovery FAILED").await;
    assert!(failed.text.contains("no available Lifeboat DR copy"), "{}", failed.text);
    assert!(failed.text.contains("Done: nothing. Not done: preflight checks, recovery action"), "{}", failed.text);
}

/// Evidence (issue 19): each ended failover leaves exactly one record, JSON and Markdown, with the
/// figures its closing message showed; a redelivered closing message writes nothing twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_ended_failover_leaves_one_evidence_record_with_its_messages_figures() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk("us-east-1").await);
    let zone = orders_with_replica(&moto).await;
    let yaml = orders_failover_yaml(&format!("      dns: {{ zone_id: {zone}, record: db.orders.internal }}\n"));
    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
    let mut seen = Vec::new();
    assert!(evidence(&moto, "us-east-1", &bed.evidence).await.is_empty());

    let report = bed.trigger(
        "orders",
        &json!({"database": "orders-prod", "reason": "primary unreachable", "requested_by": "carol"}),
    );
    let id = report["incident_id"].as_str().unwrap().to_owned();
    let ask = wait_for_notice(&moto, &mut bed.watch, &inbox, &mut seen, "awaits your approval").await;
    let approve = line_after(&ask.text, "Approve: ").to_owned();
    let form = format!("{}&approver=Alice%20Ops&database=orders-prod", approve.split_once('?').unwrap().1);
    assert_eq!(http("POST", &approve, Some(&form)).status, 200);
    let execution = report["execution_arn"].as_str().unwrap();
    let (status, output) = execution_ends(&sfn, execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}");
    let resolved = wait_for_notice(&moto, &mut bed.watch, &inbox, &mut seen, "resolved").await;

    let page = format!("s3://{}/failovers/orders-prod/{id}.md", bed.evidence);
    assert!(resolved.text.contains(&format!("Evidence kept: {page}")), "{}", resolved.text);
    let kept = evidence(&moto, "us-east-1", &bed.evidence).await;
    let keys: Vec<&str> = kept.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [format!("failovers/orders-prod/{id}.json"), format!("failovers/orders-prod/{id}.md")],
        "one record, one version each"
    );
    let record: Value = serde_json::from_str(&kept[0].1).expect("the record is JSON");
    assert_eq!(record["incident_id"], id.as_str());
    assert_eq!(record["status"], "resolved");
    assert_eq!(record["decisions"][0]["what"], "approved by Alice Ops", "{record}");
    assert_eq!(record["requested"]["by"], "carol", "{record}");
    assert!(record["plan"]["what"].as_str().unwrap_or_default().contains("promote replica orders-replica"), "{record}");
    let md = &kept[1].1;
    for figure in ["Duration:", "Data loss:"] {
        let line = resolved.text.lines().find(|l| l.starts_with(figure)).expect("the message's figure");
        let shown = line[figure.len()..].trim().trim_end_matches('.');
        assert!(md.contains(&format!("| {} | {shown} |", figure.trim_end_matches(':'))), "{figure} {shown}:\n{md}");
    }
    assert!(md.contains("approved by Alice Ops at"), "{md}");

    // The closing message delivered again: told once, and the record not written again.
    let again = bed.invoke("notifier", "resolved-again", &json!({"incident_id": id, "message": "resolved"}));
    assert_eq!(again["published"], json!([]), "{again}");
    assert_eq!(evidence(&moto, "us-east-1", &bed.evidence).await.len(), 2, "still one version of each");
}
