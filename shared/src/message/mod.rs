//! Everything a person reads, rendered in one place so wording is reviewed in one place: a subject
//! under 100 characters that says severity, database and what happened; a plain-text body for a
//! phone; the same facts as JSON for machines; SNS message attributes subscribers filter on; and
//! the AWS Chatbot custom-notification shape for Slack / Teams. Pure.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::failover::Via;
use crate::config::Database;
use crate::drill::DrillResult;
use crate::health::HealthEvent;
pub use crate::incident::MessageKind;
use crate::incident::{Entry, Incident, Severity, Status};
use crate::prune::{GroupReport, Summary};
use crate::retention::Scope;
use crate::rpo::Assessment;
pub use crate::text::human;
use crate::text::human_std;

/// SNS refuses subjects of 100 characters or more.
pub const MAX_SUBJECT: usize = 99;
/// Deletions listed by name per database and region in a pruner summary.
const LISTED_PER_GROUP: usize = 20;
/// Timeline rows in a message; the whole timeline stays in the incident's item.
pub const TIMELINE_ROWS: usize = 50;

/// An SNS message attribute: one value, or a list (`String.Array`), which a filter policy
/// matches when any element does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Text(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub subject: String,
    pub body: String,
    pub facts: Value,
    /// SNS message attributes: `severity`, `database` (a list), `kind`, `incident_id`, `message`.
    pub attributes: BTreeMap<&'static str, Attribute>,
    /// AWS Chatbot custom notification.
    pub chat: Value,
}

impl Message {
    /// The SNS `Message` with `MessageStructure=json`: people (email, SMS, chat, HTTPS) get the
    /// text, queues and functions the facts, which carry the text too. Kept to three copies, and
    /// timelines to `TIMELINE_ROWS`, so a long incident stays far inside SNS's 256 KB.
    pub fn sns_structured(&self) -> String {
        let facts = self.facts.to_string();
        json!({ "default": self.body, "sqs": facts, "lambda": facts }).to_string()
    }

    /// The message pointing at the evidence record kept for it (`s3://...`).
    pub fn with_evidence(mut self, uri: &str) -> Self {
        let line = format!("Evidence kept: {uri}\n");
        self.body.push_str(&line);
        self.facts["evidence"] = json!(uri);
        self.facts["text"] = json!(self.body);
        if let Some(d) = self.chat["content"]["description"].as_str() {
            self.chat["content"]["description"] = json!(format!("{d}{line}"));
        }
        self
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

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The timeline as a markdown table, ready to paste into a post-mortem (its last `TIMELINE_ROWS`).
pub fn timeline_table(timeline: &[Entry]) -> String {
    let mut out = String::from("| Time (UTC) | By | What | Details |\n|---|---|---|---|\n");
    let skip = timeline.len().saturating_sub(TIMELINE_ROWS);
    if skip > 0 {
        out.push_str(&format!("| ... | | {skip} earlier entries are in the incident's item | |\n"));
    }
    for e in &timeline[skip..] {
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
        MessageKind::Progress => format!("update, {}", status_words(i.status)),
        MessageKind::DnsPending => "recovered, DNS pending (impact not over)".to_owned(),
        MessageKind::Resolved => "resolved".to_owned(),
        MessageKind::Aborted => "recovery aborted".to_owned(),
        MessageKind::Failed => "recovery FAILED".to_owned(),
    }
}

/// A status as the first line of a message says it.
fn status_words(s: Status) -> String {
    match s {
        Status::DnsPending => "recovered, DNS pending".to_owned(),
        _ => s.as_str().replace('-', " "),
    }
}

/// The `left:` entries of the timeline that a later verify confirmed done (`confirmed:<what>`).
fn confirmed<'a>(i: &'a Incident, left: &Entry) -> Option<&'a Entry> {
    let what = left.key.strip_prefix("left:")?;
    i.timeline.iter().find(|e| e.key == format!("confirmed:{what}"))
}

