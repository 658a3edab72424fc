//! Data checks inside recovered databases, and the data loss measured there, against real
//! PostgreSQL and MariaDB servers the emulator runs behind its RDS instances
//! (scripts/emulator/databases.py): a restore holds its snapshot's data, a promoted replica what it
//! had replicated. The machines run in moto's interpreter, their steps (the data validator's
//! included) in `cargo lambda watch`; the named results and the heartbeat call the validator
//! in-process.

use std::time::{Duration, Instant};

use chrono::Utc;
use data_validator::{Deps, Target};
use lifeboat_core::aws::db::{self, Endpoint, Engine, Roots};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::{ConfigCache, ConfigSource, CONFIG_TTL};
use lifeboat_core::decide::validate::Against;
use lifeboat_tests::real_db::{
    iam_reader, login_secret, order_written, orders_schema, real_instance, RealDb, HEARTBEAT, IAM_READER, VALIDATOR,
};
use lifeboat_tests::*;
use serde_json::{json, Value};

/// The checks a DBA would write for `orders`: enough users, no order without its user, and the
/// newest order's time as the newest write.
fn validate_yaml(secret: &str, users_at_least: u32, extra: &str) -> String {
    format!(
        "    validate:\n      connect: {{ secret: \"{secret}\", database: orders }}\n      checks:\n        - {{ name: users exist, sql: \"select count(*) from users\", expect: \">= {users_at_least}\" }}\n        - {{ name: no orphan orders, sql: \"select count(*) from orders o left join users u on u.id = o.user_id where u.id is null\", expect: \"= 0\" }}\n      freshness: \"select max(updated_at) from orders\"\n      timeout: 5s\n{extra}"
    )
}

/// A DR copy of `database` in us-west-2 taken now from `seed` (as the copier tags one).
async fn copy_now(moto: &Moto, seed: &str, database: &str, id: &str) {
    let source = format!("arn:aws:rds:us-east-1:{ACCOUNT}:snapshot:{}", id.trim_start_matches("lifeboat-"));
    let tags =
        [("lifeboat:managed", "true"), ("lifeboat:database", database), ("lifeboat:source-arn", source.as_str())];
    taken_at(moto, "us-west-2", seed, false, &[(id.to_owned(), Utc::now())], &tags).await;
}

fn drill_db(name: &str, key: &str, validate: &str) -> String {
    format!(
        "  - name: {name}\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 3, min_keep: 1 }}\n    drill:\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n{validate}"
    )
}

async fn drill(bed: &mut RecoveryBed, moto: &Moto, database: &str) -> (String, Value) {
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk("us-east-1").await);
    let started = bed.invoke("dr-drill", database, &json!({"database": database}));
    let execution = started["started"][0]["execution_arn"].as_str().unwrap_or_else(|| panic!("{started}")).to_owned();
    execution_ends(&sfn, &execution, &bed.watch, Duration::from_secs(420)).await
}

