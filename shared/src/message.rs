//! Everything a person reads, rendered in one place so wording is reviewed in one place: a subject
//! under 100 characters that says severity, database and what happened; a plain-text body for a
//! phone; the same facts as JSON for machines; SNS message attributes subscribers filter on; and
//! the AWS Chatbot custom-notification shape for Slack / Teams. Pure.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::Database;
use crate::health::HealthEvent;
use crate::incident::{Entry, Incident, IncidentError, Severity, Status};
use crate::prune::{GroupReport, Summary};
use crate::retention::Scope;

/// SNS refuses subjects of 100 characters or more.
pub const MAX_SUBJECT: usize = 99;
/// Deletions listed by name per database and region in a pruner summary.
const LISTED_PER_GROUP: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Declared,
    ApprovalRequested,
    Progress,
    Resolved,
    Aborted,
    Failed,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Declared => "declared",
            MessageKind::ApprovalRequested => "approval-requested",
            MessageKind::Progress => "progress",
            MessageKind::Resolved => "resolved",
            MessageKind::Aborted => "aborted",
            MessageKind::Failed => "failed",
        }
    }

    /// Whether the incident's status lets this message be sent: "resolved" for an incident still
    /// recovering would tell people something false.
    pub fn fits(self, status: Status) -> bool {
        match self {
            MessageKind::Declared => true,
            MessageKind::ApprovalRequested => status == Status::AwaitingApproval,
            MessageKind::Progress => status.is_open(),
            MessageKind::Resolved => status == Status::Resolved,
            MessageKind::Aborted => status == Status::Aborted,
            MessageKind::Failed => status == Status::Failed,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageKind {
    type Err = IncidentError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            MessageKind::Declared,
            MessageKind::ApprovalRequested,
            MessageKind::Progress,
            MessageKind::Resolved,
            MessageKind::Aborted,
            MessageKind::Failed,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| {
            IncidentError::Unknown(s.to_owned(), "declared, approval-requested, progress, resolved, aborted, failed")
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    pub body: String,
    pub facts: Value,
    /// SNS message attributes: `severity`, `database`, `kind`, `incident_id`, `message`.
    pub attributes: BTreeMap<&'static str, String>,
    /// AWS Chatbot custom notification.
    pub chat: Value,
}

impl Message {
    /// The SNS `Message` with `MessageStructure=json`: people (email, SMS) get the text, machines
    /// (SQS, Lambda, HTTPS, email-json) the facts, which carry the text too.
    pub fn sns_structured(&self) -> String {
        let facts = self.facts.to_string();
        json!({
            "default": self.body,
            "email": self.body,
            "sqs": facts,
            "lambda": facts,
            "http": facts,
            "https": facts,
            "email-json": facts,
        })
        .to_string()
    }
}

fn subject(text: String) -> String {
    // SNS subjects are one line of printable ASCII.
    let clean: String = text.chars().map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { '?' }).collect();
    if clean.chars().count() <= MAX_SUBJECT {
        return clean;
    }
    let mut cut: String = clean.chars().take(MAX_SUBJECT - 3).collect();
    cut.push_str("...");
    cut
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `1h 05m`, `12m`, `40s`: how long, for a person.
pub fn human(d: chrono::Duration) -> String {
    let secs = d.num_seconds().max(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m:02}m"),
    }
}

fn std_human(d: Duration) -> String {
    human(chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX))
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The whole timeline as a markdown table, ready to paste into a post-mortem.
pub fn timeline_table(timeline: &[Entry]) -> String {
    let mut out = String::from("| Time (UTC) | By | What | Details |\n|---|---|---|---|\n");
    for e in timeline {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            cell(&e.by),
            cell(&e.what),
            cell(e.details.as_deref().unwrap_or(""))
        ));
    }
    out
}

