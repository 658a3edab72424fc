//! Killed mid-run, then run again: the real `snapshot-copier` and `snapshot-pruner` binaries (in
//! `cargo lambda watch`) are SIGKILLed while their calls are in flight (each made slow by the
//! emulator's `slow` fault), then invoked again, as Lambda's retry or the next schedule would:
//! every snapshot ends copied exactly once, and exactly the planned snapshots deleted.

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
        .args(["lambda", "invoke", function, "-A", "127.0.0.1", "-P", port, "--data", data])
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

    // The pruner, killed between its deletes, then run again: exactly the plan is deleted.
    // Warm first: this emulator starts the pruner on its first invocation.
    watch.invoke("snapshot-pruner", &plan);
    moto.post(
        "/_lifeboat/faults",
        &json!({"faults": [{"service": "rds", "operation": "DeleteDBSnapshot", "kinds": ["slow"], "delay": 2}]}),
    );
    let killed_prune = invoke_in_background(&port, "snapshot-pruner", "{}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(kill("snapshot-pruner"), "the pruner was running");
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
