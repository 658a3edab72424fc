use std::time::Duration;

use chrono::TimeZone;
use serde_json::json;

use super::*;

fn config() -> Config {
    Config::from_yaml(include_str!("../../../../examples/lifeboat.yaml")).unwrap()
}

fn load(name: &str) -> Value {
    let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 20, 0, 0).unwrap()
}

const DB: &str = "databases:
  - name: orders
    source: arn:aws:rds:us-east-1:123456789012:db:orders
    tier: production
    rpo: 5m
    rto: 30m
    copy_to: [{ region: us-west-2 }]
    failover:
";

fn err_of(failover: &str) -> String {
    Config::from_yaml(&format!("{DB}{failover}")).unwrap_err().to_string()
}

#[test]
fn the_example_failover_parses_with_its_defaults() {
    let c = config();
    let f = c.database_named("orders-prod").unwrap().failover.as_ref().unwrap();
    assert_eq!(f.strategy, Strategy::PromoteReplica);
    assert_eq!(f.approval_timeout, Duration::from_secs(1800));
    assert_eq!(f.triggers.alarms, ["orders-prod-db-down"]);
    assert_eq!(f.dns.as_ref().map(|d| d.ttl), Some(60));
}

#[test]
fn auto_approval_is_refused_for_production() {
    let e = err_of("      strategy: reboot-multi-az\n      approval: auto\n");
    assert!(e.contains("failover.approval") && e.contains("production"), "{e}");
}

#[test]
fn approval_takes_a_word_or_who_may_decide_how() {
    use crate::config::failover::{ApprovalPolicy, Via};
    let f = |approval: &str| {
        let yaml = format!("{DB}      strategy: reboot-multi-az\n      approval: {approval}\n");
        Config::from_yaml(&yaml).map(|c| c.databases[0].failover.as_ref().unwrap().approval)
    };
    assert_eq!(f("required").unwrap(), ApprovalPolicy::default());
    let strict = f("{ via: aws-identity, distinct_from_requester: true }").unwrap();
    assert!(strict.required() && strict.via == Via::AwsIdentity && strict.distinct_from_requester);
    assert_eq!(f("{ via: link }").unwrap().via, Via::Link);
    let e = f("{ via: link, distinct_from_requester: true }").unwrap_err().to_string();
    assert!(e.contains("distinct_from_requester") && e.contains("aws-identity"), "{e}");
    assert!(f("{ via: both, distinct_from_requester: true }").is_err(), "a typed name can't be compared");
    let e = f("{ required: false }").unwrap_err().to_string();
    assert!(e.contains("production"), "{e}");
    for bad in ["{ via: email }", "{ approvers: [alice] }", "sometimes"] {
        assert!(f(bad).is_err(), "{bad}");
    }
}

#[test]
fn each_strategy_names_the_target_it_needs() {
    for (yaml, says) in [
        ("      strategy: promote-replica\n      approval: required\n", "read replica instance"),
        (
            "      strategy: promote-replica\n      approval: required\n      target: arn:aws:rds:us-west-2:123456789012:cluster:c\n",
            "not `arn",
        ),
        (
            "      strategy: promote-replica\n      approval: required\n      target: arn:aws:rds:us-east-1:123456789012:db:orders\n",
            "source itself",
        ),
        ("      strategy: aurora-failover\n      approval: required\n", "cluster source"),
        ("      strategy: global-switchover\n      approval: required\n", "global database"),
        ("      strategy: restore-latest-copy\n      approval: required\n", "instance_class"),
        ("      strategy: point-in-time\n      approval: required\n", "manual requests only"),
        (
            "      strategy: reboot-multi-az\n      approval: required\n      endpoint_parameter: orders/db\n",
            "SSM parameter path",
        ),
        ("      strategy: reboot-multi-az\n      approval: required\n      triggers: { alarm: [x] }\n", "alarm"),
    ] {
        let e = err_of(yaml);
        assert!(e.contains(says), "{yaml}: {e}");
    }
    let ok = format!(
        "{DB}      strategy: restore-latest-copy\n      approval: required\n      restore: {{ instance_class: db.r6g.large, subnet_group: dr }}\n"
    );
    assert!(Config::from_yaml(&ok).is_ok());
}

