//! The DR story end to end against a local AWS (moto), printing what happened: a protected
//! database with two months of snapshots, a new snapshot copied to the DR region on its event, a
//! replayed event, a lost event caught by the sweep, then retention (dry run, then for real); then
//! an AWS Health notice as people receive it; then the stack in us-west-2 checks that orders-prod
//! is ready to fail over (the readiness table; the DR key scheduled for deletion and mended, each
//! change told once); then us-east-1 goes dark (and Route 53's control
//! plane with it): RDS in us-west-2 says the replica's replication broke, which starts the failover
//! state machine of the stack in us-west-2 (run by moto's own Step Functions interpreter, its steps
//! the real binaries in `cargo lambda watch`), the on-call looks with `lifeboat status` and
//! `lifeboat plan` and approves with `lifeboat approve` (the page's form, after it, says already
//! decided), the replica is promoted, its data checked (the writes it never got measured as the
//! failover's data loss), DNS follows through Route 53 ARC routing controls (the data
//! plane) and the endpoint parameter too, the incident resolves with its timeline, and not one
//! call went to us-east-1, and the failover's evidence record is in the bucket; then us-east-1
//! comes back;
//! then `lifeboat drill --follow` runs a restore drill (infra/drill.asl.json, the real `dr-drill`)
//! that restores the newest DR copy, measures it, checks the data inside it (a real PostgreSQL
//! server behind the emulated instance) and cleans up, `lifeboat status` (with what the failover
//! measured), and `lifeboat validate` on the primary where it serves now; last, the
//! vault: a snapshot under aws/rds reaches a vault account, then the primary account is gone and a
//! fresh account restores from the vault after the approval.
//! Copier, pruner, notifier and rpo-monitor run in-process with the clients their `main` builds.

use chrono::{Duration, Utc};
use lifeboat_core::aws::CONFIG_TTL;
use lifeboat_core::message::human;
use lifeboat_tests::real_db::{login_secret, order_written, orders_schema, RealDb, VALIDATOR};
use lifeboat_tests::*;
use serde_json::json;

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";
const HISTORY_DAYS: i64 = 60;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("== Lifeboat demo: local AWS (moto) ==");
    // cargo lambda watch's port: moto forwards its Lambda invocations (the state machine's steps) there.
    let port = free_port().to_string();
    let moto = Moto::start_with(&[("LIFEBOAT_LAMBDA_FORWARD", &format!("http://127.0.0.1:{port}"))]);
    println!("moto listening on {}", moto.endpoint);

    let key = kms_key(&moto, DR).await;
    let (topic, inbox) = topic_with_queue(&moto, SRC).await;
    // The validator's read-only login, kept where the recovery runs.
    let secret = login_secret(&moto, DR, "lifeboat-validator-orders", VALIDATOR).await;
    let yaml = format!(
        r#"databases:
  - name: orders-prod
    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders
    tier: production
    rpo: 24h
    rto: 1h
    copy_to:
      - {{ region: {DR}, kms_key: "{key}" }}
    retention:
      source: {{ daily: 7, weekly: 4, monthly: 3, min_keep: 3 }}
      copies: {{ daily: 7, weekly: 4, monthly: 2, min_keep: 2 }}
    failover:
      strategy: promote-replica
      target: arn:aws:rds:{DR}:{ACCOUNT}:db:orders-replica
      approval: required
      approval_timeout: 15m
      triggers: {{ alarms: [orders-db-down], replica_events: true }}
      dns:
        zone_id: ZONE_ID
        record: db.orders.internal
        mode: routing-control
        routing_controls:
          on: {west}
          off: {east}
          cluster_endpoints: [{{ region: {SRC}, url: "{arc}" }}, {{ region: eu-west-1, url: "{arc}" }}]
      endpoint_parameter: /orders/prod/db-endpoint
    drill:
      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}
    validate:
      connect: {{ secret: "{secret}", database: orders }}
      checks:
        - {{ name: users exist, sql: "select count(*) from users", expect: ">= 1000" }}
        - {{ name: no orphan orders, sql: "select count(*) from orders o left join users u on u.id = o.user_id where u.id is null", expect: "= 0" }}
      freshness: "select max(updated_at) from orders"
