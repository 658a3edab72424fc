//! The day a region fails, in our moto (`POST /_lifeboat/outage`: every call signed for a region,
//! or Route 53's control plane, gets its connection reset):
//! - the stack deployed in the DR region runs a promote-replica failover to the end with
//!   us-east-1 and Route 53's control plane down, its signals an RDS event about the replica and
//!   an AWS Health event delivered there; DNS moves through Route 53 ARC routing controls (the
//!   data plane), at the first cluster endpoint that answers; not one call of Lifeboat's goes to
//!   us-east-1;
//! - with only Route 53's control plane down, a failover in UPSERT mode finishes everything else
//!   and says "recovered, DNS pending" with the exact command, the incident still open; the
//!   verify after people move the record resolves it, the RTO measured to that moment;
//! - with a stack in each region, each database's recovery runs in one region only.

use std::time::Duration;

use lifeboat_tests::*;
use serde_json::{json, Value};

fn approve(ask: &Notice, database: &str) -> Http {
    post_form(line_after(&ask.text, "Approve: "), &format!("approver=Alice%20Ops&database={database}"))
}

async fn timeline(moto: &Moto, region: &str, table: &str, id: &str) -> (Value, Vec<String>) {
    let item = raw_item(moto, region, table, &format!("incident#{id}")).await;
    let keys = item["timeline"].as_array().into_iter().flatten().filter_map(|e| e["key"].as_str().map(str::to_owned));
    (item.clone(), keys.collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_us_east_1_down_the_dr_regions_stack_fails_over_and_calls_nothing_there() {
    const DR: &str = "us-west-2";
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    // Before the outage: the primary, its replica, the DNS failover pair and the recovery
    // stack's own state, all but the primary and the record in the DR region.
    let table = incidents_table(&moto, DR).await;
    let (topic, inbox) = topic_with_queue(&moto, DR).await;
    create_instance(&moto, "us-east-1", "orders-prod").await;
    read_replica(&moto, DR, "orders-replica", &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod")).await;
    let zone = hosted_zone(&moto, "orders.internal").await;
    failover_pair(&moto, &zone, "db.orders.internal", ORDERS_PRIMARY, ORDERS_REPLICA).await;
    assert_eq!(resolve(&moto, "db.orders.internal").as_deref(), Some(ORDERS_PRIMARY));
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk(DR).await);
    ssm.put_parameter()
        .name(ORDERS_ENDPOINT_PARAM)
        .value(ORDERS_PRIMARY)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("endpoint parameter");
    // The ARC cluster's endpoints: one in the failing region, one in a region down too (so the
    // rotation is exercised), one that answers. All are our moto, each signed for its region.
    let endpoints: Vec<String> = ["us-east-1", "ap-southeast-2", "eu-west-1"]
        .iter()
        .map(|r| format!("{{ region: {r}, url: \"{}\" }}", moto.endpoint))
        .collect();
    let yaml = orders_failover_yaml(&format!(
        "      triggers: {{ health: true, replica_events: true }}\n      dns:\n        zone_id: {zone}\n        record: \
         db.orders.internal\n        mode: routing-control\n        routing_controls:\n          on: {}\n          off: \
         {}\n          cluster_endpoints: [{}]\n",
        routing_control("west"),
        routing_control("east"),
        endpoints.join(", ")
    ));
    let mut bed = RecoveryBed::start_in(&moto, DR, &port, &table, &topic, Some(&yaml)).await;

    moto.post("/_lifeboat/outage", &json!({"regions": ["us-east-1", "ap-southeast-2"], "route53": true}));
    // The emulator refuses us-east-1 from now on, to everyone.
    assert!(moto.rds("us-east-1").await.describe_db_instances().send().await.is_err());

    // The first signal: RDS, in us-west-2, says the replica's replication broke.
    let report = bed.trigger("replica", &event("failover-replica-replication-error.json", None));
    assert_eq!(report["started"], true, "{report}");
    let id = report["incident_id"].as_str().unwrap().to_owned();
    let execution = report["execution_arn"].as_str().unwrap().to_owned();
    assert!(execution.contains(&format!(":states:{DR}:")), "{execution}");
    // The second, AWS Health's RDS issue about us-east-1, joins the same incident.
    let again = bed.trigger("health", &event("health-rds-issue-open.json", None));
    assert_eq!(again["joined"].as_str(), Some(id.as_str()), "{again}");
    let ask = notice_in(&moto, DR, &inbox, &mut bed, "awaits your approval").await;
    assert!(line_after(&ask.text, "Approve: ").starts_with(&bed.approval_url), "{}", ask.text);
    assert!(ask.text.contains("moves through Route 53 ARC (data plane)"), "the plan names the DNS mode: {}", ask.text);
    assert!(ask.text.contains("Routing controls now: west Off, east On, read in eu-west-1"), "{}", ask.text);
    let decided = approve(&ask, "orders-prod");
    assert_eq!(decided.status, 200, "{}", decided.body);

    let sfn = aws_sdk_sfn::Client::new(&moto.sdk(DR).await);
    let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}\n{}", bed.watch.log());
    let resolved = notice_in(&moto, DR, &inbox, &mut bed, "resolved").await;
    assert!(resolved.text.contains("Alice Ops"), "{}", resolved.text);
    assert!(!resolved.text.contains("Left for people"), "{}", resolved.text);
    let param = ssm.get_parameter().name(ORDERS_ENDPOINT_PARAM).send().await.expect("parameter");
    assert_eq!(param.parameter().and_then(|p| p.value()), Some(ORDERS_REPLICA));
    // Route 53's name servers now answer with the replica, its control plane down throughout.
    assert_eq!(resolve(&moto, "db.orders.internal").as_deref(), Some(ORDERS_REPLICA));
    let (item, keys) = timeline(&moto, DR, &table, &id).await;
    assert_eq!(item["status"], "resolved", "{item}");
    for want in FAILOVER_TIMELINE {
        assert!(keys.iter().any(|k| k == want), "{want} missing from {keys:?}");
    }
    // The DNS step again, as Step Functions retries a step whose answer was lost: the controls
    // are set as they are, and nothing is recorded twice.
    let again = bed.invoke("failover-steps", "dns-again", &json!({"action": "dns", "execution": output}));
    assert_eq!(again["dns"]["insync"], true, "{again}");
    assert_eq!(resolve(&moto, "db.orders.internal").as_deref(), Some(ORDERS_REPLICA));
    let (_, keys) = timeline(&moto, DR, &table, &id).await;
    assert_eq!(keys.iter().filter(|k| *k == "step:dns").count(), 1, "{keys:?}");

    let seen: Value =
        serde_json::from_str(&http("GET", &format!("{}/_lifeboat/outage", moto.endpoint), None).body).expect("counts");
    let east = &seen["calls"]["us-east-1"];
    assert!(east.get(FUNCTIONS_ACCESS_KEY).is_none(), "Lifeboat called the failed region: {seen}");
    assert!(seen["refused"]["ap-southeast-2"][FUNCTIONS_ACCESS_KEY].as_u64().unwrap_or(0) > 0, "rotated: {seen}");
    assert!(seen["calls"][DR][FUNCTIONS_ACCESS_KEY].as_u64().unwrap_or(0) > 20, "{seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_route_53s_control_plane_down_the_rest_is_done_and_dns_is_left_with_its_command() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let zone = orders_with_replica(&moto).await;
    let yaml =
        orders_failover_yaml(&format!("      dns: {{ zone_id: {zone}, record: db.orders.internal, ttl: 60 }}\n"));
    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
    moto.post("/_lifeboat/outage", &json!({"route53": true}));

    let report = bed.trigger(
        "manual",
        &json!({"database": "orders-prod", "reason": "primary unreachable", "requested_by": "alice@example.com"}),
    );
    let id = report["incident_id"].as_str().unwrap_or_else(|| panic!("{report}")).to_owned();
    let execution = report["execution_arn"].as_str().unwrap().to_owned();
    let ask = notice_in(&moto, "us-east-1", &inbox, &mut bed, "awaits your approval").await;
    assert!(ask.text.contains("not checked: Route 53 did not answer"), "preflight went on: {}", ask.text);
    assert_eq!(approve(&ask, "orders-prod").status, 200);

    // Everything but DNS is done and verified: "recovered, DNS pending", never "resolved".
    let pending = notice_in(&moto, "us-east-1", &inbox, &mut bed, "recovered, DNS pending").await;
    let command = format!("aws route53 change-resource-record-sets --hosted-zone-id {zone} --change-batch");
    assert!(
        pending.text.contains("Left for people: DNS db.orders.internal still names the old primary"),
        "{}",
        pending.text
    );
    assert!(pending.text.contains(&command) && pending.text.contains(ORDERS_REPLICA), "{}", pending.text);
    assert!(pending.text.contains("Move DNS now") && pending.text.contains("Impact: not over"), "{}", pending.text);
    for never in ["RTO 30m: met", "back and verified.", "was affected from", "Finish what Lifeboat could not"] {
        assert!(!pending.text.contains(never), "says more than was verified ({never}): {}", pending.text);
    }
    let facts: Value = serde_json::from_str(&pending.raw).expect("facts");
    assert_eq!((facts["dns_pending"].clone(), facts["rto_met"].clone()), (json!(true), Value::Null), "{facts}");
    assert_eq!(orders_endpoint(&moto).await.as_deref(), Some(ORDERS_REPLICA), "the parameter moved");
    let (item, keys) = timeline(&moto, "us-east-1", &table, &id).await;
    assert_eq!((item["status"].as_str(), &item["ended"]), (Some("dns-pending"), &Value::Null), "still open: {item}");
    assert!(keys.iter().any(|k| k == "left:dns") && !keys.iter().any(|k| k == "step:dns"), "{keys:?}");
    assert!(keys.iter().any(|k| k == "step:verified") && !keys.iter().any(|k| k == "confirmed:dns"), "{keys:?}");
    // The record of a failover is written when it ends, with the figures it ended with: not yet.
    let kept = evidence(&moto, "us-east-1", &bed.evidence).await;
    assert!(!kept.iter().any(|(k, _)| k.contains(&id)), "{:?}", kept.iter().map(|k| &k.0).collect::<Vec<_>>());
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk("us-east-1").await);
    let running = sfn.describe_execution().execution_arn(&execution).send().await.expect("execution");
    assert_eq!(running.status().as_str(), "RUNNING", "it verifies again until DNS is confirmed");

    // Route 53 answers again; nothing moved the record, nor failed it back: the old primary still.
    // People run the command they were handed (what it changes: this UPSERT).
    moto.post("/_lifeboat/outage", &json!({}));
    assert_eq!(cname(&moto, &zone, "db.orders.internal").await.as_deref(), Some(ORDERS_PRIMARY));
    assert!(pending.text.contains(&"\"Action\":\"UPSERT\"".to_string()), "{}", pending.text);
    let moved_at = chrono::Utc::now();
    set_cname(&moto, &zone, "db.orders.internal", ORDERS_REPLICA).await;

    // The next verify finds it: resolved then, and the RTO is measured to that moment.
    let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}\n{}", bed.watch.log());
    let resolved = notice_in(&moto, "us-east-1", &inbox, &mut bed, "resolved").await;
    assert!(resolved.text.contains("Left for people, since done: DNS db.orders.internal names"), "{}", resolved.text);
    assert!(!resolved.text.contains("Finish what Lifeboat could not"), "{}", resolved.text);
    let facts: Value = serde_json::from_str(&resolved.raw).expect("facts");
    let (item, keys) = timeline(&moto, "us-east-1", &table, &id).await;
    assert_eq!(item["status"], "resolved", "{item}");
    assert!(keys.iter().any(|k| k == "confirmed:dns"), "{keys:?}");
    let started: chrono::DateTime<chrono::Utc> =
        item["started"].as_str().and_then(|t| t.parse().ok()).expect("started");
    let ended: chrono::DateTime<chrono::Utc> = item["ended"].as_str().and_then(|t| t.parse().ok()).expect("ended");
    assert!(ended >= moved_at, "ended at the DNS confirmation ({ended}), not before it ({moved_at})");
    assert_eq!(facts["duration_seconds"], json!((ended - started).num_seconds()), "{facts}");
    assert_eq!(facts["dns_pending"], false, "{facts}");
    // The evidence says what the closing message said.
    let kept = evidence(&moto, "us-east-1", &bed.evidence).await;
    let record = kept.iter().find(|(k, _)| k.contains(&id) && k.ends_with(".json")).expect("the failover's record");
    let record: Value = serde_json::from_str(&record.1).expect("record");
    assert_eq!(record["message"]["duration_seconds"], facts["duration_seconds"], "{record}");
    assert_eq!(record["message"]["dns_pending"], false, "{record}");
    assert!(record["timeline"].to_string().contains("confirmed:dns"), "{record}");
}

