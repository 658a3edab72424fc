//! Test support: a real moto emulator per test, SDK configs pointed at it, and seeding helpers.
//! Each test starts its own emulator so tests share no AWS state and can run in parallel.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use aws_config::{Region, SdkConfig};
use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};
use lifeboat_core::aws::{ConfigCache, ConfigSource};
use serde_json::{json, Value};

pub mod fleet;
pub mod real_db;

pub const ACCOUNT: &str = "123456789012";

fn test_credentials() -> aws_sdk_rds::config::Credentials {
    aws_sdk_rds::config::Credentials::new("testing", "testing", None, None, "moto")
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn python() -> PathBuf {
    std::env::var_os("LIFEBOAT_PYTHON").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".venv/bin/python"))
}

pub struct Moto {
    child: Child,
    pub port: u16,
    pub endpoint: String,
    /// Whose credentials `sdk` signs with: this account's test key, or another account's (`act_as`).
    identity: std::sync::Mutex<Option<aws_sdk_rds::config::Credentials>>,
}

impl Moto {
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// `env` tunes the emulator, e.g. `MOTO_RDS_SNAPSHOT_LIMIT` to make RDS refuse for quota.
    pub fn start_with(env: &[(&str, &str)]) -> Moto {
        let py = python();
        assert!(py.exists(), "{} is missing: run scripts/setup.sh (the test command does)", py.display());
        let mut child = Command::new(py)
            .arg(repo_root().join("scripts/moto_server.py"))
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("moto stdout")).read_line(&mut line).expect("read moto port");
        let port: u16 = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("moto said {line:?}"));
        Moto { child, port, endpoint: format!("http://127.0.0.1:{port}"), identity: std::sync::Mutex::default() }
    }

    /// An SDK config as the functions build it (`sdk_loader`), pointed at this emulator, acting in
    /// `ACCOUNT` (or the account of `act_as`).
    pub async fn sdk(&self, region: &str) -> SdkConfig {
        let creds = self.identity.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        self.sdk_with(region, creds.unwrap_or_else(test_credentials)).await
    }

    async fn sdk_with(&self, region: &str, creds: aws_sdk_rds::config::Credentials) -> SdkConfig {
        lifeboat_core::aws::sdk_loader()
            .region(Region::new(region.to_owned()))
            .endpoint_url(&self.endpoint)
            .credentials_provider(creds)
            .load()
            .await
    }

    /// An SDK config signing as the functions in `cargo lambda watch` do (`FUNCTIONS_ACCESS_KEY`):
    /// for functions run in-process whose calls alone the emulator should throttle or fault.
    pub async fn functions_sdk(&self, region: &str) -> SdkConfig {
        let creds = aws_sdk_rds::config::Credentials::new(FUNCTIONS_ACCESS_KEY, "testing", None, None, "functions");
        self.sdk_with(region, creds).await
    }

    /// From now on every helper (and `sdk`) acts in `account`: a fresh account's whole stack.
    pub async fn act_as(&self, account: &str) {
        let creds = self.assumed(account).await;
        *self.identity.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(creds);
    }

    /// The credentials `act_as` signs with, as the environment variables a function reads.
    pub fn identity_env(&self) -> Vec<(&'static str, String)> {
        let creds = self.identity.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        creds.map_or_else(Vec::new, |c| {
            vec![
                ("AWS_ACCESS_KEY_ID", c.access_key_id().to_owned()),
                ("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_owned()),
                ("AWS_SESSION_TOKEN", c.session_token().unwrap_or_default().to_owned()),
            ]
        })
    }

    async fn assumed(&self, account: &str) -> aws_sdk_rds::config::Credentials {
        let sts = aws_sdk_sts::Client::new(&self.sdk_with("us-east-1", test_credentials()).await);
        let assumed = sts
            .assume_role()
            .role_arn(format!("arn:aws:iam::{account}:role/lifeboat-test"))
            .role_session_name("lifeboat-test")
            .send()
            .await
            .expect("assume role");
        let c = assumed.credentials().expect("credentials");
        aws_sdk_rds::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "assumed",
        )
    }

    /// An SDK config acting in `account`: credentials from `sts:AssumeRole` into a role there,
    /// which moto maps to that account (as AWS does).
    pub async fn sdk_as(&self, region: &str, account: &str) -> SdkConfig {
        let creds = self.assumed(account).await;
        self.sdk_with(region, creds).await
    }

    pub async fn rds(&self, region: &str) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.sdk(region).await)
    }

    /// Move the emulator's clock; it ticks on from there.
    pub fn set_clock(&self, now: DateTime<Utc>) {
        self.post("/_lifeboat/clock", &serde_json::json!({ "now": now.to_rfc3339() }));
    }

    /// Make RDS calls of `action` naming `target` fail with AWS error `code` (moto has no fault
    /// injection; scripts/moto_server.py adds it). An empty list clears them.
    pub fn set_faults(&self, faults: &[(&str, &str, &str)]) {
        let faults: Vec<Value> = faults
            .iter()
            .map(|(action, target, code)| serde_json::json!({ "action": action, "target": target, "code": code }))
            .collect();
        self.post("/_lifeboat/faults", &serde_json::json!({ "faults": faults }));
    }

    /// `GET /_lifeboat/faults`: calls, injected faults (per service:operation) and their kinds,
    /// since faults were last set.
    pub fn fault_counts(&self) -> Value {
        serde_json::from_str(&http("GET", &format!("{}/_lifeboat/faults", self.endpoint), None).body)
            .expect("the emulator's fault counts")
    }

    /// The AWS operations called since the counts were last zeroed (`/_lifeboat/faults` with no
    /// faults), each `service:Operation`, asserting every one only reads (Describe, Get, List)
    /// or starts with one of `also`; at least one was called.
    pub fn only_reads_since_zeroed(&self, also: &[&str]) -> Vec<String> {
        let calls = self.fault_counts()["calls"].clone();
        let ops: Vec<String> = calls.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        assert!(!ops.is_empty(), "{calls}");
        for op in &ops {
            let name = op.split(':').nth(1).unwrap_or(op);
            let read = ["Describe", "Get", "List"].iter().chain(also).any(|p| name.starts_with(p));
            assert!(read, "wrote: {op} ({calls})");
        }
        ops
    }

    /// GET the emulator's own API's JSON (`/_lifeboat/...`).
    pub fn get(&self, path: &str) -> Value {
        let answer = http("GET", &format!("{}{path}", self.endpoint), None);
        serde_json::from_str(&answer.body).unwrap_or_else(|e| panic!("GET {path}: {e}: {}", answer.body))
    }

    /// POST JSON to the emulator's own API (`/moto-api/...`, `/_lifeboat/...`); the answer's JSON.
    pub fn post(&self, path: &str, body: &Value) -> Value {
        let body = body.to_string();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect moto");
        write!(
            s,
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("send to moto");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("moto reply");
        assert!(reply.starts_with("HTTP/1.0 20") || reply.starts_with("HTTP/1.1 20"), "{reply}");
        reply.split_once("\r\n\r\n").and_then(|(_, body)| serde_json::from_str(body).ok()).unwrap_or_default()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The policy document as the functions read it: stored in SSM (`/lifeboat/config`, overwritten),
/// read through a `ConfigCache` like `main` builds, with `ttl` (zero re-reads on every call).
pub async fn config_in_ssm(moto: &Moto, yaml: &str, ttl: std::time::Duration) -> ConfigCache {
    put_config(moto, yaml, aws_sdk_ssm::types::ParameterType::String).await;
    let sdk = moto.sdk("us-east-1").await;
    ConfigCache::new(ConfigSource::Parameter(CONFIG_PARAM.into()), &sdk, ttl)
}

pub const CONFIG_PARAM: &str = "/lifeboat/config";

pub async fn put_config(moto: &Moto, yaml: &str, kind: aws_sdk_ssm::types::ParameterType) {
    aws_sdk_ssm::Client::new(&moto.sdk("us-east-1").await)
        .put_parameter()
        .name(CONFIG_PARAM)
        .value(yaml)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .expect("store config");
}

/// Put a snapshot in a state moto never reaches by itself (a real copy can end `failed`).
pub fn set_snapshot_status(moto: &Moto, region: &str, kind: &str, id: &str, status: &str) {
    moto.post(
        "/_lifeboat/rds/snapshot-status",
        &serde_json::json!({ "region": region, "kind": kind, "id": id, "status": status }),
    );
}

pub async fn kms_key(moto: &Moto, region: &str) -> String {
    let kms = aws_sdk_kms::Client::new(&moto.sdk(region).await);
    let key = kms.create_key().description("lifeboat DR key").send().await.expect("create key");
    key.key_metadata().and_then(|m| m.arn()).expect("key arn").to_owned()
}

pub async fn create_instance(moto: &Moto, region: &str, id: &str) {
    create_instance_tagged(moto, region, id, &[]).await
}

pub async fn create_instance_tagged(moto: &Moto, region: &str, id: &str, tag_pairs: &[(&str, &str)]) {
    create_instance_with(moto, region, id, tag_pairs, false).await
}

/// An instance encrypted with no key named: RDS's AWS managed `aws/rds` key (moto's
/// `default_kms_key_id`), whose snapshots RDS won't share.
pub async fn create_instance_under_aws_rds(moto: &Moto, region: &str, id: &str) {
    create_instance_with(moto, region, id, &[], true).await
}

async fn create_instance_with(moto: &Moto, region: &str, id: &str, tag_pairs: &[(&str, &str)], encrypted: bool) {
    moto.rds(region)
        .await
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .allocated_storage(20)
        .storage_encrypted(encrypted)
        .set_tags(Some(tags(tag_pairs)))
        .send()
        .await
        .expect("create instance");
}

pub async fn create_cluster(moto: &Moto, region: &str, id: &str) {
    create_cluster_with(moto, region, id, false).await
}

pub async fn create_cluster_with(moto: &Moto, region: &str, id: &str, encrypted: bool) {
    moto.rds(region)
        .await
        .create_db_cluster()
        .db_cluster_identifier(id)
        .storage_encrypted(encrypted)
        .engine("aurora-postgresql")
        .master_username("lifeboat")
        .master_user_password("correct-horse-battery")
        .send()
        .await
        .expect("create cluster");
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()
}

/// A manual snapshot; returns its ARN.
pub async fn snapshot(moto: &Moto, region: &str, db: &str, id: &str, tag_pairs: &[(&str, &str)]) -> String {
    let out = moto
        .rds(region)
        .await
        .create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(id)
        .set_tags(Some(tags(tag_pairs)))
        .send()
        .await
        .expect("create snapshot");
    out.db_snapshot().and_then(|s| s.db_snapshot_arn()).expect("snapshot arn").to_owned()
}

pub async fn cluster_snapshot(
    moto: &Moto,
    region: &str,
    cluster: &str,
    id: &str,
    tag_pairs: &[(&str, &str)],
) -> String {
    let out = moto
        .rds(region)
        .await
        .create_db_cluster_snapshot()
        .db_cluster_identifier(cluster)
        .db_cluster_snapshot_identifier(id)
        .set_tags(Some(tags(tag_pairs)))
        .send()
        .await
        .expect("create cluster snapshot");
    out.db_cluster_snapshot().and_then(|s| s.db_cluster_snapshot_arn()).expect("arn").to_owned()
}

/// A history: snapshots of `db` in `region` taken at the given moments (the emulator's clock is
/// moved to each, then back to now). Cluster snapshots when `cluster`. Their ARNs, in order.
pub async fn taken_at(
    moto: &Moto,
    region: &str,
    db: &str,
    cluster: bool,
    snapshots: &[(String, DateTime<Utc>)],
    tag_pairs: &[(&str, &str)],
) -> Vec<String> {
    let mut arns = Vec::new();
    for (id, at) in snapshots {
        moto.set_clock(*at);
        arns.push(if cluster {
            cluster_snapshot(moto, region, db, id, tag_pairs).await
        } else {
            snapshot(moto, region, db, id, tag_pairs).await
        });
    }
    moto.set_clock(Utc::now());
    arns
}

/// DR copies of `database` in `region` as the copier makes them (Lifeboat's tags, a source ARN),
/// taken at the given moments, from a stand-in database there (`seed`, or `seed-cluster`). What
/// a drill or a restore-latest-copy failover restores. Their ARNs.
pub async fn dr_copies(
    moto: &Moto,
    region: &str,
    database: &str,
    cluster: bool,
    copies: &[(&str, DateTime<Utc>)],
) -> Vec<String> {
    let seed = if cluster { "seed-cluster" } else { "seed" };
    let rds = moto.rds(region).await;
    let exists = if cluster {
        rds.describe_db_clusters().db_cluster_identifier(seed).send().await.is_ok()
    } else {
        rds.describe_db_instances().db_instance_identifier(seed).send().await.is_ok()
    };
    if !exists {
        if cluster {
            create_cluster(moto, region, seed).await
        } else {
            create_instance(moto, region, seed).await
        }
    }
    let mut arns = Vec::new();
    for (id, at) in copies {
        let kind = if cluster { "cluster-snapshot" } else { "snapshot" };
        let source = format!("arn:aws:rds:us-east-1:{ACCOUNT}:{kind}:{}", id.trim_start_matches("lifeboat-"));
        let tags =
            [("lifeboat:managed", "true"), ("lifeboat:database", database), ("lifeboat:source-arn", source.as_str())];
        arns.extend(taken_at(moto, region, seed, cluster, &[((*id).to_owned(), *at)], &tags).await);
    }
    arns
}

/// What a region holds, read straight from the emulator: (identifier, status, kms key, tags), sorted.
/// Automated snapshots included: listing without `SnapshotType` returns both kinds.
pub type SeenSnapshot = (String, String, Option<String>, Vec<(String, String)>);
pub type Seen = Vec<SeenSnapshot>;

fn seen_tags(list: &[Tag]) -> Vec<(String, String)> {
    let mut t: Vec<(String, String)> = list
        .iter()
        .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
        .collect();
    t.sort();
    t
}

pub async fn db_snapshots(moto: &Moto, region: &str) -> Seen {
    let out = moto.rds(region).await.describe_db_snapshots().send().await.expect("describe");
    let mut seen: Seen = out
        .db_snapshots()
        .iter()
        .map(|s| {
            (
                s.db_snapshot_identifier().unwrap_or_default().to_owned(),
                s.status().unwrap_or_default().to_owned(),
                s.kms_key_id().map(str::to_owned),
                seen_tags(s.tag_list()),
            )
        })
        .collect();
    seen.sort();
    seen
}

pub async fn cluster_snapshots(moto: &Moto, region: &str) -> Seen {
    let out = moto.rds(region).await.describe_db_cluster_snapshots().send().await.expect("describe");
    let mut seen: Seen = out
        .db_cluster_snapshots()
        .iter()
        .map(|s| {
            (
                s.db_cluster_snapshot_identifier().unwrap_or_default().to_owned(),
                s.status().unwrap_or_default().to_owned(),
                s.kms_key_id().map(str::to_owned),
                seen_tags(s.tag_list()),
            )
        })
        .collect();
    seen.sort();
    seen
}

/// Every snapshot of both kinds in these regions: for "changed nothing" assertions.
pub async fn everything(moto: &Moto, regions: &[&str]) -> Vec<(String, Seen, Seen)> {
    let mut all = Vec::new();
    for r in regions {
        all.push((r.to_string(), db_snapshots(moto, r).await, cluster_snapshots(moto, r).await));
    }
    all
}

/// A sample payload from `events/`, pointed at `arn` when given.
pub fn event(file: &str, arn: Option<&str>) -> Value {
    let path = repo_root().join("events").join(file);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("event file")).expect("event json");
    if let Some(arn) = arn {
        v["detail"]["SourceArn"] = arn.into();
        v["resources"] = serde_json::json!([arn]);
    }
    v
}

/// The incident table as the template creates it (partition key `pk`).
pub async fn incidents_table(moto: &Moto, region: &str) -> String {
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    let ddb = aws_sdk_dynamodb::Client::new(&moto.sdk(region).await);
    ddb.create_table()
        .table_name("lifeboat-incidents")
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().expect("key"))
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("create table");
    "lifeboat-incidents".to_owned()
}