fn headline(kind: MessageKind, i: &Incident) -> String {
    match kind {
        MessageKind::Declared => format!("{} incident declared", i.kind),
        MessageKind::ApprovalRequested => "failover awaits your approval".to_owned(),
        MessageKind::Progress => format!("update, {}", i.status),
        MessageKind::Resolved => "resolved".to_owned(),
        MessageKind::Aborted => "recovery aborted".to_owned(),
        MessageKind::Failed => "recovery FAILED".to_owned(),
    }
}

fn doing(kind: MessageKind, i: &Incident) -> &'static str {
    match (kind, i.status) {
        (MessageKind::Resolved, _) => "Nothing more: the database is back and verified.",
        (MessageKind::Aborted, _) => "Nothing: recovery was stopped and nothing further will change.",
        (MessageKind::Failed, _) => "Nothing automatic any more: a recovery step failed and Lifeboat stopped there.",
        (_, Status::Declared) => "Assessing: the failover plan is being prepared.",
        (_, Status::AwaitingApproval) => "Waiting for an approval before changing anything in production.",
        (_, Status::Recovering) => "Recovering: moving the database and its endpoints to the DR side.",
        _ => "Nothing.",
    }
}

fn must_do(kind: MessageKind, i: &Incident) -> &'static str {
    match (kind, i.severity) {
        (MessageKind::ApprovalRequested, _) => {
            "Approve or reject the failover on the approval page; nothing changes until someone does."
        }
        (MessageKind::Failed, _) => "Take over by hand: follow the runbook from the failed step in the timeline below.",
        (MessageKind::Resolved, _) => "Check the applications, then write the post-mortem (timeline below).",
        (MessageKind::Aborted, _) => "Decide what comes next; the incident is closed.",
        (_, Severity::P1) => "Join the incident channel; customers may be affected.",
        _ => "Nothing yet; watch for updates every 15 minutes.",
    }
}

