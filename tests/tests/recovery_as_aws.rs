//! What a review against the AWS references found moto could not show, each against our stricter
//! moto: a Health issue fails over every database it touches, once, also after its incident
//! closed; names at the longest the config allows stay within StartExecution's 80 characters and
//! apart; one database's failing drill start leaves the others drilled; an Aurora drill whose
//! writer never came up is still cleaned up.

use std::time::Duration;

use chrono::Utc;
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::drill::{DrillRun, TAG_DRILL, TAG_DRILL_ID};
use lifeboat_core::incident::Status;
use lifeboat_tests::*;
use serde_json::{json, Value};

/// A state machine moto records executions of (it runs nothing here): the trigger's and the
/// drill's starts are what these tests look at.
async fn machine(moto: &Moto, name: &str) -> String {
    idle_machine(moto, "us-east-1", name).await
}

async fn executions(moto: &Moto, machine: &str) -> Vec<String> {
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk("us-east-1").await);
    let out = sfn.list_executions().state_machine_arn(machine).send().await.expect("executions");
    let mut names: Vec<String> = out.executions().iter().map(|e| e.name().to_owned()).collect();
    names.sort();
    names
}

/// The longest name the config allows is a tag value's, 256 characters; two that share their
/// first 200 and are protected in the same region.
fn long_name(c: char) -> String {
    format!("{}{c}", "orders-eu-west-".repeat(17)).chars().rev().take(256).collect::<String>().chars().rev().collect()
}

fn health_db(name: &str, id: &str) -> String {
    format!(
        "  - name: {name}\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:{id}\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover: {{ strategy: reboot-multi-az, approval: required, triggers: {{ health: true }} }}\n"
    )
}

#[tokio::test]
async fn a_health_issue_fails_over_every_database_it_touches_once_ever() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (a, b) = (long_name('a'), long_name('b'));
    assert_eq!(a.chars().count(), 256);
    let yaml = format!(
        "databases:\n{}{}{}",
        health_db(&a, "orders-a"),
        health_db(&b, "orders-b"),
        health_db("billing", "billing")
    );
    let config = config_in_ssm(&moto, &yaml, Duration::ZERO).await;
    let sm = machine(&moto, "lifeboat-failover").await;
    let sdk = moto.sdk("us-east-1").await;
    let deps = failover_trigger::Deps::new(config, &sdk, &table, &sm, Duration::from_secs(1));
    let store = IncidentStore::new(&sdk, &table);

    // An open issue naming no resource: every protected database in the region may be touched.
    let mut issue = event("health-rds-issue-open.json", None);
    issue["detail"]["affectedEntities"] = json!([]);
    let report =
        serde_json::to_value(failover_trigger::handle(&deps, issue.clone(), Utc::now()).await.unwrap()).unwrap();
    let mut opened: Vec<String> = std::iter::once(&report)
        .chain(report["also"].as_array().into_iter().flatten())
        .map(|r| r["incident_id"].as_str().unwrap_or_else(|| panic!("{report}")).to_owned())
        .collect();
    opened.sort();
    assert_eq!(opened.len(), 3, "one incident per database, not only the first: {report}");
    let names = executions(&moto, &sm).await;
    assert_eq!(names.len(), 3, "three executions, although two names share 200 characters: {names:?}");
    assert!(names.iter().all(|n| n.len() <= 80), "{names:?}");

    // The same issue, updated: a new envelope time, a new lastUpdatedTime. Nothing new starts.
    let mut update = issue.clone();
    update["time"] = json!("2026-11-25T21:10:00Z");
    update["detail"]["lastUpdatedTime"] = json!("Wed, 25 Nov 2026 21:08:00 GMT");
    failover_trigger::handle(&deps, update.clone(), Utc::now()).await.unwrap();
    assert_eq!(executions(&moto, &sm).await, names);
    // People rejected every failover; the incidents closed. The next update asks nobody again.
    for id in &opened {
        store.transition(id, Status::Aborted, Utc::now(), "t", "rejected").await.unwrap();
    }
    update["time"] = json!("2026-11-25T23:40:00Z");
    update["detail"]["lastUpdatedTime"] = json!("Wed, 25 Nov 2026 23:38:00 GMT");
    let again = serde_json::to_value(failover_trigger::handle(&deps, update, Utc::now()).await.unwrap()).unwrap();
    assert!(again["ignored"].as_str().unwrap_or_default().contains("aborted already"), "{again}");
    assert_eq!(executions(&moto, &sm).await, names, "no second failover for the same issue");
    for id in &opened {
        assert_eq!(store.get(id).await.unwrap().unwrap().status, Status::Aborted);
    }
}

