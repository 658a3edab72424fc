//! After the failover, Aurora (issue 29): a global database's round trip, in-process against the
//! emulator (tests/after_failover.rs runs an instance's through the whole state machine). The
//! stack runs in us-west-2. us-east-1 goes down; `FailoverGlobalCluster` (AllowDataLoss) makes
//! ledger-west the writer and the failover records it as the active side. Re-protect waits for
//! us-east-1, then finds the old primary a secondary of the global database again: that is the
//! way back, built by nobody and left untouched. A failback is refused while the secondary lags,
//! then goes by `SwitchoverGlobalCluster` (no data loss), with the same approval, and the config
//! serves as written again. The emulator refuses a switchover with a member's region down, as
//! the API reference says it is only for healthy global databases.

use std::time::Duration;

use chrono::Utc;
use failover_steps::{handle, Deps};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::{ConfigCache, ConfigSource};
use lifeboat_core::config::failover::Strategy;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::failover::steps::Execution;
use lifeboat_core::failover::{classify, Start};
use lifeboat_core::incident::{Entry, Incident};
use lifeboat_tests::*;
use serde_json::{json, Value};

const DR: &str = "us-west-2";
const ENDPOINT_PARAM: &str = "/ledger/endpoint";

struct Bed {
    moto: Moto,
    steps: Deps,
    reprotect: reprotect::Deps,
    store: IncidentStore,
    config: ConfigCache,
    table: String,
    ssm: aws_sdk_ssm::Client,
    /// The database's active-side parameter.
    param: String,
    /// The config file.
    file: String,
}

