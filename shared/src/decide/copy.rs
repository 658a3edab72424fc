//! What to copy where. Pure: the copier reads RDS, asks these functions, then writes.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::arn::{RdsArn, RdsResource};
use crate::config::{Config, CopyTarget, Database};
use crate::retention::{self, Action};
use crate::snapshot::{
    tag_time, tag_value_ok, Snapshot, SnapshotType, TAG_DATABASE, TAG_MANAGED, TAG_SOURCE_ARN, TAG_SOURCE_CREATED,
};

/// RDS allows this many copies in flight into one destination region.
pub const INSTANCE_COPIES_IN_FLIGHT: usize = 20;
pub const CLUSTER_COPIES_IN_FLIGHT: usize = 5;
/// RDS allows 50 tags per resource; Lifeboat needs three of them.
const MAX_TAGS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRequest {
    pub database: String,
    pub source: RdsArn,
    /// Where the copy will live; its id is the deterministic target identifier.
    pub target: RdsArn,
    pub kms_key: Option<String>,
    pub option_group: Option<String>,
    pub tags: Vec<(String, String)>,
    /// RDS reports the copy at the target identifier `failed`: delete it, then copy again.
    pub replaces_failed: bool,
}

pub use crate::snapshot::{RegionListings, FAILED};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    Copy(Box<CopyRequest>),
    /// This region can't get a copy of this snapshot; the reason is for the log and the error.
    Refused {
        region: String,
        reason: String,
    },
}

/// Why a snapshot gets no copies at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotCopied {
    /// Lifeboat's own copy: copying it again would ping-pong between regions.
    IsLifeboatCopy,
    /// RDS announced it but it isn't `available` yet: worth retrying.
    NotAvailable(String),
    NoCopyTargets,
}

/// Eight hex digits of the ARN's SHA-256: what keeps Lifeboat's identifiers of two sources apart.
pub(crate) fn short_hash(source: &RdsArn) -> String {
    crate::text::short_digest(&source.to_string(), 4)
}

/// The copy's identifier: the same source always gives the same target, so a replayed event finds
/// the copy already there. The hash of the full source ARN keeps `rds:x` and a manual `rds-x`, or the
/// same name in two source regions, from colliding; the readable part is for people.
pub fn target_identifier(source: &RdsArn) -> String {
    // Cluster snapshot identifiers allow 63 characters, instance snapshot identifiers 255.
    let limit = if source.resource == RdsResource::ClusterSnapshot { 63 } else { 255 };
    let hash = short_hash(source);
    let mut readable = String::new();
    for c in source.id.chars() {
        let c = if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' };
        if !(c == '-' && (readable.is_empty() || readable.ends_with('-'))) {
            readable.push(c);
        }
    }
    let room = limit - "lifeboat-".len() - 1 - hash.len();
    readable.truncate(room);
    let readable = readable.trim_end_matches('-');
    if readable.is_empty() {
        format!("lifeboat-{hash}")
    } else {
        format!("lifeboat-{readable}-{hash}")
    }
}

/// The copy's tags: the user's tags from the source (RDS ignores `CopyTags` when tags are passed),
/// then Lifeboat's ownership tags, which win.
pub fn copy_tags(db: &Database, source: &Snapshot) -> Vec<(String, String)> {
    let mut ours = vec![
        (TAG_MANAGED.to_owned(), "true".to_owned()),
        (TAG_DATABASE.to_owned(), db.name.clone()),
        (TAG_SOURCE_ARN.to_owned(), source.arn.to_string()),
    ];
    if let Some(at) = source.restore_point() {
        ours.push((TAG_SOURCE_CREATED.to_owned(), tag_time(at)));
    }
    let mut tags: Vec<(String, String)> =
        source.user_tags().take(MAX_TAGS - ours.len()).map(|(k, v)| (k.clone(), v.clone())).collect();
    tags.extend(ours);
    tags
}

