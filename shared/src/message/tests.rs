use chrono::TimeZone;

use super::*;
use crate::config::Config;
use crate::incident::{Entry, Kind};
use crate::prune::Item;

fn config() -> Config {
    Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap()
}

fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 0).unwrap() + chrono::Duration::minutes(min)
}

/// Everything a message carries, as one reviewable text.
fn shown(m: &Message) -> String {
    format!(
        "SUBJECT: {}\n\nBODY:\n{}\nATTRIBUTES: {:?}\n\nFACTS:\n{}\n\nCHAT:\n{}\n",
        m.subject,
        m.body,
        m.attributes,
        serde_json::to_string_pretty(&m.facts).unwrap(),
        serde_json::to_string_pretty(&m.chat).unwrap()
    )
}

/// orders-prod (production, RPO 5m, RTO 30m) through a whole regional failover.
fn story() -> Vec<(MessageKind, Incident)> {
    let c = config();
    let db = c.database_named("orders-prod").unwrap();
    let mut i = Incident::declare(
        db,
        Kind::Region,
        at(0),
        "failover-trigger",
        "CloudWatch alarm orders-prod-db-down is ALARM",
        "alarm-1",
    );
    let mut out = vec![(MessageKind::Declared, i.clone())];
    let e =
        i.transition(Status::AwaitingApproval, at(1), "failover", "approval requested from the on-call DBA").unwrap();
    i.apply(e, Some(Status::AwaitingApproval));
    out.push((MessageKind::ApprovalRequested, i.clone()));
    let e = i.transition(Status::Recovering, at(6), "alice@example.com", "approved | promote replica").unwrap();
    i.apply(e, Some(Status::Recovering));
    i.apply(
        Entry::new(at(9), "failover", "replica promoted", "promote")
            .with_details("arn:aws:rds:us-west-2:123456789012:db:orders-replica"),
        None,
    );
    out.push((MessageKind::Progress, i.clone()));
    i.apply(Incident::told("progress@0", "[P1] orders-prod: update, recovering", at(21)), None);
    out.push((MessageKind::Progress, i.clone()));
    i.apply(Entry::new(at(24), "failover", "DNS db.orders.internal moved", "dns"), None);
    i.recovered_to = Some(at(-2));
    let e = i.transition(Status::Resolved, at(27), "failover", "verified: writes succeed").unwrap();
    i.apply(e, Some(Status::Resolved));
    out.push((MessageKind::Resolved, i));
    out
}

#[test]
fn every_incident_message_reads_as_reviewed() {
    let c = config();
    let db = c.database_named("orders-prod");
    for (n, (kind, i)) in story().into_iter().enumerate() {
        assert!(kind.fits(i.status), "{kind} for {}", i.status);
        let m = incident(kind, &i, db, at(30));
        assert!(
            m.subject.len() < 100 && m.subject.contains("P1") && m.subject.contains("orders-prod"),
            "{}",
            m.subject
        );
        assert!(m.body.contains(&i.id), "the incident id is in every body");
        insta::assert_snapshot!(format!("{n}-{kind}"), shown(&m));
    }
}

#[test]
fn resolved_measures_data_loss_and_recovery_time_against_rpo_and_rto() {
    let (_, mut i) = story().pop().unwrap();
    let c = config();
    let db = c.database_named("orders-prod");
    let m = incident(MessageKind::Resolved, &i, db, at(30));
    assert!(m.body.contains("Duration: 27m (RTO 30m: met)"), "{}", m.body);
    assert!(m.body.contains("Data loss: up to 2m") && m.body.contains("RPO 5m: met"), "{}", m.body);
    assert!(m.body.contains("| approved \\| promote replica |"), "pipes are escaped in the table: {}", m.body);
    assert_eq!(m.facts["rpo_met"], true);
    i.recovered_to = Some(at(-10));
    let m = incident(MessageKind::Resolved, &i, db, at(30));
    assert!(m.body.contains("RPO 5m: MISSED"), "{}", m.body);
    assert_eq!(m.facts["rpo_met"], false);
    i.recovered_to = None;
    assert!(incident(MessageKind::Resolved, &i, db, at(30)).body.contains("Data loss: not measured"));
}

