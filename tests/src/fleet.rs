//! A fleet the size platform teams run, built in the emulator in seconds (issue 30): N protected
//! databases in the proportions of the fleet that was measured — 70% instances, 30% Aurora
//! clusters, 14% failing over to a cross-region replica, 10% drilled — each with five snapshots in
//! us-east-1 and their five copies in us-west-2 (so a sweep finds nothing left to copy), and the
//! policy document that protects them. The resources go in through the emulator's
//! `/_lifeboat/rds/fleet` (one request; 11,000 API calls would take minutes).

use chrono::{DateTime, Duration, Utc};
use lifeboat_core::arn::{RdsArn, RdsResource};
use serde_json::{json, Value};

use crate::{approval_key, kms_key, Moto, ACCOUNT};

pub const SOURCE: &str = "us-east-1";
pub const DR: &str = "us-west-2";
/// The DR subnet group every drill and restore uses (one distinct resource for the whole fleet).
pub const SUBNET_GROUP: &str = "fleet-dr";
/// Snapshots per database in the source region, and DR copies of them.
pub const SNAPSHOTS: usize = 5;
/// The copies' retention keeps this many; a real pruner run deletes the rest.
pub const COPIES_KEPT: usize = 3;

/// How many of each kind a fleet of `n` has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fleet {
    pub databases: usize,
    pub clusters: usize,
    pub replica_failovers: usize,
    pub drills: usize,
}

impl Fleet {
    pub fn of(n: usize) -> Fleet {
        Fleet { databases: n, clusters: n * 3 / 10, replica_failovers: n * 14 / 100, drills: n / 10 }
    }

    pub fn instances(&self) -> usize {
        self.databases - self.clusters
    }

    /// Database `i`'s name; the first `instances()` are instances, the rest clusters.
    pub fn name(&self, i: usize) -> String {
        format!("fleet-{i:05}")
    }

    pub fn is_cluster(&self, i: usize) -> bool {
        i >= self.instances()
    }

    /// The first instances fail over to their replica.
    pub fn fails_over(&self, i: usize) -> bool {
        i < self.replica_failovers
    }

    /// Drilled: the last `drills` databases (clusters first, then instances without a replica).
    pub fn drilled(&self, i: usize) -> bool {
        i >= self.databases - self.drills
    }

    pub fn source_arn(&self, i: usize) -> RdsArn {
        let kind = if self.is_cluster(i) { "cluster" } else { "db" };
        format!("arn:aws:rds:{SOURCE}:{ACCOUNT}:{kind}:{}", self.name(i)).parse().expect("a valid ARN")
    }

    /// The snapshot `k` (0 = newest) of database `i`: at noon (UTC) `k + 1` days before `now`'s,
    /// so each is on a day of its own and the day of the automated snapshot RDS takes at build is
    /// left to it, whatever the time of day (retention counts calendar days).
    pub fn snapshot(&self, i: usize, k: usize, now: DateTime<Utc>) -> (RdsArn, DateTime<Utc>) {
        let kind = if self.is_cluster(i) { RdsResource::ClusterSnapshot } else { RdsResource::InstanceSnapshot };
        let arn = self.source_arn(i).sibling(SOURCE, kind, &format!("{}-snap-{k}", self.name(i)));
        let midnight = now.date_naive().and_hms_opt(0, 0, 0).map_or(now, |m| m.and_utc());
        (arn, midnight - Duration::days(k as i64 + 1) + Duration::hours(12))
    }

    /// The policy document, as an SRE would write it for this fleet: one DR region and key, the
    /// copies' retention, a replica failover with an approval, monthly drills.
    pub fn yaml(&self, dr_key: &str) -> String {
        let mut out = String::from("databases:\n");
        for i in 0..self.databases {
            out.push_str(&format!(
                "  - name: {}\n    source: {}\n    tier: production\n    rpo: 24h\n    rto: 1h\n    \
                 copy_to: [{{ region: {DR}, kms_key: \"{dr_key}\" }}]\n    \
                 retention: {{ copies: {{ daily: {COPIES_KEPT}, min_keep: {COPIES_KEPT} }} }}\n",
                self.name(i),
                self.source_arn(i)
            ));
            if self.fails_over(i) {
                out.push_str(&format!(
                    "    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:{DR}:{ACCOUNT}:db:{}-replica\n      \
                     approval: required\n",
                    self.name(i)
                ));
            }
            if self.drilled(i) {
                out.push_str(&format!(
                    "    drill:\n      every: 30d\n      restore: {{ instance_class: db.r6g.large, subnet_group: {SUBNET_GROUP} }}\n"
                ));
            }
        }
        out
    }

