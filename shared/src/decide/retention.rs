//! Grandfather-father-son retention: which snapshots to keep, which to delete, and why.
//!
//! The plan is a pure function of (snapshots, policy, now, pending copies). The invariants the
//! pruner's safety rests on are held here and checked by property tests below: nothing without
//! `lifeboat:managed=true` is deleted, nor anything automated, AWS Backup's, not `available`, the
//! newest, within `min_keep`, or the source of a copy still in flight.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Serialize;

use crate::arn::RdsResource;
use crate::config::{Database, RetentionPolicy};
use crate::snapshot::{RegionListings, Snapshot, SnapshotType, TAG_DATABASE};

pub use crate::snapshot::MANUAL_SNAPSHOT_QUOTA;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepReason {
    Newest,
    MinKeep,
    Daily(NaiveDate),
    /// ISO year and week.
    Weekly(i32, u32),
    Monthly(i32, u32),
    /// A DR copy of it is still being made, and a copy needs its source until it's done.
    CopyPending,
    /// Dated after `now`: a clock disagreement is no reason to delete.
    InTheFuture,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipReason {
    NotOwned,
    Automated,
    AwsBackup,
    NotAvailable(String),
    NoCreateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeleteReason {
    OutsidePolicy,
    OlderThanMaxAge,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Keep(Vec<KeepReason>),
    Delete(DeleteReason),
    Skip(SkipReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub snapshot: &'a Snapshot,
    pub action: Action,
}

impl fmt::Display for KeepReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeepReason::Newest => write!(f, "newest"),
            KeepReason::MinKeep => write!(f, "min_keep"),
            KeepReason::Daily(d) => write!(f, "daily {d}"),
            KeepReason::Weekly(y, w) => write!(f, "weekly {y}-W{w:02}"),
            KeepReason::Monthly(y, m) => write!(f, "monthly {y}-{m:02}"),
            KeepReason::CopyPending => write!(f, "DR copy pending"),
            KeepReason::InTheFuture => write!(f, "dated in the future"),
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotOwned => write!(f, "not owned (no lifeboat:managed=true)"),
            SkipReason::Automated => write!(f, "automated (RDS expires it)"),
            SkipReason::AwsBackup => write!(f, "managed by AWS Backup"),
            SkipReason::NotAvailable(s) => write!(f, "status {s}"),
            SkipReason::NoCreateTime => write!(f, "no creation time"),
        }
    }
}

fn skip_reason(s: &Snapshot) -> Option<SkipReason> {
    if s.snapshot_type == SnapshotType::Automated {
        Some(SkipReason::Automated)
    } else if s.is_aws_backup() {
        Some(SkipReason::AwsBackup)
    } else if !s.is_owned() {
        Some(SkipReason::NotOwned)
    } else if !s.is_available() {
        Some(SkipReason::NotAvailable(s.status.clone()))
    } else if s.restore_point().is_none() {
        Some(SkipReason::NoCreateTime)
    } else {
        None
    }
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - chrono::Days::new(u64::from(d.weekday().num_days_from_monday()))
}

fn month_index(d: NaiveDate) -> i64 {
    i64::from(d.year()) * 12 + i64::from(d.month0())
}

/// Decide every snapshot of one database in one region. `pending_copy_sources` holds the ARNs of
/// source snapshots with a copy still in flight (empty for the DR-copy scope).
pub fn plan<'a>(
    snapshots: impl IntoIterator<Item = &'a Snapshot>,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    pending_copy_sources: &BTreeSet<String>,
) -> Vec<Decision<'a>> {
    let mut decisions: Vec<Decision<'a>> = Vec::new();
    let mut candidates: Vec<(&'a Snapshot, DateTime<Utc>)> = Vec::new();
    // Listings can name a snapshot twice (pages shift while snapshots come and go); a second
    // entry of the newest would otherwise rank second and could be planned for deletion.
    let mut seen = BTreeSet::new();
    for s in snapshots.into_iter().filter(|s| seen.insert(&s.arn)) {
        match (skip_reason(s), s.restore_point()) {
            (None, Some(at)) => candidates.push((s, at)),
            (reason, _) => decisions
                .push(Decision { snapshot: s, action: Action::Skip(reason.unwrap_or(SkipReason::NoCreateTime)) }),
        }
    }
    // Newest first; the identifier breaks ties so the same input always gives the same plan.
    candidates.sort_by(|(a, at), (b, bt)| bt.cmp(at).then_with(|| a.arn.id.cmp(&b.arn.id)));

    let today = now.date_naive();
    let (this_monday, this_month) = (monday(today), month_index(today));
    let (mut days, mut weeks, mut months) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (rank, (s, at)) in candidates.into_iter().enumerate() {
        let mut keep = Vec::new();
        let mut hard_keep = false;
        if rank == 0 {
            keep.push(KeepReason::Newest);
            hard_keep = true;
        }
        if rank < policy.min_keep as usize {
            keep.push(KeepReason::MinKeep);
            hard_keep = true;
        }
        if !pending_copy_sources.is_empty() && pending_copy_sources.contains(&s.arn.to_string()) {
            keep.push(KeepReason::CopyPending);
            hard_keep = true;
        }
        if at > now {
            keep.push(KeepReason::InTheFuture);
            hard_keep = true;
        }
        let day = at.date_naive();
        // Candidates come newest first, so the first one seen in a period is that period's newest.
        let days_ago = (today - day).num_days();
        if (0..i64::from(policy.daily)).contains(&days_ago) && days.insert(day) {
            keep.push(KeepReason::Daily(day));
        }
        let weeks_ago = (this_monday - monday(day)).num_days() / 7;
        let week = day.iso_week();
        if (0..i64::from(policy.weekly)).contains(&weeks_ago) && weeks.insert((week.year(), week.week())) {
            keep.push(KeepReason::Weekly(week.year(), week.week()));
        }
        let months_ago = this_month - month_index(day);
        if (0..i64::from(policy.monthly)).contains(&months_ago) && months.insert((day.year(), day.month())) {
            keep.push(KeepReason::Monthly(day.year(), day.month()));
        }
        let expired = policy.max_age.is_some_and(|max| (now - at).to_std().is_ok_and(|age| age > max));
        let action = if hard_keep {
            Action::Keep(keep)
        } else if keep.is_empty() {
            Action::Delete(DeleteReason::OutsidePolicy)
        } else if expired {
            Action::Delete(DeleteReason::OlderThanMaxAge)
        } else {
            Action::Keep(keep)
        };
        decisions.push(Decision { snapshot: s, action });
    }
    decisions
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    Source,
    Copies,
}