/// The story's failover with Route 53's control plane down: DNS left for people at 27m, moved
/// by them and confirmed by a later verify at 41m.
#[test]
fn dns_left_for_people_is_recovered_dns_pending_and_the_rto_runs_to_its_confirmation() {
    let c = config();
    let db = c.database_named("orders-prod");
    let (_, done) = story().pop().unwrap();
    let mut i = done.clone();
    i.timeline.retain(|e| e.key != "status:resolved" && e.key != "dns");
    (i.status, i.ended) = (Status::Recovering, None);
    i.apply(
        Entry::new(
            at(26),
            "failover",
            "DNS db.orders.internal still names the old primary: the DNS step failed",
            "left:dns",
        )
        .with_details("aws route53 change-resource-record-sets --hosted-zone-id Z1 --change-batch '...'"),
        None,
    );
    let e = i.transition(Status::DnsPending, at(27), "failover", "recovered, DNS pending").unwrap();
    i.apply(e, Some(Status::DnsPending));
    let kind = MessageKind::Resolved.as_of(i.status);
    assert!(kind.fits(i.status));
    let m = incident(kind, &i, db, at(28));
    assert!(m.subject.contains("recovered, DNS pending"), "{}", m.subject);
    for never in ["RTO 30m: met", "back and verified.", "was affected from"] {
        assert!(!m.body.contains(never), "says more than was verified ({never}): {}", m.body);
    }
    assert!(m.body.contains("Impact: not over") && m.body.contains("RTO 30m: not met yet"), "{}", m.body);
    assert!(
        m.body.contains("Left for people: DNS db.orders.internal") && m.body.contains("Move DNS now"),
        "{}",
        m.body
    );
    assert_eq!((m.facts["dns_pending"].clone(), m.facts["rto_met"].clone()), (json!(true), Value::Null));
    insta::assert_snapshot!("dns-pending", shown(&m));
    // Still pending past the RTO: that much is known, and said.
    let late = incident(kind, &i, db, at(35));
    assert!(late.body.contains("RTO 30m: MISSED") && late.facts["rto_met"] == false, "{}", late.body);
    // Progress updates keep saying it.
    let p = incident(MessageKind::Progress, &i, db, at(45));
    assert!(p.subject.contains("update, recovered, DNS pending") && p.body.contains("Move DNS now"), "{}", p.body);

    i.apply(
        Entry::new(at(41), "failover", "DNS db.orders.internal names x: confirmed by a later verify", "confirmed:dns"),
        None,
    );
    let e =
        i.transition(Status::Resolved, at(41), "failover", "resolved: x, DNS db.orders.internal confirmed").unwrap();
    i.apply(e, Some(Status::Resolved));
    let m = incident(MessageKind::Resolved.as_of(i.status), &i, db, at(42));
    assert!(m.body.contains("Duration: 41m (RTO 30m: MISSED)"), "measured to the confirmation: {}", m.body);
    assert!(m.body.contains("Left for people, since done: DNS db.orders.internal names x"), "{}", m.body);
    assert!(!m.body.contains("Finish what Lifeboat could not"), "{}", m.body);
    assert_eq!((m.facts["dns_pending"].clone(), m.facts["rto_met"].clone()), (json!(false), json!(false)));
}

#[test]
fn aborted_and_failed_say_what_the_reader_must_do() {
    let c = config();
    let db = c.database_named("catalog-aurora").unwrap();
    for (to, kind, says) in [
        (Status::Failed, MessageKind::Failed, "Take over by hand"),
        (Status::Aborted, MessageKind::Aborted, "Lifeboat will not retry by itself"),
    ] {
        let mut i = Incident::declare(db, Kind::Outage, at(0), "operator", "manual request", "m");
        let e = i.transition(to, at(3), "failover", "promote step returned InvalidDBClusterStateFault").unwrap();
        i.apply(e, Some(to));
        let m = incident(kind, &i, Some(db), at(4));
        assert!(m.body.contains(says), "{}", m.body);
        assert!(m.body.contains("Why: promote step returned InvalidDBClusterStateFault"), "{}", m.body);
        assert!(m.body.contains("may still be unavailable") && !m.body.contains("RTO 1h: met"), "{}", m.body);
        assert!(m.subject.starts_with("[P1] catalog-aurora: recovery"), "{}", m.subject);
        insta::assert_snapshot!(format!("{kind}"), shown(&m));
    }
}

#[test]
fn messages_that_would_misstate_the_incident_do_not_fit_it() {
    assert!(!MessageKind::Resolved.fits(Status::Recovering));
    assert!(!MessageKind::Progress.fits(Status::Resolved));
    assert!(!MessageKind::Declared.fits(Status::Resolved));
    assert!(MessageKind::ApprovalRequested.fits(Status::AwaitingApproval));
    assert!("resolve".parse::<MessageKind>().unwrap_err().to_string().contains("approval-requested"));
}

#[test]
fn long_subjects_are_cut_under_the_sns_limit() {
    let c = config();
    let mut db = c.database_named("orders-prod").unwrap().clone();
    db.name = "a-database-whose-name-is-much-longer-than-anyone-should-ever-choose-for-a-production-system".into();
    let i = Incident::declare(&db, Kind::Outage, at(0), "t", "w", "s");
    let m = incident(MessageKind::Declared, &i, Some(&db), at(1));
    assert!(m.subject.len() <= MAX_SUBJECT && m.subject.ends_with("..."), "{}", m.subject);
}

fn health(file: &str) -> HealthEvent {
    let path = format!("{}/../events/{file}", env!("CARGO_MANIFEST_DIR"));
    HealthEvent::parse(&serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()).unwrap().unwrap()
}

#[test]
fn health_notices_name_the_affected_protected_databases() {
    let c = config();
    for file in ["health-rds-issue-open.json", "health-rds-issue-closed.json"] {
        let h = health(file);
        let affected = h.affected(&c).unwrap();
        let m = health_notice(&h, &affected);
        assert!(m.subject.contains("orders-prod") && m.subject.len() < 100, "{}", m.subject);
        insta::assert_snapshot!(file.trim_end_matches(".json"), shown(&m));
    }
}