    /// The emulator's `/_lifeboat/rds/fleet` request building every resource.
    pub fn resources(&self, source_key: &str, now: DateTime<Utc>) -> Value {
        let mut instances = vec![json!({"region": DR, "id": "fleet-seed", "kms_key": source_key})];
        let mut clusters = vec![json!({"region": DR, "id": "fleet-seed-cluster", "kms_key": source_key})];
        let mut snapshots = Vec::new();
        for i in 0..self.databases {
            let name = self.name(i);
            let (kind, seed) = if self.is_cluster(i) {
                clusters.push(json!({"region": SOURCE, "id": name, "kms_key": source_key}));
                ("cluster", "fleet-seed-cluster")
            } else {
                instances.push(json!({"region": SOURCE, "id": name, "kms_key": source_key}));
                ("db", "fleet-seed")
            };
            if self.fails_over(i) {
                instances.push(json!({
                    "region": DR, "id": format!("{name}-replica"), "kms_key": source_key,
                    "replica_of": self.source_arn(i).to_string(),
                }));
            }
            for k in 0..SNAPSHOTS {
                let (arn, at) = self.snapshot(i, k, now);
                let created = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                snapshots.push(json!({"region": SOURCE, "kind": kind, "source": name, "id": arn.id, "created": created, "tags": {}}));
                // The copy Lifeboat made of it, as the copier names and tags it.
                snapshots.push(json!({
                    "region": DR, "kind": kind, "source": seed,
                    "id": lifeboat_core::copy::target_identifier(&arn),
                    "created": (at + Duration::minutes(10)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "tags": {
                        "lifeboat:managed": "true",
                        "lifeboat:database": name,
                        "lifeboat:source-arn": arn.to_string(),
                        "lifeboat:source-created": lifeboat_core::snapshot::tag_time(at),
                    },
                }));
            }
        }
        json!({"instances": instances, "clusters": clusters, "snapshots": snapshots})
    }
}

/// What a built fleet's tests need.
pub struct Built {
    pub fleet: Fleet,
    pub yaml: String,
    pub dr_key: String,
    pub source_key: String,
}

/// Build `fleet` in `moto` (keys, the shared DR subnet group, the approval key, every instance,
/// cluster, replica, snapshot and copy) and answer its policy document.
pub async fn build(moto: &Moto, fleet: Fleet) -> Built {
    let dr_key = kms_key(moto, DR).await;
    let source_key = kms_key(moto, SOURCE).await;
    moto.post("/_lifeboat/rds/subnet-group", &json!({"region": DR, "name": SUBNET_GROUP}));
    approval_key(moto, SOURCE, "local-approval-key-0123456789abcdef-0123456789").await;
    let made = moto.post("/_lifeboat/rds/fleet", &fleet.resources(&source_key, Utc::now()));
    assert_eq!(
        made["snapshots"].as_u64(),
        Some((fleet.databases * SNAPSHOTS * 2) as u64),
        "the emulator built the fleet: {made}"
    );
    // RDS took an automated snapshot of each database as it was created (the emulator too): its
    // copies are there as well, so a sweep of the built fleet finds nothing left to copy.
    let rds = moto.rds(SOURCE).await;
    let mut copies = Vec::new();
    let mut copy_of = |arn: &str, at: Option<&aws_sdk_rds::primitives::DateTime>, kind: &str, seed: &str, db: &str| {
        let arn: RdsArn = arn.parse().expect("an RDS ARN");
        let at = at.and_then(|t| DateTime::from_timestamp(t.secs(), 0)).unwrap_or_else(Utc::now);
        copies.push(json!({
            "region": DR, "kind": kind, "source": seed, "id": lifeboat_core::copy::target_identifier(&arn),
            "created": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "tags": {"lifeboat:managed": "true", "lifeboat:database": db, "lifeboat:source-arn": arn.to_string(),
                     "lifeboat:source-created": lifeboat_core::snapshot::tag_time(at)},
        }));
    };
    let mut pages = rds.describe_db_snapshots().snapshot_type("automated").into_paginator().send();
    while let Some(page) = pages.next().await {
        for s in page.expect("automated snapshots").db_snapshots() {
            let db = s.db_instance_identifier().unwrap_or_default();
            copy_of(s.db_snapshot_arn().unwrap_or_default(), s.snapshot_create_time(), "db", "fleet-seed", db);
        }
    }
    let mut pages = rds.describe_db_cluster_snapshots().snapshot_type("automated").into_paginator().send();
    while let Some(page) = pages.next().await {
        for s in page.expect("automated cluster snapshots").db_cluster_snapshots() {
            let db = s.db_cluster_identifier().unwrap_or_default();
            let arn = s.db_cluster_snapshot_arn().unwrap_or_default();
            copy_of(arn, s.snapshot_create_time(), "cluster", "fleet-seed-cluster", db);
        }
    }
    moto.post("/_lifeboat/rds/fleet", &json!({"snapshots": copies}));
    Built { fleet, yaml: fleet.yaml(&dr_key), dr_key, source_key }
}

/// The stack's scheduled functions, in-process, as their `main`s build them, signing as the
/// functions (`Moto::functions_sdk`) so the emulator's throttle and counts are theirs alone.
pub struct Stack {
    pub copier: snapshot_copier::Deps,
    pub pruner: snapshot_pruner::Deps,
    pub rpo: rpo_monitor::Deps,
    pub drill: dr_drill::Deps,
    pub inbox: String,
}

impl Stack {
    pub async fn start(moto: &Moto, built: &Built) -> Stack {
        use lifeboat_core::aws::{ConfigCache, ConfigSource, CONFIG_TTL};
        let dir = std::env::temp_dir().join(format!("lifeboat-fleet-{}-{}", std::process::id(), moto.port));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("lifeboat.yaml");
        std::fs::write(&file, &built.yaml).expect("config file");
        let sdk = moto.functions_sdk(SOURCE).await;
        let config = || ConfigCache::new(ConfigSource::File(file.to_string_lossy().into_owned()), &sdk, CONFIG_TTL);
        let table = crate::incidents_table(moto, SOURCE).await;
        let (topic, inbox) = crate::topic_with_queue(moto, SOURCE).await;
        let steps = crate::template_statements("FailoverStepsFunction", SOURCE);
        let mut rpo = rpo_monitor::Deps::new(config(), &sdk, &table, &topic);
        rpo.approval_key_param = Some(crate::APPROVAL_KEY_PARAM.to_owned());
        rpo.steps_role = Some(crate::role_with(moto, "lifeboat-failover-steps", &steps).await);
        Stack {
            copier: snapshot_copier::Deps::new(config(), &sdk),
            pruner: snapshot_pruner::Deps::new(config(), &sdk, Some(&topic)),
            rpo,
            drill: dr_drill::Deps::new(config(), &sdk, &table, &topic),
            inbox,
        }
    }
}

/// One scheduled run, measured from the emulator's side.
#[derive(Debug)]
pub struct Measured {
    pub run: &'static str,
    /// Calls per `service:Operation`, throttled attempts included.
    pub calls: std::collections::BTreeMap<String, u64>,
    /// Attempts the emulator answered `Throttling` (and the SDK retried).
    pub throttled: u64,
    pub wall: std::time::Duration,
    /// What the run answered (its report), or its error.
    pub result: Result<Value, String>,
    /// Subjects of the notices it published, and the longest message body.
    pub published: Vec<String>,
    pub longest_message: usize,
    /// This process's peak resident memory during the run (kB): the run itself, plus what the
    /// test harness holds (an upper bound for the function).
    pub peak_rss_kb: Option<u64>,
}

impl Measured {
    pub fn total(&self) -> u64 {
        self.calls.values().sum::<u64>() - self.throttled
    }