#[test]
fn an_alarm_starts_one_database_failover_only() {
    let two = format!(
        "{DB}      strategy: reboot-multi-az\n      approval: required\n      triggers: {{ alarms: [db-down] }}\n  - name: other\n    source: arn:aws:rds:us-east-1:123456789012:db:other\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover: {{ strategy: reboot-multi-az, approval: required, triggers: {{ alarms: [db-down] }} }}\n"
    );
    let e = Config::from_yaml(&two).unwrap_err().to_string();
    assert!(e.contains("already starts another"), "{e}");
}

#[test]
fn a_listed_alarm_going_into_alarm_starts_a_failover_and_nothing_else_does() {
    let c = config();
    let Start::Failover(r) = classify(&c, &load("cloudwatch-alarm-into-alarm.json"), now()).unwrap() else { panic!() };
    let [r] = &r[..] else { panic!("{r:?}") };
    assert_eq!((r.database.as_str(), r.kind, r.strategy), ("orders-prod", Kind::Outage, Strategy::PromoteReplica));
    assert!(
        r.reason.contains("orders-prod-db-down is ALARM") && r.seed.starts_with("alarm:orders-prod-db-down:"),
        "{r:?}"
    );

    let mut again = load("cloudwatch-alarm-into-alarm.json");
    again["detail"]["previousState"]["value"] = "ALARM".into();
    let mut unlisted = load("cloudwatch-alarm-into-alarm.json");
    unlisted["detail"]["alarmName"] = "cpu-high".into();
    for (e, says) in [
        (load("cloudwatch-alarm-back-to-ok.json"), "went to OK"),
        (again, "already in ALARM"),
        (unlisted, "in no database's"),
        (load("rds-db-snapshot-manual-created.json"), "not an event that starts"),
    ] {
        let Start::Ignored { reason } = classify(&c, &e, now()).unwrap() else { panic!("{e}") };
        assert!(reason.contains(says), "{reason}");
    }
}

#[test]
fn rds_saying_the_target_replicas_replication_broke_starts_a_failover_and_a_manual_stop_does_not() {
    let c = config();
    let Start::Failover(r) = classify(&c, &load("failover-replica-replication-error.json"), now()).unwrap() else {
        panic!()
    };
    let [r] = &r[..] else { panic!("{r:?}") };
    assert_eq!((r.database.as_str(), r.kind, r.by.as_str()), ("orders-prod", Kind::Outage, "RDS events"));
    assert!(r.reason.contains("RDS-EVENT-0045") && r.reason.contains("Can't connect"), "{r:?}");

    let mut stopped = load("failover-replica-replication-error.json");
    stopped["detail"]["EventID"] = "RDS-EVENT-0062".into();
    let mut other = load("failover-replica-replication-error.json");
    other["detail"]["SourceArn"] = "arn:aws:rds:us-west-2:123456789012:db:reports-replica".into();
    let off = Config::from_yaml(
        &include_str!("../../../../examples/lifeboat.yaml").replace("replica_events: true", "replica_events: false"),
    )
    .unwrap();
    for (config, e, says) in [
        (&c, stopped, "not a replica's replication breaking"),
        (&c, other, "no failover target"),
        (&off, load("failover-replica-replication-error.json"), "no failover target"),
    ] {
        let Start::Ignored { reason } = classify(config, &e, now()).unwrap() else { panic!("{e}") };
        assert!(reason.contains(says), "{reason}");
    }
    let mut broken = load("failover-replica-replication-error.json");
    broken["detail"] = json!({"EventID": "RDS-EVENT-0045"});
    assert!(classify(&c, &broken, now()).is_err(), "an event without its source is an error, not a failover");
}

