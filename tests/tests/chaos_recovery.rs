//! Chaos over the failover and the drill, with real parts: the binaries in `cargo lambda watch`,
//! the state machines in moto's interpreter. 20% of the functions' calls to RDS, SNS, SSM,
//! Route 53, DynamoDB and Step Functions fail (throttling, 503s, dropped connections and answers
//! lost after AWS acted, from a seed; the tests' own checks are not faulted). Both must still end
//! as without faults: the failover approved, DNS and the SSM parameter on the replica, the
//! incident resolved with its whole timeline and three messages, once each; the drill passed,
//! measured, cleaned up, told once. Retries come from the SDK, the state machines' `Retry` on
//! `Retryable`, Lambda's own retries of the trigger (`Watch::invoke` invokes again), and a person
//! clicking again on a 503 page.

use std::time::{Duration, Instant};

use chrono::Utc;
use lifeboat_tests::*;
use serde_json::{json, Value};

/// The seeds the test command runs; `LIFEBOAT_CHAOS_SEEDS` (scripts/chaos.sh) runs more.
const SEEDS: &str = "3";

/// The fault kinds for `service`; `LIFEBOAT_CHAOS_KINDS=throttle,drop` (scripts/chaos.sh) picks
/// others. No lost answers for SNS: a retried Publish is a second message (SNS standard topics
/// don't deduplicate), which `an_answer_lost_after_each_write_...` in chaos.rs shows apart.
fn kinds(service: &str) -> Vec<String> {
    let kinds = std::env::var("LIFEBOAT_CHAOS_KINDS").unwrap_or_else(|_| "throttle,unavailable,drop,lost".into());
    kinds.split(',').map(|k| k.trim().to_owned()).filter(|k| !(service == "sns" && k == "lost")).collect()
}