    pub fn calls_to(&self, call: &str) -> u64 {
        self.calls.get(call).copied().unwrap_or(0)
    }
}

/// The runs of issue 30's table, in its order: the copier's sweep, the pruner dry and real, the
/// RPO run, readiness twice (the first tells, the second is steady) and the drill report.
/// `throttle`: the emulator's throttle settings for the functions' calls (None: off).
pub async fn scheduled_runs(moto: &Moto, stack: &Stack, throttle: Option<&Value>) -> Vec<Measured> {
    let now = Utc::now();
    let mut sweep = crate::event("scheduled-sweep.json", None);
    sweep["time"] = now.to_rfc3339().into();
    let mut prune = crate::event("pruner-scheduled.json", None);
    prune["time"] = now.to_rfc3339().into();
    let mut out = Vec::new();
    macro_rules! run {
        ($name:expr, $call:expr) => {{
            reset(moto, throttle);
            reset_peak_rss();
            let started = std::time::Instant::now();
            let result = Box::pin($call)
                .await
                .map_err(|e| e.to_string())
                .and_then(|r| serde_json::to_value(r).map_err(|e| e.to_string()));
            let wall = started.elapsed();
            let peak = peak_rss_kb();
            let mut m = measured(moto, stack, $name, wall, result).await;
            m.peak_rss_kb = peak;
            out.push(m);
        }};
    }
    run!("copier sweep", snapshot_copier::handle(&stack.copier, sweep.clone(), now));
    run!("pruner, dry run", snapshot_pruner::handle(&stack.pruner, json!({"dry_run": true}), now));
    run!("pruner, real run", snapshot_pruner::handle(&stack.pruner, prune.clone(), now));
    run!("rpo-monitor", rpo_monitor::handle(&stack.rpo, json!({}), now));
    run!("readiness, first run", rpo_monitor::handle(&stack.rpo, json!({"readiness": true}), now));
    run!("readiness, steady", rpo_monitor::handle(&stack.rpo, json!({"readiness": true}), now));
    run!("drill report", dr_drill::handle(&stack.drill, json!({"report": true}), now));
    out
}

/// Linux resets `VmHWM` to the current RSS when "5" is written to clear_refs (proc(5)).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn reset(moto: &Moto, throttle: Option<&Value>) {
    moto.set_faults(&[]);
    moto.post("/_lifeboat/throttle", throttle.unwrap_or(&json!({})));
}

