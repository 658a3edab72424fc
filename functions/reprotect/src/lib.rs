//! reprotect: after a failover that moved a database, build the way back — a read replica of the
//! new primary in the old primary's region, with the old primary's network, groups, class and
//! key (`lifeboat_core::active::way_back`). On demand (`lifeboat reprotect`, through the operator
//! URL) for one database, or on a schedule for those whose config says `reprotect: auto`, each
//! as soon as the old region answers. The old primary is never deleted or changed: it is tagged
//! and reported. Every step is safe to run twice.

use chrono::{DateTime, Utc};
use lifeboat_core::active::{self, Active, CopiesHome, Way, TAG_OLD_PRIMARY};
use lifeboat_core::arn::{RdsArn, RdsResource};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::rds::Rds;
use lifeboat_core::aws::recovery::Acted;
use lifeboat_core::aws::{active as store, required_env, ConfigCache, SdkConfig};
use lifeboat_core::config::failover::{Reprotect, Strategy};
use lifeboat_core::config::Database;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::incident::Entry;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info, warn};

pub struct Deps {
    pub config: ConfigCache,
    pub rds: Rds,
    pub store: IncidentStore,
    ssm: aws_sdk_ssm::Client,
    sdk: SdkConfig,
}

impl Deps {
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let config = ConfigCache::from_env(sdk).await?;
        Ok(Deps::new(config, sdk, &required_env("LIFEBOAT_INCIDENTS_TABLE")?))
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig, table: &str) -> Self {
        Deps {
            config,
            rds: Rds::new(sdk),
            store: IncidentStore::new(sdk, table),
            ssm: aws_sdk_ssm::Client::new(sdk),
            sdk: sdk.clone(),
        }
    }

    /// SSM in `region`: the old primary's region is told where the database serves, so its
    /// stack's jobs follow the new primary too once it answers.
    fn ssm_in(&self, region: &str) -> aws_sdk_ssm::Client {
        let conf = aws_sdk_ssm::config::Builder::from(&self.sdk)
            .region(aws_sdk_ssm::config::Region::new(region.to_owned()))
            .build();
        aws_sdk_ssm::Client::from_conf(conf)
    }
}

const BY: &str = "reprotect";
/// How long the schedule waits for another region's SSM: one that is down must not use up the run.
const TELL_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A person's request: one database, or its plan only.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub database: String,
    #[serde(default)]
    pub dry_run: bool,
}

/// `{"database": …, "dry_run": …}` for one database (refused, with why, when it can't be done);
/// anything else (the schedule) for every moved database whose config says `reprotect: auto`,
/// each one's outcome reported without failing the others.
pub async fn handle(deps: &Deps, payload: Value, now: DateTime<Utc>) -> Result<Value, LifeboatError> {
    let written = deps.config.written().await?;
    // Read fresh, not through the config's cache: what the last run built must not be built again.
    let actives = store::read_all(&deps.ssm).await?;
    if payload.get("database").is_some() {
        let ask: Ask = serde_json::from_value(payload)
            .map_err(|e| LifeboatError::Rejected(format!("not a re-protect request: {e}")))?;
        let Some(db) = written.database_named(&ask.database) else {
            return Err(LifeboatError::Rejected(format!("no database named {} in the config", ask.database)));
        };
        let Some(a) = actives.iter().find(|a| a.database == db.name && !a.home(db)) else {
            return Err(LifeboatError::Rejected(format!(
                "{} has not moved: it serves where the config says, and its configured failover is its protection",
                db.name
            )));
        };
        return one(deps, db, a, ask.dry_run, now).await;
    }
    // Every record told to the region its database moved from, once that region answers: its
    // stack then follows the move too (a failover can't tell a region that is down).
    let mut told = Vec::new();
    for a in actives.iter() {
        let Ok(previous) = a.previous.parse::<RdsArn>() else { continue };
        let home = deps.ssm_in(&previous.region);
        match tokio::time::timeout(TELL_WITHIN, store::put(&home, a)).await {
            Ok(Ok(true)) => told.push(json!({"database": a.database, "region": previous.region})),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => warn!(database = %a.database, region = %previous.region, error = %e, "not told yet"),
            Err(_) => warn!(database = %a.database, region = %previous.region, "not told yet: no answer"),
        }
    }
    let mut done = Vec::new();
    let mut waiting = Vec::new();
    // Each moved database with `auto`, also those with a way back: one that was deleted since is
    // built again (a describe each run for those that stand).
    for a in actives.iter() {
        let Some(db) = written.database_named(&a.database).filter(|db| !a.home(db)) else { continue };
        if db.failover.as_ref().map(|f| f.reprotect) != Some(Reprotect::Auto) {
            continue;
        }
        match one(deps, db, a, false, now).await {
            Ok(v) if v["recorded"] == true => done.push(v),
            Ok(_) => {}
            Err(e) => {
                warn!(database = %db.name, error = %e, "not re-protected yet");
                waiting.push(json!({"database": db.name, "why": e.to_string(), "retryable": e.is_retryable()}));
            }
        }
    }
    Ok(json!({"reprotected": done, "waiting": waiting, "told": told}))
}

