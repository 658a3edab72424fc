//! EventBridge delivers at least once, sometimes at the same moment: each trigger delivered three
//! times concurrently ends as delivered once — one copy, one notice, one incident and one
//! failover execution, one set of deletions — and a snapshot's events out of order do no harm.

use std::time::Duration;

use chrono::Utc;
use lifeboat_tests::*;
use serde_json::{json, Value};

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_concurrent_deliveries_end_as_one() {
    let moto = Moto::start();
    let key = kms_key(&moto, DR).await;
    let table = incidents_table(&moto, SRC).await;
    let (topic, inbox) = topic_with_queue(&moto, SRC).await;
    create_instance(&moto, SRC, "orders-prod").await;
    let yaml = format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{key}\" }}\n    retention:\n      source: {{ daily: 1, min_keep: 1 }}\n      copies: {{ daily: 5, min_keep: 5 }}\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:{DR}:{ACCOUNT}:db:orders-replica\n      approval: required\n      triggers: {{ alarms: [orders-prod-db-down], health: true }}\n"
    );
    let sdk = moto.sdk(SRC).await;
    let ttl = Duration::from_secs(60);
    let copier = snapshot_copier::Deps::new(config_in_ssm(&moto, &yaml, ttl).await, &sdk);
    let pruner = snapshot_pruner::Deps::new(config_in_ssm(&moto, &yaml, ttl).await, &sdk, Some(&topic));
    let notifier = notifier::Deps::new(config_in_ssm(&moto, &yaml, ttl).await, &sdk, &table, &topic, None);
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    // moto's default Step Functions backend records executions (and their names) without running them.
    let machine = sfn
        .create_state_machine()
        .name("lifeboat-failover")
        .definition(r#"{"StartAt": "Wait", "States": {"Wait": {"Type": "Succeed"}}}"#)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/lifeboat-test"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_owned();
    let trigger = failover_trigger::Deps::new(
        config_in_ssm(&moto, &yaml, ttl).await,
        &sdk,
        &table,
        &machine,
        Duration::from_secs(1),
    );

    // Out of order: the snapshot's "deleted" arrives before its "created"; both do nothing.
    let gone = snapshot(&moto, SRC, "orders-prod", "orders-gone", &[]).await;
    moto.rds(SRC).await.delete_db_snapshot().db_snapshot_identifier("orders-gone").send().await.unwrap();
    let deleted =
        snapshot_copier::handle(&copier, event("rds-db-snapshot-deleted.json", Some(&gone)), Utc::now()).await.unwrap();
    let created =
        snapshot_copier::handle(&copier, event("rds-db-snapshot-manual-created.json", Some(&gone)), Utc::now())
            .await
            .unwrap();
    assert!(deleted.started.is_empty() && created.started.is_empty(), "{deleted:?} {created:?}");
    assert!(db_snapshots(&moto, DR).await.is_empty());

    // The copier: one copy.
    let arn = snapshot(&moto, SRC, "orders-prod", "orders-1", &[("lifeboat:managed", "true")]).await;
    let e = event("rds-db-snapshot-manual-created.json", Some(&arn));
    let runs = tokio::join!(
        snapshot_copier::handle(&copier, e.clone(), Utc::now()),
        snapshot_copier::handle(&copier, e.clone(), Utc::now()),
        snapshot_copier::handle(&copier, e.clone(), Utc::now()),
    );
    let started: usize = [runs.0, runs.1, runs.2].into_iter().map(|r| r.expect("copier").started.len()).sum();
    assert_eq!(started, 1, "three deliveries start one copy");
    assert_eq!(db_snapshots(&moto, DR).await.len(), 1);

    // The notifier: one Health notice.
    let h = event("health-rds-issue-open.json", None);
    let runs = tokio::join!(
        notifier::handle(&notifier, h.clone(), Utc::now()),
        notifier::handle(&notifier, h.clone(), Utc::now()),
        notifier::handle(&notifier, h.clone(), Utc::now()),
    );
    for r in [runs.0, runs.1, runs.2] {
        r.expect("notifier");
    }
    assert_eq!(notices(&moto, SRC, &inbox).await.len(), 1, "one notice");

    // The failover trigger: one incident, one execution.
    let a = event("cloudwatch-alarm-into-alarm.json", None);
    let runs = tokio::join!(
        failover_trigger::handle(&trigger, a.clone(), Utc::now()),
        failover_trigger::handle(&trigger, a.clone(), Utc::now()),
        failover_trigger::handle(&trigger, a.clone(), Utc::now()),
    );
    let reports: Vec<_> = [runs.0, runs.1, runs.2].into_iter().map(|r| r.expect("trigger")).collect();
    let ids: std::collections::BTreeSet<_> = reports.iter().filter_map(|r| r.incident_id.clone()).collect();
    assert_eq!(ids.len(), 1, "{reports:?}");
    assert_eq!(reports.iter().filter(|r| r.started).count(), 1, "{reports:?}");
    let executions = sfn.list_executions().state_machine_arn(&machine).send().await.unwrap();
    assert_eq!(executions.executions().len(), 1);
    let incidents = table_items(&moto, SRC, &table).await.into_iter().filter(|i| i.contains("incident#")).count();
    assert_eq!(incidents, 1);

    // The pruner: the same deletions as one run, none failed.
    moto.set_clock(Utc::now() + chrono::Duration::days(3));
    snapshot(&moto, SRC, "orders-prod", "orders-2", &[("lifeboat:managed", "true")]).await;
    let s = json!({});
    let runs = tokio::join!(
        snapshot_pruner::handle(&pruner, s.clone(), Utc::now() + chrono::Duration::days(3)),
        snapshot_pruner::handle(&pruner, s.clone(), Utc::now() + chrono::Duration::days(3)),
        snapshot_pruner::handle(&pruner, s.clone(), Utc::now() + chrono::Duration::days(3)),
    );
    for r in [runs.0, runs.1, runs.2] {
        let summary = r.expect("pruner");
        assert!(summary.groups.iter().all(|g| g.failed.is_empty()), "{summary:?}");
    }
    let left: Vec<String> =
        db_snapshots(&moto, SRC).await.into_iter().map(|s| s.0).filter(|id| id.starts_with("orders-")).collect();
    assert_eq!(left, ["orders-2"], "daily: 1 keeps the newest, once");
}

