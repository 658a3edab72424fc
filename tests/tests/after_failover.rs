//! After the failover (issue 29): where a database serves is state the failover records, and the
//! scheduled jobs follow it without a config edit. With the stack deployed in us-west-2, a
//! promote-replica failover of orders-prod resolves; then the copier copies the new primary's
//! snapshots (to the DR region it doesn't run in) and not the old primary's, the RPO monitor
//! judges the new primary, the trigger starts no failover of a failover, and `lifeboat status`
//! says where it runs and how it is protected.

use std::time::{Duration, Instant};

use lifeboat_tests::*;
use serde_json::{json, Value};

const DR: &str = "us-west-2";
const ACTIVE_PARAM: &str = "/lifeboat/active/orders-prod";

async fn active_param(ssm: &aws_sdk_ssm::Client) -> (Value, i64) {
    let p = ssm.get_parameter().name(ACTIVE_PARAM).send().await.expect("active side recorded");
    let p = p.parameter().expect("parameter");
    (serde_json::from_str(p.value().unwrap_or_default()).expect("JSON"), p.version())
}

/// Waits (2 minutes at most) for incident `id` to await its approval; its item if it ended instead.
async fn awaits_approval(moto: &Moto, table: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let item = raw_item(moto, DR, table, &format!("incident#{id}")).await;
        match item["status"].as_str() {
            Some("awaiting-approval") => return,
            Some("failed" | "aborted" | "resolved") => panic!("incident {id} ended: {item}"),
            _ => assert!(Instant::now() < deadline, "incident {id} never asked: {item}"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Lifeboat's copies of orders-prod in `region`: (identifier, the source snapshot it copies).
async fn copies_in(moto: &Moto, region: &str) -> Vec<(String, String)> {
    let rds = moto.rds(region).await;
    let out = rds.describe_db_snapshots().send().await.expect("describe snapshots");
    let mut found = Vec::new();
    for s in out.db_snapshots() {
        let arn = s.db_snapshot_arn().unwrap_or_default();
        let tags = rds.list_tags_for_resource().resource_name(arn).send().await.expect("tags");
        let tag =
            |k: &str| tags.tag_list().iter().find(|t| t.key() == Some(k)).and_then(|t| t.value()).map(str::to_owned);
        if tag("lifeboat:database").as_deref() == Some("orders-prod") {
            found.push((
                s.db_snapshot_identifier().unwrap_or_default().to_owned(),
                tag("lifeboat:source-arn").unwrap_or_default(),
            ));
        }
    }
    found
}

#[test]
fn a_round_trip_failover_reprotect_failback_with_the_jobs_following_where_it_serves() {
    on_a_big_stack(round_trip);
}

async fn round_trip() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, DR).await;
    let (topic, inbox) = topic_with_queue(&moto, DR).await;
    // The primary with settings of its own (encrypted, its parameter group and security group),
    // which the way back must carry over; its replica in us-west-2 under that region's key.
    let east = moto.rds("us-east-1").await;
    let (east_key, west_key) = (kms_key(&moto, "us-east-1").await, kms_key(&moto, DR).await);
    east.create_db_parameter_group()
        .db_parameter_group_name("orders-pg15")
        .db_parameter_group_family("postgres15")
        .description("orders")
        .send()
        .await
        .expect("parameter group");
    east.create_db_instance()
        .db_instance_identifier("orders-prod")
        .engine("postgres")
        .db_instance_class("db.t3.small")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .allocated_storage(20)
        .storage_encrypted(true)
        .kms_key_id(&east_key)
        .db_parameter_group_name("orders-pg15")
        .vpc_security_group_ids("sg-0orders")
        .send()
        .await
        .expect("primary");
    let primary = format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod");
    let replica = format!("arn:aws:rds:{DR}:{ACCOUNT}:db:orders-replica");
    let refused = moto
        .rds(DR)
        .await
        .create_db_instance_read_replica()
        .db_instance_identifier("orders-replica")
        .source_db_instance_identifier(&primary)
        .send()
        .await;
    assert!(refused.is_err(), "RDS: an encrypted cross-region replica names a key of its region");
    moto.rds(DR)
        .await
        .create_db_instance_read_replica()
        .db_instance_identifier("orders-replica")
        .source_db_instance_identifier(&primary)
        .db_instance_class("db.t3.micro")
        .kms_key_id(&west_key)
        .send()
        .await
        .expect("cross-region replica");
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk(DR).await);
    ssm.put_parameter()
        .name(ORDERS_ENDPOINT_PARAM)
        .value(ORDERS_PRIMARY)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .expect("endpoint parameter");
    // DNS by Route 53 ARC routing controls over a failover pair set up beforehand.
    let zone = hosted_zone(&moto, "orders.internal").await;
    failover_pair(&moto, &zone, "db.orders.internal", ORDERS_PRIMARY, ORDERS_REPLICA).await;
    let dns = format!(
        "      dns:\n        zone_id: {zone}\n        record: db.orders.internal\n        mode: routing-control\n        \
         routing_controls:\n          on: {}\n          off: {}\n          cluster_endpoints: [{{ region: eu-west-1, url: \
         \"{}\" }}]\n",
        routing_control("west"),
        routing_control("east"),
        moto.endpoint
    );
    let yaml = orders_failover_yaml(&format!("      triggers: {{ replica_events: true }}\n      reprotect: auto\n{dns}"))
        .replace(
            "    failover:\n",
            &format!(
                "    copy_to: [{{ region: us-west-2, kms_key: \"{west_key}\" }}, {{ region: eu-west-1, kms_key: \"{}\" }}]\n    failover:\n",
                kms_key(&moto, "eu-west-1").await
            ),
        );
    let mut bed = RecoveryBed::start_in(&moto, DR, &port, &table, &topic, Some(&yaml)).await;

    let report = bed.trigger("replica", &event("failover-replica-replication-error.json", None));
    assert_eq!(report["started"], true, "{report}");
    let id = report["incident_id"].as_str().unwrap().to_owned();
    let execution = report["execution_arn"].as_str().unwrap().to_owned();
    let ask = notice_in(&moto, DR, &inbox, &mut bed, "awaits your approval").await;
    let decided = post_form(line_after(&ask.text, "Approve: "), "approver=Alice%20Ops&database=orders-prod");
    assert_eq!(decided.status, 200, "{}", decided.body);
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk(DR).await);
    let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}\n{}", bed.watch.log());

    // The failover recorded where orders-prod serves now, by its own role, before it resolved.
    let (active, version) = active_param(&ssm).await;
    assert_eq!(active["arn"], replica.as_str(), "{active}");
    assert_eq!(active["previous"], primary.as_str(), "{active}");
    assert_eq!(active["incident"], id.as_str(), "{active}");
    assert_eq!(active["endpoint"], ORDERS_REPLICA, "{active}");
    let item = raw_item(&moto, DR, &table, &format!("incident#{id}")).await;
    assert_eq!(item["status"], "resolved", "{item}");
    let keys = |item: &Value| -> Vec<String> {
        item["timeline"].as_array().into_iter().flatten().filter_map(|e| e["key"].as_str().map(str::to_owned)).collect()
    };
    assert_eq!(keys(&item).iter().filter(|k| *k == "active").count(), 1, "{item}");
    // Verify again, as Step Functions retries a step whose answer was lost: nothing new written.
    let again = bed.invoke("failover-steps", "verify-again", &json!({"action": "verify", "execution": output}));
    assert!(again.get("errorType").is_none(), "{again}");
    assert_eq!(active_param(&ssm).await.1, version, "a replay writes no new version");
    let item = raw_item(&moto, DR, &table, &format!("incident#{id}")).await;
    assert_eq!(keys(&item).iter().filter(|k| *k == "active").count(), 1, "{item}");

    // Both go on taking snapshots: the new primary, and the old one (diverged, left as it is).
    let new_snapshot = snapshot(&moto, DR, "orders-replica", "orders-replica-after", &[]).await;
    let old_snapshot = snapshot(&moto, "us-east-1", "orders-prod", "orders-prod-after", &[]).await;
    let swept = bed.invoke("snapshot-copier", "sweep", &event("scheduled-sweep.json", None));
    assert!(swept.get("errorType").is_none(), "{swept}\n{}", bed.watch.log());
    let eu = copies_in(&moto, "eu-west-1").await;
    assert_eq!(eu.len(), 1, "the new primary's snapshot, copied to the DR region: {eu:?}\n{swept}");
    assert_eq!(eu[0].1, new_snapshot, "{eu:?}");
    assert!(copies_in(&moto, DR).await.is_empty(), "never a copy into the region it runs in");
    for region in ["us-east-1", "us-west-2", "eu-west-1"] {
        let copied = copies_in(&moto, region).await;
        assert!(copied.iter().all(|(_, source)| source != &old_snapshot), "the old primary copied: {copied:?}");
    }

    // The RPO monitor judges the new primary's copies, where they go now.
    let rpo = bed.invoke("rpo-monitor", "rpo", &json!({}));
    let regions: Vec<&str> = rpo["assessments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["database"] == "orders-prod")
        .filter_map(|a| a["region"].as_str())
        .collect();
    assert!(regions.contains(&"eu-west-1") && !regions.contains(&DR), "{rpo}");
    assert!(rpo["unprotected"].as_array().is_some_and(|u| u.is_empty()), "{rpo}");

    // The signal that started it, again: the replica serves now, nothing fails it over.
    let later = bed.trigger("replica-again", &event("failover-replica-replication-error.json", None));
    assert_ne!(later["started"], true, "{later}");
    assert!(later.get("incident_id").is_none_or(|i| i.as_str() == Some(id.as_str())), "{later}");

    // What a person reads: where it serves, since when, and how it is protected.
    let config_file = bed.dir.join("lifeboat.yaml").to_string_lossy().into_owned();
    let env = [
        ("AWS_REGION", DR),
        ("LIFEBOAT_INCIDENTS_TABLE", table.as_str()),
        ("LIFEBOAT_CONFIG_FILE", config_file.as_str()),
        ("LIFEBOAT_RECOVERS", "all"),
        // status reads; it sends nothing to the operator URL.
        ("LIFEBOAT_OPERATOR_URL", "http://127.0.0.1:9/"),
    ];
    let shown = lifeboat(&moto, &env, &["status", "orders-prod"]);
    assert!(
        shown.stdout.contains(&format!(
            "orders-prod: active in us-west-2 since {} (incident {id}), protected: copies only (eu-west-1)",
            chrono::DateTime::parse_from_rfc3339(active["since"].as_str().unwrap())
                .unwrap()
                .format("%Y-%m-%d %H:%M UTC")
        )),
        "{shown:?}"
    );
    assert!(shown.stdout.contains(&format!("the old primary {primary} is left as it is")), "{shown:?}");

    // Re-protect (`reprotect: auto`) waits while us-east-1 does not answer, and builds nothing.
    moto.post("/_lifeboat/outage", &json!({"regions": ["us-east-1"]}));
    let waits = bed.invoke("reprotect", "reprotect-down", &event("scheduled-sweep.json", None));
    moto.post("/_lifeboat/outage", &json!({"regions": []}));
    assert_eq!(waits["reprotected"], json!([]), "{waits}");
    assert_eq!(waits["told"], json!([]), "us-east-1 down: not told yet");
    assert!(waits["waiting"][0]["why"].as_str().unwrap_or_default().contains("us-east-1 does not answer"), "{waits}");
    assert_eq!(waits["waiting"][0]["retryable"], true, "{waits}");

    // Once it answers: a replica of the new primary there, with the old primary's settings.
    let built = bed.invoke("reprotect", "reprotect", &event("scheduled-sweep.json", None));
    let back_arn = built["reprotected"][0]["replica"].as_str().unwrap_or_else(|| panic!("{built}")).to_owned();
    assert_eq!(built["reprotected"][0]["built"], true, "{built}");
    let back_id = back_arn.rsplit(':').next().unwrap().to_owned();
    assert!(back_arn.starts_with(&format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:lf-orders-prod-r")), "{back_arn}");
    let described = east.describe_db_instances().db_instance_identifier(&back_id).send().await.expect("way back");
    let back = &described.db_instances()[0];
    let of = back.read_replica_source_db_instance_identifier().unwrap_or_default();
    assert!(of == replica || of == "orders-replica", "a replica of what serves now: {of}");
    assert_eq!(back.db_instance_class(), Some("db.t3.small"), "the old primary's class");
    assert_eq!(back.db_parameter_groups()[0].db_parameter_group_name(), Some("orders-pg15"));
    assert_eq!(back.vpc_security_groups()[0].vpc_security_group_id(), Some("sg-0orders"));
    assert_eq!(back.kms_key_id(), Some(east_key.as_str()), "the old region's key");
    // The old primary: still there, unchanged, tagged with the incident that left it.
    let old = east.describe_db_instances().db_instance_identifier("orders-prod").send().await.expect("old primary");
    let old = &old.db_instances()[0];
    assert_eq!(old.db_instance_status(), Some("available"));
    let tagged = old.tag_list().iter().any(|t| t.key() == Some("lifeboat:old-primary-of") && t.value() == Some(&id));
    assert!(tagged, "{:?}", old.tag_list());
    // Where it serves and its way back, here and in the old region (whose stack follows it too).
    let (active, _) = active_param(&ssm).await;
    assert_eq!(active["replica"], back_arn.as_str(), "{active}");
    let home = aws_sdk_ssm::Client::new(&moto.sdk("us-east-1").await);
    assert_eq!(active_param(&home).await.0, active, "told home");

    // Again, as a schedule runs: nothing new.
    let again = bed.invoke("reprotect", "reprotect-again", &event("scheduled-sweep.json", None));
    assert_eq!(again, json!({"reprotected": [], "waiting": [], "told": []}), "the way back exists: {again}");
    let on_demand = bed.invoke("reprotect", "reprotect-asked", &json!({"database": "orders-prod"}));
    assert_eq!(on_demand["built"], false, "{on_demand}");
    let count = east.describe_db_instances().send().await.expect("instances").db_instances().len();
    assert_eq!(count, 2, "the old primary and one way back");
    let item = raw_item(&moto, DR, &table, &format!("incident#{id}")).await;
    assert_eq!(keys(&item).iter().filter(|k| *k == "reprotect").count(), 1, "{item}");

    let shown = lifeboat(&moto, &env, &["status", "orders-prod"]);
    assert!(shown.stdout.contains(&format!("protected: replica ({back_arn})")), "{shown:?}");
    // Readiness judges the way back now: the replica in us-east-1 is the failover's target. (In
    // process, as the stack's next run: the running function keeps what it read for a minute.)
    let source = lifeboat_core::aws::ConfigSource::File(config_file.clone());
    let cache = lifeboat_core::aws::ConfigCache::new(source, &moto.sdk(DR).await, lifeboat_core::aws::CONFIG_TTL)
        .following_active();
    let deps = rpo_monitor::Deps::new(cache, &moto.sdk(DR).await, &table, &topic);
    let ready = rpo_monitor::handle(&deps, json!({"readiness": true}), chrono::Utc::now()).await.expect("readiness");
    let text = serde_json::to_string(&ready).unwrap();
    assert!(text.contains(&format!("{back_id} is available")), "the way back is the target it checks: {text}");
    // us-east-1 answers again: copies of what serves go there too, under the old primary's key
    // (the old primary's own snapshots there stay as they are: no policy reaches them).
    let later = snapshot(&moto, DR, "orders-replica", "orders-replica-later", &[]).await;
    let source = lifeboat_core::aws::ConfigSource::File(config_file.clone());
    let cache = lifeboat_core::aws::ConfigCache::new(source, &moto.sdk(DR).await, lifeboat_core::aws::CONFIG_TTL)
        .following_active();
    let copier = snapshot_copier::Deps::new(cache, &moto.sdk(DR).await);
    let swept = snapshot_copier::handle(&copier, event("scheduled-sweep.json", None), chrono::Utc::now()).await;
    let swept = swept.expect("sweep");
    let home_copies = copies_in(&moto, "us-east-1").await;
    assert!(home_copies.iter().any(|(_, source)| source == &later), "{home_copies:?}\n{swept:?}");
    let copied = east.describe_db_snapshots().send().await.expect("snapshots");
    let copy = copied.db_snapshots().iter().find(|s| s.db_instance_identifier() == Some("orders-replica"));
    assert_eq!(copy.and_then(|c| c.kms_key_id()), Some(east_key.as_str()), "under the old region's key");

    // Going home, planned: refused while the way back lags, and nothing moves.
    // RDS reports ReplicaLag each minute; the failover reads the newest minute's.
    replica_lag(&moto, "us-east-1", &back_id, 120.0, 240).await;
    let home =
        |reason: &str| json!({"database": "orders-prod", "reason": reason, "requested_by": "alice", "failback": true});
    let early = bed.trigger("failback-early", &home("us-east-1 is back"));
    let early_id = early["incident_id"].as_str().unwrap_or_else(|| panic!("{early}")).to_owned();
    let refused = notice_in(&moto, DR, &inbox, &mut bed, "recovery FAILED").await;
    assert!(refused.text.contains("failback refused") && refused.text.contains("120 s behind"), "{}", refused.text);
    let item = raw_item(&moto, DR, &table, &format!("incident#{early_id}")).await;
    assert_eq!((item["kind"].as_str(), item["status"].as_str()), (Some("failback"), Some("failed")), "{item}");
    assert_eq!(active_param(&ssm).await.0["arn"], replica.as_str(), "nothing moved");

    // Caught up, but the pair's home record still names the old primary: flipping the controls
    // would send the applications to the diverged database. Refused, with what to do.
    replica_lag(&moto, "us-east-1", &back_id, 0.0, 5).await;
    assert_eq!(resolve(&moto, "db.orders.internal").as_deref(), Some(ORDERS_REPLICA));
    let unready = bed.trigger("failback-record", &home("us-east-1 is back and the way back caught up"));
    let unready_id = unready["incident_id"].as_str().unwrap_or_else(|| panic!("{unready}")).to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    let said = loop {
        let item = raw_item(&moto, DR, &table, &format!("incident#{unready_id}")).await;
        if item["status"] == "failed" {
            break item["timeline"].to_string();
        }
        assert_ne!(item["status"], "awaiting-approval", "asked with the record naming the old primary: {item}");
        assert!(Instant::now() < deadline, "never refused: {item}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(said.contains(&format!("names {ORDERS_PRIMARY}, not the way back")), "{said}");
    assert_eq!(resolve(&moto, "db.orders.internal").as_deref(), Some(ORDERS_REPLICA), "nothing moved");

    // People point it at the way back; the same machine and approval take it home.
    let way_back = instance_endpoint(&moto, "us-east-1", &back_id).await.expect("the way back's endpoint");
    repoint_primary(&moto, &zone, "db.orders.internal", &way_back).await;
    let going = bed.trigger("failback", &home("us-east-1 is back, the way back caught up, the record ready"));
    assert_eq!(going["started"], true, "{going}");
    let back_id_incident = going["incident_id"].as_str().unwrap().to_owned();
    awaits_approval(&moto, &table, &back_id_incident).await;
    let ask = notice_in(&moto, DR, &inbox, &mut bed, "failback awaits your approval").await;
    let decided = post_form(line_after(&ask.text, "Approve: "), "approver=Alice%20Ops&database=orders-prod");
    assert_eq!(decided.status, 200, "{}", decided.body);
    let execution = going["execution_arn"].as_str().unwrap().to_owned();
    let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}\n{}", bed.watch.log());
    let done = notice_in(&moto, DR, &inbox, &mut bed, "failback done").await;
    assert!(done.subject.contains("[P3]"), "planned: {}", done.subject);
    let (home_side, _) = active_param(&ssm).await;
    assert_eq!(home_side["arn"], back_arn.as_str(), "{home_side}");
    assert_eq!(home_side["previous"], replica.as_str(), "{home_side}");
    assert_eq!(home_side["incident"], back_id_incident.as_str(), "{home_side}");
    // One story: the failback's timeline names the failover it undid.
    let item = raw_item(&moto, DR, &table, &format!("incident#{back_id_incident}")).await;
    assert_eq!(item["kind"], "failback", "{item}");
    let said = item["timeline"].to_string();
    assert!(said.contains(&format!("back from where incident {id} moved it")), "{said}");
    assert_eq!(resolve(&moto, "db.orders.internal").as_deref(), Some(way_back.as_str()), "DNS names home");
    let endpoint = ssm.get_parameter().name(ORDERS_ENDPOINT_PARAM).send().await.expect("parameter");
    let endpoint = endpoint.parameter().and_then(|p| p.value()).unwrap_or_default().to_owned();
    assert!(endpoint.starts_with(&back_id), "the applications point home: {endpoint}");

    // And the DR direction is the original again: copies of what serves in us-east-1 go west.
    let home_snapshot = snapshot(&moto, "us-east-1", &back_id, "orders-home-1", &[]).await;
    // The running copier trusts what it read for a minute (CONFIG_TTL): the sweep after that.
    let deadline = Instant::now() + Duration::from_secs(120);
    let west = loop {
        let swept = bed.invoke("snapshot-copier", "sweep-home", &event("scheduled-sweep.json", None));
        assert!(swept.get("errorType").is_none(), "{swept}");
        let west: Vec<String> = copies_in(&moto, DR).await.into_iter().map(|(_, source)| source).collect();
        if !west.is_empty() || Instant::now() > deadline {
            break west;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    };
    assert_eq!(west, std::slice::from_ref(&home_snapshot));
    assert!(copies_in(&moto, "eu-west-1").await.iter().any(|(_, source)| source == &home_snapshot));
}
