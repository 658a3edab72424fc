//! Each recovery strategy's steps against moto, in-process (tests/failover.rs runs the whole state
//! machine): preflight → act → status → verify, and act run twice, as a Lambda retry would. The
//! strict moto (scripts/moto_server.py) refuses what AWS refuses: promoting a non-replica, a forced
//! failover of a single-AZ instance, a point-in-time after the latest restorable time.

use std::time::Duration;

use chrono::Utc;
use failover_steps::{handle, Deps};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::rds::Rds;
use lifeboat_core::aws::recovery::Acted;
use lifeboat_core::aws::ConfigCache;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::failover::steps::Execution;
use lifeboat_core::failover::{classify, Start};
use lifeboat_core::incident::{Entry, Incident};
use lifeboat_core::restore::{Origin, RestoreSpec, Settings, Shape};
use lifeboat_tests::*;
use serde_json::{json, Value};

struct Bed {
    moto: Moto,
    deps: Deps,
    store: IncidentStore,
    table: String,
    config: ConfigCache,
}

async fn bed(yaml: &str) -> Bed {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let sdk = moto.sdk("us-east-1").await;
    let deps = Deps::new(config_in_ssm(&moto, yaml, Duration::ZERO).await, &sdk, &table);
    let store = IncidentStore::new(&sdk, &table);
    let config = config_in_ssm(&moto, yaml, Duration::ZERO).await;
    Bed { moto, deps, store, table, config }
}

/// A person's request opens the incident; the execution's input as the trigger would start it,
/// and, where the config demands one, an approval recorded as Lifeboat records it.
async fn requested(b: &Bed, request: Value) -> Execution {
    let exec = opened(b, request).await;
    if exec.approval_required {
        approval_recorded(&b.store, &exec.incident_id, "tester").await;
    }
    exec
}

/// The incident the request opens and the execution's input, nothing decided yet.
async fn opened(b: &Bed, request: Value) -> Execution {
    let config = b.config.get().await.unwrap();
    let Start::Failover(mut reqs) = classify(&config, &request, Utc::now()).unwrap() else { panic!("ignored") };
    let req = reqs.remove(0);
    let db = config.database_named(&req.database).unwrap();
    let incident = Incident::declare(db, req.kind, Utc::now(), &req.by, &req.reason, &req.seed);
    b.store.open(&incident, &Entry::new(Utc::now(), &req.by, "seen", "seen:t")).await.unwrap();
    Execution::new(db, &req, &incident.id, Duration::from_secs(1))
}

async fn step(b: &Bed, action: &str, exec: &Execution) -> Result<Execution, LifeboatError> {
    handle(&b.deps, json!({"action": action, "execution": exec}), Utc::now()).await
}

