//! Where a database serves now. A resolved failover that moved it (a promoted replica, a switched
//! global cluster, a restore) records its active side; the config keeps saying what the user
//! wrote. Every scheduled job reads the config through `follow`, so the copier copies what serves,
//! the pruner and the RPO monitor look after it, and nothing fails over a database that already
//! moved, without a config edit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::arn::{RdsArn, RdsResource};
use crate::config::failover::Strategy;
use crate::config::{Config, CopyTarget, Database};
use crate::failover::steps::{Resource, ResourceKind};

/// The active side of one database, as the failover that moved it recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Active {
    pub database: String,
    /// What serves now.
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// When the failover that moved it resolved.
    pub since: DateTime<Utc>,
    pub incident: String,
    /// What served before (the configured source, or the previous active side). Lifeboat never
    /// deletes or overwrites it: it is the diverged old primary people decide about.
    pub previous: String,
}

/// What a failover that resolved by `strategy` onto `recovered` leaves as `db`'s active side:
/// None when the same database serves (a failover inside its cluster, a Multi-AZ reboot).
pub fn moved(
    db: &Database,
    strategy: Strategy,
    recovered: &Resource,
    endpoint: Option<&str>,
    incident: &str,
    since: DateTime<Utc>,
) -> Option<Active> {
    if matches!(strategy, Strategy::AuroraFailover | Strategy::RebootMultiAz) {
        return None;
    }
    let resource = match recovered.kind {
        ResourceKind::Cluster => RdsResource::Cluster,
        ResourceKind::Instance => RdsResource::Instance,
    };
    let arn = RdsArn::new(&db.source.partition, &recovered.region, &db.source.account, resource, &recovered.id);
    (arn != db.source).then(|| Active {
        database: db.name.clone(),
        arn: arn.to_string(),
        endpoint: endpoint.map(str::to_owned),
        since,
        incident: incident.to_owned(),
        previous: db.source.to_string(),
    })
}

/// How a moved database is protected now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protected {
    /// Nothing would recover it: no copies leave its region.
    No,
    /// Its snapshots are copied to another region; no replica waits there.
    CopiesOnly,
}

impl Protected {
    pub fn as_str(self) -> &'static str {
        match self {
            Protected::No => "no",
            Protected::CopiesOnly => "copies only",
        }
    }
}

/// The config as it serves now: each moved database's source is its active side; its copies go
/// to the configured DR regions but the one it now runs in; and its failover plan, written for
/// the old primary (its target now serves, its alarms watch the old one), is set aside until a
/// way back is built, so no signal starts a failover that already happened. Records that no
/// longer match a database (renamed, removed) or are unreadable change nothing: `unusable` says
/// which, for the jobs to log.
pub fn follow(config: &Config, actives: &[Active]) -> Config {
    let mut out = config.clone();
    for db in &mut out.databases {
        let Some(a) = actives.iter().find(|a| a.database == db.name) else { continue };
        let Ok(arn) = a.arn.parse::<RdsArn>() else { continue };
        if arn.resource != db.source.resource {
            continue;
        }
        db.copy_to.retain(|t| t.region != arn.region);
        db.source = arn;
        db.failover = None;
    }
    out
}

/// Records `follow` could not apply: a database no longer in the config, an ARN that does not
/// parse or is of another kind than the configured source.
pub fn unusable<'a>(config: &Config, actives: &'a [Active]) -> Vec<&'a Active> {
    actives
        .iter()
        .filter(|a| {
            let db = config.database_named(&a.database);
            let arn = a.arn.parse::<RdsArn>().ok();
            !matches!((db, arn), (Some(db), Some(arn)) if arn.resource == db.source.resource)
        })
        .collect()
}

/// How `followed` (a database as `follow` left it) is protected.
pub fn protected(followed: &Database) -> Protected {
    if followed.copy_to.is_empty() {
        Protected::No
    } else {
        Protected::CopiesOnly
    }
}