"#,
        west = routing_control("west"),
        east = routing_control("east"),
        arc = moto.endpoint,
    );
    let zone = hosted_zone(&moto, "orders.internal").await;
    let yaml = yaml.replace("ZONE_ID", &zone);
    let sdk = moto.sdk(SRC).await;
    // As each function's init does: read the policy document from SSM, fail loudly if broken;
    // each re-reads it once it is a minute old.
    let copier_config = config_in_ssm(&moto, &yaml, CONFIG_TTL).await;
    copier_config.get().await.expect("config");
    println!("config read from SSM {CONFIG_PARAM}:\n{}", indent(&yaml));
    println!("notifications go to the stack's topic {topic}");
    let mut copier = snapshot_copier::Deps::new(copier_config, &sdk);
    // The demo prints the sweep's metrics line itself, once, rather than after every run.
    copier.emit_metrics = false;
    let pruner = snapshot_pruner::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, Some(&topic));

    let start = Utc::now() - Duration::days(HISTORY_DAYS);
    moto.set_clock(start - Duration::hours(1));
    create_instance(&moto, SRC, "orders").await;
    // A real PostgreSQL server behind it: its snapshots, copies, restores and replica hold data.
    let db = RealDb::attach(&moto, SRC, "orders");
    orders_schema(&db, 1000);
    // Its first order, ten minutes old: every snapshot from here on has a newest write to measure.
    order_written(&db, 600);
    println!("orders is a real PostgreSQL server on 127.0.0.1:{} with 1,000 users and an order", db.port);
    println!("\n== {HISTORY_DAYS} days of history: a Lifeboat-managed snapshot a day, each copied on its event ==");
    for d in 0..HISTORY_DAYS {
        let at = start + Duration::days(d);
        moto.set_clock(at);
        let id = format!("orders-{}", at.format("%Y-%m-%d"));
        let arn = snapshot(&moto, SRC, "orders", &id, &[("lifeboat:managed", "true")]).await;
        snapshot_copier::handle(&copier, event("rds-db-snapshot-manual-created.json", Some(&arn)), Utc::now())
            .await
            .expect("copy");
    }
    moto.set_clock(Utc::now());
    snapshot(&moto, SRC, "orders", "orders-hand-made", &[("owner", "dba")]).await;
    println!(
        "{SRC}: {} DB snapshots; {DR}: {} (plus a hand-made, untagged snapshot Lifeboat must never touch)",
        db_snapshots(&moto, SRC).await.len(),
        db_snapshots(&moto, DR).await.len()
    );

    println!("\n== A new snapshot: RDS-EVENT-0042 arrives ==");
    let arn = snapshot(&moto, SRC, "orders", "orders-before-upgrade", &[("change", "CHG-1234")]).await;
    let ev = event("rds-db-snapshot-manual-created.json", Some(&arn));
    let report = snapshot_copier::handle(&copier, ev.clone(), Utc::now()).await.expect("copy");
    println!("copier: {}", json!(report));
    let copy = db_snapshots(&moto, DR)
        .await
        .into_iter()
        .find(|s| s.3.iter().any(|(k, v)| k == "lifeboat:source-arn" && *v == arn));
    if let Some((id, status, kms, tags)) = copy {
        println!("in {DR}: {id} ({status})\n  kms key: {}\n  tags: {tags:?}", kms.unwrap_or_default());
    }
    let replay = snapshot_copier::handle(&copier, ev, Utc::now()).await.expect("replay");
    println!("same event again (EventBridge delivers at least once): {}", json!(replay));

    println!("\n== An event RDS never delivered: the scheduled sweep ==");
    snapshot(&moto, SRC, "orders", "orders-event-lost", &[]).await;
    let mut sweep_event = event("scheduled-sweep.json", None);
    sweep_event["time"] = json!(Utc::now());
    let sweep = snapshot_copier::handle(&copier, sweep_event, Utc::now()).await.expect("sweep");
    println!("sweep: {}", json!(sweep));
    println!("its CloudWatch metrics (EMF log line): {}", sweep.metrics(Utc::now()));

    println!("\n== Retention: dry run first ==");
    let dry = snapshot_pruner::handle(&pruner, json!({"dry_run": true}), Utc::now()).await.expect("dry run");
    for g in &dry.groups {
        println!(
            "{} {} {:?}: keep {}, would delete {}, skip {}",
            g.database,
            g.region,
            g.scope,
            g.kept.len(),
            g.would_delete.len(),
            g.skipped.len()
        );
    }
    println!("\n== Retention for real (as the daily schedule runs it) ==");
    let mut scheduled = event("pruner-scheduled.json", None);
    scheduled["time"] = json!(Utc::now());
    let run = snapshot_pruner::handle(&pruner, scheduled.clone(), Utc::now()).await.expect("prune");
    for g in &run.groups {
        println!(
            "{} {} {:?}: kept {}, deleted {}, skipped {}",
            g.database,
            g.region,
            g.scope,
            g.kept.len(),
            g.deleted.len(),
            g.skipped.len()
        );
        for k in &g.kept {
            println!("  keep {:<40} {}", k.id, k.why);
        }
        for s in &g.skipped {
            println!("  skip {:<40} {}", s.id, s.why);
        }
    }
    println!("API calls: {} (one listing per region, one per deletion)", run.api_calls);
    for (subject, body) in notifications(&moto, SRC, &inbox).await {
        println!("\nSNS notification: {subject}\n{}", indent(&body));
    }
    let again = snapshot_pruner::handle(&pruner, scheduled, Utc::now()).await.expect("replay");
    println!("same schedule event again: deleted {}", again.deleted());

    println!("\n== AWS Health reports an RDS issue where orders-prod lives ==");
    let table = incidents_table(&moto, SRC).await;
    let notifier = notifier::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic, None);
    let mut health = event("health-rds-issue-open.json", None);
    // The sample names the example's database; this story's is `orders`.
    health["detail"]["affectedEntities"] = json!([{ "entityValue": format!("arn:aws:rds:{SRC}:{ACCOUNT}:db:orders") }]);
    println!(
        "delivered in {}, about {} (detail.eventRegion)",
        health["region"].as_str().unwrap_or_default(),
        health["detail"]["eventRegion"].as_str().unwrap_or_default()
    );
    let report = notifier::handle(&notifier, health.clone(), Utc::now()).await.expect("health");
    println!("notifier: {}", json!(report));
    let replay = notifier::handle(&notifier, health, Utc::now()).await.expect("health replay");
    println!("same Health event again: published {}", replay.published.len());
    for n in notices(&moto, SRC, &inbox).await {
        println!(
            "\nWhat a person receives (attributes {:?}):\n  Subject: {}\n{}",
            n.attributes,
            n.subject,
            indent(&n.text)
        );
    }

    println!("\n== The stack in {DR}: where orders-prod's recovery runs (docs/deployment.md) ==");
    // Its own incident table, topic, state machines, approval URL and config.
    let dr_table = incidents_table(&moto, DR).await;
    let (dr_topic, dr_inbox) = topic_with_queue(&moto, DR).await;
    let mut bed = RecoveryBed::start_in(&moto, DR, &port, &dr_table, &dr_topic, Some(&yaml)).await;
    bed.warm_operator();
    println!("cargo lambda watch serves the functions on port {port} (it builds each on first use: a minute or two when cold)");
    println!("incident table {dr_table}, topic {dr_topic}, approval page {}", bed.approval_url);
    let config_file = bed.dir.join("lifeboat.yaml").to_string_lossy().into_owned();
    // `lifeboat`, the operator's CLI, pointed at the stack in us-west-2 (in AWS the stack's
    // outputs name these; here the variables do), run by the on-call engineer: a session of a
    // role holding the stack's read-only and approver policies. What they ask goes to the
    // operator URL, which AWS authenticates; Lifeboat records the principal AWS verified.
    let oncall = person_in(&moto, DR, "oncall", &["OperatorReadOnlyPolicy", "ApproverPolicy"], "sam@example.com").await;
    println!("the on-call engineer: a session of role oncall named sam@example.com");
    let mut cli_env = vec![
        ("LIFEBOAT_INCIDENTS_TABLE", dr_table.clone()),
        ("LIFEBOAT_OPERATOR_URL", operator_url(&moto)),
        ("LIFEBOAT_CONFIG_FILE", config_file),
        ("LIFEBOAT_RECOVERS", "all".to_owned()),
    ];
    cli_env.extend(oncall);
    let cli_env: Vec<(&str, &str)> = cli_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cli = |args: &[&str]| {
        let mut all = vec!["--region", DR];
        all.extend_from_slice(args);
        println!("\n$ lifeboat {}", all.join(" "));
        let ran = lifeboat(&moto, &cli_env, &all);
        print!("{}{}", ran.stdout, ran.stderr);
        println!("(exit {})", ran.code);
        ran
    };
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db"}));
    let stack = DrStack { table: &dr_table, topic: &dr_topic, key: &key };
    failover(&moto, &mut bed, &dr_inbox, &zone, &stack, &cli, &db).await;

    println!("\n== Recoverability now (rpo-monitor) ==");
    let monitor = rpo_monitor::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, &table, &topic);
    let rpo = rpo_monitor::handle(&monitor, json!({}), Utc::now()).await.expect("rpo");
    for a in &rpo.assessments {
        println!(
            "{} in {}: newest recovery point {} old, against an RPO of {}: {}",
            a.database,
            a.region,
            a.recovery_point_age_seconds.map_or("(none)".to_owned(), |s| human(Duration::seconds(s))),
            human(Duration::seconds(a.rpo_seconds as i64)),
            if a.breached { "BREACHED" } else { "met" }
        );
    }
    println!("\n== A restore drill: prove the newest DR copy restores, and how fast ==");
    cli(&["drill", "orders-prod", "--follow"]);
    for n in notices(&moto, DR, &dr_inbox).await {
        println!("\nWhat a person receives:\n  Subject: {}\n{}", n.subject, indent(&n.text));
    }
    println!("\n== Can we recover, and how fast? ==");
    cli(&["status"]);
    println!("\n== The data inside the primary now, on demand (read-only, through the stack's validator) ==");
    cli(&["validate", "orders-prod"]);
    round_trip(&moto, &mut bed, &dr_inbox, &zone, &cli).await;
    vault(&moto).await;
    println!("\n== done: the emulator stops with this program ==");
}