fn doing(kind: MessageKind, i: &Incident) -> &'static str {
    match (kind, i.status) {
        (MessageKind::DnsPending, _) | (MessageKind::Progress, Status::DnsPending) => {
            "The database is back and verified; DNS is not. The incident resolves, and its RTO is measured, when a \
             verify finds the record naming the new primary (Lifeboat re-verifies for 30 minutes)."
        }
        (MessageKind::Resolved, _) => "Nothing more: the database is back and verified.",
        (MessageKind::Aborted, _) => "Nothing: recovery was stopped before it changed the database.",
        (MessageKind::Failed, _) => "Nothing automatic any more: a recovery step failed and Lifeboat stopped there.",
        (_, Status::Declared) => "Assessing: the failover plan is being prepared.",
        (_, Status::AwaitingApproval) => "Waiting for an approval before changing anything in production.",
        (_, Status::Recovering) => "Recovering: moving the database and its endpoints to the DR side.",
        _ => "Nothing.",
    }
}

fn must_do(kind: MessageKind, i: &Incident) -> &'static str {
    match (kind, i.status, i.severity) {
        (MessageKind::ApprovalRequested, ..) | (MessageKind::Progress, Status::AwaitingApproval, _) => {
            "Approve or reject the failover (how: below); nothing changes until someone does."
        }
        (MessageKind::Failed, ..) => "Take over by hand: follow the runbook from the failed step in the timeline below.",
        (MessageKind::DnsPending, ..) | (MessageKind::Progress, Status::DnsPending, _) => {
            "Move DNS now (left for people, below): until it moves, clients that connect by name reach the old primary."
        }
        (MessageKind::Resolved, ..)
            if i.timeline.iter().any(|e| e.key.starts_with("left:") && confirmed(i, e).is_none()) =>
        {
            "Finish what Lifeboat could not (left for people, below), check the applications, then write the post-mortem."
        }
        (MessageKind::Resolved, ..) => "Check the applications, then write the post-mortem (timeline below).",
        (MessageKind::Aborted, ..) => {
            "If the database is still down, follow the runbook or request a new failover; Lifeboat will not retry by itself."
        }
        (_, _, Severity::P1) => "Join the incident channel; customers may be affected.",
        _ => "Nothing yet; watch for updates every 15 minutes.",
    }
}