/// A message about an incident, from its stored state. `db` is its config entry, when still
/// configured (RPO and RTO come from there).
pub fn incident(kind: MessageKind, i: &Incident, db: Option<&Database>, now: DateTime<Utc>) -> Message {
    let subj = subject(format!("[{}] {}: {}", i.severity, i.database, headline(kind, i)));
    let first = i.timeline.first();
    let mut body = format!(
        "{} {} incident for {} ({}): {}.\n",
        i.severity,
        i.kind,
        i.database,
        i.tier.as_str(),
        i.status.as_str().replace('-', " ")
    );
    if let Some(e) = first {
        body.push_str(&format!("What happened: {} ({}, {}).\n", e.what, e.by, when(e.at)));
    }
    let targets = db.map(|d| format!(" (RPO {}, RTO {})", std_human(d.rpo), std_human(d.rto))).unwrap_or_default();
    body.push_str(&match i.ended {
        None => format!("Impact: {} may be unavailable or at risk{targets}.\n", i.database),
        Some(end) => {
            format!("Impact: {} was affected from {} to {}{targets}.\n", i.database, when(i.started), when(end))
        }
    });
    body.push_str(&format!("What Lifeboat is doing: {}\n", doing(kind, i)));
    body.push_str(&format!("What you must do: {}\n", must_do(kind, i)));
    let mut facts = json!({
        "message": kind.as_str(),
        "incident_id": i.id,
        "database": i.database,
        "tier": i.tier.as_str(),
        "severity": i.severity.as_str(),
        "kind": i.kind.as_str(),
        "status": i.status.as_str(),
        "started": i.started,
        "ended": i.ended,
        "execution_arn": i.execution_arn,
        "at": now,
    });
    match kind {
        MessageKind::Progress => {
            let changes = i.since_last_progress();
            if changes.is_empty() {
                body.push_str("Since the last update: nothing changed.\n");
            } else {
                body.push_str("Since the last update:\n");
                for e in changes {
                    body.push_str(&format!("- {} {} ({})\n", e.at.format("%H:%M"), e.what, e.by));
                }
            }
            facts["changes"] = json!(changes);
        }
        MessageKind::Resolved | MessageKind::Aborted | MessageKind::Failed => {
            let duration = i.duration().unwrap_or_else(|| now - i.started);
            let rto = db.map(|d| d.rto);
            let rto_met = rto.map(|r| duration.to_std().is_ok_and(|d| d <= r));
            body.push_str(&format!(
                "Duration: {}{}.\n",
                human(duration),
                match (rto, rto_met) {
                    (Some(r), Some(true)) => format!(" (RTO {}: met)", std_human(r)),
                    (Some(r), _) => format!(" (RTO {}: MISSED)", std_human(r)),
                    _ => String::new(),
                }
            ));
            let loss = i.data_loss();
            let rpo = db.map(|d| d.rpo);
            let rpo_met = loss.zip(rpo).map(|(l, r)| l.to_std().is_ok_and(|l| l <= r));
            body.push_str(&match (loss, rpo, rpo_met) {
                (Some(l), Some(r), Some(met)) => format!(
                    "Data loss: up to {} (the recovered database holds data until {}; RPO {}: {}).\n",
                    human(l),
                    when(i.started - l),
                    std_human(r),
                    if met { "met" } else { "MISSED" }
                ),
                (Some(l), _, _) => format!("Data loss: up to {}.\n", human(l)),
                _ => "Data loss: not measured (no recovery point was reported).\n".to_owned(),
            });
            body.push_str(&format!("\nTimeline:\n{}", timeline_table(&i.timeline)));
            facts["duration_seconds"] = json!(duration.num_seconds());
            facts["rto_met"] = json!(rto_met);
            facts["data_loss_seconds"] = json!(loss.map(|l| l.num_seconds()));
            facts["rpo_met"] = json!(rpo_met);
            facts["timeline"] = json!(i.timeline);
        }
        MessageKind::Declared | MessageKind::ApprovalRequested => {}
    }
    body.push_str(&format!("\nIncident: {} (started {})\n", i.id, when(i.started)));
    facts["subject"] = json!(subj);
    facts["text"] = json!(body);
    let attributes = BTreeMap::from([
        ("severity", i.severity.as_str().to_owned()),
        ("database", i.database.clone()),
        ("kind", i.kind.as_str().to_owned()),
        ("incident_id", i.id.clone()),
        ("message", kind.as_str().to_owned()),
    ]);
    let chat = chat(&subj, &body, &[must_do(kind, i)], &i.id);
    Message { subject: subj, body, facts, attributes, chat }
}

fn chat(title: &str, description: &str, next_steps: &[&str], thread: &str) -> Value {
    json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description,
            "nextSteps": next_steps,
        },
        "metadata": { "threadId": thread, "summary": title },
    })
}

/// AWS Health says RDS may be impaired where protected databases live; or that it is resolved.
pub fn health_notice(h: &HealthEvent, affected: &[&Database]) -> Message {
    let names: Vec<&str> = affected.iter().map(|d| d.name.as_str()).collect();
    let severity = if affected.iter().any(|d| d.tier == crate::config::Tier::Production) && !h.is_closed() {
        Severity::P2
    } else {
        Severity::P3
    };
    let what = if h.is_closed() { "AWS reports resolved" } else { "possible impact" };
    let subj = subject(format!("[{severity}] AWS Health {what}: RDS in {} ({})", h.event_region, names.join(", ")));
    let mut body = format!("AWS Health, {} in {}: {}.\n", h.event_type_code, h.event_region, what);
    body.push_str(&format!("Protected databases that may be affected: {}.\n", names.join(", ")));
    body.push_str(&format!("AWS says: {}\n", h.description()));
    let must = if h.is_closed() {
        "Nothing, unless an incident is still open for these databases: close it when they are verified."
    } else {
        "Watch the databases' alarms; a failover starts only from an alarm, a Health trigger or a request, with approval."
    };
    body.push_str(&format!(
        "What Lifeboat is doing: watching; no recovery is started by this notice.\nWhat you must do: {must}\n"
    ));
    body.push_str(&format!(
        "\nHealth event: {} (status {}, last updated {})\n",
        h.event_arn,
        h.status_code,
        h.last_updated_time.as_deref().unwrap_or("-")
    ));
    let facts = json!({
        "message": "health",
        "subject": subj,
        "text": body,
        "severity": severity.as_str(),
        "event_arn": h.event_arn,
        "event_type_code": h.event_type_code,
        "event_region": h.event_region,
        "status": h.status_code,
        "last_updated": h.last_updated_time,
        "databases": names,
    });
    let attributes = BTreeMap::from([
        ("severity", severity.as_str().to_owned()),
        ("database", names.join(",")),
        ("kind", "health".to_owned()),
        ("incident_id", "-".to_owned()),
        ("message", if h.is_closed() { "health-resolved" } else { "health" }.to_owned()),
    ]);
    let chat = chat(&subj, &body, &[must], &h.event_arn);
    Message { subject: subj, body, facts, attributes, chat }
}