const VAULT: &str = "210987654321";
const RECOVERY: &str = "444455556666";

/// The vault path's snapshots an account holds in a region, one line each: identifier, key, tags.
async fn show(sdk: &lifeboat_core::aws::SdkConfig, who: &str) {
    let out = aws_sdk_rds::Client::new(sdk).describe_db_snapshots().send().await.expect("describe");
    println!("{who}:");
    // Only the vault path's: not the DR copies, nor the automated snapshot moto takes of a restore.
    for s in out
        .db_snapshots()
        .iter()
        .filter(|s| s.db_snapshot_identifier().is_some_and(|id| id.starts_with("lifeboat-vault-")))
    {
        let tags: Vec<String> = s
            .tag_list()
            .iter()
            .filter(|t| t.key().is_some_and(|k| k.starts_with("lifeboat:") && k != "lifeboat:source-arn"))
            .map(|t| format!("{}={}", t.key().unwrap_or_default(), t.value().unwrap_or_default()))
            .collect();
        println!(
            "  {:<42} key {:<24} {}",
            s.db_snapshot_identifier().unwrap_or_default(),
            short_key(s.kms_key_id()),
            tags.join(" ")
        );
    }
}

fn short_key(key: Option<&str>) -> String {
    match key {
        None => "(unencrypted)".into(),
        Some("default_kms_key_id") => "aws/rds".into(),
        Some(k) => k.split(':').nth(4).map_or(k.to_owned(), |a| format!("a CMK of {a}")),
    }
}

