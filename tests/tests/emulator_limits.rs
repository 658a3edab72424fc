//! The emulator at fleet size: the AWS limits scripts/moto_server.py adds to moto (SSM parameter
//! sizes by tier, RDS's request throttling), and its fleet endpoint, whose resources the API must
//! not be able to tell from ones made call by call.

use aws_sdk_rds::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::ParameterTier;
use chrono::{DateTime, TimeZone, Utc};
use lifeboat_tests::*;
use serde_json::{json, Value};

const SRC: &str = "us-east-1";
const DR: &str = "us-west-2";

async fn put(
    moto: &Moto,
    name: &str,
    bytes: usize,
    tier: Option<ParameterTier>,
) -> Result<ParameterTier, (String, String)> {
    aws_sdk_ssm::Client::new(&moto.sdk(SRC).await)
        .put_parameter()
        .name(name)
        .value("x".repeat(bytes))
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .set_tier(tier)
        .send()
        .await
        .map(|out| out.tier().cloned().expect("PutParameter answers the tier"))
        .map_err(|e| (e.code().unwrap_or_default().to_owned(), e.message().unwrap_or_default().to_owned()))
}

#[tokio::test]
async fn ssm_refuses_a_value_its_tier_cannot_hold() {
    let moto = Moto::start();

    let (code, message) = put(&moto, "/lifeboat/standard", 5 * 1024, None).await.unwrap_err();
    assert_eq!(code, "ValidationException");
    assert!(
        message.starts_with("Standard tier parameters support a maximum parameter value of 4096 characters."),
        "{message}"
    );
    assert_eq!(
        put(&moto, "/lifeboat/standard", 4096, None).await,
        Ok(ParameterTier::Standard),
        "4 KB fits the default tier"
    );

    assert_eq!(
        put(&moto, "/lifeboat/advanced", 5 * 1024, Some(ParameterTier::Advanced)).await,
        Ok(ParameterTier::Advanced)
    );
    let (code, message) = put(&moto, "/lifeboat/too-big", 9 * 1024, Some(ParameterTier::Advanced)).await.unwrap_err();
    assert_eq!(code, "ValidationException");
    assert!(
        message.contains("Advanced-tier parameters support a maximum parameter value of 8192 characters."),
        "{message}"
    );

    // Intelligent-Tiering answers the tier AWS picked for the value.
    assert_eq!(
        put(&moto, "/lifeboat/small", 100, Some(ParameterTier::IntelligentTiering)).await,
        Ok(ParameterTier::Standard)
    );
    assert_eq!(
        put(&moto, "/lifeboat/large", 5 * 1024, Some(ParameterTier::IntelligentTiering)).await,
        Ok(ParameterTier::Advanced)
    );
    assert!(put(&moto, "/lifeboat/huge", 9 * 1024, Some(ParameterTier::IntelligentTiering)).await.is_err());
}

/// `n` DescribeDBSnapshots calls one after another: None for an answer, else the error's code and message.
async fn describe_burst(rds: &aws_sdk_rds::Client, n: usize) -> Vec<Option<(String, String)>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            rds.describe_db_snapshots()
                .send()
                .await
                .err()
                .map(|e| (e.code().unwrap_or_default().to_owned(), e.message().unwrap_or_default().to_owned())),
        );
    }
    out
}

fn throttle_counts(moto: &Moto) -> Value {
    serde_json::from_str(&http("GET", &format!("{}/_lifeboat/throttle", moto.endpoint), None).body).unwrap()
}

