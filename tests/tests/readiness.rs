//! Readiness against moto (`rpo-monitor` `{"readiness": true}`, in-process): a ready database
//! reports ready; then one thing at a time breaks — the DR subnet group deleted, the DR key
//! scheduled for deletion, the approval key cut short — and each shows up as its own check,
//! blocked, with what to do: one notice when it breaks, none on the next run, one when it is
//! mended; the last verdict is kept for the approval request.

use lifeboat_core::aws::{ConfigCache, ConfigSource, CONFIG_TTL};
use lifeboat_tests::*;
use serde_json::{json, Value};

const DR: &str = "us-west-2";

async fn run(deps: &rpo_monitor::Deps) -> (Value, Vec<String>) {
    let r = rpo_monitor::handle(deps, json!({"readiness": true}), chrono::Utc::now()).await.expect("readiness");
    let v = serde_json::to_value(&r).unwrap();
    (v["readiness"][0].clone(), r.published)
}

/// A whole readiness run: each database's verdict by name, and the `FailoverReady` datapoints it
/// printed (EMF), by database (None: the region's own, which the alarm watches).
async fn run_all(deps: &rpo_monitor::Deps) -> (Vec<(String, Value)>, Vec<(Option<String>, i64)>) {
    let r = rpo_monitor::handle(deps, json!({"readiness": true}), chrono::Utc::now()).await.expect("the run completes");
    let verdicts = r.readiness.iter().map(|x| (x.database.clone(), serde_json::to_value(x).unwrap())).collect();
    let points = r
        .datapoints
        .iter()
        .map(|line| {
            let emf: Value = serde_json::from_str(line).expect("an EMF line is JSON");
            let metric = &emf["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(
                (metric["Namespace"].as_str(), metric["Metrics"][0]["Name"].as_str()),
                (Some("Lifeboat"), Some("FailoverReady"))
            );
            assert_eq!(emf["Region"], "us-east-1", "{line}");
            (emf["Database"].as_str().map(str::to_owned), emf["FailoverReady"].as_i64().expect("a value"))
        })
        .collect();
    (verdicts, points)
}

/// Every call rpo-monitor made since the emulator's counts were reset, as IAM names it, is one its
/// role in template.yaml allows: on AWS none of them would be AccessDenied.
fn calls_allowed_by_rpo_monitors_role(moto: &Moto) -> Vec<String> {
    let statements = template_statements("RpoMonitorFunction", "us-east-1");
    let allowed: Vec<String> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| match &s["Action"] {
            Value::Array(l) => l.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            Value::String(a) => vec![a.clone()],
            _ => Vec::new(),
        })
        .collect();
    let counts = moto.fault_counts();
    let calls: Vec<String> = counts["calls"]
        .as_object()
        .expect("calls counted")
        .keys()
        .map(|k| {
            let (service, op) = k.split_once(':').expect("service:operation");
            // The emulator names a call by its signing name or JSON target; IAM by its prefix.
            let prefix = match service {
                "monitoring" => "cloudwatch",
                "trentservice" => "kms",
                "togglecustomerapi" => "route53-recovery-cluster",
                other => other,
            };
            format!("{prefix}:{op}")
        })
        .collect();
    for call in &calls {
        assert!(
            allowed.contains(call),
            "rpo-monitor calls {call}, which its role in template.yaml does not allow: {allowed:?}"
        );
    }
    calls
}