/// The vault (docs/vault.md): ledger-prod's snapshots, under aws/rds, reach a vault account; then
/// the primary account is gone, and a fresh account restores from the vault after the approval.
async fn vault(moto: &Moto) {
    use lifeboat_core::vault as v;
    println!("\n== The vault: copies in an account an attacker with this one's keys can't delete ==");
    let src = moto.sdk(SRC).await;
    let vault_sdk = moto.sdk_as(DR, VAULT).await;
    let share_key = shared_key(&moto.sdk(DR).await, ACCOUNT, &[VAULT]).await;
    let vault_key = shared_key(&vault_sdk, VAULT, &[RECOVERY]).await;
    // The automated snapshot moto takes of a new database is older than the nightly one.
    moto.set_clock(Utc::now() - Duration::minutes(10));
    create_instance_under_aws_rds(moto, SRC, "ledger").await;
    moto.set_clock(Utc::now());
    snapshot(moto, SRC, "ledger", "ledger-nightly", &[]).await;
    let yaml = format!(
        "vault:\n  account: \"{VAULT}\"\n  region: {DR}\n  share_key: {share_key}\n  retention: 35d\n  frequency: 24h\ndatabases:\n  - name: ledger-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:ledger\n    tier: production\n    rpo: 24h\n    rto: 4h\n"
    );
    println!("{}", indent(&yaml));
    let mut copier = snapshot_copier::Deps::new(config_in_ssm(moto, &yaml, CONFIG_TTL).await, &src);
    copier.emit_metrics = false;
    let settings = v::VaultSettings {
        account: VAULT.into(),
        region: DR.into(),
        kms_key: vault_key.clone(),
        minimum_retention: std::time::Duration::from_secs(30 * 86_400),
        default_retention: std::time::Duration::from_secs(35 * 86_400),
        minimum_kept: 1,
        sources: [ACCOUNT.to_owned()].into(),
        restore_accounts: [RECOVERY.to_owned()].into(),
    };
    let mut keeper = vault_keeper::Deps::new(settings, vault_keeper::Role::Copier, false, &vault_sdk);
    keeper.emit_metrics = false;
    let to_vault = bus_queue(&src, "demo-to-vault", v::SOURCE_EVENTS).await;
    let to_source = bus_queue(&vault_sdk, "demo-to-source", v::VAULT_EVENTS).await;
    let sweep = || {
        let mut e = event("scheduled-sweep.json", None);
        e["time"] = json!(Utc::now());
        e
    };
    let first = snapshot_copier::handle(&copier, sweep(), Utc::now()).await.expect("sweep");
    println!(
        "source sweep: transit copy started (re-keyed off aws/rds, which RDS won't share): {:?}",
        first.vault_started
    );
    let second = snapshot_copier::handle(&copier, sweep(), Utc::now()).await.expect("sweep");
    println!("next sweep: shared with the vault account alone, and said on the bus: {:?}", second.vault_shared);
    for e in bus_events(&src, &to_vault).await {
        let r = vault_keeper::handle(&keeper, e, Utc::now()).await.expect("vault copier");
        println!("vault copier (account {VAULT}): copied {:?}, answered {:?}", r.copied, r.announced);
    }
    for e in bus_events(&vault_sdk, &to_source).await {
        let r = snapshot_copier::handle(&copier, e, Utc::now()).await.expect("answer");
        println!(
            "source copier, on the vault's answer: {:?} (tagged vaulted, unshared, transit copy deleted)",
            r.vaulted
        );
    }
    show(&moto.sdk(DR).await, &format!("account {ACCOUNT}'s transit copies in {DR} (none left: nothing shared)")).await;
    show(&vault_sdk, &format!("vault account {VAULT} in {DR}")).await;
    let held = aws_sdk_rds::Client::new(&vault_sdk).describe_db_snapshots().send().await.expect("describe");
    if let Some(id) = held.db_snapshots().first().and_then(|s| s.db_snapshot_identifier()) {
        let tried = aws_sdk_rds::Client::new(&moto.sdk(DR).await)
            .delete_db_snapshot()
            .db_snapshot_identifier(format!("arn:aws:rds:{DR}:{VAULT}:snapshot:{id}"))
            .send()
            .await;
        let said = tried.err().map_or("DELETED".to_owned(), |e| {
            format!("refused ({})", lifeboat_core::aws::error_code(&e).unwrap_or("?"))
        });
        println!("the source account's credentials deleting {id}: {said}");
    }

    println!("\n== the primary account is gone: restore from the vault ==");
    let rds = moto.rds(SRC).await;
    rds.delete_db_snapshot().db_snapshot_identifier("ledger-nightly").send().await.expect("delete");
    for id in ["ledger", "orders"] {
        let _ = rds.delete_db_instance().db_instance_identifier(id).skip_final_snapshot(true).send().await;
    }
    println!("account {ACCOUNT}: ledger and its snapshots deleted");
    moto.act_as(RECOVERY).await;
    let recovery = moto.sdk(DR).await;
    let recovery_key = shared_key(&recovery, RECOVERY, &[]).await;
    let table = incidents_table(moto, DR).await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db", "account": RECOVERY}));
    let yaml = format!(
        "databases:\n  - name: ledger-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:ledger\n    tier: production\n    rpo: 24h\n    rto: 8h\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{recovery_key}\" }}\n    failover:\n      strategy: restore-latest-copy\n      approval: required\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db, from_vault: \"{VAULT}\" }}\n"
    );
    println!("a fresh account {RECOVERY}, its Lifeboat config:\n{}", indent(&yaml));
    let machine = idle_machine(moto, DR, "lifeboat-failover").await;
    let trigger = failover_trigger::Deps::new(
        config_in_ssm(moto, &yaml, std::time::Duration::ZERO).await,
        &recovery,
        &table,
        &machine,
        std::time::Duration::from_secs(1),
    );
    let asks = bus_queue(&recovery, "demo-ask-vault", v::RECOVERY_EVENTS).await;
    let request = json!({"database": "ledger-prod", "reason": "the primary account is gone", "requested_by": "sre"});
    let started = failover_trigger::handle(&trigger, request.clone(), Utc::now()).await.expect("trigger");
    println!("$ lifeboat failover ledger-prod: incident {}", started.incident_id.clone().unwrap_or_default());
    for e in bus_events(&recovery, &asks).await {
        let r = vault_keeper::handle(&keeper, e, Utc::now()).await.expect("vault shares");
        println!("the vault, asked by {RECOVERY} (listed in its RestoreAccountIds): {:?}", r.shared_for_restore);
    }
    let steps =
        failover_steps::Deps::new(config_in_ssm(moto, &yaml, std::time::Duration::ZERO).await, &recovery, &table);
    let config = lifeboat_core::config::Config::from_yaml(&yaml).expect("config");
    let Ok(lifeboat_core::failover::Start::Failover(reqs)) =
        lifeboat_core::failover::classify(&config, &request, Utc::now())
    else {
        panic!("the request was refused")
    };
    let mut exec = lifeboat_core::failover::steps::Execution::new(
        &config.databases[0],
        &reqs[0],
        &started.incident_id.unwrap_or_default(),
        std::time::Duration::from_secs(1),
    );
    let step = |action: &str, exec: &lifeboat_core::failover::steps::Execution| {
        failover_steps::handle(&steps, json!({"action": action, "execution": exec}), Utc::now())
    };
    exec = step("preflight", &exec).await.expect("preflight");
    println!("preflight: {}", exec.preflight.as_ref().map(|p| p.plan.clone()).unwrap_or_default());
    let refused = step("act", &exec).await.expect_err("no approval");
    println!("act before the approval: refused ({refused})");
    lifeboat_tests::approval_recorded(&steps.store, &exec.incident_id, "sre-lead").await;
    println!("approved by sre-lead");
    exec = step("act", &exec).await.expect("act");
    show(&recovery, &format!("account {RECOVERY} in {DR} (the vault copy, copied under its own key)")).await;
    let out = aws_sdk_rds::Client::new(&recovery).describe_db_instances().send().await.expect("instances");
    for i in out.db_instances() {
        println!(
            "restored: {} ({}) in account {RECOVERY}, recovery point {}",
            i.db_instance_identifier().unwrap_or_default(),
            i.db_instance_status().unwrap_or_default(),
            exec.preflight.as_ref().and_then(|p| p.recovered_to).map(|t| t.to_rfc3339()).unwrap_or_default()
        );
    }
}