fn group_line(g: &GroupReport) -> String {
    let scope = match g.scope {
        Scope::Source => "source",
        Scope::Copies => "DR copies",
    };
    format!(
        "\n{} in {} ({scope}){}: kept {}, deleted {}, skipped {}{}\n",
        g.database,
        g.region,
        if g.dry_run { ", dry run" } else { "" },
        g.kept.len(),
        g.deleted.len(),
        g.skipped.len(),
        if g.failed.is_empty() { String::new() } else { format!(", failed {}", g.failed.len()) },
    )
}

/// The pruner's run summary.
pub fn pruner_summary(s: &Summary) -> Message {
    let subj = if s.failed() > 0 {
        format!("Lifeboat pruner: {} deleted, {} FAILED", s.deleted(), s.failed())
    } else {
        format!("Lifeboat pruner: {} snapshots deleted", s.deleted())
    };
    let mut body = format!("Snapshot retention run as of {}.\n", s.as_of.to_rfc3339());
    for g in &s.groups {
        body.push_str(&group_line(g));
        // Failures first and in full; deletions capped, as SNS messages stop at 256 KB and the
        // whole list is in the run's JSON log.
        for i in &g.failed {
            body.push_str(&format!("  FAILED to delete {}: {}\n", i.id, i.why));
        }
        for i in g.deleted.iter().take(LISTED_PER_GROUP) {
            body.push_str(&format!("  deleted {} ({})\n", i.id, i.why));
        }
        if g.deleted.len() > LISTED_PER_GROUP {
            body.push_str(&format!("  ... and {} more (see the run's log)\n", g.deleted.len() - LISTED_PER_GROUP));
        }
    }
    for w in &s.quota_warnings {
        body.push_str(&format!("\nWarning: {w}\n"));
    }
    let severity = if s.failed() > 0 { Severity::P2 } else { Severity::P3 };
    let subj = subject(subj);
    let databases: Vec<&str> = {
        let mut d: Vec<&str> = s.groups.iter().map(|g| g.database.as_str()).collect();
        d.dedup();
        d
    };
    let facts = json!({
        "message": "pruner-summary",
        "subject": subj,
        "text": body,
        "severity": severity.as_str(),
        "as_of": s.as_of,
        "deleted": s.deleted(),
        "failed": s.failed(),
        "quota_warnings": s.quota_warnings,
    });
    let attributes = BTreeMap::from([
        ("severity", severity.as_str().to_owned()),
        ("database", databases.join(",")),
        ("kind", "retention".to_owned()),
        ("incident_id", "-".to_owned()),
        ("message", "pruner-summary".to_owned()),
    ]);
    let chat = chat(&subj, &body, &["Nothing, unless a deletion FAILED: the next run retries it."], "lifeboat-pruner");
    Message { subject: subj, body, facts, attributes, chat }
}

#[cfg(test)]
mod tests;
