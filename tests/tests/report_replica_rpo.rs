//! The recoverability report (dr-drill's `{"report": true}`, what `lifeboat status` prints) gives a
//! replica-protected database's recovery point from its replica's lag, as rpo-monitor and the
//! failover plan do: RDS, the snapshots and the incident table in moto; CloudWatch's `ReplicaLag`
//! from a mock client, since moto can't answer this SDK's CloudWatch calls (getmoto/moto#9195).

use std::time::Duration;

use aws_sdk_cloudwatch::operation::get_metric_statistics::GetMetricStatisticsOutput;
use aws_sdk_cloudwatch::types::Datapoint;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use chrono::Utc;
use lifeboat_core::aws::cloudwatch::Metrics;
use lifeboat_core::drill::ReportRow;
use lifeboat_tests::*;
use serde_json::json;

#[tokio::test]
async fn a_replica_42_seconds_behind_is_a_met_rpo_and_a_replica_alone_gets_a_figure() {
    let moto = Moto::start();
    let table = incidents_table(&moto, "us-east-1").await;
    let (topic, _inbox) = topic_with_queue(&moto, "us-east-1").await;
    let key = kms_key(&moto, "us-west-2").await;
    let now = Utc::now();
    // orders-prod: a DR copy two hours old (RPO 15m), and a replica 42 s behind.
    dr_copies(
        &moto,
        "us-west-2",
        "orders-prod",
        false,
        &[("lifeboat-orders-prod-1", now - chrono::Duration::hours(2))],
    )
    .await;
    for db in ["orders-prod", "ledger", "billing"] {
        create_instance(&moto, "us-east-1", db).await;
        let source = format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:{db}");
        read_replica(&moto, "us-west-2", &format!("{db}-replica"), &source).await;
    }
    let db = |name: &str, extra: &str| {
        format!(
            "  - name: {name}\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:{name}\n    tier: production\n    rpo: \
             15m\n    rto: 30m\n{extra}    failover:\n      strategy: promote-replica\n      target: \
             arn:aws:rds:us-west-2:{ACCOUNT}:db:{name}-replica\n      approval: required\n"
        )
    };
    let yaml = format!(
        "databases:\n{}{}{}",
        db(
            "orders-prod",
            &format!(
                "    copy_to:\n      - {{ region: us-west-2, kms_key: \"{key}\" }}\n    retention:\n      copies: {{ \
                 daily: 3, min_keep: 1 }}\n"
            )
        ),
        // Protected by its replica alone.
        db("ledger", ""),
        // Its replica's replication broke: RDS reports ReplicaLag -1.
        db("billing", ""),
    );
    let config = config_in_ssm(&moto, &yaml, Duration::ZERO).await;
    let sdk = moto.sdk("us-east-1").await;
    let mut deps = dr_drill::Deps::new(config, &sdk, &table, &topic);

    let lag = |replica: &'static str, seconds: f64| {
        mock!(aws_sdk_cloudwatch::Client::get_metric_statistics)
            .match_requests(move |r| {
                r.metric_name() == Some("ReplicaLag") && r.dimensions().first().and_then(|d| d.value()) == Some(replica)
            })
            .then_output(move || {
                let point = Datapoint::builder()
                    .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(Utc::now().timestamp() - 60))
                    .maximum(seconds)
                    .build();
                GetMetricStatisticsOutput::builder().datapoints(point).build()
            })
    };
    let (orders, ledger, billing) =
        (lag("orders-prod-replica", 42.0), lag("ledger-replica", 42.0), lag("billing-replica", -1.0));
    let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&orders, &ledger, &billing]);
    deps.metrics = Metrics::with_client(&sdk, "us-west-2", client);

    let report = dr_drill::handle(&deps, json!({"report": true}), now).await.expect("report");
    let rows: Vec<ReportRow> = serde_json::from_value(report["databases"].clone()).expect("rows");
    let row = |name: &str| rows.iter().find(|r| r.database == name).unwrap_or_else(|| panic!("{name}: {rows:?}"));
    assert_eq!((row("orders-prod").recovery_point_age_seconds, row("orders-prod").rpo_met), (Some(42), true));
    assert_eq!((row("ledger").recovery_point_age_seconds, row("ledger").rpo_met), (Some(42), true), "a figure");
    assert_eq!((row("billing").recovery_point_age_seconds, row("billing").rpo_met), (None, false), "not 'ok'");
    let text = report["text"].as_str().unwrap_or_default();
    assert!(text.contains("| orders-prod | 42s / 15m (met) |"), "not `2h / 15m (BREACHED)`: {text}");
    assert!(text.contains("| ledger | 42s / 15m (met) |"), "{text}");
    assert!(text.contains("| billing | none / 15m (BREACHED) |"), "{text}");
    // `lifeboat status` exits 1 on exactly this: only billing's breach is a problem.
    let problems: Vec<_> = rows.iter().filter(|r| !r.rpo_met || r.last_drill_passed == Some(false)).collect();
    assert_eq!(problems.iter().map(|r| r.database.as_str()).collect::<Vec<_>>(), ["billing"]);
}