fn level<'a>(r: &'a Value, check: &str) -> (&'a str, &'a str) {
    let c = r["checks"].as_array().into_iter().flatten().find(|c| c["check"] == check);
    let c = c.unwrap_or_else(|| panic!("no {check} check: {r}"));
    (c["level"].as_str().unwrap_or(""), c["reason"].as_str().unwrap_or(""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_broken_thing_is_its_check_told_once_and_once_mended() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let zone = orders_with_replica(&moto).await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db"}));
    let key = "local-approval-key-0123456789abcdef-0123456789";
    approval_key(&moto, "us-east-1", key).await;
    let dr_key = kms_key(&moto, DR).await;
    let yaml = orders_failover_yaml(&format!(
        "      dns: {{ zone_id: {zone}, record: db.orders.internal }}\n    copy_to: [{{ region: {DR}, kms_key: \"{dr_key}\" }}]\n    \
         drill:\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n"
    ));
    let sdk = moto.sdk("us-east-1").await;
    let mut deps = rpo_monitor::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    deps.approval_key_param = Some(APPROVAL_KEY_PARAM.to_owned());

    // A request naming no database of the config is refused and writes nothing.
    let unknown = rpo_monitor::handle(&deps, json!({"readiness": true, "database": "nope"}), chrono::Utc::now()).await;
    assert!(unknown.as_ref().is_err_and(|e| e.to_string().contains("no database named nope")), "{unknown:?}");
    assert!(table_items(&moto, "us-east-1", &table).await.is_empty(), "nothing written");

    let (r, told) = run(&deps).await;
    assert_eq!(r["ready"], true, "{r}");
    for check in
        ["target", "restore-subnet-group", "dns", "endpoint-parameter", "approval-key", "snapshot-quota", "dr-key"]
    {
        assert_eq!(level(&r, check).0, "ok", "{check}: {r}");
    }
    assert_eq!(level(&r, "last-drill").0, "warning", "never drilled: {r}");
    assert!(told.is_empty(), "ready is the quiet default: {told:?}");

    // The DR subnet group goes.
    let west = moto.rds(DR).await;
    west.delete_db_subnet_group().db_subnet_group_name("dr-db").send().await.expect("delete subnet group");
    let (r, told) = run(&deps).await;
    assert_eq!(r["ready"], false, "{r}");
    let (l, why) = level(&r, "restore-subnet-group");
    assert_eq!(l, "blocked");
    assert!(
        why.contains("subnet group dr-db not found in us-west-2: create it or set drill.restore.subnet_group"),
        "{why}"
    );
    assert_eq!(told.len(), 1, "{told:?}");
    let (_, again) = run(&deps).await;
    assert!(again.is_empty(), "told once: {again:?}");
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db"}));
    let (r, told) = run(&deps).await;
    assert_eq!(r["ready"], true, "{r}");
    assert_eq!(told.len(), 1, "ready again: {told:?}");

    // The DR key is scheduled for deletion: every copy and restore under it would fail.
    let kms = aws_sdk_kms::Client::new(&moto.sdk(DR).await);
    kms.schedule_key_deletion().key_id(&dr_key).pending_window_in_days(7).send().await.expect("schedule deletion");
    let (r, told) = run(&deps).await;
    let (l, why) = level(&r, "dr-key");
    assert_eq!(l, "blocked");
    assert!(why.contains("is pending deletion in us-west-2: cancel it"), "{why}");
    assert_eq!(told.len(), 1, "{told:?}");
    kms.cancel_key_deletion().key_id(&dr_key).send().await.expect("cancel deletion");
    kms.enable_key().key_id(&dr_key).send().await.expect("enable");
    let (r, told) = run(&deps).await;
    assert_eq!(r["ready"], true, "{r}");
    assert_eq!(told.len(), 1, "{told:?}");

    // The approval key is cut short: nobody could approve a link safely.
    approval_key(&moto, "us-east-1", "short").await;
    let (r, told) = run(&deps).await;
    assert_eq!(level(&r, "approval-key"), ("blocked", "the approval signing key is 5 bytes: make it at least 32"));
    assert_eq!(told.len(), 1, "{told:?}");
    let kept = lifeboat_core::aws::incidents::IncidentStore::new(&sdk, &table).readiness("orders-prod").await.unwrap();
    assert!(
        kept.is_some_and(|(s, _)| s.starts_with("ready: NO — the approval signing key is 5 bytes")),
        "kept for preflight"
    );

    let said = notices(&moto, "us-east-1", &inbox).await;
    let subjects: Vec<&str> = said.iter().map(|n| n.subject.as_str()).collect();
    assert_eq!(
        subjects,
        [
            "[P2] orders-prod: NOT ready to fail over",
            "[P3] orders-prod: ready to fail over again",
            "[P2] orders-prod: NOT ready to fail over",
            "[P3] orders-prod: ready to fail over again",
            "[P2] orders-prod: NOT ready to fail over"
        ],
        "{said:?}"
    );
    assert!(said[0].text.contains("restore-subnet-group (BLOCKED): subnet group dr-db not found"), "{}", said[0].text);
}

/// What the restore and the switch need, and the failover's own permissions, simulated on the
/// steps' role as template.yaml writes it: each broken on its own and mended — the role loses its
/// right to promote, the DR region stops offering the restore's class, the record turns into an
/// alias, the DR region's manual snapshot quota fills, the replica is promoted out from under its
/// source. The report carries the verdict.
#[test]
fn the_restore_the_switch_and_the_failovers_own_permissions_each_break_and_mend() {
    // A debug build gives this test's body a stack frame near 1 MB (every temporary of the
    // Route 53 and EC2 builders its own slot) and RDS's response parsing another 0.5 MB: more
    // than a test thread's 2 MB. Release builds, which Lambda runs, need a fraction of that.
    let run = || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        rt.block_on(restore_switch_and_permissions())
    };
    let big = std::thread::Builder::new().stack_size(16 << 20).spawn(run).expect("test thread");
    if let Err(panic) = big.join() {
        std::panic::resume_unwind(panic);
    }
}

async fn restore_switch_and_permissions() {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
    // RDS's default manual snapshot quota, which the emulator then enforces and reports.
    let moto = Moto::start_with(&[("MOTO_RDS_SNAPSHOT_LIMIT", "100")]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, _inbox) = topic_with_queue(&moto, "us-east-1").await;
    let zone = orders_with_replica(&moto).await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db"}));
    approval_key(&moto, "us-east-1", "local-approval-key-0123456789abcdef-0123456789").await;
    let dr_key = kms_key(&moto, DR).await;
    dr_copies(&moto, DR, "orders-prod", false, &[("lifeboat-orders-prod-1", chrono::Utc::now())]).await;
    let ec2 = aws_sdk_ec2::Client::new(&moto.sdk(DR).await);
    let sg = ec2.create_security_group().group_name("orders-dr").description("orders in DR").send().await.unwrap();
    let sg = sg.group_id().unwrap().to_owned();
    let yaml = orders_failover_yaml(&format!(
        "      dns: {{ zone_id: {zone}, record: db.orders.internal }}\n    copy_to: [{{ region: {DR}, kms_key: \"{dr_key}\" }}]\n    \
         drill:\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db, security_groups: [{sg}] }}\n"
    ));
    let sdk = moto.sdk("us-east-1").await;
    let mut deps = rpo_monitor::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    deps.approval_key_param = Some(APPROVAL_KEY_PARAM.to_owned());
    let statements = template_statements("FailoverStepsFunction", "us-east-1");
    deps.steps_role = Some(role_with(&moto, "lifeboat-failover-steps", &statements).await);

    let (r, _) = run(&deps).await;
    assert_eq!(r["ready"], true, "{r}");
    let (l, why) = level(&r, "permissions");
    assert_eq!((l, why), ("ok", "the failover's role may make all 3 calls that move the database"), "{r}");
    assert_eq!(level(&r, "restore-instance-class"), ("ok", "db.t3.micro for postgres 9.3.3 in us-west-2"), "{r}");
    assert_eq!(level(&r, "restore-security-groups"), ("ok", format!("{sg} in us-west-2").as_str()), "{r}");
    assert_eq!(level(&r, "copies-in-flight").0, "ok", "{r}");

    // Someone trims the role: it may no longer promote the replica.
    let trimmed: Vec<_> = statements.iter().filter(|s| s["Sid"] != "MoveTheDatabase").cloned().collect();
    role_with(&moto, "lifeboat-failover-steps", &trimmed).await;
    let (r, told) = run(&deps).await;
    let (l, why) = level(&r, "permissions");
    assert_eq!(l, "blocked", "{r}");
    assert!(
        why.contains(&format!("may not rds:PromoteReadReplica on arn:aws:rds:{DR}:{ACCOUNT}:db:orders-replica")),
        "{why}"
    );
    assert_eq!(told.len(), 1, "{told:?}");
    role_with(&moto, "lifeboat-failover-steps", &statements).await;
    let (r, told) = run(&deps).await;
    assert_eq!((r["ready"].clone(), told.len()), (json!(true), 1), "{r}");

    // The DR region stops offering the class a restore asks for.
    let withdrawn = json!({"region": DR, "engine": "postgres", "class": "db.t3.micro", "offered": false});
    moto.post("/_lifeboat/rds/orderable", &withdrawn);
    let (r, told) = run(&deps).await;
    assert_eq!(told.len(), 1, "one notice when it breaks: {told:?}");
    let (l, why) = level(&r, "restore-instance-class");
    assert_eq!(l, "blocked");
    assert!(why.starts_with("db.t3.micro is not offered for postgres 9.3.3 in us-west-2: pick one that is"), "{why}");
    moto.post("/_lifeboat/rds/orderable", &json!({"region": DR, "engine": "postgres", "class": "db.t3.micro"}));
    let (r, told) = run(&deps).await;
    assert_eq!((r["ready"].clone(), told.len()), (json!(true), 1), "ready again, told once: {r}");

    // The record becomes an alias: an UPSERT of a CNAME over it would be refused.
    let r53 = aws_sdk_route53::Client::new(&sdk);
    let cname = ResourceRecordSet::builder()
        .name("db.orders.internal")
        .r#type(RrType::Cname)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(ORDERS_PRIMARY).build().unwrap())
        .build()
        .unwrap();
    let alias = alias_record("db.orders.internal");
    let swap = |from: &ResourceRecordSet, to: &ResourceRecordSet| {
        ChangeBatch::builder()
            .changes(Change::builder().action(ChangeAction::Delete).resource_record_set(from.clone()).build().unwrap())
            .changes(Change::builder().action(ChangeAction::Create).resource_record_set(to.clone()).build().unwrap())
            .build()
            .unwrap()
    };
    r53.change_resource_record_sets().hosted_zone_id(&zone).change_batch(swap(&cname, &alias)).send().await.unwrap();
    let (r, told) = run(&deps).await;
    assert_eq!(told.len(), 1, "one notice when it breaks: {told:?}");
    let (l, why) = level(&r, "dns");
    assert_eq!(l, "blocked");
    assert!(
        why.starts_with("db.orders.internal is an alias A record: Route 53 refuses a simple CNAME UPSERT"),
        "{why}"
    );
    r53.change_resource_record_sets().hosted_zone_id(&zone).change_batch(swap(&alias, &cname)).send().await.unwrap();
    let (r, told) = run(&deps).await;
    assert_eq!((r["ready"].clone(), told.len()), (json!(true), 1), "ready again, told once: {r}");

    // The DR region's manual snapshots fill up: no room for the next copy or a restore's.
    let west = moto.rds(DR).await;
    let filler: Vec<String> = (0..95).map(|i| format!("filler-{i}")).collect();
    for id in &filler {
        west.create_db_snapshot().db_instance_identifier("seed").db_snapshot_identifier(id).send().await.unwrap();
    }
    let (r, told) = run(&deps).await;
    assert_eq!(told.len(), 1, "one notice when it breaks: {told:?}");
    let (l, why) = level(&r, "snapshot-quota");
    assert_eq!(l, "blocked", "{r}");
    assert!(
        why.starts_with(
            "96 of 100 manual instance snapshots used in us-west-2: 4 left for copies and restores: delete"
        ),
        "read from DescribeAccountAttributes' ManualSnapshots: {why}"
    );
    for id in &filler {
        west.delete_db_snapshot().db_snapshot_identifier(id).send().await.unwrap();
    }
    let (r, told) = run(&deps).await;
    assert_eq!((r["ready"].clone(), told.len()), (json!(true), 1), "ready again, told once: {r}");

    // The security group a restore would put the database in is deleted.
    ec2.delete_security_group().group_id(&sg).send().await.unwrap();
    let (r, _) = run(&deps).await;
    assert_eq!(
        level(&r, "restore-security-groups"),
        (
            "blocked",
            format!("security group {sg} not found in us-west-2: create it or set drill.restore.security_groups")
                .as_str()
        ),
        "{r}"
    );

    // The replica is promoted outside Lifeboat: it no longer holds the source's data as it comes.
    west.promote_read_replica().db_instance_identifier("orders-replica").send().await.expect("promote");
    let (r, _) = run(&deps).await;
    let (l, why) = level(&r, "target");
    assert_eq!(l, "blocked");
    assert!(why.starts_with("orders-replica no longer replicates from orders-prod"), "{why}");

    // The recoverability report carries the verdict.
    let drill = dr_drill::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    let report = dr_drill::handle(&drill, json!({"report": true}), chrono::Utc::now()).await.expect("report");
    let text = report["text"].as_str().unwrap_or_default();
    assert!(text.contains("orders-prod: ready: NO — orders-replica no longer replicates from orders-prod"), "{text}");
}

/// `dns.mode: routing-control`: readiness reads the controls at a cluster endpoint as the
/// failover would; the controls already flipped are a warning, no endpoint answering blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_controls_are_read_where_the_failover_would_and_a_silent_cluster_blocks() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, _inbox) = topic_with_queue(&moto, "us-east-1").await;
    let zone = orders_with_replica(&moto).await;
    let (east, west) = (routing_control("east"), routing_control("west"));
    let seed = |east_state: &str, west_state: &str| json!({"controls": [{"arn": east, "state": east_state}, {"arn": west, "state": west_state}]});
    moto.post("/_lifeboat/arc", &seed("On", "Off"));
    let yaml = orders_failover_yaml(&format!(
        "      dns:\n        zone_id: {zone}\n        record: db.orders.internal\n        mode: routing-control\n        routing_controls:\n          on: {west}\n          off: {east}\n          cluster_endpoints: [{{ region: eu-west-1, url: \"{}\" }}]\n",
        moto.endpoint
    ));
    let sdk = moto.sdk("us-east-1").await;
    let deps = rpo_monitor::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);

    let (r, _) = run(&deps).await;
    assert_eq!(
        level(&r, "routing-controls"),
        ("ok", "west Off, east On, read at the eu-west-1 cluster endpoint: the failover can flip them"),
        "{r}"
    );
    moto.post("/_lifeboat/arc", &seed("Off", "On"));
    let (r, _) = run(&deps).await;
    assert_eq!(level(&r, "routing-controls"), ("warning", "west On, east Off: traffic already goes to the target"));
    moto.post("/_lifeboat/arc", &seed("On", "Off"));

    // The cluster's only endpoint is in a region that is down: the switch would fail.
    moto.post("/_lifeboat/outage", &json!({"regions": ["eu-west-1"]}));
    let (r, _) = run(&deps).await;
    let (l, why) = level(&r, "routing-controls");
    assert_eq!(l, "blocked", "{r}");
    assert!(why.starts_with("no ARC cluster endpoint answered"), "{why}");
    assert_eq!(r["ready"], false);
    moto.post("/_lifeboat/outage", &json!({}));
    assert_eq!(level(&run(&deps).await.0, "routing-controls").0, "ok");
}