/// One item as DynamoDB holds it, attribute by attribute, as JSON (for people to read).
pub async fn raw_item(moto: &Moto, region: &str, table: &str, pk: &str) -> Value {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    fn json(v: &A) -> Value {
        match v {
            A::S(s) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| Value::String(s.clone())),
            A::N(n) => n.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::String(n.clone())),
            A::Bool(b) => Value::Bool(*b),
            A::Ss(l) => Value::from(l.clone()),
            A::L(l) => Value::Array(l.iter().map(json).collect()),
            A::M(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), json(v))).collect()),
            other => Value::String(format!("{other:?}")),
        }
    }
    let ddb = aws_sdk_dynamodb::Client::new(&moto.sdk(region).await);
    let out = ddb.get_item().table_name(table).key("pk", A::S(pk.to_owned())).send().await.expect("get item");
    let item: std::collections::BTreeMap<String, Value> =
        out.item().map(|i| i.iter().map(|(k, v)| (k.clone(), json(v))).collect()).unwrap_or_default();
    serde_json::to_value(item).unwrap_or_default()
}

/// Every item in the table: for "wrote nothing" assertions.
pub async fn table_items(moto: &Moto, region: &str, table: &str) -> Vec<String> {
    let ddb = aws_sdk_dynamodb::Client::new(&moto.sdk(region).await);
    let out = ddb.scan().table_name(table).send().await.expect("scan");
    let mut items: Vec<String> =
        out.items().iter().map(|i| format!("{:?}", i.iter().collect::<std::collections::BTreeMap<_, _>>())).collect();
    items.sort();
    items
}