/// The stack in us-west-2 with `name` protected by `strategy` from `source` to `target`,
/// approval required, the endpoint parameter, `reprotect: auto`, copies to us-west-2 and eu-west-1.
async fn bed(moto: Moto, name: &str, strategy: &str, source: &str, target: &str, extra: &str) -> Bed {
    let table = incidents_table(&moto, DR).await;
    let sdk = moto.sdk(DR).await;
    let yaml = format!(
        "databases:\n  - name: {name}\n    source: {source}\n    tier: production\n    rpo: 5m\n    rto: 30m\n    \
         copy_to: [{{ region: us-west-2, kms_key: \"{}\" }}, {{ region: eu-west-1, kms_key: \"{}\" }}]\n    \
         failover:\n      strategy: {strategy}\n      target: {target}\n      approval: required\n      \
         endpoint_parameter: {ENDPOINT_PARAM}\n      reprotect: auto\n{extra}",
        kms_key(&moto, DR).await,
        kms_key(&moto, "eu-west-1").await
    );
    let dir = std::env::temp_dir().join(format!("lifeboat-aurora-{}-{}", std::process::id(), free_port()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("lifeboat.yaml").to_string_lossy().into_owned();
    std::fs::write(&file, &yaml).expect("config");
    let cache = || ConfigCache::new(ConfigSource::File(file.clone()), &sdk, Duration::ZERO).following_active_fresh();
    Bed {
        steps: Deps::new(cache(), &sdk, &table),
        reprotect: reprotect::Deps::new(cache(), &sdk, &table),
        store: IncidentStore::new(&sdk, &table),
        config: cache(),
        ssm: aws_sdk_ssm::Client::new(&sdk),
        param: format!("/lifeboat/active/{name}"),
        file: file.clone(),
        table,
        moto,
    }
}

async fn step(b: &Bed, action: &str, exec: &Execution) -> Result<Execution, LifeboatError> {
    handle(&b.steps, json!({"action": action, "execution": exec}), Utc::now()).await
}

/// The request opens its incident as the trigger would, on the config as it serves now, and
/// the approval the config demands is recorded as Lifeboat records it.
async fn opened(b: &Bed, request: Value) -> Execution {
    let (config, _) = b.config.get_with_actives().await.expect("config");
    let Start::Failover(mut reqs) = classify(&config, &request, Utc::now()).expect("a request") else {
        panic!("ignored: {request}")
    };
    let req = reqs.remove(0);
    let db = config.database_named(&req.database).expect("ledger");
    let incident = Incident::declare(db, req.kind, Utc::now(), &req.by, &req.reason, &req.seed);
    b.store.open(&incident, &Entry::new(Utc::now(), &req.by, "seen", "seen:t")).await.expect("open");
    let exec = Execution::new(db, &req, &incident.id, Duration::from_secs(1));
    assert!(exec.approval_required, "production: approval required, the way out and the way home");
    approval_recorded(&b.store, &exec.incident_id, "Alice Ops").await;
    exec
}

/// preflight → act (twice, as a Lambda retry) → status until the target writes → the endpoint
/// parameter → verify (no DNS configured).
async fn recover(b: &Bed, mut exec: Execution) -> Value {
    exec = step(b, "preflight", &exec).await.expect("preflight");
    let acted = step(b, "act", &exec).await.expect("act");
    let again = step(b, "act", &exec).await.expect("act again: its own switch, not another");
    assert_eq!(again.recovery, acted.recovery);
    exec = acted;
    for _ in 0..40 {
        exec = step(b, "status", &exec).await.expect("status");
        if exec.status.as_ref().is_some_and(|s| s.available) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    exec = step(b, "endpoint", &exec).await.expect("endpoint parameter");
    exec = step(b, "verify", &exec).await.expect("verify");
    raw_item(&b.moto, DR, &b.table, &format!("incident#{}", exec.incident_id)).await
}

async fn active(ssm: &aws_sdk_ssm::Client, param: &str) -> Value {
    let p = ssm.get_parameter().name(param).send().await.expect("active side recorded");
    serde_json::from_str(p.parameter().and_then(|p| p.value()).unwrap_or_default()).expect("JSON")
}

/// Which member of ledger-global writes, by cluster identifier.
async fn writer(moto: &Moto) -> String {
    let out = moto.rds(DR).await.describe_global_clusters().global_cluster_identifier("ledger-global").send().await;
    let out = out.expect("global cluster");
    let members = out.global_clusters()[0].global_cluster_members();
    let w: Vec<&str> =
        members.iter().filter(|m| m.is_writer() == Some(true)).filter_map(|m| m.db_cluster_arn()).collect();
    assert_eq!(w.len(), 1, "one writer: {members:?}");
    w[0].rsplit(':').next().unwrap_or_default().to_owned()
}

fn timeline(item: &Value) -> String {
    item["timeline"].to_string()
}

#[test]
fn a_global_database_goes_home_by_a_switchover_to_its_old_primary_once_it_is_a_secondary_again() {
    on_a_big_stack(global_round_trip);
}

async fn global_round_trip() {
    let moto = Moto::start();
    let east = moto.rds("us-east-1").await;
    create_cluster(&moto, "us-east-1", "ledger").await;
    cluster_instance(&moto, "us-east-1", "ledger", "ledger-1").await;
    let primary = format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster:ledger");
    let secondary = format!("arn:aws:rds:{DR}:{ACCOUNT}:cluster:ledger-west");
    east.create_global_cluster()
        .global_cluster_identifier("ledger-global")
        .source_db_cluster_identifier(&primary)
        .send()
        .await
        .expect("global database");
    moto.rds(DR)
        .await
        .create_db_cluster()
        .db_cluster_identifier("ledger-west")
        .engine("aurora-postgresql")
        .global_cluster_identifier("ledger-global")
        .send()
        .await
        .expect("secondary");
    cluster_instance(&moto, DR, "ledger-west", "ledger-west-1").await;
    assert_eq!(writer(&moto).await, "ledger", "the primary it was created from writes");

    let b = bed(moto, "ledger", "global-failover", &primary, &secondary, "").await;
    let written = b.config.written().await.expect("config");
    let ledger = written.database_named("ledger").expect("ledger").clone();

    // us-east-1 goes down. A switchover needs every member running: refused, as AWS refuses it.
    b.moto.post("/_lifeboat/outage", &json!({"regions": ["us-east-1"]}));
    let switch = b
        .moto
        .rds(DR)
        .await
        .switchover_global_cluster()
        .global_cluster_identifier("ledger-global")
        .target_db_cluster_identifier(&secondary)
        .send()
        .await;
    let refused = format!("{:?}", switch.expect_err("a switchover with the primary's region down"));
    assert!(refused.contains("InvalidGlobalClusterStateFault"), "{refused}");

    // The failover: FailoverGlobalCluster with AllowDataLoss, approved, verified, recorded.
    let out = opened(&b, json!({"database": "ledger", "reason": "us-east-1 is down", "requested_by": "alice"})).await;
    assert_eq!(out.strategy, Strategy::GlobalFailover);
    let item = recover(&b, out.clone()).await;
    assert_eq!(item["status"], "resolved", "{item}");
    assert_eq!(writer(&b.moto).await, "ledger-west");
    let moved = active(&b.ssm, &b.param).await;
    assert_eq!((moved["arn"].as_str(), moved["previous"].as_str()), (Some(secondary.as_str()), Some(primary.as_str())));
    assert_eq!(moved["incident"], out.incident_id.as_str());
    // The jobs follow it: copies to eu-west-1 only, and no failover of a failover.
    let (serves, _) = b.config.get_with_actives().await.expect("followed");
    let now = serves.database_named("ledger").expect("ledger");
    assert_eq!(now.source.to_string(), secondary);
    assert_eq!(lifeboat_core::active::copy_regions(now), ["eu-west-1"]);
    assert!(now.failover.is_none(), "{:?}", now.failover);
    // The copier copies the new primary's snapshots, to eu-west-1 only, never the old primary's.
    let new_snapshot = cluster_snapshot(&b.moto, DR, "ledger-west", "ledger-west-after", &[]).await;
    let copier = snapshot_copier::Deps::new(
        ConfigCache::new(ConfigSource::File(b.file.clone()), &b.moto.sdk(DR).await, Duration::ZERO)
            .following_active_fresh(),
        &b.moto.sdk(DR).await,
    );
    let swept = snapshot_copier::handle(&copier, event("scheduled-sweep.json", None), Utc::now()).await;
    let swept = swept.expect("sweep");
    assert_eq!(swept.started.len(), 1, "{swept:?}");
    assert!(swept.started[0].starts_with("eu-west-1:"), "{swept:?}");
    let eu = b.moto.rds("eu-west-1").await;
    let listed = eu.describe_db_cluster_snapshots().send().await.expect("copies");
    let mut copied = Vec::new();
    for s in listed.db_cluster_snapshots() {
        let arn = s.db_cluster_snapshot_arn().unwrap_or_default();
        let tags = eu.list_tags_for_resource().resource_name(arn).send().await.expect("tags");
        copied.extend(
            tags.tag_list()
                .iter()
                .filter(|t| t.key() == Some("lifeboat:source-arn"))
                .filter_map(|t| t.value())
                .map(str::to_owned),
        );
    }
    assert_eq!(copied, std::slice::from_ref(&new_snapshot), "the new primary's snapshot, nothing else");
    // The RPO monitor judges the new primary's copies where they go now.
    let (topic, _) = topic_with_queue(&b.moto, DR).await;
    let cache = ConfigCache::new(ConfigSource::File(b.file.clone()), &b.moto.sdk(DR).await, Duration::ZERO)
        .following_active_fresh();
    let monitor = rpo_monitor::Deps::new(cache, &b.moto.sdk(DR).await, &b.table, &topic);
    let rpo = rpo_monitor::handle(&monitor, json!({}), Utc::now()).await.expect("rpo");
    let regions: Vec<String> = rpo.assessments.iter().map(|a| a.region.clone()).collect();
    assert_eq!(regions, ["eu-west-1"], "{rpo:?}");

    // Re-protect waits for us-east-1, and builds nothing meanwhile.
    let waits = reprotect::handle(&b.reprotect, json!({}), Utc::now()).await.expect("schedule");
    assert_eq!(waits["reprotected"], json!([]), "{waits}");
    let why = waits["waiting"][0]["why"].as_str().unwrap_or_default();
    assert!(why.contains("us-east-1 does not answer"), "{waits}");
    b.moto.post("/_lifeboat/outage", &json!({"regions": []}));

    // Back: the old primary is a secondary of the global database again (what the failover
    // made it), so it is the way back. Nothing is created, the old primary is not touched.
    let clusters_before = east.describe_db_clusters().send().await.expect("clusters").db_clusters().len();
    let planned = reprotect::handle(&b.reprotect, json!({"database": "ledger", "dry_run": true}), Utc::now()).await;
    let planned = planned.expect("dry run");
    assert!(planned["would"].as_str().unwrap_or_default().contains("nothing to build"), "{planned}");
    let done = reprotect::handle(&b.reprotect, json!({}), Utc::now()).await.expect("schedule");
    assert_eq!(done["reprotected"][0]["replica"], primary.as_str(), "{done}");
    assert_eq!(done["reprotected"][0]["built"], false, "{done}");
    let clusters = east.describe_db_clusters().send().await.expect("clusters");
    assert_eq!(clusters.db_clusters().len(), clusters_before, "nothing built");
    let old = clusters.db_clusters().iter().find(|c| c.db_cluster_identifier() == Some("ledger")).expect("old primary");
    assert!(old.tag_list().is_empty(), "the way back is left as it is: {:?}", old.tag_list());
    assert_eq!(active(&b.ssm, &b.param).await["replica"], primary.as_str());
    let home_ssm = aws_sdk_ssm::Client::new(&b.moto.sdk("us-east-1").await);
    assert_eq!(active(&home_ssm, &b.param).await["replica"], primary.as_str(), "told home");
    let item = raw_item(&b.moto, DR, &b.table, &format!("incident#{}", out.incident_id)).await;
    assert!(timeline(&item).contains("a secondary of the global database again"), "{item}");
    let again = reprotect::handle(&b.reprotect, json!({}), Utc::now()).await.expect("schedule");
    assert_eq!(again["reprotected"], json!([]), "{again}");

    // The plan home is a switchover to the old primary, never a failover that loses data.
    let (serves, actives) = b.config.get_with_actives().await.expect("followed");
    let away = serves.database_named("ledger").expect("ledger");
    assert_eq!(lifeboat_core::active::copy_regions(away), ["eu-west-1", "us-east-1"], "copies go home too now");
    let f = away.failover.clone().expect("a plan home");
    assert_eq!((f.strategy, f.target.map(|t| t.to_string())), (Strategy::GlobalFailover, Some(primary.clone())));
    // An outage where it serves now fails over towards the old primary (data-losing, as configured);
    // a planned failback switches over (below).
    let outage = json!({"database": "ledger", "reason": "us-west-2 is down", "requested_by": "alice"});
    let Ok(Start::Failover(asked)) = classify(&serves, &outage, Utc::now()) else { panic!("a request") };
    assert_eq!(asked[0].strategy, Strategy::GlobalFailover);
    let line = lifeboat_core::message::active_line(&actives[0], serves.database_named("ledger").unwrap());
    assert!(
        line.contains("active in us-west-2") && line.contains(&format!("protected: replica ({primary})")),
        "{line}"
    );

    // Going home, planned: refused while the secondary lags (AuroraGlobalDBReplicationLag, ms).
    let lag = |ms: f64, ago: i64| {
        rds_metric(&b.moto, "us-east-1", "AuroraGlobalDBReplicationLag", &[("DBClusterIdentifier", "ledger")], ms, ago)
    };
    lag(120_000.0, 240).await;
    let home =
        |reason: &str| json!({"database": "ledger", "reason": reason, "requested_by": "alice", "failback": true});
    let early = opened(&b, home("us-east-1 is back")).await;
    assert!(early.failback && early.strategy == Strategy::GlobalSwitchover, "{early:?}");
    let refused = step(&b, "preflight", &early).await.expect_err("refused while lagging").to_string();
    assert!(refused.contains("120 s behind"), "{refused}");
    // The machine's Catch ends it: the incident fails, told once.
    step(&b, "fail", &early).await.expect("fail");
    assert_eq!(writer(&b.moto).await, "ledger-west", "nothing moved");

    // Caught up: the switchover takes it home, verified, and the config serves as written.
    lag(40.0, 5).await;
    let back = opened(&b, home("us-east-1 is back and caught up")).await;
    let item = recover(&b, back.clone()).await;
    assert_eq!((item["status"].as_str(), item["kind"].as_str()), (Some("resolved"), Some("failback")), "{item}");
    assert!(timeline(&item).contains(&format!("back from where incident {} moved it", out.incident_id)), "{item}");
    assert_eq!(writer(&b.moto).await, "ledger", "home: the old primary writes again");
    let homed = active(&b.ssm, &b.param).await;
    assert_eq!((homed["arn"].as_str(), homed["previous"].as_str()), (Some(primary.as_str()), Some(secondary.as_str())));
    let (serves, actives) = b.config.get_with_actives().await.expect("followed");
    let now = serves.database_named("ledger").expect("ledger");
    assert_eq!((&now.source, &now.moved_from, &now.failover), (&ledger.source, &None, &ledger.failover));
    assert_eq!(lifeboat_core::active::copy_regions(now), ["us-west-2", "eu-west-1"], "the DR direction again");
    let line = lifeboat_core::message::active_line(&actives[0], now);
    assert!(line.contains("home in us-east-1 again"), "{line}");
    let endpoint = b.ssm.get_parameter().name(ENDPOINT_PARAM).send().await.expect("endpoint parameter");
    let endpoint = endpoint.parameter().and_then(|p| p.value()).unwrap_or_default().to_owned();
    assert!(endpoint.starts_with("ledger."), "the applications point home: {endpoint}");
    // Home is not a move: re-protect has nothing to do, and a failback from home is refused.
    let none = reprotect::handle(&b.reprotect, json!({"database": "ledger"}), Utc::now()).await;
    assert!(none.is_err_and(|e| e.to_string().contains("has not moved")));
    let (serves, _) = b.config.get_with_actives().await.expect("followed");
    assert!(classify(&serves, &home("again"), Utc::now()).is_err(), "nothing to go home from");
}

#[test]
fn an_aurora_mysql_database_gets_a_replica_cluster_in_the_old_region_as_its_way_back_and_goes_home_by_it() {
    on_a_big_stack(replica_cluster_round_trip);
}

/// Cluster `id`'s (replication source, tags, kms key, security groups, cluster parameter group).
async fn cluster_seen(moto: &Moto, region: &str, id: &str) -> Option<aws_sdk_rds::types::DbCluster> {
    let out = moto.rds(region).await.describe_db_clusters().db_cluster_identifier(id).send().await.ok()?;
    out.db_clusters().first().cloned()
}

async fn replica_cluster_round_trip() {
    let moto = Moto::start();
    let east = moto.rds("us-east-1").await;
    let (east_key, west_key) = (kms_key(&moto, "us-east-1").await, kms_key(&moto, DR).await);
    east.create_db_cluster_parameter_group()
        .db_cluster_parameter_group_name("shop-cpg")
        .db_parameter_group_family("aurora-mysql8.0")
        .description("shop")
        .send()
        .await
        .expect("cluster parameter group");
    east.create_db_cluster()
        .db_cluster_identifier("shop")
        .engine("aurora-mysql")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .storage_encrypted(true)
        .kms_key_id(&east_key)
        .db_cluster_parameter_group_name("shop-cpg")
        .vpc_security_group_ids("sg-0shop")
        .send()
        .await
        .expect("primary cluster");
    east.create_db_instance()
        .db_instance_identifier("shop-1")
        .db_cluster_identifier("shop")
        .engine("aurora-mysql")
        .db_instance_class("db.r6g.xlarge")
        .send()
        .await
        .expect("writer");
    let primary = format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster:shop");
    let replica = format!("arn:aws:rds:{DR}:{ACCOUNT}:cluster:shop-west");
    let west = moto.rds(DR).await;
    let create = |key: Option<&str>| {
        west.create_db_cluster()
            .db_cluster_identifier("shop-west")
            .engine("aurora-mysql")
            .replication_source_identifier(&primary)
            .set_kms_key_id(key.map(str::to_owned))
            .storage_encrypted(true)
            .send()
    };
    let refused = format!("{:?}", create(None).await.expect_err("no key"));
    assert!(refused.contains("needs a KmsKeyId"), "RDS: an encrypted source's replica cluster names a key: {refused}");
    create(Some(&west_key)).await.expect("replica cluster");
    west.create_db_instance()
        .db_instance_identifier("shop-west-1")
        .db_cluster_identifier("shop-west")
        .engine("aurora-mysql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("replica cluster's instance");

    let pause = "      maintenance_endpoint: maintenance.shop.internal\n";
    let b = bed(moto, "shop", "promote-replica", &primary, &replica, pause).await;
    b.moto.post("/_lifeboat/outage", &json!({"regions": ["us-east-1"]}));
    let out = opened(&b, json!({"database": "shop", "reason": "us-east-1 is down", "requested_by": "alice"})).await;
    let item = recover(&b, out.clone()).await;
    assert_eq!(item["status"], "resolved", "{item}");
    let moved = active(&b.ssm, &b.param).await;
    assert_eq!((moved["arn"].as_str(), moved["previous"].as_str()), (Some(replica.as_str()), Some(primary.as_str())));
    b.moto.post("/_lifeboat/outage", &json!({"regions": []}));

    // Re-protect: a replica cluster of what serves, in us-east-1, with the old primary's
    // network, groups, key and writer class; the old primary only tagged.
    let built = reprotect::handle(&b.reprotect, json!({}), Utc::now()).await.expect("schedule");
    let back_arn = built["reprotected"][0]["replica"].as_str().unwrap_or_else(|| panic!("{built}")).to_owned();
    assert_eq!(built["reprotected"][0]["built"], true, "{built}");
    assert!(back_arn.starts_with(&format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster:lf-shop-r")), "{back_arn}");
    let back_id = back_arn.rsplit(':').next().unwrap_or_default().to_owned();
    let back = cluster_seen(&b.moto, "us-east-1", &back_id).await.expect("the way back");
    let of = back.replication_source_identifier().unwrap_or_default();
    assert!(of == replica || of == "shop-west", "a replica of what serves now: {of}");
    assert_eq!(back.engine(), Some("aurora-mysql"));
    assert_eq!(back.kms_key_id(), Some(east_key.as_str()), "the old region's key");
    assert_eq!(back.db_cluster_parameter_group(), Some("shop-cpg"));
    assert_eq!(back.vpc_security_groups()[0].vpc_security_group_id(), Some("sg-0shop"));
    let instance = east.describe_db_instances().db_instance_identifier(format!("{back_id}-1")).send().await;
    let instance = instance.expect("its instance");
    assert_eq!(instance.db_instances()[0].db_instance_class(), Some("db.r6g.xlarge"), "the old writer's class");
    let old = cluster_seen(&b.moto, "us-east-1", "shop").await.expect("old primary");
    assert_eq!(old.status(), Some("available"));
    let tagged = old
        .tag_list()
        .iter()
        .any(|t| t.key() == Some("lifeboat:old-primary-of") && t.value() == Some(&out.incident_id));
    assert!(tagged, "{:?}", old.tag_list());
    let again = reprotect::handle(&b.reprotect, json!({}), Utc::now()).await.expect("schedule");
    assert_eq!(again["reprotected"], json!([]), "{again}");
    assert_eq!(east.describe_db_clusters().send().await.expect("clusters").db_clusters().len(), 2, "one way back");
    // Someone deletes the way back: the next scheduled run builds it again, and says so.
    east.delete_db_instance()
        .db_instance_identifier(format!("{back_id}-1"))
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("gone");
    east.delete_db_cluster().db_cluster_identifier(&back_id).skip_final_snapshot(true).send().await.expect("gone");
    let rebuilt = reprotect::handle(&b.reprotect, json!({}), Utc::now()).await.expect("schedule");
    assert_eq!(
        (rebuilt["reprotected"][0]["replica"].as_str(), rebuilt["reprotected"][0]["built"].as_bool()),
        (Some(back_arn.as_str()), Some(true)),
        "{rebuilt}"
    );
    assert!(cluster_seen(&b.moto, "us-east-1", &back_id).await.is_some(), "built again");
    let item = raw_item(&b.moto, DR, &b.table, &format!("incident#{}", out.incident_id)).await;
    assert!(timeline(&item).contains("the way back was gone"), "{item}");

    // Readiness judges the way back: available, and its lag (AuroraBinlogReplicaLag) inside the RPO.
    let writer = [("DBClusterIdentifier", back_id.as_str()), ("Role", "WRITER")];
    let lag =
        |seconds: f64, ago: i64| rds_metric(&b.moto, "us-east-1", "AuroraBinlogReplicaLag", &writer, seconds, ago);
    lag(3.0, 420).await;
    let (topic, inbox) = topic_with_queue(&b.moto, DR).await;
    let sdk = b.moto.sdk(DR).await;
    let cache = ConfigCache::new(ConfigSource::File(b.file.clone()), &sdk, Duration::ZERO).following_active_fresh();
    let deps = rpo_monitor::Deps::new(cache, &sdk, &b.table, &topic);
    let ready = rpo_monitor::handle(&deps, json!({"readiness": true}), Utc::now()).await.expect("readiness");
    let text = serde_json::to_string(&ready).unwrap_or_default();
    assert!(text.contains(&format!("{back_id} is available")), "the way back is the target it checks: {text}");
    let seen = serde_json::to_value(&ready).unwrap_or_default();
    let lag_check =
        seen["readiness"][0]["checks"].as_array().and_then(|c| c.iter().find(|c| c["check"] == "replica-lag"));
    assert_eq!(
        lag_check.map(|c| (c["level"].clone(), c["reason"].clone())),
        Some((json!("ok"), json!("3s"))),
        "{text}"
    );
    // Protected again, said once: a second run tells nothing new.
    rpo_monitor::handle(&deps, json!({"readiness": true}), Utc::now()).await.expect("readiness again");
    let told: Vec<Notice> =
        notices(&b.moto, DR, &inbox).await.into_iter().filter(|n| n.subject.contains("protected again")).collect();
    assert_eq!(told.len(), 1, "{:?}", told.iter().map(|n| &n.subject).collect::<Vec<_>>());
    assert!(told[0].subject.contains("shop: protected again"), "{}", told[0].subject);
    assert!(
        told[0].text.contains(&format!("its way back {back_arn} is available, replica lag 3s")),
        "{}",
        told[0].text
    );

    // Going home: refused while the replica cluster lags (AuroraBinlogReplicaLag), then its
    // promotion, with the same approval; the DR direction is the original again.
    lag(120.0, 240).await;
    let home = |reason: &str| json!({"database": "shop", "reason": reason, "requested_by": "alice", "failback": true});
    let early = opened(&b, home("us-east-1 is back")).await;
    assert_eq!(early.strategy, Strategy::PromoteReplica);
    let refused = step(&b, "preflight", &early).await.expect_err("refused while lagging").to_string();
    assert!(refused.contains("120 s behind"), "{refused}");
    step(&b, "fail", &early).await.expect("fail");

    // Inside the bound, with a maintenance endpoint: writes stop first, and the promotion waits
    // for lag 0; not there within 5 minutes, the parameter is put back and nothing is promoted.
    let param = || async {
        let p = b.ssm.get_parameter().name(ENDPOINT_PARAM).send().await.expect("endpoint parameter");
        p.parameter().and_then(|p| p.value()).unwrap_or_default().to_owned()
    };
    let away = param().await;
    lag(4.0, 130).await;
    let draining = opened(&b, home("draining")).await;
    let draining = step(&b, "preflight", &draining).await.expect("4 s behind: inside the bound");
    let waits = step(&b, "act", &draining).await.expect_err("waits for lag 0");
    assert!(matches!(&waits, LifeboatError::InProgress(w) if w.contains("now 4 s")), "{waits:?}");
    assert_eq!(param().await, "maintenance.shop.internal", "writes stopped");
    let later = Utc::now() + chrono::Duration::minutes(6);
    let gave_up = handle(&b.steps, json!({"action": "act", "execution": draining}), later).await;
    let gave_up = gave_up.expect_err("not caught up within 5 minutes").to_string();
    assert!(gave_up.contains("did not reach lag 0") && gave_up.contains("nothing was promoted"), "{gave_up}");
    assert_eq!(param().await, away, "writes resumed: the parameter as it was");
    step(&b, "fail", &draining).await.expect("fail");
    assert!(
        cluster_seen(&b.moto, "us-east-1", &back_id)
            .await
            .and_then(|c| c.replication_source_identifier().map(str::to_owned))
            .is_some(),
        "not promoted"
    );

    lag(0.0, 5).await;
    let going = opened(&b, home("caught up")).await;
    let item = recover(&b, going).await;
    let said = timeline(&item);
    assert!(said.contains("writes stopped for the failback") && said.contains("caught up: lag 0"), "{said}");
    assert_eq!((item["status"].as_str(), item["kind"].as_str()), (Some("resolved"), Some("failback")), "{item}");
    assert!(timeline(&item).contains(&format!("back from where incident {} moved it", out.incident_id)), "{item}");
    let promoted = cluster_seen(&b.moto, "us-east-1", &back_id).await.expect("home");
    assert!(promoted.replication_source_identifier().is_none(), "promoted: {promoted:?}");
    let homed = active(&b.ssm, &b.param).await;
    assert_eq!((homed["arn"].as_str(), homed["previous"].as_str()), (Some(back_arn.as_str()), Some(replica.as_str())));
    let (serves, _) = b.config.get_with_actives().await.expect("followed");
    let shop = serves.database_named("shop").expect("shop");
    assert_eq!(shop.source.to_string(), back_arn);
    assert_eq!(lifeboat_core::active::copy_regions(shop), ["us-west-2", "eu-west-1"], "the DR direction again");
}
