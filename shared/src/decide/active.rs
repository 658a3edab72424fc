//! Where a database serves now. A resolved failover that moved it (a promoted replica, a switched
//! global cluster, a restore) records its active side; the config keeps saying what the user
//! wrote. Every scheduled job reads the config through `follow`, so the copier copies what serves,
//! the pruner and the RPO monitor look after it, and nothing fails over a database that already
//! moved, without a config edit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::arn::{RdsArn, RdsResource};
use crate::config::failover::{Failover, Strategy, Triggers};
use crate::config::{Config, CopyTarget, Database};
use crate::failover::steps::{DbState, Membership, Resource, ResourceKind};
use crate::restore::Settings;
use crate::snapshot::TAG_DATABASE;

/// On the replica re-protect builds: the database whose way back it is.
pub const TAG_WAY_BACK: &str = "lifeboat:way-back-of";
/// On the old primary, left as it was: the incident that moved its database away.
pub const TAG_OLD_PRIMARY: &str = "lifeboat:old-primary-of";
/// RDS: a DB instance identifier has "1 to 63 letters, numbers, or hyphens".
const IDENTIFIER_MAX: usize = 63;

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
    /// The way back, once re-protect built it: a read replica of `arn` in `previous`'s region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    /// Set by re-protect once `previous`'s region answered: copies of what serves now go there
    /// too, under the old primary's key (a key of that region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies_home: Option<CopiesHome>,
}

/// Copies into the old primary's region, once it answers again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiesHome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key: Option<String>,
}

impl Active {
    /// A failback that took `written` back onto its configured source: it serves where the
    /// config says again, and the config's own failover is its protection.
    pub fn home(&self, written: &Database) -> bool {
        self.arn.parse::<RdsArn>().is_ok_and(|arn| arn == written.source)
    }
}

/// How the way back takes the database home.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Way {
    /// A cross-region read replica of the active instance (`CreateDBInstanceReadReplica`).
    Replica,
    /// An Aurora MySQL replica cluster of the active cluster (`CreateDBCluster` with
    /// `ReplicationSourceIdentifier`), and its instance once the cluster is available.
    ReplicaCluster,
    /// The old primary itself, a secondary of the global database again: "the role of the
    /// current primary DB cluster and the selected (target) DB cluster are switched"
    /// (FailoverGlobalCluster). Nothing to build; a failback switches over to it.
    GlobalSecondary,
}

/// The way back: a replica of the active side in the old primary's region, with the old
/// primary's network, groups, class and key; or, for a global database, the old primary itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WayBack {
    pub way: Way,
    pub region: String,
    pub id: String,
    pub arn: String,
    /// The active side's ARN: RDS needs the ARN of a source in another region.
    pub source: String,
    pub settings: Settings,
    /// The old primary's key, a key of the replica's region: "If you create an encrypted read
    /// replica in a different AWS Region, then you must specify a KMS key identifier for the
    /// destination AWS Region" (CreateDBInstanceReadReplica, KmsKeyId; CreateDBCluster says the
    /// same of a replica cluster).
    pub kms_key: Option<String>,
    /// A replica cluster's engine (CreateDBCluster requires it) and version (the old primary's:
    /// RDS would pick its default), and its instance's identifier.
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub instance: Option<String>,
    pub tags: Vec<(String, String)>,
    /// Made with IAM database authentication on: the database's checks log in with an IAM token
    /// (`validate.connect.iam_user`), and the failback's validation runs on this replica.
    pub iam_auth: bool,
}

impl WayBack {
    /// One line for the plan, the timeline and `lifeboat reprotect`.
    pub fn describe(&self) -> String {
        let key = self.kms_key.as_ref().map_or_else(String::new, |k| format!(", encrypted with {k}"));
        match self.way {
            Way::Replica => format!(
                "read replica {} in {} of {}, {}{key}",
                self.id,
                self.region,
                self.source,
                self.settings.describe(crate::restore::Shape::Instance)
            ),
            Way::ReplicaCluster => format!(
                "replica cluster {} (instance {}) in {} of {}, {}{key}",
                self.id,
                self.instance.as_deref().unwrap_or("?"),
                self.region,
                self.source,
                self.settings.describe(crate::restore::Shape::Aurora)
            ),
            Way::GlobalSecondary => format!(
                "the old primary {} in {}, a secondary of the global database again, replicating from {}: nothing \
                 to build",
                self.id, self.region, self.source
            ),
        }
    }
}