/// An SNS topic with an SQS queue subscribed: moto keeps no readable record of SNS publishes once
/// RDS resources exist, so tests read what was published from the queue, as a subscriber would.
pub async fn topic_with_queue(moto: &Moto, region: &str) -> (String, String) {
    let sdk = moto.sdk(region).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let topic = sns.create_topic().name("lifeboat-incidents").send().await.expect("topic");
    let topic_arn = topic.topic_arn().expect("topic arn").to_owned();
    let queue_url = subscribed_queue(moto, region, &topic_arn, "lifeboat-inbox", None).await;
    (topic_arn, queue_url)
}

/// The evidence bucket as the template makes it: versioned, with Object Lock (compliance mode, a
/// day), so a record written twice would show as a second version. Its name.
pub async fn evidence_bucket(moto: &Moto, region: &str) -> String {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, CreateBucketConfiguration, DefaultRetention, ObjectLockConfiguration,
        ObjectLockEnabled, ObjectLockRetentionMode, ObjectLockRule,
    };
    let s3 = aws_sdk_s3::Client::new(&moto.sdk(region).await);
    let name = format!("lifeboat-evidence-{region}");
    let mut create = s3.create_bucket().bucket(&name).object_lock_enabled_for_bucket(true);
    if region != "us-east-1" {
        create = create.create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build(),
        );
    }
    if let Err(e) = create.send().await {
        // A second bed in the region (a restarted stack) finds the bucket made.
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or_default().to_owned();
        assert!(code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists", "evidence bucket: {e:?}");
        return name;
    }
    let rule = ObjectLockRule::builder()
        .default_retention(DefaultRetention::builder().mode(ObjectLockRetentionMode::Compliance).days(1).build())
        .build();
    s3.put_object_lock_configuration()
        .bucket(&name)
        .object_lock_configuration(
            ObjectLockConfiguration::builder().object_lock_enabled(ObjectLockEnabled::Enabled).rule(rule).build(),
        )
        .send()
        .await
        .expect("object lock");
    name
}

/// Every version of every object in the evidence bucket, as (key, body): a record written twice
/// shows twice.
pub async fn evidence(moto: &Moto, region: &str, bucket: &str) -> Vec<(String, String)> {
    let s3 = aws_sdk_s3::Client::new(&moto.sdk(region).await);
    let versions = s3.list_object_versions().bucket(bucket).send().await.expect("list versions");
    let mut out = Vec::new();
    for v in versions.versions() {
        let (Some(key), Some(id)) = (v.key(), v.version_id()) else { continue };
        let got = s3.get_object().bucket(bucket).key(key).version_id(id).send().await.expect("get object");
        let body = got.body.collect().await.expect("body").into_bytes();
        out.push((key.to_owned(), String::from_utf8_lossy(&body).into_owned()));
    }
    out.sort();
    out
}

/// `name` as an alias A record to a load balancer: a record a CNAME UPSERT can't change.
pub fn alias_record(name: &str) -> aws_sdk_route53::types::ResourceRecordSet {
    use aws_sdk_route53::types::{AliasTarget, ResourceRecordSet, RrType};
    let target = AliasTarget::builder()
        .hosted_zone_id("Z35SXDOTRQ7X7K")
        .dns_name("lb-1.us-east-1.elb.amazonaws.com")
        .evaluate_target_health(false)
        .build()
        .expect("alias target");
    ResourceRecordSet::builder().name(name).r#type(RrType::A).alias_target(target).build().expect("alias record")
}

/// The IAM statements template.yaml gives `function`'s role, as deployed in `region` with the
/// parameters' defaults: `!Sub` filled in, `!GetAtt`s as this account's ARNs, `!If` branches
/// taken as if their condition held. Each statement with its `Sid`.
pub fn template_statements(function: &str, region: &str) -> Vec<Value> {
    let policies = resolved_at(&["Resources", function, "Properties", "Policies"], region);
    policies.as_array().into_iter().flatten().filter_map(|p| p["Statement"].as_array()).flatten().cloned().collect()
}

/// A managed policy's statements (`OperatorReadOnlyPolicy`, `ApproverPolicy`), resolved as
/// `template_statements` resolves a function's.
pub fn managed_policy_statements(policy: &str, region: &str) -> Vec<Value> {
    let doc = resolved_at(&["Resources", policy, "Properties", "PolicyDocument"], region);
    doc["Statement"].as_array().cloned().unwrap_or_default()
}