/// One database's snapshots in one region, with the policy that governs them.
#[derive(Debug, Clone)]
pub struct Group<'a> {
    pub database: &'a Database,
    pub region: String,
    pub scope: Scope,
    pub policy: &'a RetentionPolicy,
    pub snapshots: Vec<&'a Snapshot>,
}

type SourceKey<'l> = (&'l str, &'l str, RdsResource, &'l str);
type CopiesKey<'l> = (&'l str, RdsResource, &'l str);

/// Each region's listing (listed once per region) sorted by database in one pass, so grouping a
/// fleet costs one look at each snapshot rather than one per snapshot and database.
pub struct Index<'l> {
    /// (region, account, kind, database identifier) → source snapshots, Lifeboat's copies excluded.
    sources: HashMap<SourceKey<'l>, Vec<&'l Snapshot>>,
    /// (region, kind, database name from `lifeboat:database`) → Lifeboat's copies.
    copies: HashMap<CopiesKey<'l>, Vec<&'l Snapshot>>,
}

impl<'l> Index<'l> {
    pub fn new(listings: &'l RegionListings) -> Self {
        let mut index = Index { sources: HashMap::new(), copies: HashMap::new() };
        for (region, snapshots) in listings {
            for s in snapshots {
                if s.is_lifeboat_copy() {
                    if let Some(name) = s.tags.get(TAG_DATABASE) {
                        index.copies.entry((region.as_str(), s.arn.resource, name.as_str())).or_default().push(s);
                    }
                } else {
                    let key = (region.as_str(), s.arn.account.as_str(), s.arn.resource, s.database_id.as_str());
                    index.sources.entry(key).or_default().push(s);
                }
            }
        }
        index
    }

    /// `db`'s groups: its source region under `retention.source`, each DR region under `retention.copies`.
    pub fn groups<'a>(&self, db: &'a Database) -> Vec<Group<'a>>
    where
        'l: 'a,
    {
        let Some(retention) = &db.retention else { return Vec::new() };
        let resource = db.snapshot_resource();
        let mut out = Vec::new();
        if let Some(policy) = &retention.source {
            let key = (db.source.region.as_str(), db.source.account.as_str(), resource, db.source.id.as_str());
            let snapshots = self.sources.get(&key).cloned().unwrap_or_default();
            out.push(Group { database: db, region: db.source.region.clone(), scope: Scope::Source, policy, snapshots });
        }
        if let Some(policy) = &retention.copies {
            for target in &db.copy_to {
                let key = (target.region.as_str(), resource, db.name.as_str());
                let snapshots = self.copies.get(&key).cloned().unwrap_or_default();
                out.push(Group {
                    database: db,
                    region: target.region.clone(),
                    scope: Scope::Copies,
                    policy,
                    snapshots,
                });
            }
        }
        out
    }
}

/// Source snapshots whose Lifeboat copy, in any listed region, isn't finished yet.
pub fn pending_copy_sources(listings: &RegionListings) -> BTreeSet<String> {
    listings
        .values()
        .flatten()
        // A failed copy is not pending: it must not pin its source (the copier replaces it).
        .filter(|s| !s.is_available() && s.status != crate::snapshot::FAILED)
        .filter_map(|s| s.copied_from().map(str::to_owned))
        .collect()
}

/// Regions within 10% of their manual snapshot quota, per snapshot kind. `quota(region, kind)` is
/// the account's (used, max) there as `DescribeAccountAttributes` said; where it is None (the call
/// failed), the listing's manual snapshots are counted against the default quota.
pub fn quota_warnings(
    listings: &RegionListings,
    quota: impl Fn(&str, RdsResource) -> Option<(usize, usize)>,
) -> Vec<String> {
    let mut counts: BTreeMap<(&str, RdsResource), usize> = BTreeMap::new();
    for (region, snapshots) in listings {
        for kind in [RdsResource::InstanceSnapshot, RdsResource::ClusterSnapshot] {
            if quota(region, kind).is_some() {
                counts.entry((region.as_str(), kind)).or_default();
            }
        }
        for s in snapshots.iter().filter(|s| s.snapshot_type == SnapshotType::Manual) {
            *counts.entry((region.as_str(), s.arn.resource)).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter_map(|((region, resource), counted)| {
            let kind = if resource == RdsResource::ClusterSnapshot { "cluster" } else { "DB" };
            let (used, max, whose) = match quota(region, resource) {
                Some((used, max)) => (used, max, "the account's quota there"),
                None => (counted, MANUAL_SNAPSHOT_QUOTA, "the default quota"),
            };
            (used * 10 >= max * 9)
                .then(|| format!("{region} holds {used} of {max} manual {kind} snapshots allowed by {whose}"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
