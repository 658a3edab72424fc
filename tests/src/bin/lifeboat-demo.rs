//! The DR story end to end against a local AWS (moto), printing what happened: a protected
//! database with two months of snapshots, a new snapshot copied to the DR region on its event, a
//! replayed event, a lost event caught by the sweep, then retention (dry run, then for real); then
//! an AWS Health notice and an incident as people receive them, and the incident's stored item.
//! The functions' own handlers run in-process with the clients and config their `main` builds;
//! `tests/lambda_runtime.rs` runs the real binary through the Lambda runtime API emulator.

use chrono::{Duration, Utc};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::CONFIG_TTL;
use lifeboat_core::incident::{Entry, Incident, Kind};
use lifeboat_core::message::human;
use lifeboat_tests::*;
use serde_json::json;

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";
const HISTORY_DAYS: i64 = 60;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("== Lifeboat demo: local AWS (moto) ==");
    let moto = Moto::start();
    println!("moto listening on {}", moto.endpoint);

    let key = kms_key(&moto, DR).await;
    let (topic, inbox) = topic_with_queue(&moto, SRC).await;
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
"#
    );
    let sdk = moto.sdk(SRC).await;
    // As each function's init does: read the policy document from SSM, fail loudly if broken;
    // each re-reads it once it is a minute old.
    let copier_config = config_in_ssm(&moto, &yaml, CONFIG_TTL).await;
    let config = copier_config.get().await.expect("config");
    println!("config read from SSM {CONFIG_PARAM}:\n{}", indent(&yaml));
    println!("notifications go to the stack's topic {topic}");
    let mut copier = snapshot_copier::Deps::new(copier_config, &sdk);
    // The demo prints the sweep's metrics line itself, once, rather than after every run.
    copier.emit_metrics = false;
    let pruner = snapshot_pruner::Deps::new(config_in_ssm(&moto, &yaml, CONFIG_TTL).await, &sdk, Some(&topic));

    let start = Utc::now() - Duration::days(HISTORY_DAYS);
    moto.set_clock(start - Duration::hours(1));
    create_instance(&moto, SRC, "orders").await;
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

    println!("\n== An incident, opened as the failover trigger will open it ==");
    let store = IncidentStore::new(&sdk, &table);
    let db = config.database_named("orders-prod").expect("orders-prod");
    let now = Utc::now();
    let incident = Incident::declare(
        db,
        Kind::Region,
        now,
        "failover-trigger",
        "AWS Health: RDS connectivity issues in us-east-1",
        "demo",
    );
    let seen = Entry::new(now, "failover-trigger", "also seen", "seen:demo");
    store.open(&incident, &seen).await.expect("open");
    notifier::handle(&notifier, json!({"incident_id": incident.id, "message": "declared"}), now)
        .await
        .expect("declared");
    for n in notices(&moto, SRC, &inbox).await {
        println!("What a person receives:\n  Subject: {}\n{}", n.subject, indent(&n.text));
    }
    let item = raw_item(&moto, SRC, &table, &format!("incident#{}", incident.id)).await;
    println!(
        "\nThe incident's item in DynamoDB {table}:\n{}",
        indent(&serde_json::to_string_pretty(&item).unwrap_or_default())
    );

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
    println!("\n== done: the emulator stops with this program ==");
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}