#[test]
fn the_pruner_summary_names_failures_and_caps_long_lists() {
    let item = |n: usize| Item { id: format!("s-{n}"), why: "outside policy".into() };
    let group = GroupReport {
        database: "orders".into(),
        region: "us-west-2".into(),
        scope: Scope::Copies,
        dry_run: false,
        kept: vec![item(0)],
        deleted: (1..=25).map(item).collect(),
        would_delete: Vec::new(),
        skipped: Vec::new(),
        failed: vec![Item { id: "s-99".into(), why: "Throttling".into() }],
        to_delete: Vec::new(),
    };
    let summary = Summary {
        as_of: "2026-11-24T04:00:00Z".parse().unwrap(),
        dry_run: false,
        groups: vec![group],
        api_calls: 27,
        part: 1,
        left: 0,
    };
    assert!(summary.worth_telling());
    let m = pruner_summary(&summary, Some("/aws/lambda/lifeboat-pruner"));
    assert_eq!(m.subject, "[P2] Lifeboat pruner: 25 deleted, 1 FAILED (orders)");
    assert!(m.body.contains("FAILED to delete s-99: Throttling"), "{}", m.body);
    assert!(m.body.contains("deleted s-20 (outside policy)") && !m.body.contains("deleted s-21 "), "{}", m.body);
    assert!(m.body.contains("... and 5 more"), "{}", m.body);
    assert!(m.body.contains("the pruner's log (/aws/lambda/lifeboat-pruner)"), "{}", m.body);
    assert!(!m.body.contains("with the most failures"), "one database reads in full: {}", m.body);
    assert_eq!(m.attributes["severity"], Attribute::Text("P2".into()));
    assert_eq!(m.attributes["database"], Attribute::List(vec!["orders".into()]));
    insta::assert_snapshot!("pruner-summary", shown(&m));
}

fn fleet_summary(n: usize) -> Summary {
    let item =
        |d: usize, k: usize| Item { id: format!("lifeboat-fleet-{d:05}-snap-{k}"), why: "outside policy".into() };
    let groups = (0..n)
        .map(|d| GroupReport {
            database: format!("fleet-{d:05}"),
            region: if d % 2 == 0 { "us-west-2" } else { "us-east-1" }.into(),
            scope: if d % 2 == 0 { Scope::Copies } else { Scope::Source },
            dry_run: false,
            kept: (0..3).map(|k| item(d, k)).collect(),
            deleted: (3..5).map(|k| item(d, k)).collect(),
            would_delete: Vec::new(),
            skipped: Vec::new(),
            // Every hundredth fails, with a long AWS error, the worst of them most often.
            failed: (0..if d % 100 == 7 { 1 + d / 100 } else { 0 })
                .map(|k| Item { id: format!("lifeboat-fleet-{d:05}-old-{k}"), why: "Throttling: ".repeat(40) })
                .collect(),
            to_delete: Vec::new(),
        })
        .collect();
    Summary {
        as_of: "2026-11-24T04:00:00Z".parse().unwrap(),
        dry_run: false,
        groups,
        api_calls: 2 * n,
        part: 1,
        left: 0,
    }
}

#[test]
fn a_fleets_pruner_summary_gives_counts_the_worst_ten_and_where_the_rest_is() {
    let s = fleet_summary(10_000);
    let m = pruner_summary(&s, Some("/aws/lambda/lifeboat-pruner"));
    let size = m.sns_structured().len() + m.attribute_bytes();
    assert!(size <= SNS_MAX, "{size} bytes");
    assert_eq!(m.subject, "[P2] Lifeboat pruner: 20000 deleted, 5050 FAILED (10000 databases)");
    assert!(m.body.contains("10000 databases in 2 regions: 20000 deleted, 5050 failed."), "{}", m.body);
    assert!(m.body.contains("  us-west-2 (DR copies): 5000 databases, kept 15000, deleted 10000\n"), "{}", m.body);
    assert!(
        m.body.contains("  us-east-1 (source): 5000 databases, kept 15000, deleted 10000, FAILED 5050\n"),
        "{}",
        m.body
    );
    // The ten with most failures, in the run's order: fleet-09907 (100 failures) down to fleet-09007.
    let shown: Vec<&str> = m.body.lines().filter(|l| l.starts_with("fleet-")).collect();
    assert_eq!(shown.len(), 10, "{}", m.body);
    assert!(shown[0].starts_with("fleet-09007 in us-east-1") && shown[9].starts_with("fleet-09907 "), "{shown:?}");
    assert!(m.body.contains("  ... and 80 more failures (see the run's log)"), "{}", m.body);
    assert!(m.body.contains("... and 9990 more databases and regions, in the counts above."), "{}", m.body);
    assert!(m.body.contains("its `pruner list` lines as of 2026-11-24T04:00:00+00:00"), "{}", m.body);
    assert!(!m.body.contains("[Cut here"), "summarised, not cut: {} bytes", m.body.len());
    let Attribute::List(named) = &m.attributes["database"] else { panic!("a list") };
    assert_eq!(named.len(), 100);
    assert_eq!(named[0], "fleet-09907", "the most failures first");
}