fn drill_db(name: &str, kind: &str, id: &str) -> String {
    format!(
        "  - name: {name}\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:{kind}:{id}\n    tier: production\n    rpo: 1h\n    rto: 1h\n    copy_to: [{{ region: us-west-2 }}]\n    drill: {{ restore: {{ instance_class: db.r6g.large, subnet_group: dr-db }} }}\n"
    )
}

async fn drill_deps(moto: &Moto, yaml: &str) -> (dr_drill::Deps, String) {
    let table = incidents_table(moto, "us-east-1").await;
    let (topic, _) = topic_with_queue(moto, "us-east-1").await;
    let config = config_in_ssm(moto, yaml, Duration::ZERO).await;
    let sdk = moto.sdk("us-east-1").await;
    let mut deps = dr_drill::Deps::new(config, &sdk, &table, &topic);
    let sm = machine(moto, "lifeboat-drill").await;
    deps.state_machine = Some(sm.clone());
    deps.poll_seconds = 1;
    (deps, sm)
}

#[tokio::test]
async fn drills_of_the_longest_names_start_and_one_failing_start_leaves_the_others_drilled() {
    let moto = Moto::start();
    let (a, b) = (long_name('a'), long_name('b'));
    let yaml = format!(
        "databases:\n{}{}{}",
        drill_db(&a, "db", "a"),
        drill_db(&b, "db", "b"),
        drill_db("billing", "db", "billing")
    );
    let (deps, sm) = drill_deps(&moto, &yaml).await;
    // StartExecution fails for good, once: for whichever database comes first.
    moto.post(
        "/_lifeboat/faults",
        &json!({"faults": [{"service": "stepfunctions", "operation": "StartExecution", "code": "AccessDeniedException", "times": 1}]}),
    );
    let schedule = event("scheduled-sweep.json", None);
    let err = dr_drill::handle(&deps, schedule.clone(), Utc::now()).await.unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "the run still fails, for its retry: {err}");
    let names = executions(&moto, &sm).await;
    assert_eq!(names.len(), 2, "the other two databases were drilled: {names:?}");
    assert!(names.iter().all(|n| n.len() <= 80 && n.starts_with("drill-")), "{names:?}");
    // The retry starts the one that failed, and nothing twice.
    let out = dr_drill::handle(&deps, schedule, Utc::now()).await.unwrap();
    assert_eq!(executions(&moto, &sm).await.len(), 3, "{out}");
}

