//! Lifeboat's own share of a recovery, and every function's init time and peak memory.
//!
//! `scripts/bench.sh` runs it (release binaries). Against moto AWS's own work is instant, so
//! what is left is Lifeboat's: its functions, moto's Step Functions interpreter between them, and
//! the Wait states (`LIFEBOAT_FAILOVER_POLL_SECONDS`, 1 s here) that bound the waits.
//!
//! 1. A failover through the real bed (moto's interpreter, the release binaries in `cargo lambda
//!    watch`, the approval handler over HTTP), `RUNS` times (default 3), each phase from what a
//!    person would see: alarm event → approval request published; approval POST → recovery call
//!    made (the timeline's `step:act`); new primary available (`step:available`) → DNS and the
//!    parameter written and verified (`step:verified`). Observed by polling every 20 ms.
//! 2. Each binary started under a one-invocation Runtime API of ours: init is process start to
//!    its first `invocation/next`; peak RSS is `VmHWM` after one invocation. Written here because
//!    `cargo lambda watch` reports neither.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lifeboat_tests::*;
use serde_json::{json, Value};

const FUNCTIONS: [&str; 10] = [
    "snapshot-copier",
    "snapshot-pruner",
    "notifier",
    "rpo-monitor",
    "failover-trigger",
    "failover-steps",
    "approval-handler",
    "dr-drill",
    "data-validator",
    "reprotect",
];

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime");
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    if std::env::var("BENCH_ONLY").map_or(true, |o| o == "failover") {
        let phases: Vec<[Duration; 3]> = (0..runs).map(|_| rt.block_on(failover_once())).collect();
        println!("\n| Phase (poll 1 s) | runs | median | min | max |\n|---|---|---|---|---|");
        for (i, name) in [
            "alarm event → approval request published",
            "approval POST → recovery call made",
            "new primary available → DNS + parameter verified",
        ]
        .iter()
        .enumerate()
        {
            let mut v: Vec<Duration> = phases.iter().map(|p| p[i]).collect();
            v.sort();
            println!("| {name} | {runs} | {} | {} | {} |", ms(v[v.len() / 2]), ms(v[0]), ms(v[v.len() - 1]));
        }
    }
    if std::env::var("BENCH_ONLY").map_or(true, |o| o == "init") {
        rt.block_on(init_and_memory(runs));
    }
    if std::env::var("BENCH_ONLY").map_or(true, |o| o == "data") {
        rt.block_on(data_checks(runs.max(5)));
    }
}

/// What the data checks add to a drill or a failover: the validator's whole run (the secret read,
/// TCP, TLS verified, login, the checks and the freshness read in one transaction) against a
/// real PostgreSQL and MariaDB server of 1,000 users, the login cached after the first as in a
/// warm function.
async fn data_checks(runs: usize) {
    use lifeboat_tests::real_db::{login_secret, order_written, real_instance, VALIDATOR};
    let moto = Moto::start();
    let secret = login_secret(&moto, "us-west-2", "lifeboat-validator", VALIDATOR).await;
    let mut yaml = String::from("databases:\n");
    let mut targets = Vec::new();
    for engine in ["postgres", "mariadb"] {
        let db = real_instance(&moto, "us-west-2", engine, engine, 1000).await;
        order_written(&db, 30);
        yaml.push_str(&format!(
            "  - name: {engine}\n    source: arn:aws:rds:us-west-2:{ACCOUNT}:db:{engine}\n    tier: production\n    rpo: 5m\n    rto: 30m\n    validate:\n      connect: {{ secret: \"{secret}\", database: orders }}\n      checks:\n        - {{ name: users exist, sql: \"select count(*) from users\", expect: \">= 1000\" }}\n        - {{ name: no orphan orders, sql: \"select count(*) from orders o left join users u on u.id = o.user_id where u.id is null\", expect: \"= 0\" }}\n      freshness: \"select max(updated_at) from orders\"\n"
        ));
        targets.push((engine, db));
    }
    let file = std::env::temp_dir().join(format!("lifeboat-bench-data-{}.yaml", std::process::id()));
    std::fs::write(&file, &yaml).expect("config");
    let sdk = moto.functions_sdk("us-west-2").await;
    let config = lifeboat_core::aws::ConfigCache::new(
        lifeboat_core::aws::ConfigSource::File(file.to_string_lossy().into_owned()),
        &sdk,
        lifeboat_core::aws::CONFIG_TTL,
    );
    let ca = std::fs::read(&targets[0].1.ca).expect("the emulator's CA");
    let roots = lifeboat_core::aws::db::Roots::from_pem(&ca).expect("roots");
    let deps = data_validator::Deps::new(config, &sdk, Some(roots), None);
    println!(
        "\n| Data checks (2 checks + freshness) | runs | first (cold login) | median | max |\n|---|---|---|---|---|"
    );
    for (engine, db) in &targets {
        let target = data_validator::Target {
            address: db.host.clone(),
            port: db.port,
            engine: (*engine).to_owned(),
            cluster: None,
            region: None,
        };
        let mut took = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let r = data_validator::validate(&deps, engine, &target, None, chrono::Utc::now()).await.expect("validate");
            took.push(started.elapsed());
            assert!(r.passed, "{r:?}");
        }
        let first = took[0];
        took.sort();
        println!("| {engine} | {runs} | {} | {} | {} |", ms(first), ms(took[took.len() / 2]), ms(took[took.len() - 1]));
    }
    let _ = std::fs::remove_file(file);
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

