//! Killed mid-run, then run again: the real `snapshot-copier`, `snapshot-pruner` and
//! `failover-steps` binaries (in `cargo lambda watch`) are SIGKILLed while their calls are in
//! flight (each made slow by the emulator's `slow` fault; the counts show the kill landed
//! mid-run), then invoked again, as Lambda's retry, the next schedule or the state machine's
//! Retry would: every snapshot ends copied exactly once, exactly the planned snapshots deleted,
//! and the failover finished with each step once.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use lifeboat_tests::*;
use serde_json::json;

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";

/// SIGKILL the function's own process (not cargo lambda's): the Lambda sandbox dying mid-run.
fn kill(binary: &str) -> bool {
    Command::new("pkill").args(["-KILL", "-f", &format!("target/debug/{binary}$")]).status().is_ok_and(|s| s.success())
}

/// Invoke `function` in the background: the invocation a kill interrupts.
fn invoke_in_background(port: &str, function: &str, data: &str) -> std::process::Child {
    Command::new(repo_root().join(".venv/bin/cargo-lambda"))
        .args(["lambda", "invoke", function, "--invoke-address", "127.0.0.1", "-P", port, "--data-ascii", data])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("cargo lambda invoke")
}

/// Lambda answers an invocation whose sandbox died with an error; cargo lambda's emulator keeps
/// the caller waiting instead, so the caller gives up after a while, as Lambda's would.
fn abandon(mut child: std::process::Child) {
    for _ in 0..20 {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(!status.success(), "a killed run does not succeed");
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_and_a_prune_killed_midway_converge_when_run_again() {
    let moto = Moto::start();
    let key = kms_key(&moto, DR).await;
    let table = incidents_table(&moto, SRC).await;
    let (topic, _inbox) = topic_with_queue(&moto, SRC).await;
    let now = Utc::now();
    moto.set_clock(now - chrono::Duration::days(7));
    create_instance(&moto, SRC, "orders").await;
    let mut sources = Vec::new();
    for d in (1..=6).rev() {
        moto.set_clock(now - chrono::Duration::days(d));
        sources.push(snapshot(&moto, SRC, "orders", &format!("orders-{d}"), &[("lifeboat:managed", "true")]).await);
    }
    moto.set_clock(now);
    let dir = std::env::temp_dir().join(format!("lifeboat-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders\n    tier: production\n    rpo: 24h\n    rto: 1h\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{key}\" }}\n    retention:\n      source: {{ daily: 2, min_keep: 2 }}\n      copies: {{ daily: 10, min_keep: 10 }}\n"
        ),
    )
    .unwrap();
    let env = [
        ("LIFEBOAT_CONFIG_FILE", config.to_str().unwrap()),
        ("LIFEBOAT_INCIDENTS_TABLE", table.as_str()),
        ("LIFEBOAT_TOPIC_ARN", topic.as_str()),
    ];
    let mut port = free_port().to_string();
    let mut watch = Watch::start(&moto, &port, &dir, &env);
    let sweep = repo_root().join("events/scheduled-sweep.json");
    // Start both functions first (cargo lambda builds them on first use), so the kills below land
    // mid-run: the copier on an event it ignores, the pruner as a dry run, which is also the plan.
    watch.invoke("snapshot-copier", &repo_root().join("events/rds-db-snapshot-other-region.json"));
    let plan = dir.join("dry.json");
    std::fs::write(&plan, json!({"dry_run": true}).to_string()).unwrap();
    let planned: serde_json::Value = serde_json::from_str(watch.invoke("snapshot-pruner", &plan).trim()).unwrap();
    let would: Vec<String> = planned["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["region"] == SRC)
        .flat_map(|g| g["would_delete"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(would.len(), 4, "{planned}");

    moto.post(
        "/_lifeboat/faults",
        &json!({"faults": [{"service": "rds", "operation": "CopyDBSnapshot", "kinds": ["slow"], "delay": 2}]}),
    );
    let killed_run = invoke_in_background(&port, "snapshot-copier", &std::fs::read_to_string(&sweep).unwrap());
    // The first copies are in flight (2 s each): kill the function mid-sweep.
    std::thread::sleep(Duration::from_secs(5));
    assert!(kill("snapshot-copier"), "the copier was running");
    let copies_asked = moto.fault_counts()["calls"]["rds:CopyDBSnapshot"].as_u64().unwrap_or(0);
    assert!((1..6).contains(&copies_asked), "killed mid-sweep, after {copies_asked} of 6 copies were asked for");
    println!("KILL copier: killed after {copies_asked} of 6 copies were asked for");
    abandon(killed_run);
    // Lambda runs the next invocation in a new sandbox; cargo lambda watch doesn't restart a
    // killed function, so a new emulator plays the new sandbox.
    drop(watch);
    port = free_port().to_string();
    watch = Watch::start(&moto, &port, &dir, &env);
    moto.post("/_lifeboat/faults", &json!({"faults": []}));
    let copies_after_kill = db_snapshots(&moto, DR).await.len();
    assert!(copies_after_kill < sources.len(), "killed midway: {copies_after_kill} of {} copied", sources.len());

    // Run again (watch starts the function anew): the rest is copied, nothing twice.
    let again: serde_json::Value = serde_json::from_str(watch.invoke("snapshot-copier", &sweep).trim()).unwrap();
    assert!(again["failed"].as_array().is_some_and(Vec::is_empty), "{again}");
    let mut per_source: BTreeMap<String, usize> = BTreeMap::new();
    for c in db_snapshots(&moto, DR).await {
        if let Some((_, src)) = c.3.iter().find(|(k, _)| k == "lifeboat:source-arn") {
            *per_source.entry(src.clone()).or_default() += 1;
        }
    }
    for s in &sources {
        assert_eq!(per_source.get(s), Some(&1), "{s}: {per_source:?}");
    }

    // The pruner, killed with its deletes in flight, then run again: exactly the plan is deleted.
    // Warm first: this emulator starts the pruner on its first invocation.
    watch.invoke("snapshot-pruner", &plan);
    moto.post(
        "/_lifeboat/faults",
        &json!({"faults": [{"service": "rds", "operation": "DeleteDBSnapshot", "kinds": ["slow"], "delay": 6}]}),
    );
    let killed_prune = invoke_in_background(&port, "snapshot-pruner", "{}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(kill("snapshot-pruner"), "the pruner was running");
    let deletes_asked = moto.fault_counts()["calls"]["rds:DeleteDBSnapshot"].as_u64().unwrap_or(0);
    // Four deletions go out at once (`DELETES_AT_ONCE`): killed with them in flight.
    assert!((1..=4).contains(&deletes_asked), "killed mid-prune, after {deletes_asked} of 4 deletes were asked for");
    println!("KILL pruner: killed after {deletes_asked} of 4 deletes were asked for");
    abandon(killed_prune);
    drop(watch);
    port = free_port().to_string();
    watch = Watch::start(&moto, &port, &dir, &env);
    moto.post("/_lifeboat/faults", &json!({"faults": []}));
    let real = dir.join("prune.json");
    std::fs::write(&real, "{}").unwrap();
    let pruned: serde_json::Value = serde_json::from_str(watch.invoke("snapshot-pruner", &real).trim()).unwrap();
    assert!(
        pruned["groups"].as_array().unwrap().iter().all(|g| g["failed"].as_array().is_none_or(Vec::is_empty)),
        "{pruned}"
    );
    let left: Vec<String> = db_snapshots(&moto, SRC).await.into_iter().map(|s| s.0).collect();
    for s in &sources {
        let id = s.rsplit(':').next().unwrap().to_owned();
        assert_eq!(left.contains(&id), !would.contains(&id), "{id}: {left:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The real `failover-steps` binary killed twice in one failover: during `act`, while its
/// PromoteReadReplica is in flight (the emulator holds it 6 s, then promotes: the sandbox died
/// after AWS acted, before the step recorded it), and during `dns`, while its Route 53 change
/// is in flight. Each step run again in a new sandbox — as the state machine's Retry on
/// `Lambda.Unknown` runs it — finishes the failover: the replica promoted, DNS and the endpoint
/// parameter on it, every step on the incident's timeline exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_steps_killed_midway_converge_when_run_again() {
    use lifeboat_core::aws::incidents::IncidentStore;
    use lifeboat_core::config::Config;
    use lifeboat_core::failover::steps::Execution;
    use lifeboat_core::failover::{classify, Start};
    use lifeboat_core::incident::{Entry, Incident};
    use serde_json::Value;

    let moto = Moto::start();
    let table = incidents_table(&moto, SRC).await;
    let zone = orders_with_replica(&moto).await;
    let yaml = format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:{DR}:{ACCOUNT}:db:orders-replica\n      approval: required\n      dns: {{ zone_id: {zone}, record: db.orders.internal, ttl: 60 }}\n      endpoint_parameter: /orders/prod/db-endpoint\n"
    );
    // The incident and the execution's input, as the trigger and an approval leave them.
    let config = Config::from_yaml(&yaml).unwrap();
    let request = json!({"database": "orders-prod", "reason": "primary lost", "requested_by": "t"});
    let Start::Failover(mut reqs) = classify(&config, &request, Utc::now()).unwrap() else { panic!("ignored") };
    let req = reqs.remove(0);
    let db = config.database_named("orders-prod").unwrap();
    let incident = Incident::declare(db, req.kind, Utc::now(), &req.by, &req.reason, &req.seed);
    let store = IncidentStore::new(&moto.sdk(SRC).await, &table);
    store.open(&incident, &Entry::new(Utc::now(), "t", "seen", "seen:t")).await.unwrap();
    let exec = Execution::new(db, &req, &incident.id, Duration::from_secs(1));
    approval_recorded(&store, &incident.id, "tester").await;

    let dir = std::env::temp_dir().join(format!("lifeboat-kill-failover-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config_file = dir.join("lifeboat.yaml");
    std::fs::write(&config_file, &yaml).unwrap();
    let env = [("LIFEBOAT_CONFIG_FILE", config_file.to_str().unwrap()), ("LIFEBOAT_INCIDENTS_TABLE", table.as_str())];
    let mut port = free_port().to_string();
    let mut watch = Watch::start(&moto, &port, &dir, &env);
    let payload = |action: &str, exec: &Value| json!({"action": action, "execution": exec}).to_string();
    let run = |watch: &mut Watch, action: &str, exec: &Value| -> Value {
        let file = dir.join(format!("{action}.json"));
        std::fs::write(&file, payload(action, exec)).unwrap();
        serde_json::from_str(watch.invoke("failover-steps", &file).trim()).unwrap()
    };
    let timeline =
        |item: &Value, key: &str| item["timeline"].as_array().into_iter().flatten().filter(|e| e["key"] == key).count();
    let pk = format!("incident#{}", incident.id);
    let incident_item = || raw_item(&moto, SRC, &table, &pk);

    // preflight also starts the binary (cargo lambda builds it on first use).
    let mut exec = run(&mut watch, "preflight", &serde_json::to_value(&exec).unwrap());
    for (action, service, operation) in
        [("act", "rds", "PromoteReadReplica"), ("dns", "route53", "ChangeResourceRecordSets")]
    {
        moto.post(
            "/_lifeboat/faults",
            &json!({"faults": [{"service": service, "operation": operation, "kinds": ["slow"], "delay": 6}]}),
        );
        let killed = invoke_in_background(&port, "failover-steps", &payload(action, &exec));
        std::thread::sleep(Duration::from_secs(3));
        assert!(kill("failover-steps"), "failover-steps was running {action}");
        abandon(killed);
        // The held call goes through after the sandbox is gone.
        std::thread::sleep(Duration::from_secs(5));
        let held = format!("{service}:{operation}");
        assert_eq!(moto.fault_counts()["injected"][&held], 1, "the kill came while {held} was in flight");
        moto.post("/_lifeboat/faults", &json!({"faults": []}));
        assert_eq!(timeline(&incident_item().await, &format!("step:{action}")), 0, "{action} was killed first");
        drop(watch);
        port = free_port().to_string();
        watch = Watch::start(&moto, &port, &dir, &env);
        exec = run(&mut watch, action, &exec);
        if action == "act" {
            for _ in 0..20 {
                exec = run(&mut watch, "status", &exec);
                if exec["status"]["available"] == true {
                    break;
                }
            }
        }
    }
    for action in ["dns-status", "endpoint", "verify"] {
        exec = run(&mut watch, action, &exec);
    }
    assert_eq!(cname(&moto, &zone, "db.orders.internal").await.as_deref(), Some(ORDERS_REPLICA));
    assert_eq!(orders_endpoint(&moto).await.as_deref(), Some(ORDERS_REPLICA));
    let item = incident_item().await;
    // The killed run's promotion went through: the run again found it made.
    let act = item["timeline"].as_array().into_iter().flatten().find(|e| e["key"] == "step:act").cloned();
    assert!(act.as_ref().and_then(|e| e["what"].as_str()).is_some_and(|w| w.starts_with("already done")), "{act:?}");
    for key in ["step:preflight", "step:act", "step:available", "step:dns", "step:endpoint", "step:verified"] {
        assert_eq!(timeline(&item, key), 1, "{key} once: {item}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
