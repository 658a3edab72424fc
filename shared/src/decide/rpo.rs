//! Recovery point objectives, measured: for each protected database and DR region, how old is the
//! newest point Lifeboat could recover to (its newest available copy, or its replica's lag), and
//! is that within the database's `rpo`? Pure: the monitor lists RDS and reads CloudWatch, then asks.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::arn::RdsResource;
use crate::config::vault::{Frequency, Vault};
use crate::config::{Config, Database};
use crate::copy::RegionListings;
use crate::failover::Strategy;
use crate::snapshot::{Snapshot, TAG_DATABASE};

/// A copy still `copying` / `pending` after this long is stuck: RDS copies of even large
/// snapshots finish within hours, and a stuck one protects nothing while it pins quota.
pub const STUCK_AFTER: Duration = Duration::from_secs(6 * 3600);

/// One database in one DR region.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub database: String,
    pub region: String,
    pub tier: &'static str,
    pub rpo_seconds: u64,
    /// Age of the newest available Lifeboat copy's restore point.
    pub copy_age_seconds: Option<i64>,
    /// The failover target's replica lag, when it is a replica in this region.
    pub replica_lag_seconds: Option<i64>,
    /// The best of the two: how much data a recovery here would lose now.
    pub recovery_point_age_seconds: Option<i64>,
    /// No recovery point, or one older than the `rpo`.
    pub breached: bool,
    /// `region:id` of copies stuck in flight.
    pub stuck_copies: Vec<String>,
}

/// The replica whose lag counts for `db` in `region`: a `promote-replica` target instance there.
pub fn replica_in<'a>(db: &'a Database, region: &str) -> Option<&'a str> {
    let f = db.failover.as_ref()?;
    let t = f.target.as_ref()?;
    (f.strategy == Strategy::PromoteReplica && t.resource == RdsResource::Instance && t.region == region)
        .then_some(t.id.as_str())
}

/// The regions whose recovery point `db` is assessed in: its DR copies' regions, and its
/// `promote-replica` target's region (a database protected by a replica alone is assessed too).
pub fn assessed_regions(db: &Database) -> Vec<&str> {
    let mut regions: Vec<&str> = db.copy_to.iter().map(|t| t.region.as_str()).collect();
    if let Some(t) = db.failover.as_ref().and_then(|f| f.target.as_ref()) {
        if replica_in(db, &t.region).is_some() && !regions.contains(&t.region.as_str()) {
            regions.push(&t.region);
        }
    }
    regions
}

