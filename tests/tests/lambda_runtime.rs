//! The real `snapshot-copier` binary, run by `cargo lambda watch` (the Lambda runtime API emulator)
//! and invoked with a sample payload from events/, against the moto emulator; then the real
//! `snapshot-pruner` binary, as a dry run; then the real `notifier` on an AWS Health sample.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lifeboat_tests::*;

struct Watch(Child, std::path::PathBuf);

impl Drop for Watch {
    fn drop(&mut self) {
        // cargo lambda starts `cargo run`, which starts the function: end the whole group.
        let _ = Command::new("kill").arg("--").arg(format!("-{}", self.0.id())).status();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn cargo_lambda() -> std::path::PathBuf {
    repo_root().join(".venv/bin/cargo-lambda")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_binary_copies_a_snapshot_through_the_lambda_runtime_api() {
    let moto = Moto::start();
    let key = kms_key(&moto, "us-west-2").await;
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    create_instance(&moto, "us-east-1", "orders-prod").await;
    let arn = snapshot(&moto, "us-east-1", "orders-prod", "orders-before-upgrade", &[]).await;

    let dir = std::env::temp_dir().join(format!("lifeboat-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("lifeboat.yaml");
    std::fs::write(
        &config,
        format!(
            "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 1, min_keep: 1 }}\n"
        ),
    )
    .unwrap();
    let payload = dir.join("event.json");
    std::fs::write(&payload, event("rds-db-snapshot-manual-created.json", Some(&arn)).to_string()).unwrap();

    let port = free_port().to_string();
    let mut watch = Watch(
        Command::new(cargo_lambda())
            .args(["lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", &port])
            .current_dir(repo_root())
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("LIFEBOAT_CONFIG_FILE", &config)
            .env("LIFEBOAT_INCIDENTS_TABLE", &table)
            .env("LIFEBOAT_TOPIC_ARN", &topic)
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .stdout(Stdio::null())
            // A file, not a pipe: nobody drains a pipe while the test waits, and a full one would stall watch.
            .stderr(std::fs::File::create(dir.join("watch.log")).unwrap())
            .process_group(0)
            .spawn()
            .expect("start cargo lambda watch"),
        dir.join("watch.log"),
    );

    let output = invoke(&mut watch, "snapshot-copier", &port, &payload);
    let report: serde_json::Value = serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("{e}: {output}"));
    assert_eq!(report["trigger"], "RDS-EVENT-0042", "{report}");
    assert_eq!(report["started"].as_array().map(Vec::len), Some(1), "{report}");

    let copies: Vec<_> =
        db_snapshots(&moto, "us-west-2").await.into_iter().filter(|s| s.0.starts_with("lifeboat-")).collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(copies[0].2.as_deref(), Some(key.as_str()));

    // The pruner binary too, as a dry run: it reports its plan and deletes nothing.
    let before = everything(&moto, &["us-east-1", "us-west-2"]).await;
    let dry_run = repo_root().join("events/pruner-dry-run.json");
    let output = invoke(&mut watch, "snapshot-pruner", &port, &dry_run);
    let summary: serde_json::Value = serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("{e}: {output}"));
    assert_eq!(summary["dry_run"], true, "{summary}");
    assert_eq!(summary["groups"][0]["kept"].as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(everything(&moto, &["us-east-1", "us-west-2"]).await, before);

    // The notifier binary: a Health event about orders-prod becomes one notice.
    let output = invoke(&mut watch, "notifier", &port, &repo_root().join("events/health-rds-issue-open.json"));
    let report: serde_json::Value = serde_json::from_str(output.trim()).unwrap_or_else(|e| panic!("{e}: {output}"));
    assert_eq!(report["published"].as_array().map(Vec::len), Some(1), "{report}");
    let told = notices(&moto, "us-east-1", &inbox).await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert!(told[0].subject.contains("orders-prod"), "{}", told[0].subject);

    // Bad input through the real runtime: Lambda's errorType says NonRetryable, and nothing moved.
    let before = everything(&moto, &["us-east-1", "us-west-2"]).await;
    let said = invoke_failing("snapshot-copier", &port, &repo_root().join("events/malformed-snapshot-event.json"));
    assert!(said.contains("NonRetryable") && said.contains("malformed event"), "{said}");
    let said = invoke_failing("notifier", &port, &repo_root().join("events/notifier-declared.json"));
    assert!(said.contains("NonRetryable") && said.contains("no incident"), "{said}");
    assert_eq!(everything(&moto, &["us-east-1", "us-west-2"]).await, before);
    assert!(notices(&moto, "us-east-1", &inbox).await.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

fn cargo_lambda_invoke(function: &str, port: &str, payload: &std::path::Path) -> std::process::Output {
    Command::new(cargo_lambda())
        .args(["lambda", "invoke", function, "-A", "127.0.0.1", "-P", port, "-o", "json", "--data-file"])
        .arg(payload)
        .current_dir(repo_root())
        .output()
        .expect("run cargo lambda invoke")
}

/// One `cargo lambda invoke` of a function already running, expected to fail: what it said.
fn invoke_failing(function: &str, port: &str, payload: &std::path::Path) -> String {
    let out = cargo_lambda_invoke(function, port, payload);
    assert!(!out.status.success(), "{function} should have failed: {}", String::from_utf8_lossy(&out.stdout));
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// `cargo lambda invoke`; the first invoke of a function compiles and starts it, so retry until
/// the runtime answers (or `watch` dies).
fn invoke(watch: &mut Watch, function: &str, port: &str, payload: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let out = cargo_lambda_invoke(function, port, payload);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).to_string();
        }
        if let Ok(Some(status)) = watch.0.try_wait() {
            let log = std::fs::read_to_string(&watch.1).unwrap_or_default();
            panic!("cargo lambda watch exited ({status}): {log}");
        }
        assert!(Instant::now() < deadline, "invoke kept failing: {}", String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_secs(2));
    }
}