/// A global switchover is ready only while its target is a secondary of an available global
/// cluster; then the role's simulation covers the switchover on that global cluster's own ARN.
/// The global database `ledger`: ledger-east its writer, ledger-west (in the DR region) its
/// secondary; and its config entry, a global switchover to ledger-west.
async fn ledger_global(moto: &Moto) -> String {
    let east = moto.rds("us-east-1").await;
    east.create_global_cluster()
        .global_cluster_identifier("ledger")
        .engine("aurora-postgresql")
        .send()
        .await
        .expect("global cluster");
    for (region, id) in [("us-east-1", "ledger-east"), (DR, "ledger-west")] {
        let mut create = moto
            .rds(region)
            .await
            .create_db_cluster()
            .db_cluster_identifier(id)
            .engine("aurora-postgresql")
            .global_cluster_identifier("ledger");
        if region == "us-east-1" {
            create = create.master_username("lifeboat").master_user_password("correct-horse-battery");
        }
        create.send().await.unwrap_or_else(|e| panic!("{id}: {e:?}"));
    }
    format!(
        "  - name: ledger\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:cluster:ledger-east\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover:\n      strategy: global-switchover\n      target: arn:aws:rds:{DR}:{ACCOUNT}:cluster:ledger-west\n      approval: required\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_switchover_needs_its_target_in_the_global_cluster() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, _inbox) = topic_with_queue(&moto, "us-east-1").await;
    let yaml = format!("databases:\n{}", ledger_global(&moto).await);
    let sdk = moto.sdk("us-east-1").await;
    let mut deps = rpo_monitor::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    let statements = template_statements("FailoverStepsFunction", "us-east-1");
    deps.steps_role = Some(role_with(&moto, "lifeboat-failover-steps", &statements).await);

    // The run completes and writes the datapoint the alarm watches, making only calls that
    // rpo-monitor's role allows: DescribeGlobalClusters among them (on AWS, without it, the run was
    // AccessDenied and wrote nothing).
    moto.set_faults(&[]);
    let (verdicts, points) = run_all(&deps).await;
    let called = calls_allowed_by_rpo_monitors_role(&moto);
    assert!(called.contains(&"rds:DescribeGlobalClusters".to_owned()), "{called:?}");
    assert_eq!(points, [(Some("ledger".to_owned()), 1), (None, 1)], "{verdicts:?}");
    let r = &verdicts[0].1;
    assert_eq!(level(r, "global-cluster"), ("ok", "a secondary of ledger, which is available"), "{r}");
    assert_eq!(level(r, "permissions"), ("ok", "the failover's role may make all 1 calls that move the database"));
    let trimmed: Vec<_> = statements.iter().filter(|s| s["Sid"] != "MoveTheDatabase").cloned().collect();
    role_with(&moto, "lifeboat-failover-steps", &trimmed).await;
    let (r, _) = run(&deps).await;
    let (_, why) = level(&r, "permissions");
    assert!(
        why.contains(&format!("rds:SwitchoverGlobalCluster on arn:aws:rds::{ACCOUNT}:global-cluster:ledger")),
        "{why}"
    );

    // The secondary leaves the global cluster: nothing to switch over to.
    moto.rds(DR)
        .await
        .remove_from_global_cluster()
        .global_cluster_identifier("ledger")
        .db_cluster_identifier(format!("arn:aws:rds:{DR}:{ACCOUNT}:cluster:ledger-west"))
        .send()
        .await
        .expect("remove from global cluster");
    let (r, _) = run(&deps).await;
    let (l, why) = level(&r, "global-cluster");
    assert_eq!(l, "blocked", "{r}");
    assert!(
        why.ends_with(
            "is in no global cluster: nothing to switch over to; add it as a secondary or change failover.target"
        ),
        "{why}"
    );
}

/// One database whose facts can't be read doesn't stop the others': RDS refuses the global
/// database's DescribeGlobalClusters (as AWS did when rpo-monitor's role lacked it), then throttles
/// every read of the replica. Each time the failing database is blocked, saying what it could not
/// read and what to do, the other gets its verdict, and every datapoint is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_database_that_cannot_be_read_is_blocked_and_the_others_are_still_checked() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let zone = orders_with_replica(&moto).await;
    let ledger = ledger_global(&moto).await;
    let yaml = format!(
        "{}{ledger}",
        orders_failover_yaml(&format!("      dns: {{ zone_id: {zone}, record: db.orders.internal }}\n"))
    );
    let sdk = moto.sdk("us-east-1").await;
    let deps = rpo_monitor::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    let verdict = |verdicts: &[(String, Value)], name: &str| {
        verdicts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no verdict for {name}"))
    };

    let (verdicts, points) = run_all(&deps).await;
    assert_eq!(
        points,
        [(Some("orders-prod".to_owned()), 1), (Some("ledger".to_owned()), 1), (None, 1)],
        "{verdicts:?}"
    );

    moto.set_faults(&[("DescribeGlobalClusters", "ledger", "AccessDenied")]);
    let (verdicts, points) = run_all(&deps).await;
    assert_eq!(
        points,
        [(Some("orders-prod".to_owned()), 1), (Some("ledger".to_owned()), 0), (None, 0)],
        "{verdicts:?}"
    );
    let orders = verdict(&verdicts, "orders-prod");
    assert_eq!((orders["ready"].clone(), level(&orders, "target").0), (json!(true), "ok"), "{orders}");
    let ledger = verdict(&verdicts, "ledger");
    assert_eq!(ledger["ready"], false, "{ledger}");
    let (l, why) = level(&ledger, "readable");
    assert_eq!(l, "blocked");
    assert!(
        why.starts_with("readiness could not read what a failover needs, so it is unknown: rds:DescribeGlobalClusters"),
        "{why}"
    );
    assert!(
        why.contains("rds:DescribeGlobalClusters: AccessDenied: injected by the test: AccessDenied; grant"),
        "{why}"
    );
    assert!(why.ends_with("grant that read to rpo-monitor's role (template.yaml, RpoMonitorFunction)"), "{why}");
    let kept = lifeboat_core::aws::incidents::IncidentStore::new(&sdk, &table).readiness("ledger").await.unwrap();
    assert!(kept.is_some_and(|(s, _)| s.starts_with("ready: NO — readiness could not read")), "kept for preflight");

    // Now the other way round: every read of orders' replica is throttled (the SDK's retries too).
    moto.set_faults(&[("DescribeDBInstances", "orders-replica", "Throttling")]);
    let (verdicts, points) = run_all(&deps).await;
    assert_eq!(
        points,
        [(Some("orders-prod".to_owned()), 0), (Some("ledger".to_owned()), 1), (None, 0)],
        "{verdicts:?}"
    );
    let orders = verdict(&verdicts, "orders-prod");
    let (l, why) = level(&orders, "readable");
    assert_eq!(l, "blocked");
    assert!(
        why.contains("rds:DescribeDBInstances") && why.contains("the next run (every 30 minutes) tries again"),
        "{why}"
    );
    assert_eq!(level(&verdict(&verdicts, "ledger"), "global-cluster").0, "ok");

    moto.set_faults(&[]);
    let (_, points) = run_all(&deps).await;
    assert_eq!(points, [(Some("orders-prod".to_owned()), 1), (Some("ledger".to_owned()), 1), (None, 1)]);
    let subjects: Vec<String> = notices(&moto, "us-east-1", &inbox).await.into_iter().map(|n| n.subject).collect();
    assert_eq!(
        subjects,
        [
            "[P2] ledger: NOT ready to fail over",
            // One run: orders-prod stops being ready, ledger is again: one notice says both.
            "[P2] orders-prod NOT ready to fail over, ledger ready again",
            "[P3] orders-prod: ready to fail over again"
        ],
        "one notice per run that changed something"
    );
}