#[test]
fn a_dns_mode_that_cant_work_is_refused_with_what_to_do() {
    let rc = "arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol";
    let dns = |mode: &str, controls: &str| {
        format!("      dns: {{ zone_id: Z1, record: db.x.internal, mode: {mode}{controls} }}\n")
    };
    let controls = format!(
        ", routing_controls: {{ on: {rc}/west, off: {rc}/east, cluster_endpoints: [{{ region: us-west-2, url: https://h.us-west-2.example.aws/v1 }}] }}"
    );
    let replica = "      strategy: promote-replica\n      approval: required\n      target: arn:aws:rds:us-west-2:123456789012:db:r\n";
    let restore = "      strategy: restore-latest-copy\n      approval: required\n      restore: { instance_class: db.r6g.large, subnet_group: dr }\n";
    for (yaml, says) in [
        (format!("{replica}{}", dns("routing-control", "")), "needs routing_controls"),
        (format!("{replica}{}", dns("upsert", &controls)), "only with mode: routing-control"),
        (format!("{restore}{}", dns("routing-control", &controls)), "use mode upsert"),
        (format!("{replica}{}", dns("routing-control", &controls.replace("/west", "/east"))), "the same control"),
        (format!("{replica}{}", dns("routing-control", &controls.replace(rc, "west"))), "routing control ARNs"),
        (format!("{replica}{}", dns("data-plane", "")), "unknown variant"),
    ] {
        let e = err_of(&yaml);
        assert!(e.contains(says), "{yaml}: {e}");
    }
    let ok = Config::from_yaml(&format!("{DB}{replica}{}", dns("routing-control", &controls))).unwrap();
    let d = ok.databases[0].failover.as_ref().and_then(|f| f.dns.as_ref()).unwrap();
    assert_eq!(d.mode, DnsMode::RoutingControl);
    assert!(d.plan().contains("routing control west On and east Off"), "{}", d.plan());
}

#[test]
fn an_open_health_issue_naming_a_database_with_health_triggers_starts_a_failover() {
    let c = config();
    let Start::Failover(r) = classify(&c, &load("health-rds-issue-open.json"), now()).unwrap() else { panic!() };
    let [r] = &r[..] else { panic!("{r:?}") };
    assert_eq!((r.database.as_str(), r.kind), ("orders-prod", Kind::Region));
    for file in ["health-rds-issue-closed.json", "health-rds-issue-other-region.json"] {
        assert!(matches!(classify(&c, &load(file), now()).unwrap(), Start::Ignored { .. }), "{file}");
    }
}