/// The failover with us-east-1 down, with real parts: the trigger binary of the stack in us-west-2,
/// the state machine in moto's interpreter there, the approval page over HTTP, the steps promoting
/// the replica, flipping the routing controls and writing the parameter.
async fn failover(
    moto: &Moto,
    bed: &mut RecoveryBed,
    inbox: &str,
    zone: &str,
    stack: &DrStack<'_>,
    cli: &dyn Fn(&[&str]) -> Ran,
    db: &RealDb,
) {
    let primary = "orders.aaaaaaaaaa.us-east-1.rds.amazonaws.com";
    order_written(db, 75);
    read_replica(moto, DR, "orders-replica", &format!("arn:aws:rds:{SRC}:{ACCOUNT}:db:orders")).await;
    // The replica stops replicating here: the primary's next orders never reach it.
    order_written(db, 1);
    order_written(db, 0);
    println!("orders: an order written 75 s ago reached the replica; the two written since did not");
    // Its endpoint is the real server's (127.0.0.1 here): DNS's secondary names it.
    let replica = instance_endpoint(moto, DR, "orders-replica").await.unwrap_or_else(|| ORDERS_REPLICA.to_owned());
    failover_pair(moto, zone, "db.orders.internal", primary, &replica).await;
    let dr = moto.sdk(DR).await;
    let ssm = aws_sdk_ssm::Client::new(&dr);
    ssm.put_parameter()
        .name("/orders/prod/db-endpoint")
        .value(primary)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .expect("endpoint parameter");
    println!(
        "db.orders.internal answers {} (a Route 53 failover pair: PRIMARY guarded by ARC routing control east, On; \
         SECONDARY {replica} by west, Off); SSM /orders/prod/db-endpoint in {DR} = {primary}; replica \
         orders-replica in {DR}",
        resolve(moto, "db.orders.internal").unwrap_or_default()
    );

    readiness(moto, bed, inbox, stack).await;

    println!("\n== us-east-1 goes dark, and Route 53's control plane (us-east-1 only) with it ==");
    moto.post("/_lifeboat/outage", &json!({"regions": [SRC], "route53": true}));
    let refused = moto.rds(SRC).await.describe_db_instances().send().await.is_err();
    println!("rds:DescribeDBInstances in {SRC}: {}", if refused { "connection reset" } else { "answered?!" });
    println!("The alarm orders-db-down can't reach EventBridge from {SRC}. In {DR}, RDS says:");
    let mut broke = event("failover-replica-replication-error.json", None);
    broke["time"] = json!(Utc::now().to_rfc3339());
    println!("  {} {}", broke["detail"]["EventID"], broke["detail"]["Message"]);
    let report = bed.trigger("replica", &broke);
    println!("failover-trigger in {DR}: {report}");
    let execution = report["execution_arn"].as_str().expect("an execution").to_owned();

    let ask = loop {
        let told = notices(moto, DR, inbox).await;
        for n in &told {
            println!("\nWhat a person receives (from {DR}'s topic):\n  Subject: {}\n{}", n.subject, indent(&n.text));
        }
        if let Some(n) = told.into_iter().find(|n| n.subject.contains("approval")) {
            break n;
        }
        bed.watch.check_alive();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let approve = line_after(&ask.text, "Approve: ").to_owned();
    let by_browser = std::env::var("LIFEBOAT_DEMO_APPROVER").as_deref() == Ok("browser");
    if by_browser {
        println!("\nOpen the Approve link above in a browser and decide (waiting up to 15 minutes).");
    } else {
        let page = http("GET", &approve, None);
        println!(
            "\nGET the Approve link (what a mail scanner or a click does): {}, a page with a form; nothing decided",
            page.status
        );
        println!("\nEmail is down too? The on-call approves from a terminal, as their AWS identity:");
        let incident = report["incident_id"].as_str().unwrap_or_default().to_owned();
        cli(&["status", "orders-prod"]);
        cli(&["plan", "orders-prod"]);
        cli(&["approve", &incident, "--confirm", "orders-prod"]);
        let late = post_form(&approve, "database=orders-prod&approver=demo-operator");
        let outcome = late.body.split("<h1>").nth(1).and_then(|t| t.split("</h1>").next()).unwrap_or("");
        println!("\nThe page's form, posted after it: {} {outcome}", late.status);
        println!("(LIFEBOAT_DEMO_APPROVER=browser scripts/demo.sh waits for you to approve in a browser instead)");
    }
    let sfn = aws_sdk_sfn::Client::new(&dr);
    let wait = std::time::Duration::from_secs(if by_browser { 15 * 60 } else { 300 });
    let (status, _) = execution_ends(&sfn, &execution, &bed.watch, wait).await;
    println!("\nThe execution ended {status}");
    for n in notices(moto, DR, inbox).await {
        println!("\nWhat a person receives:\n  Subject: {}\n{}", n.subject, indent(&n.text));
    }
    println!("\ndb.orders.internal answers {}", resolve(moto, "db.orders.internal").unwrap_or_default());
    let param = ssm.get_parameter().name("/orders/prod/db-endpoint").send().await.expect("parameter");
    println!(
        "SSM /orders/prod/db-endpoint in {DR} = {}",
        param.parameter().and_then(|p| p.value()).unwrap_or_default()
    );
    println!("\nEvidence kept for auditors in s3://{}:", bed.evidence);
    for (key, body) in evidence(moto, DR, &bed.evidence).await {
        println!("  {key} ({} bytes)", body.len());
        if key.ends_with(".md") {
            println!("{}", indent(&body.lines().take(14).collect::<Vec<_>>().join("\n")));
        }
    }
    let seen: serde_json::Value =
        serde_json::from_str(&http("GET", &format!("{}/_lifeboat/outage", moto.endpoint), None).body)
            .unwrap_or_default();
    let east = seen["calls"][SRC][FUNCTIONS_ACCESS_KEY].as_u64().unwrap_or(0);
    let west = seen["calls"][DR][FUNCTIONS_ACCESS_KEY].as_u64().unwrap_or(0);
    println!("Lifeboat's calls during the outage: {west} to {DR}, {east} to {SRC}");
    moto.post("/_lifeboat/outage", &json!({}));
    println!("\n== {SRC} is back ==");
}

/// After the failover: re-protect builds the way back in us-east-1 (a replica of the new
/// primary, with the old primary's settings), and a planned failback takes orders-prod home
/// along it, through the same machine and approval.
async fn round_trip(moto: &Moto, bed: &mut RecoveryBed, inbox: &str, zone: &str, cli: &dyn Fn(&[&str]) -> Ran) {
    println!("\n== After the failover: protected again ==");
    cli(&["reprotect", "orders-prod", "--dry-run"]);
    let built = cli(&["reprotect", "orders-prod", "--json"]);
    let built: serde_json::Value = serde_json::from_str(&built.stdout).unwrap_or_default();
    let back = built["replica"].as_str().and_then(|a| a.rsplit(':').next()).unwrap_or_default().to_owned();
    cli(&["status", "orders-prod"]);

    println!("\n== Going home: a planned failback, with the same approval ==");
    // In AWS RDS reports the way back's lag each minute; in the emulator the demo says it.
    replica_lag(moto, SRC, &back, 0.0, 5).await;
    println!("RDS reports ReplicaLag 0 s for {back} in {SRC}");
    let first = cli(&["failback", "orders-prod", "--reason", "us-east-1 is healthy again", "--json"]);
    let first: serde_json::Value = serde_json::from_str(&first.stdout).unwrap_or_default();
    let sfn = aws_sdk_sfn::Client::new(&moto.sdk(DR).await);
    if let Some(execution) = first["execution_arn"].as_str() {
        let (status, _) = execution_ends(&sfn, execution, &bed.watch, std::time::Duration::from_secs(300)).await;
        println!("\nThat failback ended {status}:");
        for n in notices(moto, DR, inbox).await.into_iter().filter(|n| n.subject.contains("FAILED")) {
            println!("{}", indent(n.text.lines().find(|l| l.starts_with("Why:")).unwrap_or_default()));
        }
    }
    // The pair's home record still names the old primary: the on-call points it at the way back
    // (Route 53's control plane is up again), and asks again.
    let way_back = instance_endpoint(moto, SRC, &back).await.unwrap_or_default();
    repoint_primary(moto, zone, "db.orders.internal", &way_back).await;
    println!("\nThe on-call points db.orders.internal's PRIMARY record at {way_back} (UPSERT, same health check)");
    let asked =
        cli(&["failback", "orders-prod", "--reason", "us-east-1 is healthy again, home record ready", "--json"]);
    let asked: serde_json::Value = serde_json::from_str(&asked.stdout).unwrap_or_default();
    let (Some(id), Some(execution)) = (asked["incident_id"].as_str(), asked["execution_arn"].as_str()) else {
        println!("no failback started: {asked}");
        return;
    };
    loop {
        let told = notices(moto, DR, inbox).await;
        for n in &told {
            println!("\nWhat a person receives:\n  Subject: {}\n{}", n.subject, indent(&n.text));
        }
        if told.iter().any(|n| n.subject.contains("approval") || n.subject.contains("FAILED")) {
            break;
        }
        bed.watch.check_alive();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    cli(&["approve", id, "--confirm", "orders-prod"]);
    let (status, _) = execution_ends(&sfn, execution, &bed.watch, std::time::Duration::from_secs(300)).await;
    println!("\nThe failback ended {status}");
    for n in notices(moto, DR, inbox).await {
        println!("\nWhat a person receives:\n  Subject: {}\n{}", n.subject, indent(&n.text));
    }
    println!("\ndb.orders.internal answers {}", resolve(moto, "db.orders.internal").unwrap_or_default());
    cli(&["status", "orders-prod"]);
}

/// The stack in us-west-2's own table and topic, and the DR key its copies use.
struct DrStack<'a> {
    table: &'a str,
    topic: &'a str,
    key: &'a str,
}

/// Readiness as the stack in us-west-2 checks it every 30 minutes: the table, then one thing
/// broken (the DR key scheduled for deletion) and mended, each change told once.
async fn readiness(moto: &Moto, bed: &RecoveryBed, inbox: &str, stack: &DrStack<'_>) {
    println!("\n== Ready to fail over? (rpo-monitor {{\"readiness\": true}}, every 30 minutes, reading only) ==");
    let dr = moto.sdk(DR).await;
    let file = bed.dir.join("lifeboat.yaml").to_string_lossy().into_owned();
    let config = lifeboat_core::aws::ConfigCache::new(lifeboat_core::aws::ConfigSource::File(file), &dr, CONFIG_TTL);
    let mut deps = rpo_monitor::Deps::new(config, &dr, stack.table, stack.topic);
    deps.approval_key_param = Some(APPROVAL_KEY_PARAM.to_owned());
    // The failover-steps role as template.yaml writes it, for IAM's policy simulator.
    let statements = template_statements("FailoverStepsFunction", DR);
    deps.steps_role = Some(role_with(moto, "lifeboat-failover-steps", &statements).await);
    show_readiness(&deps).await;
    let kms = aws_sdk_kms::Client::new(&dr);
    println!("\nSomeone schedules the DR key for deletion:");
    kms.schedule_key_deletion().key_id(stack.key).pending_window_in_days(7).send().await.expect("schedule deletion");
    show_readiness(&deps).await;
    println!("\nThe deletion is cancelled and the key enabled again:");
    kms.cancel_key_deletion().key_id(stack.key).send().await.expect("cancel deletion");
    kms.enable_key().key_id(stack.key).send().await.expect("enable key");
    show_readiness(&deps).await;
    for n in notices(moto, DR, inbox).await {
        println!("\nWhat a person receives:\n  Subject: {}\n{}", n.subject, indent(&n.text));
    }
}

async fn show_readiness(deps: &rpo_monitor::Deps) {
    let report = rpo_monitor::handle(deps, json!({"readiness": true}), Utc::now()).await.expect("readiness");
    for r in &report.readiness {
        println!("{}: {}", r.database, r.summary);
        for c in &r.checks {
            let level = serde_json::to_value(c.level).unwrap_or_default();
            println!("  {:<8} {:<24} {}", level.as_str().unwrap_or_default(), c.check, c.reason);
        }
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}