fn request(db: &Database, source: &Snapshot, target: &CopyTarget) -> Planned {
    let refused = |reason: String| Planned::Refused { region: target.region.clone(), reason };
    if source.encrypted && target.kms_key.is_none() {
        return refused(format!(
            "snapshot {} is encrypted and databases.{}.copy_to {} has no kms_key (KMS keys are regional)",
            source.arn, db.name, target.region
        ));
    }
    let tags = copy_tags(db, source);
    // RDS would refuse the whole copy for one bad tag; say which, before asking it.
    if let Some((key, why)) = tags.iter().find_map(|(k, v)| tag_value_ok(v).err().map(|why| (k, why))) {
        return refused(format!("snapshot {}: tag {key} can't be set: {why}", source.arn));
    }
    // CopyDBClusterSnapshot: "If you copy an unencrypted DB cluster snapshot and specify a value for
    // the KmsKeyId parameter, an error is returned." A DB snapshot copy gets encrypted with the key.
    let kms_key = if source.arn.resource == RdsResource::ClusterSnapshot && !source.encrypted {
        None
    } else {
        target.kms_key.clone()
    };
    Planned::Copy(Box::new(CopyRequest {
        database: db.name.clone(),
        source: source.arn.clone(),
        target: source.arn.sibling(&target.region, source.arn.resource, &target_identifier(&source.arn)),
        kms_key,
        option_group: target.option_group.clone(),
        tags,
        replaces_failed: false,
    }))
}

/// The copies one new snapshot of a protected database needs, one per DR region.
pub fn plan_for_snapshot(db: &Database, source: &Snapshot) -> Result<Vec<Planned>, NotCopied> {
    if source.is_lifeboat_copy() || source.is_vault_transit() {
        return Err(NotCopied::IsLifeboatCopy);
    }
    if !source.is_available() {
        return Err(NotCopied::NotAvailable(source.status.clone()));
    }
    if db.copy_to.is_empty() {
        return Err(NotCopied::NoCopyTargets);
    }
    Ok(db.copy_to.iter().map(|t| request(db, source, t)).collect())
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SweepPlan {
    /// Copies to start; those with `replaces_failed` first delete the failed copy in their place.
    pub copies: Vec<CopyRequest>,
    /// Copies that would exceed the destination's in-flight quota; the next sweep takes them.
    pub deferred: Vec<CopyRequest>,
    pub refused: Vec<(String, String)>,
    /// (database, region) pairs where every snapshot that should have a copy has one.
    pub up_to_date: Vec<(String, String)>,
    /// Databases with no available snapshot in the source region at all: nothing to restore from.
    pub unprotected: Vec<String>,
    /// Failed Lifeboat copies that no copy will replace (their source is gone or no longer
    /// needs one): deleted and reported, so they neither linger nor count against the quota.
    pub delete_failed: Vec<RdsArn>,
}

/// RDS is removing it: its identifier is not free yet.
const DELETING: &str = "deleting";

fn is_source_of(db: &Database, s: &Snapshot) -> bool {
    s.arn.region == db.source.region
        && s.arn.account == db.source.account
        && s.arn.resource == db.snapshot_resource()
        && s.database_id == db.source.id
        && !s.is_lifeboat_copy()
        && !s.is_vault_transit()
}

pub(crate) fn available_sources<'a>(db: &Database, source_listing: &'a [Snapshot]) -> Vec<&'a Snapshot> {
    source_listing.iter().filter(|s| is_source_of(db, s) && s.is_available()).collect()
}

/// Databases with no available snapshot in their source region at all: nothing to copy or
/// restore from.
pub fn unprotected(config: &Config, listings: &RegionListings) -> Vec<String> {
    let empty = Vec::new();
    config
        .databases
        .iter()
        .filter(|db| available_sources(db, listings.get(&db.source.region).unwrap_or(&empty)).is_empty())
        .map(|db| db.name.clone())
        .collect()
}

/// The newest of `snapshots` by restore point; the identifier breaks ties, as retention does.
fn newest<'a>(snapshots: &[&'a Snapshot]) -> Option<&'a Snapshot> {
    snapshots
        .iter()
        .copied()
        .max_by(|a, b| a.restore_point().cmp(&b.restore_point()).then_with(|| b.arn.id.cmp(&a.arn.id)))
}