#[test]
fn any_message_over_snss_limit_is_cut_on_a_char_boundary_saying_where_the_rest_is() {
    let mut m = pruner_summary(&fleet_summary(3), None);
    // 10,000 lines of three-byte characters: past the limit whatever the summary did.
    m.body = (0..10_000).map(|n| format!("línea {n} ✓ {}\n", "€".repeat(20))).collect();
    let s = m.sns_structured();
    assert!(s.len() + m.attribute_bytes() <= SNS_MAX, "{} bytes", s.len());
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let text = v["default"].as_str().unwrap();
    let end: String = text.chars().skip(text.chars().count() - 200).collect();
    assert!(text.starts_with("línea 0 ✓ €€€"), "{end}");
    assert!(text.contains("[Cut here: this message was ") && text.contains("over SNS's 256 KB"), "{end}");
    assert!(text.contains("The rest is in the pruner's log, its `pruner list` lines"), "{end}");
    let facts: serde_json::Value = serde_json::from_str(v["sqs"].as_str().unwrap()).unwrap();
    assert_eq!((facts["cut"].clone(), facts["text"].as_str()), (json!(true), Some(text)));
    assert_eq!(facts["deleted"], 6, "plain facts stay");
    // Small messages are not touched.
    let small = pruner_summary(&fleet_summary(3), None);
    let v: serde_json::Value = serde_json::from_str(&small.sns_structured()).unwrap();
    assert_eq!(v["default"].as_str(), Some(small.body.as_str()));
    assert_eq!(serde_json::from_str::<serde_json::Value>(v["sqs"].as_str().unwrap()).unwrap(), small.facts);
}

#[test]
fn structured_sns_messages_give_people_text_and_machines_facts() {
    let (kind, i) = story().remove(0);
    let m = incident(kind, &i, None, at(1));
    let s: serde_json::Value = serde_json::from_str(&m.sns_structured()).unwrap();
    assert_eq!(s["default"], m.body);
    let facts: serde_json::Value = serde_json::from_str(s["sqs"].as_str().unwrap()).unwrap();
    assert_eq!(facts["incident_id"], i.id);
    assert_eq!(facts["text"], m.body);
}

#[test]
fn durations_read_as_people_write_them() {
    let m = chrono::Duration::minutes;
    assert_eq!(human(chrono::Duration::seconds(40)), "40s");
    assert_eq!(human(m(27)), "27m");
    assert_eq!(human(m(24 * 60)), "24h");
    assert_eq!(human(m(65)), "1h 05m");
}

#[test]
fn a_long_incident_stays_far_inside_the_sns_size_limit() {
    let (_, mut i) = story().pop().unwrap();
    for n in 0..2_000 {
        i.apply(
            Entry::new(
                at(30),
                "failover-trigger",
                &format!("also seen: alarm flapping {n} {}", "x".repeat(80)),
                &format!("seen:{n}"),
            ),
            None,
        );
    }
    let m = incident(MessageKind::Resolved, &i, None, at(40));
    let size = m.sns_structured().len();
    assert!(size < 100 * 1024, "{size} bytes");
    assert!(m.body.contains("earlier entries are in the incident's item"), "{}", m.body);
}

#[test]
fn rpo_breach_and_recovery_say_how_much_a_recovery_would_lose() {
    let mut a = crate::rpo::Assessment {
        database: "orders-prod".into(),
        region: "us-west-2".into(),
        tier: "production",
        rpo_seconds: 300,
        copy_age_seconds: Some(7200),
        replica_lag_seconds: Some(900),
        recovery_point_age_seconds: Some(900),
        breached: true,
        stuck_copies: vec!["us-west-2:lifeboat-orders-1-0a1b2c3d".into()],
    };
    let m = rpo_change(&a);
    assert_eq!(m.subject, "[P2] orders-prod in us-west-2: RPO BREACHED");
    assert!(m.body.contains("would lose: up to 15m") && m.body.contains("Stuck copy"), "{}", m.body);
    insta::assert_snapshot!("rpo-breached", shown(&m));
    a.breached = false;
    a.recovery_point_age_seconds = Some(40);
    a.stuck_copies.clear();
    let m = rpo_change(&a);
    assert_eq!(m.subject, "[P3] orders-prod in us-west-2: RPO met again");
    insta::assert_snapshot!("rpo-met", shown(&m));
}

#[test]
fn the_approval_request_says_what_will_happen_and_carries_both_links_on_their_own_lines() {
    let c = config();
    let (_, mut i) = story().into_iter().nth(1).unwrap();
    i.apply(
        Entry::new(at(1), "failover-steps", "promote replica orders-replica to a standalone primary", "step:preflight")
            .with_details("Expected data loss: 4s (replica lag 4s (CloudWatch ReplicaLag)); RPO 5m: within"),
        None,
    );
    let links = ApprovalLinks {
        approve: "https://x.lambda-url.us-east-1.on.aws/?i=a&d=approve&s=sig".into(),
        reject: "https://x.lambda-url.us-east-1.on.aws/?i=a&d=reject&s=sig".into(),
        expires: at(31),
    };
    let m = approval_request(&i, c.database_named("orders-prod"), &links, at(1));
    let lines: Vec<&str> = m.body.lines().collect();
    assert!(lines.contains(&format!("Approve: {}", links.approve).as_str()), "{}", m.body);
    assert!(lines.contains(&format!("Reject: {}", links.reject).as_str()), "{}", m.body);
    // The task token itself is nowhere a reader could copy it from.
    let everything = format!("{} {} {}", m.body, m.facts, m.chat);
    assert!(!everything.contains("task-token") && !everything.contains("send-task-success"), "{everything}");
    assert!(m.body.contains("Expected data loss: 4s"));
    insta::assert_snapshot!("approval-request", shown(&m));
}

