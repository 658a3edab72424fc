//! 200 databases (issue 30's fleet in its proportions, `lifeboat_tests::fleet`), every scheduled
//! run against the emulator: each succeeds in one invocation; readiness makes at most one call per
//! database plus one per distinct resource; no notice or log line grows past what SNS and
//! CloudWatch Logs take; and a run the emulator throttles like RDS ends as the unthrottled run
//! does — nothing lost, nothing twice. Timing is `scripts/bench.sh`'s (`BENCH_ONLY=fleet`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use lifeboat_tests::fleet::{self, Fleet, Measured, Stack, DR, SOURCE};
use lifeboat_tests::*;
use serde_json::{json, Value};

/// SNS: "The maximum message size is 256 KB" (262,144 bytes); CloudWatch Logs: "Event size: 256 KB
/// (maximum)" per log event. Both hold at any fleet size only if nothing grows with it.
const SNS_MAX: usize = 262_144;
const LOG_EVENT_MAX: usize = 262_144;

/// The longest log line the functions wrote in this test binary (their JSON logs, as on Lambda).
static LONGEST_LOG_LINE: AtomicUsize = AtomicUsize::new(0);

struct Longest;

impl std::io::Write for Longest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LONGEST_LOG_LINE.fetch_max(buf.len(), Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // As Lambda runs them: JSON lines, one per event (the template's LoggingConfig).
        std::env::set_var("AWS_LAMBDA_LOG_FORMAT", "JSON");
        lambda_runtime::tracing::init_default_subscriber_with_writer(|| Longest);
    });
}

/// What a run left that must not depend on throttling: who was told what, which snapshots
/// remain, each database's verdict.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    told: Vec<(String, Vec<String>)>,
    dr_snapshots: Vec<String>,
    source_snapshots: Vec<String>,
    verdicts: BTreeMap<String, bool>,
}

async fn outcome(moto: &Moto, runs: &[Measured]) -> Outcome {
    // The fleet's own snapshots and their copies; the automated ones are named by the minute
    // the emulator took them, which differs between two beds.
    let ids = |seen: Seen| seen.into_iter().map(|s| s.0).filter(|id| id.contains("-snap-")).collect::<Vec<_>>();
    let mut dr = ids(db_snapshots(moto, DR).await);
    dr.extend(ids(cluster_snapshots(moto, DR).await));
    let mut source = ids(db_snapshots(moto, SOURCE).await);
    source.extend(ids(cluster_snapshots(moto, SOURCE).await));
    let steady = runs.iter().find(|r| r.run == "readiness, steady").expect("a steady readiness run");
    let verdicts = steady.result.as_ref().map_or_else(
        |_| BTreeMap::new(),
        |r| {
            r["readiness"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|v| (v["database"].as_str().unwrap_or_default().to_owned(), v["ready"] == true))
                .collect()
        },
    );
    let mut told: Vec<(String, Vec<String>)> = runs
        .iter()
        .map(|r| {
            (r.run.to_owned(), {
                let mut p = r.published.clone();
                p.sort();
                p
            })
        })
        .collect();
    told.sort();
    Outcome { told, dr_snapshots: dr, source_snapshots: source, verdicts }
}

