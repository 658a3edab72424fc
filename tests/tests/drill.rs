//! Restore drills end to end: infra/drill.asl.json in moto's Step Functions interpreter, its steps
//! the real `dr-drill` binary in `cargo lambda watch`. A drill restores the newest DR copy into a
//! temporary tagged instance, checks it, measures its RTO, deletes what it made (also when the
//! validation Lambda fails), deletes a crashed drill's leftover first, and never anything else.

use std::time::Duration;

use chrono::Utc;
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::config::Config;
use lifeboat_tests::*;
use serde_json::{json, Value};

async fn instance_ids(moto: &Moto, region: &str) -> Vec<String> {
    let out = moto.rds(region).await.describe_db_instances().send().await.expect("describe");
    let mut ids: Vec<String> =
        out.db_instances().iter().filter_map(|i| i.db_instance_identifier().map(str::to_owned)).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drill_restores_measures_and_cleans_up_even_when_validation_fails() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let key = kms_key(&moto, "us-west-2").await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": "us-west-2", "name": "dr-db"}));
    moto.post(
        "/_lifeboat/lambda/stub",
        &json!({"name": "lifeboat-validate-billing", "error": "SELECT count(*) FROM invoices: 0 rows"}),
    );

    // DR copies as the copier makes them, taken an hour ago.
    let now = Utc::now();
    for db in ["orders-prod", "billing-prod"] {
        dr_copies(&moto, "us-west-2", db, false, &[(&format!("lifeboat-{db}-1"), now - chrono::Duration::hours(1))])
            .await;
    }
    // A crashed drill's leftover, another database's drill, and something that isn't a drill's.
    let leftover = "lf-drill-orders-prod-20261101t0300z";
    create_instance_tagged(
        &moto,
        "us-west-2",
        leftover,
        &[("lifeboat:drill", "orders-prod"), ("lifeboat:drill-id", "drill-orders-prod-20261101T0300Z")],
    )
    .await;
    create_instance_tagged(
        &moto,
        "us-west-2",
        "lf-drill-ledger-20261101t0300z",
        &[("lifeboat:drill", "ledger"), ("lifeboat:drill-id", "drill-ledger-20261101T0300Z")],
    )
    .await;
    create_instance_tagged(&moto, "us-west-2", "precious", &[("team", "payments")]).await;

    let db = |name: &str, extra: &str| {
        format!(
            "  - name: {name}\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}\n    tier: production\n    rpo: 2h\n    rto: 30m\n    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 3, min_keep: 1 }}\n    drill:\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n{extra}"
        )
    };
    let yaml = format!(
        "databases:\n{}{}",
        db("orders-prod", ""),
        db("billing-prod", "      validation_lambda: lifeboat-validate-billing\n")
    );
    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk("us-east-1").await);

    // orders-prod: restored, checked, measured, cleaned up; the leftover went first.
    let started = bed.invoke("dr-drill", "orders", &json!({"database": "orders-prod"}));
    let execution = started["started"][0]["execution_arn"].as_str().unwrap_or_else(|| panic!("{started}")).to_owned();
    let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}\n{}", bed.watch.log());
    let result = &output["result"];
    assert_eq!(result["passed"], true, "{output}");
    assert!(result["measured_rto_seconds"].as_i64().is_some_and(|s| (0..=1800).contains(&s)), "{result}");
    let checks: Vec<&str> = result["checks"].as_array().unwrap().iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(checks, ["status", "engine version", "endpoint resolves"], "{result}");
    let temporary = output["temporary"].as_str().unwrap().to_owned();
    assert!(result["cleaned_up"].as_array().unwrap().contains(&json!(leftover)), "{result}");
    assert!(result["cleaned_up"].as_array().unwrap().contains(&json!(temporary)), "{result}");
    let left = instance_ids(&moto, "us-west-2").await;
    assert!(!left.contains(&temporary) && !left.contains(&leftover.to_owned()), "{left:?}");
    for kept in ["precious", "lf-drill-ledger-20261101t0300z", "seed"] {
        assert!(left.contains(&kept.to_owned()), "{kept} is not this drill's and must stay: {left:?}");
    }

    // billing-prod: its validation Lambda fails; the drill fails, and still cleans up.
    let started = bed.invoke("dr-drill", "billing", &json!({"database": "billing-prod"}));
    let execution = started["started"][0]["execution_arn"].as_str().unwrap().to_owned();
    let (status, _) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "FAILED");
    let store = IncidentStore::new(&moto.sdk("us-east-1").await, &table);
    let failed = store.last_drill("billing-prod").await.unwrap().expect("a stored result");
    assert!(!failed.passed);
    assert!(failed.failure.as_deref().unwrap_or_default().contains("0 rows"), "{failed:?}");
    assert!(!instance_ids(&moto, "us-west-2").await.iter().any(|i| i.starts_with("lf-drill-billing")), "cleaned up");

    // Never two drills of one database at once: the lock is held until the drill lets go.
    assert!(store.lock_drill("orders-prod", "drill-a", now, now + chrono::Duration::hours(6)).await.unwrap());
    assert!(!store.lock_drill("orders-prod", "drill-b", now, now + chrono::Duration::hours(6)).await.unwrap());
    assert!(
        store.lock_drill("orders-prod", "drill-b", now + chrono::Duration::hours(7), now).await.unwrap(),
        "a crashed drill's lock expires"
    );
    store.unlock_drill("orders-prod", "drill-b").await.unwrap();

    // People were told, once each.
    let said = notices(&moto, "us-east-1", &inbox).await;
    let told: Vec<String> = said.iter().map(|n| n.subject.clone()).collect();
    assert_eq!(told.len(), 2, "{told:?}");
    assert!(told.iter().any(|s| s.starts_with("[P3] orders-prod: restore drill passed")), "{told:?}");
    assert!(told.iter().any(|s| s.starts_with("[P2] billing-prod: restore drill FAILED")), "{told:?}");

    // Each drill left one evidence record (JSON and its page), with the figures its message showed.
    let kept = evidence(&moto, "us-east-1", &bed.evidence).await;
    assert_eq!(
        kept.len(),
        4,
        "two drills, one JSON and one page each: {:?}",
        kept.iter().map(|k| &k.0).collect::<Vec<_>>()
    );
    let orders_id = result["drill_id"].as_str().unwrap();
    let page = format!("drills/orders-prod/{orders_id}.md");
    let md = &kept.iter().find(|(k, _)| *k == page).unwrap_or_else(|| panic!("{page} kept")).1;
    let orders_told = said.iter().find(|n| n.subject.starts_with("[P3] orders-prod")).expect("the drill's message");
    let shown = &orders_told.text;
    assert!(shown.contains(&format!("Evidence kept: s3://{}/{page}", bed.evidence)), "{shown}");
    let measured = shown.lines().find(|l| l.starts_with("Measured RTO:")).expect("a measured RTO");
    let figure = measured["Measured RTO: ".len()..].split(',').next().unwrap().trim();
    assert!(md.contains(&format!("| Measured RTO | {figure} (RTO 30m: met) |")), "{figure}\n{md}");
    let record: Value =
        serde_json::from_str(&kept.iter().find(|(k, _)| *k == page.replace(".md", ".json")).unwrap().1).unwrap();
    assert_eq!(record["drill"]["measured_rto_seconds"], result["measured_rto_seconds"], "{record}");
    assert!(kept.iter().any(|(k, body)| k.starts_with("drills/billing-prod/") && body.contains("FAILED")), "billing's");

    // The report: when did we last prove we can recover, and how fast?
    let report: Value = bed.invoke("dr-drill", "report", &json!({"report": true}));
    let text = report["text"].as_str().unwrap_or_default();
    assert!(text.contains(&format!("orders-prod: evidence of the last drill: s3://{}/{page}", bed.evidence)), "{text}");
    // The copies are an hour old, and the drills took a minute or two (builds included).
    let orders = text.lines().find(|l| l.starts_with("| orders-prod |")).unwrap_or_default();
    assert!(orders.starts_with("| orders-prod | 1h") && orders.contains(" / 2h (met) |"), "{text}");
    assert!(text.contains("| passed |"), "{text}");
    assert!(text.contains("| billing-prod |") && text.contains("| FAILED |"), "{text}");
}