#[tokio::test]
async fn an_aurora_drill_is_restored_without_a_writer_until_available_and_cleaned_up_even_without_one() {
    let moto = Moto::start_with(&[("LIFEBOAT_MOTO_CLUSTER_RESTORE_SECONDS", "30")]);
    let (deps, _) = drill_deps(&moto, &format!("databases:\n{}", drill_db("catalog", "cluster", "catalog"))).await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": "us-west-2", "name": "dr-db"}));
    dr_copies(&moto, "us-west-2", "catalog", true, &[("lifeboat-catalog-1", Utc::now())]).await;

    let config =
        lifeboat_core::config::Config::from_yaml(&format!("databases:\n{}", drill_db("catalog", "cluster", "catalog")))
            .unwrap();
    let db = config.database_named("catalog").unwrap();
    let run = DrillRun::new(db, db.drill.as_ref().unwrap(), "us-west-2", Utc::now(), 1);
    let step = |action: &str, run: &Value| json!({"action": action, "drill": run});
    let mut run = serde_json::to_value(&run).unwrap();
    for action in ["prepare", "restore", "status"] {
        run = dr_drill::handle(&deps, step(action, &run), Utc::now()).await.unwrap_or_else(|e| panic!("{action}: {e}"));
    }
    let id = run["temporary"].as_str().unwrap().to_owned();
    let west = moto.rds("us-west-2").await;
    let cluster = west.describe_db_clusters().db_cluster_identifier(&id).send().await.unwrap();
    let cluster = &cluster.db_clusters()[0];
    assert_eq!(cluster.status(), Some("creating"));
    assert!(cluster.db_cluster_members().is_empty(), "no writer while the cluster is creating");
    assert_eq!(cluster.tag_list().iter().find(|t| t.key() == Some(TAG_DRILL)).and_then(|t| t.value()), Some("catalog"));
    assert!(cluster.tag_list().iter().any(|t| t.key() == Some(TAG_DRILL_ID)));
    // The drill fails here (say its Lambda timed out): cleanup must delete a cluster that has no
    // member to tell it by.
    run = dr_drill::handle(&deps, step("cleanup", &run), Utc::now()).await.expect("cleanup");
    assert_eq!(run["cleaned_up"], json!([id]));
    let gone = west.describe_db_clusters().db_cluster_identifier(&id).send().await;
    assert!(
        gone.is_err() || gone.as_ref().unwrap().db_clusters().iter().all(|c| c.status() == Some("deleting")),
        "the drill's cluster is deleted: {gone:?}"
    );
}

#[tokio::test]
async fn a_health_issue_naming_an_aurora_instance_fails_its_cluster_over() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let yaml = format!(
        "databases:\n  - name: catalog\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:cluster:catalog\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover: {{ strategy: aurora-failover, approval: required, triggers: {{ health: true }} }}\n"
    );
    let config = config_in_ssm(&moto, &yaml, Duration::ZERO).await;
    let sm = machine(&moto, "lifeboat-failover").await;
    let sdk = moto.sdk("us-east-1").await;
    let deps = failover_trigger::Deps::new(config, &sdk, &table, &sm, Duration::from_secs(1));
    create_cluster(&moto, "us-east-1", "catalog").await;
    cluster_instance(&moto, "us-east-1", "catalog", "catalog-writer").await;
    let mut issue = event("health-rds-issue-open.json", None);
    issue["detail"]["affectedEntities"] = json!([{"entityValue": "some-other-instance"}]);
    let report =
        serde_json::to_value(failover_trigger::handle(&deps, issue.clone(), Utc::now()).await.unwrap()).unwrap();
    assert!(report["ignored"].as_str().unwrap_or_default().contains("names no protected database"), "{report}");
    issue["detail"]["affectedEntities"] =
        json!([{"entityValue": format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:catalog-writer")}]);
    let report = serde_json::to_value(failover_trigger::handle(&deps, issue, Utc::now()).await.unwrap()).unwrap();
    assert!(report["incident_id"].as_str().is_some_and(|i| i.starts_with("catalog-")), "{report}");
    assert_eq!(executions(&moto, &sm).await.len(), 1);
}

/// With a stack in each region (`LIFEBOAT_RECOVERS=own`) only the stack of the drill's region
/// drills a database: two would delete each other's temporary databases as leftovers.
#[tokio::test]
async fn with_a_stack_in_each_region_a_database_is_drilled_by_its_drill_regions_stack_only() {
    let moto = Moto::start();
    let (mut deps, sm) = drill_deps(&moto, &format!("databases:\n{}", drill_db("billing", "db", "billing"))).await;
    deps.own_only = true;
    assert_eq!(deps.region, "us-east-1");
    let schedule = event("scheduled-sweep.json", None);
    let out = dr_drill::handle(&deps, schedule.clone(), Utc::now()).await.unwrap();
    assert_eq!(out["started"], json!([]), "billing drills in us-west-2: {out}");
    let err = dr_drill::handle(&deps, json!({"database": "billing"}), Utc::now()).await.unwrap_err();
    assert!(err.to_string().contains("runs in us-west-2's stack"), "{err}");
    assert!(executions(&moto, &sm).await.is_empty());
    // The us-west-2 stack's view of the same config.
    deps.region = "us-west-2".into();
    dr_drill::handle(&deps, schedule, Utc::now()).await.unwrap();
    assert_eq!(executions(&moto, &sm).await.len(), 1);
}