fn check<'a>(data: &'a Value, name: &str) -> &'a Value {
    data["checks"].as_array().and_then(|c| c.iter().find(|c| c["name"] == name)).unwrap_or_else(|| panic!("{data}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drill_checks_the_restored_data_as_of_its_snapshot_in_postgresql_mariadb_and_aurora() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let key = kms_key(&moto, "us-west-2").await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": "us-west-2", "name": "dr-db"}));
    let secret = login_secret(&moto, "us-west-2", "lifeboat-validator-orders", VALIDATOR).await;

    // PostgreSQL: 1,000 users and an order written 90 s before the copy of orders-prod; then the
    // tables are emptied, AFTER that copy and BEFORE billing-prod's.
    let pg = real_instance(&moto, "us-west-2", "seed-pg", "postgres", 1000).await;
    order_written(&pg, 90);
    iam_reader(&pg);
    copy_now(&moto, "seed-pg", "orders-prod", "lifeboat-orders-prod-1").await;
    // The same copy for a database whose checks log in with an IAM token: its drill's restore
    // must get IAM authentication on (a restore comes with it off).
    copy_now(&moto, "seed-pg", "orders-iam", "lifeboat-orders-iam-1").await;
    pg.admin("orders", "delete from orders; delete from users");
    copy_now(&moto, "seed-pg", "billing-prod", "lifeboat-billing-prod-1").await;
    // MariaDB: the same schema, an order written 30 s before its copy.
    let maria = real_instance(&moto, "us-west-2", "seed-maria", "mariadb", 1000).await;
    order_written(&maria, 30);
    copy_now(&moto, "seed-maria", "ledger-prod", "lifeboat-ledger-prod-1").await;

    // Aurora PostgreSQL: a cluster, its copy a cluster snapshot; the drill restores a cluster and
    // its writer, and the checks ask the cluster's writer endpoint.
    create_cluster(&moto, "us-west-2", "seed-aurora").await;
    let aurora = RealDb::attach_cluster(&moto, "us-west-2", "seed-aurora");
    orders_schema(&aurora, 1000);
    order_written(&aurora, 45);
    let source = format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster-snapshot:catalog-aurora-1");
    let tags =
        [("lifeboat:managed", "true"), ("lifeboat:database", "catalog-aurora"), ("lifeboat:source-arn", &source)];
    taken_at(&moto, "us-west-2", "seed-aurora", true, &[("lifeboat-catalog-aurora-1".to_owned(), Utc::now())], &tags)
        .await;
    // The same data for a database checked over the Data API: its drill's restore gets the HTTP
    // endpoint on (a restore comes with it off), and the checks go over HTTPS.
    let source = format!("arn:aws:rds:us-east-1:{ACCOUNT}:cluster-snapshot:catalog-api-1");
    let tags = [("lifeboat:managed", "true"), ("lifeboat:database", "catalog-api"), ("lifeboat:source-arn", &source)];
    taken_at(&moto, "us-west-2", "seed-aurora", true, &[("lifeboat-catalog-api-1".to_owned(), Utc::now())], &tags)
        .await;

    let checks = validate_yaml(&secret, 1000, "");
    let over_api = checks.replace("database: orders }", "database: orders, data_api: true }");
    let by_token = checks.replace(&format!("secret: \"{secret}\""), &format!("iam_user: {IAM_READER}"));
    let yaml = format!(
        "databases:\n{}{}{}{}{}{}",
        drill_db("orders-prod", &key, &checks),
        drill_db("orders-iam", &key, &by_token),
        drill_db("billing-prod", &key, &checks),
        drill_db("ledger-prod", &key, &checks),
        drill_db("catalog-aurora", &key, &checks).replace(":db:catalog-aurora", ":cluster:catalog-aurora"),
        drill_db("catalog-api", &key, &over_api).replace(":db:catalog-api", ":cluster:catalog-api")
    );
    // A database serving from seed-maria itself, for `lifeboat validate` on its primary.
    let yaml = format!(
        "{yaml}  - name: ledger-live\n    source: arn:aws:rds:us-west-2:{ACCOUNT}:db:seed-maria\n    tier: production\n    rpo: 5m\n    rto: 30m\n{checks}"
    );
    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;

    // Emptied after the snapshot: the restore still has them, and the drill passes, its
    // achieved RPO measured from the newest order to the copy's time.
    let drilled =
        [("orders-prod", 90), ("orders-iam", 90), ("ledger-prod", 30), ("catalog-aurora", 45), ("catalog-api", 45)];
    for (database, written_ago) in drilled {
        let (status, output) = drill(&mut bed, &moto, database).await;
        assert_eq!(status, "SUCCEEDED", "{database}: {output}\n{}", bed.watch.log());
        let data = &output["data"];
        assert_eq!(data["passed"], true, "{data}");
        assert_eq!(check(data, "users exist")["value"], "1000", "{data}");
        assert_eq!(check(data, "no orphan orders")["outcome"], "passed", "{data}");
        let seconds = data["loss"]["seconds"].as_i64().unwrap_or_else(|| panic!("measured: {data}"));
        assert!((written_ago..written_ago + 60).contains(&seconds), "{database}: {seconds}s\n{data}");
        assert_eq!(data["loss"]["rpo_met"], true, "{data}");
        assert_eq!(output["result"]["passed"], true, "{output}");
    }

    // catalog-api's restore had its endpoint turned on, and its checks went over the Data API:
    // one transaction, rolled back.
    let calls = moto.fault_counts()["calls"].clone();
    assert_eq!(calls["rds:EnableHttpEndpoint"], 1, "{calls}");
    assert_eq!(
        (calls["rds-data:BeginTransaction"].clone(), calls["rds-data:RollbackTransaction"].clone()),
        (json!(1), json!(1)),
        "{calls}"
    );
    assert!(calls.get("rds-data:CommitTransaction").is_none(), "{calls}");

    // Emptied before the snapshot: the drill fails, naming the check.
    let (status, _) = drill(&mut bed, &moto, "billing-prod").await;
    assert_eq!(status, "FAILED");
    let store = IncidentStore::new(&moto.sdk("us-east-1").await, &table);
    let failed = store.last_drill("billing-prod").await.unwrap().expect("a stored result");
    assert!(!failed.passed);
    let why = failed.failure.clone().unwrap_or_default();
    assert!(why.contains("users exist"), "{why}");
    let data = failed.data.clone().expect("the data report kept");
    assert_eq!(data.checks[0].value.as_deref(), Some("0"), "{data:?}");
    assert!(data.unmeasured.is_some() && data.loss.is_none(), "no order, no newest write: {data:?}");

    // Told once each; the failed drill's message names the check and what it answered.
    let said = notices(&moto, "us-east-1", &inbox).await;
    let failed_told: Vec<&Notice> = said.iter().filter(|n| n.subject.contains("billing-prod")).collect();
    assert_eq!(failed_told.len(), 1, "{said:?}");
    assert!(failed_told[0].subject.contains("FAILED"), "{}", failed_told[0].subject);
    assert!(
        failed_told[0].text.contains("users exist") && failed_told[0].text.contains("0 (>= 1000)"),
        "{}",
        failed_told[0].text
    );
    let passed_told = said.iter().find(|n| n.subject.contains("orders-prod")).expect("orders' message");
    assert!(passed_told.text.contains("users exist"), "{}", passed_told.text);
    // The report (and `lifeboat status`, which prints it) says what each last drill's data showed.
    let report = bed.invoke("dr-drill", "report", &json!({"report": true}));
    let text = report["text"].as_str().unwrap_or_default();
    assert!(text.contains("orders-prod: the last drill's data checks passed (2 of 2); newest write"), "{text}");
    assert!(text.contains("billing-prod: the last drill's data checks failed (users exist: 0 (>= 1000))"), "{text}");
    on_demand(&moto, &mut bed, &table).await;

    // The restores were cleaned up, and their servers stopped with them.
    let servers = moto.get("/_lifeboat/db/servers");
    let left: Vec<&str> = servers["servers"].as_array().unwrap().iter().filter_map(|s| s["id"].as_str()).collect();
    assert!(left.iter().all(|id| !id.starts_with("lf-drill")), "{left:?}");
}