/// The identifier of what Lifeboat builds in the old region: `lf-` as every database Lifeboat
/// creates (IAM scopes its tags by it); the time tells two round trips' apart and keeps a repeat
/// on the same name. `room` is left for a suffix (a replica cluster's instance).
fn built_id(old: &str, since: DateTime<Utc>, room: usize) -> String {
    let suffix = format!("-r{}", since.format("%Y%m%d%H%M"));
    let stem: String = old.chars().take(IDENTIFIER_MAX - suffix.len() - 3 - room).collect();
    format!("lf-{}{suffix}", stem.trim_end_matches('-'))
}

/// What re-protect builds for `written` (the database as the config says it) that moved to `a`,
/// given what RDS says of the old primary now (None: it is gone) and, for a global database, the
/// old primary's place in it and that of what serves now (`serving`). Refused, with what to do:
/// a move within one region, an old primary whose settings are gone, an Aurora engine without
/// replica clusters, a global database whose old primary is not (yet) its secondary or whose
/// writer is not what serves.
pub fn way_back(
    written: &Database,
    a: &Active,
    old: Option<&DbState>,
    global: Option<&Membership>,
    serving: Option<&Membership>,
) -> Result<WayBack, String> {
    let name = &a.database;
    let previous: RdsArn = a.previous.parse().map_err(|e| format!("{name}'s old primary: {e}"))?;
    let source: RdsArn = a.arn.parse().map_err(|e| format!("{name}'s active side: {e}"))?;
    if previous.region == source.region {
        return Err(format!(
            "{name} serves in {}, the region it was in: the way back is its configured replica and copies, not \
             a replica in another region",
            source.region
        ));
    }
    let Some(old) = old else {
        return Err(format!(
            "the old primary {} is gone, so the network, groups and key a replica there needs are unknown: create \
             the replica by hand",
            a.previous
        ));
    };
    let region = previous.region.clone();
    let tags = vec![(TAG_DATABASE.to_owned(), name.clone()), (TAG_WAY_BACK.to_owned(), name.clone())];
    let iam_auth = written.checked_by_iam_token();
    if written
        .failover
        .as_ref()
        .is_some_and(|f| matches!(f.strategy, Strategy::GlobalSwitchover | Strategy::GlobalFailover))
    {
        return match global {
            None => Err(format!(
                "the old primary {} is in no global database now: add it (or a new cluster) in {region} to the \
                 global database as a secondary, then run re-protect again",
                a.previous
            )),
            Some(m) if m.is_writer => Err(format!(
                "the old primary {} still says it writes global database {}: the failover has not reached \
                 {region} yet; re-protect waits",
                a.previous, m.global
            )),
            Some(m) if m.moving_to.is_some() => {
                Err(format!("global database {} is switching over: re-protect waits until it is done", m.global))
            }
            // A switchover to the old primary must take it from what serves: that one must be the
            // same global database's writer (a database that moved by a restore is not).
            Some(m) if !serving.is_some_and(|s| s.is_writer && s.global == m.global) => Err(format!(
                "{} serves but is not the writer of global database {}: a switchover there would not bring it \
                 home; give it a way back by hand",
                a.arn, m.global
            )),
            Some(_) => Ok(WayBack {
                way: Way::GlobalSecondary,
                id: previous.id.clone(),
                arn: a.previous.clone(),
                region,
                source: a.arn.clone(),
                settings: old.settings.clone(),
                kms_key: None,
                engine: old.engine.clone(),
                engine_version: old.engine_version.clone(),
                instance: None,
                tags: Vec::new(),
                iam_auth: false,
            }),
        };
    }
    if written.is_cluster() {
        let engine = old.engine.clone().unwrap_or_default();
        // Cross-region replica clusters are binlog replication: Aurora MySQL only.
        if !(engine == "aurora" || engine.starts_with("aurora-mysql")) {
            return Err(format!(
                "{name} runs {}: only Aurora MySQL has cross-region replica clusters; a global database \
                 (failover.strategy global-failover) gives {} its way back",
                if engine.is_empty() { "an unknown engine" } else { &engine },
                name
            ));
        }
        let id = built_id(&previous.id, a.since, 2);
        let arn = RdsArn::new(&previous.partition, &region, &previous.account, RdsResource::Cluster, &id);
        return Ok(WayBack {
            way: Way::ReplicaCluster,
            arn: arn.to_string(),
            instance: Some(format!("{id}-1")),
            id,
            region,
            source: a.arn.clone(),
            settings: old.settings.clone(),
            kms_key: old.kms_key.clone(),
            engine: Some(engine),
            engine_version: old.engine_version.clone(),
            tags,
            iam_auth,
        });
    }
    let id = built_id(&previous.id, a.since, 0);
    let arn = RdsArn::new(&previous.partition, &region, &previous.account, RdsResource::Instance, &id);
    Ok(WayBack {
        way: Way::Replica,
        region,
        arn: arn.to_string(),
        id,
        source: a.arn.clone(),
        settings: old.settings.clone(),
        kms_key: old.kms_key.clone(),
        engine: None,
        engine_version: None,
        instance: None,
        tags,
        iam_auth,
    })
}

