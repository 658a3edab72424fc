//! The incident: what is wrong with which database, how bad, where recovery stands, and the
//! timeline a post-mortem needs. Pure: the table adapter stores what these functions decide, and
//! enforces with conditions only what concurrency needs (one open incident per database, each
//! timeline entry once, each message once).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{Database, Tier};
use crate::decide::validate::DataReport;
use crate::text::kebab_names;

/// Runbooks promise an update every 15 minutes while an incident is open.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(15 * 60);
/// Timeline entries that record a message sent carry keys starting with this.
const TOLD: &str = "sent:";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    /// A production database is down or at risk: page people.
    P1,
    /// Non-production, or production degraded.
    P2,
    /// Information: drills, notices.
    P3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Outage,
    Region,
    Data,
    Drill,
    Manual,
    /// A planned move back home after a failover, asked for by a person (`lifeboat failback`).
    Failback,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Declared,
    AwaitingApproval,
    Recovering,
    /// The database is recovered and verified, but its DNS record was left for people (Route
    /// 53's control plane down): still open, the impact not over, until a verify confirms the
    /// record names the new primary.
    DnsPending,
    Resolved,
    Aborted,
    Failed,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum IncidentError {
    #[error("incident {id} is {from}; it can't become {to}")]
    Transition { id: String, from: Status, to: Status },
    #[error("incident {id} is {status}: nothing more is recorded on a closed incident")]
    Closed { id: String, status: Status },
}

/// Which message an incident's state calls for (the notifier renders it with `message`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Declared,
    ApprovalRequested,
    Progress,
    /// Recovered, DNS pending: what "resolved" becomes while the record still names the old primary.
    DnsPending,
    Resolved,
    Aborted,
    Failed,
    /// The new primary's data checks failed: the cut-over is halted before DNS moves, and a person
    /// decides whether it goes on.
    DataChecksFailed,
}

kebab_names!(MessageKind, "declared, approval-requested, progress, dns-pending, resolved, aborted, failed, data-checks-failed",
    Declared => "declared", ApprovalRequested => "approval-requested", Progress => "progress",
    DnsPending => "dns-pending", Resolved => "resolved", Aborted => "aborted", Failed => "failed",
    DataChecksFailed => "data-checks-failed");

impl MessageKind {
    /// Whether the incident's status lets this message be sent: "resolved" for an incident still
    /// recovering, or "declared" for a closed one, would tell people something false.
    pub fn fits(self, status: Status) -> bool {
        match self {
            MessageKind::Declared | MessageKind::Progress => status.is_open(),
            MessageKind::ApprovalRequested => status == Status::AwaitingApproval,
            MessageKind::DnsPending => status == Status::DnsPending,
            MessageKind::Resolved => status == Status::Resolved,
            MessageKind::Aborted => status == Status::Aborted,
            MessageKind::Failed => status == Status::Failed,
            // The checks run on the new primary before DNS moves, and the decision that follows
            // is asked for while the incident is still open.
            MessageKind::DataChecksFailed => matches!(status, Status::Recovering | Status::AwaitingApproval),
        }
    }

    /// The message to send when `self` is asked for an incident in `status`: the state machine
    /// asks for "resolved" after every verify, which is "recovered, DNS pending" while DNS is.
    pub fn as_of(self, status: Status) -> MessageKind {
        match (self, status) {
            (MessageKind::Resolved, Status::DnsPending) => MessageKind::DnsPending,
            _ => self,
        }
    }
}

kebab_names!(Severity, "P1, P2, P3", P1 => "P1", P2 => "P2", P3 => "P3");
kebab_names!(Kind, "outage, region, data, drill, manual, failback",
    Outage => "outage", Region => "region", Data => "data", Drill => "drill", Manual => "manual",
    Failback => "failback");