#[tokio::test]
async fn throttled_rds_fails_a_burst_without_retries_and_the_sdk_absorbs_it_with_them() {
    let moto = Moto::start();
    let once = aws_sdk_rds::Client::new(&lifeboat_core::aws::without_retries(&moto.sdk(DR).await));
    let key = format!("{DR}:rds:DescribeDBSnapshots");

    // A token every ten seconds: the bucket of five empties long before it refills.
    moto.post("/_lifeboat/throttle", &json!({ "rate": 0.1, "burst": 5 }));
    let answers = describe_burst(&once, 20).await;
    assert!(answers[..5].iter().all(Option::is_none), "a full bucket answers its burst: {answers:?}");
    let refused: Vec<_> = answers.iter().flatten().collect();
    assert!(refused.len() >= 10, "{answers:?}");
    assert!(
        refused.iter().all(|(code, message)| code == "Throttling" && message == "Rate exceeded"),
        "as RDS answers: {refused:?}"
    );
    let counts = throttle_counts(&moto);
    assert_eq!(counts["throttled"][&key], json!(refused.len()));
    assert_eq!(counts["calls"][&key], json!(20));

    // Reads and writes have their buckets: an empty read bucket lets a write through.
    once.create_db_cluster()
        .db_cluster_identifier("written")
        .engine("aurora-postgresql")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("a write is not throttled by the reads' bucket");

    // The SDK's standard retry backs off until the bucket has a token again: every call answers.
    moto.post("/_lifeboat/throttle", &json!({ "rate": 10, "burst": 5 }));
    let answers = describe_burst(&moto.rds(DR).await, 20).await;
    assert!(answers.iter().all(Option::is_none), "{answers:?}");
    let counts = throttle_counts(&moto);
    assert!(counts["throttled"][&key].as_u64() > Some(0), "the retries met the throttle: {counts}");
    assert_eq!(
        counts["calls"][&key].as_u64(),
        Some(20 + counts["throttled"][&key].as_u64().unwrap()),
        "each throttled attempt retried once more"
    );

    // Only the named caller's calls, and {} switches it off.
    moto.post("/_lifeboat/throttle", &json!({ "rate": 1, "burst": 5, "caller": "lifeboat-functions" }));
    assert!(describe_burst(&once, 10).await.iter().all(Option::is_none), "the tests' key is not throttled");
    moto.post("/_lifeboat/throttle", &json!({}));
    assert!(describe_burst(&once, 10).await.iter().all(Option::is_none));
    assert_eq!(throttle_counts(&moto)["throttled"], json!({}));
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
}

/// (create time, original create time, type, status, encrypted, tags) of a snapshot: what an
/// API caller can see of it, less its names.
type Seen = (Option<i64>, Option<i64>, String, String, bool, Vec<(String, String)>);

fn seen(s: &aws_sdk_rds::types::DbSnapshot) -> Seen {
    let mut tags: Vec<_> = s
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect();
    tags.sort();
    (
        s.snapshot_create_time().map(|t| t.secs()),
        s.original_snapshot_create_time().map(|t| t.secs()),
        s.snapshot_type().unwrap_or_default().to_owned(),
        s.status().unwrap_or_default().to_owned(),
        s.encrypted().unwrap_or_default(),
        tags,
    )
}

async fn manual_snapshots(rds: &aws_sdk_rds::Client) -> Vec<aws_sdk_rds::types::DbSnapshot> {
    let mut pages = rds.describe_db_snapshots().snapshot_type("manual").max_records(100).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        out.extend(page.unwrap().db_snapshots().iter().cloned());
    }
    out
}