/// A message about an incident, from its stored state. `db` is its config entry, when still
/// configured (RPO and RTO come from there).
pub fn incident(kind: MessageKind, i: &Incident, db: Option<&Database>, now: DateTime<Utc>) -> Message {
    let subj = subject(format!("[{}] {}: {}", i.severity, i.database, headline(kind, i)));
    let mut body = format!(
        "{} {} incident for {} ({}): {}.\n",
        i.severity,
        i.kind,
        i.database,
        i.tier.as_str(),
        status_words(i.status)
    );
    if let Some(e) = i.timeline.first() {
        body.push_str(&format!("What happened: {} ({}, {}).\n", e.what, e.by, when(e.at)));
    }
    let closing = i.timeline.iter().rev().find(|e| e.key == format!("status:{}", i.status));
    if matches!(kind, MessageKind::Aborted | MessageKind::Failed) {
        if let Some(e) = closing {
            let details = e.details.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
            body.push_str(&format!("Why: {}{details} ({}, {}).\n", e.what, e.by, when(e.at)));
        }
    }
    let targets = db.map(|d| format!(" (RPO {}, RTO {})", human_std(d.rpo), human_std(d.rto))).unwrap_or_default();
    body.push_str(&match (i.status, i.ended) {
        (Status::Resolved, Some(end)) => {
            format!("Impact: {} was affected from {} to {}{targets}.\n", i.database, when(i.started), when(end))
        }
        (_, Some(end)) => {
            format!("Impact: {} may still be unavailable: recovery stopped at {}{targets}.\n", i.database, when(end))
        }
        (Status::DnsPending, None) => format!(
            "Impact: not over: {} is back, but its DNS name still leads clients to the old primary{targets}.\n",
            i.database
        ),
        (_, None) => format!("Impact: {} may be unavailable or at risk{targets}.\n", i.database),
    });
    body.push_str(&format!("What Lifeboat is doing: {}\n", doing(kind, i)));
    body.push_str(&format!("What you must do: {}\n", must_do(kind, i)));
    for left in i.timeline.iter().filter(|e| e.key.starts_with("left:")) {
        if let Some(done) = confirmed(i, left) {
            body.push_str(&format!("Left for people, since done: {} ({})\n", done.what, when(done.at)));
            continue;
        }
        let how = left.details.as_deref().map(|d| format!("\n  {d}")).unwrap_or_default();
        body.push_str(&format!("Left for people: {}{how}\n", left.what));
    }
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
            let changes = i.since_last_told();
            if changes.is_empty() {
                body.push_str("Since the last update: nothing changed.\n");
            } else {
                body.push_str("Since the last update:\n");
                for e in &changes {
                    body.push_str(&format!("- {} {} ({})\n", e.at.format("%H:%M"), e.what, e.by));
                }
            }
            facts["changes"] = json!(changes);
        }
        MessageKind::DnsPending | MessageKind::Resolved | MessageKind::Aborted | MessageKind::Failed => {
            let duration = i.duration().unwrap_or_else(|| now - i.started);
            let pending = kind == MessageKind::DnsPending;
            // An RTO is met by a recovery, not by giving up quickly; with DNS pending the
            // recovery isn't over, so it is not met yet (only missed, once the RTO has passed).
            let rto = db.map(|d| d.rto).filter(|_| matches!(kind, MessageKind::Resolved | MessageKind::DnsPending));
            let rto_met = rto.map(|r| duration.to_std().is_ok_and(|d| d <= r)).filter(|met| !(pending && *met));
            body.push_str(&format!(
                "Duration: {}{}{}.\n",
                human(duration),
                if pending { " so far, not over" } else { "" },
                match (rto, rto_met) {
                    (Some(r), Some(true)) => format!(" (RTO {}: met)", human_std(r)),
                    (Some(r), None) if pending => format!(" (RTO {}: not met yet, DNS pending)", human_std(r)),
                    (Some(r), _) => format!(" (RTO {}: MISSED)", human_std(r)),
                    _ => String::new(),
                }
            ));
            let loss = i.data_loss();
            let rpo = db.map(|d| d.rpo);
            let rpo_met = loss.zip(rpo).map(|(l, r)| l.to_std().is_ok_and(|l| l <= r));
            body.push_str(&match (loss, i.recovered_to, rpo, rpo_met) {
                (Some(l), Some(to), Some(r), Some(met)) => format!(
                    "Data loss: up to {} (the recovered database holds data until {}; RPO {}: {}).\n",
                    human(l),
                    when(to),
                    human_std(r),
                    if met { "met" } else { "MISSED" }
                ),
                (Some(l), ..) => format!("Data loss: up to {}.\n", human(l)),
                _ => "Data loss: not measured (no recovery point was reported).\n".to_owned(),
            });
            body.push_str(&format!("\nTimeline:\n{}", timeline_table(&i.timeline)));
            facts["duration_seconds"] = json!(duration.num_seconds());
            facts["rto_met"] = json!(rto_met);
            facts["dns_pending"] = json!(pending);
            facts["data_loss_seconds"] = json!(loss.map(|l| l.num_seconds()));
            facts["rpo_met"] = json!(rpo_met);
            let skip = i.timeline.len().saturating_sub(TIMELINE_ROWS);
            facts["timeline"] = json!(&i.timeline[skip..]);
        }
        MessageKind::Declared | MessageKind::ApprovalRequested => {}
    }
    body.push_str(&format!("\nIncident: {} (started {})\n", i.id, when(i.started)));
    facts["subject"] = json!(subj);
    facts["text"] = json!(body);
    let attributes = BTreeMap::from([
        ("severity", Attribute::Text(i.severity.as_str().to_owned())),
        ("database", Attribute::List(vec![i.database.clone()])),
        ("kind", Attribute::Text(i.kind.as_str().to_owned())),
        ("incident_id", Attribute::Text(i.id.clone())),
        ("message", Attribute::Text(kind.as_str().to_owned())),
    ]);
    let chat = chat(&subj, &body, &[must_do(kind, i)], &i.id);
    Message { subject: subj, body, facts, attributes, chat }
}