kebab_names!(Status, "declared, awaiting-approval, recovering, dns-pending, resolved, aborted, failed",
    Declared => "declared", AwaitingApproval => "awaiting-approval", Recovering => "recovering",
    DnsPending => "dns-pending", Resolved => "resolved", Aborted => "aborted", Failed => "failed");

impl Status {
    pub fn is_open(self) -> bool {
        matches!(self, Status::Declared | Status::AwaitingApproval | Status::Recovering | Status::DnsPending)
    }

    /// declared → awaiting-approval → recovering → resolved; declared → recovering when no
    /// approval is needed; recovering → dns-pending → resolved when DNS was left for people and a
    /// later verify confirms it (the resolution's moment is that confirmation, so the RTO is
    /// measured to it), or failed when a later verify finds the database itself gone; any other
    /// open status → aborted or failed. Closed is final.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Declared, AwaitingApproval)
                | (Declared, Recovering)
                | (AwaitingApproval, Recovering)
                | (Recovering, Resolved)
                | (Recovering, DnsPending)
                | (DnsPending, Resolved | Failed)
                | (Declared | AwaitingApproval | Recovering, Aborted | Failed)
        )
    }
}

/// P1 for a production database unless it is a drill or a planned failback; P2 for
/// non-production; P3 for drills and failbacks (planned, with the way back ready).
pub fn severity_for(tier: Tier, kind: Kind) -> Severity {
    match (tier, kind) {
        (_, Kind::Drill | Kind::Failback) => Severity::P3,
        (Tier::Production, _) => Severity::P1,
        (Tier::NonProduction, _) => Severity::P2,
    }
}

/// One line of the timeline. `key` makes recording idempotent: the same key is kept once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub at: DateTime<Utc>,
    /// Who or what: `failover-trigger`, `alice@example.com`, `AWS Health`.
    pub by: String,
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    pub key: String,
}

impl Entry {
    pub fn new(at: DateTime<Utc>, by: &str, what: &str, key: &str) -> Self {
        Entry { at, by: by.to_owned(), what: what.to_owned(), details: None, key: key.to_owned() }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    pub database: String,
    pub tier: Tier,
    pub severity: Severity,
    pub kind: Kind,
    pub status: Status,
    pub started: DateTime<Utc>,
    pub ended: Option<DateTime<Utc>>,
    /// The Step Functions execution working on it, once one runs.
    pub execution_arn: Option<String>,
    /// The newest point in time the recovered database holds (the failover steps report it);
    /// `started - recovered_to` is the data lost.
    pub recovered_to: Option<DateTime<Utc>>,
    /// The Step Functions task token waiting for an approval, while one waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_task: Option<String>,
    pub timeline: Vec<Entry>,
    /// What the recovered database's data checks found, the last time they ran (`data_checked`):
    /// the data loss measured, where `recovered_to` only estimates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataReport>,
}

/// `orders-prod-20261125T1942Z-3f2a`: readable, sortable by time, and the same for the same
/// database, minute and `seed` (an alarm's or event's own id), so a redelivered trigger opens
/// nothing new.
pub fn incident_id(database: &str, started: DateTime<Utc>, seed: &str) -> String {
    let hash = crate::text::short_digest(&format!("{database}\n{seed}"), 2);
    format!("{database}-{}-{hash}", started.format("%Y%m%dT%H%MZ"))
}

impl Incident {
    /// A new incident, declared, its first timeline entry saying why.
    pub fn declare(db: &Database, kind: Kind, at: DateTime<Utc>, by: &str, what: &str, seed: &str) -> Incident {
        Incident {
            id: incident_id(&db.name, at, seed),
            database: db.name.clone(),
            tier: db.tier,
            severity: severity_for(db.tier, kind),
            kind,
            status: Status::Declared,
            started: at,
            ended: None,
            execution_arn: None,
            recovered_to: None,
            approval_task: None,
            timeline: vec![Entry::new(at, by, what, "declared")],
            data: None,
        }
    }