async fn failover_once() -> [Duration; 3] {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let zone = orders_with_replica(&moto).await;
    let yaml = orders_failover_yaml(&format!(
        "      triggers: {{ alarms: [orders-prod-db-down] }}\n      dns: {{ zone_id: {zone}, record: db.orders.internal, ttl: 60 }}\n"
    ));
    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
    // Warm every function the failover uses, so the figures hold no build and no cold start.
    bed.trigger("warm", &event("cloudwatch-alarm-back-to-ok.json", None));
    bed.invoke("notifier", "warm-notifier", &event("notifier-progress-schedule.json", None));
    let bad = bed.dir.join("warm-steps.json");
    std::fs::write(&bad, "{}").expect("payload");
    bed.watch.invoke_failing("failover-steps", &bad);
    let _ = http("GET", &bed.approval_url, None);
    notices(&moto, "us-east-1", &inbox).await;

    let start = Instant::now();
    let report = bed.trigger("alarm", &event("cloudwatch-alarm-into-alarm.json", None));
    let id = report["incident_id"].as_str().unwrap_or_else(|| panic!("{report}")).to_owned();
    let ask = loop {
        if let Some(n) = notices(&moto, "us-east-1", &inbox).await.into_iter().find(|n| n.subject.contains("approval"))
        {
            break n;
        }
        assert!(start.elapsed() < Duration::from_secs(120), "no approval request\n{}", bed.watch.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let asked = start.elapsed();
    let approve = line_after(&ask.text, "Approve: ").to_owned();
    let posted = Instant::now();
    let decided = post_form(&approve, "approver=bench&database=orders-prod");
    assert_eq!(decided.status, 200, "{}", decided.body);
    let at = |key: &'static str| {
        let (moto, table, id) = (&moto, &table, &id);
        async move {
            loop {
                let item = raw_item(moto, "us-east-1", table, &format!("incident#{id}")).await;
                if item["timeline"].as_array().into_iter().flatten().any(|e| e["key"] == key) {
                    return Instant::now();
                }
                assert!(posted.elapsed() < Duration::from_secs(120), "no {key}: {item}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let acted = at("step:act").await;
    let available = at("step:available").await;
    let verified = at("step:verified").await;
    let phases = [asked, acted - posted, verified - available];
    println!("run: {phases:?}");
    phases
}

/// What the fake Runtime API saw.
enum Seen {
    Next,
    Answered(String),
}

/// One connection of the Runtime API: the first `invocation/next` gets `payload`, the answer is
/// taken, a later `next` is left waiting (the function idles as it would between invocations).
fn runtime_connection(
    mut stream: TcpStream,
    payload: &str,
    first: &std::sync::atomic::AtomicBool,
    tx: mpsc::Sender<Seen>,
) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).expect("body");
        if line.starts_with("GET") && line.contains("/invocation/next") {
            let _ = tx.send(Seen::Next);
            if !first.swap(false, std::sync::atomic::Ordering::SeqCst) {
                std::thread::park();
                return;
            }
            let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: bench-1\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:{ACCOUNT}:function:bench\r\nLambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{payload}",
                payload.len()
            );
        } else {
            let _ = tx.send(Seen::Answered(format!("{} {}", line.trim(), String::from_utf8_lossy(&body))));
            let _ = write!(stream, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

/// (init, peak RSS in kB, what the function answered) for one cold start and one invocation.
fn one_invocation(function: &str, env: &[(&str, String)], payload: &Value) -> (Duration, u64, String) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let api = listener.local_addr().expect("addr").to_string();
    let binary = repo_root().join("target/release").join(function);
    let started = Instant::now();
    let mut child = Command::new(&binary)
        .env("AWS_LAMBDA_RUNTIME_API", &api)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/bench.sh, which builds it)", binary.display()));
    let (tx, rx) = mpsc::channel();
    let payload = payload.to_string();
    std::thread::spawn(move || {
        let first = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        for stream in listener.incoming().flatten() {
            let (tx, payload, first) = (tx.clone(), payload.clone(), first.clone());
            std::thread::spawn(move || runtime_connection(stream, &payload, &first, tx));
        }
    });
    let mut init = None;
    let mut answer = String::new();
    loop {
        match rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{function}: no word from the runtime"))
        {
            Seen::Next if init.is_none() => init = Some(started.elapsed()),
            Seen::Next => break,
            Seen::Answered(a) => answer = a,
        }
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    (init.unwrap_or_default(), rss, answer)
}

async fn init_and_memory(runs: usize) {
    let built = Command::new("cargo")
        .args(["build", "--release", "--locked", "--bins"])
        .current_dir(repo_root())
        .status()
        .expect("cargo");
    assert!(built.success(), "release build");
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, _) = topic_with_queue(&moto, "us-east-1").await;
    put_config(&moto, include_str!("../../examples/lifeboat.yaml"), aws_sdk_ssm::types::ParameterType::String).await;
    aws_sdk_ssm::Client::new(&moto.sdk("us-east-1").await)
        .put_parameter()
        .name(APPROVAL_KEY_PARAM)
        .value("bench-approval-key-0123456789abcdef-0123456789")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .expect("approval key");
    let env = vec![
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("LIFEBOAT_INCIDENTS_TABLE", table),
        ("LIFEBOAT_TOPIC_ARN", topic),
        ("LIFEBOAT_APPROVAL_SECRET_PARAM", APPROVAL_KEY_PARAM.to_owned()),
        ("LIFEBOAT_FAILOVER_STATE_MACHINE_ARN", format!("arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:bench")),
    ];
    let payloads = [
        event("scheduled-sweep.json", None),
        event("pruner-dry-run.json", None),
        event("notifier-progress-schedule.json", None),
        json!({}),
        event("cloudwatch-alarm-back-to-ok.json", None),
        json!({"action": "verify"}),
        event("approval-url-get.json", None),
        event("dr-drill-report.json", None),
        event("data-validator-heartbeat.json", None),
        // The schedule with nothing moved: reads the active sides, builds nothing.
        event("scheduled-sweep.json", None),
    ];
    println!("\n| Function | invocation | init (median of {runs}) | peak RSS (max) |\n|---|---|---|---|");
    for (function, payload) in FUNCTIONS.iter().zip(payloads) {
        let mut inits = Vec::new();
        let mut rss = 0;
        let mut said = String::new();
        for _ in 0..runs {
            let (init, peak, answer) = one_invocation(function, &env, &payload);
            inits.push(init);
            rss = rss.max(peak);
            said = answer;
        }
        inits.sort();
        let kind = if said.contains("/error") { "refused (bad input)" } else { "answered" };
        println!("| {function} | {kind} | {} | {:.1} MB |", ms(inits[inits.len() / 2]), rss as f64 / 1024.0);
    }
}