#[test]
fn drill_results_say_how_fast_what_was_checked_and_what_was_deleted() {
    use crate::drill::{Check, DrillResult};
    let passed = DrillResult {
        drill_id: "drill-orders-prod-20261125T1942Z".into(),
        database: "orders-prod".into(),
        region: "us-west-2".into(),
        snapshot: Some("arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-orders-prod-1".into()),
        started: at(0),
        ended: at(14),
        measured_rto_seconds: Some(9 * 60 + 5),
        rto_seconds: 1800,
        passed: true,
        checks: vec![
            Check { name: "status".into(), passed: true, detail: "available".into() },
            Check { name: "engine version".into(), passed: true, detail: "restored 15.4 from a copy of 15.4".into() },
        ],
        failure: None,
        cleaned_up: vec!["lf-drill-orders-prod-20261125t1942z".into()],
        data: None,
    };
    let m = drill_result(&passed);
    assert_eq!(m.subject, "[P3] orders-prod: restore drill passed: available in 9m (RTO 30m)");
    insta::assert_snapshot!("drill-passed", shown(&m));
    let failed = DrillResult {
        passed: false,
        measured_rto_seconds: None,
        checks: vec![],
        failure: Some("ValidationFailed: SELECT count(*) FROM invoices: 0 rows".into()),
        ..passed
    };
    let m = drill_result(&failed);
    assert!(m.subject.starts_with("[P2] orders-prod: restore drill FAILED"), "{}", m.subject);
    assert!(m.body.contains("0 rows") && m.body.contains("Cleaned up: lf-drill-"), "{}", m.body);
}

fn blocked(check: &'static str, reason: &str) -> Vec<crate::readiness::Check> {
    use crate::readiness::{Check, Level};
    vec![
        Check { check: "target", level: Level::Ok, reason: "orders-replica is available".into() },
        Check { check, level: Level::Blocked, reason: reason.into() },
    ]
}

fn change(database: &str, checks: Vec<crate::readiness::Check>) -> crate::readiness::Change {
    crate::readiness::Change { database: database.into(), checks, since: at(-30) }
}

#[test]
fn a_runs_readiness_changes_are_one_notice_grouped_by_what_blocks_them() {
    let subnet = "subnet group dr-db not found in us-west-2: create it or set drill.restore.subnet_group";
    // One database: today's notice, word for word.
    let one = [change("orders-prod", blocked("restore-subnet-group", subnet))];
    assert_eq!(readiness_changes("us-east-1", &one), readiness_change("orders-prod", "us-east-1", &one[0].checks));

    let mut changes: Vec<_> =
        (1..=31).map(|i| change(&format!("db-{i:02}"), blocked("restore-subnet-group", subnet))).collect();
    changes.push(change("ledger", blocked("global-cluster", "ledger-west is in no global cluster")));
    changes.push(change("billing", vec![]));
    changes.push(change("audit", vec![]));
    let m = readiness_changes("us-east-1", &changes);
    assert_eq!(m.subject, "[P2] 32 databases NOT ready to fail over, 2 databases ready again");
    assert!(
        m.body
            .contains(&format!("\n31 databases stopped being ready: restore-subnet-group: {subnet}\n  db-01, db-02,")),
        "{}",
        m.body
    );
    assert!(m.body.contains("db-10, and 21 more\n"), "ten names, then a count: {}", m.body);
    assert!(m
        .body
        .contains("1 database stopped being ready: global-cluster: ledger-west is in no global cluster\n  ledger\n"));
    assert!(m.body.contains("Ready to fail over again (2): billing, audit\n"), "{}", m.body);
    insta::assert_snapshot!("readiness-changes", shown(&m));

    let quota = "96 of 100 manual instance snapshots used in us-west-2: 4 left for copies and restores";
    let full: Vec<_> = (1..=31).map(|i| change(&format!("db-{i:02}"), blocked("snapshot-quota", quota))).collect();
    let m = readiness_changes("us-east-1", &full);
    assert_eq!(m.subject, "[P2] 31 databases NOT ready to fail over: snapshot-quota");
    let again: Vec<_> = (1..=3).map(|i| change(&format!("db-{i}"), vec![])).collect();
    let m = readiness_changes("us-east-1", &again);
    assert_eq!(
        (m.subject.as_str(), m.facts["message"].as_str()),
        ("[P3] 3 databases ready to fail over again", Some("ready"))
    );
}