/// A stack in each region (`LIFEBOAT_RECOVERS=own`), each with its own table: the same signals
/// reach both, each twice, and still every database's recovery runs in exactly one region — the
/// one the config says owns it (where the database that takes over lives).
#[tokio::test]
async fn with_a_stack_in_each_region_each_database_is_recovered_by_one_region_only() {
    use lifeboat_core::aws::{ConfigCache, ConfigSource};
    let moto = Moto::start();
    let db = |name: &str, failover: &str| {
        format!(
            "  - name: {name}\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover: {{ {failover}, approval: required, triggers: {{ health: true }} }}\n"
        )
    };
    let yaml = format!(
        "databases:\n{}{}",
        db(
            "orders-prod",
            &format!("strategy: promote-replica, target: arn:aws:rds:us-west-2:{ACCOUNT}:db:orders-replica")
        ),
        db("ledger", "strategy: reboot-multi-az"),
    );
    let mut stacks = Vec::new();
    for region in ["us-east-1", "us-west-2"] {
        let sdk = moto.sdk(region).await;
        let table = incidents_table(&moto, region).await;
        aws_sdk_ssm::Client::new(&sdk)
            .put_parameter()
            .name(CONFIG_PARAM)
            .value(&yaml)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .expect("config, written to every region by deploy.sh");
        let config = ConfigCache::new(ConfigSource::Parameter(CONFIG_PARAM.into()), &sdk, Duration::ZERO);
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        let sm = idle_machine(&moto, region, "lifeboat-failover").await;
        let mut deps = failover_trigger::Deps::new(config, &sdk, &table, &sm, Duration::from_secs(1));
        deps.own_only = true;
        stacks.push((region, deps, sfn, sm));
    }
    let mut issue = event("health-rds-issue-open.json", None);
    issue["detail"]["affectedEntities"] = json!([]);
    let mut said = Vec::new();
    for (region, deps, ..) in &stacks {
        for _ in 0..2 {
            let report = failover_trigger::handle(deps, issue.clone(), chrono::Utc::now()).await.expect("trigger");
            said.push((region.to_string(), serde_json::to_value(report).unwrap()));
        }
    }
    let mut ran = Vec::new();
    for (region, _, sfn, sm) in &stacks {
        let out = sfn.list_executions().state_machine_arn(sm).send().await.expect("executions");
        ran.extend(
            out.executions()
                .iter()
                .map(|e| (region.to_string(), e.name().split("-2026").next().unwrap_or("").to_owned())),
        );
    }
    ran.sort();
    // The issue's startTime names the incidents: 2026-11-25.
    assert_eq!(
        ran,
        [("us-east-1".to_owned(), "ledger".to_owned()), ("us-west-2".to_owned(), "orders-prod".to_owned())],
        "{said:?}"
    );
    let east_orders =
        said.iter().find(|(r, s)| r == "us-east-1" && s.to_string().contains("orders-prod")).map(|(_, s)| s);
    assert!(
        east_orders.is_some_and(|s| s.to_string().contains("runs in us-west-2's stack, not us-east-1's")),
        "{said:?}"
    );
}