/// preflight → act → status (until available) → verify: the recovered state and the incident.
async fn recover(b: &Bed, mut exec: Execution) -> (Execution, Value) {
    exec = step(b, "preflight", &exec).await.expect("preflight");
    let acted = step(b, "act", &exec).await.expect("act");
    // The same step again, as a Lambda retry runs it: nothing new happens, the same result.
    let again = step(b, "act", &exec).await.expect("act again");
    assert_eq!(again.recovery, acted.recovery);
    exec = acted;
    // A restored cluster stays `creating` a few seconds in our moto, as a real restore does.
    for _ in 0..60 {
        exec = step(b, "status", &exec).await.expect("status");
        if exec.status.as_ref().is_some_and(|s| s.available) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    exec = step(b, "verify", &exec).await.expect("verify");
    let item = raw_item(&b.moto, "us-east-1", &b.table, &format!("incident#{}", exec.incident_id)).await;
    (exec, item)
}

fn db(name: &str, source: &str, tier: &str, failover: &str) -> String {
    format!(
        "  - name: {name}\n    source: arn:aws:rds:{source}\n    tier: {tier}\n    rpo: 1h\n    rto: 4h\n    failover:\n{failover}"
    )
}

async fn instances(moto: &Moto, region: &str) -> Vec<(String, Vec<(String, String)>, bool)> {
    let out = moto.rds(region).await.describe_db_instances().send().await.unwrap();
    out.db_instances()
        .iter()
        .map(|i| {
            let tags =
                i.tag_list().iter().map(|t| (t.key().unwrap_or("").into(), t.value().unwrap_or("").into())).collect();
            (i.db_instance_identifier().unwrap_or("").to_owned(), tags, i.publicly_accessible().unwrap_or(true))
        })
        .collect()
}

#[tokio::test]
async fn restore_latest_copy_restores_the_newest_dr_copy_once_into_a_private_tagged_instance() {
    let key = "arn:aws:kms:us-west-2:123456789012:key/1f2e3d4c-0000-4000-8000-000000000009";
    let yaml = format!(
        "databases:\n{}    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 3, min_keep: 1 }}\n",
        db(
            "reports",
            &format!("us-east-1:{ACCOUNT}:db:reports"),
            "non-production",
            "      strategy: restore-latest-copy\n      approval: auto\n      restore: { instance_class: db.t3.micro, subnet_group: dr-db }\n"
        )
    );
    let b = bed(&yaml).await;
    b.moto.post("/_lifeboat/rds/subnet-group", &json!({"region": "us-west-2", "name": "dr-db"}));
    let now = Utc::now();
    let copies = [
        ("lifeboat-reports-old", now - chrono::Duration::days(2)),
        ("lifeboat-reports-new", now - chrono::Duration::days(1)),
    ];
    dr_copies(&b.moto, "us-west-2", "reports", false, &copies).await;
    let newest = (now - chrono::Duration::days(1)).format("%Y-%m-%dT%H:%M:%S").to_string();
    let exec = requested(&b, json!({"database": "reports", "reason": "instance lost", "requested_by": "t"})).await;
    assert!(!exec.approval_required, "non-production, approval auto, the configured strategy");
    let (exec, item) = recover(&b, exec).await;
    let p = exec.preflight.as_ref().unwrap();
    assert!(p.snapshot.as_deref().unwrap().ends_with(":lifeboat-reports-new"), "{p:?}");
    assert_eq!(item["status"], "resolved", "{item}");
    let recovered = item["recovered_to"].as_str().unwrap_or_default();
    assert!(recovered.starts_with(&newest[..16]), "the newest copy's restore point, {newest}: {item}");
    let restored: Vec<_> =
        instances(&b.moto, "us-west-2").await.into_iter().filter(|i| i.0.starts_with("lf-")).collect();
    assert_eq!(restored.len(), 1, "{restored:?}");
    // moto ignores PubliclyAccessible; that restores ask for a private instance is checked
    // against mocked RDS in shared/src/aws/recovery.rs.
    let (id, tags, _) = &restored[0];
    assert_eq!(id, &exec.recovery.as_ref().unwrap().id);
    assert!(tags.contains(&("lifeboat:incident".into(), exec.incident_id.clone())), "{tags:?}");

    // After ransomware the newest copy may hold the attacker's work: a person names a time, and
    // the plan takes the newest copy at or before it (a time before every copy finds none).
    let before = (now - chrono::Duration::hours(36)).to_rfc3339();
    let request = json!({"database": "reports", "reason": "encrypted by ransomware at 02:00", "requested_by": "t", "restore_time": before});
    let exec = requested(&b, request).await;
    let planned = step(&b, "preflight", &exec).await.expect("preflight");
    let p = planned.preflight.as_ref().unwrap();
    assert!(p.snapshot.as_deref().unwrap().ends_with(":lifeboat-reports-old"), "{p:?}");
    assert!(p.loss_basis.contains("chosen: the newest DR copy at or before"), "{p:?}");
    let mut too_early = exec.clone();
    too_early.restore_time = Some(now - chrono::Duration::days(3));
    let err = step(&b, "preflight", &too_early).await.unwrap_err();
    assert!(err.to_string().contains("no available Lifeboat DR copy taken at or before"), "{err}");
}

#[tokio::test]
async fn point_in_time_restores_a_new_instance_as_of_the_time_and_refuses_a_time_not_yet_restorable() {
    let yaml = format!(
        "databases:\n{}",
        db(
            "orders",
            &format!("us-east-1:{ACCOUNT}:db:orders"),
            "production",
            "      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:123456789012:db:orders-replica\n      approval: required\n"
        )
    );
    let b = bed(&yaml).await;
    create_instance(&b.moto, "us-east-1", "orders").await;
    let at = (Utc::now() - chrono::Duration::minutes(2)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let exec = requested(
        &b,
        json!({"database": "orders", "reason": "bad migration", "requested_by": "t", "strategy": "point-in-time", "restore_time": at}),
    )
    .await;
    assert!(exec.approval_required);
    let (exec, item) = recover(&b, exec).await;
    assert_eq!(item["status"], "resolved", "{item}");
    assert_eq!(item["recovered_to"].as_str().map(|s| &s[..19]), Some(&at[..19]), "{item}");
    let new = &exec.recovery.as_ref().unwrap().id;
    assert!(instances(&b.moto, "us-east-1").await.iter().any(|i| &i.0 == new), "{new}");

    let restored: Vec<_> =
        instances(&b.moto, "us-east-1").await.into_iter().filter(|i| i.0.starts_with("lf-")).collect();
    assert_eq!(restored.len(), 1, "one restore, though act ran twice: {restored:?}");
    // The adapter refuses what RDS refuses: a point after the latest restorable time.
    let rds = Rds::new(&b.moto.sdk("us-east-1").await);
    let later = Utc::now() + chrono::Duration::hours(1);
    let too_late = RestoreSpec::new(
        "us-east-1",
        Shape::Instance,
        "lf-too-late",
        Origin::PointInTime { source: "orders".into(), time: later },
        Settings::default(),
        "t",
    );
    let err = rds.restore(&too_late).await.unwrap_err();
    assert!(err.to_string().contains("InvalidRestore"), "{err}");
}

#[tokio::test]
async fn aurora_failover_moves_the_writer_once_and_a_retry_does_not_fail_it_back() {
    let yaml = format!(
        "databases:\n{}",
        db(
            "catalog",
            &format!("us-east-1:{ACCOUNT}:cluster:catalog"),
            "production",
            "      strategy: aurora-failover\n      approval: required\n"
        )
    );
    let b = bed(&yaml).await;
    create_cluster(&b.moto, "us-east-1", "catalog").await;
    for id in ["catalog-1", "catalog-2"] {
        cluster_instance(&b.moto, "us-east-1", "catalog", id).await;
    }
    let writer = || async {
        let out =
            b.moto.rds("us-east-1").await.describe_db_clusters().db_cluster_identifier("catalog").send().await.unwrap();
        out.db_clusters()[0]
            .db_cluster_members()
            .iter()
            .find(|m| m.is_cluster_writer() == Some(true))
            .and_then(|m| m.db_instance_identifier().map(str::to_owned))
    };
    assert_eq!(writer().await.as_deref(), Some("catalog-1"));
    let exec = requested(&b, json!({"database": "catalog", "reason": "writer hung", "requested_by": "t"})).await;
    let (exec, item) = recover(&b, exec).await;
    assert_eq!(exec.preflight.as_ref().unwrap().before.as_deref(), Some("catalog-1"));
    assert_eq!(writer().await.as_deref(), Some("catalog-2"));
    assert_eq!(item["status"], "resolved", "{item}");
    assert_eq!(writer().await.as_deref(), Some("catalog-2"), "the repeated act did not fail back");
    let rds = Rds::new(&b.moto.sdk("us-east-1").await);
    let again = rds.failover_cluster("us-east-1", "catalog", None, Some("catalog-1")).await.unwrap();
    assert_eq!((again, writer().await.as_deref()), (Acted::AlreadyDone, Some("catalog-2")));
}

#[tokio::test]
async fn a_forced_failover_needs_multi_az_and_a_promoted_replica_is_promoted_once() {
    let yaml = format!(
        "databases:\n{}{}",
        db("single", &format!("us-east-1:{ACCOUNT}:db:single"), "non-production", "      strategy: reboot-multi-az\n      approval: auto\n"),
        db(
            "orders",
            &format!("us-east-1:{ACCOUNT}:db:orders"),
            "non-production",
            "      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:123456789012:db:orders-replica\n      approval: auto\n"
        ),
    );
    let b = bed(&yaml).await;
    create_instance(&b.moto, "us-east-1", "single").await;
    let exec = requested(&b, json!({"database": "single", "reason": "hung", "requested_by": "t"})).await;
    let err = step(&b, "preflight", &exec).await.unwrap_err();
    assert!(!err.is_retryable() && err.to_string().contains("not Multi-AZ"), "{err}");
    // Had it gone through, RDS (the strict moto) would have refused the call itself.
    let rds = Rds::new(&b.moto.sdk("us-east-1").await);
    let err = rds.reboot_with_failover("us-east-1", "single", None).await.unwrap_err();
    assert!(err.to_string().contains("InvalidParameterCombination"), "{err}");

    create_instance(&b.moto, "us-east-1", "orders").await;
    read_replica(&b.moto, "us-west-2", "orders-replica", &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:orders")).await;
    let exec = requested(&b, json!({"database": "orders", "reason": "primary lost", "requested_by": "t"})).await;
    let (exec, item) = recover(&b, exec).await;
    assert_eq!(item["status"], "resolved", "{item}");
    // RDS answers a second PromoteReadReplica "not a read replica": that is the promotion done,
    // when this failover asked for it before; otherwise someone else promoted it.
    let west = Rds::new(&b.moto.sdk("us-west-2").await);
    assert_eq!(west.promote("us-west-2", "orders-replica", false, true).await.unwrap(), Acted::AlreadyDone);
    let err = west.promote("us-west-2", "orders-replica", false, false).await.unwrap_err();
    assert!(!err.is_retryable() && err.to_string().contains("someone else"), "{err}");
    assert!(exec.recovery.is_some());
}

/// What the restored instance carries: (subnet group, security groups, parameter group, option
/// group, Multi-AZ, class).
async fn settings_of(moto: &Moto, region: &str, id: &str) -> (String, Vec<String>, String, String, bool, String) {
    let out = moto.rds(region).await.describe_db_instances().db_instance_identifier(id).send().await.unwrap();
    let i = &out.db_instances()[0];
    (
        i.db_subnet_group().and_then(|g| g.db_subnet_group_name()).unwrap_or("none").to_owned(),
        i.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id().map(str::to_owned)).collect(),
        i.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name()).unwrap_or("none").to_owned(),
        i.option_group_memberships().first().and_then(|g| g.option_group_name()).unwrap_or("none").to_owned(),
        i.multi_az().unwrap_or(false),
        i.db_instance_class().unwrap_or("none").to_owned(),
    )
}

#[tokio::test]
async fn a_point_in_time_restore_carries_the_sources_network_groups_class_and_multi_az() {
    let yaml = format!(
        "databases:\n{}",
        db(
            "ledger",
            &format!("us-east-1:{ACCOUNT}:db:ledger"),
            "production",
            "      strategy: reboot-multi-az\n      approval: required\n"
        )
    );
    let b = bed(&yaml).await;
    let rds = b.moto.rds("us-east-1").await;
    b.moto.post("/_lifeboat/rds/subnet-group", &json!({"region": "us-east-1", "name": "prod-db"}));
    rds.create_db_parameter_group()
        .db_parameter_group_name("ledger-pg")
        .db_parameter_group_family("postgres16")
        .description("rds.force_ssl=1, max_connections")
        .send()
        .await
        .unwrap();
    rds.create_option_group()
        .option_group_name("ledger-og")
        .engine_name("postgres")
        .major_engine_version("13")
        .option_group_description("the ledger's options")
        .send()
        .await
        .unwrap();
    rds.create_db_instance()
        .db_instance_identifier("ledger")
        .engine("postgres")
        .engine_version("13.4")
        .db_instance_class("db.r6g.large")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .allocated_storage(20)
        .db_subnet_group_name("prod-db")
        .vpc_security_group_ids("sg-0ledger")
        .db_parameter_group_name("ledger-pg")
        .option_group_name("ledger-og")
        .multi_az(true)
        .send()
        .await
        .unwrap();
    let source = settings_of(&b.moto, "us-east-1", "ledger").await;
    assert_eq!(
        source,
        (
            "prod-db".into(),
            vec!["sg-0ledger".into()],
            "ledger-pg".into(),
            "ledger-og".into(),
            true,
            "db.r6g.large".into()
        )
    );
    let at = (Utc::now() - chrono::Duration::minutes(2)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let exec = requested(
        &b,
        json!({"database": "ledger", "reason": "bad migration", "requested_by": "t", "strategy": "point-in-time", "restore_time": at}),
    )
    .await;
    let (exec, item) = recover(&b, exec).await;
    assert_eq!(item["status"], "resolved", "{item}");
    let restored = exec.recovery.as_ref().unwrap().id.clone();
    // RDS would have given it the default subnet group, security group, parameter group and
    // option group, single-AZ (our moto does too): it carries the source's instead.
    assert_eq!(settings_of(&b.moto, "us-east-1", &restored).await, source);
    // ...and the plan people approved said so.
    let plan = &exec.preflight.as_ref().unwrap().plan;
    for says in [
        "subnet group prod-db",
        "security groups sg-0ledger",
        "parameter group ledger-pg",
        "option group ledger-og",
        "Multi-AZ",
        "from the source ledger",
    ] {
        assert!(plan.contains(says), "{says}: {plan}");
    }
}

#[tokio::test]
async fn an_aurora_restore_gets_its_writer_only_once_the_cluster_is_available() {
    let yaml = format!(
        "databases:\n{}    copy_to:\n      - {{ region: us-west-2 }}\n",
        db(
            "catalog",
            &format!("us-east-1:{ACCOUNT}:cluster:catalog"),
            "non-production",
            "      strategy: restore-latest-copy\n      approval: auto\n      restore: { instance_class: db.r6g.large, subnet_group: dr-db, security_groups: [sg-0dr], cluster_parameter_group: catalog-cpg, parameter_group: catalog-pg }\n"
        )
    );
    let b = bed(&yaml).await;
    b.moto.post("/_lifeboat/rds/subnet-group", &json!({"region": "us-west-2", "name": "dr-db"}));
    let west = b.moto.rds("us-west-2").await;
    west.create_db_cluster_parameter_group()
        .db_cluster_parameter_group_name("catalog-cpg")
        .db_parameter_group_family("aurora-postgresql15")
        .description("catalog")
        .send()
        .await
        .unwrap();
    west.create_db_parameter_group()
        .db_parameter_group_name("catalog-pg")
        .db_parameter_group_family("aurora-postgresql15")
        .description("catalog writer")
        .send()
        .await
        .unwrap();
    dr_copies(&b.moto, "us-west-2", "catalog", true, &[("lifeboat-catalog-1", Utc::now())]).await;

    let exec = requested(&b, json!({"database": "catalog", "reason": "cluster lost", "requested_by": "t"})).await;
    let exec = step(&b, "preflight", &exec).await.expect("preflight");
    let spec = exec.preflight.as_ref().unwrap().restore.clone().expect("a restore planned");
    assert_eq!((spec.shape, spec.writer.as_deref()), (Shape::Aurora, Some(&*format!("{}-1", spec.id))));
    let acted = step(&b, "act", &exec).await.expect("act");
    // RDS (our moto) refuses an instance in a cluster still restoring, which is why act made none.
    let rds = Rds::new(&b.moto.sdk("us-west-2").await);
    assert_eq!(rds.create_writer(&spec).await.unwrap(), None, "not yet: the cluster is creating");
    let refused = west
        .create_db_instance()
        .db_instance_identifier("too-early")
        .db_cluster_identifier(&spec.id)
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .unwrap_err();
    assert!(format!("{refused:?}").contains("InvalidDBClusterStateFault"), "{refused:?}");
    let (exec, item) = recover(&b, acted).await;
    assert_eq!(item["status"], "resolved", "{item}");
    let writer = spec.writer.as_deref().unwrap();
    let out = west.describe_db_instances().db_instance_identifier(writer).send().await.unwrap();
    let w = &out.db_instances()[0];
    assert_eq!(
        (
            w.db_cluster_identifier(),
            w.db_instance_class(),
            w.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name())
        ),
        (Some(spec.id.as_str()), Some("db.r6g.large"), Some("catalog-pg"))
    );
    let c = west.describe_db_clusters().db_cluster_identifier(&spec.id).send().await.unwrap();
    let c = &c.db_clusters()[0];
    assert_eq!((c.db_cluster_parameter_group(), c.db_subnet_group()), (Some("catalog-cpg"), Some("dr-db")));
    assert!(exec.status.as_ref().unwrap().available);
}

#[tokio::test]
async fn a_dns_record_a_cname_upsert_cannot_change_is_refused_at_preflight_before_anything_moves() {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch};
    let b = bed("databases: []\n").await;
    let zone = hosted_zone(&b.moto, "orders.internal").await;
    // The record is an alias A record (to a load balancer, say): Route 53 refuses a CNAME there.
    let r53 = aws_sdk_route53::Client::new(&b.moto.sdk("us-east-1").await);
    let alias = alias_record("db.orders.internal");
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(alias).build().unwrap();
    r53.change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(ChangeBatch::builder().changes(change).build().unwrap())
        .send()
        .await
        .unwrap();
    let dns = lifeboat_core::aws::route53::Dns::new(&b.moto.sdk("us-east-1").await);
    let refused = dns.upsert_cname(&zone, "db.orders.internal", "orders-replica.x", 60, "t").await.unwrap_err();
    assert!(refused.to_string().contains("InvalidChangeBatch"), "our moto refuses as Route 53 does: {refused}");

    let yaml = format!(
        "databases:\n{}      dns: {{ zone_id: {zone}, record: db.orders.internal }}\n",
        db(
            "orders",
            &format!("us-east-1:{ACCOUNT}:db:orders"),
            "production",
            "      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:123456789012:db:orders-replica\n      approval: required\n"
        )
    );
    put_config(&b.moto, &yaml, aws_sdk_ssm::types::ParameterType::String).await;
    create_instance(&b.moto, "us-east-1", "orders").await;
    read_replica(&b.moto, "us-west-2", "orders-replica", &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:orders")).await;
    let exec = requested(&b, json!({"database": "orders", "reason": "primary lost", "requested_by": "t"})).await;
    let err = step(&b, "preflight", &exec).await.unwrap_err();
    assert!(!err.is_retryable() && err.to_string().contains("alias A record"), "{err}");
    let replica = b
        .moto
        .rds("us-west-2")
        .await
        .describe_db_instances()
        .db_instance_identifier("orders-replica")
        .send()
        .await
        .unwrap();
    assert!(replica.db_instances()[0].read_replica_source_db_instance_identifier().is_some(), "nothing was promoted");
}

/// An execution started by hand whose input says `approval_required: false` and carries an
/// "approval" moves nothing on a production database: the steps re-derive the need from the
/// config (the state machine's Choice then takes the Approval branch) and act only on a decision
/// Lifeboat recorded on the incident, by someone the config admits.
#[tokio::test]
async fn a_hand_made_execution_saying_no_approval_is_needed_moves_nothing_in_production() {
    let yaml = format!(
        "databases:\n{}",
        db(
            "orders",
            &format!("us-east-1:{ACCOUNT}:db:orders"),
            "production",
            "      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:123456789012:db:orders-replica\n      approval: { via: aws-identity, distinct_from_requester: true }\n"
        ),
    );
    let b = bed(&yaml).await;
    create_instance(&b.moto, "us-east-1", "orders").await;
    read_replica(&b.moto, "us-west-2", "orders-replica", &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:orders")).await;
    let exec = opened(&b, json!({"database": "orders", "reason": "trust me", "requested_by": "mallory"})).await;
    let incident = exec.incident_id.clone();
    let mut forged = serde_json::to_value(&exec).unwrap();
    forged["approval_required"] = json!(false);
    forged["approval"] = json!({"decision": "approve", "approver": "mallory"});
    let run = |action: &str, exec: &Value| handle(&b.deps, json!({"action": action, "execution": exec}), Utc::now());

    let planned = run("preflight", &forged).await.expect("preflight");
    assert!(planned.approval_required, "the config's answer, not the input's");
    let status = || async { b.store.get(&incident).await.unwrap().unwrap().status.to_string() };
    assert_eq!(status().await, "awaiting-approval");
    let mut acting = serde_json::to_value(&planned).unwrap();
    acting["approval_required"] = json!(false);
    acting["approval"] = json!({"decision": "approve", "approver": "mallory"});
    let err = run("act", &acting).await.unwrap_err();
    assert!(!err.is_retryable() && err.to_string().contains("Lifeboat recorded none"), "{err}");
    // Recorded, but by the requester: the two-person rule holds in the act step too.
    approval_recorded(&b.store, &incident, "mallory").await;
    let err = run("act", &acting).await.unwrap_err();
    assert!(err.to_string().contains("mallory requested this failover"), "{err}");

    let west = aws_sdk_rds::Client::new(&b.moto.sdk("us-west-2").await);
    let replica = west.describe_db_instances().db_instance_identifier("orders-replica").send().await.unwrap();
    let source = replica.db_instances()[0].read_replica_source_db_instance_identifier();
    assert!(source.is_some(), "the replica is still a replica: nothing moved");
    assert_eq!(status().await, "awaiting-approval", "nothing recovering");
}

/// A failover the trigger opens but can't start (refused for good: here the state machine is not
/// there) leaves no incident open that nothing runs: it is closed as failed, saying why, and a
/// later request opens a fresh one.
#[tokio::test]
async fn an_incident_whose_failover_cannot_start_is_not_left_open() {
    let yaml = format!(
        "databases:\n{}",
        db(
            "orders",
            &format!("us-east-1:{ACCOUNT}:db:orders"),
            "non-production",
            "      strategy: reboot-multi-az\n      approval: auto\n"
        ),
    );
    let b = bed(&yaml).await;
    let sdk = b.moto.sdk("us-east-1").await;
    let missing = format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:not-deployed");
    let trigger = failover_trigger::Deps::new(b.config, &sdk, &b.table, &missing, Duration::from_secs(1));
    let request = json!({"database": "orders", "reason": "hung", "requested_by": "arn:aws:sts::123456789012:assumed-role/oncall/alice"});
    let err = failover_trigger::handle(&trigger, request, Utc::now()).await.unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(b.store.open_for("orders").await.unwrap().is_none(), "nothing left open");
    let all = b.store.list_all().await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].status.to_string(), "failed");
    assert!(
        all[0].timeline.iter().any(|e| e.what.starts_with("could not start the failover")),
        "{:?}",
        all[0].timeline
    );
}