#[test]
fn a_fleets_notices_stay_within_snss_limits_however_many_change() {
    // 5,000 databases, each blocked for its own long reason with a long name: the worst case.
    let changes: Vec<_> = (0..5_000)
        .map(|i| {
            let name = format!("{}-{i}", "a-very-long-database-name".repeat(2));
            change(&name, blocked("readable", &format!("{i}: {}", "AWS said something long. ".repeat(100))))
        })
        .collect();
    let m = readiness_changes("us-east-1", &changes);
    assert!(m.subject.len() <= MAX_SUBJECT, "{}", m.subject);
    assert!(m.body.len() < 16 * 1024, "the text is bounded: {} bytes", m.body.len());
    assert!(m.body.contains("... and 4990 databases for 4990 other reasons."), "{}", m.body);
    assert!(m.sns_structured().len() + m.attribute_bytes() < 64 * 1024, "far inside 256 KB");

    let assessments: Vec<crate::rpo::Assessment> = (0..5_000)
        .map(|i| crate::rpo::Assessment {
            database: format!("db-{i}"),
            region: format!("region-{}", i % 40),
            tier: "production",
            rpo_seconds: 300,
            copy_age_seconds: None,
            replica_lag_seconds: None,
            recovery_point_age_seconds: Some(7200),
            breached: true,
            stuck_copies: vec![],
        })
        .collect();
    let m = rpo_changes(&assessments.iter().collect::<Vec<_>>());
    assert_eq!(m.subject, "[P2] RPO BREACHED: 5000 databases in 40 regions");
    assert!(m.body.len() < 16 * 1024 && m.body.contains("... and 3750 databases in 30 more regions."), "{}", m.body);
    assert!(m.sns_structured().len() + m.attribute_bytes() < 64 * 1024);
}

#[test]
fn a_runs_rpo_crossings_are_one_notice_by_region_and_way() {
    let a = |db: &str, region: &str, breached: bool, age: Option<i64>| crate::rpo::Assessment {
        database: db.into(),
        region: region.into(),
        tier: "production",
        rpo_seconds: 300,
        copy_age_seconds: age,
        replica_lag_seconds: None,
        recovery_point_age_seconds: age,
        breached,
        stuck_copies: vec![],
    };
    let one = a("orders-prod", "us-west-2", true, Some(7200));
    assert_eq!(rpo_changes(&[&one]), rpo_change(&one), "one crossing: today's notice");
    let all = [
        one,
        a("billing", "us-west-2", true, None),
        a("ledger", "eu-west-1", true, Some(900)),
        a("audit", "us-west-2", false, Some(60)),
    ];
    let m = rpo_changes(&all.iter().collect::<Vec<_>>());
    assert_eq!(m.subject, "[P2] RPO BREACHED: 3 databases in 2 regions; 1 met again");
    assert!(
        m.body.contains(
            "RPO BREACHED in us-west-2, 2 databases (what a recovery there would lose): orders-prod (up to 2h), \
             billing (no recovery point)\n"
        ),
        "{}",
        m.body
    );
    insta::assert_snapshot!("rpo-changes", shown(&m));
}

/// orders-prod's data checks: three checks, freshness and the heartbeat.
fn checks_config() -> crate::config::validate::Validate {
    let yaml = format!(
        "{}    validate:\n      connect: {{ secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-validator\", database: orders }}\n      checks:\n        - {{ name: users exist, sql: \"select count(*) from users\", expect: \">= 1000\" }}\n        - {{ name: no orphans, sql: \"select count(*) from orders o left join users u on u.id = o.user_id where u.id is null\", expect: \"= 0\" }}\n        - {{ name: order totals, sql: \"select sum(total) from orders\", expect: \"> 0\" }}\n      freshness: \"select max(updated_at) from orders\"\n      heartbeat: {{ secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-heartbeat\" }}\n",
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:123456789012:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n"
    );
    Config::from_yaml(&yaml).unwrap().databases[0].validate.clone().unwrap()
}

/// What the checks found at `min` minutes into the story, the newest write 42 s before it began.
fn data_report(
    min: i64,
    answers: [crate::decide::validate::Answer; 3],
    against: crate::decide::validate::Against,
) -> crate::decide::validate::DataReport {
    use crate::decide::validate::{judge, Reached};
    let reached = Reached::Connected {
        checks: answers.into(),
        freshness: Some(Ok(Some("2026-11-25 19:40:02.25+00".into()))),
        heartbeat: Some(Ok(Some("2026-11-25 19:41:18.000123".into()))),
    };
    judge(&checks_config(), reached, Some(against), Duration::from_secs(300), at(min))
}

fn answers_passing() -> [crate::decide::validate::Answer; 3] {
    [Ok(Some("1000".into())), Ok(Some("0".into())), Ok(Some("5120.50".into()))]
}

fn answers_failing() -> [crate::decide::validate::Answer; 3] {
    use crate::decide::validate::DbFailure;
    [
        Ok(Some("1000".into())),
        Ok(Some("3".into())),
        Err(DbFailure::Timeout("canceling statement due to statement timeout".into())),
    ]
}