/// A restore drill's result: proven (or not), how fast against the RTO, what was checked, and
/// what was deleted afterwards. A failed drill is P2: recoverability is not proven.
pub fn drill_result(r: &DrillResult) -> Message {
    let rto = Duration::from_secs(r.rto_seconds);
    let took = r.measured_rto_seconds.map(|s| human(chrono::Duration::seconds(s)));
    let (severity, verdict) = if r.passed { ("P3", "restore drill passed") } else { ("P2", "restore drill FAILED") };
    let headline = match &took {
        Some(t) => format!("{verdict}: available in {t} (RTO {})", human_std(rto)),
        None => format!("{verdict}: never became available"),
    };
    let subj = subject(format!("[{severity}] {}: {headline}", r.database));
    let mut body = format!(
        "Restore drill {} of {} in {} ({} to {}).\n",
        r.drill_id,
        r.database,
        r.region,
        when(r.started),
        when(r.ended)
    );
    body.push_str(&format!("Restored: {}.\n", r.snapshot.as_deref().unwrap_or("(no DR copy found)")));
    body.push_str(&match (&took, r.rto_met()) {
        (Some(t), Some(true)) => format!("Measured RTO: {t}, within the RTO of {}.\n", human_std(rto)),
        (Some(t), _) => format!("Measured RTO: {t}, MORE than the RTO of {}.\n", human_std(rto)),
        (None, _) => format!("Measured RTO: none, the restore never became available (RTO {}).\n", human_std(rto)),
    });
    if !r.checks.is_empty() {
        body.push_str("Checks:\n");
        for c in &r.checks {
            body.push_str(&format!("- {} {}: {}\n", if c.passed { "ok" } else { "FAILED" }, c.name, c.detail));
        }
    }
    if let Some(f) = &r.failure {
        body.push_str(&format!("What went wrong: {f}\n"));
    }
    body.push_str(&format!(
        "Cleaned up: {}.\n",
        if r.cleaned_up.is_empty() { "nothing was left to delete".to_owned() } else { r.cleaned_up.join(", ") }
    ));
    let must = if r.passed {
        "Nothing: this database's recovery is proven as of this drill."
    } else {
        "Find out why before you need this recovery: the runbook's restore steps failed here."
    };
    body.push_str(&format!("What you must do: {must}\n"));
    let facts = json!({
        "message": if r.passed { "drill-passed" } else { "drill-failed" },
        "drill": r,
        "subject": subj,
        "text": body,
    });
    let attributes = BTreeMap::from([
        ("severity", Attribute::Text(severity.to_owned())),
        ("database", Attribute::List(vec![r.database.clone()])),
        ("kind", Attribute::Text("drill".to_owned())),
        ("message", Attribute::Text(if r.passed { "drill-passed" } else { "drill-failed" }.to_owned())),
    ]);
    let chat = chat(&subj, &body, &[must], &r.drill_id);
    Message { subject: subj, body, facts, attributes, chat }
}

/// Where an approver answers: the two signed links. Never the task token itself: whoever reads
/// the mail or the channel and may call `states:SendTaskSuccess` would approve with it, under any
/// name, without typing the database's, and with no `approval:` entry on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalLinks {
    pub approve: String,
    pub reject: String,
    pub expires: DateTime<Utc>,
}