/// A restore from a DR copy under a customer managed key needs the key's own policy to let the
/// failover's role use it: KMS gives an IAM policy effect only where the key policy allows it.
/// The default key policy (the account's root statement) leaves it to the role's IAM policy: ok.
/// A key policy that names neither the account nor the role blocks, saying what to add; one that
/// names the role itself is ok again. rpo-monitor's role allows each call it made (GetKeyPolicy).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dr_key_whose_policy_ignores_iam_policies_blocks_the_restore() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, _inbox) = topic_with_queue(&moto, "us-east-1").await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db"}));
    let dr_key = kms_key(&moto, DR).await;
    dr_copies(&moto, DR, "orders-prod", false, &[("lifeboat-orders-prod-1", chrono::Utc::now())]).await;
    let yaml = format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod\n    tier: non-production\n    \
         rpo: 1h\n    rto: 4h\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{dr_key}\" }}\n    failover:\n      \
         strategy: restore-latest-copy\n      approval: auto\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n"
    );
    let sdk = moto.sdk("us-east-1").await;
    let mut deps = rpo_monitor::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    let statements = template_statements("FailoverStepsFunction", "us-east-1");
    let role = role_with(&moto, "lifeboat-failover-steps", &statements).await;
    deps.steps_role = Some(role.clone());

    moto.set_faults(&[]); // counts calls from here: rpo-monitor's alone
    let (r, _) = run(&deps).await;
    assert_eq!(
        level(&r, "key-policy"),
        (
            "ok",
            format!("the key policy of {dr_key} lets the account's IAM policies allow a restore's use of it").as_str()
        ),
        "{r}"
    );
    assert_eq!(level(&r, "permissions").0, "ok", "{r}");
    assert!(calls_allowed_by_rpo_monitors_role(&moto).contains(&"kms:GetKeyPolicy".to_owned()));

    // Someone replaces the key policy with one for a key administrator alone.
    let kms = aws_sdk_kms::Client::new(&moto.sdk(DR).await);
    let put = |statements: Value| {
        let kms = kms.clone();
        let key = dr_key.clone();
        async move {
            let doc = json!({"Version": "2012-10-17", "Statement": statements});
            kms.put_key_policy()
                .key_id(key)
                .policy_name("default")
                .policy(doc.to_string())
                .bypass_policy_lockout_safety_check(true)
                .send()
                .await
                .expect("put key policy");
        }
    };
    let admin = json!({"Sid": "KeyAdministration", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:role/key-admin")}, "Action": "kms:*", "Resource": "*"});
    put(json!([admin])).await;
    let (r, told) = run(&deps).await;
    assert_eq!(r["ready"], false, "{r}");
    assert_eq!(told.len(), 1, "{told:?}");
    let (l, why) = level(&r, "key-policy");
    assert_eq!(l, "blocked", "{r}");
    assert!(
        why.starts_with(&format!(
            "the key policy of {dr_key} neither allows the failover's role kms:CreateGrant, kms:DescribeKey nor lets the account's IAM policies allow it"
        )),
        "{why}"
    );
    assert!(
        why.ends_with(&format!(
            "add the default key policy's statement for arn:aws:iam::{ACCOUNT}:root, or one allowing {role} kms:CreateGrant, kms:DescribeKey (aws kms put-key-policy --policy-name default)"
        )),
        "{why}"
    );

    // A statement for the failover's role itself, through RDS only, as a key administrator writes it.
    let for_role = json!({"Sid": "RestoresThroughRds", "Effect": "Allow", "Principal": {"AWS": role},
        "Action": ["kms:CreateGrant", "kms:DescribeKey"], "Resource": "*",
        "Condition": {"StringLike": {"kms:ViaService": "rds.*.amazonaws.com"}}});
    put(json!([admin, for_role])).await;
    let (r, told) = run(&deps).await;
    assert_eq!((r["ready"].clone(), told.len()), (json!(true), 1), "ready again, told once: {r}");
    assert_eq!(
        level(&r, "key-policy"),
        ("ok", format!("the key policy of {dr_key} allows the failover's role what a restore needs").as_str())
    );
}

/// The emulator's simulator with a key policy as `ResourcePolicy` follows KMS's rule: the
/// account's statement lets the role's IAM policy decide; without it (or one for the role) an IAM
/// Allow has no effect; a statement for the role allows without one. (Readiness itself evaluates
/// key policies in `readiness::key_policy_says`: on AWS the simulator takes a resource policy only
/// with an IAM user as `CallerArn`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulators_simulator_gives_an_iam_allow_effect_only_where_the_key_policy_does() {
    use aws_sdk_iam::types::PolicyEvaluationDecisionType as D;
    let moto = Moto::start();
    let key = format!("arn:aws:kms:{DR}:{ACCOUNT}:key/dr");
    let allow = json!({"Effect": "Allow", "Action": ["kms:CreateGrant"], "Resource": key});
    let granted = role_with(&moto, "granted", &[allow]).await;
    let bare =
        role_with(&moto, "bare", &[json!({"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"})]).await;
    let iam = aws_sdk_iam::Client::new(&moto.sdk("us-east-1").await);
    let decide = |role: String, statement: Value| {
        let (iam, key) = (iam.clone(), key.clone());
        async move {
            let policy = json!({"Version": "2012-10-17", "Statement": [statement]}).to_string();
            let out = iam
                .simulate_principal_policy()
                .policy_source_arn(role)
                .action_names("kms:CreateGrant")
                .resource_arns(key)
                .resource_policy(policy)
                .send()
                .await
                .expect("simulate");
            out.evaluation_results()[0].eval_decision().clone()
        }
    };
    let stmt = |principal: &str| json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "kms:*", "Resource": "*"});
    let root = format!("arn:aws:iam::{ACCOUNT}:root");
    assert_eq!(decide(granted.clone(), stmt(&root)).await, D::Allowed, "the default key policy: IAM decides");
    assert_eq!(decide(bare.clone(), stmt(&root)).await, D::ImplicitDeny, "no IAM Allow");
    let admin = format!("arn:aws:iam::{ACCOUNT}:role/key-admin");
    assert_eq!(
        decide(granted.clone(), stmt(&admin)).await,
        D::ImplicitDeny,
        "an IAM Allow without the key policy's leave"
    );
    assert_eq!(decide(bare.clone(), stmt(&bare)).await, D::Allowed, "the key policy names the role");
    let deny = json!({"Effect": "Deny", "Principal": "*", "Action": "kms:CreateGrant", "Resource": "*"});
    assert_eq!(decide(granted, deny).await, D::ExplicitDeny);
}