#[test]
fn the_resolved_message_gives_the_data_loss_measured_in_the_database() {
    use crate::decide::validate::Against;
    let c = config();
    let db = c.database_named("orders-prod");
    let (_, mut i) = story().pop().unwrap();
    i.data = Some(data_report(25, answers_passing(), Against::FailedAt(i.started)));
    let m = incident(MessageKind::Resolved, &i, db, at(30));
    assert!(
        m.body.contains(
            "Data loss: 42s of writes (measured: newest write 19:41:18, primary lost 19:42:00); RPO 5m: met.\n"
        ),
        "{}",
        m.body
    );
    assert!(!m.body.contains("Data loss: up to"), "the estimate gives way to the measure: {}", m.body);
    assert!(m.body.contains("Data checks: passed (3 of 3).\n"), "{}", m.body);
    assert_eq!((m.facts["data_loss_seconds"].clone(), m.facts["data_loss_measured"].clone()), (json!(42), json!(true)));
    assert_eq!(m.facts["rpo_met"], true);
    insta::assert_snapshot!("resolved-measured", shown(&m));
    // A failback is planned: the same measure, against when the move began, not a lost primary.
    i.data = Some(data_report(25, answers_passing(), Against::MoveBegan(i.started)));
    let m = incident(MessageKind::Resolved, &i, db, at(30));
    assert!(
        m.body.contains("Data loss: 42s of writes (measured: newest write 19:41:18, planned move began 19:42:00)"),
        "{}",
        m.body
    );

    // The newest write read, but measured against nothing: the estimate stays, saying why.
    let mut unmeasured = i.clone();
    unmeasured.data.as_mut().unwrap().loss = None;
    unmeasured.data.as_mut().unwrap().unmeasured = Some("freshness answered NULL (or no row)".into());
    let m = incident(MessageKind::Resolved, &unmeasured, db, at(30));
    assert!(m.body.contains("Data loss: up to 2m (the recovered database holds data until"), "{}", m.body);
    assert!(
        m.body.contains("Data loss not measured in the database: freshness answered NULL (or no row).\n"),
        "{}",
        m.body
    );

    // Over the RPO, measured.
    i.data = Some(data_report(25, answers_passing(), Against::FailedAt(at(10))));
    let m = incident(MessageKind::Resolved, &i, db, at(30));
    assert!(
        m.body.contains(
            "Data loss: 10m 42s of writes (measured: newest write 19:41:18, primary lost 19:52:00); RPO 5m: MISSED.\n"
        ),
        "{}",
        m.body
    );
    assert_eq!(m.facts["rpo_met"], false);
}

#[test]
fn failed_data_checks_halt_the_cut_over_and_ask_a_person_what_each_failure_needs() {
    use crate::decide::validate::Against;
    let c = config();
    let db = c.database_named("orders-prod");
    let (_, mut i) = story().into_iter().nth(2).unwrap();
    assert_eq!(i.status, Status::Recovering);
    let report = data_report(8, answers_failing(), Against::FailedAt(i.started));
    let e = i.data_checked(&report, "orders-replica", "data-validator").unwrap();
    i.apply_data(e, report);
    assert!(MessageKind::DataChecksFailed.fits(i.status));
    let links = ApprovalLinks {
        approve: "https://x.lambda-url.us-west-2.on.aws/?i=a&d=approve&s=sig".into(),
        reject: "https://x.lambda-url.us-west-2.on.aws/?i=a&d=reject&s=sig".into(),
        expires: at(38),
    };
    let m = data_checks_failed(&i, db, Some(&links), at(8));
    assert_eq!(m.subject, "[P1] orders-prod: data checks FAILED, cut-over halted");
    let lines: Vec<&str> = m.body.lines().collect();
    for line in [
        "- ok users exist: 1000 (>= 1000)",
        "- FAILED no orphans: 3 (= 0)",
        "- ERROR order totals: timeout: canceling statement due to statement timeout",
        format!("Approve: {}", links.approve).as_str(),
        format!("Reject: {}", links.reject).as_str(),
        format!("Or, as your AWS identity: `lifeboat approve {id}` (or `lifeboat reject {id}`).", id = i.id).as_str(),
        "Data loss: 42s of writes (measured: newest write 19:41:18, primary lost 19:42:00); RPO 5m: met.",
    ] {
        assert!(lines.contains(&line), "{line}\n{}", m.body);
    }
    assert!(m.body.contains("  What to do: a statement ran past validate.timeout"), "{}", m.body);
    assert!(m.body.contains("  What to do: the recovered data is not what this check expects"), "{}", m.body);
    assert_eq!(m.facts["message"], "data-checks-failed");
    assert_eq!(m.facts["approve_url"], links.approve.as_str());
    assert_eq!(m.attributes["message"], Attribute::Text("data-checks-failed".into()));
    insta::assert_snapshot!("data-checks-failed", shown(&m));

    // No task to answer yet (or links not configured): the terminal alone.
    let m = data_checks_failed(&i, db, None, at(8));
    assert!(!m.body.contains("Approve: ") && m.facts.get("approve_url").is_none(), "{}", m.body);
    assert!(m.body.contains(&format!("As your AWS identity: `lifeboat approve {}`", i.id)), "{}", m.body);

    // Could not even log in: the named failure and what to do about it.
    let mut refused = i.clone();
    let r = crate::decide::validate::judge(
        &checks_config(),
        crate::decide::validate::Reached::Failed(crate::decide::validate::DbFailure::Credentials(
            "password authentication failed for user \"lifeboat_validator\"".into(),
        )),
        Some(Against::FailedAt(i.started)),
        Duration::from_secs(300),
        at(9),
    );
    refused.data = Some(r);
    let m = data_checks_failed(&refused, db, None, at(9));
    assert!(m.body.contains("- could not check: credentials: password authentication failed"), "{}", m.body);
    assert!(
        m.body.contains("the user exists in the restored database (a restore keeps the source's users)"),
        "{}",
        m.body
    );
}