/// `lifeboat validate`, as a person with the ApproverPolicy runs it: the operator URL invokes the
/// data validator (its own function, in the VPC in AWS), which checks what RDS describes there.
/// Read-only: AWS sees descriptions, reads and the invocation, nothing written.
async fn on_demand(moto: &Moto, bed: &mut RecoveryBed, table: &str) {
    bed.warm_operator();
    let config_file = bed.dir.join("lifeboat.yaml");
    let url = operator_url(moto);
    let mut env: Vec<(&str, String)> = vec![
        ("LIFEBOAT_INCIDENTS_TABLE", table.to_owned()),
        ("LIFEBOAT_OPERATOR_URL", url),
        ("LIFEBOAT_CONFIG_FILE", config_file.to_string_lossy().into_owned()),
        ("LIFEBOAT_RECOVERS", "all".to_owned()),
    ];
    env.extend(person(moto, "lifeboat-approver", &["ApproverPolicy"], "alice").await);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cli = |args: &[&str]| lifeboat(moto, &env, args);
    let arn = |kind: &str, id: &str| format!("arn:aws:rds:us-west-2:{ACCOUNT}:{kind}:{id}");

    moto.post("/_lifeboat/faults", &json!({"faults": []}));
    // ledger-live's primary (no --target): seed-maria, whole.
    let live = cli(&["validate", "ledger-live"]);
    assert_eq!(live.code, 0, "{live:?}");
    assert!(live.stdout.contains("(mariadb): data checks passed (2 of 2)"), "{live:?}");
    assert!(live.stdout.contains("users exist: 1000"), "{live:?}");
    let ops = moto.only_reads_since_zeroed(&["Invoke"]);
    assert!(ops.iter().any(|op| op == "lambda:Invoke"), "{ops:?}");
    // An instance named by ARN: seed-pg, emptied after orders-prod's copy, fails by name (exit 1).
    let emptied = cli(&["validate", "orders-prod", "--target", &arn("db", "seed-pg"), "--json"]);
    assert_eq!(emptied.code, 1, "{emptied:?}");
    let report: Value = serde_json::from_str(&emptied.stdout).unwrap_or_else(|e| panic!("{e}: {emptied:?}"));
    assert_eq!(report["passed"], false, "{report}");
    assert_eq!(check(&report, "users exist")["value"], "0", "{report}");
    assert!(report["run"].as_str().unwrap_or_default().ends_with("assumed-role/lifeboat-approver/alice"), "{report}");
    // A cluster by ARN: its writer endpoint.
    let cluster = cli(&["validate", "catalog-aurora", "--target", &arn("cluster", "seed-aurora")]);
    assert_eq!(cluster.code, 0, "{cluster:?}");
    assert!(cluster.stdout.contains("(aurora-postgresql): data checks passed (2 of 2)"), "{cluster:?}");
    // A bare identifier is looked up in the stack's region (us-east-1 here), where it isn't.
    let elsewhere = cli(&["validate", "orders-prod", "--target", "seed-pg"]);
    assert_eq!(elsewhere.code, 1, "{elsewhere:?}");
    assert!(elsewhere.stderr.contains("no instance or cluster seed-pg in us-east-1"), "{elsewhere:?}");
    let snapshot = cli(&["validate", "orders-prod", "--target", &arn("snapshot", "x")]);
    assert!(snapshot.code == 1 && snapshot.stderr.contains("is a snapshot"), "{snapshot:?}");
    let unknown = cli(&["validate", "no-such-db", "--target", &arn("db", "seed-pg")]);
    assert!(unknown.code == 1 && unknown.stderr.contains("no database named `no-such-db`"), "{unknown:?}");
}