#[test]
fn manual_requests_are_checked_before_anything_starts() {
    let c = config();
    let Start::Failover(r) = classify(&c, &load("failover-manual-request.json"), now()).unwrap() else { panic!() };
    let r = &r[0];
    assert_eq!((r.strategy, r.kind, r.by.as_str()), (Strategy::PointInTime, Kind::Data, "alice@example.com"));
    let ok = json!({"database": "orders-prod", "reason": "planned DR test", "requested_by": "bob"});
    let Start::Failover(r) = classify(&c, &ok, now()).unwrap() else { panic!() };
    assert_eq!(r[0].strategy, Strategy::PromoteReplica, "the configured strategy");
    for (bad, says) in [
        (json!({"database": "ordres-prod", "reason": "r", "requested_by": "b"}), "no database named"),
        (json!({"database": "orders-prod", "reason": "", "requested_by": "b"}), "why and who"),
        (json!({"database": "orders-prod", "reason": "r", "requested_by": "b", "strategy": "pitr"}), "point-in-time"),
        (
            json!({"database": "orders-prod", "reason": "r", "requested_by": "b", "strategy": "point-in-time"}),
            "needs restore_time",
        ),
        (
            json!({"database": "orders-prod", "reason": "r", "requested_by": "b", "strategy": "point-in-time", "restore_time": "2027-01-01T00:00:00Z"}),
            "not in the past",
        ),
        (
            json!({"database": "orders-prod", "reason": "r", "requested_by": "b", "restore_time": "2026-11-25T19:00:00Z"}),
            "only for",
        ),
        (json!({"database": "catalog-aurora", "reason": "r", "requested_by": "b"}), "no failover section"),
        (json!({"database": "orders-prod", "reason": "r", "requested_by": "b", "force": true}), "force"),
        (json!([1]), "expected"),
    ] {
        let e = classify(&c, &bad, now()).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
}

#[test]
fn execution_names_are_stable_and_valid() {
    let n = execution_name("orders-prod-20261125T1942Z-3f2a");
    assert_eq!(n, "orders-prod-20261125T1942Z-3f2a");
    assert_eq!(execution_name("a b:c"), "a-b-c");
    assert!(execution_name(&"x".repeat(200)).len() <= 80);
}

#[test]
fn incidents_of_long_names_in_the_same_hour_get_names_of_their_own() {
    use crate::incident::incident_id;
    // The longest database name the config allows is a tag value: 256 characters.
    let name = |c: char| format!("{}{c}", "orders-prod-eu-".repeat(17));
    let at = now();
    let ids = [
        incident_id(&name('a'), at, "alarm:x"),
        incident_id(&name('a'), at + chrono::Duration::minutes(7), "alarm:x"),
        incident_id(&name('a'), at, "health:y"),
        incident_id(&name('b'), at, "alarm:x"),
    ];
    let names: std::collections::BTreeSet<String> = ids.iter().map(|i| execution_name(i)).collect();
    assert_eq!(names.len(), ids.len(), "{names:?}");
    for (id, n) in ids.iter().zip(ids.iter().map(|i| execution_name(i))) {
        assert!(n.len() <= 80 && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{n}");
        assert!(n.ends_with(&id[id.len() - 20..]), "the minute and hash are kept: {n}");
        assert_eq!(n, execution_name(id), "stable");
    }
}

#[test]
fn waits_that_would_outlast_the_state_machine_are_refused_and_the_limits_match_the_asl() {
    use crate::failover::steps::{recovery_wait, Execution, MACHINE_TIMEOUT};
    // A machine-level timeout runs no Catch: it must never be what ends a failover or a drill.
    let asl = |file: &str| -> u64 {
        let text = std::fs::read_to_string(format!("{}/../infra/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        serde_json::from_str::<Value>(&text).unwrap()["TimeoutSeconds"].as_u64().unwrap()
    };
    assert_eq!(asl("failover.asl.json"), MACHINE_TIMEOUT.as_secs());
    // A step that runs out of Lambda time fails as Sandbox.Timedout (or Lambda.Unknown): every
    // step is idempotent, so both are retried wherever Lambda's own failures are.
    for file in ["failover.asl.json", "drill.asl.json"] {
        let text = std::fs::read_to_string(format!("{}/../infra/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let states: Value = serde_json::from_str(&text).unwrap();
        for (name, state) in states["States"].as_object().unwrap() {
            for retrier in state["Retry"].as_array().into_iter().flatten() {
                let errors = retrier["ErrorEquals"].to_string();
                if errors.contains("Lambda.Unknown") {
                    assert!(errors.contains("Sandbox.Timedout"), "{file} {name}: {errors}");
                }
            }
        }
    }
    assert_eq!(asl("drill.asl.json"), crate::config::drill::MACHINE_TIMEOUT.as_secs());

    let db = |approval: &str, rto: &str| {
        format!(
            "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:123456789012:db:orders\n    tier: production\n    rpo: 5m\n    rto: {rto}\n    failover:\n      strategy: reboot-multi-az\n      approval: required\n      approval_timeout: {approval}\n"
        )
    };
    let e = Config::from_yaml(&db("20h", "2h")).unwrap_err().to_string();
    let bare = "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:123456789012:db:orders\n    tier: production\n    rpo: 5m\n    rto: 12h\n";
    let no_section = Config::from_yaml(bare).unwrap_err().to_string();
    assert!(no_section.contains("rto") && no_section.contains("requested failover"), "{no_section}");
    assert!(e.contains("approval_timeout") && e.contains("shorten"), "{e}");
    let ok = Config::from_yaml(&db("2h", "4h")).unwrap();
    // The recovery wait follows the RTO (twice it), no longer a fixed two hours.
    let orders = &ok.databases[0];
    let Start::Failover(r) =
        classify(&ok, &json!({"database": "orders", "reason": "r", "requested_by": "a"}), now()).unwrap()
    else {
        panic!()
    };
    let exec = Execution::new(orders, &r[0], "orders-x", std::time::Duration::from_secs(1));
    assert_eq!(exec.recovery_timeout_seconds, 8 * 3600);
    assert_eq!(recovery_wait(std::time::Duration::from_secs(60)).as_secs(), 15 * 60, "at least 15 minutes");

    let drill = "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:123456789012:db:orders\n    tier: production\n    rpo: 5m\n    rto: 6h\n    copy_to: [{ region: us-west-2 }]\n    drill: { restore: { instance_class: db.t3.micro, subnet_group: dr } }\n";
    let e = Config::from_yaml(drill).unwrap_err().to_string();
    assert!(e.contains("drill") && e.contains("rto of at most 5h"), "{e}");
    assert!(Config::from_yaml(&drill.replace("rto: 6h", "rto: 4h")).is_ok());
}

#[test]
fn a_health_issue_starts_one_failover_per_database_it_touches_named_from_the_issue_not_the_update() {
    let two = "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:123456789012:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover: { strategy: reboot-multi-az, approval: required, triggers: { health: true } }\n  - name: billing\n    source: arn:aws:rds:us-east-1:123456789012:db:billing\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover: { strategy: reboot-multi-az, approval: required, triggers: { health: true } }\n  - name: quiet\n    source: arn:aws:rds:us-east-1:123456789012:db:quiet\n    tier: production\n    rpo: 5m\n    rto: 30m\n";
    let c = Config::from_yaml(two).unwrap();
    let mut issue = load("health-rds-issue-open.json");
    issue["detail"]["affectedEntities"] = json!([]);
    let Start::Failover(r) = classify(&c, &issue, now()).unwrap() else { panic!() };
    let names: Vec<&str> = r.iter().map(|r| r.database.as_str()).collect();
    assert_eq!(names, ["orders-prod", "billing"], "every database with triggers.health, not only the first");
    // An update: sent later, updated later, the same issue.
    let mut update = issue.clone();
    update["time"] = json!("2026-11-25T21:10:00Z");
    update["detail"]["lastUpdatedTime"] = json!("Wed, 25 Nov 2026 21:08:00 GMT");
    let Start::Failover(u) = classify(&c, &update, now()).unwrap() else { panic!() };
    for (a, b) in r.iter().zip(&u) {
        assert_eq!((a.seed.as_str(), a.began), (b.seed.as_str(), b.began));
        assert_eq!(a.began.map(|t| t.to_rfc3339()).as_deref(), Some("2026-11-25T19:30:00+00:00"));
    }
}

#[test]
fn a_failback_is_asked_for_only_after_a_move_and_a_way_back() {
    use crate::active::{follow, Active};
    let written = config();
    let ask = json!({"database": "orders-prod", "reason": "home", "requested_by": "alice", "failback": true});
    let refused = |c: &Config| classify(c, &ask, now()).unwrap_err().to_string();
    assert!(refused(&written).contains("has not failed over"), "{}", refused(&written));
    let moved = Active {
        database: "orders-prod".into(),
        arn: "arn:aws:rds:us-west-2:123456789012:db:orders-replica".into(),
        endpoint: None,
        since: now(),
        incident: "i-1".into(),
        previous: "arn:aws:rds:us-east-1:123456789012:db:orders-prod".into(),
        replica: None,
        copies_home: None,
    };
    let away = follow(&written, std::slice::from_ref(&moved));
    assert!(refused(&away).contains("lifeboat reprotect orders-prod"), "{}", refused(&away));
    let back = "arn:aws:rds:us-east-1:123456789012:db:lf-orders-prod-r202611252000";
    let ready = follow(&written, &[Active { replica: Some(back.into()), ..moved }]);
    let Start::Failover(requests) = classify(&ready, &ask, now()).unwrap() else { panic!("a failback") };
    assert_eq!((requests[0].kind, requests[0].strategy), (Kind::Failback, Strategy::PromoteReplica));
    let with_strategy = json!({"database": "orders-prod", "reason": "r", "requested_by": "a", "failback": true, "strategy": "point-in-time"});
    assert!(classify(&ready, &with_strategy, now()).unwrap_err().to_string().contains("no strategy"));
}

#[test]
fn a_failback_waits_for_a_way_back_that_is_available_and_caught_up() {
    use super::steps::{failback_ready, DbState, Evidence};
    let way_back = DbState { id: "lf-orders".into(), status: "available".into(), ..DbState::default() };
    let ev = |status: &str, lag: Option<f64>| Evidence {
        target: Some(DbState { status: status.into(), ..way_back.clone() }),
        replica_lag_seconds: lag,
        ..Evidence::default()
    };
    assert_eq!(failback_ready(false, &ev("available", Some(0.0))), Ok(()));
    assert_eq!(failback_ready(false, &ev("available", Some(30.0))), Ok(()), "the bound itself");
    for (status, lag, why) in [
        ("available", Some(31.0), "31 s behind"),
        ("available", None, "unknown"),
        ("available", Some(-1.0), "broken"),
        ("modifying", Some(0.0), "not available"),
    ] {
        let refused = failback_ready(false, &ev(status, lag)).unwrap_err();
        assert!(refused.starts_with("failback refused") && refused.contains(why), "{status} {lag:?}: {refused}");
    }
    assert!(failback_ready(false, &Evidence::default()).unwrap_err().contains("gone"));
    // A switchover synchronizes before it moves anything: an unknown lag does not stop it (its
    // metric may be missing), a known one over the bound does (writes would wait that long).
    assert_eq!(failback_ready(true, &ev("available", None)), Ok(()));
    assert!(failback_ready(true, &ev("available", Some(120.0))).unwrap_err().contains("120 s behind"));
}