/// The approval request: the incident message, plus what will happen and the data it may lose
/// (preflight's timeline entry), and the links on lines of their own.
pub fn approval_request(i: &Incident, db: Option<&Database>, links: &ApprovalLinks, now: DateTime<Utc>) -> Message {
    let mut m = incident(MessageKind::ApprovalRequested, i, db, now);
    let mut ask = String::new();
    if let Some(p) = i.timeline.iter().rev().find(|e| e.key == "step:preflight") {
        ask.push_str(&format!("What will happen: {}.\n", p.what));
        if let Some(d) = &p.details {
            ask.push_str(&format!("{d}\n"));
        }
    }
    ask.push_str(&format!(
        "\nApprove: {}\nReject: {}\n\nThe links open a page to confirm on; they expire at {}.\n",
        links.approve,
        links.reject,
        when(links.expires),
    ));
    let policy = db.map(Database::approval).unwrap_or_default();
    let terminal = format!("`lifeboat approve {id}` (or `lifeboat reject {id}`)", id = i.id);
    match policy.via {
        Via::AwsIdentity => ask.push_str(&format!(
            "{} takes decisions only from an AWS identity, not from these links: run {terminal}.\n",
            i.database
        )),
        Via::Both => ask.push_str(&format!("Or, as your AWS identity: {terminal}.\n")),
        Via::Link => {}
    }
    if policy.distinct_from_requester {
        ask.push_str("Two-person rule: whoever asked for this failover may not approve it.\n");
    }
    let at = m.body.rfind("\nIncident: ").unwrap_or(m.body.len());
    m.body.insert_str(at, &format!("\n{ask}"));
    m.facts["text"] = json!(m.body);
    m.facts["approve_url"] = json!(links.approve);
    m.facts["reject_url"] = json!(links.reject);
    m.facts["expires"] = json!(links.expires);
    m.chat["content"]["description"] = json!(m.body);
    m
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
    let names: Vec<String> = affected.iter().map(|d| d.name.clone()).collect();
    let closed = h.is_closed();
    let production = affected.iter().any(|d| d.tier == crate::config::Tier::Production);
    let severity = if production && !closed { Severity::P2 } else { Severity::P3 };
    let (headline, may) = if closed {
        ("resolved", "Protected databases that were possibly affected")
    } else {
        ("possible impact", "Protected databases that may be affected")
    };
    let subj = subject(format!(
        "[{severity}] RDS in {}: AWS Health reports {headline} ({})",
        h.event_region,
        names.join(", ")
    ));
    let mut body = format!(
        "AWS Health reports {} in {}: {}.\n",
        h.event_type_code,
        h.event_region,
        if closed { "resolved" } else { "possible impact on RDS" }
    );
    body.push_str(&format!("{may}: {}.\n", names.join(", ")));
    body.push_str(&format!("AWS says: {}\n", h.description()));
    let must = if closed {
        "Nothing, unless an incident is still open for these databases: close it once they are verified."
    } else {
        "Watch the databases' alarms. This notice alone changes nothing; a failover needs its trigger and an approval."
    };
    body.push_str(&format!(
        "What Lifeboat is doing: watching; this notice starts no recovery.\nWhat you must do: {must}\n"
    ));
    body.push_str(&format!(
        "\nHealth event: {} (status {}, last updated {})\n",
        h.event_arn,
        h.status_code,
        h.last_updated_time.as_deref().unwrap_or("-")
    ));
    let facts = json!({
        "message": if closed { "health-resolved" } else { "health" },
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
        ("severity", Attribute::Text(severity.as_str().to_owned())),
        ("database", Attribute::List(names)),
        ("kind", Attribute::Text("health".to_owned())),
        ("message", Attribute::Text(if closed { "health-resolved" } else { "health" }.to_owned())),
    ]);
    let chat = chat(&subj, &body, &[must], &h.event_arn);
    Message { subject: subj, body, facts, attributes, chat }
}

/// A database's recovery point crossed its RPO in a DR region, one way or the other.
pub fn rpo_change(a: &Assessment) -> Message {
    let severity = match (a.breached, a.tier) {
        (true, "production") => Severity::P2,
        _ => Severity::P3,
    };
    let headline = if a.breached { "RPO BREACHED" } else { "RPO met again" };
    let subj = subject(format!("[{severity}] {} in {}: {headline}", a.database, a.region));
    let target = human_std(Duration::from_secs(a.rpo_seconds));
    let age = |s: Option<i64>| s.map_or("none".to_owned(), |s| human(chrono::Duration::seconds(s)));
    let mut body = format!(
        "{} in {}: {} (RPO {target}).\nRecovering there now would lose: {}.\n",
        a.database,
        a.region,
        match (a.breached, a.recovery_point_age_seconds) {
            (true, None) => "there is no recovery point at all",
            (true, Some(_)) => "the newest recovery point is older than the RPO",
            (false, _) => "recovery points are within the RPO again",
        },
        a.recovery_point_age_seconds.map_or("everything: no recovery point".to_owned(), |s| format!(
            "up to {}",
            human(chrono::Duration::seconds(s))
        )),
    );
    let which = if a.region.starts_with(crate::rpo::VAULT_PREFIX) { "vault" } else { "DR" };
    body.push_str(&format!(
        "Newest {which} copy: {} old. Replica lag: {}.\n",
        age(a.copy_age_seconds),
        a.replica_lag_seconds.map_or("no replica measured".to_owned(), |s| human(chrono::Duration::seconds(s)))
    ));
    for s in &a.stuck_copies {
        body.push_str(&format!("Stuck copy: {s} has been in flight for over 6 hours.\n"));
    }
    let must = if a.breached {
        "Find why copies or replication stopped (the copier's report and alarms, the replica's status) before you need them."
    } else {
        "Nothing."
    };
    body.push_str(&format!("What Lifeboat is doing: measuring every run; it tells you again only when this changes.\nWhat you must do: {must}\n"));
    let facts = json!({
        "message": if a.breached { "rpo-breached" } else { "rpo-met" },
        "subject": subj,
        "text": body,
        "severity": severity.as_str(),
        "assessment": a,
    });
    let attributes = BTreeMap::from([
        ("severity", Attribute::Text(severity.as_str().to_owned())),
        ("database", Attribute::List(vec![a.database.clone()])),
        ("kind", Attribute::Text("rpo".to_owned())),
        ("message", Attribute::Text(if a.breached { "rpo-breached" } else { "rpo-met" }.to_owned())),
    ]);
    let chat = chat(&subj, &body, &[must], &a.state_key());
    Message { subject: subj, body, facts, attributes, chat }
}