/// The snapshot as the pruner will see its copy in `region`: Lifeboat-owned, manual, dated by
/// the restore point it holds, under the copy's identifier (retention breaks ties by identifier).
/// In-flight copies count as made, so they hold their slot.
fn as_copy(s: &Snapshot, region: &str) -> Snapshot {
    let mut c = s.clone();
    if !s.is_lifeboat_copy() {
        c.arn = s.arn.sibling(region, s.arn.resource, &target_identifier(&s.arn));
    }
    c.snapshot_type = SnapshotType::Manual;
    c.status = "available".into();
    c.created = s.restore_point();
    c.original_created = None;
    c.tags.insert(TAG_MANAGED.into(), "true".into());
    c
}

/// Which of `sources` need a copy in `region`, which holds `copies` (this database's live
/// Lifeboat copies there): those the DR copies' retention policy would keep once copied, so the
/// sweep and the pruner agree (a copy the pruner deleted is not made again, a kept slot never
/// stays empty). Without a copies policy, only the newest.
pub fn wanted_sources<'a>(
    db: &Database,
    region: &str,
    sources: &[&'a Snapshot],
    copies: &[&Snapshot],
    now: DateTime<Utc>,
) -> Vec<&'a Snapshot> {
    let Some(policy) = db.retention.as_ref().and_then(|r| r.copies.as_ref()) else {
        return newest(sources).into_iter().collect();
    };
    let copied: BTreeSet<&str> = copies.iter().filter_map(|c| c.copied_from()).collect();
    let missing: Vec<&'a Snapshot> =
        sources.iter().copied().filter(|s| !copied.contains(s.arn.to_string().as_str())).collect();
    let mut candidates: Vec<Snapshot> = copies.iter().map(|c| as_copy(c, region)).collect();
    let first_missing = candidates.len();
    candidates.extend(missing.iter().map(|s| as_copy(s, region)));
    let kept: BTreeSet<&RdsArn> = retention::plan(&candidates, policy, now, &BTreeSet::new())
        .into_iter()
        .filter(|d| matches!(d.action, Action::Keep(_)))
        .map(|d| &d.snapshot.arn)
        .collect();
    missing
        .into_iter()
        .zip(&candidates[first_missing..])
        .filter(|(_, c)| kept.contains(&c.arn))
        .map(|(s, _)| s)
        .collect()
}

/// Lifeboat's copies of `resource`'s kind still being made in the listed region: DR copies and
/// transit copies to a vault alike, as both hold a slot of the region's copy quota.
pub fn in_flight(listing: &[Snapshot], resource: RdsResource) -> usize {
    listing
        .iter()
        .filter(|s| s.arn.resource == resource && (s.is_lifeboat_copy() || s.is_vault_transit()))
        .filter(|s| !s.is_available() && s.status != FAILED)
        .count()
}

/// The scheduled sweep: every snapshot of every protected database that should have a copy in a
/// DR region gets one (see `wanted_sources`), failed copies are replaced, within RDS's in-flight
/// copy quotas. `listings` holds each region listed once; `now` dates the retention view.
pub fn plan_sweep(config: &Config, listings: &RegionListings, now: DateTime<Utc>) -> SweepPlan {
    let empty = Vec::new();
    let mut plan = SweepPlan::default();
    let mut flying: BTreeMap<(String, RdsResource), usize> = BTreeMap::new();
    for db in &config.databases {
        let source_listing = listings.get(&db.source.region).unwrap_or(&empty);
        let sources = available_sources(db, source_listing);
        if sources.is_empty() {
            plan.unprotected.push(db.name.clone());
            continue;
        }
        for target in &db.copy_to {
            let dest = listings.get(&target.region).unwrap_or(&empty);
            let ours: Vec<&Snapshot> = dest
                .iter()
                .filter(|s| {
                    s.arn.resource == db.snapshot_resource()
                        && s.is_lifeboat_copy()
                        && s.tags.get(TAG_DATABASE) == Some(&db.name)
                })
                .collect();
            // Failed copies are replaced or deleted; the pruner can't (they are not `available`).
            // Only tagged ones: IAM lets the copier delete only `lifeboat:managed=true` copies.
            let mut failed: BTreeSet<&RdsArn> = ours.iter().filter(|s| s.status == FAILED).map(|s| &s.arn).collect();
            let live: Vec<&Snapshot> =
                ours.into_iter().filter(|s| s.status != FAILED && s.status != DELETING).collect();
            let mut nothing_to_do = true;
            for source in wanted_sources(db, &target.region, &sources, &live, now) {
                let mut req = match request(db, source, target) {
                    Planned::Copy(req) => *req,
                    Planned::Refused { region, reason } => {
                        plan.refused.push((region, reason));
                        nothing_to_do = false;
                        continue;
                    }
                };
                let at_target = dest.iter().find(|s| s.arn.id == req.target.id).map(|s| s.status.as_str());
                match at_target {
                    // A copy whose tags were lost still holds the deterministic identifier.
                    Some(status) if status != FAILED && status != DELETING => continue,
                    Some(DELETING) => {
                        nothing_to_do = false;
                        plan.deferred.push(req);
                        continue;
                    }
                    _ => {}
                }
                nothing_to_do = false;
                req.replaces_failed = failed.remove(&req.target);
                let resource = req.target.resource;
                let limit = if resource == RdsResource::ClusterSnapshot {
                    CLUSTER_COPIES_IN_FLIGHT
                } else {
                    INSTANCE_COPIES_IN_FLIGHT
                };
                let count =
                    flying.entry((req.target.region.clone(), resource)).or_insert_with(|| in_flight(dest, resource));
                if *count >= limit {
                    plan.deferred.push(req);
                } else {
                    *count += 1;
                    plan.copies.push(req);
                }
            }
            if !failed.is_empty() {
                nothing_to_do = false;
                plan.delete_failed.extend(failed.into_iter().cloned());
            }
            if nothing_to_do {
                plan.up_to_date.push((db.name.clone(), target.region.clone()));
            }
        }
    }
    plan
}

