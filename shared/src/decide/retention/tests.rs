use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::snapshot::{Snapshot, SnapshotType, TAG_MANAGED};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap()
}

fn owned(id: &str, at: DateTime<Utc>) -> Snapshot {
    Snapshot {
        arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}").parse().unwrap(),
        database_id: "orders".into(),
        snapshot_type: SnapshotType::Manual,
        status: "available".into(),
        created: Some(at),
        original_created: None,
        encrypted: false,
        tags: [(TAG_MANAGED.to_string(), "true".to_string())].into(),
    }
}

fn policy(daily: u32, weekly: u32, monthly: u32, min_keep: u32) -> RetentionPolicy {
    RetentionPolicy { daily, weekly, monthly, max_age: None, min_keep }
}

fn daily_series(days: i64) -> Vec<Snapshot> {
    (0..days)
        .map(|d| owned(&format!("s-{d:03}"), now() - chrono::Duration::days(d) - chrono::Duration::hours(9)))
        .collect()
}

fn kept_ids(decisions: &[Decision]) -> BTreeSet<String> {
    decisions.iter().filter(|d| matches!(d.action, Action::Keep(_))).map(|d| d.snapshot.arn.id.clone()).collect()
}

fn deleted_ids(decisions: &[Decision]) -> BTreeSet<String> {
    decisions.iter().filter(|d| matches!(d.action, Action::Delete(_))).map(|d| d.snapshot.arn.id.clone()).collect()
}

#[test]
fn keeps_the_newest_snapshot_of_each_of_the_last_n_days() {
    let mut snaps = daily_series(30);
    // A second, older snapshot on today's date must not take today's daily slot.
    snaps.push(owned("s-000-early", now() - chrono::Duration::hours(11)));
    let d = plan(&snaps, &policy(7, 0, 0, 1), now(), &BTreeSet::new());
    let expected: BTreeSet<String> = (0..7).map(|d| format!("s-{d:03}")).collect();
    assert_eq!(kept_ids(&d), expected);
    assert_eq!(deleted_ids(&d).len(), 24);
}

#[test]
fn weekly_and_monthly_keep_the_newest_of_each_period() {
    // 2026-11-24 is a Tuesday. Daily series over 120 days.
    let snaps = daily_series(120);
    let d = plan(&snaps, &policy(0, 4, 3, 0), now(), &BTreeSet::new());
    let kept = kept_ids(&d);
    // Weeks: this week (Mon 23rd → newest is the 24th, s-000), then Sundays 22nd, 15th, 8th.
    for id in ["s-000", "s-002", "s-009", "s-016"] {
        assert!(kept.contains(id), "{id} missing from {kept:?}");
    }
    // Months: November (s-000), October 31st (s-024), September 30th (s-055).
    for id in ["s-024", "s-055"] {
        assert!(kept.contains(id), "{id} missing from {kept:?}");
    }
    assert_eq!(kept.len(), 6, "{kept:?}");
}

#[test]
fn min_keep_holds_old_snapshots_when_the_policy_keeps_none() {
    let snaps: Vec<Snapshot> =
        (0..5).map(|i| owned(&format!("old-{i}"), now() - chrono::Duration::days(100 + i))).collect();
    let d = plan(&snaps, &policy(7, 0, 0, 3), now(), &BTreeSet::new());
    assert_eq!(kept_ids(&d), ["old-0", "old-1", "old-2"].map(String::from).into());
    assert_eq!(deleted_ids(&d), ["old-3", "old-4"].map(String::from).into());
}

#[test]
fn max_age_expires_what_gfs_keeps_but_never_below_min_keep() {
    let snaps = daily_series(120);
    let mut p = policy(0, 0, 12, 2);
    p.max_age = Some(Duration::from_secs(60 * 86400));
    let d = plan(&snaps, &p, now(), &BTreeSet::new());
    let kept = kept_ids(&d);
    // Monthly keeps Nov (s-000), Oct 31st (s-024), Sep 30th (s-055, 55 days old); Aug 31st (s-085)
    // and Jul 31st (s-116) are older than 60 days, so max_age expires them.
    assert!(kept.contains("s-024") && kept.contains("s-055"), "{kept:?}");
    assert!(!kept.contains("s-085") && !kept.contains("s-116"), "{kept:?}");
    let expired = d.iter().filter(|d| d.action == Action::Delete(DeleteReason::OlderThanMaxAge)).count();
    assert_eq!(expired, 2);
    // All expired: min_keep still holds two.
    let old: Vec<Snapshot> = (0..4).map(|i| owned(&format!("o{i}"), now() - chrono::Duration::days(500 + i))).collect();
    assert_eq!(kept_ids(&plan(&old, &p, now(), &BTreeSet::new())).len(), 2);
}