/// A database stopped being ready to fail over, or is ready again: sent once per change.
pub fn readiness_change(database: &str, region: &str, checks: &[crate::readiness::Check]) -> Message {
    use crate::readiness::{ready, summary, Level};
    let is_ready = ready(checks);
    let severity = if is_ready { Severity::P3 } else { Severity::P2 };
    let headline = if is_ready { "ready to fail over again" } else { "NOT ready to fail over" };
    let subj = subject(format!("[{severity}] {database}: {headline}"));
    let mut body = format!("{database}, checked from {region}: {}.\n", summary(checks));
    for c in checks.iter().filter(|c| c.level != Level::Ok) {
        let level = if c.level == Level::Blocked { "BLOCKED" } else { "warning" };
        body.push_str(&format!("- {} ({level}): {}\n", c.check, c.reason));
    }
    let must = if is_ready { "Nothing." } else { "Mend what is BLOCKED: a failover now would fail there." };
    body.push_str(&format!(
        "What Lifeboat is doing: checking every 30 minutes; it tells you again only when this changes.\nWhat you must do: {must}\n"
    ));
    let message = if is_ready { "ready" } else { "not-ready" };
    let facts =
        json!({"message": message, "subject": subj, "text": body, "severity": severity.as_str(), "checks": checks});
    let attributes = BTreeMap::from([
        ("severity", Attribute::Text(severity.as_str().to_owned())),
        ("database", Attribute::List(vec![database.to_owned()])),
        ("kind", Attribute::Text("readiness".to_owned())),
        ("message", Attribute::Text(message.to_owned())),
    ]);
    let chat = chat(&subj, &body, &[must], &format!("ready#{database}"));
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
    let severity = if s.failed() > 0 { Severity::P2 } else { Severity::P3 };
    let databases: Vec<String> = {
        let mut d: Vec<String> = s.groups.iter().map(|g| g.database.clone()).collect();
        d.dedup();
        d
    };
    let subj = if s.failed() > 0 {
        format!(
            "[{severity}] Lifeboat pruner: {} deleted, {} FAILED ({})",
            s.deleted(),
            s.failed(),
            databases.join(", ")
        )
    } else {
        format!("[{severity}] Lifeboat pruner: {} snapshots deleted ({})", s.deleted(), databases.join(", "))
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
    let subj = subject(subj);
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
        ("severity", Attribute::Text(severity.as_str().to_owned())),
        ("database", Attribute::List(databases)),
        ("kind", Attribute::Text("retention".to_owned())),
        ("message", Attribute::Text("pruner-summary".to_owned())),
    ]);
    let chat = chat(&subj, &body, &["Nothing, unless a deletion FAILED: the next run retries it."], "lifeboat-pruner");
    Message { subject: subj, body, facts, attributes, chat }
}

pub mod evidence;
pub mod pages;

#[cfg(test)]
mod tests;
