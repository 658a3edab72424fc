//! The incident table and the notifier against moto: DynamoDB conditional writes, SNS → SQS with
//! a filter policy, AWS Health samples from events/, and the progress schedule.

use chrono::{DateTime, Duration, Utc};
use lifeboat_core::aws::incidents::{IncidentStore, Opened};
use lifeboat_core::aws::CONFIG_TTL;
use lifeboat_core::config::Config;
use lifeboat_core::incident::{Entry, Incident, Kind, Status};
use lifeboat_tests::*;
use notifier::{handle, Deps};
use serde_json::{json, Value};

const REGION: &str = "us-east-1";
const CONFIG: &str = "databases:
  - name: orders-prod
    source: arn:aws:rds:us-east-1:123456789012:db:orders-prod
    tier: production
    rpo: 5m
    rto: 30m
  - name: reporting-staging
    source: arn:aws:rds:us-east-1:123456789012:db:reporting-staging
    tier: non-production
    rpo: 24h
    rto: 4h
";

struct World {
    moto: Moto,
    deps: Deps,
    store: IncidentStore,
    table: String,
    /// Everything published to the topic.
    all: String,
    /// Subscribed with the filter policy {"severity": ["P1"]}: the pager.
    pager: String,
    /// AWS Chatbot's topic, read through its own queue.
    chat: String,
}

async fn world() -> World {
    let moto = Moto::start();
    let table = incidents_table(&moto, REGION).await;
    let (topic, all) = topic_with_queue(&moto, REGION).await;
    let pager = subscribed_queue(&moto, REGION, &topic, "pager", Some(json!({"severity": ["P1"]}))).await;
    let sdk = moto.sdk(REGION).await;
    let chat_topic = aws_sdk_sns::Client::new(&sdk).create_topic().name("lifeboat-chat").send().await.unwrap();
    let chat_topic = chat_topic.topic_arn().unwrap().to_owned();
    let chat = subscribed_queue(&moto, REGION, &chat_topic, "chat", None).await;
    let config = config_in_ssm(&moto, CONFIG, CONFIG_TTL).await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name(APPROVAL_KEY_PARAM)
        .value("notifier-test-approval-key-0123456789abcdef")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let deps = Deps::new(config, &sdk, &table, &topic, Some(&chat_topic)).with_approval(
        &sdk,
        "https://approve.example/",
        APPROVAL_KEY_PARAM,
    );
    let store = IncidentStore::new(&sdk, &table);
    World { moto, deps, store, table, all, pager, chat }
}

fn database(name: &str) -> lifeboat_core::config::Database {
    Config::from_yaml(CONFIG).unwrap().database_named(name).unwrap().clone()
}

fn declare(name: &str, at: DateTime<Utc>, seed: &str) -> Incident {
    Incident::declare(&database(name), Kind::Outage, at, "failover-trigger", &format!("alarm {seed}"), seed)
}

fn also_seen(at: DateTime<Utc>, seed: &str) -> Entry {
    Entry::new(at, "failover-trigger", &format!("also seen: alarm {seed}"), &format!("seen:{seed}"))
}

/// The task token the state machine would hand the notifier for incident `id`'s approval.
fn token(id: &str) -> String {
    format!("token-{id}")
}