fn chaos(seed: u64) -> Value {
    let rate: f64 = std::env::var("LIFEBOAT_CHAOS_RATE").ok().and_then(|r| r.parse().ok()).unwrap_or(0.2);
    let services = ["rds", "sns", "ssm", "route53", "dynamodb", "stepfunctions"];
    json!({"faults": services.iter().map(|s| json!({
        "service": s, "rate": rate, "seed": seed, "caller": FUNCTIONS_ACCESS_KEY,
        "kinds": kinds(s),
    })).collect::<Vec<_>>()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_20_percent_faults_a_failover_and_a_drill_end_as_without_them() {
    let mut figures = Vec::new();
    let seeds = std::env::var("LIFEBOAT_CHAOS_SEEDS").unwrap_or_else(|_| SEEDS.to_owned());
    for seed in seeds.split(',').filter_map(|s| s.trim().parse::<u64>().ok()) {
        let started = Instant::now();
        let port = free_port().to_string();
        let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
        let table = incidents_table(&moto, "us-east-1").await;
        let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
        let east = moto.sdk("us-east-1").await;
        let sfn = aws_sdk_sfn::Client::new(&east);
        let key = kms_key(&moto, "us-west-2").await;
        moto.post("/_lifeboat/rds/subnet-group", &json!({"region": "us-west-2", "name": "dr-db"}));

        let zone = orders_with_replica(&moto).await;
        // A DR copy as the copier makes it, taken an hour ago: what the drill restores.
        let an_hour_ago = Utc::now() - chrono::Duration::hours(1);
        dr_copies(&moto, "us-west-2", "orders-prod", false, &[("lifeboat-orders-prod-1", an_hour_ago)]).await;

        let yaml = format!(
            "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 2h\n    rto: 30m\n    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 3, min_keep: 1 }}\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:{ACCOUNT}:db:orders-replica\n      approval: required\n      approval_timeout: 30m\n      triggers: {{ alarms: [orders-prod-db-down] }}\n      dns: {{ zone_id: {zone}, record: db.orders.internal, ttl: 60 }}\n      endpoint_parameter: /orders/prod/db-endpoint\n    drill:\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n"
        );
        let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
        moto.post("/_lifeboat/faults", &chaos(seed));
        let mut seen = Vec::new();

        // The drill, first: once the failover moved orders-prod to us-west-2, its only DR region,
        // no DR copy of what serves is left to drill.
        let drill = bed.invoke("dr-drill", "drill", &json!({"database": "orders-prod"}));
        let drill_execution = drill["started"][0]["execution_arn"].as_str().unwrap_or_else(|| panic!("{drill}"));
        let (drill_status, drill_output) =
            execution_ends(&sfn, drill_execution, &bed.watch, Duration::from_secs(600)).await;
        notice_until(&moto, &mut bed, &inbox, &mut seen, "restore drill").await;
        // The failover: the alarm, the approval (clicked again while the page says 503), the rest.
        let report = bed.trigger("alarm", &event("cloudwatch-alarm-into-alarm.json", None));
        let id = report["incident_id"].as_str().unwrap_or_else(|| panic!("{report}")).to_owned();
        let execution = report["execution_arn"].as_str().unwrap().to_owned();
        let ask = notice_until(&moto, &mut bed, &inbox, &mut seen, "awaits your approval").await;
        let approve = line_after(&ask.text, "Approve: ").to_owned();
        let mut clicks = 0;
        let decided = loop {
            clicks += 1;
            let page = post_form(&approve, "approver=Alice&database=orders-prod");
            if page.status != 503 || clicks == 5 {
                break page;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        // 409 when SendTaskSuccess went through and its answer was lost: the SDK's retry finds
        // the task answered. The failover goes on either way, which is what is asserted below.
        assert!([200, 409].contains(&decided.status), "seed {seed}: {} {}", decided.status, decided.body);
        let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(600)).await;
        assert_eq!(status, "SUCCEEDED", "seed {seed}: {output}\n{}", bed.watch.log());
        notice_until(&moto, &mut bed, &inbox, &mut seen, "resolved").await;

        // Calls counted are everyone's (the checks' too); faults went to the functions' only.
        let counts = moto.fault_counts();
        moto.post("/_lifeboat/faults", &json!({"faults": []}));

        // The end state the fault-free run reaches (tests/tests/failover.rs, tests/tests/drill.rs).
        assert_eq!(cname(&moto, &zone, "db.orders.internal").await.as_deref(), Some(ORDERS_REPLICA), "seed {seed}");
        assert_eq!(orders_endpoint(&moto).await.as_deref(), Some(ORDERS_REPLICA), "seed {seed}");
        let stored = raw_item(&moto, "us-east-1", &table, &format!("incident#{id}")).await;
        assert_eq!(stored["status"], "resolved", "seed {seed}: {stored}");
        let keys: Vec<&str> =
            stored["timeline"].as_array().into_iter().flatten().filter_map(|e| e["key"].as_str()).collect();
        let recovering = stored["timeline"].as_array().into_iter().flatten().find(|e| e["key"] == "status:recovering");
        assert_eq!(
            recovering.map(|e| e["by"].clone()),
            Some(json!("Alice")),
            "seed {seed}: the approver on the timeline"
        );
        for want in FAILOVER_TIMELINE {
            assert_eq!(keys.iter().filter(|k| **k == want).count(), 1, "seed {seed}: {want} once in {keys:?}");
        }
        assert_eq!(drill_status, "SUCCEEDED", "seed {seed}: {drill_output}\n{}", bed.watch.log());
        assert_eq!(drill_output["result"]["passed"], true, "seed {seed}: {drill_output}");
        let temporary = drill_output["temporary"].as_str().unwrap_or_default();
        let left = moto.rds("us-west-2").await.describe_db_instances().send().await.unwrap();
        assert!(
            !left.db_instances().iter().any(|i| i.db_instance_identifier() == Some(temporary)),
            "seed {seed}: the drill's {temporary} was deleted"
        );
        // Every message once: declared, approval, resolved; the drill's result.
        seen.extend(notices(&moto, "us-east-1", &inbox).await);
        let subjects: Vec<&str> = seen.iter().map(|n| n.subject.as_str()).collect();
        let of_incident = seen.iter().filter(|n| n.text.contains(&id)).count();
        assert_eq!(of_incident, 3, "seed {seed}: declared, approval, resolved once each: {subjects:?}");
        assert_eq!(subjects.iter().filter(|s| s.contains("restore drill")).count(), 1, "seed {seed}: {subjects:?}");

        let sum = |k: &str| summed(&counts, k);
        figures.push(format!(
            "seed {seed}: {} calls, {} faults injected {}, approval clicks {clicks}, {:.0} s",
            sum("calls"),
            sum("injected"),
            counts["kinds"],
            started.elapsed().as_secs_f64()
        ));
        assert!(sum("injected") > 0, "seed {seed}: no fault was injected");
    }
    println!("CHAOS-RECOVERY {}", figures.join("; "));
}