#[test]
fn a_drill_lists_each_data_check_and_the_gap_to_its_recovery_point() {
    use crate::decide::validate::Against;
    use crate::drill::{Check, DrillResult};
    let data = data_report(12, answers_failing(), Against::RecoveryPoint(at(-0) - chrono::Duration::seconds(30)));
    let r = DrillResult {
        drill_id: "drill-orders-prod-20261125T1942Z".into(),
        database: "orders-prod".into(),
        region: "us-west-2".into(),
        snapshot: Some("arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-orders-prod-1".into()),
        started: at(0),
        ended: at(14),
        measured_rto_seconds: Some(9 * 60 + 5),
        rto_seconds: 1800,
        passed: false,
        checks: vec![Check { name: "status".into(), passed: true, detail: "available".into() }],
        failure: Some(data.summary()),
        cleaned_up: vec!["lf-drill-orders-prod-20261125t1942z".into()],
        data: Some(data),
    };
    let m = drill_result(&r);
    assert!(m.subject.starts_with("[P2] orders-prod: restore drill FAILED"), "{}", m.subject);
    for line in [
        "- ok users exist: 1000 (>= 1000)",
        "- FAILED no orphans: 3 (= 0)",
        "- ERROR order totals: timeout: canceling statement due to statement timeout",
        "Data loss: newest write 19:41:18, 12s before the recovery point 19:41:30 (within the RPO of 5m).",
    ] {
        assert!(m.body.lines().any(|l| l == line), "{line}\n{}", m.body);
    }
    insta::assert_snapshot!("drill-data-failed", shown(&m));

    let e = evidence::of_drill(&r, &m, None, at(15));
    assert_eq!(e.json["data_passed"], false);
    assert_eq!(e.json["recovery_point_gap"]["seconds"], 12);
    assert_eq!(e.json["drill"]["data"]["checks"][1]["value"], "3");
    assert!(e.markdown.contains("| no orphans | FAILED | 3 | = 0 |"), "{}", e.markdown);
    assert!(
        e.markdown.contains("| order totals | ERROR timeout | canceling statement due to statement timeout | > 0 |"),
        "{}",
        e.markdown
    );
    assert!(e.markdown.contains("The newest write is 12s before the recovery point"), "{}", e.markdown);
}

#[test]
fn a_failovers_evidence_keeps_the_data_checks_and_the_measured_loss() {
    use crate::decide::validate::Against;
    let c = config();
    let db = c.database_named("orders-prod");
    let (_, mut i) = story().pop().unwrap();
    i.data = Some(data_report(25, answers_passing(), Against::FailedAt(i.started)));
    let m = incident(MessageKind::Resolved, &i, db, at(30));
    let e = evidence::of_incident(&i, &m, None, at(31));
    assert_eq!(e.json["data_loss_measured"]["seconds"], 42);
    assert_eq!(e.json["data"]["passed"], true);
    assert!(
        e.markdown.contains(
            "| Data loss | 42s of writes (measured: newest write 19:41:18, primary lost 19:42:00); RPO 5m: met |"
        ),
        "{}",
        e.markdown
    );
    assert!(e.markdown.contains("## Data checks (2026-11-25 20:07 UTC)"), "{}", e.markdown);
    assert!(e.markdown.contains("| users exist | ok | 1000 | >= 1000 |"), "{}", e.markdown);
    assert!(
        e.markdown.contains("Writes lost: 42s, to the primary's failure at 2026-11-25 19:42:00 UTC (RPO 300s: met)."),
        "{}",
        e.markdown
    );
}

#[test]
fn a_data_report_reads_in_one_line_for_status_and_the_report() {
    use crate::decide::validate::{Against, DbFailure, Reached};
    let passed = data_report(25, answers_passing(), Against::FailedAt(at(0)));
    assert_eq!(
        data_line(&passed),
        "data checks passed (3 of 3); 42s of writes (measured: newest write 19:41:18, primary lost 19:42:00); RPO 5m: met"
    );
    let failed = data_report(25, answers_failing(), Against::RecoveryPoint(at(0)));
    assert_eq!(
        data_line(&failed),
        "data checks failed (no orphans: 3 (= 0); order totals: timeout: canceling statement due to statement timeout); \
         newest write 19:41:18, 42s before the recovery point 19:42:00 (within the RPO of 5m)"
    );
    let gone = crate::decide::validate::judge(
        &checks_config(),
        Reached::Failed(DbFailure::Unreachable("connection refused".into())),
        None,
        Duration::from_secs(300),
        at(0),
    );
    assert_eq!(data_line(&gone), "data checks failed (could not check: unreachable: connection refused)");
}

#[test]
fn a_measured_loss_is_shown_to_the_second_never_rounded_down() {
    assert_eq!(super::to_the_second(42), "42s");
    assert_eq!(super::to_the_second(86), "1m 26s");
    assert_eq!(super::to_the_second(120), "2m");
    assert_eq!(super::to_the_second(7510), "2h 05m 10s");
}