fn invoke(id: &str, message: &str) -> Value {
    if message == "approval-requested" {
        return json!({"incident_id": id, "message": message, "task_token": token(id), "expires_in_seconds": 1800});
    }
    json!({"incident_id": id, "message": message})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_open_incident_per_database_each_entry_once_and_closing_frees_the_database() {
    let w = world().await;
    let now = Utc::now();
    let first = declare("orders-prod", now, "alarm-1");
    assert!(matches!(w.store.open(&first, &also_seen(now, "alarm-1")).await.unwrap(), Opened::New(_)));
    // The same trigger delivered again: nothing new.
    let again = w.store.open(&first, &also_seen(now, "alarm-1")).await.unwrap();
    assert!(matches!(&again, Opened::AlreadyOpen(i) if i.id == first.id && i.timeline.len() == 1), "{again:?}");
    // A second alarm for the same database: an "also seen" entry on the open incident, twice delivered.
    let second = declare("orders-prod", now + Duration::minutes(2), "alarm-2");
    for _ in 0..2 {
        let seen = w.store.open(&second, &also_seen(now, "alarm-2")).await.unwrap();
        let Opened::AlreadyOpen(open) = seen else { panic!("{seen:?}") };
        assert_eq!(open.id, first.id);
        assert_eq!(open.timeline.len(), 2, "{:?}", open.timeline);
    }
    // Another database is independent.
    let other = declare("reporting-staging", now, "alarm-3");
    assert!(matches!(w.store.open(&other, &also_seen(now, "alarm-3")).await.unwrap(), Opened::New(_)));
    assert_eq!(w.store.list_open().await.unwrap().len(), 2);

    let promoted = Entry::new(now, "failover", "replica promoted", "promote");
    assert!(w.store.record(&first.id, &promoted).await.unwrap());
    assert!(!w.store.record(&first.id, &promoted).await.unwrap(), "recorded once");
    assert!(w.store.record("no-such-incident", &promoted).await.unwrap_err().to_string().contains("no incident"));

    // What the failover steps will report: the execution, and the recovery point.
    let execution = "arn:aws:states:us-east-1:123456789012:execution:failover:x";
    assert!(w.store.set_execution(&first.id, execution).await.unwrap());
    assert!(!w.store.set_execution(&first.id, execution).await.unwrap(), "recorded once");
    w.store.set_recovered_to(&first.id, now - Duration::minutes(2)).await.unwrap();
    assert!(w.store.set_execution("no-such-incident", "arn").await.unwrap_err().to_string().contains("no incident"));
    let i = w.store.transition(&first.id, Status::Recovering, now, "alice", "approved").await.unwrap();
    assert!(i.execution_arn.as_deref().is_some_and(|a| a.ends_with(":x")));
    assert_eq!(i.data_loss().map(|d| d.num_minutes()), Some(2));
    assert_eq!(i.status, Status::Recovering);
    // A replayed step is harmless; a move the status doesn't allow is refused, and changes nothing.
    assert_eq!(w.store.transition(&first.id, Status::Recovering, now, "alice", "approved").await.unwrap(), i);
    let refused = w.store.transition(&first.id, Status::AwaitingApproval, now, "x", "y").await.unwrap_err();
    assert!(!refused.is_retryable() && refused.to_string().contains("recovering"), "{refused}");
    assert!(w.store.close(&first.id, Status::Recovering, now, "x", "y").await.is_err());

    let closed =
        w.store.close(&first.id, Status::Resolved, now + Duration::minutes(20), "failover", "verified").await.unwrap();
    assert_eq!(closed.ended, Some(now + Duration::minutes(20)));
    let stored = w.store.get(&first.id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Resolved);
    assert_eq!(
        stored.timeline.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["declared", "seen:alarm-2", "promote", "status:recovering", "status:resolved"]
    );
    assert_eq!(w.store.list_open().await.unwrap().len(), 1);
    // The database is free for its next incident.
    assert!(matches!(w.store.open(&second, &also_seen(now, "alarm-2")).await.unwrap(), Opened::New(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_is_published_once_and_the_filter_policy_pages_only_p1() {
    let w = world().await;
    let now = Utc::now();
    let p1 = declare("orders-prod", now, "a");
    let p2 = declare("reporting-staging", now, "b");
    for i in [&p1, &p2] {
        w.store.open(i, &also_seen(now, "x")).await.unwrap();
    }
    for _ in 0..2 {
        handle(&w.deps, invoke(&p1.id, "declared"), now).await.unwrap();
        handle(&w.deps, invoke(&p2.id, "declared"), now).await.unwrap();
    }
    let all = notices(&w.moto, REGION, &w.all).await;
    assert_eq!(all.len(), 2, "each once: {all:?}");
    let pager = notices(&w.moto, REGION, &w.pager).await;
    assert_eq!(pager.len(), 1, "{pager:?}");
    let n = &pager[0];
    assert_eq!(n.subject, "[P1] orders-prod: outage incident declared");
    assert!(n.text.contains(&p1.id) && n.text.contains("What you must do"), "{}", n.text);
    for (k, v) in [("severity", "P1"), ("database", r#"["orders-prod"]"#), ("kind", "outage"), ("message", "declared")]
    {
        assert_eq!(n.attributes.get(k).map(String::as_str), Some(v), "{:?}", n.attributes);
    }
    assert_eq!(n.attributes.get("incident_id"), Some(&p1.id));
    let facts: Value = serde_json::from_str(&n.raw).unwrap();
    assert_eq!(facts["incident_id"], p1.id.as_str());
    assert_eq!(facts["severity"], "P1");
    // Chatbot's topic gets its custom-notification shape.
    let chat = notices(&w.moto, REGION, &w.chat).await;
    assert_eq!(chat.len(), 2);
    let card: Value = serde_json::from_str(&chat[0].raw).unwrap();
    assert_eq!(card["version"], "1.0");
    assert_eq!(card["source"], "custom");
    assert!(card["content"]["title"].as_str().unwrap().contains("incident declared"));

    // The same message for a new state is a new message.
    w.store.transition(&p1.id, Status::AwaitingApproval, now, "failover", "approval requested").await.unwrap();
    handle(&w.deps, invoke(&p1.id, "approval-requested"), now).await.unwrap();
    handle(&w.deps, invoke(&p1.id, "approval-requested"), now).await.unwrap();
    let got = notices(&w.moto, REGION, &w.pager).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].subject.contains("approval"), "{}", got[0].subject);
    assert!(got[0].text.lines().any(|l| l.starts_with("Approve: https://approve.example/?i=")), "{}", got[0].text);
    assert!(got[0].text.lines().any(|l| l.starts_with("Reject: https://approve.example/?i=")), "{}", got[0].text);
    // What reaches people never carries the task token: with it, anyone holding
    // states:SendTaskSuccess would approve production under any name, past the typed check.
    assert!(got[0].raw.contains("approve_url") && !got[0].raw.contains(&token(&p1.id)), "{}", got[0].raw);
    let card = notices(&w.moto, REGION, &w.chat).await;
    assert!(!card.is_empty() && card.iter().all(|c| !c.raw.contains(&token(&p1.id))), "the chat card neither");
    let stored = w.store.get(&p1.id).await.unwrap().unwrap();
    assert_eq!(stored.approval_task, Some(token(&p1.id)), "the handler answers the task the incident waits on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolved_carries_duration_data_loss_and_the_timeline() {
    let w = world().await;
    let start = Utc::now() - Duration::minutes(40);
    let i = declare("orders-prod", start, "a");
    w.store.open(&i, &also_seen(start, "x")).await.unwrap();
    w.store.transition(&i.id, Status::Recovering, start + Duration::minutes(3), "alice", "approved").await.unwrap();
    w.store.close(&i.id, Status::Resolved, start + Duration::minutes(25), "failover", "verified").await.unwrap();
    handle(&w.deps, invoke(&i.id, "resolved"), Utc::now()).await.unwrap();
    let got = notices(&w.moto, REGION, &w.all).await;
    assert_eq!(got.len(), 1);
    let text = &got[0].text;
    assert!(text.contains("Duration: 25m (RTO 30m: met)"), "{text}");
    assert!(text.contains("Data loss: not measured"), "{text}");
    assert!(text.contains("| Time (UTC) | By | What | Details |") && text.contains("| alice | approved |"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_non_retryable_and_publishes_and_writes_nothing() {
    let w = world().await;
    let now = Utc::now();
    let i = declare("orders-prod", now, "a");
    w.store.open(&i, &also_seen(now, "x")).await.unwrap();
    let before = table_items(&w.moto, REGION, &w.table).await;
    for (payload, says) in [
        (invoke(&i.id, "resolve"), "approval-requested"),
        (invoke("orders-prod-20990101T0000Z-0000", "declared"), "no incident"),
        // Resolved for an incident still open would tell people something false.
        (invoke(&i.id, "resolved"), "misstate"),
        (json!({"incident_id": i.id}), "message"),
        (event("malformed-snapshot-event.json", None), "malformed"),
        (json!([1, 2]), "expected"),
    ] {
        let err = handle(&w.deps, payload.clone(), now).await.unwrap_err();
        assert!(!err.is_retryable(), "{payload}: {err}");
        assert!(err.to_string().contains(says), "{payload}: {err}");
    }
    assert!(notices(&w.moto, REGION, &w.all).await.is_empty());
    assert_eq!(table_items(&w.moto, REGION, &w.table).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_events_notify_once_per_update_and_once_resolved_and_ignore_the_rest() {
    let w = world().await;
    let now = Utc::now();
    let open = event("health-rds-issue-open.json", None);
    for _ in 0..2 {
        handle(&w.deps, open.clone(), now).await.unwrap();
    }
    let got = notices(&w.moto, REGION, &w.all).await;
    assert_eq!(got.len(), 1, "once per event and update: {got:?}");
    // Delivered in us-west-2, about us-east-1: the affected region is eventRegion.
    assert_eq!(open["region"], "us-west-2");
    assert!(got[0].subject.contains("possible impact") && got[0].subject.contains("orders-prod"), "{}", got[0].subject);
    assert!(!got[0].text.contains("reporting-staging"), "only the entity Health names: {}", got[0].text);

    handle(&w.deps, event("health-rds-issue-updated.json", None), now).await.unwrap();
    assert_eq!(notices(&w.moto, REGION, &w.all).await.len(), 1, "a new lastUpdatedTime is a new notice");
    for _ in 0..2 {
        handle(&w.deps, event("health-rds-issue-closed.json", None), now).await.unwrap();
    }
    let closed = notices(&w.moto, REGION, &w.all).await;
    assert_eq!(closed.len(), 1);
    assert!(closed[0].subject.contains("AWS Health reports resolved"), "{}", closed[0].subject);

    let before = table_items(&w.moto, REGION, &w.table).await;
    let mut ec2 = event("health-rds-issue-open.json", None);
    ec2["detail"]["service"] = "EC2".into();
    for e in [event("health-rds-issue-other-region.json", None), ec2] {
        let report = handle(&w.deps, e, now).await.unwrap();
        assert!(report.ignored.is_some() && report.published.is_empty(), "{report:?}");
    }
    assert!(notices(&w.moto, REGION, &w.all).await.is_empty());
    assert_eq!(table_items(&w.moto, REGION, &w.table).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_open_incident_gets_one_progress_update_per_fifteen_minutes() {
    let w = world().await;
    let now = Utc::now();
    let quiet = declare("orders-prod", now - Duration::minutes(16), "a");
    let busy = declare("reporting-staging", now - Duration::minutes(5), "b");
    for i in [&quiet, &busy] {
        w.store.open(i, &also_seen(now, "x")).await.unwrap();
    }
    let mut tick = event("notifier-progress-schedule.json", None);
    tick["time"] = json!(now);
    let first = handle(&w.deps, tick.clone(), now).await.unwrap();
    assert_eq!(first.published.len(), 1, "{first:?}");
    let got = notices(&w.moto, REGION, &w.all).await;
    assert_eq!(got.len(), 1);
    assert!(got[0].subject.contains("orders-prod") && got[0].subject.contains("update"), "{}", got[0].subject);
    assert!(got[0].text.contains("Since the last update:") && got[0].text.contains("alarm a"), "{}", got[0].text);
    // Right after, and as a redelivery: nothing.
    let second = handle(&w.deps, tick, now + Duration::minutes(1)).await.unwrap();
    assert!(second.published.is_empty(), "{second:?}");
    assert!(notices(&w.moto, REGION, &w.all).await.is_empty());
    let stored = w.store.get(&quiet.id).await.unwrap().unwrap();
    let last = stored.timeline.last().unwrap();
    assert!(last.what.starts_with("people told: [P1] orders-prod: update") && last.by == "notifier", "{last:?}");
    // News on the timeline doesn't reset the clock: people heard nothing for 15 minutes.
    w.store
        .record(&quiet.id, &Entry::new(now + Duration::minutes(10), "failover", "replica promoted", "promote"))
        .await
        .unwrap();
    // Fifteen quiet minutes later: the next one says what changed.
    let mut later = event("notifier-progress-schedule.json", None);
    let at = now + Duration::minutes(16);
    later["time"] = json!(at);
    handle(&w.deps, later, at).await.unwrap();
    let got = notices(&w.moto, REGION, &w.all).await;
    assert_eq!(got.len(), 2, "both incidents are quiet now: {got:?}");
    assert!(got.iter().any(|n| n.subject.contains("orders-prod") && n.text.contains("replica promoted")), "{got:?}");
    assert!(got.iter().any(|n| n.subject.contains("reporting-staging") && n.text.contains("alarm b")), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_abandoned_mid_publish_is_taken_over_and_a_fresh_one_is_left_alone() {
    use lifeboat_core::aws::incidents::Claim;
    let w = world().await;
    let now = Utc::now();
    let i = declare("orders-prod", now - Duration::minutes(5), "a");
    w.store.open(&i, &also_seen(now, "x")).await.unwrap();
    // An invocation claimed "declared" three minutes ago and died before publishing.
    let abandoned =
        w.store.claim(Some((&i.id, Status::Declared)), "declared", now - Duration::minutes(3)).await.unwrap();
    assert_eq!(abandoned, Claim::Claimed);
    let report = handle(&w.deps, invoke(&i.id, "declared"), now).await.unwrap();
    assert_eq!(report.published.len(), 1, "better twice than never: {report:?}");
    assert_eq!(notices(&w.moto, REGION, &w.all).await.len(), 1);
    // Another is publishing "approval-requested" right now: this one leaves it to that one, and
    // fails Retryable (that one may die), so a retry comes back and finds it sent.
    w.store.transition(&i.id, Status::AwaitingApproval, now, "failover", "approval requested").await.unwrap();
    let key = format!("approval-requested@{}", lifeboat_core::approval::task_ref(&token(&i.id)));
    assert_eq!(w.store.claim(Some((&i.id, Status::AwaitingApproval)), &key, now).await.unwrap(), Claim::Claimed);
    let held = handle(&w.deps, invoke(&i.id, "approval-requested"), now).await.unwrap_err();
    assert!(held.is_retryable() && held.to_string().contains("another invocation"), "{held}");
    assert!(notices(&w.moto, REGION, &w.all).await.is_empty(), "this one sent nothing");
    w.store.mark_sent(Some(&i.id), &key).await.unwrap();
    let report = handle(&w.deps, invoke(&i.id, "approval-requested"), now).await.unwrap();
    assert!(report.published.is_empty() && report.already_published.len() == 1, "{report:?}");
    assert!(notices(&w.moto, REGION, &w.all).await.is_empty(), "the retry sent nothing either");
    // A claim made while the incident was in another state is refused: the message would be stale.
    let stale = w.store.claim(Some((&i.id, Status::Declared)), "progress@0", now).await.unwrap_err();
    assert!(stale.is_retryable(), "{stale}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_filter_policy_gets_that_databases_messages_only() {
    let w = world().await;
    let sdk = w.moto.sdk(REGION).await;
    let topic = aws_sdk_sns::Client::new(&sdk).list_topics().send().await.unwrap();
    let topic = topic
        .topics()
        .iter()
        .find_map(|t| t.topic_arn().filter(|a| a.ends_with(":lifeboat-incidents")))
        .unwrap()
        .to_owned();
    let orders =
        subscribed_queue(&w.moto, REGION, &topic, "orders-team", Some(json!({"database": ["orders-prod"]}))).await;
    let now = Utc::now();
    for (name, seed) in [("orders-prod", "a"), ("reporting-staging", "b")] {
        let i = declare(name, now, seed);
        w.store.open(&i, &also_seen(now, seed)).await.unwrap();
        handle(&w.deps, invoke(&i.id, "declared"), now).await.unwrap();
    }
    handle(&w.deps, event("health-rds-issue-open.json", None), now).await.unwrap();
    let got = notices(&w.moto, REGION, &orders).await;
    let subjects: Vec<&str> = got.iter().map(|n| n.subject.as_str()).collect();
    assert_eq!(got.len(), 2, "{subjects:?}");
    assert!(subjects.iter().all(|s| s.contains("orders-prod")), "{subjects:?}");
}