async fn one(
    deps: &Deps,
    db: &Database,
    a: &Active,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<Value, LifeboatError> {
    let previous: RdsArn =
        a.previous.parse().map_err(|e| LifeboatError::Rejected(format!("{}'s old primary: {e}", db.name)))?;
    if let Some(replica) = &a.replica {
        let arn: RdsArn =
            replica.parse().map_err(|e| LifeboatError::Rejected(format!("{}'s way back: {e}", db.name)))?;
        let cluster = arn.resource == RdsResource::Cluster;
        let state = deps.rds.database(&arn.region, &arn.id, cluster, None).await?;
        if let Some(state) = state {
            if !dry_run {
                store::put(&deps.ssm_in(&previous.region), a).await?;
            }
            return Ok(json!({
                "database": db.name, "replica": replica, "built": false, "recorded": false, "status": state.status,
            }));
        }
        // Gone (deleted since it was built): the database is unprotected again; build it anew.
        warn!(database = %db.name, replica = %replica, "the recorded way back is gone: building it again");
    }
    // The old region answering is what re-protect waits for: an error here is retryable.
    let waits = |e: LifeboatError| match e {
        LifeboatError::Transient(why) => LifeboatError::Transient(format!(
            "{} does not answer yet ({why}): re-protect waits for it",
            previous.region
        )),
        other => other,
    };
    let cluster = db.is_cluster();
    let old = deps.rds.database(&previous.region, &previous.id, cluster, None).await.map_err(waits)?;
    let (global, serving) = match db.failover.as_ref().map(|f| f.strategy) {
        Some(Strategy::GlobalSwitchover | Strategy::GlobalFailover) if old.is_some() => {
            let serves_in = a.arn.parse::<RdsArn>().map(|arn| arn.region).unwrap_or_default();
            (
                deps.rds.global_membership(&previous.region, &a.previous).await.map_err(waits)?,
                deps.rds.global_membership(&serves_in, &a.arn).await?,
            )
        }
        _ => (None, None),
    };
    let back =
        active::way_back(db, a, old.as_ref(), global.as_ref(), serving.as_ref()).map_err(LifeboatError::Rejected)?;
    if dry_run {
        return Ok(json!({"database": db.name, "dry_run": true, "would": back.describe(), "replica": back.arn}));
    }
    let again = a.replica.is_some();
    let acted = match back.way {
        Way::Replica => Some(deps.rds.create_replica(&back).await?),
        Way::ReplicaCluster => deps.rds.create_replica_cluster(&back).await?,
        // The old primary is the way back: nothing built, nothing written to it.
        Way::GlobalSecondary => Some(Acted::AlreadyDone),
    };
    let Some(acted) = acted else {
        return Err(LifeboatError::Transient(format!(
            "{} is being created in {}: its instance is added once it is available, at the next run",
            back.id, back.region
        )));
    };
    let left = if back.way == Way::GlobalSecondary {
        format!("the old primary {} is the way back, left as it is", a.previous)
    } else {
        deps.rds.tag(&previous, TAG_OLD_PRIMARY, &a.incident).await?;
        format!("the old primary {} is left as it is, tagged {TAG_OLD_PRIMARY}={}", a.previous, a.incident)
    };
    // The old region answers: copies of what serves go there too, under the old primary's key.
    let copies_home = Some(CopiesHome { kms_key: old.as_ref().and_then(|o| o.kms_key.clone()) });
    let now_active = Active { replica: Some(back.arn.clone()), copies_home, ..a.clone() };
    store::put(&deps.ssm, &now_active).await?;
    store::put(&deps.ssm_in(&previous.region), &now_active).await?;
    let what =
        format!("re-protect{}: {}; {left}", if again { " (the way back was gone)" } else { "" }, back.describe());
    // The timeline keeps one entry per key: a way back built again has its own (per minute, so a
    // retried run adds none).
    let key = if again { format!("reprotect:again:{}", now.format("%Y%m%dT%H%M")) } else { "reprotect".to_owned() };
    deps.store.record(&a.incident, &Entry::new(now, BY, &what, &key)).await?;
    info!(database = %db.name, replica = %back.arn, ?acted, "re-protect");
    Ok(json!({
        "database": db.name, "replica": back.arn, "built": acted == Acted::Started, "recorded": true,
        "plan": back.describe(),
    }))
}
