//! The vault path against moto with three accounts: the source (this stack's), the vault, and a
//! fresh recovery account. Events go as EventBridge delivers them: read from the sender's bus
//! through a rule and a queue, then handed to the receiver's function (moto's own cross-account
//! bus target rewrites the envelope's `account`, which EventBridge keeps).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::Utc;
use lifeboat_core::aws::{SdkConfig, CONFIG_TTL};
use lifeboat_core::vault::{self, VaultSettings};
use lifeboat_tests::*;
use serde_json::{json, Value};
use vault_keeper::Role;

const SRC: &str = "us-east-1";
const VAULT_REGION: &str = "us-west-2";
const VAULT: &str = "210987654321";
const RECOVERY: &str = "444455556666";
const STRANGER: &str = "777788889999";

struct World {
    moto: Moto,
    src: SdkConfig,
    vault: SdkConfig,
    copier: snapshot_copier::Deps,
    keeper: vault_keeper::Deps,
    pruner: vault_keeper::Deps,
    src_queue: String,
    vault_queue: String,
    vault_key: String,
    share_key: String,
}

fn settings(vault_key: &str) -> VaultSettings {
    VaultSettings {
        account: VAULT.into(),
        region: VAULT_REGION.into(),
        kms_key: vault_key.into(),
        minimum_retention: Duration::from_secs(7 * 86_400),
        default_retention: Duration::from_secs(30 * 86_400),
        minimum_kept: 1,
        sources: [ACCOUNT.to_owned()].into(),
        restore_accounts: [RECOVERY.to_owned()].into(),
    }
}

/// orders: an instance under the AWS managed key (moto's stand-in for `aws/rds`); ledger: an
/// unencrypted Aurora cluster; reporting: an unencrypted instance. All vault every snapshot.
async fn world() -> World {
    let moto = Moto::start();
    let src = moto.sdk(SRC).await;
    let vault = moto.sdk_as(VAULT_REGION, VAULT).await;
    let share_key = shared_key(&moto.sdk(VAULT_REGION).await, ACCOUNT, &[VAULT]).await;
    let vault_key = shared_key(&vault, VAULT, &[RECOVERY]).await;
    // The automated snapshot moto takes of each new database is dated three hours ago, so each
    // snapshot a test takes is newer.
    moto.set_clock(Utc::now() - chrono::Duration::hours(3));
    create_instance_under_aws_rds(&moto, SRC, "orders").await;
    create_cluster(&moto, SRC, "ledger").await;
    create_instance(&moto, SRC, "reporting").await;
    moto.set_clock(Utc::now());
    let db = |name: &str, kind: &str, id: &str| {
        format!("  - name: {name}\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:{kind}:{id}\n    tier: production\n    rpo: 1h\n    rto: 1h\n")
    };
    let yaml = format!(
        "vault:\n  account: \"{VAULT}\"\n  region: {VAULT_REGION}\n  share_key: {share_key}\n  retention: 35d\n  frequency: every-snapshot\ndatabases:\n{}{}{}",
        db("orders-prod", "db", "orders"),
        db("ledger-aurora", "cluster", "ledger"),
        db("reporting", "db", "reporting"),
    );
    let config = config_in_ssm(&moto, &yaml, CONFIG_TTL).await;
    let mut copier = snapshot_copier::Deps::new(config, &src);
    copier.emit_metrics = false;
    let mut keeper = vault_keeper::Deps::new(settings(&vault_key), Role::Copier, false, &vault);
    keeper.emit_metrics = false;
    let mut pruner = vault_keeper::Deps::new(settings(&vault_key), Role::Pruner, false, &vault);
    pruner.emit_metrics = false;
    let src_queue = bus_queue(&src, "to-vault", vault::SOURCE_EVENTS).await;
    let vault_queue = bus_queue(&vault, "to-source", vault::VAULT_EVENTS).await;
    World { moto, src, vault, copier, keeper, pruner, src_queue, vault_queue, vault_key, share_key }
}

fn sweep_event() -> Value {
    event("scheduled-sweep.json", None)
}

impl World {
    async fn source_sweep(&self) -> snapshot_copier::Report {
        snapshot_copier::handle(&self.copier, sweep_event(), Utc::now()).await.expect("source sweep")
    }

    /// What the source said on its bus, delivered to the vault's copier: each report.
    async fn deliver_to_vault(&self) -> Vec<vault_keeper::Report> {
        let mut out = Vec::new();
        for e in bus_events(&self.src, &self.src_queue).await {
            assert_eq!(e["account"], ACCOUNT, "{e}");
            out.push(vault_keeper::handle(&self.keeper, e, Utc::now()).await.expect("vault copier"));
        }
        out
    }