fn resolved_at(path: &[&str], region: &str) -> Value {
    use serde_yaml_ng::Value as Y;
    fn lambda_arn(name: &str, region: &str) -> Option<String> {
        let text = std::fs::read_to_string(repo_root().join("template.yaml")).ok()?;
        let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).ok()?;
        let function = template["Resources"][name]["Properties"]["FunctionName"].as_str()?;
        Some(format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{function}"))
    }
    fn resolve(v: &Y, region: &str) -> Value {
        match v {
            Y::Tagged(t) if t.tag == "Sub" => {
                // `!Sub [text, {Var: ...}]`: a variable of its own stands for any value.
                let (text, vars) = match &t.value {
                    Y::Sequence(l) => {
                        (l.first().and_then(Y::as_str).unwrap_or_default(), l.get(1).and_then(Y::as_mapping))
                    }
                    v => (v.as_str().unwrap_or_default(), None),
                };
                let mut text = text.to_owned();
                for (k, _) in vars.into_iter().flatten() {
                    text = text.replace(&format!("${{{}}}", k.as_str().unwrap_or_default()), "*");
                }
                json!(text
                    .replace("${AWS::Partition}", "aws")
                    .replace("${AWS::Region}", region)
                    .replace("${AWS::AccountId}", ACCOUNT)
                    .replace("${ConfigParameterName}", "/lifeboat/config")
                    .replace("${ApprovalSecretParameterName}", APPROVAL_KEY_PARAM)
                    // The template's default (the parameters failover-steps may write).
                    .replace("${EndpointParameterPattern}", "/*/db-endpoint")
                    .replace("${ValidatorDbUser}", "lifeboat_validator")
                    .replace("${EvidenceBucket.Arn}", "arn:aws:s3:::lifeboat-evidence"))
            }
            Y::Tagged(t) if t.tag == "GetAtt" => {
                let att = t.value.as_str().unwrap_or("x");
                match att.strip_suffix(".Arn").and_then(|name| lambda_arn(name, region)) {
                    Some(function) => json!(function),
                    None => json!(format!("arn:aws:dynamodb:{region}:{ACCOUNT}:table/{att}")),
                }
            }
            Y::Tagged(t) if t.tag == "Ref" => json!("*"),
            Y::Tagged(t) if t.tag == "If" => {
                t.value.as_sequence().and_then(|l| l.get(1)).map_or(Value::Null, |b| resolve(b, region))
            }
            Y::Tagged(t) => resolve(&t.value, region),
            Y::Mapping(m) => Value::Object(
                m.iter().map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), resolve(v, region))).collect(),
            ),
            Y::Sequence(l) => Value::Array(l.iter().map(|x| resolve(x, region)).collect()),
            Y::String(s) => json!(s),
            Y::Bool(b) => json!(b.to_string()),
            Y::Number(n) => json!(n.to_string()),
            Y::Null => Value::Null,
        }
    }
    let text = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    let template: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("template.yaml parses");
    resolve(path.iter().fold(&template, |v, k| &v[*k]), region)
}

/// A role in the emulator's IAM with `statements` as its one inline policy (replaced when it
/// exists): the failover-steps role as the template makes it, for readiness to simulate. Its ARN.
pub async fn role_with(moto: &Moto, name: &str, statements: &[Value]) -> String {
    let iam = aws_sdk_iam::Client::new(&moto.sdk("us-east-1").await);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let arn = match iam.get_role().role_name(name).send().await {
        Ok(r) => r.role().map(|r| r.arn().to_owned()).expect("role"),
        Err(_) => {
            let made = iam.create_role().role_name(name).assume_role_policy_document(trust.to_string()).send().await;
            made.expect("create role").role().map(|r| r.arn().to_owned()).expect("role arn")
        }
    };
    let doc = json!({"Version": "2012-10-17", "Statement": statements});
    iam.put_role_policy()
        .role_name(name)
        .policy_name("steps")
        .policy_document(doc.to_string())
        .send()
        .await
        .expect("policy");
    arn
}

/// A queue subscribed to `topic_arn`, with an SNS filter policy when given.
pub async fn subscribed_queue(moto: &Moto, region: &str, topic_arn: &str, name: &str, filter: Option<Value>) -> String {
    let sdk = moto.sdk(region).await;
    let sns = aws_sdk_sns::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs.create_queue().queue_name(name).send().await.expect("queue");
    let queue_url = queue.queue_url().expect("queue url").to_owned();
    let queue_arn = format!("arn:aws:sqs:{region}:{ACCOUNT}:{name}");
    let mut sub = sns.subscribe().topic_arn(topic_arn).protocol("sqs").endpoint(queue_arn);
    if let Some(f) = filter {
        sub = sub.attributes("FilterPolicy", f.to_string());
    }
    sub.send().await.expect("subscribe");
    queue_url
}

/// One notification as an SQS subscriber receives it.
#[derive(Debug, Clone)]
pub struct Notice {
    pub subject: String,
    /// What a person reads: the facts' `text`, or the raw message.
    pub text: String,
    /// The raw SNS message (for SQS subscribers: the facts JSON).
    pub raw: String,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// (subject, text) of every notification waiting in the queue, consumed.
pub async fn notifications(moto: &Moto, region: &str, queue_url: &str) -> Vec<(String, String)> {
    notices(moto, region, queue_url).await.into_iter().map(|n| (n.subject, n.text)).collect()
}

/// Every notification waiting in the queue, consumed.
pub async fn notices(moto: &Moto, region: &str, queue_url: &str) -> Vec<Notice> {
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk(region).await);
    let mut out = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(queue_url).max_number_of_messages(10).send().await.expect("receive");
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            let envelope: Value = serde_json::from_str(m.body().unwrap_or_default()).expect("SNS envelope");
            let raw = envelope["Message"].as_str().unwrap_or_default().to_owned();
            let text = serde_json::from_str::<Value>(&raw)
                .ok()
                .and_then(|facts| facts["text"].as_str().map(str::to_owned))
                .unwrap_or_else(|| raw.clone());
            let attributes = envelope["MessageAttributes"]
                .as_object()
                .map(|o| {
                    o.iter().map(|(k, v)| (k.clone(), v["Value"].as_str().unwrap_or_default().to_owned())).collect()
                })
                .unwrap_or_default();
            out.push(Notice {
                subject: envelope["Subject"].as_str().unwrap_or_default().to_owned(),
                text,
                raw,
                attributes,
            });
            sqs.delete_message()
                .queue_url(queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete message");
        }
    }
}

/// The access key the binaries in `cargo lambda watch` sign with (the tests' own calls sign with
/// `testing`): a fault with `"caller": FUNCTIONS_ACCESS_KEY` hits the functions, not the checks.
pub const FUNCTIONS_ACCESS_KEY: &str = "lifeboat-functions";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn cargo_lambda() -> PathBuf {
    repo_root().join(".venv/bin/cargo-lambda")
}

/// `cargo lambda watch`: the Lambda runtime API emulator serving every binary of the workspace
/// (built on first invoke) and their Function URLs at `/lambda-url/<function>/`.
pub struct Watch {
    child: Child,
    log: PathBuf,
    pub port: String,
}

impl Watch {
    /// Started with the SDK pointed at `moto` and the given environment; its log goes to `dir`.
    pub fn start(moto: &Moto, port: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> Watch {
        use std::os::unix::process::CommandExt;
        let log = dir.join("watch.log");
        // The benchmarks time release builds (LIFEBOAT_WATCH_RELEASE); the tests, one debug build.
        let release = std::env::var_os("LIFEBOAT_WATCH_RELEASE").map(|_| "--release");
        let child = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", port])
            .args(release)
            .current_dir(repo_root())
            .env("AWS_ENDPOINT_URL", &moto.endpoint)
            .env("AWS_ACCESS_KEY_ID", FUNCTIONS_ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            // A file, not a pipe: nobody drains a pipe while the test waits, and a full one would stall watch.
            .stderr(std::fs::File::create(&log).expect("watch log"))
            .process_group(0)
            .spawn()
            .expect("start cargo lambda watch");
        Watch { child, log, port: port.to_owned() }
    }

    fn cargo_lambda_invoke(&self, function: &str, payload: &std::path::Path) -> std::process::Output {
        Command::new(cargo_lambda())
            .args(["lambda", "invoke", function, "-A", "127.0.0.1", "-P", &self.port, "-o", "json", "--data-file"])
            .arg(payload)
            .current_dir(repo_root())
            .output()
            .expect("run cargo lambda invoke")
    }

    /// Panics with watch's log if it died.
    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            panic!("cargo lambda watch exited ({status}): {log}");
        }
    }

