//! The real `lifeboat` binary against moto, with the functions deployed (`cargo lambda watch`):
//! check on the example and a broken config; plan reads only; failover and approve from the CLI
//! move the database with the caller's AWS identity on the timeline; a second approve, a reject
//! after it and the approval page after it all answer "already decided"; the timeline's Markdown
//! is what the resolved message carries; status and incidents answer for scripts.

use std::process::Command;
use std::time::{Duration, Instant};

use lifeboat_tests::*;
use serde_json::{json, Value};

#[test]
fn check_takes_the_example_and_names_the_field_of_a_broken_config() {
    let moto_free: &[(&str, &str)] = &[];
    let example = repo_root().join("examples/lifeboat.yaml");
    let ok = lifeboat_offline(moto_free, &["check", example.to_str().unwrap()]);
    assert_eq!(ok.code, 0, "{ok:?}");
    assert!(ok.stdout.contains("ok, 3 databases"), "{ok:?}");
    let dir = std::env::temp_dir().join(format!("lifeboat-cli-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let broken = dir.join("broken.yaml");
    // Two databases wrong: both are listed, each with its field.
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replacen("rpo: 5m", "rpo: soon", 1)
        .replacen("rto: 1h", "rto: 0s", 1);
    std::fs::write(&broken, text).unwrap();
    let bad = lifeboat_offline(moto_free, &["check", broken.to_str().unwrap(), "--json"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    let v: Value = serde_json::from_str(&bad.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(v["problems"][0].as_str().unwrap_or("").contains("databases[0].rpo"), "{v}");
    assert!(v["problems"][1].as_str().unwrap_or("").contains("databases[1]"), "{v}");
    assert_eq!(lifeboat_offline(moto_free, &["frobnicate"]).code, 2, "usage");
    // Shell completions come from clap's own description of the commands.
    let bash = lifeboat_offline(moto_free, &["completions", "bash"]);
    assert_eq!(bash.code, 0, "{bash:?}");
    for command in ["status", "plan", "failover", "approve", "reject", "timeline", "drill"] {
        assert!(bash.stdout.contains(command), "bash completions know {command}");
    }
    assert_eq!(lifeboat_offline(moto_free, &["completions", "tcsh-9"]).code, 2, "an unknown shell is a usage error");
}

/// With no credentials anywhere, or AWS out of reach, every command says so in one line a person
/// can act on, exit 3: not the SDK's provider chain and a debug dump.
#[test]
fn with_no_credentials_or_no_aws_the_error_is_one_line_that_says_what_to_do() {
    let home = std::env::temp_dir().join(format!("lifeboat-cli-nohome-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut c = Command::new(lifeboat_cli());
        for var in
            ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"]
        {
            c.env_remove(var);
        }
        let out = c
            .args(args)
            .env("HOME", &home)
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("LIFEBOAT_INCIDENTS_TABLE", "lifeboat-incidents")
            .env("LIFEBOAT_OPERATOR_URL", "http://127.0.0.1:9/")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    for args in
        [&["--region", "us-east-1", "incidents"][..], &["--region", "us-east-1", "approve", "x", "--confirm", "x"]]
    {
        let (code, stderr) = run(&[], args);
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains("no AWS credentials") && stderr.contains("--profile"), "{stderr}");
    }
    let port = free_port().to_string();
    let unreachable = format!("http://127.0.0.1:{port}");
    let (code, stderr) = run(
        &[("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "y"), ("AWS_ENDPOINT_URL", &unreachable)],
        &["--region", "us-east-1", "incidents"],
    );
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("did not answer"), "{stderr}");
}

/// `check` and `--help` need no AWS at all.
fn lifeboat_offline(env: &[(&str, &str)], args: &[&str]) -> Ran {
    let out = std::process::Command::new(lifeboat_cli()).args(args).envs(env.iter().copied()).output().unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_from_the_cli_is_decided_once_with_the_callers_identity() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let zone = orders_with_replica(&moto).await;
    // The two-person rule, which only an identity AWS verified can keep.
    let yaml =
        orders_failover_yaml(&format!("      dns: {{ zone_id: {zone}, record: db.orders.internal, ttl: 60 }}\n"))
            .replace("approval: required", "approval: { via: aws-identity, distinct_from_requester: true }");
    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
    bed.warm_operator();
    let config_file = bed.dir.join("lifeboat.yaml");
    let url = operator_url(&moto);
    let env = [
        ("LIFEBOAT_INCIDENTS_TABLE", table.as_str()),
        ("LIFEBOAT_OPERATOR_URL", url.as_str()),
        ("LIFEBOAT_CONFIG_FILE", config_file.to_str().unwrap()),
        ("LIFEBOAT_RECOVERS", "all"),
    ];
    // People, each a session of a role holding the stack's managed policies.
    let both = ["OperatorReadOnlyPolicy", "ApproverPolicy"];
    let as_who = |creds: Vec<(&'static str, String)>| -> Vec<(&'static str, String)> {
        env.iter().map(|(k, v)| (*k, v.to_string())).chain(creds).collect()
    };
    let alice = as_who(person(&moto, "lifeboat-approver", &both, "alice").await);
    let bob = as_who(person(&moto, "lifeboat-approver", &both, "bob").await);
    let carol = as_who(person(&moto, "lifeboat-approver", &both, "carol").await);
    let read_only = as_who(person(&moto, "lifeboat-reader", &["OperatorReadOnlyPolicy"], "dave").await);
    let run_as = |who: &[(&'static str, String)], args: &[&str]| {
        let e: Vec<(&str, &str)> = who.iter().map(|(k, v)| (*k, v.as_str())).collect();
        lifeboat(&moto, &e, args)
    };
    let cli = |args: &[&str]| run_as(&alice, args);
    const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/lifeboat-approver/alice";
    const BOB: &str = "arn:aws:sts::123456789012:assumed-role/lifeboat-approver/bob";

    // plan: what a failover would do, and the emulator sees reads only.
    moto.post("/_lifeboat/faults", &json!({"faults": []}));
    let plan = cli(&["plan", "orders-prod"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("What will happen: promote replica orders-replica"), "{plan:?}");
    assert!(plan.stdout.contains("DNS: UPSERT of CNAME db.orders.internal"), "{plan:?}");
    moto.only_reads_since_zeroed(&[]);
    assert_eq!(cli(&["plan", "no-such-db"]).code, 1);

    // failover: the operator URL runs the trigger's path; the requester is who AWS verified. A
    // person with the read-only policy alone is refused by AWS itself and opens nothing.
    let refused = run_as(&read_only, &["failover", "orders-prod", "--reason", "primary unreachable"]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(refused.stderr.contains("ApproverPolicy"), "{refused:?}");
    assert_eq!(cli(&["incidents", "--open", "--json"]).stdout.trim(), "[]", "nothing opened");
    let started = cli(&["failover", "orders-prod", "--reason", "primary unreachable", "--json"]);
    assert_eq!(started.code, 0, "{started:?}");
    let report: Value = serde_json::from_str(&started.stdout).expect("json");
    let id = report["incident_id"].as_str().expect("incident").to_owned();
    let execution = report["execution_arn"].as_str().expect("execution").to_owned();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let open = cli(&["incidents", "--open", "--json"]);
        let v: Value = serde_json::from_str(&open.stdout).unwrap_or_default();
        if v[0]["status"] == "awaiting-approval" {
            break;
        }
        bed.watch.check_alive();
        assert!(Instant::now() < deadline, "never awaited approval: {open:?}\n{}", bed.watch.log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let ask = loop {
        if let Some(n) = notices(&moto, "us-east-1", &inbox).await.into_iter().find(|n| n.subject.contains("approval"))
        {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    // Two more people ask with --follow: each joins the open incident and follows its timeline;
    // one leaves with Ctrl-C (the failover goes on, and it says so), one stays to the end.
    let follow = ["failover", "orders-prod", "--reason", "still down", "--follow"];
    let carols: Vec<(&str, &str)> = carol.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let to_the_end = lifeboat_spawn(&moto, &carols, &follow);
    let mut leaves = lifeboat_spawn(&moto, &carols, &follow);
    let (lines, seen) = std::sync::mpsc::channel();
    let out = leaves.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            all.push_str(&line);
            all.push('\n');
            let _ = lines.send(line);
        }
        all
    });
    // Its first timeline line printed: it is following (and listening for Ctrl-C).
    let first = seen.recv_timeout(Duration::from_secs(60)).expect("a first line");
    assert!(first.contains(&format!("already has an open incident, {id}")), "{first}");
    seen.recv_timeout(Duration::from_secs(30)).expect("the timeline");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sent = Command::new("kill").args(["-INT", &leaves.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let left = leaves.wait().expect("lifeboat ends");
    assert_eq!(left.code(), Some(0), "Ctrl-C leaves the failover running, exit 0");
    let printed = reader.join().expect("reader");
    assert!(printed.contains(&format!("left running: `lifeboat timeline {id}` shows where it is")), "{printed}");
    assert!(cli(&["incidents", "--open", "--json"]).stdout.contains("awaiting-approval"), "still waiting");

    // Production: the name typed, or nothing is decided.
    let unconfirmed = cli(&["approve", &id]);
    assert_eq!(unconfirmed.code, 1, "{unconfirmed:?}");
    assert!(unconfirmed.stderr.contains("--confirm orders-prod"), "{unconfirmed:?}");
    // The two-person rule: neither the requester nor someone who joined with a request of their
    // own may approve; the approval page's typed name counts for nothing here.
    for (who, name) in [(&alice, "alice"), (&carol, "carol")] {
        let own = run_as(who, &["approve", &id, "--confirm", "orders-prod"]);
        assert_eq!(own.code, 1, "{name}: {own:?}");
        assert!(own.stderr.contains("two-person rule"), "{name}: {own:?}");
    }
    let page = post_form(line_after(&ask.text, "Approve: "), "approver=Bob&database=orders-prod");
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("lifeboat approve"), "{}", page.body);
    let by_reader = run_as(&read_only, &["approve", &id, "--confirm", "orders-prod"]);
    assert_eq!(by_reader.code, 3, "AWS refuses the read-only identity: {by_reader:?}");
    assert!(cli(&["incidents", "--open", "--json"]).stdout.contains("awaiting-approval"), "still waiting");
    let approved = run_as(&bob, &["approve", &id, "--confirm", "orders-prod"]);
    assert_eq!(approved.code, 0, "{approved:?}");
    assert!(approved.stdout.contains(&format!("approved by {BOB}")), "the principal AWS verified: {approved:?}");
    for again in
        [run_as(&bob, &["approve", &id, "--confirm", "orders-prod"]), cli(&["reject", &id, "--reason", "late"])]
    {
        assert_eq!(again.code, 1, "{again:?}");
        assert!(
            again.stderr.contains("is waiting for approval") && again.stderr.contains(&format!("approved by {BOB}")),
            "{again:?}"
        );
    }
    let page = post_form(line_after(&ask.text, "Approve: "), "approver=Alice&database=orders-prod");
    assert!(page.body.contains("Already decided"), "{}", page.body);

    let sfn = aws_sdk_sfn::Client::new(&moto.sdk("us-east-1").await);
    let (status, output) = execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(300)).await;
    assert_eq!(status, "SUCCEEDED", "{output}\n{}", bed.watch.log());
    let resolved = loop {
        if let Some(n) = notices(&moto, "us-east-1", &inbox).await.into_iter().find(|n| n.subject.contains("resolved"))
        {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let followed = to_the_end.wait_with_output().expect("lifeboat --follow ends");
    let followed = String::from_utf8_lossy(&followed.stdout);
    assert!(followed.contains(&format!("approved by {BOB}")), "{followed}");
    assert!(followed.trim_end().ends_with(&format!("incident {id} is resolved")), "{followed}");
    let md = cli(&["timeline", &id]);
    assert_eq!(md.code, 0, "{md:?}");
    assert!(md.stdout.contains(&format!("| {ALICE} |")), "the requester, as AWS verified: {md:?}");
    assert!(md.stdout.contains(&format!("approved by {BOB}")), "{md:?}");
    // The message has the timeline as it stood when sent; the CLI has it since (people told ...).
    let sent: Vec<&str> = resolved.text.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(sent.len() > 10, "{}", resolved.text);
    let shown: Vec<&str> = md.stdout.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(&shown[..sent.len()], &sent[..], "the resolved message carries the same timeline:\n{}", md.stdout);
    assert_eq!(orders_endpoint(&moto).await.as_deref(), Some(ORDERS_REPLICA));

    let status = cli(&["status", "orders-prod", "--json"]);
    let v: Value = serde_json::from_str(&status.stdout).unwrap_or_else(|e| panic!("{e}: {status:?}"));
    assert_eq!(v["databases"][0]["database"], "orders-prod", "{v}");
    assert!(v["databases"][0]["incident"].is_null(), "resolved, so none open: {v}");
    // It serves from the replica's region now, and nothing copies it anywhere (no copy_to).
    let active = &v["databases"][0]["active"];
    assert_eq!(active["region"], "us-west-2", "{v}");
    assert_eq!(active["incident"], id.as_str(), "{v}");
    assert_eq!(active["protected"], "no", "{v}");
    let all = cli(&["incidents"]);
    assert!(all.stdout.contains(&id) && all.stdout.contains("resolved"), "{all:?}");
    let missing = cli(&["timeline", "orders-prod-19700101T0000Z-0000"]);
    assert_eq!(missing.code, 1, "{missing:?}");
}

/// Without LIFEBOAT_* names, the stack's outputs name the table (one DescribeStacks); a stack
/// that isn't there says how to name it, exit 1.
#[tokio::test]
async fn names_come_from_the_stacks_outputs() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let template = json!({
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {
            "IncidentsTableName": {"Value": table},
            "FailoverStateMachineArn": {"Value": "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-failover"},
            "DrillStateMachineArn": {"Value": "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-drill"},
            "ConfigParameterName": {"Value": "/lifeboat/config"},
            "Recovers": {"Value": "own"}
        }
    });
    aws_sdk_cloudformation::Client::new(&moto.sdk("us-east-1").await)
        .create_stack()
        .stack_name("lifeboat-prod")
        .template_body(template.to_string())
        .send()
        .await
        .expect("stack");
    let listed = lifeboat(&moto, &[], &["--stack", "lifeboat-prod", "incidents", "--open", "--json"]);
    assert_eq!(listed.code, 0, "{listed:?}");
    assert_eq!(serde_json::from_str::<Value>(&listed.stdout).unwrap(), json!([]));
    let missing = lifeboat(&moto, &[], &["--stack", "nope", "incidents"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("no stack nope in us-east-1"), "{missing:?}");
}