/// What a failover that resolved by `strategy` onto `recovered` leaves as `db`'s active side:
/// None when the same database serves (a failover inside its cluster, a Multi-AZ reboot).
/// `account` is the recovering stack's: a recovery account restores a vault copy into its own.
pub fn moved(
    db: &Database,
    strategy: Strategy,
    recovered: &Resource,
    endpoint: Option<&str>,
    (incident, account): (&str, &str),
    since: DateTime<Utc>,
) -> Option<Active> {
    if matches!(strategy, Strategy::AuroraFailover | Strategy::RebootMultiAz) {
        return None;
    }
    let resource = match recovered.kind {
        ResourceKind::Cluster => RdsResource::Cluster,
        ResourceKind::Instance => RdsResource::Instance,
    };
    let arn = RdsArn::new(&db.source.partition, &recovered.region, account, resource, &recovered.id);
    (arn != db.source).then(|| Active {
        database: db.name.clone(),
        arn: arn.to_string(),
        endpoint: endpoint.map(str::to_owned),
        since,
        incident: incident.to_owned(),
        previous: db.source.to_string(),
        replica: None,
        copies_home: None,
    })
}

/// How a moved database is protected now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protected {
    /// Nothing would recover it: no copies leave its region.
    No,
    /// Its snapshots are copied to another region; no replica waits there.
    CopiesOnly,
    /// Re-protect built the way back: a replica in the old primary's region (readiness says
    /// whether it is available and inside the RPO).
    Replica,
    /// Home again after a failback: its configured failover protects it.
    Home,
}

impl Protected {
    pub fn as_str(self) -> &'static str {
        match self {
            Protected::No => "no",
            Protected::CopiesOnly => "copies only",
            Protected::Replica => "replica",
            Protected::Home => "home: its configured failover",
        }
    }
}