/// The emulator's calls since its counts were last reset, by IAM's name for them.
fn calls_by_api(moto: &Moto) -> std::collections::BTreeMap<String, u64> {
    let counts = moto.fault_counts();
    let calls = counts["calls"].as_object().expect("calls counted");
    calls
        .iter()
        .map(|(k, n)| {
            let (service, op) = k.split_once(':').expect("service:operation");
            let prefix = match service {
                "monitoring" => "cloudwatch",
                "trentservice" => "kms",
                other => other,
            };
            (format!("{prefix}:{op}"), n.as_u64().unwrap_or(0))
        })
        .collect()
}

/// Thirty databases sharing one DR key, one subnet group and the approval key: a run reads each
/// shared thing once, not once per database (the key's state, the group, the parameter, the
/// region's snapshots and the offering; one simulation of the failover role for all thirty; the
/// table in one batch). Breaking the shared subnet group is one notice that counts them, not
/// thirty; mending it one more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_sharing_resources_reads_each_once_and_one_cause_is_one_notice() {
    const FLEET: usize = 30;
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db"}));
    approval_key(&moto, "us-east-1", "local-approval-key-0123456789abcdef-0123456789").await;
    let dr_key = kms_key(&moto, DR).await;
    let names: Vec<String> = (1..=FLEET).map(|i| format!("fleet-{i:02}")).collect();
    let mut yaml = String::from("databases:\n");
    for name in &names {
        dr_copies(&moto, DR, name, false, &[(&format!("lifeboat-{name}-1"), chrono::Utc::now())]).await;
        yaml.push_str(&format!(
            "  - name: {name}\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}\n    tier: production\n    rpo: 1h\n    \
             rto: 30m\n    copy_to: [{{ region: {DR}, kms_key: \"{dr_key}\" }}]\n    failover:\n      \
             strategy: reboot-multi-az\n      approval: required\n    \
             drill:\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n"
        ));
    }
    let sdk = moto.sdk("us-east-1").await;
    // Thirty databases are past what an SSM parameter holds: the document is an S3 object.
    let s3 = aws_sdk_s3::Client::new(&sdk);
    s3.create_bucket().bucket("lifeboat-config").send().await.expect("bucket");
    let body = aws_sdk_s3::primitives::ByteStream::from(yaml.into_bytes());
    s3.put_object().bucket("lifeboat-config").key("lifeboat.yaml").body(body).send().await.expect("config");
    let object = ConfigSource::Object { bucket: "lifeboat-config".into(), key: "lifeboat.yaml".into() };
    let mut deps = rpo_monitor::Deps::new(ConfigCache::new(object, &sdk, CONFIG_TTL), &sdk, &table, &topic);
    deps.approval_key_param = Some(APPROVAL_KEY_PARAM.to_owned());
    let statements = template_statements("FailoverStepsFunction", "us-east-1");
    deps.steps_role = Some(role_with(&moto, "lifeboat-failover-steps", &statements).await);

    let (verdicts, _) = run_all(&deps).await;
    assert_eq!(verdicts.len(), FLEET);
    for (name, r) in &verdicts {
        assert_eq!(r["ready"], true, "{name}: {r}");
        assert_eq!(level(r, "permissions").0, "ok", "{r}");
        assert_eq!(level(r, "restore-instance-class").0, "ok", "the engine from the listing: {r}");
    }
    assert!(notices(&moto, "us-east-1", &inbox).await.is_empty(), "ready is the quiet default");

    // A steady run: each shared thing read once, the table in one batch and no GetItem.
    moto.set_faults(&[]);
    let (verdicts, _) = run_all(&deps).await;
    assert!(verdicts.iter().all(|(_, r)| r["ready"] == true));
    let calls = calls_by_api(&moto);
    let once = [
        "kms:DescribeKey",
        "ssm:GetParameter",
        "rds:DescribeDBSubnetGroups",
        "iam:SimulatePrincipalPolicy",
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBClusterSnapshots",
        "rds:DescribeAccountAttributes",
        "rds:DescribeOrderableDBInstanceOptions",
        "dynamodb:BatchGetItem",
    ];
    for api in once {
        assert_eq!(calls.get(api), Some(&1), "{api} once for {FLEET} databases: {calls:?}");
    }
    assert_eq!(calls.get("dynamodb:GetItem"), None, "no table read per database: {calls:?}");
    // Nothing changed: only the run's own checked-at is written.
    assert_eq!(calls.get("dynamodb:BatchWriteItem"), Some(&1), "{calls:?}");
    assert_eq!(calls.values().sum::<u64>(), 10, "10 calls for {FLEET} databases: {calls:?}");

    // The shared subnet group goes: thirty databases stop being ready, for one reason, in one notice.
    moto.rds(DR).await.delete_db_subnet_group().db_subnet_group_name("dr-db").send().await.expect("delete group");
    moto.set_faults(&[]);
    let r = rpo_monitor::handle(&deps, json!({"readiness": true}), chrono::Utc::now()).await.expect("the run");
    assert!(r.readiness.iter().all(|v| !v.ready), "{:?}", r.readiness);
    assert_eq!(r.published, ["[P2] 30 databases NOT ready to fail over: restore-subnet-group"]);
    let calls = calls_by_api(&moto);
    assert_eq!(calls.get("rds:DescribeDBSubnetGroups"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("sns:Publish"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("dynamodb:GetItem"), None, "{calls:?}");
    let said = notices(&moto, "us-east-1", &inbox).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].text.contains(
            "\n30 databases stopped being ready: restore-subnet-group: subnet group dr-db not found in us-west-2: \
             create it or set drill.restore.subnet_group\n  fleet-01, fleet-02,"
        ),
        "{}",
        said[0].text
    );
    assert!(said[0].text.contains("fleet-10, and 20 more\n"), "{}", said[0].text);

    // Told once: the next run has nothing new to say; mended, one notice says so.
    let again = rpo_monitor::handle(&deps, json!({"readiness": true}), chrono::Utc::now()).await.expect("the run");
    assert!(again.published.is_empty(), "{:?}", again.published);
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db"}));
    let mended = rpo_monitor::handle(&deps, json!({"readiness": true}), chrono::Utc::now()).await.expect("the run");
    assert_eq!(mended.published, ["[P3] 30 databases ready to fail over again"]);
    assert_eq!(notices(&moto, "us-east-1", &inbox).await.len(), 1);
    let kept = lifeboat_core::aws::incidents::IncidentStore::new(&sdk, &table).readiness("fleet-07").await.unwrap();
    assert!(kept.is_some_and(|(s, _)| s.starts_with("ready: yes")), "the verdict kept for preflight");
}

