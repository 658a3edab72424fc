//! CloudWatch Embedded Metric Format: a metric is one JSON log line, so emitting it costs no API
//! call and no latency, and CloudWatch Logs turns it into a metric the template alarms on.
//! Written here rather than taken from a crate: the format is one small JSON object, and the EMF
//! crates we found are exporters for the `metrics` facade, a runtime layer for five counters.

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "Lifeboat";

/// One EMF line: `counts` as `Count` metrics in the `Lifeboat` namespace, with one dimension set.
pub fn emf_line(at: DateTime<Utc>, dimensions: &[(&str, &str)], counts: &[(&str, usize)]) -> String {
    let names: Vec<&str> = dimensions.iter().map(|(k, _)| *k).collect();
    let metrics: Vec<(&str, i64, &str)> = counts.iter().map(|(n, v)| (*n, *v as i64, "Count")).collect();
    emf(at, dimensions, &[&names], &metrics)
}

/// One EMF line: `metrics` as (name, value, unit), `dimensions` as values and `sets` as the
/// dimension sets CloudWatch aggregates them by (every name in a set must be in `dimensions`).
pub fn emf(at: DateTime<Utc>, dimensions: &[(&str, &str)], sets: &[&[&str]], metrics: &[(&str, i64, &str)]) -> String {
    let mut line = Map::new();
    for (k, v) in dimensions {
        line.insert((*k).to_owned(), json!(v));
    }
    for (name, value, _) in metrics {
        line.insert((*name).to_owned(), json!(value));
    }
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": sets,
                "Metrics": metrics.iter().map(|(n, _, unit)| json!({"Name": n, "Unit": unit})).collect::<Vec<_>>(),
            }],
        }),
    );
    Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emf_line_declares_every_metric_and_dimension_it_carries() {
        let at = "2026-11-25T04:00:00Z".parse().unwrap();
        let line = emf_line(at, &[("Function", "snapshot-copier")], &[("CopiesFailed", 2), ("CopiesStarted", 0)]);
        let v: Value = serde_json::from_str(&line).unwrap();
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_795_579_200_000_i64);
        assert_eq!(spec["Namespace"], "Lifeboat");
        assert_eq!(spec["Dimensions"], json!([["Function"]]));
        // Every declared metric and dimension must be a member of the root, or CloudWatch drops it.
        for m in spec["Metrics"].as_array().unwrap() {
            assert!(v[m["Name"].as_str().unwrap()].is_number(), "{line}");
            assert_eq!(m["Unit"], "Count");
        }
        assert_eq!(v["Function"], "snapshot-copier");
        assert_eq!(v["CopiesFailed"], 2);
        assert!(!line.contains('\n'), "one log line");
    }
}