/// Every sample in `events/` goes, in the same order, to the functions the template routes it to:
/// once in one emulator, three times concurrently in another. Both must end the same — the same
/// snapshots, incident-table items, notices and executions — and each of the three deliveries must
/// end as the single one did (same success, same error class). A new sample that no function
/// takes fails the test until it is routed here.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_sample_event_delivered_three_times_concurrently_ends_as_delivered_once() {
    // Boxed: two worlds of every function's clients, built at once, outgrow a test thread's stack.
    let (once, thrice) = tokio::join!(Box::pin(EventWorld::new()), Box::pin(EventWorld::new()));
    let mut files: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".json"))
        .collect();
    files.sort();
    // Samples without a time of their own arrive at the same moment in both worlds.
    let arrival = Utc::now();
    let mut outcomes = Vec::new();
    for file in &files {
        // Setting no faults zeroes the emulator's call counts: from here, this sample's calls.
        once.moto.post("/_lifeboat/faults", &json!({"faults": []}));
        let one = once.deliver(file, 1, arrival).await;
        let three = thrice.deliver(file, 3, arrival).await;
        assert_eq!(three, vec![one[0].clone(); 3], "{file}: three deliveries end as one did");
        outcomes.push(format!("{file}: {}", one[0]));
        // A sample refused as bad input wrote nothing: the emulator saw only reads.
        if one[0].contains("non-retryable") || one[0].contains("HTTP 4") {
            let counts = once.moto.fault_counts();
            let ops: Vec<&String> = counts["calls"].as_object().expect("calls").keys().collect();
            let read = |op: &str| {
                let name = op.split_once(':').map_or(op, |(_, n)| n);
                ["Describe", "Get", "List", "Scan", "Query"].iter().any(|r| name.starts_with(r))
            };
            assert!(ops.iter().all(|op| read(op)), "{file} was refused, yet the emulator saw {ops:?}");
        }
    }
    println!("{}", outcomes.join("\n"));
    // The samples do something: copies, incidents, notices and executions, not only refusals.
    let end = once.end_state().await;
    assert!(end.iter().any(|l| l.starts_with("us-west-2 db lifeboat-")), "{end:#?}");
    assert!(end.iter().any(|l| l.starts_with("us-west-2 cluster lifeboat-")), "{end:#?}");
    assert!(end.iter().any(|l| l.starts_with("notice ")), "{end:#?}");
    assert!(end.iter().any(|l| l.starts_with("execution lifeboat-failover ")), "{end:#?}");
    assert!(end.iter().any(|l| l.starts_with("execution lifeboat-drill ")), "{end:#?}");
    assert_eq!(end, thrice.end_state().await, "the same end state");
}