    /// The entry that records a move to `to`, if the move is allowed. Its key is the target
    /// status: an incident enters each status once.
    pub fn transition(&self, to: Status, at: DateTime<Utc>, by: &str, what: &str) -> Result<Entry, IncidentError> {
        if !self.status.can_become(to) {
            return Err(IncidentError::Transition { id: self.id.clone(), from: self.status, to });
        }
        Ok(Entry::new(at, by, what, &format!("status:{to}")))
    }

    /// This incident after `entry` (and, for a transition, the new status) — what the table
    /// will hold once the write succeeds.
    pub fn apply(&mut self, entry: Entry, to: Option<Status>) {
        if self.timeline.iter().any(|e| e.key == entry.key) {
            return;
        }
        if let Some(to) = to {
            self.status = to;
            if !to.is_open() {
                self.ended = Some(entry.at);
            }
        }
        self.timeline.push(entry);
    }

    /// The entry that records `report` on the database recovered as `of` (`data checks passed (3
    /// of 3)`, `data checks failed (...)`), with the measured loss in its details. Its key is the
    /// recovery and what the entry says, not when it was said: a replayed check (a Lambda retry,
    /// EventBridge's second delivery) says what the last one said and adds nothing; checks run
    /// again that found something else (after a person mended the credentials, or a failure
    /// back) are a new entry.
    pub fn data_checked(&self, report: &DataReport, of: &str, by: &str) -> Result<Entry, IncidentError> {
        if !self.status.is_open() {
            return Err(IncidentError::Closed { id: self.id.clone(), status: self.status });
        }
        let mut details = Vec::new();
        if let Some(l) = report.measured_loss() {
            details.push(format!(
                "{}s of writes lost (newest write {}, {} {})",
                l.seconds,
                l.newest_write.format("%Y-%m-%d %H:%M:%S UTC"),
                l.against.moment(),
                l.against.time().format("%Y-%m-%d %H:%M:%S UTC")
            ));
        } else if let Some(why) = &report.unmeasured {
            details.push(format!("data loss not measured: {why}"));
        }
        if let Some(f) = &report.failure {
            details.push(format!("what to do: {}", f.what_to_do()));
        }
        let (what, details) = (report.summary(), details.join("; "));
        let said = crate::text::short_digest(&format!("{what}\n{details}"), 4);
        // The same as the last check of this recovery said: a replay, under that entry's key.
        // Anything else, a returning failure included, is a new entry (numbered: keys are unique).
        let prefix = format!("data:{of}:");
        let earlier: Vec<&Entry> = self.timeline.iter().filter(|e| e.key.starts_with(&prefix)).collect();
        let key = match earlier.last() {
            Some(last) if last.key.starts_with(&format!("{prefix}{said}:")) => last.key.clone(),
            _ => format!("{prefix}{said}:{}", earlier.len()),
        };
        let entry = Entry::new(report.at, by, &what, &key);
        Ok(if details.is_empty() { entry } else { entry.with_details(details) })
    }

    /// This incident after `data_checked`'s entry: the report is the incident's data.
    pub fn apply_data(&mut self, entry: Entry, report: DataReport) {
        self.data = Some(report);
        self.apply(entry, None);
    }

    /// When people were last told about it: the last message sent, or the start.
    pub fn last_told(&self) -> DateTime<Utc> {
        self.timeline
            .iter()
            .filter(|e| e.key.starts_with(TOLD))
            .map(|e| e.at)
            .max()
            .unwrap_or(self.started)
            .max(self.started)
    }

    /// Open, and people have heard nothing for `PROGRESS_EVERY`: they are owed an update.
    pub fn progress_due(&self, now: DateTime<Utc>) -> bool {
        self.status.is_open() && (now - self.last_told()).to_std().is_ok_and(|quiet| quiet >= PROGRESS_EVERY)
    }