/// The DR regions a moved database's copies go to, for what people read.
pub fn copy_regions(followed: &Database) -> Vec<&str> {
    followed.copy_to.iter().map(|t: &CopyTarget| t.region.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:123456789012:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to: [{ region: us-west-2 }, { region: eu-west-1 }]\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:123456789012:db:orders-replica\n      approval: required\n  - name: ledger\n    source: arn:aws:rds:us-east-1:123456789012:cluster:ledger\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to: [{ region: us-west-2 }]\n";

    fn replica() -> Resource {
        Resource {
            region: "us-west-2".into(),
            kind: ResourceKind::Instance,
            id: "orders-replica".into(),
            instance: None,
            recovered_to: None,
        }
    }

    fn at() -> DateTime<Utc> {
        "2026-12-07T14:02:00Z".parse().unwrap()
    }

    #[test]
    fn a_promoted_replica_is_the_active_side_and_the_old_primary_is_what_served_before() {
        let config = Config::from_yaml(YAML).unwrap();
        let db = config.database_named("orders-prod").unwrap();
        let a = moved(db, Strategy::PromoteReplica, &replica(), Some("orders-replica.w2"), "i-1", at()).unwrap();
        assert_eq!(a.arn, "arn:aws:rds:us-west-2:123456789012:db:orders-replica");
        assert_eq!(a.previous, "arn:aws:rds:us-east-1:123456789012:db:orders-prod");
        assert_eq!((a.incident.as_str(), a.since), ("i-1", at()));
        let same = Resource { region: "us-east-1".into(), id: "orders-prod".into(), ..replica() };
        for s in [Strategy::AuroraFailover, Strategy::RebootMultiAz, Strategy::PointInTime] {
            assert_eq!(moved(db, s, &same, None, "i-1", at()), None, "{s:?}: the same database serves");
        }
        let restored = Resource { region: "us-east-1".into(), id: "orders-prod-pitr".into(), ..replica() };
        let pitr = moved(db, Strategy::PointInTime, &restored, None, "i-1", at()).unwrap();
        assert_eq!(pitr.arn, "arn:aws:rds:us-east-1:123456789012:db:orders-prod-pitr", "a restore serves now");
    }

    #[test]
    fn following_a_moved_database_copies_what_serves_elsewhere_and_sets_its_old_plan_aside() {
        let config = Config::from_yaml(YAML).unwrap();
        let db = config.database_named("orders-prod").unwrap();
        let a = moved(db, Strategy::PromoteReplica, &replica(), None, "i-1", at()).unwrap();
        let followed = follow(&config, std::slice::from_ref(&a));
        let orders = followed.database_named("orders-prod").unwrap();
        assert_eq!(orders.source.to_string(), a.arn);
        assert_eq!(copy_regions(orders), ["eu-west-1"], "never a copy into the region it runs in");
        assert!(orders.failover.is_none(), "its target serves now: no failover of a failover");
        assert_eq!(protected(orders), Protected::CopiesOnly);
        let ledger = followed.database_named("ledger").unwrap();
        assert_eq!(ledger.source, config.database_named("ledger").unwrap().source, "others untouched");
        assert!(unusable(&config, std::slice::from_ref(&a)).is_empty());

        let only_west = Config::from_yaml(&YAML.replace(", { region: eu-west-1 }", "")).unwrap();
        let alone = follow(&only_west, std::slice::from_ref(&a));
        assert_eq!(protected(alone.database_named("orders-prod").unwrap()), Protected::No);
    }

    #[test]
    fn a_record_that_matches_no_database_changes_nothing_and_is_named() {
        let config = Config::from_yaml(YAML).unwrap();
        let db = config.database_named("orders-prod").unwrap();
        let a = moved(db, Strategy::PromoteReplica, &replica(), None, "i-1", at()).unwrap();
        let gone = Active { database: "orders-old".into(), ..a.clone() };
        let garbled = Active { arn: "not an arn".into(), ..a.clone() };
        let other_kind = Active { database: "ledger".into(), ..a.clone() };
        let bad = [gone, garbled, other_kind];
        let followed = follow(&config, &bad);
        for (db, was) in followed.databases.iter().zip(&config.databases) {
            assert_eq!((&db.source, &db.copy_to), (&was.source, &was.copy_to));
        }
        assert_eq!(unusable(&config, &bad).len(), 3);
    }
}