struct EventWorld {
    moto: Moto,
    table: String,
    inbox: String,
    machines: Vec<(String, String)>,
    copier: snapshot_copier::Deps,
    pruner: snapshot_pruner::Deps,
    notifier: notifier::Deps,
    trigger: failover_trigger::Deps,
    drill: dr_drill::Deps,
    validator: data_validator::Deps,
    approval: approval_handler::Deps,
    operator: operator::Deps,
    reprotect: reprotect::Deps,
    vault: vault_keeper::Deps,
}

impl EventWorld {
    async fn new() -> EventWorld {
        let moto = Moto::start();
        let key = kms_key(&moto, DR).await;
        let table = incidents_table(&moto, SRC).await;
        let (topic, inbox) = topic_with_queue(&moto, SRC).await;
        moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": "dr-db"}));
        create_instance(&moto, SRC, "orders-prod").await;
        create_cluster(&moto, SRC, "catalog").await;
        // The manual snapshots the samples name, Lifeboat's to copy.
        let managed = [("lifeboat:managed", "true")];
        snapshot(&moto, SRC, "orders-prod", "orders-prod-pre-migration-20261124", &managed).await;
        cluster_snapshot(&moto, SRC, "catalog", "catalog-aurora-pre-release-20261124", &managed).await;
        let yaml = format!(
            "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ daily: 5, min_keep: 5 }}\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:{DR}:{ACCOUNT}:db:orders-replica\n      approval: required\n      triggers: {{ alarms: [orders-prod-db-down], health: true }}\n    drill:\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db }}\n  - name: catalog-aurora\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:cluster:catalog\n    tier: production\n    rpo: 1h\n    rto: 1h\n    copy_to:\n      - {{ region: {DR}, kms_key: \"{key}\" }}\n"
        );
        let sdk = moto.sdk(SRC).await;
        aws_sdk_ssm::Client::new(&sdk)
            .put_parameter()
            .name(APPROVAL_KEY_PARAM)
            .value("local-approval-key-0123456789abcdef-0123456789")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("approval key");
        // moto's default Step Functions backend records executions (and their names) without running them.
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        let mut machines = Vec::new();
        for name in ["lifeboat-failover", "lifeboat-drill"] {
            let arn = sfn
                .create_state_machine()
                .name(name)
                .definition(r#"{"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}"#)
                .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/lifeboat-test"))
                .send()
                .await
                .expect("state machine")
                .state_machine_arn()
                .to_owned();
            machines.push((name.to_owned(), arn));
        }
        let ttl = Duration::from_secs(60);
        let config = || config_in_ssm(&moto, &yaml, ttl);
        let mut drill = dr_drill::Deps::new(config().await, &sdk, &table, &topic);
        drill.state_machine = Some(machines[1].1.clone());
        EventWorld {
            validator: data_validator::Deps::new(config().await, &sdk, None, Some(&table)),
            copier: snapshot_copier::Deps::new(config().await, &sdk),
            pruner: snapshot_pruner::Deps::new(config().await, &sdk, Some(&topic)),
            notifier: notifier::Deps::new(config().await, &sdk, &table, &topic, None),
            trigger: failover_trigger::Deps::new(config().await, &sdk, &table, &machines[0].1, Duration::from_secs(1)),
            drill,
            approval: approval_handler::Deps::new(config().await, &sdk, &table, APPROVAL_KEY_PARAM),
            operator: operator::Deps {
                trigger: failover_trigger::Deps::new(
                    config().await,
                    &sdk,
                    &table,
                    &machines[0].1,
                    Duration::from_secs(1),
                ),
                approval: approval_handler::Deps::new(config().await, &sdk, &table, ""),
                drill: {
                    let mut d = dr_drill::Deps::new(config().await, &sdk, &table, &topic);
                    d.state_machine = Some(machines[1].1.clone());
                    d
                },
                reprotect: reprotect::Deps::new(config().await, &sdk, &table),
                // `validate` only reads; the operator requests replayed here are the writing ones.
                validator: None,
            },
            reprotect: reprotect::Deps::new(config().await, &sdk, &table),
            vault: {
                let settings = lifeboat_core::vault::VaultSettings {
                    account: "210987654321".into(),
                    region: DR.into(),
                    kms_key: key.clone(),
                    minimum_retention: Duration::from_secs(7 * 86_400),
                    default_retention: Duration::from_secs(30 * 86_400),
                    minimum_kept: 1,
                    sources: [ACCOUNT.to_owned()].into(),
                    restore_accounts: Default::default(),
                };
                let mut v = vault_keeper::Deps::new(
                    settings,
                    vault_keeper::Role::Copier,
                    false,
                    &moto.sdk_as(DR, "210987654321").await,
                );
                v.emit_metrics = false;
                v
            },
            moto,
            table,
            inbox,
            machines,
        }
    }

    /// The sample as delivered here: automated-snapshot samples point at the snapshot moto made
    /// with its database (an automated identifier can't be created by hand).
    async fn sample(&self, file: &str) -> Value {
        let auto = |seen: Seen, prefix: &str| seen.into_iter().map(|s| s.0).find(|id| id.starts_with(prefix));
        match file {
            "rds-db-snapshot-automated-created.json" => {
                let id = auto(db_snapshots(&self.moto, SRC).await, "rds:orders-prod").expect("automated snapshot");
                event(file, Some(&format!("arn:aws:rds:{SRC}:{ACCOUNT}:snapshot:{id}")))
            }
            "rds-cluster-snapshot-automated-created.json" => {
                let id = auto(cluster_snapshots(&self.moto, SRC).await, "rds:catalog").expect("automated snapshot");
                event(file, Some(&format!("arn:aws:rds:{SRC}:{ACCOUNT}:cluster-snapshot:{id}")))
            }
            _ => event(file, None),
        }
    }

    /// Delivers `file` `times` times at once to each function the template routes it to; each
    /// delivery's outcome as `function: ok | retryable | non-retryable`.
    async fn deliver(&self, file: &str, times: usize, arrival: chrono::DateTime<Utc>) -> Vec<String> {
        let payload = self.sample(file).await;
        // The moment it arrives: a minute after the event when it carries a time.
        let now = payload["time"]
            .as_str()
            .and_then(|t| t.parse::<chrono::DateTime<Utc>>().ok())
            .map_or(arrival, |t| t + chrono::Duration::minutes(1));
        let routes: &[&str] = match file {
            // Every schedule's event has this shape: the copier's sweep, and re-protect's.
            "scheduled-sweep.json" => &["copier", "reprotect"],
            f if f.starts_with("rds-") || f.starts_with("malformed-") => &["copier"],
            f if f.starts_with("health-") => &["notifier", "trigger"],
            f if f.starts_with("cloudwatch-alarm-") || f.starts_with("failover-") => &["trigger"],
            f if f.starts_with("notifier-") => &["notifier"],
            f if f.starts_with("pruner-") => &["pruner"],
            f if f.starts_with("dr-drill-") => &["drill"],
            f if f.starts_with("data-validator-") => &["validator"],
            f if f.starts_with("approval-") => &["approval"],
            f if f.starts_with("operator-") => &["operator"],
            f if f.starts_with("reprotect-") => &["reprotect"],
            // The vault's answer goes to the source's copier; shares and restore requests to the
            // vault's copier (here, a vault that serves this account and lists no restore account).
            "vault-copy-made.json" => &["copier"],
            f if f.starts_with("vault-") => &["vault"],
            other => panic!("{other}: no function takes this sample; route it here"),
        };
        let mut outcomes = vec![String::new(); times];
        for route in routes {
            let runs = match times {
                1 => vec![self.one(route, payload.clone(), now).await],
                3 => {
                    let (a, b, c) = tokio::join!(
                        self.one(route, payload.clone(), now),
                        self.one(route, payload.clone(), now),
                        self.one(route, payload.clone(), now),
                    );
                    vec![a, b, c]
                }
                n => unreachable!("{n} deliveries"),
            };
            for (i, o) in runs.into_iter().enumerate() {
                outcomes[i] += &format!("{route}: {o}; ");
            }
        }
        outcomes
    }

    async fn one(&self, route: &str, payload: Value, now: chrono::DateTime<Utc>) -> String {
        fn class<T>(r: Result<T, lifeboat_core::error::LifeboatError>) -> String {
            match r {
                Ok(_) => "ok".into(),
                Err(e) if e.is_retryable() => "retryable".into(),
                Err(_) => "non-retryable".into(),
            }
        }
        // Boxed: the functions' futures are large and this test's whole future lives on the test
        // thread's stack (tokio::test), which a debug build outgrows.
        Box::pin(async move {
            match route {
                "copier" => class(snapshot_copier::handle(&self.copier, payload, now).await),
                "pruner" => class(snapshot_pruner::handle(&self.pruner, payload, now).await),
                "notifier" => class(notifier::handle(&self.notifier, payload, now).await),
                "trigger" => class(failover_trigger::handle(&self.trigger, payload, now).await),
                "drill" => class(dr_drill::handle(&self.drill, payload, now).await),
                "validator" => class(data_validator::handle(&self.validator, payload, now, None).await),
                "vault" => class(vault_keeper::handle(&self.vault, payload, now).await),
                "reprotect" => class(Box::pin(reprotect::handle(&self.reprotect, payload, now)).await),
                "approval" => {
                    let req = serde_json::from_value(payload).expect("a Function URL request");
                    format!("HTTP {}", approval_handler::handle(&self.approval, req, now).await.status_code)
                }
                "operator" => {
                    let req = serde_json::from_value(payload).expect("a Function URL request");
                    format!("HTTP {}", operator::handle(&self.operator, req, now).await.status_code)
                }
                other => unreachable!("{other}"),
            }
        })
        .await
    }

    /// What the deliveries left: snapshots, incident-table items, notices, executions. A copy's
    /// `lifeboat:source-created` is when this world's moto made the source, and a claim's
    /// `claimed_by` a random token, so both are left out.
    async fn end_state(&self) -> Vec<String> {
        let mut out = Vec::new();
        let tags = |t: Vec<(String, String)>| -> Vec<(String, String)> {
            t.into_iter().filter(|(k, _)| k != "lifeboat:source-created").collect()
        };
        for region in [SRC, DR] {
            for (id, status, _, t) in db_snapshots(&self.moto, region).await {
                out.push(format!("{region} db {id} {status} {:?}", tags(t)));
            }
            for (id, status, _, t) in cluster_snapshots(&self.moto, region).await {
                out.push(format!("{region} cluster {id} {status} {:?}", tags(t)));
            }
        }
        // A claim's token is random per claim: which delivery won, not what was done.
        let without_token = |item: String| match item.split_once("\"claimed_by\": S(\"") {
            Some((head, rest)) => format!("{head}{}", rest.split_once("\"), ").map_or("", |(_, tail)| tail)),
            None => item,
        };
        out.extend(
            table_items(&self.moto, SRC, &self.table).await.into_iter().map(|i| format!("item {}", without_token(i))),
        );
        let mut notices: Vec<String> = notices(&self.moto, SRC, &self.inbox)
            .await
            .into_iter()
            .map(|n| format!("notice {} {}", n.subject, n.text))
            .collect();
        notices.sort();
        out.extend(notices);
        let sfn = aws_sdk_sfn::Client::new(&self.moto.sdk(SRC).await);
        for (name, arn) in &self.machines {
            let list = sfn.list_executions().state_machine_arn(arn).send().await.expect("executions");
            let mut names: Vec<String> =
                list.executions().iter().map(|e| format!("execution {name} {}", e.name())).collect();
            names.sort();
            out.extend(names);
        }
        out
    }
}