#[test]
fn skips_what_lifeboat_does_not_own_whatever_its_age() {
    let mut snaps = daily_series(40);
    let untagged = {
        let mut s = owned("users-own", now() - chrono::Duration::days(300));
        s.tags.clear();
        s
    };
    let automated = {
        let mut s = owned("rds:orders-2026-01-01", now() - chrono::Duration::days(300));
        s.snapshot_type = SnapshotType::Automated;
        s
    };
    let backup = {
        let mut s = owned("awsbackup:job-1", now() - chrono::Duration::days(300));
        s.snapshot_type = SnapshotType::AwsBackup;
        s
    };
    let creating = {
        let mut s = owned("in-progress", now() - chrono::Duration::days(300));
        s.status = "creating".into();
        s
    };
    snaps.extend([untagged, automated, backup, creating]);
    let d = plan(&snaps, &policy(1, 0, 0, 1), now(), &BTreeSet::new());
    let reasons: Vec<(String, Action)> = d
        .iter()
        .filter(|d| matches!(d.action, Action::Skip(_)))
        .map(|d| (d.snapshot.arn.id.clone(), d.action.clone()))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("users-own".into(), Action::Skip(SkipReason::NotOwned)),
            ("rds:orders-2026-01-01".into(), Action::Skip(SkipReason::Automated)),
            ("awsbackup:job-1".into(), Action::Skip(SkipReason::AwsBackup)),
            ("in-progress".into(), Action::Skip(SkipReason::NotAvailable("creating".into()))),
        ]
    );
}

#[test]
fn a_source_with_a_pending_copy_is_kept() {
    let snaps = daily_series(10);
    let pending: BTreeSet<String> = [snaps[9].arn.to_string()].into();
    let d = plan(&snaps, &policy(1, 0, 0, 1), now(), &pending);
    let last = d.iter().find(|d| d.snapshot.arn.id == "s-009").unwrap();
    assert_eq!(last.action, Action::Keep(vec![KeepReason::CopyPending]));
}

#[test]
fn copies_are_dated_by_the_restore_point_they_hold() {
    // Copied today, taken 50 days ago: outside a 7-day policy.
    let mut copy = owned("copy", now() - chrono::Duration::hours(1));
    copy.original_created = Some(now() - chrono::Duration::days(50));
    let fresh = owned("fresh", now() - chrono::Duration::hours(2));
    let snaps = [copy, fresh];
    let d = plan(&snaps, &policy(7, 0, 0, 1), now(), &BTreeSet::new());
    assert_eq!(deleted_ids(&d), ["copy".to_string()].into());
}

#[test]
fn quota_warning_at_ninety_manual_snapshots() {
    let mut listings = RegionListings::new();
    listings.insert("us-east-1".into(), daily_series(89));
    assert!(quota_warnings(&listings, |_, _| None).is_empty());
    listings.insert("us-east-1".into(), daily_series(90));
    let w = quota_warnings(&listings, |_, _| None);
    assert_eq!(w, ["us-east-1 holds 90 of 100 manual DB snapshots allowed by the default quota"]);
}

#[test]
fn quota_warnings_judge_each_kind_against_the_accounts_own_maximum() {
    let mut listings = RegionListings::new();
    // 95 in the listing: near the default, nowhere near a raised quota of 1,000.
    listings.insert("us-east-1".into(), daily_series(95));
    listings.insert("us-west-2".into(), Vec::new());
    let quota = |region: &str, kind: RdsResource| match (region, kind) {
        ("us-east-1", RdsResource::InstanceSnapshot) => Some((95, 1_000)),
        // The account counts what a listing of Lifeboat's kinds may not show.
        ("us-west-2", RdsResource::ClusterSnapshot) => Some((46, 50)),
        _ => None,
    };
    assert_eq!(
        quota_warnings(&listings, quota),
        ["us-west-2 holds 46 of 50 manual cluster snapshots allowed by the account's quota there"]
    );
}

// ---- Property tests: the invariants hold for any snapshot set and any policy. ----

fn arb_snapshot() -> impl Strategy<Value = Snapshot> {
    (
        0u32..400,
        0i64..(800 * 24),
        prop_oneof![
            Just(SnapshotType::Manual),
            Just(SnapshotType::Automated),
            Just(SnapshotType::AwsBackup),
            Just(SnapshotType::Other)
        ],
        prop_oneof![4 => Just("available"), 1 => Just("creating"), 1 => Just("copying"), 1 => Just("deleting")],
        prop_oneof![3 => Just(Some("true")), 1 => Just(Some("false")), 1 => Just(None)],
        any::<bool>(),
    )
        .prop_map(|(id, hours_ago, snapshot_type, status, managed, dated)| {
            let mut s = owned(&format!("p-{id}"), now() - chrono::Duration::hours(hours_ago));
            s.snapshot_type = snapshot_type;
            s.status = status.into();
            s.tags.clear();
            if let Some(v) = managed {
                s.tags.insert(TAG_MANAGED.into(), v.into());
            }
            if !dated {
                s.original_created = s.created;
            }
            s
        })
}

