//! The incident table's three parts against moto, one test each: the lifecycle
//! (`aws/incidents/lifecycle.rs`), the send-once claims (`claims.rs`) and the drill records
//! (`drills.rs`).

use chrono::{Duration, Utc};
use lifeboat_core::aws::incidents::{Claim, IncidentStore, Opened};
use lifeboat_core::config::Config;
use lifeboat_core::drill::DrillResult;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::incident::{Entry, Incident, Kind, Status};
use lifeboat_tests::*;

async fn store(moto: &Moto) -> IncidentStore {
    let table = incidents_table(moto, "us-east-1").await;
    IncidentStore::new(&moto.sdk("us-east-1").await, &table)
}

fn orders() -> Config {
    Config::from_yaml(&format!(
        "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders\n    tier: production\n    rpo: 5m\n    rto: 30m\n"
    ))
    .expect("config")
}

#[tokio::test]
async fn one_open_incident_per_database_each_entry_once_and_only_the_moves_incident_rs_allows() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let config = orders();
    let db = config.database_named("orders").unwrap();
    let now = Utc::now();
    let first = Incident::declare(db, Kind::Outage, now, "t", "down", "alarm:1");
    let second = Incident::declare(db, Kind::Outage, now + Duration::minutes(1), "t", "still down", "alarm:2");
    let seen = |i: &Incident| Entry::new(now, "t", "also seen", &format!("seen:{}", i.id));
    assert!(matches!(store.open(&first, &seen(&first)).await.unwrap(), Opened::New(_)));
    // Another trigger joins the open incident's timeline; the same trigger again adds nothing.
    let Opened::AlreadyOpen(open) = store.open(&second, &seen(&second)).await.unwrap() else { panic!("opened twice") };
    assert_eq!(open.id, first.id);
    store.open(&second, &seen(&second)).await.unwrap();
    let stored = store.get(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.timeline.iter().filter(|e| e.key == format!("seen:{}", second.id)).count(), 1);
    assert!(!store.record(&first.id, &Entry::new(now, "t", "again", "declared")).await.unwrap(), "each key once");
    // Declared can't be resolved: NonRetryable, nothing changed.
    let refused = store.transition(&first.id, Status::Resolved, now, "t", "resolved").await.unwrap_err();
    assert!(matches!(refused, LifeboatError::Rejected(_)), "{refused}");
    assert_eq!(store.get(&first.id).await.unwrap().unwrap().status, Status::Declared);
    // Closing frees the database: the next trigger opens a new incident.
    store.transition(&first.id, Status::Aborted, now, "t", "rejected").await.unwrap();
    assert!(store.open_for("orders").await.unwrap().is_none());
    assert!(matches!(store.open(&second, &seen(&second)).await.unwrap(), Opened::New(_)));
    assert_eq!(store.list_open().await.unwrap().iter().map(|i| i.id.clone()).collect::<Vec<_>>(), [second.id]);
}

#[tokio::test]
async fn a_message_is_sent_once_a_held_claim_waits_and_an_abandoned_one_is_taken_over() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let now = Utc::now();
    let sent = store.send_once(None, "health:x", now, async { Ok(()) }).await.unwrap();
    let again = store.send_once(None, "health:x", now, async { Ok(()) }).await.unwrap();
    assert_eq!((sent, again), (true, false), "sent once");
    // Another invocation holds a claim: a retry later, not a success that loses the message.
    assert_eq!(store.claim(None, "health:y", now).await.unwrap(), Claim::Claimed);
    let held = store.send_once(None, "health:y", now, async { Ok(()) }).await.unwrap_err();
    assert!(held.is_retryable(), "{held}");
    // A claim nobody marked sent for 90 s was abandoned: taken over, and sent.
    let later = now + Duration::seconds(120);
    assert!(store.send_once(None, "health:y", later, async { Ok(()) }).await.unwrap());
    // A failed publish gives its claim back: the retry sends.
    let failed = store.send_once(None, "health:z", now, async { Err(LifeboatError::Transient("503".into())) }).await;
    assert!(failed.is_err());
    assert!(store.send_once(None, "health:z", now, async { Ok(()) }).await.unwrap());
}

#[tokio::test]
async fn one_drill_per_database_at_a_time_and_the_last_result_kept() {
    let moto = Moto::start();
    let store = store(&moto).await;
    let now = Utc::now();
    assert!(store.lock_drill("orders", "drill-a", now, now + Duration::hours(6)).await.unwrap());
    assert!(!store.lock_drill("orders", "drill-b", now, now + Duration::hours(6)).await.unwrap());
    store.unlock_drill("orders", "drill-b").await.unwrap();
    assert!(
        !store.lock_drill("orders", "drill-b", now, now + Duration::hours(6)).await.unwrap(),
        "b can't free a's lock"
    );
    store.unlock_drill("orders", "drill-a").await.unwrap();
    assert!(store.lock_drill("orders", "drill-b", now, now + Duration::hours(6)).await.unwrap());
    assert!(store.last_drill("orders").await.unwrap().is_none());
    let result = |id: &str, passed: bool| DrillResult {
        drill_id: id.into(),
        database: "orders".into(),
        region: "us-west-2".into(),
        snapshot: None,
        started: now,
        ended: now,
        measured_rto_seconds: Some(60),
        rto_seconds: 1800,
        passed,
        checks: vec![],
        failure: None,
        cleaned_up: vec![],
        data: None,
    };
    store.put_drill_result(&result("drill-a", false)).await.unwrap();
    store.put_drill_result(&result("drill-b", true)).await.unwrap();
    assert_eq!(store.last_drill("orders").await.unwrap(), Some(result("drill-b", true)));
}