/// The config as it serves now: each moved database's source is its active side; its copies go
/// to the configured DR regions but the one it now runs in; and its failover plan, written for
/// the old primary (its target now serves, its alarms watch the old one), is set aside, so no
/// signal starts a failover that already happened. Once the old region answered (re-protect
/// says so), copies go there too. Once re-protect built the way back, the plan
/// is promote-replica onto it (the configured global strategy towards it, for a global database), with the configured
/// approval, DNS and endpoint parameter (which readiness then judges, and a failback runs). A
/// record naming the configured source is a failback home: the config serves as written. Records that no longer match a database
/// (renamed, removed) or are unreadable change nothing: `unusable` says which, for the jobs to log.
pub fn follow(config: &Config, actives: &[Active]) -> Config {
    let mut out = config.clone();
    for db in &mut out.databases {
        let Some(a) = actives.iter().find(|a| a.database == db.name) else { continue };
        let Ok(arn) = a.arn.parse::<RdsArn>() else { continue };
        // Home again (a failback onto the configured source): the config as written serves.
        if arn.resource != db.source.resource || arn == db.source {
            continue;
        }
        db.copy_to.retain(|t| t.region != arn.region);
        db.moved_from = a.previous.parse().ok();
        if let (Some(home), Some(from)) = (&a.copies_home, &db.moved_from) {
            if from.region != arn.region && db.copy_to.iter().all(|t| t.region != from.region) {
                db.copy_to.push(CopyTarget {
                    region: from.region.clone(),
                    kms_key: home.kms_key.clone(),
                    option_group: None,
                });
            }
        }
        db.source = arn;
        let back = a.replica.as_deref().and_then(|r| r.parse::<RdsArn>().ok());
        db.failover = match (db.failover.take(), back) {
            (Some(f), Some(back)) => Some(Failover {
                // A global database keeps its strategy, now towards the old primary (an outage
                // where it serves needs the data-losing failover: a switchover is refused then;
                // a planned failback switches over, `failover::failback`); a replica is promoted.
                strategy: match f.strategy {
                    Strategy::GlobalSwitchover | Strategy::GlobalFailover => f.strategy,
                    _ => Strategy::PromoteReplica,
                },
                target: Some(back),
                // The alarms watch the old primary; RDS events and Health still speak of the pair.
                triggers: Triggers { alarms: Vec::new(), ..f.triggers },
                restore: None,
                // A failover pair's controls, the other way round: the record naming the way
                // back (the old primary's region) On, the one naming what serves now Off.
                dns: f.dns.map(|mut d| {
                    if let Some(c) = d.routing_controls.as_mut() {
                        std::mem::swap(&mut c.on, &mut c.off);
                    }
                    d
                }),
                ..f
            }),
            _ => None,
        };
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
pub fn protected(a: &Active, followed: &Database) -> Protected {
    if followed.moved_from.is_none() && a.home(followed) {
        Protected::Home
    } else if a.replica.is_some() {
        Protected::Replica
    } else if followed.copy_to.is_empty() {
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

    const ACCOUNT: &str = "123456789012";

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
        let a =
            moved(db, Strategy::PromoteReplica, &replica(), Some("orders-replica.w2"), ("i-1", ACCOUNT), at()).unwrap();
        assert_eq!(a.arn, "arn:aws:rds:us-west-2:123456789012:db:orders-replica");
        assert_eq!(a.previous, "arn:aws:rds:us-east-1:123456789012:db:orders-prod");
        assert_eq!((a.incident.as_str(), a.since), ("i-1", at()));
        let same = Resource { region: "us-east-1".into(), id: "orders-prod".into(), ..replica() };
        for s in [Strategy::AuroraFailover, Strategy::RebootMultiAz, Strategy::PointInTime] {
            assert_eq!(moved(db, s, &same, None, ("i-1", ACCOUNT), at()), None, "{s:?}: the same database serves");
        }
        let restored = Resource { region: "us-east-1".into(), id: "orders-prod-pitr".into(), ..replica() };
        let pitr = moved(db, Strategy::PointInTime, &restored, None, ("i-1", ACCOUNT), at()).unwrap();
        assert_eq!(pitr.arn, "arn:aws:rds:us-east-1:123456789012:db:orders-prod-pitr", "a restore serves now");
        let vault = Resource { id: "lf-orders-prod-i-1".into(), ..replica() };
        let elsewhere = moved(db, Strategy::RestoreLatestCopy, &vault, None, ("i-1", "444455556666"), at()).unwrap();
        assert_eq!(
            elsewhere.arn, "arn:aws:rds:us-west-2:444455556666:db:lf-orders-prod-i-1",
            "the recovering account's"
        );
    }

    #[test]
    fn following_a_moved_database_copies_what_serves_elsewhere_and_sets_its_old_plan_aside() {
        let config = Config::from_yaml(YAML).unwrap();
        let db = config.database_named("orders-prod").unwrap();
        let a = moved(db, Strategy::PromoteReplica, &replica(), None, ("i-1", ACCOUNT), at()).unwrap();
        let followed = follow(&config, std::slice::from_ref(&a));
        let orders = followed.database_named("orders-prod").unwrap();
        assert_eq!(orders.source.to_string(), a.arn);
        assert_eq!(copy_regions(orders), ["eu-west-1"], "never a copy into the region it runs in");
        assert!(orders.failover.is_none(), "its target serves now: no failover of a failover");
        assert_eq!(protected(&a, orders), Protected::CopiesOnly);
        let ledger = followed.database_named("ledger").unwrap();
        assert_eq!(ledger.source, config.database_named("ledger").unwrap().source, "others untouched");
        assert!(unusable(&config, std::slice::from_ref(&a)).is_empty());

        // Once re-protect heard the old region answer, copies go there too, under its key.
        let home = Active { copies_home: Some(CopiesHome { kms_key: Some("k-east".into()) }), ..a.clone() };
        let followed = follow(&config, std::slice::from_ref(&home));
        let orders = followed.database_named("orders-prod").unwrap();
        assert_eq!(copy_regions(orders), ["eu-west-1", "us-east-1"]);
        assert_eq!(orders.copy_to[1].kms_key.as_deref(), Some("k-east"));

        let only_west = Config::from_yaml(&YAML.replace(", { region: eu-west-1 }", "")).unwrap();
        let alone = follow(&only_west, std::slice::from_ref(&a));
        assert_eq!(protected(&a, alone.database_named("orders-prod").unwrap()), Protected::No);
    }

    fn old_primary() -> DbState {
        DbState {
            id: "orders-prod".into(),
            status: "available".into(),
            kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/old".into()),
            settings: Settings {
                instance_class: Some("db.r6g.large".into()),
                subnet_group: Some("orders-private".into()),
                security_groups: vec!["sg-orders".into()],
                parameter_group: Some("orders-pg15".into()),
                ..Settings::default()
            },
            ..DbState::default()
        }
    }

    #[test]
    fn the_way_back_is_a_replica_in_the_old_region_with_the_old_primarys_settings() {
        let config = Config::from_yaml(YAML).unwrap();
        let db = config.database_named("orders-prod").unwrap();
        let a = moved(db, Strategy::PromoteReplica, &replica(), None, ("i-1", ACCOUNT), at()).unwrap();
        let back = way_back(db, &a, Some(&old_primary()), None, None).unwrap();
        assert_eq!((back.region.as_str(), back.id.as_str()), ("us-east-1", "lf-orders-prod-r202612071402"));
        assert_eq!(back.arn, "arn:aws:rds:us-east-1:123456789012:db:lf-orders-prod-r202612071402");
        assert_eq!(back.source, a.arn, "a replica of what serves now, by ARN (another region)");
        assert_eq!(back.settings, old_primary().settings);
        assert_eq!(back.kms_key.as_deref(), Some("arn:aws:kms:us-east-1:123456789012:key/old"), "a key of its region");
        assert!(back.tags.contains(&(TAG_WAY_BACK.to_owned(), "orders-prod".to_owned())));
        assert_ne!(back.id, "orders-prod", "never the old primary's name: it is left as it is");
        let long =
            Active { previous: format!("arn:aws:rds:us-east-1:123456789012:db:{}", "a".repeat(63)), ..a.clone() };
        assert!(way_back(db, &long, Some(&old_primary()), None, None).unwrap().id.len() <= 63);

        let gone = way_back(db, &a, None, None, None).unwrap_err();
        assert!(gone.contains("is gone") && gone.contains("by hand"), "{gone}");
        let here = Active { arn: "arn:aws:rds:us-east-1:123456789012:db:orders-pitr".into(), ..a.clone() };
        assert!(way_back(db, &here, Some(&old_primary()), None, None).unwrap_err().contains("the region it was in"));
        let ledger = config.database_named("ledger").unwrap();
        let cluster = Active { database: "ledger".into(), ..a.clone() };
        assert!(way_back(ledger, &cluster, Some(&old_primary()), None, None).unwrap_err().contains("Aurora"));
    }

    #[test]
    fn once_the_way_back_exists_the_plan_is_to_promote_it_with_the_configured_approval() {
        let config = Config::from_yaml(YAML).unwrap();
        let db = config.database_named("orders-prod").unwrap();
        let mut a = moved(db, Strategy::PromoteReplica, &replica(), None, ("i-1", ACCOUNT), at()).unwrap();
        let back = way_back(db, &a, Some(&old_primary()), None, None).unwrap();
        a.replica = Some(back.arn.clone());
        let followed = follow(&config, std::slice::from_ref(&a));
        let orders = followed.database_named("orders-prod").unwrap();
        let f = orders.failover.as_ref().expect("a plan again");
        assert_eq!(f.strategy, Strategy::PromoteReplica);
        assert_eq!(f.target.as_ref().map(ToString::to_string).as_deref(), Some(back.arn.as_str()));
        assert_eq!(f.approval, db.failover.as_ref().unwrap().approval, "the same approval as the way out");
        assert_eq!(protected(&a, orders), Protected::Replica);
        assert_eq!(crate::failover::steps::recovered_from(orders, f.strategy), "us-east-1");

        let paired = YAML.replace(
            "      approval: required\n  - name: ledger",
            "      approval: required\n      dns:\n        zone_id: Z1\n        record: db.orders.internal\n        mode: \
             routing-control\n        routing_controls:\n          on: arn:aws:route53-recovery-control::123456789012:\
             controlpanel/p/routingcontrol/west\n          off: arn:aws:route53-recovery-control::123456789012:\
             controlpanel/p/routingcontrol/east\n          cluster_endpoints: [{ region: eu-west-1, url: \"https://e\" }]\n  \
             - name: ledger",
        );
        let paired = Config::from_yaml(&paired).unwrap();
        let followed = follow(&paired, std::slice::from_ref(&a));
        let dns = followed.database_named("orders-prod").unwrap().failover.as_ref().unwrap().dns.clone().unwrap();
        let c = dns.routing_controls.unwrap();
        assert!(c.on.ends_with("/east") && c.off.ends_with("/west"), "home's record On, the away one Off: {c:?}");
    }

    #[test]
    fn a_record_that_matches_no_database_changes_nothing_and_is_named() {
        let config = Config::from_yaml(YAML).unwrap();
        let db = config.database_named("orders-prod").unwrap();
        let a = moved(db, Strategy::PromoteReplica, &replica(), None, ("i-1", ACCOUNT), at()).unwrap();
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

    const GLOBAL: &str = "databases:\n  - name: ledger\n    source: arn:aws:rds:us-east-1:123456789012:cluster:ledger\n    tier: production\n    rpo: 5m\n    rto: 30m\n    copy_to: [{ region: eu-west-1 }]\n    failover:\n      strategy: global-failover\n      target: arn:aws:rds:us-west-2:123456789012:cluster:ledger-west\n      approval: required\n";

    fn west_cluster() -> Resource {
        Resource { kind: ResourceKind::Cluster, id: "ledger-west".into(), ..replica() }
    }

    #[test]
    fn a_global_databases_way_back_is_its_old_primary_once_it_is_a_secondary_again() {
        let config = Config::from_yaml(GLOBAL).unwrap();
        let db = config.database_named("ledger").unwrap();
        let mut a = moved(db, Strategy::GlobalFailover, &west_cluster(), None, ("i-9", ACCOUNT), at()).unwrap();
        assert_eq!(a.arn, "arn:aws:rds:us-west-2:123456789012:cluster:ledger-west");
        let old = DbState { id: "ledger".into(), status: "available".into(), ..DbState::default() };
        let member = |writer: bool, moving: Option<&str>| Membership {
            global: "ledger-global".into(),
            is_writer: writer,
            moving_to: moving.map(str::to_owned),
            status: Some("available".into()),
        };
        let writer = Membership { is_writer: true, ..member(false, None) };
        let back = way_back(db, &a, Some(&old), Some(&member(false, None)), Some(&writer)).unwrap();
        assert_eq!(back.way, Way::GlobalSecondary);
        assert_eq!(back.arn, a.previous, "the old primary itself: nothing is built");
        assert!(back.describe().contains("nothing to build"), "{}", back.describe());
        let waits = way_back(db, &a, Some(&old), Some(&member(true, None)), Some(&writer)).unwrap_err();
        assert!(waits.contains("still says it writes"), "{waits}");
        let switching = way_back(db, &a, Some(&old), Some(&member(false, Some("x"))), Some(&writer));
        assert!(switching.unwrap_err().contains("switching"));
        // What serves must be that global database's writer: a database that moved otherwise is not.
        let elsewhere = Membership { global: "another".into(), ..writer.clone() };
        for serving in [None, Some(&elsewhere), Some(&member(false, None))] {
            let refused = way_back(db, &a, Some(&old), Some(&member(false, None)), serving).unwrap_err();
            assert!(refused.contains("is not the writer of global database ledger-global"), "{refused}");
        }
        let detached = way_back(db, &a, Some(&old), None, None).unwrap_err();
        assert!(detached.contains("in no global database") && detached.contains("as a secondary"), "{detached}");

        // The plan is the configured one towards it (an outage where it serves now needs the
        // data-losing failover); a planned failback switches over (`failover::failback`).
        a.replica = Some(back.arn.clone());
        let followed = follow(&config, std::slice::from_ref(&a));
        let f = followed.database_named("ledger").unwrap().failover.clone().expect("a plan home");
        assert_eq!(f.strategy, Strategy::GlobalFailover);
        let ask = serde_json::json!({"database": "ledger", "reason": "home", "requested_by": "a", "failback": true});
        let Ok(crate::failover::Start::Failover(asked)) = crate::failover::classify(&followed, &ask, at()) else {
            panic!("a failback request")
        };
        assert_eq!(asked[0].strategy, Strategy::GlobalSwitchover, "planned: a switchover, no data lost");
        assert_eq!(f.target.map(|t| t.to_string()).as_deref(), Some(a.previous.as_str()));
        assert_eq!(f.approval, db.failover.as_ref().unwrap().approval);

        // Home again: the failback records the configured source, and the config serves as written.
        let followed_db = followed.database_named("ledger").unwrap();
        let east = Resource { region: "us-east-1".into(), id: "ledger".into(), ..west_cluster() };
        let home = moved(followed_db, Strategy::GlobalSwitchover, &east, None, ("i-10", ACCOUNT), at()).unwrap();
        assert_eq!((home.arn.as_str(), home.previous.as_str()), (a.previous.as_str(), a.arn.as_str()));
        assert!(home.home(db) && !a.home(db));
        let serves = follow(&config, std::slice::from_ref(&home));
        let ledger = serves.database_named("ledger").unwrap();
        assert_eq!((&ledger.source, &ledger.moved_from), (&db.source, &None), "the config as written");
        assert_eq!((&ledger.copy_to, &ledger.failover), (&db.copy_to, &db.failover));
    }

    #[test]
    fn an_aurora_mysql_way_back_is_a_replica_cluster_and_other_engines_are_told_to_go_global() {
        let yaml = GLOBAL.replace("global-failover", "promote-replica");
        let config = Config::from_yaml(&yaml).unwrap();
        let db = config.database_named("ledger").unwrap();
        let a = moved(db, Strategy::PromoteReplica, &west_cluster(), None, ("i-9", ACCOUNT), at()).unwrap();
        let old = |engine: &str| DbState {
            id: "ledger".into(),
            status: "available".into(),
            engine: Some(engine.into()),
            kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/old".into()),
            settings: Settings {
                subnet_group: Some("ledger-private".into()),
                cluster_parameter_group: Some("ledger-cpg".into()),
                instance_class: Some("db.r6g.large".into()),
                ..Settings::default()
            },
            ..DbState::default()
        };
        let back = way_back(db, &a, Some(&old("aurora-mysql")), None, None).unwrap();
        assert_eq!(back.way, Way::ReplicaCluster);
        assert_eq!(back.arn, "arn:aws:rds:us-east-1:123456789012:cluster:lf-ledger-r202612071402");
        assert_eq!(back.instance.as_deref(), Some("lf-ledger-r202612071402-1"));
        assert_eq!((back.engine.as_deref(), back.source.as_str()), (Some("aurora-mysql"), a.arn.as_str()));
        assert_eq!(back.settings, old("aurora-mysql").settings, "the old primary's network, groups and class");
        assert!(back.kms_key.is_some());
        let long =
            Active { previous: format!("arn:aws:rds:us-east-1:123456789012:cluster:{}", "l".repeat(63)), ..a.clone() };
        let long = way_back(db, &long, Some(&old("aurora-mysql")), None, None).unwrap();
        assert!(long.id.len() <= 63 && long.instance.unwrap().len() <= 63);
        let pg = way_back(db, &a, Some(&old("aurora-postgresql")), None, None).unwrap_err();
        assert!(pg.contains("only Aurora MySQL") && pg.contains("global"), "{pg}");
    }
}
