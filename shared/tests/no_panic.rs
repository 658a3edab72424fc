//! Bad input never panics: the event classifiers, the config parser and the step / request
//! parsers answer anything — random JSON built from the words real events use, and the sample
//! events with one field replaced — with a value or a clear error. (The approval link parser has
//! its own property in `approval.rs`; the same parsers are `cargo fuzz` targets in `shared/fuzz`.)

use chrono::{TimeZone, Utc};
use lifeboat_core::approval::Request;
use lifeboat_core::config::Config;
use lifeboat_core::{drill, event, failover, notify};
use proptest::prelude::*;
use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "detail-type",
    "detail",
    "source",
    "time",
    "region",
    "resources",
    "SourceArn",
    "SourceType",
    "EventID",
    "Message",
    "alarmName",
    "state",
    "previousState",
    "value",
    "reason",
    "timestamp",
    "eventArn",
    "service",
    "eventTypeCategory",
    "statusCode",
    "eventRegion",
    "affectedEntities",
    "entityValue",
    "database",
    "requested_by",
    "strategy",
    "restore_time",
    "incident_id",
    "message",
    "task_token",
    "action",
    "execution",
    "drill",
    "report",
    "dry_run",
    "Scheduled Event",
    "RDS DB Snapshot Event",
    "CloudWatch Alarm State Change",
    "AWS Health Event",
    "aws.rds",
    "aws.health",
    "ALARM",
    "OK",
    "RDS-EVENT-0042",
    "orders-prod",
    "arn:aws:rds:us-east-1:123456789012:snapshot:x",
    "point-in-time",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![proptest::sample::select(WORDS).prop_map(str::to_owned), ".{0,12}"]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        word().prop_map(Value::from),
        Just(json!("2026-11-25T19:42:00Z")),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(word(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn samples() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../events");
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .filter_map(|t| serde_json::from_str(&t).ok())
        .collect()
}

/// Replace the value at one path (keys and indexes chosen by `picks`) with `with`.
fn mutate(v: &mut Value, picks: &[usize], with: Value) {
    let Some((p, rest)) = picks.split_first() else {
        *v = with;
        return;
    };
    match v {
        Value::Object(m) if !m.is_empty() => {
            let key = m.keys().nth(p % m.len()).cloned().unwrap_or_default();
            match m.get_mut(&key) {
                Some(next) => mutate(next, rest, with),
                None => *v = with,
            }
        }
        Value::Array(a) if !a.is_empty() => {
            let n = a.len();
            mutate(&mut a[p % n], rest, with)
        }
        _ => *v = with,
    }
}

fn config() -> Config {
    Config::from_yaml(include_str!("../../examples/lifeboat.yaml")).unwrap()
}

fn every_parser(config: &Config, v: &Value) {
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap();
    let _ = event::classify(v);
    let _ = failover::classify(config, v, now);
    let _ = notify::parse(v);
    let _ = drill::parse(v);
    let _ = failover::steps::parse(v);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_json_never_panics_a_classifier(v in json_value()) {
        every_parser(&config(), &v);
    }

    #[test]
    fn a_sample_event_with_one_field_replaced_never_panics(i in any::<usize>(), picks in prop::collection::vec(any::<usize>(), 0..5), with in json_value()) {
        let all = samples();
        let mut v = all[i % all.len()].clone();
        mutate(&mut v, &picks, with);
        every_parser(&config(), &v);
    }

    #[test]
    fn any_function_url_request_is_read_or_refused(method in prop::option::of(".{0,8}"), query in prop::option::of(".{0,200}"), body in prop::option::of(".{0,200}"), base64 in any::<bool>()) {
        if let Ok(r) = Request::read(method.as_deref(), query.as_deref(), body.as_deref(), base64) {
            let key = b"0123456789abcdef0123456789abcdef";
            prop_assert!(r.link.verify(key, Utc::now()).is_err(), "a random request is no genuine link");
        }
    }

    #[test]
    fn any_text_is_a_config_or_a_clear_error(text in ".{0,400}") {
        if let Err(e) = Config::from_yaml(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn the_example_config_with_one_line_changed_is_a_config_or_a_clear_error(line in any::<usize>(), with in ".{0,60}") {
        let example = include_str!("../../examples/lifeboat.yaml");
        let lines: Vec<&str> = example.lines().collect();
        let n = line % lines.len();
        let text: String = lines.iter().enumerate().map(|(i, l)| if i == n { with.as_str() } else { l }).collect::<Vec<_>>().join("\n");
        if let Err(e) = Config::from_yaml(&text) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