#[tokio::test]
async fn a_fleet_is_what_the_api_would_have_made_one_call_at_a_time() {
    let moto = Moto::start();
    let key = kms_key(&moto, SRC).await;
    let source = |id: &str| format!("arn:aws:rds:{SRC}:{ACCOUNT}:db:{id}");
    let mut instances: Vec<Value> = (0..10).map(|i| json!({ "region": SRC, "id": format!("db-{i:03}") })).collect();
    instances.push(json!({ "region": SRC, "id": "db-encrypted", "kms_key": key }));
    instances.push(json!({ "region": DR, "id": "db-000-replica", "replica_of": source("db-000") }));
    let clusters: Vec<Value> = (0..3).map(|i| json!({ "region": SRC, "id": format!("cl-{i:03}") })).collect();
    let mut snapshots = Vec::new();
    for i in 0..10 {
        for k in 0..25 {
            let created = at(1 + k, i);
            snapshots.push(json!({
                "region": SRC, "kind": "db", "source": format!("db-{i:03}"), "id": format!("db-{i:03}-{k:02}"),
                "created": created.to_rfc3339(), "tags": { "lifeboat:database": format!("db-{i:03}"), "n": k.to_string() },
            }));
        }
    }
    for i in 0..3 {
        snapshots.push(json!({ "region": SRC, "kind": "cluster", "source": format!("cl-{i:03}"), "id": format!("cl-{i:03}-00"), "created": at(2, i).to_rfc3339() }));
    }
    snapshots.push(json!({ "region": SRC, "kind": "db", "source": "db-encrypted", "id": "fleet-twin", "created": at(28, 12).to_rfc3339(), "tags": { "k": "v" } }));
    let made = moto
        .post("/_lifeboat/rds/fleet", &json!({ "instances": instances, "clusters": clusters, "snapshots": snapshots }));
    assert_eq!(made, json!({ "instances": 12, "clusters": 3, "snapshots": 254 }));

    // The same snapshot made call by call: an encrypted instance, a snapshot with the clock moved.
    let rds = moto.rds(SRC).await;
    rds.create_db_instance()
        .db_instance_identifier("api-twin-db")
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .allocated_storage(20)
        .storage_encrypted(true)
        .kms_key_id(&key)
        .send()
        .await
        .unwrap();
    taken_at(&moto, SRC, "api-twin-db", false, &[("api-twin".to_owned(), at(28, 12))], &[("k", "v")]).await;

    let listed = manual_snapshots(&rds).await;
    assert_eq!(listed.len(), 252, "250 fleet snapshots, the fleet's twin and the API's");
    for s in &listed {
        let id = s.db_snapshot_identifier().unwrap();
        let Some((db, k)) = id.rsplit_once('-').filter(|(db, _)| db.starts_with("db-0")) else { continue };
        let (i, k): (u32, u32) = (db[3..].parse().unwrap(), k.parse().unwrap());
        assert_eq!(
            seen(s),
            (
                Some(at(1 + k, i).timestamp()),
                Some(at(1 + k, i).timestamp()),
                "manual".into(),
                "available".into(),
                false,
                vec![("lifeboat:database".into(), db.to_owned()), ("n".into(), k.to_string())]
            ),
            "{id}"
        );
        assert_eq!(s.db_instance_identifier(), Some(db));
    }
    let twin = |id: &str| listed.iter().find(|s| s.db_snapshot_identifier() == Some(id)).unwrap().clone();
    let (fleet, api) = (twin("fleet-twin"), twin("api-twin"));
    assert_eq!(seen(&fleet), seen(&api));
    assert_eq!(fleet.kms_key_id(), Some(key.as_str()));
    assert_eq!((fleet.engine(), fleet.engine_version()), (api.engine(), api.engine_version()));

    // Every instance has the automated snapshot CreateDBInstance makes.
    let automated = rds.describe_db_snapshots().snapshot_type("automated").send().await.unwrap();
    assert_eq!(automated.db_snapshots().len(), 12, "11 fleet instances and the API's");

    let clusters = rds.describe_db_clusters().send().await.unwrap();
    assert!(clusters.db_clusters().iter().all(|c| c.status() == Some("available")), "{clusters:?}");
    let cluster_snaps = rds.describe_db_cluster_snapshots().snapshot_type("manual").send().await.unwrap();
    let mut times: Vec<_> =
        cluster_snaps.db_cluster_snapshots().iter().map(|s| s.snapshot_create_time().unwrap().secs()).collect();
    times.sort();
    assert_eq!(times, (0..3).map(|i| at(2, i).timestamp()).collect::<Vec<_>>());

    let replica =
        moto.rds(DR).await.describe_db_instances().db_instance_identifier("db-000-replica").send().await.unwrap();
    assert_eq!(replica.db_instances()[0].read_replica_source_db_instance_identifier(), Some(source("db-000").as_str()));
    let primary = rds.describe_db_instances().db_instance_identifier("db-000").send().await.unwrap();
    assert_eq!(
        primary.db_instances()[0].read_replica_db_instance_identifiers(),
        [format!("arn:aws:rds:{DR}:{ACCOUNT}:db:db-000-replica")]
    );

    // Through the API they act as any snapshot: tagged, copied across regions, deleted.
    let arn = fleet.db_snapshot_arn().unwrap();
    rds.add_tags_to_resource()
        .resource_name(arn)
        .tags(aws_sdk_rds::types::Tag::builder().key("added").value("later").build())
        .send()
        .await
        .unwrap();
    let tags = rds.list_tags_for_resource().resource_name(arn).send().await.unwrap();
    assert_eq!(tags.tag_list().len(), 2, "{tags:?}");
    let dr_key = kms_key(&moto, DR).await;
    let copy = moto
        .rds(DR)
        .await
        .copy_db_snapshot()
        .source_db_snapshot_identifier(arn)
        .target_db_snapshot_identifier("fleet-twin-copy")
        .kms_key_id(&dr_key)
        .send()
        .await
        .unwrap();
    let copy = copy.db_snapshot().unwrap();
    assert_eq!(copy.original_snapshot_create_time().map(|t| t.secs()), Some(at(28, 12).timestamp()));
    rds.delete_db_snapshot().db_snapshot_identifier("db-003-07").send().await.unwrap();
    assert_eq!(manual_snapshots(&rds).await.len(), 251);
}