fn decide(link: &str, database: &str) -> Http {
    let form = format!("{}&approver=Alice%20Ops&database={database}", link.split_once('?').unwrap().1);
    http("POST", link, Some(&form))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failover_measures_the_writes_it_lost_and_a_failed_check_halts_the_cut_over() {
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, inbox) = topic_with_queue(&moto, "us-east-1").await;
    let secret = login_secret(&moto, "us-west-2", "lifeboat-validator-orders", VALIDATOR).await;
    let zone = hosted_zone(&moto, "orders.internal").await;

    // orders-prod: the replica stopped replicating after an order written 90 s ago; the primary
    // took two more orders it never got.
    let primary = real_instance(&moto, "us-east-1", "orders-prod", "postgres", 1000).await;
    order_written(&primary, 90);
    let world = Replicated {
        source: None,
        primary: "orders-prod",
        replica: "orders-replica",
        zone: &zone,
        record: "db.orders.internal",
        primary_endpoint: ORDERS_PRIMARY,
        parameter: ORDERS_ENDPOINT_PARAM,
    };
    with_replica(&moto, world).await;
    order_written(&primary, 1);
    order_written(&primary, 0);
    // billing-prod: its replica is whole, but its check expects more users than it holds.
    let billing = real_instance(&moto, "us-east-1", "billing-prod", "postgres", 10).await;
    order_written(&billing, 5);
    read_replica(&moto, "us-west-2", "billing-replica", &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:billing-prod"))
        .await;
    set_cname(&moto, &zone, "billing.orders.internal", "billing-prod.aaaaaaaaaa.us-east-1.rds.amazonaws.com").await;

    let orders = orders_failover_yaml(&format!(
        "      dns: {{ zone_id: {zone}, record: db.orders.internal, ttl: 60 }}\n{}",
        validate_yaml(&secret, 1000, "")
    ));
    let yaml = format!(
        "{orders}  - name: billing-prod\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:billing-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:{ACCOUNT}:db:billing-replica\n      approval: required\n      dns: {{ zone_id: {zone}, record: billing.orders.internal, ttl: 60 }}\n{}",
        validate_yaml(&secret, 1000, "")
    );
    let mut bed = RecoveryBed::start(&moto, &port, &table, &topic, Some(&yaml)).await;
    let mut seen = Vec::new();
    let request = |db: &str| json!({"database": db, "reason": "us-east-1 is down", "requested_by": "oncall"});

    // orders-prod: approved; the checks pass on the promoted replica, DNS moves, and the resolved
    // message says what was lost, measured.
    let report = bed.trigger("orders", &request("orders-prod"));
    let id = report["incident_id"].as_str().unwrap_or_else(|| panic!("{report}")).to_owned();
    let ask = notice_until(&moto, &mut bed, &inbox, &mut seen, "orders-prod: failover awaits your approval").await;
    let decided = decide(line_after(&ask.text, "Approve: "), "orders-prod");
    assert_eq!(decided.status, 200, "{}", decided.body);
    let resolved = notice_until(&moto, &mut bed, &inbox, &mut seen, "orders-prod: resolved").await;
    let item = raw_item(&moto, "us-east-1", &table, &format!("incident#{id}")).await;
    let data = &item["data"];
    assert_eq!(data["passed"], true, "{data}");
    let lost = data["loss"]["seconds"].as_i64().unwrap_or_else(|| panic!("{data}"));
    assert!((90..90 + 120).contains(&lost), "the replica's last 90 s and the failover's own start: {lost}s\n{data}");
    let line =
        resolved.text.lines().find(|l| l.starts_with("Data loss:")).unwrap_or_else(|| panic!("{}", resolved.text));
    let shown = match lost % 60 {
        0 => format!("{}m", lost / 60),
        s => format!("{}m {s:02}s", lost / 60),
    };
    assert!(line.starts_with(&format!("Data loss: {shown} of writes (measured: newest write ")), "{line}");
    assert!(line.contains("RPO 5m: met"), "{line}");
    let promoted = primary.behind(&moto, "us-west-2", "orders-replica").expect("the promoted replica's server");
    assert_eq!(promoted.admin("orders", "select count(*) from orders"), "1", "the two later orders were lost");
    let replica_endpoint = instance_endpoint(&moto, "us-west-2", "orders-replica").await.expect("its endpoint");
    assert_eq!(cname(&moto, &zone, "db.orders.internal").await.as_deref(), Some(replica_endpoint.as_str()));
    // The report (and `lifeboat status`) says what the move that left it there measured.
    let report = bed.invoke("dr-drill", "report", &json!({"report": true}));
    let text = report["text"].as_str().unwrap_or_default();
    let said =
        format!("orders-prod: failover {id}: data checks passed (2 of 2); {shown} of writes (measured: newest write ");
    assert!(text.contains(&said), "{said}\n{text}");

    // billing-prod: approved, promoted, but its check fails: the cut-over halts and asks. DNS
    // stays; a rejection ends the failover there.
    let report = bed.trigger("billing", &request("billing-prod"));
    let id = report["incident_id"].as_str().unwrap_or_else(|| panic!("{report}")).to_owned();
    let ask = notice_until(&moto, &mut bed, &inbox, &mut seen, "billing-prod: failover awaits your approval").await;
    assert_eq!(decide(line_after(&ask.text, "Approve: "), "billing-prod").status, 200);
    let halted = notice_until(&moto, &mut bed, &inbox, &mut seen, "billing-prod: data checks FAILED").await;
    assert!(halted.text.contains("FAILED users exist: 10 (>= 1000)"), "{}", halted.text);
    let before = "billing-prod.aaaaaaaaaa.us-east-1.rds.amazonaws.com";
    assert_eq!(cname(&moto, &zone, "billing.orders.internal").await.as_deref(), Some(before), "DNS waits for a person");
    // The check's step delivered again (a Lambda retry): the same finding, one timeline entry.
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk("us-east-1").await);
    let arn = report["execution_arn"].as_str().unwrap_or_else(|| panic!("{report}"));
    let described = sfn.describe_execution().execution_arn(arn).send().await.expect("the execution");
    let mut execution: Value = serde_json::from_str(described.input().unwrap_or_default()).expect("its input");
    execution["recovery"] = json!({"region": "us-west-2", "kind": "instance", "id": "billing-replica"});
    let again = bed.invoke("data-validator", "replayed", &json!({"action": "failover", "execution": execution}));
    assert_eq!(again["data_passed"], false, "{again}");
    let item = raw_item(&moto, "us-east-1", &table, &format!("incident#{id}")).await;
    let timeline = item["timeline"].to_string();
    assert_eq!(timeline.matches(r#""key":"data:billing-replica:"#).count(), 1, "{timeline}");
    let rejected = decide(line_after(&halted.text, "Reject: "), "billing-prod");
    assert_eq!(rejected.status, 200, "{}", rejected.body);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let item = raw_item(&moto, "us-east-1", &table, &format!("incident#{id}")).await;
        if item["status"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "{item}\n{}", bed.watch.log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(cname(&moto, &zone, "billing.orders.internal").await.as_deref(), Some(before), "never moved");
}

/// The validator in-process, against the emulator's Secrets Manager and a real server.
async fn validator(moto: &Moto, yaml: &str, ca: &std::path::Path) -> (Deps, std::path::PathBuf) {
    let path = std::env::temp_dir().join(format!("lifeboat-data-checks-{}-{}.yaml", std::process::id(), free_port()));
    std::fs::write(&path, yaml).unwrap();
    let sdk = moto.functions_sdk("us-west-2").await;
    let config = ConfigCache::new(ConfigSource::File(path.to_string_lossy().into_owned()), &sdk, CONFIG_TTL);
    let roots = Roots::from_pem(&std::fs::read(ca).unwrap()).unwrap();
    (Deps::new(config, &sdk, Some(roots), None), path)
}

fn plain_db(name: &str, source: &str, validate: &str) -> String {
    format!("  - name: {name}\n    source: arn:aws:rds:us-west-2:{ACCOUNT}:db:{source}\n    tier: production\n    rpo: 5m\n    rto: 30m\n{validate}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_an_unreachable_database_a_slow_query_and_bad_sql_are_named_results() {
    let moto = Moto::start();
    let db = real_instance(&moto, "us-west-2", "orders", "postgres", 3).await;
    let good = login_secret(&moto, "us-west-2", "lifeboat-validator-good", VALIDATOR).await;
    let wrong = login_secret(&moto, "us-west-2", "lifeboat-validator-wrong", (VALIDATOR.0, "not-the-password")).await;
    let slow = format!(
        "    validate:\n      connect: {{ secret: \"{good}\", database: orders }}\n      checks:\n        - {{ name: users exist, sql: \"select count(*) from users\", expect: \">= 1\" }}\n        - {{ name: slow, sql: \"select count(*) from pg_sleep(5)\", expect: \">= 0\" }}\n        - {{ name: no such table, sql: \"select count(*) from invoices\", expect: \"= 0\" }}\n      timeout: 1s\n"
    );
    let yaml = format!(
        "databases:\n{}{}",
        plain_db("orders", "orders", &slow),
        plain_db("wrong", "orders-wrong-login", &validate_yaml(&wrong, 1, ""))
    );
    let (deps, path) = validator(&moto, &yaml, &db.ca).await;
    let target =
        Target { address: db.host.clone(), port: db.port, engine: "postgres".into(), cluster: None, region: None };

    let started = Instant::now();
    let r = data_validator::validate(&deps, "orders", &target, None, Utc::now()).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "the server's own timeout ended the slow one");
    assert!(!r.passed && r.failure.is_none(), "{r:?}");
    let outcome = |n: &str| serde_json::to_value(&r.checks.iter().find(|c| c.name == n).unwrap().outcome).unwrap();
    assert_eq!(outcome("users exist"), json!("passed"));
    assert_eq!(outcome("slow")["error"]["kind"], "timeout", "{r:?}");
    assert_eq!(outcome("no such table")["error"]["kind"], "sql", "{r:?}");
    assert!(outcome("no such table")["error"]["detail"].as_str().unwrap().contains("invoices"), "{r:?}");

    let r = data_validator::validate(&deps, "wrong", &target, None, Utc::now()).await.unwrap();
    let failure = r.failure.clone().expect("nothing could be asked");
    assert_eq!(failure.name(), "credentials", "{r:?}");
    assert!(failure.what_to_do().contains("secret"), "{}", failure.what_to_do());

    let closed = Target { port: free_port(), ..target.clone() };
    let r = data_validator::validate(&deps, "orders", &closed, None, Utc::now()).await.unwrap();
    assert_eq!(r.failure.as_ref().map(|f| f.name()), Some("unreachable"), "{r:?}");
    assert!(!r.passed && r.checks.iter().all(|c| !c.passed()), "{r:?}");

    // A failover's report names the moment the primary failed; nothing here was written, so the
    // loss is not measured, and says why.
    let r = data_validator::validate(&deps, "wrong", &target, Some(Against::FailedAt(Utc::now())), Utc::now()).await;
    assert!(r.unwrap().loss.is_none());
    let _ = std::fs::remove_file(path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_writes_one_row_and_its_user_can_write_nothing_else() {
    let moto = Moto::start();
    let db = real_instance(&moto, "us-west-2", "orders", "mariadb", 3).await;
    let pg = real_instance(&moto, "us-west-2", "ledger", "postgres", 3).await;
    let reader = login_secret(&moto, "us-west-2", "lifeboat-validator", VALIDATOR).await;
    let writer = login_secret(&moto, "us-west-2", "lifeboat-heartbeat", HEARTBEAT).await;
    let beat = |_: ()| format!("      heartbeat: {{ secret: \"{writer}\" }}\n");
    let yaml = format!(
        "databases:\n{}{}",
        plain_db("orders", "orders", &validate_yaml(&reader, 1, &beat(()))),
        plain_db("ledger", "ledger", &validate_yaml(&reader, 1, &beat(())))
    );
    let (deps, path) = validator(&moto, &yaml, &db.ca).await;

    for round in 1..=2 {
        let before = Utc::now();
        let beats = data_validator::heartbeat(&deps, None).await.unwrap();
        assert_eq!((beats.written, beats.failed.len()), (2, 0), "{beats:?}");
        for (server, stamp) in [
            (&db, "date_format(at, '%Y-%m-%dT%H:%i:%s.%fZ')"),
            (&pg, "to_char(at at time zone 'utc', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"),
        ] {
            let rows = server.admin("orders", &format!("select count(*), max({stamp}) from lifeboat_heartbeat"));
            let (count, at) = rows.split_once(['\t', '|']).unwrap_or_else(|| panic!("{rows}"));
            assert_eq!(count, "1", "one row, round {round}");
            let at = lifeboat_core::decide::validate::parse_timestamp(at).unwrap_or_else(|| panic!("{at}"));
            assert!(at >= before - chrono::Duration::seconds(2), "the row says when: {at} vs {before}");
        }
    }
    // The writer's grants: the heartbeat row, nothing else.
    for server in [&db, &pg] {
        let (user, password) = HEARTBEAT;
        let read = server.run_as(user, password, "orders", "select count(*) from users");
        assert!(read.is_err(), "the heartbeat user reads no application table: {read:?}");
        let write =
            server.run_as(user, password, "orders", "insert into orders (user_id, updated_at) values (1, now())");
        assert!(write.is_err(), "nor writes one: {write:?}");
    }
    // The validator reads the row it wrote: every database has a recovery point to measure.
    let target =
        Target { address: db.host.clone(), port: db.port, engine: "mariadb".into(), cluster: None, region: None };
    let r = data_validator::validate(&deps, "orders", &target, Some(Against::FailedAt(Utc::now())), Utc::now())
        .await
        .unwrap();
    assert!(r.passed && r.newest_write.is_some() && r.loss.is_some(), "{r:?}");
    let _ = std::fs::remove_file(path);
}

/// Aurora checked over the RDS Data API (`connect.data_api`: no VPC, no CA bundle): the validator
/// in-process, the emulator's rds-data logging in to the real servers with the secret's user. The
/// HTTP endpoint off is a named result; on, PostgreSQL and MySQL (MariaDB) clusters answer as a
/// direct connection does, in one read-only transaction only ever rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aurora_over_the_data_api_needs_its_endpoint_and_answers_as_a_direct_connection_does() {
    let moto = Moto::start();
    let rds = moto.rds("us-west-2").await;
    create_cluster(&moto, "us-west-2", "ledger-pg").await;
    rds.create_db_cluster()
        .db_cluster_identifier("ledger-my")
        .engine("aurora-mysql")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .enable_http_endpoint(true)
        .send()
        .await
        .expect("an Aurora MySQL cluster with its HTTP endpoint");
    let (pg, my) = (
        RealDb::attach_cluster(&moto, "us-west-2", "ledger-pg"),
        RealDb::attach_cluster(&moto, "us-west-2", "ledger-my"),
    );
    for db in [&pg, &my] {
        orders_schema(db, 1000);
        order_written(db, 40);
    }
    let good = login_secret(&moto, "us-west-2", "lifeboat-validator-ledger", VALIDATOR).await;
    let wrong = login_secret(&moto, "us-west-2", "lifeboat-validator-wrong", (VALIDATOR.0, "not-the-password")).await;
    let over_api = |secret: &str, extra: &str| {
        validate_yaml(secret, 1000, extra).replace("database: orders }", "database: orders, data_api: true }")
    };
    let slow = "        - { name: slow, sql: \"select count(*) from pg_sleep(5)\", expect: \">= 0\" }\n        - { name: writes nothing, sql: \"delete from users\", expect: \"= 0\" }\n";
    let cluster_db =
        |name: &str, cluster: &str, validate: &str| plain_db(name, cluster, validate).replace(":db:", ":cluster:");
    let yaml = format!(
        "databases:\n{}{}{}",
        cluster_db(
            "ledger-pg",
            "ledger-pg",
            &over_api(&good, "").replace("      freshness", &format!("{slow}      freshness"))
        ),
        cluster_db("ledger-my", "ledger-my", &over_api(&good, "")),
        cluster_db("ledger-wrong", "ledger-elsewhere", &over_api(&wrong, "")),
    );
    // No CA bundle: the Data API needs none, and a direct connection would refuse to start.
    let path = std::env::temp_dir().join(format!("lifeboat-data-api-{}-{}.yaml", std::process::id(), free_port()));
    std::fs::write(&path, &yaml).unwrap();
    let sdk = moto.functions_sdk("us-west-2").await;
    let deps = Deps::new(
        ConfigCache::new(ConfigSource::File(path.to_string_lossy().into_owned()), &sdk, CONFIG_TTL),
        &sdk,
        None,
        None,
    );
    let ask = |database: &'static str| {
        let deps = &deps;
        async move {
            let asked = json!({"action": "validate", "database": database, "target": {"id": format!("arn:aws:rds:us-west-2:{ACCOUNT}:cluster:{database}").replace("ledger-wrong", "ledger-pg")}});
            data_validator::handle(deps, asked, Utc::now(), None).await.expect("a report")
        }
    };

    // The PostgreSQL cluster's endpoint is off (CreateDBCluster without EnableHttpEndpoint): named,
    // with what to do, and nothing asked.
    let off = ask("ledger-pg").await;
    assert_eq!(off["passed"], false, "{off}");
    assert_eq!(off["failure"]["kind"], "unreachable", "{off}");
    assert!(off["failure"]["detail"].as_str().unwrap().contains("enable-http-endpoint"), "{off}");

    rds.enable_http_endpoint()
        .resource_arn(format!("arn:aws:rds:us-west-2:{ACCOUNT}:cluster:ledger-pg"))
        .send()
        .await
        .expect("EnableHttpEndpoint");
    moto.post("/_lifeboat/faults", &json!({"faults": []}));
    let r = ask("ledger-pg").await;
    assert_eq!(check(&r, "users exist")["value"], "1000", "{r}");
    assert_eq!(check(&r, "no orphan orders")["outcome"], "passed", "{r}");
    assert_eq!(check(&r, "slow")["outcome"]["error"]["kind"], "timeout", "{r}");
    // Read only: the delete is refused inside the transaction, and the users are all there.
    assert_eq!(check(&r, "writes nothing")["outcome"]["error"]["kind"], "sql", "{r}");
    assert!(check(&r, "writes nothing")["outcome"]["error"]["detail"].as_str().unwrap().contains("read-only"), "{r}");
    assert_eq!(pg.admin("orders", "select count(*) from users").trim(), "1000");
    let newest = r["newest_write"].as_str().unwrap_or_else(|| panic!("freshness measured: {r}"));
    let age = (Utc::now() - chrono::DateTime::parse_from_rfc3339(newest).unwrap().with_timezone(&Utc)).num_seconds();
    assert!((40..100).contains(&age), "the order written 40 s ago: {age}s ({r})");
    let counts = moto.fault_counts();
    let calls = |op: &str| counts["calls"][format!("rds-data:{op}")].as_u64().unwrap_or(0);
    // The Data API aborts a transaction at an error: after the slow check and the refused write,
    // each next statement began a new one; only the last, still open, was rolled back.
    assert_eq!(
        (calls("BeginTransaction"), calls("RollbackTransaction"), calls("CommitTransaction")),
        (3, 1, 0),
        "{counts}"
    );
    assert!(calls("ExecuteStatement") >= 6, "{counts}");

    // Aurora MySQL (MariaDB here), created with its endpoint on.
    let r = ask("ledger-my").await;
    assert_eq!(r["passed"], true, "{r}");
    assert_eq!(check(&r, "users exist")["value"], "1000", "{r}");
    assert!(r["newest_write"].is_string(), "{r}");

    // A password the database refuses: the Data API passes the refusal on, named as a direct
    // connection names it.
    let r = ask("ledger-wrong").await;
    assert_eq!(r["failure"]["kind"], "credentials", "{r}");
    let _ = std::fs::remove_file(path);
}

/// RDS IAM authentication (`connect.iam_user`): the validator signs a token for the target's
/// host, port and region with its own credentials, and the emulator's servers check it as RDS
/// does (scripts/emulator/rdsiam.py). It logs in only where IAM authentication is on: a restore
/// has it off unless asked, and Lifeboat's restores ask. The user is the stack's ValidatorDbUser
/// or refused by name; a member of rds_iam can't log in with a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_iam_token_logs_in_where_iam_authentication_is_on_and_nowhere_else() {
    let moto = Moto::start();
    let rds = moto.rds("us-west-2").await;
    let pg = real_instance(&moto, "us-west-2", "orders", "postgres", 1000).await;
    let maria = real_instance(&moto, "us-west-2", "ledger", "mariadb", 1000).await;
    for db in [&pg, &maria] {
        iam_reader(db);
        order_written(db, 40);
    }
    // As on RDS, rds_iam's members log in by token only.
    let by_password = pg.run_as(IAM_READER, "any-password", "orders", "select 1");
    assert!(by_password.is_err(), "{by_password:?}");
    // Restores of both, one with IAM authentication asked for, one as RestoreDBInstanceFromDBSnapshot
    // makes it by default.
    for seed in ["orders", "ledger"] {
        taken_at(&moto, "us-west-2", seed, false, &[(format!("{seed}-snap"), Utc::now())], &[]).await;
        for (id, iam) in [(format!("{seed}-iam"), true), (format!("{seed}-plain"), false)] {
            let mut restore = rds
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(&id)
                .db_snapshot_identifier(format!("{seed}-snap"));
            if iam {
                restore = restore.enable_iam_database_authentication(true);
            }
            let made = restore.send().await.expect("restore");
            let enabled = made.db_instance().and_then(|d| d.iam_database_authentication_enabled());
            assert_eq!(enabled, Some(iam), "{id}: {made:?}");
        }
    }
    let by_token = |db: &str| {
        plain_db(db, db, &validate_yaml("-", 1000, "").replace("secret: \"-\"", &format!("iam_user: {IAM_READER}")))
    };
    let yaml = format!("databases:\n{}{}", by_token("orders"), by_token("ledger"));
    let (mut deps, path) = validator(&moto, &yaml, &pg.ca).await;
    deps.iam_user = Some(IAM_READER.to_owned());
    let ask = async |deps: &Deps, database: &str, target: &str| {
        let asked = json!({"action": "validate", "database": database, "target": {"id": target}});
        data_validator::handle(deps, asked, Utc::now(), None).await
    };

    moto.post("/_lifeboat/faults", &json!({"faults": []}));
    for (database, restored) in [("orders", "orders-iam"), ("ledger", "ledger-iam")] {
        let r = ask(&deps, database, restored).await.expect("a report");
        assert_eq!(r["passed"], true, "{database}: {r}");
        assert_eq!(check(&r, "users exist")["value"], "1000", "{r}");
        assert!(r["newest_write"].is_string(), "{r}");
    }
    // Signing is local: the validator asked AWS for nothing but the descriptions.
    let counts = moto.fault_counts();
    let calls: Vec<&String> = counts["calls"].as_object().unwrap().keys().collect();
    assert!(calls.iter().all(|c| c.starts_with("rds:Describe")), "{calls:?}");

    // IAM authentication off (the restore's default, and the sources here): refused, named, with
    // what RDS needs.
    for (database, target) in [("orders", "orders-plain"), ("ledger", "ledger-plain"), ("orders", "orders")] {
        let r = ask(&deps, database, target).await.expect("a report");
        assert_eq!(r["failure"]["kind"], "credentials", "{target}: {r}");
        let detail = r["failure"]["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("IAM database authentication enabled") && detail.contains("rds-db:connect"), "{r}");
    }

    // Tokens RDS would refuse, each presented to orders-iam (IAM on): refused by the server. A
    // good one first, so the refusals are the tokens', not the connection's.
    let described = rds.describe_db_instances().db_instance_identifier("orders-iam").send().await.unwrap();
    let endpoint = described.db_instances()[0].endpoint().cloned().expect("an endpoint");
    let ep = Endpoint {
        engine: Engine::Postgres,
        host: endpoint.address().unwrap_or_default().to_owned(),
        port: u16::try_from(endpoint.port().unwrap_or_default()).unwrap(),
        database: "orders".into(),
    };
    let roots = Roots::from_pem(&std::fs::read(&pg.ca).unwrap()).unwrap();
    let users = ["select count(*) from users"];
    let sdk = moto.functions_sdk("us-west-2").await;
    let token = |sdk: lifeboat_core::aws::SdkConfig, region: &'static str, ep: Endpoint, user: &'static str| async move {
        db::iam_login(&sdk, region, &ep, user).await.expect("signed")
    };
    let good = token(sdk.clone(), "us-west-2", ep.clone(), IAM_READER).await;
    let asked = db::ask(&ep, &good, &roots, &users, Duration::from_secs(5)).await.expect("the good token logs in");
    assert!(format!("{:?}", asked[0]).contains("1000"), "{asked:?}");
    let other_port = Endpoint { port: ep.port + 1, ..ep.clone() };
    let mut tampered = good.clone();
    tampered.password.pop();
    tampered.password.push(if good.password.ends_with('0') { '1' } else { '0' });
    let mut for_another_user = token(sdk.clone(), "us-west-2", ep.clone(), "lifeboat_heartbeat").await;
    for_another_user.user = IAM_READER.to_owned();
    let wrong_secret = lifeboat_core::aws::sdk_loader()
        .region(aws_sdk_rds::config::Region::new("us-west-2"))
        .credentials_provider(aws_sdk_rds::config::Credentials::new(
            FUNCTIONS_ACCESS_KEY,
            "not-the-secret",
            None,
            None,
            "wrong",
        ))
        .load()
        .await;
    for (why, login) in [
        ("signed for another region", token(sdk.clone(), "us-east-1", ep.clone(), IAM_READER).await),
        ("signed for another port", token(sdk.clone(), "us-west-2", other_port, IAM_READER).await),
        ("its signature changed", tampered),
        ("another user's token", for_another_user),
        ("signed with another secret", token(wrong_secret, "us-west-2", ep.clone(), IAM_READER).await),
    ] {
        let refused = db::ask(&ep, &login, &roots, &users, Duration::from_secs(5)).await;
        assert!(
            matches!(refused, Err(lifeboat_core::decide::validate::DbFailure::Credentials(_))),
            "{why}: {refused:?}"
        );
    }
    // A user this stack's role may not connect as: refused by name before anything is signed.
    deps.iam_user = Some("lifeboat_validator".to_owned());
    let refused = ask(&deps, "orders", "orders-iam").await.expect_err("not the stack's user");
    assert!(refused.to_string().contains("ValidatorDbUser"), "{refused}");
    let _ = std::fs::remove_file(path);
}