/// Regions a sweep must list: every source, DR and vault region, each once.
pub fn regions_to_list(config: &Config) -> Vec<String> {
    let mut regions: Vec<String> = config
        .databases
        .iter()
        .flat_map(|db| {
            std::iter::once(db.source.region.clone())
                .chain(db.copy_to.iter().map(|t| t.region.clone()))
                .chain(db.vault.iter().map(|v| v.region.clone()))
        })
        .collect();
    regions.sort();
    regions.dedup();
    regions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::SnapshotType;
    use chrono::{TimeZone, Utc};

    fn config() -> Config {
        Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap()
    }

    pub(crate) fn snap(arn: &str, db: &str, hour: u32, tags: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            arn: arn.parse().unwrap(),
            database_id: db.into(),
            snapshot_type: if arn.contains(":rds:") { SnapshotType::Automated } else { SnapshotType::Manual },
            status: "available".into(),
            created: Some(Utc.with_ymd_and_hms(2026, 11, 24, hour, 0, 0).unwrap()),
            original_created: None,
            encrypted: true,
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    #[test]
    fn target_identifier_is_deterministic_valid_and_distinct() {
        let auto: RdsArn =
            "arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-prod-2026-11-24-03-10".parse().unwrap();
        let manual: RdsArn =
            "arn:aws:rds:us-east-1:123456789012:snapshot:rds-orders-prod-2026-11-24-03-10".parse().unwrap();
        let other_region: RdsArn =
            "arn:aws:rds:eu-west-1:123456789012:snapshot:rds:orders-prod-2026-11-24-03-10".parse().unwrap();
        let a = target_identifier(&auto);
        assert_eq!(a, target_identifier(&auto));
        assert!(a.starts_with("lifeboat-rds-orders-prod-2026-11-24-03-10-"), "{a}");
        assert_ne!(a, target_identifier(&manual));
        assert_ne!(a, target_identifier(&other_region));
    }

    #[test]
    fn cluster_target_identifier_fits_63_characters() {
        let long = format!("arn:aws:rds:us-east-1:123456789012:cluster-snapshot:rds:{}", "a-".repeat(60));
        let id = target_identifier(&long.parse().unwrap());
        assert!(id.len() <= 63, "{id} is {} long", id.len());
        assert!(!id.contains("--") && !id.ends_with('-') && id.starts_with("lifeboat-"), "{id}");
    }

    #[test]
    fn copy_tags_keep_user_tags_and_add_ownership() {
        let c = config();
        let db = c.database_named("orders-prod").unwrap();
        let s = snap(
            "arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-prod-1",
            "orders-prod",
            3,
            &[("team", "payments"), ("lifeboat:managed", "false"), ("aws:backup:x", "y")],
        );
        let tags = copy_tags(db, &s);
        assert!(tags.contains(&("team".into(), "payments".into())));
        assert!(tags.contains(&("lifeboat:managed".into(), "true".into())));
        assert!(tags.contains(&("lifeboat:database".into(), "orders-prod".into())));
        assert!(tags.contains(&("lifeboat:source-arn".into(), s.arn.to_string())));
        assert!(!tags.iter().any(|(k, v)| k.starts_with("aws:") || v == "false"));
    }

    #[test]
    fn a_lifeboat_copy_is_never_copied_again() {
        let c = config();
        let db = c.database_named("orders-prod").unwrap();
        let s = snap(
            "arn:aws:rds:us-east-1:123456789012:snapshot:x",
            "orders-prod",
            3,
            &[("lifeboat:source-arn", "arn:...")],
        );
        assert_eq!(plan_for_snapshot(db, &s), Err(NotCopied::IsLifeboatCopy));
    }

    #[test]
    fn encrypted_snapshot_without_region_key_is_refused_for_that_region_only() {
        let c = config();
        let db = c.database_named("reporting-staging").unwrap();
        let s =
            snap("arn:aws:rds:us-east-1:123456789012:snapshot:rds:reporting-staging-1", "reporting-staging", 3, &[]);
        let plan = plan_for_snapshot(db, &s).unwrap();
        assert!(matches!(&plan[..], [Planned::Refused { region, .. }] if region == "us-west-2"));
    }

    #[test]
    fn sweep_copies_what_the_copies_policy_keeps_or_else_the_newest_in_each_region() {
        let c = config();
        let a = "arn:aws:rds:us-east-1:123456789012";
        let mut listings = RegionListings::new();
        listings.insert(
            "us-east-1".into(),
            vec![
                snap(&format!("{a}:snapshot:rds:orders-prod-old"), "orders-prod", 1, &[]),
                snap(&format!("{a}:snapshot:rds:orders-prod-new"), "orders-prod", 2, &[]),
                snap(&format!("{a}:cluster-snapshot:rds:catalog-aurora-1"), "catalog-aurora", 2, &[]),
            ],
        );
        // us-west-2 already has the catalog copy.
        let catalog_src: RdsArn = format!("{a}:cluster-snapshot:rds:catalog-aurora-1").parse().unwrap();
        let mut copy = snap(
            &format!("arn:aws:rds:us-west-2:123456789012:cluster-snapshot:{}", target_identifier(&catalog_src)),
            "catalog-aurora",
            2,
            &[],
        );
        copy.tags.insert(TAG_SOURCE_ARN.into(), catalog_src.to_string());
        listings.insert("us-west-2".into(), vec![copy]);
        let plan = plan_sweep(&c, &listings, Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
        let targets: Vec<String> = plan.copies.iter().map(|r| format!("{}:{}", r.target.region, r.source.id)).collect();
        // orders-prod's copies keep min_keep 2, so both of today's snapshots need a copy.
        assert_eq!(
            targets,
            vec!["us-west-2:rds:orders-prod-old", "us-west-2:rds:orders-prod-new", "eu-west-1:rds:catalog-aurora-1"]
        );
        assert_eq!(plan.up_to_date, vec![("catalog-aurora".to_string(), "us-west-2".to_string())]);
        assert_eq!(plan.unprotected, vec!["reporting-staging".to_string()]);
    }

    #[test]
    fn sweep_defers_copies_beyond_the_in_flight_quota() {
        let mut c = config();
        c.databases.retain(|d| d.is_cluster());
        let a = "arn:aws:rds:us-east-1:123456789012";
        let mut listings = RegionListings::new();
        listings.insert(
            "us-east-1".into(),
            vec![snap(&format!("{a}:cluster-snapshot:rds:catalog-aurora-1"), "catalog-aurora", 2, &[])],
        );
        let flying: Vec<Snapshot> = (0..CLUSTER_COPIES_IN_FLIGHT)
            .map(|i| {
                let mut s = snap(
                    &format!("arn:aws:rds:us-west-2:123456789012:cluster-snapshot:lifeboat-other-{i}"),
                    "other",
                    1,
                    &[("lifeboat:source-arn", "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:other")],
                );
                s.status = "copying".into();
                s
            })
            .collect();
        listings.insert("us-west-2".into(), flying);
        let plan = plan_sweep(&c, &listings, Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
        assert_eq!(plan.deferred.len(), 1);
        assert_eq!(plan.deferred[0].target.region, "us-west-2");
        assert_eq!(plan.copies.len(), 1);
        assert_eq!(plan.copies[0].target.region, "eu-west-1");
    }

    #[test]
    fn an_unencrypted_cluster_snapshot_is_copied_without_the_key_an_instance_snapshot_with_it() {
        let c = config();
        let a = "arn:aws:rds:us-east-1:123456789012";
        let mut cluster = snap(&format!("{a}:cluster-snapshot:rds:catalog-aurora-1"), "catalog-aurora", 2, &[]);
        cluster.encrypted = false;
        let plan = plan_for_snapshot(c.database_named("catalog-aurora").unwrap(), &cluster).unwrap();
        assert!(plan.iter().all(|p| matches!(p, Planned::Copy(r) if r.kms_key.is_none())), "{plan:?}");
        cluster.encrypted = true;
        let plan = plan_for_snapshot(c.database_named("catalog-aurora").unwrap(), &cluster).unwrap();
        assert!(plan.iter().all(|p| matches!(p, Planned::Copy(r) if r.kms_key.is_some())), "{plan:?}");
        let mut instance = snap(&format!("{a}:snapshot:rds:orders-prod-1"), "orders-prod", 2, &[]);
        instance.encrypted = false;
        let plan = plan_for_snapshot(c.database_named("orders-prod").unwrap(), &instance).unwrap();
        assert!(matches!(&plan[..], [Planned::Copy(r)] if r.kms_key.is_some()), "the copy gets encrypted: {plan:?}");
    }

    #[test]
    fn a_source_arn_too_long_for_a_tag_is_refused_before_aws_sees_it() {
        let c = config();
        let long = format!("arn:aws:rds:us-east-1:123456789012:snapshot:{}", "x".repeat(230));
        let plan =
            plan_for_snapshot(c.database_named("orders-prod").unwrap(), &snap(&long, "orders-prod", 2, &[])).unwrap();
        assert!(
            matches!(&plan[..], [Planned::Refused { reason, .. }] if reason.contains("lifeboat:source-arn") && reason.contains("256")),
            "{plan:?}"
        );
    }

    #[test]
    fn a_failed_copy_is_replaced_and_does_not_count_as_copied() {
        let mut c = config();
        c.databases.retain(|d| d.name == "catalog-aurora");
        let a = "arn:aws:rds:us-east-1:123456789012";
        let src = snap(&format!("{a}:cluster-snapshot:rds:catalog-aurora-1"), "catalog-aurora", 2, &[]);
        let mut listings = RegionListings::new();
        listings.insert("us-east-1".into(), vec![src.clone()]);
        let mut failed = snap(
            &format!("arn:aws:rds:us-west-2:123456789012:cluster-snapshot:{}", target_identifier(&src.arn)),
            "catalog-aurora",
            2,
            &[(TAG_SOURCE_ARN, &src.arn.to_string()), (TAG_DATABASE, "catalog-aurora")],
        );
        failed.status = FAILED.into();
        listings.insert("us-west-2".into(), vec![failed.clone()]);
        let plan = plan_sweep(&c, &listings, Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
        let west: Vec<&CopyRequest> = plan.copies.iter().filter(|r| r.target.region == "us-west-2").collect();
        assert!(matches!(&west[..], [r] if r.replaces_failed && r.target.id == failed.arn.id), "{plan:?}");
        // Nor does it pin its source for the pruner.
        assert!(retention::pending_copy_sources(&listings).is_empty());
        failed.status = "copying".into();
        listings.insert("us-west-2".into(), vec![failed]);
        assert_eq!(retention::pending_copy_sources(&listings).len(), 1);
    }

    #[test]
    fn a_failed_copy_nothing_will_replace_is_deleted_and_one_being_deleted_defers() {
        let mut c = config();
        c.databases.retain(|d| d.name == "catalog-aurora");
        let a = "arn:aws:rds:us-east-1:123456789012";
        let src = snap(&format!("{a}:cluster-snapshot:rds:catalog-aurora-2"), "catalog-aurora", 3, &[]);
        let gone: RdsArn = format!("{a}:cluster-snapshot:rds:catalog-aurora-0").parse().unwrap();
        let copy_in = |region: &str, of: &RdsArn, status: &str| {
            let mut s = snap(
                &format!("arn:aws:rds:{region}:123456789012:cluster-snapshot:{}", target_identifier(of)),
                "catalog-aurora",
                1,
                &[(TAG_SOURCE_ARN, &of.to_string()), (TAG_DATABASE, "catalog-aurora"), (TAG_MANAGED, "true")],
            );
            s.status = status.into();
            s
        };
        let mut listings = RegionListings::new();
        listings.insert("us-east-1".into(), vec![src.clone()]);
        // us-west-2: the copy of a source that no longer exists failed; eu-west-1: the wanted
        // source's earlier copy is still being deleted.
        let orphan = copy_in("us-west-2", &gone, FAILED);
        listings.insert("us-west-2".into(), vec![orphan.clone()]);
        listings.insert("eu-west-1".into(), vec![copy_in("eu-west-1", &src.arn, "deleting")]);
        let plan = plan_sweep(&c, &listings, Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap());
        assert_eq!(plan.delete_failed, vec![orphan.arn.clone()], "{plan:?}");
        assert!(plan.copies.iter().any(|r| r.target.region == "us-west-2" && !r.replaces_failed), "{plan:?}");
        assert!(matches!(&plan.deferred[..], [r] if r.target.region == "eu-west-1"), "{plan:?}");
        assert!(!plan.copies.iter().any(|r| r.target.region == "eu-west-1"), "{plan:?}");
    }

    #[test]
    fn the_pruner_keeps_every_copy_the_sweep_makes() {
        // Three snapshots within one second; one already has its copy, dated by its tag (seconds).
        let c = config();
        let db = c.database_named("orders-prod").unwrap();
        let a = "arn:aws:rds:us-east-1:123456789012:snapshot";
        let at = |ms: i64| Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap() + chrono::Duration::milliseconds(ms);
        let mut sources = Vec::new();
        for (id, ms) in [("hand-made", 300), ("before-upgrade", 100), ("event-lost", 700)] {
            let mut s = snap(&format!("{a}:orders-{id}"), "orders-prod", 12, &[]);
            s.created = Some(at(ms));
            sources.push(s);
        }
        let made = |s: &Snapshot| {
            let req = match request(db, s, &db.copy_to[0]) {
                Planned::Copy(r) => r,
                other => panic!("{other:?}"),
            };
            let mut copy = snap(&req.target.to_string(), "orders-prod", 13, &[]);
            copy.tags = req.tags.into_iter().collect();
            copy
        };
        let mut dr = vec![made(&sources[1])];
        let mut listings = RegionListings::new();
        listings.insert("us-east-1".into(), sources.clone());
        listings.insert("us-west-2".into(), dr.clone());
        let now = Utc.with_ymd_and_hms(2026, 11, 24, 14, 0, 0).unwrap();
        let plan = plan_sweep(&c, &listings, now);
        let new: Vec<&CopyRequest> = plan.copies.iter().filter(|r| r.database == "orders-prod").collect();
        assert!(!new.is_empty(), "{plan:?}");
        for req in &new {
            dr.push(made(sources.iter().find(|s| s.arn == req.source).unwrap()));
        }
        let policy = db.retention.as_ref().unwrap().copies.as_ref().unwrap();
        let decisions = retention::plan(&dr, policy, now, &BTreeSet::new());
        let deleted: Vec<&str> = decisions
            .iter()
            .filter(|d| matches!(d.action, Action::Delete(_)))
            .map(|d| d.snapshot.arn.id.as_str())
            .collect();
        assert!(deleted.is_empty(), "the sweep copied what the pruner then deletes: {deleted:?}");
    }

    #[test]
    fn regions_are_listed_once_each() {
        assert_eq!(regions_to_list(&config()), vec!["eu-west-1", "us-east-1", "us-west-2"]);
    }
}