    /// `cargo lambda invoke`; the first invoke of a function compiles and starts it, so retry
    /// until the runtime answers (or `watch` dies).
    pub fn invoke(&mut self, function: &str, payload: &std::path::Path) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let out = self.cargo_lambda_invoke(function, payload);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).to_string();
            }
            self.check_alive();
            assert!(
                std::time::Instant::now() < deadline,
                "invoke kept failing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_secs(2));
        }
    }

    /// One invoke of a function already running, expected to fail: what it said.
    pub fn invoke_failing(&self, function: &str, payload: &std::path::Path) -> String {
        let out = self.cargo_lambda_invoke(function, payload);
        assert!(!out.status.success(), "{function} should have failed: {}", String::from_utf8_lossy(&out.stdout));
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }

    /// The log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // cargo lambda starts `cargo run`, which starts the function: end the whole group.
        let _ = Command::new("kill").arg("--").arg(format!("-{}", self.child.id())).status();
        let _ = self.child.wait();
    }
}

/// What an HTTP request got: status and body.
pub struct Http {
    pub status: u16,
    pub body: String,
}

/// A request with curl, as a browser or a mail scanner would make it (a form POST with `form`).
pub fn http(method: &str, url: &str, form: Option<&str>) -> Http {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "--max-time", "300", "-o", "-", "-w", "\n%{http_code}", "-X", method]);
    if let Some(f) = form {
        cmd.args(["-H", "content-type: application/x-www-form-urlencoded", "--data-raw", f]);
    }
    let out = cmd.arg(url).output().expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    Http { status: code.trim().parse().unwrap_or(0), body: body.to_owned() }
}

/// The approval page's form POSTed to `link` (the link's own query, then `fields`, e.g.
/// `approver=Alice&database=orders-prod`), as a person's browser sends it.
pub fn post_form(link: &str, fields: &str) -> Http {
    let query = link.split_once('?').map_or("", |(_, q)| q);
    http("POST", link, Some(&format!("{query}&{fields}")))
}

/// The rest of the line starting with `prefix` (`Approve: `, `Reject: `).
pub fn line_after<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(prefix)).unwrap_or_else(|| panic!("no `{prefix}` line in:\n{text}"))
}

/// A cross-region read replica of `source_arn`.
pub async fn read_replica(moto: &Moto, region: &str, id: &str, source_arn: &str) {
    moto.rds(region)
        .await
        .create_db_instance_read_replica()
        .db_instance_identifier(id)
        .source_db_instance_identifier(source_arn)
        .db_instance_class("db.t3.micro")
        .send()
        .await
        .expect("cross-region replica");
}

/// What RDS reports each minute for a read replica: `ReplicaLag` of `seconds`, `ago` seconds ago
/// (the emulator answers CloudWatch's CBOR calls on moto's backend).
pub async fn replica_lag(moto: &Moto, region: &str, instance: &str, seconds: f64, ago: i64) {
    rds_metric(moto, region, "ReplicaLag", &[("DBInstanceIdentifier", instance)], seconds, ago).await
}

/// One datapoint of `AWS/RDS` `metric` with `dimensions`, `ago` seconds before now, as RDS
/// reports them (e.g. a global secondary's `AuroraGlobalDBReplicationLag` by
/// `DBClusterIdentifier`, in milliseconds).
pub async fn rds_metric(moto: &Moto, region: &str, metric: &str, dimensions: &[(&str, &str)], value: f64, ago: i64) {
    use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
    let point = MetricDatum::builder()
        .metric_name(metric)
        .set_dimensions(Some(dimensions.iter().map(|(n, v)| Dimension::builder().name(*n).value(*v).build()).collect()))
        .timestamp(aws_sdk_cloudwatch::primitives::DateTime::from_secs(Utc::now().timestamp() - ago))
        .value(value)
        .build();
    aws_sdk_cloudwatch::Client::new(&moto.sdk(region).await)
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(point)
        .send()
        .await
        .expect(metric);
}

/// Runs a round trip's future to its end on a thread of its own with a 32 MB stack: one that
/// holds every function's state across its awaits outgrows a test thread's 2 MB in a debug
/// build. A panic inside is the test's.
pub fn on_a_big_stack<F: std::future::Future<Output = ()>>(round_trip: impl FnOnce() -> F + Send + 'static) {
    let run = std::thread::Builder::new()
        .stack_size(32 << 20)
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build();
            rt.expect("runtime").block_on(round_trip())
        })
        .expect("thread");
    if let Err(panic) = run.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A private hosted zone's id (without `/hostedzone/`).
pub async fn hosted_zone(moto: &Moto, name: &str) -> String {
    let r53 = aws_sdk_route53::Client::new(&moto.sdk("us-east-1").await);
    let zone = r53.create_hosted_zone().name(name).caller_reference(name).send().await.expect("zone");
    zone.hosted_zone().map(|z| z.id().trim_start_matches("/hostedzone/").to_owned()).expect("zone id")
}

pub async fn cname(moto: &Moto, zone: &str, name: &str) -> Option<String> {
    use aws_sdk_route53::types::RrType;
    let r53 = aws_sdk_route53::Client::new(&moto.sdk("us-east-1").await);
    let out = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.expect("list records");
    out.resource_record_sets()
        .iter()
        .find(|s| s.name().trim_end_matches('.') == name && s.r#type() == &RrType::Cname)
        .and_then(|s| s.resource_records().first())
        .map(|r| r.value().to_owned())
}

pub async fn set_cname(moto: &Moto, zone: &str, name: &str, target: &str) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, RrType};
    let r53 = aws_sdk_route53::Client::new(&moto.sdk("us-east-1").await);
    let set = ResourceRecordSet::builder()
        .name(name)
        .r#type(RrType::Cname)
        .ttl(60)
        .resource_records(ResourceRecord::builder().value(target).build().expect("record"))
        .build()
        .expect("record set");
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().expect("change");
    let batch = ChangeBatch::builder().changes(change).build().expect("batch");
    r53.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send().await.expect("seed record");
}

/// The real `lifeboat` binary (cli/), built once per test process the way the README builds it.
pub fn lifeboat_cli() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let ok = Command::new(env!("CARGO"))
                .args(["build", "--quiet", "-p", "lifeboat-cli"])
                .current_dir(repo_root())
                .status()
                .expect("cargo build -p lifeboat-cli");
            assert!(ok.success(), "lifeboat-cli did not build");
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from);
            target.join("debug/lifeboat")
        })
        .clone()
}

/// What a run of `lifeboat` printed, and its exit code.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// `lifeboat args` against `moto` as an operator (its own access key), `env` on top.
fn lifeboat_command(moto: &Moto, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new(lifeboat_cli());
    c.args(args)
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ACCESS_KEY_ID", "lifeboat-operator")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("AWS_PROFILE")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    c
}