/// The snapshots a dry run's summary would delete.
fn would_delete(summary: &Value) -> std::collections::BTreeSet<String> {
    summary["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["would_delete"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| i["id"].as_str().map(str::to_owned))
        .collect()
}

async fn fleet_runs(n: usize, throttle: Option<&Value>) -> (Moto, Vec<Measured>) {
    let moto = Moto::start();
    let built = fleet::build(&moto, Fleet::of(n)).await;
    let stack = Stack::start(&moto, &built).await;
    let runs = fleet::scheduled_runs(&moto, &stack, throttle).await;
    for r in &runs {
        eprintln!(
            "{n} databases, {}: {} calls, {} throttled, {:?}: {:?}",
            r.run,
            r.total(),
            r.throttled,
            r.wall,
            r.calls
        );
    }
    (moto, runs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_databases_every_run_bounded_and_throttling_changes_nothing() {
    capture_logs();
    let f = Fleet::of(200);
    let (moto, runs) = fleet_runs(200, None).await;
    for r in &runs {
        assert!(r.result.is_ok(), "{} failed: {:?}", r.run, r.result);
        assert!(r.longest_message < SNS_MAX, "{}: a {} byte notice", r.run, r.longest_message);
    }
    let by = |name: &str| runs.iter().find(|r| r.run == name).expect(name);

    // Every snapshot has its copy: the sweep lists each region and kind, and copies nothing.
    let sweep = by("copier sweep");
    assert_eq!(
        sweep.calls_to("rds:CopyDBSnapshot") + sweep.calls_to("rds:CopyDBClusterSnapshot"),
        0,
        "{:?}",
        sweep.calls
    );
    assert!(sweep.total() <= 8, "{:?}", sweep.calls);

    // The pruner deleted the two oldest copies of each database, and said so in one bounded notice.
    let real = by("pruner, real run");
    let planned = would_delete(by("pruner, dry run").result.as_ref().expect("a dry run"));
    assert!(planned.len() >= 2 * 200, "at least the two oldest copies of each database: {}", planned.len());
    assert_eq!(
        real.calls_to("rds:DeleteDBSnapshot") + real.calls_to("rds:DeleteDBClusterSnapshot"),
        planned.len() as u64
    );
    assert_eq!(real.published.len(), 1, "{:?}", real.published);

    // Readiness at fleet size: at most one call per database plus one per distinct resource.
    // Distinct here: 140 replicas (a describe and a lag read each), one DR key, one source key,
    // one subnet group, one approval key, one simulation, the listing and quotas of 2 regions.
    let steady = by("readiness, steady");
    let distinct = 2 * f.replica_failovers as u64 + 16;
    assert!(
        steady.total() <= f.databases as u64 + distinct,
        "readiness made {} calls for {} databases: {:?}",
        steady.total(),
        f.databases,
        steady.calls
    );
    for shared in ["kms:DescribeKey", "ssm:GetParameter", "rds:DescribeDBSubnetGroups", "iam:SimulatePrincipalPolicy"] {
        assert!(steady.calls_to(shared) <= 2, "{shared} per database, not per distinct resource: {:?}", steady.calls);
    }
    // Databases that start out not ready are told in one grouped notice, not one each.
    let first = by("readiness, first run");
    assert!(first.published.len() <= 3, "{:?}", first.published);
    let longest = LONGEST_LOG_LINE.load(Ordering::Relaxed);
    assert!(longest > 0 && longest < LOG_EVENT_MAX / 4, "the longest log line is {longest} bytes");
    let unthrottled = outcome(&moto, &runs).await;
    // Once 0 of 1,000 were ready: a quota of 100 assumed for a region holding 5,000 copies.
    assert_eq!(unthrottled.verdicts.len(), 200);
    assert!(unthrottled.verdicts.values().all(|ready| *ready), "{:?}", unthrottled.verdicts);
    drop(moto);

    // The same fleet with RDS throttling the functions' calls: slower, the same result.
    let throttle = json!({"rate": 20, "burst": 10, "services": ["rds"], "caller": FUNCTIONS_ACCESS_KEY});
    let (moto, runs) = fleet_runs(200, Some(&throttle)).await;
    for r in &runs {
        assert!(r.result.is_ok(), "{} failed under throttling: {:?}", r.run, r.result);
    }
    let absorbed: u64 = runs.iter().map(|r| r.throttled).sum();
    assert!(absorbed > 0, "the emulator throttled nothing: {runs:?}");
    let throttled = outcome(&moto, &runs).await;
    let only = |a: &[String], b: &[String]| a.iter().filter(|x| !b.contains(x)).cloned().collect::<Vec<_>>();
    assert_eq!(
        throttled,
        unthrottled,
        "throttling changed the outcome: DR snapshots only when throttled {:?}, only unthrottled {:?}",
        only(&throttled.dr_snapshots, &unthrottled.dr_snapshots),
        only(&unthrottled.dr_snapshots, &throttled.dr_snapshots)
    );
}

/// A pruner run longer than its invocation: RDS throttles its deletions, its time runs out, it
/// hands what is left to its next part on the default bus (the template's `Continues` rule), and
/// the next part deletes exactly the rest as of the same plan — nothing twice, nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruner_run_out_of_time_hands_the_rest_to_its_next_part() {
    use std::collections::BTreeSet;
    let moto = Moto::start();
    let built = fleet::build(&moto, Fleet::of(40)).await;
    let stack = Stack::start(&moto, &built).await;
    // What the stack's rule does with a continuation, with a queue standing in for the pruner.
    let sdk = moto.sdk(SOURCE).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = sqs.create_queue().queue_name("prune-continues").send().await.expect("queue");
    let queue_url = queue.queue_url().expect("url").to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue arn");
    let queue_arn =
        attrs.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)).expect("arn");
    let template = std::fs::read_to_string(repo_root().join("template.yaml")).expect("template");
    assert!(
        template.contains(&format!("source: [{}]", snapshot_pruner::CONTINUE_SOURCE))
            && template.contains(&format!("detail-type: [{}]", snapshot_pruner::CONTINUE_DETAIL_TYPE)),
        "the template's rule matches what the pruner puts"
    );
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let pattern =
        json!({"source": [snapshot_pruner::CONTINUE_SOURCE], "detail-type": [snapshot_pruner::CONTINUE_DETAIL_TYPE]});
    events.put_rule().name("prune-continues").event_pattern(pattern.to_string()).send().await.expect("rule");
    let target = aws_sdk_eventbridge::types::Target::builder()
        .id("pruner")
        .arn(queue_arn)
        .input_path("$.detail")
        .build()
        .expect("target");
    events.put_targets().rule("prune-continues").targets(target).send().await.expect("target");

    moto.post(
        "/_lifeboat/throttle",
        &json!({"rate": 10, "burst": 5, "services": ["rds"], "caller": FUNCTIONS_ACCESS_KEY}),
    );
    let mut prune = event("pruner-scheduled.json", None);
    prune["time"] = chrono::Utc::now().to_rfc3339().into();
    let dry = snapshot_pruner::handle(&stack.pruner, json!({"dry_run": true}), chrono::Utc::now()).await.expect("plan");
    let planned = would_delete(&serde_json::to_value(&dry).expect("JSON"));
    assert!(planned.len() >= 2 * 40, "at least the two oldest copies of each database: {}", planned.len());
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let first =
        snapshot_pruner::handle_until(&stack.pruner, prune, chrono::Utc::now(), Some(until)).await.expect("part 1");
    assert!(first.deleted() > 0 && first.left > 0, "part 1 deleted {} and left {}", first.deleted(), first.left);
    assert_eq!(first.deleted() + first.left, planned.len(), "the plan");

    let handed = sqs.receive_message().queue_url(&queue_url).max_number_of_messages(10).send().await.expect("receive");
    assert_eq!(handed.messages().len(), 1, "one continuation: {handed:?}");
    let body: Value = serde_json::from_str(handed.messages()[0].body().unwrap_or_default()).expect("JSON");
    // The rule's InputPath hands the pruner the detail alone (an emulator that ignores it, the event).
    let next = if body.get("detail-type").is_some() { body["detail"].clone() } else { body };
    assert_eq!(next["part"], 2, "{next}");

    moto.post("/_lifeboat/throttle", &json!({}));
    let later = chrono::Utc::now() + chrono::Duration::minutes(5);
    let second = snapshot_pruner::handle_until(&stack.pruner, next, later, None).await.expect("part 2");
    assert_eq!((second.part, second.left), (2, 0));
    let deleted = |s: &lifeboat_core::prune::Summary| -> BTreeSet<String> {
        s.groups.iter().flat_map(|g| g.deleted.iter().map(|i| i.id.clone())).collect()
    };
    let (a, b) = (deleted(&first), deleted(&second));
    assert!(a.is_disjoint(&b), "deleted twice: {:?}", a.intersection(&b).collect::<Vec<_>>());
    assert_eq!(a.iter().chain(&b).cloned().collect::<BTreeSet<_>>(), planned, "the plan, nothing left undeleted");
    let mut left = db_snapshots(&moto, DR).await;
    left.extend(cluster_snapshots(&moto, DR).await);
    let copies: BTreeSet<String> = left.into_iter().map(|s| s.0).filter(|id| id.contains("-snap-")).collect();
    for i in 0..40 {
        for k in 0..fleet::SNAPSHOTS {
            let (arn, _) = built.fleet.snapshot(i, k, chrono::Utc::now());
            let id = lifeboat_core::copy::target_identifier(&arn);
            assert_eq!(copies.contains(&id), !planned.contains(&id), "copy {k} of {}", built.fleet.name(i));
        }
    }
}