/// Every replica whose `ReplicaLag` counts for a recovery point: `(region, instance)`, each once.
/// rpo-monitor, the recoverability report and `lifeboat status` read these, and pass what they
/// read to `assess`.
pub fn replicas(config: &Config) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = config
        .databases
        .iter()
        .flat_map(|db| {
            assessed_regions(db)
                .into_iter()
                .filter_map(move |r| replica_in(db, r).map(|id| (r.to_owned(), id.to_owned())))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn ours_in<'a>(db: &'a Database, listing: &'a [Snapshot]) -> impl Iterator<Item = &'a Snapshot> + 'a {
    listing.iter().filter(move |s| {
        s.arn.resource == db.snapshot_resource() && s.is_lifeboat_copy() && s.tags.get(TAG_DATABASE) == Some(&db.name)
    })
}

/// The newest available Lifeboat copy of `db` in a region's listing: what a restore would use.
pub fn newest_copy<'a>(db: &'a Database, listing: &'a [Snapshot]) -> Option<&'a Snapshot> {
    ours_in(db, listing)
        .filter(|s| s.is_available())
        .filter(|s| s.restore_point().is_some())
        .max_by_key(|s| s.restore_point())
}

/// Every database with DR regions (`assessed_regions`), each region: listings as the sweep lists
/// them, `lag` the replica lag read for `replicas` (seconds, None when unknown). The recovery
/// point is the newer of the newest copy and the replica (now minus its lag); a negative lag
/// (RDS's -1: replication not active) is no recovery point.
pub fn assess(
    config: &Config,
    listings: &RegionListings,
    lag: &dyn Fn(&str, &str) -> Option<i64>,
    now: DateTime<Utc>,
) -> Vec<Assessment> {
    let empty = Vec::new();
    let mut out = Vec::new();
    for db in &config.databases {
        for region in assessed_regions(db) {
            let listing = listings.get(region).unwrap_or(&empty);
            let newest = newest_copy(db, listing).and_then(Snapshot::restore_point);
            let copy_age = newest.map(|t| (now - t).num_seconds().max(0));
            let replica_lag = replica_in(db, region).and_then(|id| lag(region, id)).filter(|l| *l >= 0);
            let best = match (copy_age, replica_lag) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let rpo = db.rpo.as_secs();
            let stuck = ours_in(db, listing)
                .filter(|s| matches!(s.status.as_str(), "copying" | "pending" | "creating"))
                .filter(|s| s.created.is_some_and(|c| (now - c).to_std().is_ok_and(|age| age > STUCK_AFTER)))
                .map(|s| format!("{region}:{}", s.arn.id))
                .collect();
            out.push(Assessment {
                database: db.name.clone(),
                region: region.to_owned(),
                tier: db.tier.as_str(),
                rpo_seconds: rpo,
                copy_age_seconds: copy_age,
                replica_lag_seconds: replica_lag,
                recovery_point_age_seconds: best,
                breached: best.is_none_or(|age| age > rpo as i64),
                stuck_copies: stuck,
            });
        }
        if let Some(v) = &db.vault {
            out.push(vault_assessment(db, v, listings.get(&db.source.region).map_or(&[][..], Vec::as_slice), now));
        }
    }
    out
}

/// The vault's place in assessments, notices and metrics: `vault:<region>`.
pub const VAULT_PREFIX: &str = "vault:";

/// How old the newest copy the vault holds may get, as this account knows it (the
/// `lifeboat:vaulted` tag the vault's answer sets): the vault's frequency (a day for
/// `every-snapshot`, RDS's automated snapshot cadence) plus `STUCK_AFTER` for the copies on the way.
pub fn vault_target(v: &Vault) -> Duration {
    let every = match v.frequency {
        Frequency::Every(d) => d,
        Frequency::EverySnapshot => Duration::from_secs(86_400),
    };
    every + STUCK_AFTER
}

fn vault_assessment(db: &Database, v: &Vault, source_listing: &[Snapshot], now: DateTime<Utc>) -> Assessment {
    let age = crate::vault::newest_vaulted(db, source_listing).map(|t| (now - t).num_seconds().max(0));
    let target = vault_target(v).as_secs();
    Assessment {
        database: db.name.clone(),
        region: format!("{VAULT_PREFIX}{}", v.region),
        tier: db.tier.as_str(),
        rpo_seconds: target,
        copy_age_seconds: age,
        replica_lag_seconds: None,
        recovery_point_age_seconds: age,
        breached: age.is_none_or(|a| a > target as i64),
        stuck_copies: Vec::new(),
    }
}

impl Assessment {
    /// The CloudWatch EMF line: `RecoveryPointAgeSeconds` and `RpoBreached` by database and
    /// region, and by tier (what the template's alarms watch).
    pub fn metrics(&self, at: DateTime<Utc>) -> String {
        let mut metrics = vec![("RpoBreached", i64::from(self.breached), "Count")];
        // No recovery point has no age to report; RpoBreached says it.
        if let Some(age) = self.recovery_point_age_seconds {
            metrics.push(("RecoveryPointAgeSeconds", age, "Seconds"));
        }
        crate::metrics::emf(
            at,
            &[("Database", &self.database), ("Region", &self.region), ("Tier", self.tier)],
            &[&["Database", "Region"], &["Tier"]],
            &metrics,
        )
    }

    /// The breach state's identity, for "notify once when it enters, once when it leaves".
    pub fn state_key(&self) -> String {
        format!("rpo#{}#{}", self.database, self.region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::{SnapshotType, TAG_MANAGED, TAG_SOURCE_ARN};
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn config() -> Config {
        Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap()
    }

    fn copy(region: &str, db: &str, id: &str, hours_ago: i64, status: &str) -> Snapshot {
        Snapshot {
            arn: format!("arn:aws:rds:{region}:123456789012:snapshot:{id}").parse().unwrap(),
            database_id: db.into(),
            snapshot_type: SnapshotType::Manual,
            status: status.into(),
            created: Some(now() - chrono::Duration::hours(hours_ago)),
            original_created: Some(now() - chrono::Duration::hours(hours_ago)),
            encrypted: true,
            tags: [
                (TAG_MANAGED.to_string(), "true".to_string()),
                (TAG_DATABASE.to_string(), db.to_string()),
                (TAG_SOURCE_ARN.to_string(), "arn:aws:rds:us-east-1:123456789012:snapshot:x".to_string()),
            ]
            .into(),
        }
    }

    fn only(a: &[Assessment], db: &str, region: &str) -> Assessment {
        a.iter().find(|x| x.database == db && x.region == region).cloned().unwrap()
    }

    #[test]
    fn the_newest_available_copy_and_the_replica_lag_each_count_against_the_rpo() {
        let c = config();
        let mut listings = RegionListings::new();
        listings.insert(
            "us-west-2".into(),
            vec![
                copy("us-west-2", "reporting-staging", "lifeboat-r-1", 30, "available"),
                copy("us-west-2", "reporting-staging", "lifeboat-r-2", 2, "copying"),
                copy("us-west-2", "orders-prod", "lifeboat-o-1", 1, "available"),
            ],
        );
        // orders-prod: rpo 5m; its copy is an hour old but its replica lags 40 s.
        let lag = |region: &str, id: &str| (region == "us-west-2" && id == "orders-replica").then_some(40);
        let a = assess(&c, &listings, &lag, now());
        let orders = only(&a, "orders-prod", "us-west-2");
        assert_eq!((orders.copy_age_seconds, orders.replica_lag_seconds), (Some(3600), Some(40)));
        assert_eq!(orders.recovery_point_age_seconds, Some(40));
        assert!(!orders.breached);
        // reporting-staging: rpo 24h; the available copy is 30 h old (the newer one is still copying).
        let reporting = only(&a, "reporting-staging", "us-west-2");
        assert_eq!(reporting.copy_age_seconds, Some(30 * 3600));
        assert!(reporting.breached && reporting.stuck_copies.is_empty());
        // catalog-aurora has no copy at all in eu-west-1: no recovery point is a breach.
        let catalog = only(&a, "catalog-aurora", "eu-west-1");
        assert_eq!(catalog.recovery_point_age_seconds, None);
        assert!(catalog.breached);

        let no_lag = |_: &str, _: &str| None;
        assert!(only(&assess(&c, &listings, &no_lag, now()), "orders-prod", "us-west-2").breached);
    }

    #[test]
    fn a_database_protected_by_a_replica_alone_gets_its_recovery_point_from_the_replica_lag() {
        let c = Config::from_yaml(
            "databases:\n  - name: ledger\n    source: arn:aws:rds:us-east-1:123456789012:db:ledger\n    tier: \
             production\n    rpo: 15m\n    rto: 30m\n    failover:\n      strategy: promote-replica\n      \
             target: arn:aws:rds:us-west-2:123456789012:db:ledger-replica\n      approval: required\n",
        )
        .unwrap();
        assert_eq!(replicas(&c), [("us-west-2".to_owned(), "ledger-replica".to_owned())]);
        let lag = |region: &str, id: &str| (region == "us-west-2" && id == "ledger-replica").then_some(42);
        let a = assess(&c, &RegionListings::new(), &lag, now());
        let ledger = only(&a, "ledger", "us-west-2");
        assert_eq!((ledger.copy_age_seconds, ledger.recovery_point_age_seconds), (None, Some(42)));
        assert!(!ledger.breached, "42 s behind is within 15m");
        // RDS's -1: replication not active. No recovery point, and so a breach.
        let broken = assess(&c, &RegionListings::new(), &|_: &str, _: &str| Some(-1), now());
        let ledger = only(&broken, "ledger", "us-west-2");
        assert_eq!((ledger.replica_lag_seconds, ledger.recovery_point_age_seconds), (None, None));
        assert!(ledger.breached);
        // The example's orders-prod has both: its replica is assessed in its DR copies' region, once.
        assert_eq!(replicas(&config()), [("us-west-2".to_owned(), "orders-replica".to_owned())]);
    }

    #[test]
    fn copies_in_flight_for_longer_than_expected_are_reported_stuck() {
        let c = config();
        let mut listings = RegionListings::new();
        listings.insert("us-west-2".into(), vec![copy("us-west-2", "orders-prod", "lifeboat-o-9", 7, "copying")]);
        let a = assess(&c, &listings, &|_: &str, _: &str| None, now());
        assert_eq!(only(&a, "orders-prod", "us-west-2").stuck_copies, ["us-west-2:lifeboat-o-9"]);
    }

    #[test]
    fn the_metrics_line_is_valid_emf_with_both_dimension_sets() {
        let c = config();
        let a = assess(&c, &RegionListings::new(), &|_: &str, _: &str| Some(40), now());
        let line = only(&a, "orders-prod", "us-west-2").metrics(now());
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        let spec = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Dimensions"], serde_json::json!([["Database", "Region"], ["Tier"]]));
        for m in spec["Metrics"].as_array().unwrap() {
            assert!(v[m["Name"].as_str().unwrap()].is_number(), "{line}");
        }
        for d in ["Database", "Region", "Tier"] {
            assert!(v[d].is_string(), "{line}");
        }
        assert_eq!(v["RecoveryPointAgeSeconds"], 40);
        assert_eq!(v["RpoBreached"], 0, "40 s behind, against an rpo of 5m");
    }
}
