//! The retention planner at fleet scale: 100,000 snapshots across 1,000 databases, half in the
//! source region and half as DR copies, planned in one run (target: under 100 ms).

use std::collections::BTreeMap;
use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use lifeboat_core::config::Config;
use lifeboat_core::copy::RegionListings;
use lifeboat_core::prune::{self, PruneRequest};
use lifeboat_core::snapshot::{Snapshot, SnapshotType, TAG_DATABASE, TAG_MANAGED, TAG_SOURCE_ARN};

const DATABASES: usize = 1_000;
const PER_DATABASE_AND_REGION: usize = 50;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 4, 0, 0).unwrap()
}

fn fleet() -> (Config, RegionListings) {
    let mut yaml = String::from("databases:\n");
    for i in 0..DATABASES {
        yaml.push_str(&format!(
            "  - name: db-{i}\n    source: arn:aws:rds:us-east-1:123456789012:db:db-{i}\n    tier: production\n    rpo: 1h\n    rto: 1h\n    copy_to: [{{ region: us-west-2 }}]\n    retention:\n      source: {{ daily: 7, weekly: 4, monthly: 12, max_age: 400d, min_keep: 3 }}\n      copies: {{ daily: 7, weekly: 4, monthly: 3, min_keep: 2 }}\n"
        ));
    }
    let config = Config::from_yaml(&yaml).expect("bench config");
    let mut listings: RegionListings = BTreeMap::new();
    for i in 0..DATABASES {
        for n in 0..PER_DATABASE_AND_REGION {
            // Every third day, at a time that varies by database, so periods hold 0..n snapshots.
            let at = now() - Duration::days(3 * n as i64) - Duration::minutes((i * 7 % 1440) as i64);
            let id = format!("db-{i}-{n}");
            let source = Snapshot {
                arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}").parse().unwrap(),
                database_id: format!("db-{i}"),
                snapshot_type: SnapshotType::Manual,
                status: "available".into(),
                created: Some(at),
                original_created: None,
                encrypted: true,
                tags: [(TAG_MANAGED.to_string(), "true".to_string())].into(),
            };
            let mut copy = source.clone();
            copy.arn = format!("arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-{id}").parse().unwrap();
            copy.original_created = Some(at);
            copy.created = Some(at + Duration::minutes(20));
            copy.tags.insert(TAG_DATABASE.into(), format!("db-{i}"));
            copy.tags.insert(TAG_SOURCE_ARN.into(), source.arn.to_string());
            listings.entry("us-east-1".into()).or_default().push(source);
            listings.entry("us-west-2".into()).or_default().push(copy);
        }
    }
    (config, listings)
}

fn bench(c: &mut Criterion) {
    let (config, listings) = fleet();
    let request = PruneRequest::default();
    let databases = prune::select(&config, &request).expect("select");
    let summary = prune::plan_run(&databases, &listings, &request, now());
    let planned: usize = summary.groups.iter().map(|g| g.kept.len() + g.to_delete.len() + g.skipped.len()).sum();
    assert_eq!(planned, 2 * DATABASES * PER_DATABASE_AND_REGION, "every snapshot gets a decision");
    c.bench_function("plan_run 100k snapshots / 1k databases", |b| {
        b.iter(|| prune::plan_run(black_box(&databases), black_box(&listings), &request, now()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