fn arb_policy() -> impl Strategy<Value = RetentionPolicy> {
    (0u32..10, 0u32..6, 0u32..14, proptest::option::of(1u64..500), 0u32..6).prop_map(
        |(daily, weekly, monthly, days, min_keep)| RetentionPolicy {
            daily,
            weekly,
            monthly,
            max_age: days.map(|d| Duration::from_secs(d * 86400)),
            min_keep,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold(
        mut snaps in proptest::collection::vec(arb_snapshot(), 0..60),
        p in arb_policy(),
        pending_pick in proptest::collection::vec(any::<prop::sample::Index>(), 0..3),
        listed_twice in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..6),
    ) {
        // One snapshot per ARN; then some listed a second time, anywhere, as shifting pages do.
        let mut arns = BTreeSet::new();
        snaps.retain(|s| arns.insert(s.arn.clone()));
        let mut listing = snaps.clone();
        if !snaps.is_empty() {
            for (which, at) in &listed_twice {
                let twin = snaps[which.index(snaps.len())].clone();
                listing.insert(at.index(listing.len() + 1), twin);
            }
        }
        let pending: BTreeSet<String> = if snaps.is_empty() { BTreeSet::new() } else {
            pending_pick.iter().map(|i| snaps[i.index(snaps.len())].arn.to_string()).collect()
        };
        let d = plan(&listing, &p, now(), &pending);
        prop_assert_eq!(d.len(), snaps.len(), "every snapshot gets exactly one decision, however often listed");
        prop_assert_eq!(d.iter().map(|d| &d.snapshot.arn).collect::<BTreeSet<_>>().len(), snaps.len());

        let deleted: Vec<&Snapshot> = d.iter().filter(|d| matches!(d.action, Action::Delete(_))).map(|d| d.snapshot).collect();
        for s in &deleted {
            prop_assert_eq!(s.tags.get(TAG_MANAGED).map(String::as_str), Some("true"), "deleted an unowned snapshot");
            prop_assert_eq!(s.snapshot_type, SnapshotType::Manual, "deleted a non-manual snapshot");
            prop_assert!(s.is_available(), "deleted a snapshot that isn't available");
            prop_assert!(!pending.contains(&s.arn.to_string()), "deleted the source of a pending copy");
        }
        let mut eligible: Vec<&Snapshot> = snaps.iter()
            .filter(|s| s.is_owned() && s.is_available() && s.restore_point().is_some())
            .collect();
        // Two snapshots can hold the same restore point: the newest is the first of them by
        // identifier, as the plan ranks ties, and that one is kept (the other may go).
        eligible.sort_by(|a, b| b.restore_point().cmp(&a.restore_point()).then_with(|| a.arn.id.cmp(&b.arn.id)));
        if let Some(newest) = eligible.first() {
            prop_assert!(!deleted.iter().any(|s| s.arn == newest.arn), "deleted the newest available snapshot");
        }
        let floor = (p.min_keep as usize).max(1).min(eligible.len());
        prop_assert!(eligible.len() - deleted.len() >= floor, "kept fewer than min_keep");

        let again = plan(&listing, &p, now(), &pending);
        prop_assert_eq!(&d, &again, "same input, same plan");
        let mut a_once: Vec<_> = d.iter().map(|d| (d.snapshot.arn.id.clone(), d.action.clone())).collect();
        let mut b_once: Vec<_> = plan(&snaps, &p, now(), &pending).iter().map(|d| (d.snapshot.arn.id.clone(), d.action.clone())).collect();
        a_once.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        b_once.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        prop_assert_eq!(a_once, b_once, "a snapshot listed twice is planned as if listed once");
        let mut reversed = listing.clone();
        reversed.reverse();
        let mut a: Vec<_> = d.iter().map(|d| (d.snapshot.arn.id.clone(), d.snapshot.restore_point(), d.action.clone())).collect();
        let mut b: Vec<_> = plan(&reversed, &p, now(), &pending).iter().map(|d| (d.snapshot.arn.id.clone(), d.snapshot.restore_point(), d.action.clone())).collect();
        a.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        b.sort_by(|x, y| format!("{x:?}").cmp(&format!("{y:?}")));
        prop_assert_eq!(a, b, "order of the listing does not change the plan");
    }
}