/// The DR region's own probe (`{"probe": true}`, every minute): the stack in us-west-2 looks at
/// orders-prod in us-east-1 and at its replica at home. us-east-1 unreachable for the probe's 2
/// minutes opens one incident and starts one failover; us-west-2 itself unreachable is "Lifeboat
/// can't reach AWS", which remembers nothing and starts nothing.
#[tokio::test]
async fn the_dr_regions_probe_tells_a_primary_gone_from_lifeboat_blind_and_signals_once() {
    use lifeboat_core::aws::{ConfigCache, ConfigSource};
    const DR: &str = "us-west-2";
    let moto = Moto::start();
    create_instance(&moto, "us-east-1", "orders-prod").await;
    read_replica(&moto, DR, "orders-replica", &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod")).await;
    let sdk = moto.sdk(DR).await;
    let table = incidents_table(&moto, DR).await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(CONFIG_PARAM)
        .value(orders_failover_yaml("      triggers: { probe: 2m }\n"))
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("config");
    let sm = idle_machine(&moto, DR, "lifeboat-failover").await;
    // Read once and kept (as every function keeps it for a minute): blind, it can't be re-read.
    let config = ConfigCache::new(ConfigSource::Parameter(CONFIG_PARAM.into()), &sdk, Duration::from_secs(3600));
    let mut deps = failover_trigger::Deps::new(config, &sdk, &table, &sm, Duration::from_secs(1));
    deps.own_only = true;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let executions =
        || async { sfn.list_executions().state_machine_arn(&sm).send().await.expect("executions").executions().len() };
    let t0 = chrono::Utc::now();
    let probe = |at: chrono::DateTime<chrono::Utc>| {
        let deps = &deps;
        async move {
            let r = failover_trigger::handle(deps, json!({"probe": true}), at).await.expect("probe");
            serde_json::to_value(r).unwrap()
        }
    };

    let fine = probe(t0).await;
    assert!(fine["probes"][0].as_str().unwrap_or("").contains("the primary answers"), "{fine}");

    moto.post("/_lifeboat/outage", &json!({"regions": [DR]}));
    let blind = probe(t0 + chrono::Duration::minutes(1)).await;
    assert!(blind["probes"][0].as_str().unwrap_or("").contains("Lifeboat can't reach RDS in us-west-2"), "{blind}");
    moto.post("/_lifeboat/outage", &json!({"regions": ["us-east-1"]}));
    let first = probe(t0 + chrono::Duration::minutes(2)).await;
    let said = first["probes"][0].as_str().unwrap_or("");
    assert!(
        said.contains("RDS in us-east-1 does not answer from us-west-2") && said.contains("once it lasts 2m"),
        "{first}"
    );
    let still = probe(t0 + chrono::Duration::minutes(3)).await;
    assert!(still["also"].as_array().is_none_or(Vec::is_empty), "not yet: {still}");
    assert_eq!(executions().await, 0, "a blind look and a short failure start nothing");

    let down = probe(t0 + chrono::Duration::minutes(4)).await;
    assert_eq!(down["also"][0]["started"], true, "{down}");
    let id = down["also"][0]["incident_id"].as_str().unwrap().to_owned();
    let again = probe(t0 + chrono::Duration::minutes(5)).await;
    assert_eq!(again["also"][0]["incident_id"].as_str(), Some(id.as_str()), "the same outage: {again}");
    assert_eq!(executions().await, 1);
    let item = raw_item(&moto, DR, &table, &format!("incident#{id}")).await;
    assert_eq!(item["status"], "declared", "the approval still to come: {item}");
    assert!(item.to_string().contains("Lifeboat's probe from us-west-2"), "{item}");

    moto.post("/_lifeboat/outage", &json!({}));
    let back = probe(t0 + chrono::Duration::minutes(6)).await;
    assert!(back["probes"][0].as_str().unwrap_or("").contains("the primary answers"), "{back}");

    // us-east-1 answering, but throttling every look at the primary, past the probe's 2 minutes:
    // it answered, so it is no evidence the primary is gone; nothing remembered, nothing started.
    moto.set_faults(&[("DescribeDBInstances", "orders-prod", "Throttling")]);
    for minute in [7, 8, 10] {
        let throttled = probe(t0 + chrono::Duration::minutes(minute)).await;
        let said = throttled["probes"][0].as_str().unwrap_or("");
        assert!(said.contains("no signal either way"), "minute {minute}: {throttled}");
        assert!(throttled["also"].as_array().is_none_or(Vec::is_empty), "{throttled}");
    }
    moto.set_faults(&[]);
    assert_eq!(executions().await, 1, "throttling started nothing");
}