async fn measured(
    moto: &Moto,
    stack: &Stack,
    run: &'static str,
    wall: std::time::Duration,
    result: Result<Value, String>,
) -> Measured {
    let counts = moto.fault_counts();
    let calls = counts["calls"]
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default();
    let throttled: Value =
        serde_json::from_str(&crate::http("GET", &format!("{}/_lifeboat/throttle", moto.endpoint), None).body)
            .unwrap_or_default();
    let throttled = throttled["throttled"].as_object().map_or(0, |o| o.values().filter_map(Value::as_u64).sum());
    let notices = crate::notices(moto, SOURCE, &stack.inbox).await;
    Measured {
        run,
        calls,
        throttled,
        wall,
        result,
        published: notices.iter().map(|n| n.subject.clone()).collect(),
        longest_message: notices.iter().map(|n| n.raw.len()).max().unwrap_or(0),
        peak_rss_kb: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleets_document_is_valid_and_in_the_measured_proportions() {
        let f = Fleet::of(1000);
        assert_eq!((f.instances(), f.clusters, f.replica_failovers, f.drills), (700, 300, 140, 100));
        let key = format!("arn:aws:kms:{DR}:{ACCOUNT}:key/00000000-0000-4000-8000-000000000001");
        let config = lifeboat_core::config::Config::from_yaml(&f.yaml(&key)).expect("a valid document");
        assert_eq!(config.databases.len(), 1000);
        assert_eq!(config.databases.iter().filter(|d| d.is_cluster()).count(), 300);
        assert_eq!(config.databases.iter().filter(|d| d.failover.is_some()).count(), 140);
        assert_eq!(config.databases.iter().filter(|d| d.drill.is_some()).count(), 100);
        // No database both fails over to a replica and is a cluster.
        assert!((0..1000).all(|i| !(f.fails_over(i) && f.is_cluster(i))));
    }
}