/// `lifeboat args` left running (a `--follow`), its output piped.
pub fn lifeboat_spawn(moto: &Moto, env: &[(&str, &str)], args: &[&str]) -> Child {
    lifeboat_command(moto, env, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn lifeboat")
}

/// Run `lifeboat args` against `moto` as an operator (its own access key), `env` on top.
pub fn lifeboat(moto: &Moto, env: &[(&str, &str)], args: &[&str]) -> Ran {
    let out = lifeboat_command(moto, env, args).output().expect("run lifeboat");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A routing control's ARN in our moto's ARC cluster (`/_lifeboat/arc`).
pub fn routing_control(id: &str) -> String {
    format!("arn:aws:route53-recovery-control::{ACCOUNT}:controlpanel/lifeboat/routingcontrol/{id}")
}

/// The DNS a data-plane failover moves, as people set it up beforehand: `record` a Route 53
/// failover pair, PRIMARY → `primary` guarded by the routing control `east` (On), SECONDARY →
/// `secondary` guarded by `west` (Off), with the ARC safety rule "at least one On".
pub async fn failover_pair(moto: &Moto, zone: &str, record: &str, primary: &str, secondary: &str) {
    use aws_sdk_route53::types::{
        Change, ChangeAction, ChangeBatch, HealthCheckConfig, HealthCheckType, ResourceRecord, ResourceRecordSet,
        ResourceRecordSetFailover, RrType,
    };
    let (east, west) = (routing_control("east"), routing_control("west"));
    moto.post(
        "/_lifeboat/arc",
        &serde_json::json!({"controls": [{"arn": east, "state": "On"}, {"arn": west, "state": "Off"}], "at_least_one_on": [[east, west]]}),
    );
    let r53 = aws_sdk_route53::Client::new(&moto.sdk("us-east-1").await);
    let mut changes = Vec::new();
    for (role, control, target) in
        [(ResourceRecordSetFailover::Primary, &east, primary), (ResourceRecordSetFailover::Secondary, &west, secondary)]
    {
        let config = HealthCheckConfig::builder()
            .r#type(HealthCheckType::RecoveryControl)
            .routing_control_arn(control)
            .build()
            .expect("health check config");
        let check = r53
            .create_health_check()
            .caller_reference(control)
            .health_check_config(config)
            .send()
            .await
            .expect("health check");
        let id = check.health_check().map(|h| h.id().to_owned()).expect("health check id");
        let set = ResourceRecordSet::builder()
            .name(record)
            .r#type(RrType::Cname)
            .ttl(60)
            .set_identifier(role.as_str())
            .failover(role)
            .health_check_id(id)
            .resource_records(ResourceRecord::builder().value(target).build().expect("record"))
            .build()
            .expect("record set");
        changes.push(Change::builder().action(ChangeAction::Create).resource_record_set(set).build().expect("change"));
    }
    let batch = ChangeBatch::builder().set_changes(Some(changes)).build().expect("batch");
    r53.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send().await.expect("failover pair");
}

/// What a person does before a failback by routing controls: point the pair's PRIMARY record
/// (the home region's) at `target`, keeping its set identifier, role and health check.
pub async fn repoint_primary(moto: &Moto, zone: &str, record: &str, target: &str) {
    use aws_sdk_route53::types::{Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSetFailover};
    let r53 = aws_sdk_route53::Client::new(&moto.sdk("us-east-1").await);
    let sets = r53.list_resource_record_sets().hosted_zone_id(zone).send().await.expect("record sets");
    let primary = sets
        .resource_record_sets()
        .iter()
        .find(|s| s.name().trim_end_matches('.') == record && s.failover() == Some(&ResourceRecordSetFailover::Primary))
        .expect("the pair's PRIMARY record")
        .clone();
    let mut set = primary;
    set.resource_records = Some(vec![ResourceRecord::builder().value(target).build().expect("record")]);
    let change = Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().expect("change");
    let batch = ChangeBatch::builder().changes(change).build().expect("batch");
    r53.change_resource_record_sets().hosted_zone_id(zone).change_batch(batch).send().await.expect("UPSERT PRIMARY");
}

/// What Route 53's name servers answer for `name` now (our moto's `/_lifeboat/route53/resolve`).
pub fn resolve(moto: &Moto, name: &str) -> Option<String> {
    let answer = http("GET", &format!("{}/_lifeboat/route53/resolve?name={name}", moto.endpoint), None);
    let v: Value = serde_json::from_str(&answer.body).expect("resolve answer");
    v["value"].as_str().map(str::to_owned)
}

/// A state machine of infra/ that moto runs itself, `${Placeholder}`s replaced by the ARNs of
/// moto Lambda functions named like our binaries (moto must have been started with
/// LIFEBOAT_LAMBDA_FORWARD, so its Lambda tasks reach `cargo lambda watch`).
pub async fn state_machine(moto: &Moto, name: &str, asl: &str, functions: &[(&str, &str)]) -> String {
    state_machine_in(moto, "us-east-1", name, asl, functions).await
}

/// `state_machine` in `region`, its functions too.
pub async fn state_machine_in(moto: &Moto, region: &str, name: &str, asl: &str, functions: &[(&str, &str)]) -> String {
    moto.post("/moto-api/config", &serde_json::json!({"stepfunctions": {"execute_state_machine": true}}));
    let names: Vec<&str> = functions.iter().map(|(_, f)| *f).collect();
    let arns = moto.post("/_lifeboat/lambda/functions", &serde_json::json!({"region": region, "names": names}));
    let mut definition = std::fs::read_to_string(repo_root().join(asl)).expect("state machine definition");
    for (placeholder, function) in functions {
        let arn = arns["arns"][function].as_str().unwrap_or_else(|| panic!("no {function} in {arns}"));
        definition = definition.replace(&format!("${{{placeholder}}}"), arn);
    }
    create_machine(moto, region, name, &definition).await
}

async fn create_machine(moto: &Moto, region: &str, name: &str, definition: &str) -> String {
    aws_sdk_sfn::Client::new(&moto.sdk(region).await)
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/lifeboat-test"))
        .send()
        .await
        .expect("state machine")
        .state_machine_arn()
        .to_owned()
}

/// A state machine moto only records executions of (its one state waits an hour): for tests that
/// look at what was started, not at what runs. Its ARN.
pub async fn idle_machine(moto: &Moto, region: &str, name: &str) -> String {
    let waits = r#"{"StartAt":"Wait","States":{"Wait":{"Type":"Wait","Seconds":3600,"End":true}}}"#;
    create_machine(moto, region, name, waits).await
}

/// An Aurora cluster's instance `id` (the cluster exists).
pub async fn cluster_instance(moto: &Moto, region: &str, cluster: &str, id: &str) {
    moto.rds(region)
        .await
        .create_db_instance()
        .db_instance_identifier(id)
        .db_cluster_identifier(cluster)
        .engine("aurora-postgresql")
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .expect("cluster instance");
}

/// orders-prod protected by a promote-replica failover to orders-replica in us-west-2, approval
/// required, writing `ORDERS_ENDPOINT_PARAM`; `extra` adds failover lines (`triggers`, `dns`),
/// each indented six spaces and ending with a newline.
pub fn orders_failover_yaml(extra: &str) -> String {
    format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:{ACCOUNT}:db:orders-replica\n      approval: required\n      endpoint_parameter: {ORDERS_ENDPOINT_PARAM}\n{extra}"
    )
}

/// The approval links' signing key, a SecureString in `region` (`APPROVAL_KEY_PARAM`).
pub async fn approval_key(moto: &Moto, region: &str, key: &str) {
    aws_sdk_ssm::Client::new(&moto.sdk(region).await)
        .put_parameter()
        .name(APPROVAL_KEY_PARAM)
        .value(key)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .expect("approval key");
}

/// How an execution ended (status, output), waiting up to `wait`.
pub async fn execution_ends(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
    watch: &Watch,
    wait: std::time::Duration,
) -> (String, Value) {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let d = sfn.describe_execution().execution_arn(arn).send().await.expect("describe execution");
        let status = d.status().as_str().to_owned();
        if status != "RUNNING" {
            let output = d.output().and_then(|o| serde_json::from_str(o).ok()).unwrap_or(Value::Null);
            return (status, output);
        }
        assert!(std::time::Instant::now() < deadline, "{arn} still running\n{}", watch.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// What DNS and the endpoint parameter name before a failover of `orders_with_replica`.
pub const ORDERS_PRIMARY: &str = "orders-prod.aaaaaaaaaa.us-east-1.rds.amazonaws.com";
/// ... and after it: moto's endpoint of the promoted replica.
pub const ORDERS_REPLICA: &str = "orders-replica.aaaaaaaaaa.us-west-2.rds.amazonaws.com";
/// The endpoint parameter a failover of `orders_with_replica` writes.
pub const ORDERS_ENDPOINT_PARAM: &str = "/orders/prod/db-endpoint";

/// A primary in us-east-1 with its read replica in us-west-2, and what a failover moves: `record`
/// in `zone` and the SSM `parameter`, both naming `primary_endpoint`. The primary exists already
/// when `source` is None.
pub struct Replicated<'a> {
    pub source: Option<&'a str>,
    pub primary: &'a str,
    pub replica: &'a str,
    pub zone: &'a str,
    pub record: &'a str,
    pub primary_endpoint: &'a str,
    pub parameter: &'a str,
}

pub async fn with_replica(moto: &Moto, w: Replicated<'_>) {
    if let Some(source) = w.source {
        create_instance(moto, "us-east-1", source).await;
    }
    read_replica(moto, "us-west-2", w.replica, &format!("arn:aws:rds:us-east-1:{ACCOUNT}:db:{}", w.primary)).await;
    set_cname(moto, w.zone, w.record, w.primary_endpoint).await;
    aws_sdk_ssm::Client::new(&moto.sdk("us-east-1").await)
        .put_parameter()
        .name(w.parameter)
        .value(w.primary_endpoint)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .expect("endpoint parameter");
}

/// orders-prod in us-east-1, its read replica orders-replica in us-west-2, and what a failover
/// moves: `db.orders.internal` and `ORDERS_ENDPOINT_PARAM`, both naming the primary. The zone id.
pub async fn orders_with_replica(moto: &Moto) -> String {
    let zone = hosted_zone(moto, "orders.internal").await;
    let world = Replicated {
        source: Some("orders-prod"),
        primary: "orders-prod",
        replica: "orders-replica",
        zone: &zone,
        record: "db.orders.internal",
        primary_endpoint: ORDERS_PRIMARY,
        parameter: ORDERS_ENDPOINT_PARAM,
    };
    with_replica(moto, world).await;
    zone
}

/// The endpoint parameter's value now.
pub async fn orders_endpoint(moto: &Moto) -> Option<String> {
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk("us-east-1").await);
    let got = ssm.get_parameter().name(ORDERS_ENDPOINT_PARAM).send().await.expect("endpoint parameter");
    got.parameter().and_then(|p| p.value()).map(str::to_owned)
}

/// The total of one of `fault_counts`' maps (`calls`, `injected`).
pub fn summed(counts: &Value, key: &str) -> u64 {
    counts[key].as_object().map_or(0, |o| o.values().filter_map(Value::as_u64).sum())
}

/// What an approved promote-replica failover leaves on its incident's timeline, in order.
pub const FAILOVER_TIMELINE: [&str; 11] = [
    "declared",
    "step:preflight",
    "status:awaiting-approval",
    "status:recovering",
    "request:act",
    "step:act",
    "step:available",
    "step:dns",
    "step:endpoint",
    "step:verified",
    "status:resolved",
];

/// The approval key's SSM parameter in the failover bed.
pub const APPROVAL_KEY_PARAM: &str = "/lifeboat/approval-key";

/// Everything a failover or a drill needs running locally: the approval key in SSM, both state
/// machines in moto's interpreter, and `cargo lambda watch` serving the binaries (moto must have
/// been started with `LIFEBOAT_LAMBDA_FORWARD` pointing at `port`). The config is read from
/// `config` (a file) when given, else from SSM `/lifeboat/config`.
pub struct RecoveryBed {
    pub watch: Watch,
    pub machine: String,
    pub drill_machine: String,
    pub approval_url: String,
    pub dir: PathBuf,
    /// The evidence bucket the functions write to.
    pub evidence: String,
}

impl RecoveryBed {
    pub async fn start(moto: &Moto, port: &str, table: &str, topic: &str, config: Option<&str>) -> RecoveryBed {
        RecoveryBed::start_in(moto, "us-east-1", port, table, topic, config).await
    }

    /// The stack as deployed in `region`: its functions, state machines, approval key and
    /// clients there (`table` and `topic` must be that region's too).
    pub async fn start_in(
        moto: &Moto,
        region: &str,
        port: &str,
        table: &str,
        topic: &str,
        config: Option<&str>,
    ) -> RecoveryBed {
        approval_key(moto, region, "local-approval-key-0123456789abcdef-0123456789").await;
        let evidence = evidence_bucket(moto, region).await;
        let machine = state_machine_in(
            moto,
            region,
            "lifeboat-failover",
            "infra/failover.asl.json",
            &[
                ("FailoverStepsArn", "failover-steps"),
                ("NotifierArn", "notifier"),
                ("DataValidatorArn", "data-validator"),
            ],
        )
        .await;
        let drill_machine = state_machine_in(
            moto,
            region,
            "lifeboat-drill",
            "infra/drill.asl.json",
            &[("DrDrillArn", "dr-drill"), ("DataValidatorArn", "data-validator")],
        )
        .await;
        // The data validator trusts the emulator's CA, as it trusts RDS's bundle in AWS.
        let ca = moto.get("/_lifeboat/db/servers")["ca"].as_str().unwrap_or_default().to_owned();
        let dir = std::env::temp_dir().join(format!("lifeboat-failover-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let approval_url = format!("http://127.0.0.1:{port}/lambda-url/approval-handler/");
        let file = dir.join("lifeboat.yaml");
        let mut env = vec![
            ("LIFEBOAT_INCIDENTS_TABLE", table.to_owned()),
            ("LIFEBOAT_TOPIC_ARN", topic.to_owned()),
            ("LIFEBOAT_FAILOVER_STATE_MACHINE_ARN", machine.clone()),
            ("LIFEBOAT_FAILOVER_POLL_SECONDS", "1".to_owned()),
            ("LIFEBOAT_APPROVAL_URL", approval_url.clone()),
            ("LIFEBOAT_APPROVAL_SECRET_PARAM", APPROVAL_KEY_PARAM.to_owned()),
            ("LIFEBOAT_DRILL_STATE_MACHINE_ARN", drill_machine.clone()),
            ("LIFEBOAT_DRILL_POLL_SECONDS", "1".to_owned()),
            ("LIFEBOAT_EVIDENCE_BUCKET", evidence.clone()),
            ("LIFEBOAT_DB_CA_BUNDLE", ca),
            // The stack's ValidatorDbUser: the user IAM tokens are signed for.
            ("LIFEBOAT_VALIDATOR_DB_USER", real_db::IAM_READER.to_owned()),
            // The operator's `lifeboat validate` invokes it, as the template names it.
            ("LIFEBOAT_VALIDATOR_FUNCTION", "data-validator".to_owned()),
            // moto's endpoints are not in DNS.
            ("LIFEBOAT_EMULATED_ENDPOINTS", "true".to_owned()),
            ("AWS_REGION", region.to_owned()),
        ];
        if let Some(yaml) = config {
            std::fs::write(&file, yaml).expect("config file");
            env.push(("LIFEBOAT_CONFIG_FILE", file.to_string_lossy().into_owned()));
        }
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let watch = Watch::start(moto, port, &dir, &env);
        RecoveryBed { watch, machine, drill_machine, approval_url, dir, evidence }
    }

    /// Invoke the real `failover-trigger` with `payload`; its report.
    pub fn trigger(&mut self, name: &str, payload: &Value) -> Value {
        self.invoke("failover-trigger", name, payload)
    }

    /// Start the operator URL's function before a person's first request reaches it: cargo lambda
    /// builds a binary on its first invocation, longer than `lifeboat` waits for an answer. An
    /// unsigned request, which it refuses (403) without touching AWS.
    pub fn warm_operator(&mut self) {
        let mut unsigned = event("operator-failover-request.json", None);
        unsigned["requestContext"].as_object_mut().map(|c| c.remove("authorizer"));
        let answer = self.invoke("operator", "warm-operator", &unsigned);
        assert_eq!(answer["statusCode"], 403, "{answer}");
    }

    /// Invoke the real binary `function` with `payload` (saved as `<name>.json`); its answer.
    pub fn invoke(&mut self, function: &str, name: &str, payload: &Value) -> Value {
        let file = self.dir.join(format!("{name}.json"));
        std::fs::write(&file, payload.to_string()).expect("payload file");
        let out = self.watch.invoke(function, &file);
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
    }
}

/// The first notice in `region`'s `queue` whose subject has `has`, waiting up to 10 minutes;
/// panics with the functions' log.
pub async fn notice_in(moto: &Moto, region: &str, queue: &str, bed: &mut RecoveryBed, has: &str) -> Notice {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        if let Some(n) = notices(moto, region, queue).await.into_iter().find(|n| n.subject.contains(has)) {
            return n;
        }
        bed.watch.check_alive();
        assert!(std::time::Instant::now() < deadline, "no `{has}` notice\n{}", bed.watch.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Notices in us-east-1's `inbox` until one's subject has `has` (all seen so far are kept in
/// `seen`), for up to 10 minutes; panics with the subjects and the functions' log.
pub async fn notice_until(
    moto: &Moto,
    bed: &mut RecoveryBed,
    inbox: &str,
    seen: &mut Vec<Notice>,
    has: &str,
) -> Notice {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        seen.extend(notices(moto, "us-east-1", inbox).await);
        if let Some(n) = seen.iter().find(|n| n.subject.contains(has)) {
            return n.clone();
        }
        bed.watch.check_alive();
        let subjects: Vec<&str> = seen.iter().map(|n| n.subject.as_str()).collect();
        assert!(std::time::Instant::now() < deadline, "no `{has}` notice; got {subjects:?}\n{}", bed.watch.log());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// The endpoint address RDS describes for instance `id` in `region` (the real server's, once the
/// emulator made it real).
pub async fn instance_endpoint(moto: &Moto, region: &str, id: &str) -> Option<String> {
    let out = moto.rds(region).await.describe_db_instances().db_instance_identifier(id).send().await.ok()?;
    out.db_instances().first()?.endpoint()?.address().map(str::to_owned)
}

impl Drop for RecoveryBed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A queue in `sdk`'s account fed by a rule on its default bus for events from `source`: what the
/// account's stack forwards elsewhere, read as EventBridge delivers it. Its URL.
pub async fn bus_queue(sdk: &SdkConfig, name: &str, source: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let url = sqs.create_queue().queue_name(name).send().await.expect("queue").queue_url().expect("url").to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes");
    let arn =
        attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)).expect("arn").clone();
    events.put_rule().name(name).event_pattern(json!({ "source": [source] }).to_string()).send().await.expect("rule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(arn).build().expect("target");
    events.put_targets().rule(name).targets(target).send().await.expect("targets");
    url
}

/// Every event waiting in a `bus_queue`, consumed, as EventBridge delivered it.
pub async fn bus_events(sdk: &SdkConfig, url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    loop {
        let got = sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("receive");
        if got.messages().is_empty() {
            return out;
        }
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("event json"));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

/// A customer managed key in `sdk`'s account (`owner`) whose key policy lets `accounts` use it for
/// snapshots (the vault's key policy step, docs/vault.md). Its ARN.
pub async fn shared_key(sdk: &SdkConfig, owner: &str, accounts: &[&str]) -> String {
    let mut statements = vec![json!({"Sid": "Owner", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{owner}:root")}, "Action": "kms:*", "Resource": "*"})];
    for a in accounts {
        statements.push(json!({"Sid": format!("Use{a}"), "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{a}:root")},
            "Action": ["kms:DescribeKey", "kms:CreateGrant", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"],
            "Resource": "*"}));
    }
    let policy = json!({"Version": "2012-10-17", "Statement": statements});
    let kms = aws_sdk_kms::Client::new(sdk);
    let key = kms.create_key().policy(policy.to_string()).send().await.expect("key");
    key.key_metadata().map(|m| m.arn().unwrap_or_default().to_owned()).expect("key arn")
}

/// What an approval leaves on the incident, as Lifeboat's own roles record it: the task it waits
/// on and the decision on that task (`approval::decision_entry`). For tests that run the failover
/// steps one by one, without the state machine's Approval state.
pub async fn approval_recorded(store: &lifeboat_core::aws::incidents::IncidentStore, incident: &str, approver: &str) {
    use lifeboat_core::approval::{decision_entry, Decision};
    store.set_approval_task(incident, "test-task-token").await.expect("approval task");
    let decided = decision_entry(Utc::now(), approver, Decision::Approve, "test-task-token");
    store.record(incident, &decided).await.expect("decision");
}

/// A person as `lifeboat` finds them: a role `role` holding the statements of the template's
/// managed `policies` (e.g. OperatorReadOnlyPolicy, ApproverPolicy), assumed with `session` as
/// the session name; its credentials as the environment variables the SDK reads. The operator
/// URL (`/_lifeboat/function-url/operator/`) sees `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
pub async fn person(moto: &Moto, role: &str, policies: &[&str], session: &str) -> Vec<(&'static str, String)> {
    person_in(moto, "us-east-1", role, policies, session).await
}

/// `person`, for the stack in `region` (its policies name that region's functions; STS there).
pub async fn person_in(
    moto: &Moto,
    region: &str,
    role: &str,
    policies: &[&str],
    session: &str,
) -> Vec<(&'static str, String)> {
    let statements: Vec<Value> = policies.iter().flat_map(|p| managed_policy_statements(p, region)).collect();
    let arn = role_with(moto, role, &statements).await;
    let sts = aws_sdk_sts::Client::new(&moto.sdk(region).await);
    let assumed = sts.assume_role().role_arn(arn).role_session_name(session).send().await.expect("assume role");
    let c = assumed.credentials().expect("credentials");
    vec![
        ("AWS_ACCESS_KEY_ID", c.access_key_id().to_owned()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_owned()),
        ("AWS_SESSION_TOKEN", c.session_token().to_owned()),
    ]
}

/// The operator URL of the stack `moto` forwards to (`LIFEBOAT_LAMBDA_FORWARD`), as AWS serves a
/// Function URL with AuthType AWS_IAM (scripts/moto_server.py, `function_url_iam`).
pub fn operator_url(moto: &Moto) -> String {
    format!("{}/_lifeboat/function-url/operator/", moto.endpoint)
}