    /// What the vault said on its bus, delivered to the source's copier: each report.
    async fn deliver_to_source(&self) -> Vec<snapshot_copier::Report> {
        let mut out = Vec::new();
        for e in bus_events(&self.vault, &self.vault_queue).await {
            assert_eq!(e["account"], VAULT, "{e}");
            out.push(snapshot_copier::handle(&self.copier, e, Utc::now()).await.expect("source copier"));
        }
        out
    }

    /// Source sweeps (transit copies, then shares), vault copies, source cleans up.
    async fn round(&self) {
        self.source_sweep().await;
        self.source_sweep().await;
        self.deliver_to_vault().await;
        self.deliver_to_source().await;
    }
}

/// Snapshots an account holds: identifier, key, tags.
type Held = Vec<(String, Option<String>, Vec<(String, String)>)>;

/// (identifier, kms key, tags) of the snapshots an account holds in a region, both kinds.
async fn held(sdk: &SdkConfig) -> Held {
    let rds = aws_sdk_rds::Client::new(sdk);
    let mut out = Vec::new();
    for s in rds.describe_db_snapshots().send().await.expect("describe").db_snapshots() {
        let tags = s
            .tag_list()
            .iter()
            .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect();
        out.push((s.db_snapshot_identifier().unwrap_or_default().to_owned(), s.kms_key_id().map(str::to_owned), tags));
    }
    for s in rds.describe_db_cluster_snapshots().send().await.expect("describe").db_cluster_snapshots() {
        let tags = s
            .tag_list()
            .iter()
            .map(|t| (t.key().unwrap_or_default().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect();
        let key = s.kms_key_id().filter(|_| s.storage_encrypted() == Some(true)).map(str::to_owned);
        out.push((s.db_cluster_snapshot_identifier().unwrap_or_default().to_owned(), key, tags));
    }
    out.sort();
    out
}

fn tag<'a>(tags: &'a [(String, String)], key: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Accounts each snapshot the source holds in a region is shared with (none expected).
async fn shares(sdk: &SdkConfig) -> Vec<(String, Vec<String>)> {
    let rds = aws_sdk_rds::Client::new(sdk);
    let mut out = Vec::new();
    for (id, _, _) in held(sdk).await {
        let instance = rds.describe_db_snapshot_attributes().db_snapshot_identifier(&id).send().await;
        let values: Vec<String> = match instance {
            Ok(a) => a
                .db_snapshot_attributes_result()
                .map(|r| r.db_snapshot_attributes().iter().flat_map(|a| a.attribute_values().to_vec()).collect())
                .unwrap_or_default(),
            Err(_) => rds
                .describe_db_cluster_snapshot_attributes()
                .db_cluster_snapshot_identifier(&id)
                .send()
                .await
                .ok()
                .and_then(|a| {
                    a.db_cluster_snapshot_attributes_result().map(|r| {
                        r.db_cluster_snapshot_attributes().iter().flat_map(|a| a.attribute_values().to_vec()).collect()
                    })
                })
                .unwrap_or_default(),
        };
        if !values.is_empty() {
            out.push((id, values));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_reach_the_vault_re_keyed_and_the_source_shares_nothing_after() {
    let w = world().await;
    let orders = snapshot(&w.moto, SRC, "orders", "orders-nightly", &[("team", "payments")]).await;
    cluster_snapshot(&w.moto, SRC, "ledger", "ledger-nightly", &[]).await;
    snapshot(&w.moto, SRC, "reporting", "reporting-nightly", &[]).await;

    let first = w.source_sweep().await;
    assert_eq!(first.vault_started.len(), 3, "{first:?}");
    let transits = held(&w.moto.sdk(VAULT_REGION).await).await;
    let orders_transit =
        transits.iter().find(|(_, _, t)| tag(t, "lifeboat:database") == Some("orders-prod")).expect("transit");
    assert_eq!(orders_transit.1.as_deref(), Some(w.share_key.as_str()), "re-keyed off aws/rds: {transits:?}");
    let second = w.source_sweep().await;
    assert_eq!(second.vault_shared.len(), 3, "{second:?}");
    assert!(
        second.vault_warnings.iter().any(|m| m.contains("ledger-aurora") && m.contains("unencrypted")),
        "an unencrypted Aurora snapshot is shared as it is, and said: {second:?}"
    );
    assert_eq!(second.vault_warnings.len(), 1, "the unencrypted instance snapshot was encrypted: {second:?}");

    let vaulted = w.deliver_to_vault().await;
    assert_eq!(vaulted.iter().map(|r| r.copied.len()).sum::<usize>(), 3, "{vaulted:?}");
    let in_vault = held(&w.vault).await;
    assert_eq!(in_vault.len(), 3, "{in_vault:?}");
    for (id, key, tags) in &in_vault {
        assert_eq!(tag(tags, "lifeboat:managed"), Some("true"), "{id}");
        let db = tag(tags, "lifeboat:database").expect("database tag");
        if db == "ledger-aurora" {
            assert_eq!(key, &None, "an unencrypted cluster copy stays unencrypted");
        } else {
            assert_eq!(key.as_deref(), Some(w.vault_key.as_str()), "{db}: the vault's own key");
        }
        assert!(tag(tags, "lifeboat:retain-until").is_some(), "{tags:?}");
    }

    let cleaned = w.deliver_to_source().await;
    assert_eq!(cleaned.iter().map(|r| r.vaulted.len()).sum::<usize>(), 3, "{cleaned:?}");
    let left = held(&w.moto.sdk(VAULT_REGION).await).await;
    assert!(left.iter().all(|(id, _, _)| !id.starts_with("lifeboat-vault-")), "transit copies deleted: {left:?}");
    assert!(shares(&w.moto.sdk(VAULT_REGION).await).await.is_empty());
    assert!(shares(&w.src).await.is_empty(), "the source's own snapshots were never shared");
    let source = held(&w.src).await;
    let nightly = source.iter().find(|(id, _, _)| id == "orders-nightly").expect("source snapshot");
    let vault_copy = tag(&nightly.2, "lifeboat:vaulted").expect("marked vaulted");
    assert!(
        vault_copy.starts_with(&format!("arn:aws:rds:{VAULT_REGION}:{VAULT}:snapshot:lifeboat-vault-")),
        "{vault_copy}"
    );
    assert_eq!(nightly.1.as_deref(), Some("default_kms_key_id"), "the source snapshot itself is untouched");
    let _ = orders;

    // Replays: every event again, and the sweeps, make nothing twice.
    let before = (held(&w.src).await, held(&w.vault).await, held(&w.moto.sdk(VAULT_REGION).await).await);
    let again = w.source_sweep().await;
    assert!(again.vault_started.is_empty() && again.vault_shared.is_empty(), "{again:?}");
    for e in [json!({"source": vault::SOURCE_EVENTS, "detail-type": vault::SHARED, "account": ACCOUNT,
               "detail": {"snapshot": format!("arn:aws:rds:{VAULT_REGION}:{ACCOUNT}:snapshot:{}", in_vault[0].0), "database": "orders-prod"}})]
    {
        let r = vault_keeper::handle(&w.keeper, e, Utc::now()).await.expect("replayed share");
        assert!(r.copied.is_empty(), "{r:?}");
    }
    let replay = json!({"source": vault::VAULT_EVENTS, "detail-type": vault::VAULTED, "account": VAULT,
        "detail": {"shared": format!("arn:aws:rds:{VAULT_REGION}:{ACCOUNT}:snapshot:{}", in_vault[0].0),
                   "copy": format!("arn:aws:rds:{VAULT_REGION}:{VAULT}:snapshot:{}", in_vault[0].0)}});
    let r = snapshot_copier::handle(&w.copier, replay, Utc::now()).await.expect("replayed answer");
    assert!(r.vaulted.is_empty() && r.ignored.is_some(), "{r:?}");
    let vault_sweep = vault_keeper::handle(&w.keeper, sweep_event(), Utc::now()).await.expect("vault sweep");
    assert!(vault_sweep.copied.is_empty(), "{vault_sweep:?}");
    assert_eq!(vault_sweep.newest.len(), 3, "the vault's RPO covers each database: {vault_sweep:?}");
    assert!(vault_sweep.newest.values().all(|n| n.age_seconds.is_some_and(|a| a < 3600)), "{vault_sweep:?}");
    let after = (held(&w.src).await, held(&w.vault).await, held(&w.moto.sdk(VAULT_REGION).await).await);
    assert_eq!(before, after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_sweep_copies_a_share_whose_event_was_lost_and_refuses_strangers() {
    let w = world().await;
    snapshot(&w.moto, SRC, "orders", "orders-nightly", &[]).await;
    w.source_sweep().await;
    w.source_sweep().await;
    // moto takes an automated snapshot of each database it creates: three databases, three shares.
    let lost = bus_events(&w.src, &w.src_queue).await;
    assert_eq!(lost.len(), 3, "{lost:?}");
    let r = vault_keeper::handle(&w.keeper, sweep_event(), Utc::now()).await.expect("vault sweep");
    assert_eq!(r.copied.len(), 3, "{r:?}");
    assert_eq!(r.announced.len(), 3, "{r:?}");
    let held_now = held(&w.vault).await;
    let keys: BTreeSet<&str> = held_now.iter().filter_map(|c| tag(&c.2, "lifeboat:source-database")).collect();
    let want = [format!("{ACCOUNT}/ledger"), format!("{ACCOUNT}/orders"), format!("{ACCOUNT}/reporting")];
    assert_eq!(keys, want.iter().map(String::as_str).collect::<BTreeSet<_>>());
    assert_eq!(w.deliver_to_source().await.iter().map(|r| r.vaulted.len()).sum::<usize>(), 3);

    // A share event from an account the vault doesn't serve: refused, nothing copied.
    let stranger = json!({"source": vault::SOURCE_EVENTS, "detail-type": vault::SHARED, "account": STRANGER,
        "detail": {"snapshot": format!("arn:aws:rds:{VAULT_REGION}:{STRANGER}:snapshot:lifeboat-vault-20261201000000-0a0b0c0d")}});
    let before = held(&w.vault).await;
    let r = vault_keeper::handle(&w.keeper, stranger, Utc::now()).await.expect("stranger");
    assert!(r.copied.is_empty() && !r.refused.is_empty(), "{r:?}");
    // A share that claims another account's snapshot is malformed.
    let forged = json!({"source": vault::SOURCE_EVENTS, "detail-type": vault::SHARED, "account": STRANGER,
        "detail": {"snapshot": format!("arn:aws:rds:{VAULT_REGION}:{ACCOUNT}:snapshot:lifeboat-vault-20261201000000-0a0b0c0d")}});
    let e = vault_keeper::handle(&w.keeper, forged, Utc::now()).await.expect_err("forged");
    assert!(!e.is_retryable(), "{e}");
    assert_eq!(before, held(&w.vault).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_account_can_t_delete_a_vault_copy_and_the_pruner_keeps_the_lock() {
    let w = world().await;
    let now = Utc::now();
    taken_at(&w.moto, SRC, "orders", false, &[("orders-monday".into(), now - chrono::Duration::hours(2))], &[]).await;
    w.round().await;
    taken_at(&w.moto, SRC, "orders", false, &[("orders-tuesday".into(), now - chrono::Duration::hours(1))], &[]).await;
    w.round().await;
    let orders = |held: Held| -> Vec<String> {
        held.into_iter()
            .filter(|(_, _, t)| tag(t, "lifeboat:database") == Some("orders-prod"))
            .map(|(id, _, _)| id)
            .collect()
    };
    let copies = orders(held(&w.vault).await);
    assert_eq!(copies.len(), 2, "{copies:?}");
    let all = held(&w.vault).await.len();

    // The source's credentials: by identifier RDS finds nothing of theirs; by ARN it refuses.
    let src_rds = w.moto.rds(VAULT_REGION).await;
    for id in [copies[0].clone(), format!("arn:aws:rds:{VAULT_REGION}:{VAULT}:snapshot:{}", copies[0])] {
        let e = src_rds.delete_db_snapshot().db_snapshot_identifier(&id).send().await;
        assert!(e.is_err(), "the source deleted {id}");
    }
    // Nor can it share a vault copy onwards.
    let e = src_rds
        .modify_db_snapshot_attribute()
        .db_snapshot_identifier(&copies[0])
        .attribute_name("restore")
        .values_to_add(STRANGER)
        .send()
        .await;
    assert!(e.is_err());
    assert_eq!(held(&w.vault).await.len(), all);

    // Three days on, inside the 7-day lock: nothing goes, whatever the retention.
    let now = Utc::now();
    let r = vault_keeper::handle(&w.pruner, sweep_event(), now + chrono::Duration::days(3)).await.expect("prune");
    assert!(r.deleted.is_empty() && r.kept == all, "{r:?}");
    // A year on: dry run names the older copy and deletes nothing; then it goes, the newest stays.
    let mut dry = sweep_event();
    dry["dry_run"] = json!(true);
    let later = now + chrono::Duration::days(400);
    let mut sweep = sweep_event();
    sweep["time"] = json!(later.to_rfc3339());
    dry["time"] = json!(later.to_rfc3339());
    let r = vault_keeper::handle(&w.pruner, dry, later).await.expect("dry run");
    assert_eq!(r.would_delete.len(), 1, "{r:?}");
    assert_eq!(held(&w.vault).await.len(), all);
    let r = vault_keeper::handle(&w.pruner, sweep, later).await.expect("prune");
    assert_eq!(r.deleted.len(), 1, "{r:?}");
    assert_eq!(held(&w.vault).await.len(), all - 1, "each other database keeps its one copy");
    let left = orders(held(&w.vault).await);
    // Identifiers carry the restore point: the larger is the newer.
    assert_eq!(left.iter().max(), copies.iter().max(), "the newest copy stays");
    assert_eq!(left.len(), 1);
    // The copier role deletes nothing, even on the pruner's schedule.
    let r = vault_keeper::handle(&w.keeper, sweep_event(), later).await.expect("copier sweep");
    assert!(r.deleted.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_source_account_gone_a_fresh_account_restores_from_the_vault_after_approval() {
    use failover_steps::{handle as steps, Deps as Steps};
    use lifeboat_core::failover::steps::Execution;

    let w = world().await;
    snapshot(&w.moto, SRC, "orders", "orders-nightly", &[]).await;
    w.round().await;
    // The primary account is gone: every snapshot and database of it deleted.
    let src_rds = w.moto.rds(SRC).await;
    for s in src_rds.describe_db_snapshots().send().await.expect("describe").db_snapshots() {
        if s.snapshot_type() == Some("manual") {
            src_rds
                .delete_db_snapshot()
                .db_snapshot_identifier(s.db_snapshot_identifier().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
    for id in ["orders", "reporting"] {
        src_rds
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .send()
            .await
            .expect("delete db");
    }
    src_rds
        .delete_db_cluster()
        .db_cluster_identifier("ledger")
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete cluster");

    // A fresh account, its Lifeboat stack: the config names the lost database and the vault.
    w.moto.act_as(RECOVERY).await;
    let recovery = w.moto.sdk(VAULT_REGION).await;
    let recovery_key = shared_key(&recovery, RECOVERY, &[]).await;
    let table = incidents_table(&w.moto, VAULT_REGION).await;
    w.moto.post("/_lifeboat/rds/subnet-group", &json!({"region": VAULT_REGION, "name": "dr-db", "account": RECOVERY}));
    let yaml = format!(
        "databases:\n  - name: orders-prod\n    source: arn:aws:rds:{SRC}:{ACCOUNT}:db:orders\n    tier: production\n    rpo: 24h\n    rto: 4h\n    copy_to:\n      - {{ region: {VAULT_REGION}, kms_key: \"{recovery_key}\" }}\n    failover:\n      strategy: restore-latest-copy\n      approval: required\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr-db, from_vault: \"{VAULT}\" }}\n"
    );
    let machine = aws_sdk_sfn::Client::new(&recovery)
        .create_state_machine()
        .name("lifeboat-failover")
        .definition(r#"{"StartAt":"Wait","States":{"Wait":{"Type":"Wait","Seconds":3600,"End":true}}}"#)
        .role_arn(format!("arn:aws:iam::{RECOVERY}:role/lifeboat"))
        .send()
        .await
        .expect("machine")
        .state_machine_arn()
        .to_owned();
    // The recovery account's own copier, pruner and RPO monitor leave the lost account's
    // database alone (LIFEBOAT_ACCOUNT_ID): its copies, retention and RPO are not theirs.
    let jobs = config_in_ssm(&w.moto, &yaml, Duration::ZERO).await.sources_only_of(RECOVERY);
    assert!(jobs.get().await.expect("config").databases.is_empty(), "no snapshot job for another account's source");
    assert_eq!(jobs.get_all().await.expect("config").databases.len(), 1, "the recovery itself still sees it");
    let copier = snapshot_copier::Deps::new(jobs, &recovery);
    let swept = snapshot_copier::handle(&copier, event("scheduled-sweep.json", None), Utc::now()).await.expect("sweep");
    assert!(swept.started.is_empty() && swept.failed.is_empty() && swept.unprotected.is_empty(), "{swept:?}");
    let config = config_in_ssm(&w.moto, &yaml, Duration::ZERO).await;
    let trigger = failover_trigger::Deps::new(config, &recovery, &table, &machine, Duration::from_secs(1));
    let recovery_queue = bus_queue(&recovery, "to-vault", vault::RECOVERY_EVENTS).await;

    // A person asks for the failover: the incident opens and the vault is asked to share.
    let request = json!({"database": "orders-prod", "reason": "the primary account is gone", "requested_by": "sre"});
    let started = failover_trigger::handle(&trigger, request.clone(), Utc::now()).await.expect("trigger");
    let incident = started.incident_id.clone().expect("incident");
    let config = config_in_ssm(&w.moto, &yaml, Duration::ZERO).await;
    let steps_deps = Steps::new(config, &recovery, &table);
    let parsed = lifeboat_core::config::Config::from_yaml(&yaml).expect("config");
    let lifeboat_core::failover::Start::Failover(mut reqs) =
        lifeboat_core::failover::classify(&parsed, &request, Utc::now()).expect("request")
    else {
        panic!("the request was ignored")
    };
    let req = reqs.remove(0);
    let db = &parsed.databases[0];
    let mut exec = Execution::new(db, &req, &incident, Duration::from_secs(1));
    let step = |action: &'static str, exec: Execution| {
        let deps = &steps_deps;
        async move { steps(deps, json!({"action": action, "execution": exec}), Utc::now()).await }
    };
    // Before the vault answers, preflight waits (retryable), and nothing is shared yet.
    let early = step("preflight", exec.clone()).await.expect_err("no share yet");
    assert!(early.is_retryable(), "{early}");
    let asked = bus_events(&recovery, &recovery_queue).await;
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["account"], RECOVERY);
    let shared = vault_keeper::handle(&w.keeper, asked[0].clone(), Utc::now()).await.expect("vault shares");
    assert_eq!(shared.shared_for_restore.len(), 1, "{shared:?}");

    exec = step("preflight", exec).await.expect("preflight");
    let planned = exec.preflight.as_ref().and_then(|p| p.snapshot.clone()).expect("a snapshot planned");
    assert!(planned.starts_with(&format!("arn:aws:rds:{VAULT_REGION}:{VAULT}:snapshot:lifeboat-vault-")), "{planned}");
    // Without the approval the config demands, act refuses and nothing is copied or restored.
    let refused = step("act", exec.clone()).await.expect_err("no approval");
    assert!(!refused.is_retryable(), "{refused}");
    let rds = aws_sdk_rds::Client::new(&recovery);
    assert!(rds.describe_db_instances().send().await.expect("instances").db_instances().is_empty());
    assert!(held(&recovery).await.is_empty(), "nothing copied before the approval");

    approval_recorded(&steps_deps.store, &exec.incident_id, "sre-lead").await;
    let acted = step("act", exec.clone()).await.expect("act");
    let again = step("act", exec).await.expect("act again, as a Lambda retry");
    assert_eq!(again.recovery, acted.recovery);
    // moto takes an automated snapshot of the restored instance (`rds:`): not ours to count.
    let local: Vec<_> = held(&recovery).await.into_iter().filter(|(id, _, _)| !id.starts_with("rds:")).collect();
    assert_eq!(local.len(), 1, "one copy in the fresh account: {local:?}");
    assert_eq!(local[0].1.as_deref(), Some(recovery_key.as_str()), "under the fresh account's own key");
    assert_eq!(tag(&local[0].2, "lifeboat:database"), Some("orders-prod"));
    let restored = rds.describe_db_instances().send().await.expect("instances");
    let ids: Vec<&str> = restored.db_instances().iter().filter_map(|i| i.db_instance_identifier()).collect();
    assert_eq!(ids, [acted.recovery.as_ref().expect("recovery").id.as_str()], "{ids:?}");
    // A stranger asking the vault gets nothing.
    let stranger = json!({"source": vault::RECOVERY_EVENTS, "detail-type": vault::RESTORE_REQUESTED, "account": STRANGER,
        "detail": {"database": format!("{ACCOUNT}/orders")}});
    let e = vault_keeper::handle(&w.keeper, stranger, Utc::now()).await.expect_err("stranger");
    assert!(e.to_string().contains("RestoreAccountIds"), "{e}");
    let vault_shares = shares(&w.vault).await;
    assert_eq!(vault_shares.len(), 1, "shared with the recovery account only: {vault_shares:?}");
    assert_eq!(vault_shares[0].1, vec![RECOVERY.to_owned()]);
    let _ = BTreeSet::<String>::new();
}

/// The vault stack as written (infra/vault.yaml): what the source account may do there, and who
/// may delete.
#[test]
fn the_vault_stack_lets_the_source_put_events_and_nothing_else_and_only_the_pruner_delete() {
    let text = std::fs::read_to_string(repo_root().join("infra/vault.yaml")).expect("vault.yaml");
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    let resources = t["Resources"].as_mapping().expect("resources");
    let mentions_source =
        |v: &serde_yaml_ng::Value| serde_yaml_ng::to_string(v).unwrap_or_default().contains("SourceAccountId");
    for (name, r) in resources {
        let name = name.as_str().unwrap_or_default();
        let kind = r["Type"].as_str().unwrap_or_default();
        // No role trusts the source account; the one grant naming it as a principal is the bus's.
        if kind == "AWS::IAM::Role" {
            assert!(!mentions_source(&r["Properties"]["AssumeRolePolicyDocument"]), "{name} trusts the source");
        }
        if kind == "AWS::Events::EventBusPolicy" && mentions_source(&r["Properties"]["Statement"]["Principal"]) {
            assert_eq!(r["Properties"]["Statement"]["Action"].as_str(), Some("events:PutEvents"), "{name}");
        }
    }
    let statements = |function: &str| -> Vec<serde_yaml_ng::Value> {
        resources[function]["Properties"]["Policies"][0]["Statement"].as_sequence().cloned().unwrap_or_default()
    };
    let deletes =
        |s: &serde_yaml_ng::Value| serde_yaml_ng::to_string(&s["Action"]).unwrap_or_default().contains("Delete");
    let copier = statements("VaultCopierFunction");
    assert!(
        copier.iter().filter(|s| deletes(s)).all(|s| s["Effect"].as_str() == Some("Deny")),
        "the copier can't delete"
    );
    assert!(copier.iter().any(|s| deletes(s) && s["Resource"].as_str() == Some("*")));
    let pruner = statements("VaultPrunerFunction");
    let allowed: Vec<_> = pruner.iter().filter(|s| deletes(s)).collect();
    assert_eq!(allowed.len(), 2, "{allowed:?}");
    for s in allowed {
        assert!(serde_yaml_ng::to_string(&s["Resource"]).unwrap_or_default().contains("lifeboat-vault-*"), "{s:?}");
        assert!(serde_yaml_ng::to_string(&s["Condition"]).unwrap_or_default().contains("lifeboat:managed"), "{s:?}");
    }
}

/// The guardrail SCP's content as infra/vault-guardrail.yaml writes it (`!Sub`/`!Ref` left as
/// their text: only the actions and effects are read).
fn guardrail_scp() -> String {
    fn plain(v: &serde_yaml_ng::Value) -> Value {
        use serde_yaml_ng::Value as Y;
        match v {
            Y::Tagged(t) => plain(&t.value),
            Y::Mapping(m) => {
                Value::Object(m.iter().map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), plain(v))).collect())
            }
            Y::Sequence(l) => Value::Array(l.iter().map(plain).collect()),
            Y::String(s) => json!(s),
            other => json!(serde_yaml_ng::to_string(other).unwrap_or_default().trim()),
        }
    }
    let text = std::fs::read_to_string(repo_root().join("infra/vault-guardrail.yaml")).expect("vault-guardrail.yaml");
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    let policy = &t["Resources"]["VaultGuardrail"]["Properties"];
    assert_eq!(policy["Type"].as_str(), Some("SERVICE_CONTROL_POLICY"));
    plain(&policy["Content"]).to_string()
}

/// What a copier sweep's report says of the guardrail.
async fn guardrail(keeper: &vault_keeper::Deps) -> String {
    let report = vault_keeper::handle(keeper, sweep_event(), Utc::now()).await.expect("sweep");
    report.guardrail.expect("the sweep reports the guardrail")
}

/// vault-keeper's RPO report says whether the guardrail binds the vault account, as Organizations
/// answers a member account: not known without a policy id or without the management account's
/// delegated read; NOT in place while the SCP is not attached above the account; in place once it
/// is, on the account or on the root it inherits from; NOT in place again once it no longer denies
/// deletes. (moto can't enforce an SCP: what it denies is checked in the document, iam.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vault_reports_whether_its_guardrail_scp_is_in_place() {
    use aws_sdk_organizations::types::{OrganizationFeatureSet, PolicyType};
    let moto = Moto::start();
    // This test's management account is ACCOUNT; the vault is a member account it creates.
    let orgs = aws_sdk_organizations::Client::new(&moto.sdk(SRC).await);
    orgs.create_organization().feature_set(OrganizationFeatureSet::All).send().await.expect("organization");
    orgs.create_account().account_name("lifeboat-vault").email("vault@example.com").send().await.expect("account");
    let accounts = orgs.list_accounts().send().await.expect("accounts");
    let vault_account = accounts
        .accounts()
        .iter()
        .find(|a| a.name() == Some("lifeboat-vault"))
        .and_then(|a| a.id())
        .expect("id")
        .to_owned();
    let vault_sdk = moto.sdk_as(VAULT_REGION, &vault_account).await;
    let mut keeper = vault_keeper::Deps::new(
        VaultSettings { account: vault_account.clone(), ..settings("arn:aws:kms:us-west-2:210987654321:key/none") },
        Role::Copier,
        false,
        &vault_sdk,
    );
    keeper.emit_metrics = false;
    let said = guardrail(&keeper).await;
    assert!(said.starts_with("not known: the vault stack names no GuardrailPolicyId"), "{said}");

    let made = orgs
        .create_policy()
        .name("lifeboat-vault-guardrail")
        .description("Lifeboat vault guardrail")
        .r#type(PolicyType::ServiceControlPolicy)
        .content(guardrail_scp())
        .send()
        .await
        .expect("policy");
    let id = made.policy().and_then(|p| p.policy_summary()).and_then(|s| s.id()).expect("policy id").to_owned();
    keeper.guardrail_policy = Some(id.clone());
    let said = guardrail(&keeper).await;
    assert!(said.starts_with("not known: ") && said.contains("AccessDenied"), "no delegated read: {said}");

    orgs.register_delegated_administrator()
        .account_id(&vault_account)
        .service_principal("ssm.amazonaws.com")
        .send()
        .await
        .expect("delegate");
    let said = guardrail(&keeper).await;
    assert!(said.starts_with("NOT in place: "), "not attached yet: {said}");

    orgs.attach_policy().policy_id(&id).target_id(&vault_account).send().await.expect("attach");
    let said = guardrail(&keeper).await;
    assert!(said.starts_with("in place: "), "attached to the account: {said}");

    orgs.detach_policy().policy_id(&id).target_id(&vault_account).send().await.expect("detach");
    let root = orgs.list_roots().send().await.expect("roots").roots()[0].id().expect("root id").to_owned();
    orgs.attach_policy().policy_id(&id).target_id(&root).send().await.expect("attach to the root");
    let said = guardrail(&keeper).await;
    assert!(said.starts_with("in place: "), "inherited from the root: {said}");

    let allow_all =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    orgs.update_policy().policy_id(&id).content(allow_all.to_string()).send().await.expect("edit");
    let said = guardrail(&keeper).await;
    assert!(said.contains("no longer denies rds:DeleteDBSnapshot"), "{said}");
}

/// The vault's alarms (its RPO, its dead letters) notify the topic the stack is given: a stale
/// vault tells someone.
#[test]
fn the_vault_alarms_notify_the_alarm_topic() {
    let text = std::fs::read_to_string(repo_root().join("infra/vault.yaml")).expect("vault.yaml");
    let t: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).expect("yaml");
    assert!(t["Parameters"]["AlarmTopicArn"].get("Default").is_none(), "the topic is required");
    let alarms: Vec<_> = t["Resources"]
        .as_mapping()
        .expect("resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .collect();
    assert_eq!(alarms.len(), 2);
    for (name, r) in alarms {
        let actions = serde_yaml_ng::to_string(&r["Properties"]["AlarmActions"]).unwrap_or_default();
        assert!(actions.contains("AlarmTopicArn"), "{name:?}: {actions}");
    }
}

/// `scripts/vault-senders.py CONFIG REGION...`, as scripts/deploy.sh runs it before it builds or
/// deploys anything: (exit code, stdout, stderr).
fn vault_senders(config: &str, regions: &[&str]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("lifeboat-vault-senders-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{}.yaml", regions.join("-")));
    std::fs::write(&path, config).expect("config");
    let python = std::env::var_os("LIFEBOAT_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    let out = std::process::Command::new(python)
        .arg(repo_root().join("scripts/vault-senders.py"))
        .arg(&path)
        .args(regions)
        .output()
        .expect("python");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A vault stack answers one region (infra/vault.yaml's SourceRegion). With a stack in each region
/// (Recovers=own) each sends the copies of the databases whose source is in its region, so a vault
/// that databases of two source regions send to would answer only one of them and the other's
/// transit copies would never be cleaned up: the deploy refuses that config, naming the databases.
/// One stack sends everything from its own region, which is then the vault's SourceRegion; so do
/// databases of one source region, or vaults set apart per region.
#[test]
fn the_deploy_refuses_a_vault_that_several_regions_would_send_to() {
    let db = |name: &str, region: &str, vault: &str| {
        format!(
            "  - name: {name}\n    source: arn:aws:rds:{region}:123456789012:db:{name}\n    tier: production\n    rpo: 1h\n    rto: 4h\n{vault}"
        )
    };
    let top = format!(
        "vault:\n  account: \"{VAULT}\"\n  region: {VAULT_REGION}\n  share_key: arn:aws:kms:{VAULT_REGION}:123456789012:key/share\n  retention: 35d\n"
    );
    let two_regions = format!("{top}databases:\n{}{}", db("orders", "us-east-1", ""), db("ledger", "eu-west-1", ""));

    let (code, _, err) = vault_senders(&two_regions, &["us-east-1", "eu-west-1"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains(&format!("vault account {VAULT} in {VAULT_REGION}")), "{err}");
    assert!(err.contains("us-east-1: orders") && err.contains("eu-west-1: ledger"), "{err}");
    assert!(err.contains("SourceRegion"), "{err}");

    // One stack sends both databases' copies from its own region.
    let (code, out, err) = vault_senders(&two_regions, &["us-east-1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("its stack's SourceRegion is us-east-1"), "{out}");

    // Each source region's databases with a vault of their own.
    let own = format!(
        "    vault: {{ account: \"{VAULT}\", region: eu-central-1, share_key: \"arn:aws:kms:eu-central-1:123456789012:key/s\", retention: 35d }}\n"
    );
    let apart = format!("{top}databases:\n{}{}", db("orders", "us-east-1", ""), db("ledger", "eu-west-1", &own));
    let (code, out, err) = vault_senders(&apart, &["us-east-1", "eu-west-1"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("in {VAULT_REGION}: its stack's SourceRegion is us-east-1")), "{out}");
    assert!(out.contains("in eu-central-1: its stack's SourceRegion is eu-west-1"), "{out}");

    // scripts/deploy.sh runs the check before it builds anything.
    let deploy = std::fs::read_to_string(repo_root().join("scripts/deploy.sh")).expect("deploy.sh");
    let check = deploy.find("scripts/vault-senders.py \"$config\"").expect("deploy.sh runs the check");
    assert!(check < deploy.find("\nsam build").expect("sam build"), "the check comes before the build");
}