/// A database with data checks: readiness simulates the data validator's role on its logins, ok
/// while it may read them, a warning (the recovery still works; its checks would hold the
/// cut-over) naming the secret when it may not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validate_secret_the_data_validator_cannot_read_is_a_warning() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, _inbox) = topic_with_queue(&moto, "us-east-1").await;
    let secret = format!("arn:aws:secretsmanager:{DR}:{ACCOUNT}:secret:lifeboat-validator-orders-AbCdEf");
    let yaml = format!(
        "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders\n    tier: production\n    rpo: 5m\n    rto: 30m\n    validate:\n      connect: {{ secret: \"{secret}\", database: orders }}\n      checks:\n        - {{ name: users exist, sql: \"select count(*) from users\", expect: \">= 1\" }}\n"
    );
    let sdk = moto.sdk("us-east-1").await;
    let mut deps = rpo_monitor::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    let statements = template_statements("DataValidatorFunction", "us-east-1");
    deps.validator_role = Some(role_with(&moto, "lifeboat-data-validator", &statements).await);
    let (r, _) = run(&deps).await;
    assert_eq!(level(&r, "data-checks"), ("ok", "the data validator may read the logins its checks use"), "{r}");

    // Its policy loses the logins: a warning naming the secret and what to allow.
    let trimmed: Vec<_> = statements.iter().filter(|s| s["Sid"] != "ReadLogins").cloned().collect();
    role_with(&moto, "lifeboat-data-validator", &trimmed).await;
    let (r, _) = run(&deps).await;
    let (level_now, why) = level(&r, "data-checks");
    assert_eq!(level_now, "warning", "{r}");
    assert!(why.contains(&secret) && why.contains("secretsmanager:GetSecretValue"), "{why}");
}