/// A check that fails (here the endpoint, which moto does not put in DNS) fails the drill, and the
/// steps that follow in the state machine still delete what it made: the steps in-process, in the
/// state machine's order.
#[tokio::test]
async fn a_failed_check_fails_the_drill_and_cleanup_still_deletes_the_instance() {
    use chrono::Utc;
    use lifeboat_core::drill::{Action, DrillRun};
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let key = kms_key(&moto, "us-west-2").await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": "us-west-2", "name": "dr-db"}));
    dr_copies(&moto, "us-west-2", "orders", false, &[("lifeboat-orders-1", Utc::now())]).await;
    let yaml = format!(
        "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders\n    tier: production\n    rpo: 1h\n    rto: 30m\n    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 3, min_keep: 1 }}\n    drill:\n      schedule: 7d\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n"
    );
    let sdk = moto.sdk("us-east-1").await;
    let config = config_in_ssm(&moto, &yaml, Duration::ZERO).await;
    // Endpoints are looked up for real here: moto's are not in DNS, so that check fails.
    let deps = dr_drill::Deps::new(config, &sdk, &table, &topic);
    let cfg = Config::from_yaml(&yaml).unwrap();
    let db = cfg.database_named("orders").unwrap();
    assert_eq!(db.drill.as_ref().unwrap().every, Duration::from_secs(7 * 86_400), "`schedule` is accepted for `every`");
    // Bad input is NonRetryable and writes nothing.
    let before = table_items(&moto, "us-east-1", &table).await;
    for (bad, says) in [
        (json!({"database": "nope"}), "no database named `nope`"),
        (json!({"action": "explode", "drill": {}}), "expected"),
        (json!({"report": true, "database": "orders"}), "either"),
    ] {
        let err = dr_drill::handle(&deps, bad, Utc::now()).await.unwrap_err();
        assert!(!err.is_retryable() && err.to_string().contains(says), "{err}");
    }
    assert_eq!(table_items(&moto, "us-east-1", &table).await, before);
    let mut run = DrillRun::new(db, db.drill.as_ref().unwrap(), "us-west-2", Utc::now(), 1);
    for action in [Action::Prepare, Action::Restore, Action::Status, Action::Check, Action::Cleanup, Action::Record] {
        let out = dr_drill::handle(&deps, json!({"action": action, "drill": run}), Utc::now()).await.expect("step");
        run = serde_json::from_value(out).unwrap();
    }
    let result = run.result.expect("recorded");
    assert!(!result.passed, "{result:?}");
    assert!(result.failure.as_deref().unwrap_or_default().contains("endpoint resolves"), "{result:?}");
    assert!(result.checks.iter().any(|c| c.name == "status" && c.passed), "{result:?}");
    assert!(!instance_ids(&moto, "us-west-2").await.contains(&run.temporary), "cleaned up");
    let told = notices(&moto, "us-east-1", &inbox).await;
    assert_eq!(told.len(), 1);
    assert!(told[0].subject.contains("restore drill FAILED"), "{}", told[0].subject);
}