    /// What happened since people were last told (or since the start).
    pub fn since_last_told(&self) -> Vec<&Entry> {
        let from = self.timeline.iter().rposition(|e| e.key.starts_with(TOLD)).map_or(0, |i| i + 1);
        self.timeline[from..].iter().filter(|e| !e.key.starts_with(TOLD)).collect()
    }

    /// The key under which a message about this incident is published once. Each status is
    /// entered once, so each one-shot message is keyed by its name alone; progress updates by
    /// how many went before, so every 15 minutes gets its own.
    pub fn publish_key(&self, message: &str) -> String {
        if message == "progress" {
            let sent = self.timeline.iter().filter(|e| e.key.starts_with(&format!("{TOLD}progress@"))).count();
            format!("progress@{sent}")
        } else {
            message.to_owned()
        }
    }

    /// The timeline entry saying people were told: when, and what.
    pub fn told(key: &str, subject: &str, at: DateTime<Utc>) -> Entry {
        Entry::new(at, "notifier", &format!("people told: {subject}"), &format!("{TOLD}{key}"))
    }

    pub fn duration(&self) -> Option<chrono::Duration> {
        self.ended.map(|end| end - self.started)
    }

    /// Data lost: from the newest point the recovered database holds to the incident's start.
    /// Measured in the database when its data checks read a newest write, else estimated from the
    /// recovery point the failover steps reported.
    pub fn data_loss(&self) -> Option<chrono::Duration> {
        if let Some(l) = self.data.as_ref().and_then(DataReport::measured_loss) {
            return Some(chrono::Duration::seconds(l.seconds));
        }
        self.recovered_to.map(|to| (self.started - to).max(chrono::Duration::zero()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use chrono::TimeZone;

    fn db() -> Database {
        Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap().databases[0].clone()
    }

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 0).unwrap() + chrono::Duration::minutes(min)
    }

    #[test]
    fn ids_are_readable_and_stable_per_trigger() {
        let a = incident_id("orders-prod", at(0), "alarm-1");
        assert!(
            a.starts_with("orders-prod-20261125T1942Z-") && a.len() == "orders-prod-20261125T1942Z-".len() + 4,
            "{a}"
        );
        assert_eq!(a, incident_id("orders-prod", at(0), "alarm-1"));
        assert_ne!(a, incident_id("orders-prod", at(0), "alarm-2"));
    }

    #[test]
    fn severity_follows_tier_and_kind() {
        assert_eq!(severity_for(Tier::Production, Kind::Outage), Severity::P1);
        assert_eq!(severity_for(Tier::NonProduction, Kind::Region), Severity::P2);
        assert_eq!(severity_for(Tier::Production, Kind::Drill), Severity::P3);
    }

    #[test]
    fn status_moves_forward_only_and_closed_is_final() {
        let mut i = Incident::declare(&db(), Kind::Outage, at(0), "failover-trigger", "alarm", "a");
        assert_eq!(i.severity, Severity::P1);
        let e = i.transition(Status::AwaitingApproval, at(1), "failover", "approval requested").unwrap();
        i.apply(e, Some(Status::AwaitingApproval));
        assert!(i.transition(Status::Declared, at(2), "x", "back").is_err());
        let e = i.transition(Status::Recovering, at(3), "alice", "approved").unwrap();
        i.apply(e.clone(), Some(Status::Recovering));
        // The same entry again changes nothing.
        i.apply(e, Some(Status::Recovering));
        assert_eq!(i.timeline.len(), 3);
        let e = i.transition(Status::Resolved, at(20), "failover", "verified").unwrap();
        i.apply(e, Some(Status::Resolved));
        assert_eq!(i.ended, Some(at(20)));
        assert_eq!(i.duration(), Some(chrono::Duration::minutes(20)));
        for to in [Status::Recovering, Status::Failed, Status::Aborted] {
            let err = i.transition(to, at(21), "x", "y").unwrap_err();
            assert!(err.to_string().contains("resolved"), "{err}");
        }
    }

    #[test]
    fn dns_left_for_people_keeps_the_incident_open_until_a_verify_confirms_it() {
        let mut i = Incident::declare(&db(), Kind::Outage, at(0), "failover-trigger", "alarm", "a");
        let e = i.transition(Status::Recovering, at(1), "alice", "approved").unwrap();
        i.apply(e, Some(Status::Recovering));
        let e = i.transition(Status::DnsPending, at(10), "failover", "recovered, DNS pending").unwrap();
        i.apply(e, Some(Status::DnsPending));
        assert!(i.status.is_open() && i.ended.is_none() && i.duration().is_none(), "the impact is not over");
        assert!(i.progress_due(at(25)), "people keep hearing about it");
        assert_eq!(MessageKind::Resolved.as_of(i.status), MessageKind::DnsPending);
        assert!(!MessageKind::Resolved.fits(i.status) && MessageKind::DnsPending.fits(i.status));
        for to in [Status::Aborted, Status::Recovering, Status::Declared] {
            assert!(i.transition(to, at(11), "x", "y").is_err(), "{to}");
        }
        let e = i.transition(Status::Resolved, at(40), "failover", "DNS confirmed").unwrap();
        i.apply(e, Some(Status::Resolved));
        assert_eq!(i.duration(), Some(chrono::Duration::minutes(40)), "measured to the DNS confirmation");
        assert_eq!(MessageKind::Resolved.as_of(i.status), MessageKind::Resolved);
    }

    #[test]
    fn progress_is_due_fifteen_minutes_after_people_were_last_told_and_reports_what_changed() {
        let mut i = Incident::declare(&db(), Kind::Region, at(0), "AWS Health", "region impaired", "h");
        assert!(!i.progress_due(at(14)));
        assert!(i.progress_due(at(15)));
        assert_eq!(i.publish_key("progress"), "progress@0");
        i.apply(Incident::told("declared", "declared", at(1)), None);
        // Steps recorded on the timeline are news, not updates: the clock runs from the last message.
        i.apply(Entry::new(at(5), "failover", "replica promoted", "promote"), None);
        assert!(!i.progress_due(at(15)) && i.progress_due(at(16)));
        assert_eq!(i.since_last_told().iter().map(|e| e.key.as_str()).collect::<Vec<_>>(), ["promote"]);
        i.apply(Incident::told("progress@0", "update", at(16)), None);
        assert!(i.since_last_told().is_empty());
        assert!(!i.progress_due(at(17)));
        assert_eq!(i.publish_key("progress"), "progress@1", "the next update is a new message");
        assert_eq!(i.publish_key("resolved"), "resolved", "one-shot messages don't move with the timeline");
    }

    #[test]
    fn data_loss_is_the_gap_between_recovery_point_and_start() {
        let mut i = Incident::declare(&db(), Kind::Outage, at(0), "t", "w", "s");
        assert_eq!(i.data_loss(), None);
        i.recovered_to = Some(at(-3));
        assert_eq!(i.data_loss(), Some(chrono::Duration::minutes(3)));
    }

    fn report(at_min: i64, answer: &str, newest: &str) -> DataReport {
        use crate::decide::validate::{judge, Against, Reached};
        let yaml = "databases:\n  - name: o\n    source: arn:aws:rds:us-east-1:123456789012:db:o\n    tier: production\n    rpo: 5m\n    rto: 30m\n    validate:\n      connect: { secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-v\", database: o }\n      checks: [{ name: no orphans, sql: x, expect: \"= 0\" }]\n      freshness: y\n";
        let v = Config::from_yaml(yaml).unwrap().databases[0].validate.clone().unwrap();
        let reached = Reached::Connected {
            checks: vec![Ok(Some(answer.into()))],
            freshness: Some(Ok(Some(newest.into()))),
            heartbeat: None,
        };
        judge(&v, reached, Some(Against::FailedAt(at(0))), Duration::from_secs(300), at(at_min))
    }

    #[test]
    fn data_checks_go_on_the_timeline_and_measure_the_loss() {
        let mut i = Incident::declare(&db(), Kind::Outage, at(0), "t", "w", "s");
        i.recovered_to = Some(at(-10));
        assert_eq!(i.data_loss(), Some(chrono::Duration::minutes(10)), "estimated until measured");
        let e = i.transition(Status::Recovering, at(1), "alice", "approved").unwrap();
        i.apply(e, Some(Status::Recovering));

        let failed = report(8, "3", "2026-11-25 19:41:18+00");
        let e = i.data_checked(&failed, "orders-replica", "data-validator").unwrap();
        assert_eq!(e.what, "data checks failed (no orphans: 3 (= 0))");
        assert_eq!(
            e.details.as_deref(),
            Some("42s of writes lost (newest write 2026-11-25 19:41:18 UTC, primary lost 2026-11-25 19:42:00 UTC)")
        );
        i.apply_data(e, failed.clone());
        // Replayed a minute later (a Lambda retry of the step): the same finding, not a new entry.
        let replayed = DataReport { at: at(9), ..failed.clone() };
        let again = i.data_checked(&replayed, "orders-replica", "data-validator").unwrap();
        i.apply_data(again, replayed);
        assert_eq!(i.timeline.iter().filter(|e| e.key.starts_with("data:")).count(), 1, "the same report once");
        assert_eq!(i.data_loss(), Some(chrono::Duration::seconds(42)), "measured wins over the estimate");
        assert!(MessageKind::DataChecksFailed.fits(i.status));

        // Run again after someone mended it: a new entry, and the newer report is the incident's.
        let passed = report(12, "0", "2026-11-25 19:41:18+00");
        let e = i.data_checked(&passed, "orders-replica", "data-validator").unwrap();
        assert_eq!(e.what, "data checks passed (1 of 1)");
        i.apply_data(e, passed.clone());
        assert_eq!(i.timeline.iter().filter(|e| e.key.starts_with("data:")).count(), 2);
        assert_eq!(i.data.as_ref(), Some(&passed));
        // Failing as it first did, later: a new entry, so the timeline's last word is the data's.
        let again = DataReport { at: at(14), ..failed.clone() };
        let e = i.data_checked(&again, "orders-replica", "data-validator").unwrap();
        i.apply_data(e, again.clone());
        let said: Vec<&str> =
            i.timeline.iter().filter(|e| e.key.starts_with("data:")).map(|e| e.what.as_str()).collect();
        assert_eq!(
            said,
            [
                "data checks failed (no orphans: 3 (= 0))",
                "data checks passed (1 of 1)",
                "data checks failed (no orphans: 3 (= 0))"
            ]
        );

        let e = i.transition(Status::Resolved, at(20), "failover", "verified").unwrap();
        i.apply(e, Some(Status::Resolved));
        assert!(matches!(i.data_checked(&passed, "orders-replica", "x"), Err(IncidentError::Closed { .. })));
        assert!(!MessageKind::DataChecksFailed.fits(i.status));
        // Stored incidents from before data checks still read.
        let mut old = serde_json::to_value(&i).unwrap();
        old.as_object_mut().unwrap().remove("data");
        assert_eq!(serde_json::from_value::<Incident>(old).unwrap().data, None);
    }

    #[test]
    fn names_parse_and_print_alike() {
        for s in ["declared", "awaiting-approval", "recovering", "dns-pending", "resolved", "aborted", "failed"] {
            assert_eq!(s.parse::<Status>().unwrap().to_string(), s);
        }
        assert!("open".parse::<Status>().unwrap_err().to_string().contains("awaiting-approval"));
        assert_eq!("region".parse::<Kind>().unwrap(), Kind::Region);
    }
}
