//! Everything a person reads, rendered in one place so wording is reviewed in one place: a subject
//! under 100 characters that says severity, database and what happened; a plain-text body for a
//! phone; the same facts as JSON for machines; SNS message attributes subscribers filter on; and
//! the AWS Chatbot custom-notification shape for Slack / Teams. Pure.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::failover::Via;
use crate::config::Database;
use crate::decide::validate::{Against, CheckOutcome, CheckResult, DataReport, Loss};
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
/// SNS refuses a larger publish: messages "at most 256 KB in size (262,144 bytes, not 262,144
/// characters)", and "All parts of the message attribute, including name, type, and value, are
/// included in the message size restriction" (Publish, MessageAttributeValue: SNS API reference).
pub const SNS_MAX: usize = 262_144;
/// Kept free of `sns_structured` beside the attributes: the request's own framing.
const SNS_HEADROOM: usize = 4 * 1024;
/// A chat card's description at most: the whole card is one SNS message, of which it is most.
const CHAT_DESCRIPTION_MAX: usize = 64 * 1024;
const CHAT_CUT: &str = "\n[Cut here: too long for a chat card.]\n";
/// Failures, and deletions, listed by name per database and region in a pruner summary.
const LISTED_PER_GROUP: usize = 20;
/// Databases-and-regions a pruner summary shows in full; the rest as counts.
const SHOWN_GROUPS: usize = 10;
/// Databases named in the `database` attribute of a fleet-wide message (which subscribers filter
/// on): enough for any one team's, bounded for SNS's size limit.
const ATTRIBUTE_DATABASES: usize = 100;
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
    ///
    /// The last line of defence of that limit, whatever a message says: over
    /// `SNS_MAX` less the attributes, the text is cut on a char boundary (a quarter of the budget:
    /// it goes out three times, escaped) and says so and where the rest is (`facts.full_list`, when
    /// the message names it), and the facts keep only their plain values.
    pub fn sns_structured(&self) -> String {
        let budget = SNS_MAX.saturating_sub(self.attribute_bytes() + SNS_HEADROOM);
        let whole = structured(&self.body, &self.facts);
        if whole.len() <= budget {
            return whole;
        }
        let rest = self.facts["full_list"].as_str().unwrap_or("the record this message summarises");
        let note = format!(
            "\n[Cut here: this message was {} bytes, over SNS's 256 KB. The rest is in {rest}.]\n",
            whole.len()
        );
        let body = crate::text::fit(&self.body, budget / 4, &note);
        let mut facts: serde_json::Map<String, Value> = match &self.facts {
            Value::Object(m) => {
                m.iter().filter(|(_, v)| !v.is_array() && !v.is_object()).map(|(k, v)| (k.clone(), v.clone())).collect()
            }
            _ => serde_json::Map::new(),
        };
        facts.insert("text".into(), json!(body));
        facts.insert("cut".into(), json!(true));
        let cut = structured(&body, &Value::Object(facts));
        if cut.len() <= budget {
            return cut;
        }
        // Only a text of control characters (six bytes each, escaped) gets here: the note alone.
        structured(&note, &json!({ "message": self.facts["message"], "text": note, "cut": true }))
    }

    /// What the attributes count toward SNS's limit: names, types and values.
    pub fn attribute_bytes(&self) -> usize {
        self.attributes
            .iter()
            .map(|(k, v)| {
                k.len()
                    + match v {
                        Attribute::Text(t) => "String".len() + t.len(),
                        Attribute::List(l) => "String.Array".len() + serde_json::to_string(l).map_or(0, |j| j.len()),
                    }
            })
            .sum()
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

fn structured(body: &str, facts: &Value) -> String {
    let facts = facts.to_string();
    json!({ "default": body, "sqs": facts, "lambda": facts }).to_string()
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

/// `text` as one Markdown table cell: its pipes escaped, on one line.
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
        MessageKind::ApprovalRequested if i.kind == crate::incident::Kind::Failback => {
            "failback awaits your approval".to_owned()
        }
        MessageKind::ApprovalRequested => "failover awaits your approval".to_owned(),
        MessageKind::Progress => format!("update, {}", status_words(i.status)),
        MessageKind::DnsPending => "recovered, DNS pending (impact not over)".to_owned(),
        MessageKind::Resolved if i.kind == crate::incident::Kind::Failback => "failback done".to_owned(),
        MessageKind::Resolved => "resolved".to_owned(),
        MessageKind::Aborted => "recovery aborted".to_owned(),
        MessageKind::Failed => "recovery FAILED".to_owned(),
        MessageKind::DataChecksFailed => "data checks FAILED, cut-over halted".to_owned(),
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
        (MessageKind::DataChecksFailed, _) => {
            "Halted before the cut-over: the new primary is up, but DNS and the endpoint still name the old one, and \
             nothing more changes until a person decides."
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
        (MessageKind::DataChecksFailed, ..) => {
            "Look at what failed (below), then approve to cut over with the data as it is, or reject to stop the \
             failover here (how: below)."
        }
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
            let measured = i.data.as_ref().and_then(DataReport::measured_loss);
            let rpo_met = match measured {
                Some(l) => Some(l.rpo_met),
                None => loss.zip(rpo).map(|(l, r)| l.to_std().is_ok_and(|l| l <= r)),
            };
            body.push_str(&match (measured, loss, i.recovered_to, rpo, rpo_met) {
                (Some(l), ..) => format!("Data loss: {}.\n", loss_words(l)),
                (None, Some(l), Some(to), Some(r), Some(met)) => format!(
                    "Data loss: up to {} (the recovered database holds data until {}; RPO {}: {}).\n",
                    human(l),
                    when(to),
                    human_std(r),
                    if met { "met" } else { "MISSED" }
                ),
                (None, Some(l), ..) => format!("Data loss: up to {}.\n", human(l)),
                _ => "Data loss: not measured (no recovery point was reported).\n".to_owned(),
            });
            if let Some(r) = i.data.as_ref().filter(|_| measured.is_none()) {
                body.push_str(&match (&r.loss, &r.unmeasured) {
                    (Some(l), _) => format!("In the database: {}.\n", loss_words(l)),
                    (None, Some(why)) => format!("Data loss not measured in the database: {why}.\n"),
                    (None, None) => String::new(),
                });
            }
            if let Some(r) = &i.data {
                body.push_str(&format!("Data checks: {}.\n", r.summary().trim_start_matches("data checks ")));
                facts["data_loss_measured"] = json!(measured.is_some());
                facts["data"] = json!(r);
            }
            body.push_str(&format!("\nTimeline:\n{}", timeline_table(&i.timeline)));
            facts["duration_seconds"] = json!(duration.num_seconds());
            facts["rto_met"] = json!(rto_met);
            facts["dns_pending"] = json!(pending);
            facts["data_loss_seconds"] = json!(loss.map(|l| l.num_seconds()));
            facts["rpo_met"] = json!(rpo_met);
            let skip = i.timeline.len().saturating_sub(TIMELINE_ROWS);
            facts["timeline"] = json!(&i.timeline[skip..]);
        }
        MessageKind::DataChecksFailed => match &i.data {
            Some(r) => {
                body.push_str(&format!("\nData checks on the new primary ({}):\n{}", when(r.at), data_lines(r)));
                facts["data"] = json!(r);
            }
            None => body.push_str("\nData checks on the new primary: no report was recorded.\n"),
        },
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
    if let Some(d) = &r.data {
        body.push_str(&format!("Data checks in the restore ({}):\n{}", when(d.at), data_lines(d)));
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
    let m = incident(MessageKind::ApprovalRequested, i, db, now);
    let mut ask = String::new();
    if let Some(p) = i.timeline.iter().rev().find(|e| e.key == "step:preflight") {
        ask.push_str(&format!("What will happen: {}.\n", p.what));
        if let Some(d) = &p.details {
            ask.push_str(&format!("{d}\n"));
        }
    }
    ask.push('\n');
    ask.push_str(&how_to_decide(i, db, Some(links)));
    with_decision(m, &ask, Some(links))
}

/// The new primary's data checks failed, and the cut-over waits for a person: what failed, what
/// to do about each, the data loss measured, and how to decide (the signed links when the
/// decision waits on a task, and the terminal's commands).
pub fn data_checks_failed(
    i: &Incident,
    db: Option<&Database>,
    links: Option<&ApprovalLinks>,
    now: DateTime<Utc>,
) -> Message {
    let m = incident(MessageKind::DataChecksFailed, i, db, now);
    let mut ask = String::from(
        "Approve to cut over anyway, with the data as it is; reject to stop the failover here, before DNS and the \
         endpoint move.\n",
    );
    ask.push_str(&how_to_decide(i, db, links));
    ask.push_str(&format!(
        "The checks' report stays on the incident and in its evidence: `lifeboat timeline {}`.\n",
        i.id
    ));
    with_decision(m, &ask, links)
}

/// The links on lines of their own (when there are any), and the commands the database's approval
/// policy admits.
fn how_to_decide(i: &Incident, db: Option<&Database>, links: Option<&ApprovalLinks>) -> String {
    let mut ask = String::new();
    if let Some(links) = links {
        ask.push_str(&format!(
            "Approve: {}\nReject: {}\n\nThe links open a page to confirm on; they expire at {}.\n",
            links.approve,
            links.reject,
            when(links.expires),
        ));
    }
    let policy = db.map(Database::approval).unwrap_or_default();
    let terminal = format!("`lifeboat approve {id}` (or `lifeboat reject {id}`)", id = i.id);
    match (policy.via, links) {
        (Via::AwsIdentity, _) => ask.push_str(&format!(
            "{} takes decisions only from an AWS identity, not from these links: run {terminal}.\n",
            i.database
        )),
        (Via::Both, Some(_)) => ask.push_str(&format!("Or, as your AWS identity: {terminal}.\n")),
        (Via::Both, None) => ask.push_str(&format!("As your AWS identity: {terminal}.\n")),
        (Via::Link, Some(_)) => {}
        (Via::Link, None) => ask.push_str(&format!(
            "{} takes decisions only through an approval message's signed links: decide with those.\n",
            i.database
        )),
    }
    if policy.distinct_from_requester {
        ask.push_str("Two-person rule: whoever asked for this failover may not approve it.\n");
    }
    ask
}

/// `m` with `ask` before its closing `Incident:` line, in the text, the facts and the chat card.
fn with_decision(mut m: Message, ask: &str, links: Option<&ApprovalLinks>) -> Message {
    let at = m.body.rfind("\nIncident: ").unwrap_or(m.body.len());
    m.body.insert_str(at, &format!("\n{ask}"));
    m.facts["text"] = json!(m.body);
    if let Some(links) = links {
        m.facts["approve_url"] = json!(links.approve);
        m.facts["reject_url"] = json!(links.reject);
        m.facts["expires"] = json!(links.expires);
    }
    m.chat["content"]["description"] = json!(m.body);
    m
}

/// A moment beside another, as short as reads unambiguously: `14:01:18`, or with its date when
/// the two are on different days.
fn clock(t: DateTime<Utc>, beside: DateTime<Utc>) -> String {
    if t.date_naive() == beside.date_naive() {
        t.format("%H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S").to_string()
    }
}

/// A measured loss in words: `42s of writes (measured: newest write 14:01:18, primary lost
/// 14:02:00); RPO 5m: met`, or against a recovery point how far the newest write is before it.
fn loss_words(l: &Loss) -> String {
    let gap = to_the_second(l.seconds);
    let met = if l.rpo_met { "met" } else { "MISSED" };
    match l.against {
        Against::FailedAt(t) | Against::MoveBegan(t) => format!(
            "{gap} of writes (measured: newest write {}, {} {}); RPO {}: {met}",
            clock(l.newest_write, t),
            l.against.moment(),
            clock(t, l.newest_write),
            human_std(l.rpo)
        ),
        Against::RecoveryPoint(t) => format!(
            "newest write {}, {gap} before the recovery point {} ({})",
            clock(l.newest_write, t),
            clock(t, l.newest_write),
            if l.rpo_met {
                format!("within the RPO of {}", human_std(l.rpo))
            } else {
                format!(
                    "MORE than the RPO of {}: the copy holds older data than its time says (a replica that had \
                     stopped replicating?) or the database was quiet",
                    human_std(l.rpo)
                )
            }
        ),
    }
}

/// A measured gap to the second (`1m 26s`, `42s`, `2h 05m 10s`): `human`'s minutes would round a
/// measured loss down.
fn to_the_second(secs: i64) -> String {
    let secs = secs.max(0);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m, s) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// One check as a line: `ok users exist: 1000 (>= 1000)`, `FAILED no orphans: 3 (= 0)`,
/// `ERROR order totals: timeout: ...`.
pub fn check_line(c: &CheckResult) -> String {
    let verdict = match c.outcome {
        CheckOutcome::Passed => "ok",
        CheckOutcome::Failed => "FAILED",
        CheckOutcome::Error(_) => "ERROR",
    };
    format!("{verdict} {}: {}", c.name, c.detail())
}

/// What to do about a check that did not pass.
fn check_what_to_do(c: &CheckResult) -> Option<&'static str> {
    match &c.outcome {
        CheckOutcome::Passed => None,
        CheckOutcome::Error(f) => Some(f.what_to_do()),
        CheckOutcome::Failed if c.value.as_deref().and_then(|v| v.trim().parse::<f64>().ok()).is_some() => Some(
            "the recovered data is not what this check expects: compare with the primary (if it answers) or the last \
             drill's figures before trusting it",
        ),
        CheckOutcome::Failed => Some(
            "the check's SQL must answer a number in its first column: count(*), or case when ... then 1 else 0 end \
             (NULL, no row or text fail the check)",
        ),
    }
}

/// A report's lines: each check with what to do about the ones that did not pass, or why nothing
/// could be checked, and the newest write.
pub fn data_lines(r: &DataReport) -> String {
    let mut out = String::new();
    if let Some(f) = &r.failure {
        out.push_str(&format!("- could not check: {f}\n  What to do: {}\n", f.what_to_do()));
    }
    for c in &r.checks {
        out.push_str(&format!("- {}\n", check_line(c)));
        if let Some(todo) = check_what_to_do(c) {
            out.push_str(&format!("  What to do: {todo}\n"));
        }
    }
    match (&r.loss, &r.newest_write, &r.unmeasured) {
        (Some(l), ..) => out.push_str(&format!("Data loss: {}.\n", loss_words(l))),
        (None, Some(t), _) => out.push_str(&format!("Newest write: {}.\n", when(*t))),
        (None, None, Some(why)) if r.failure.is_none() => out.push_str(&format!("Data loss not measured: {why}.\n")),
        _ => {}
    }
    out
}

/// A report in one line, for `lifeboat status` and the recoverability report: `data checks passed
/// (3 of 3); 42s of writes (measured: ...); RPO 5m: met`.
pub fn data_line(r: &DataReport) -> String {
    let mut line = r.summary();
    match (&r.loss, &r.unmeasured) {
        (Some(l), _) => line.push_str(&format!("; {}", loss_words(l))),
        (None, Some(why)) if r.failure.is_none() => line.push_str(&format!("; loss not measured: {why}")),
        _ => {}
    }
    line
}

/// What the move that left a database where it serves found inside its new primary, for the
/// report and `lifeboat status`: `failover orders-prod-20261207T1402Z-3f2a: data checks passed (2
/// of 2); 1m 36s of writes (measured: …); RPO 5m: met`. None when it ran no checks.
pub fn move_data_line(i: &crate::incident::Incident) -> Option<String> {
    let what = if i.kind == crate::incident::Kind::Failback { "failback" } else { "failover" };
    i.data.as_ref().map(|r| format!("{what} {}: {}", i.id, data_line(r)))
}

/// Where a moved database serves, for `lifeboat status` and the report: `orders-prod: active in
/// us-west-2 since 2026-12-07 14:02 UTC (incident i-1), protected: copies only (eu-west-1); the old
/// primary arn:… is left as it is`. `followed` is the database as `active::follow` left it.
pub fn active_line(a: &crate::active::Active, followed: &Database) -> String {
    // `follow` leaves a database that came home as written (no `moved_from`).
    if followed.moved_from.is_none() && a.home(followed) {
        return format!(
            "{}: home in {} again since {} (failback {}), protected by its configured failover; {} is the \
             other side again",
            a.database,
            followed.source.region,
            a.since.format("%Y-%m-%d %H:%M UTC"),
            a.incident,
            a.previous
        );
    }
    let protected = crate::active::protected(a, followed);
    let regions = crate::active::copy_regions(followed);
    let copies = match (&a.replica, regions.is_empty()) {
        (Some(r), _) => format!(" ({r})"),
        (None, false) => format!(" ({})", regions.join(", ")),
        (None, true) => String::new(),
    };
    format!(
        "{}: active in {} since {} (incident {}), protected: {}{copies}; the old primary {} is left as it is: \
         delete it when you no longer need it",
        a.database,
        followed.source.region,
        a.since.format("%Y-%m-%d %H:%M UTC"),
        a.incident,
        protected.as_str(),
        a.previous
    )
}

fn chat(title: &str, description: &str, next_steps: &[&str], thread: &str) -> Value {
    json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": crate::text::fit(description, CHAT_DESCRIPTION_MAX, CHAT_CUT),
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

/// One RPO run's crossings, told in one message: one as `rpo_change` says it; several grouped by
/// region and way (a DR region whose copies stopped is one line with a count), each naming its
/// first `NAMED_PER_GROUP` databases with what a recovery there would lose. Bounded at any fleet
/// size: `SHOWN_REASONS` groups.
pub fn rpo_changes(changes: &[&Assessment]) -> Message {
    if let [one] = changes {
        return rpo_change(one);
    }
    let breached = changes.iter().filter(|a| a.breached).count();
    let severity =
        if changes.iter().any(|a| a.breached && a.tier == "production") { Severity::P2 } else { Severity::P3 };
    // (not breached, region) -> its assessments: the breaches first, the most first.
    let mut by_region: BTreeMap<(bool, &str), Vec<&Assessment>> = BTreeMap::new();
    for a in changes {
        by_region.entry((!a.breached, a.region.as_str())).or_default().push(a);
    }
    let mut groups: Vec<((bool, &str), Vec<&Assessment>)> = by_region.into_iter().collect();
    groups.sort_by_key(|((met, _), list)| (*met, std::cmp::Reverse(list.len())));
    let regions = |breached: bool| {
        groups.iter().filter(|((met, _), _)| *met != breached).map(|((_, r), _)| *r).collect::<Vec<_>>()
    };
    let within = |breached: bool| match regions(breached).as_slice() {
        [one] => format!("in {one}"),
        many => format!("in {} regions", many.len()),
    };
    let subj = subject(match (breached, changes.len() - breached) {
        (0, m) => format!("[{severity}] RPO met again: {} {}", databases(m), within(false)),
        (n, 0) => format!("[{severity}] RPO BREACHED: {} {}", databases(n), within(true)),
        (n, m) => format!("[{severity}] RPO BREACHED: {} {}; {m} met again", databases(n), within(true)),
    });
    let mut body = format!(
        "Recovery points: {} past their RPO, {} within it again (a database counts once per DR region).\n",
        databases(breached),
        databases(changes.len() - breached)
    );
    let loses = |a: &Assessment| {
        a.recovery_point_age_seconds.map_or_else(
            || "no recovery point".to_owned(),
            |s| format!("up to {}", human(chrono::Duration::seconds(s))),
        )
    };
    let mut shown = Vec::new();
    for ((met, region), list) in groups.iter().take(SHOWN_REASONS) {
        let named: Vec<String> =
            list.iter().take(NAMED_PER_GROUP).map(|a| format!("{} ({})", a.database, loses(a))).collect();
        let how = if *met { "RPO met again" } else { "RPO BREACHED" };
        body.push_str(&format!(
            "\n{how} in {region}, {} (what a recovery there would lose): {}{}\n",
            databases(list.len()),
            named.join(", "),
            crate::text::and_more(named.len(), list.len())
        ));
        shown.push(json!({"region": region, "breached": !met, "databases": list.len(), "named": named}));
    }
    if groups.len() > SHOWN_REASONS {
        let rest: usize = groups[SHOWN_REASONS..].iter().map(|(_, l)| l.len()).sum();
        body.push_str(&format!("\n... and {} in {} more regions.\n", databases(rest), groups.len() - SHOWN_REASONS));
    }
    let must = if breached > 0 {
        "Find why copies or replication stopped (the copier's report and alarms, the replicas' status) before you need them."
    } else {
        "Nothing."
    };
    body.push_str(&format!(
        "\nWhat Lifeboat is doing: measuring every run; it tells you again only when this changes. Each database's \
         figures: lifeboat status, and the run's log.\nWhat you must do: {must}\n"
    ));
    let message = if breached > 0 { "rpo-breached" } else { "rpo-met" };
    let facts = json!({
        "message": message, "subject": subj, "text": body, "severity": severity.as_str(),
        "breached": breached, "met_again": changes.len() - breached, "groups": shown,
    });
    let mut listed: Vec<String> = Vec::new();
    for a in groups.iter().flat_map(|(_, l)| l) {
        if listed.len() < ATTRIBUTE_DATABASES && !listed.contains(&a.database) {
            listed.push(a.database.clone());
        }
    }
    let attributes = BTreeMap::from([
        ("severity", Attribute::Text(severity.as_str().to_owned())),
        ("database", Attribute::List(listed)),
        ("kind", Attribute::Text("rpo".to_owned())),
        ("message", Attribute::Text(message.to_owned())),
    ]);
    let chat = chat(&subj, &body, &[must], "rpo");
    Message { subject: subj, body, facts, attributes, chat }
}

/// A database stopped being ready to fail over, or is ready again: sent once per change.
/// A moved database protected again (`readiness::protected_again`): told once per way back.
pub fn protected_again(db: &Database, region: &str, checks: &[crate::readiness::Check]) -> Message {
    let target = db.failover.as_ref().and_then(|f| f.target.as_ref()).map_or_else(String::new, ToString::to_string);
    let home = db.moved_from.as_ref().map_or("its old region", |m| m.region.as_str());
    let lag = checks
        .iter()
        .find(|c| c.check == "replica-lag")
        .map_or_else(String::new, |c| format!(", replica lag {}", c.reason));
    let subj = subject(format!("[{}] {}: protected again", Severity::P3, db.name));
    let body = format!(
        "{name} serves in {here} since it moved from {home}; its way back {target} is available{lag} (checked from \
         {region}). A failover would take it there with the configured approval.\nWhat Lifeboat is doing: checking \
         the way back every 30 minutes.\nWhat you must do: nothing now; `lifeboat failback {name} --reason …` takes \
         it home when you choose.\n",
        name = db.name,
        here = db.source.region,
    );
    let facts = json!({"message": "protected-again", "subject": subj, "text": body, "severity": Severity::P3.as_str(), "way_back": target});
    let attributes = BTreeMap::from([
        ("severity", Attribute::Text(Severity::P3.as_str().to_owned())),
        ("database", Attribute::List(vec![db.name.clone()])),
        ("kind", Attribute::Text("readiness".to_owned())),
        ("message", Attribute::Text("protected-again".to_owned())),
    ]);
    let chat = chat(&subj, &body, &["Nothing now"], &format!("ready#{}", db.name));
    Message { subject: subj, body, facts, attributes, chat }
}

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

/// Databases a fleet-wide notice names per group; the rest it counts.
const NAMED_PER_GROUP: usize = 10;
/// Reasons a fleet-wide readiness notice gives; the databases of the rest it counts.
const SHOWN_REASONS: usize = 10;
/// A check's reason as a fleet-wide readiness notice quotes it at most (an unreadable database's
/// carries AWS's answer).
const REASON_MAX: usize = 500;

/// `names`, the first `NAMED_PER_GROUP` of them, and how many more.
fn some_of(names: &[&str]) -> String {
    let shown = names.len().min(NAMED_PER_GROUP);
    format!("{}{}", names[..shown].join(", "), crate::text::and_more(shown, names.len()))
}

fn databases(n: usize) -> String {
    if n == 1 {
        "1 database".to_owned()
    } else {
        format!("{n} databases")
    }
}

/// One readiness run's changes, told in one message: one database's as `readiness_change` says
/// it; several grouped by the first thing that blocks each, so one cause many databases share (a
/// subnet group, a full snapshot quota) is one line with a count, and the ones ready again in
/// one more. Bounded at any fleet size: `SHOWN_REASONS` reasons, `NAMED_PER_GROUP` names each.
pub fn readiness_changes(region: &str, changes: &[crate::readiness::Change]) -> Message {
    use crate::readiness::Level;
    if let [one] = changes {
        return readiness_change(&one.database, region, &one.checks);
    }
    let (again, stopped): (Vec<_>, Vec<_>) = changes.iter().partition(|c| c.ready());
    // (check, reason) of the first blocked check -> the databases it stopped, in config order.
    let mut index: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut groups: Vec<((&str, &str), Vec<&str>)> = Vec::new();
    for c in &stopped {
        let why = c.checks.iter().find(|x| x.level == Level::Blocked).map_or(("blocked", ""), |x| (x.check, &x.reason));
        let i = *index.entry(why).or_insert_with(|| {
            groups.push((why, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(&c.database);
    }
    groups.sort_by_key(|(_, names)| std::cmp::Reverse(names.len()));
    let severity = if stopped.is_empty() { Severity::P3 } else { Severity::P2 };
    let subj = subject(match (stopped.len(), again.len()) {
        (0, m) => format!("[{severity}] {} ready to fail over again", databases(m)),
        (n, 0) if groups.len() == 1 => {
            format!("[{severity}] {} NOT ready to fail over: {}", databases(n), groups[0].0 .0)
        }
        (n, 0) => format!("[{severity}] {} NOT ready to fail over", databases(n)),
        _ => {
            // One on a side is named: "orders-prod NOT ready to fail over, ledger ready again".
            let who = |list: &[&crate::readiness::Change]| match list {
                [one] => one.database.clone(),
                _ => databases(list.len()),
            };
            format!("[{severity}] {} NOT ready to fail over, {} ready again", who(&stopped), who(&again))
        }
    });
    let mut body = format!(
        "Readiness, checked from {region}: {} stopped being ready to fail over, {} ready again.\n",
        databases(stopped.len()),
        databases(again.len())
    );
    for ((check, reason), names) in groups.iter().take(SHOWN_REASONS) {
        let why = crate::text::fit(reason, REASON_MAX, " [cut]");
        body.push_str(&format!(
            "\n{} stopped being ready: {check}: {why}\n  {}\n",
            databases(names.len()),
            some_of(names)
        ));
    }
    if groups.len() > SHOWN_REASONS {
        let rest: usize = groups[SHOWN_REASONS..].iter().map(|(_, n)| n.len()).sum();
        body.push_str(&format!("\n... and {} for {} other reasons.\n", databases(rest), groups.len() - SHOWN_REASONS));
    }
    let again_names: Vec<&str> = again.iter().map(|c| c.database.as_str()).collect();
    if !again_names.is_empty() {
        body.push_str(&format!("\nReady to fail over again ({}): {}\n", again_names.len(), some_of(&again_names)));
    }
    let must = if stopped.is_empty() { "Nothing." } else { "Mend what is BLOCKED: a failover now would fail there." };
    body.push_str(&format!(
        "\nWhat Lifeboat is doing: checking every 30 minutes; it tells you again only when this changes. Each \
         database's checks: lifeboat status, and the run's log (a line per database).\nWhat you must do: {must}\n"
    ));
    let message = if stopped.is_empty() { "ready" } else { "not-ready" };
    let shown: Vec<Value> = groups
        .iter()
        .take(SHOWN_REASONS)
        .map(|((check, reason), names)| {
            json!({"check": check, "reason": crate::text::fit(reason, REASON_MAX, " [cut]"), "databases": names.len(),
                   "named": &names[..names.len().min(NAMED_PER_GROUP)]})
        })
        .collect();
    let facts = json!({
        "message": message, "subject": subj, "text": body, "severity": severity.as_str(), "region": region,
        "stopped_being_ready": stopped.len(), "ready_again": again.len(), "groups": shown,
        "ready_again_named": &again_names[..again_names.len().min(NAMED_PER_GROUP)],
    });
    // Filtered on by subscribers: the ones that stopped being ready first.
    let listed = stopped.iter().chain(&again).map(|c| c.database.clone()).take(ATTRIBUTE_DATABASES).collect();
    let attributes = BTreeMap::from([
        ("severity", Attribute::Text(severity.as_str().to_owned())),
        ("database", Attribute::List(listed)),
        ("kind", Attribute::Text("readiness".to_owned())),
        ("message", Attribute::Text(message.to_owned())),
    ]);
    let chat = chat(&subj, &body, &[must], &format!("readiness#{region}"));
    Message { subject: subj, body, facts, attributes, chat }
}

fn group_line(g: &GroupReport) -> String {
    format!(
        "\n{} in {} ({}){}: kept {}, deleted {}, skipped {}{}\n",
        g.database,
        g.region,
        scope_words(g.scope),
        if g.dry_run { ", dry run" } else { "" },
        g.kept.len(),
        g.deleted.len(),
        g.skipped.len(),
        if g.failed.is_empty() { String::new() } else { format!(", failed {}", g.failed.len()) },
    )
}

fn scope_words(scope: Scope) -> &'static str {
    match scope {
        Scope::Source => "source",
        Scope::Copies => "DR copies",
    }
}

/// The pruner's run summary. A few databases' runs read in full; a fleet's gives the totals per
/// region, the `SHOWN_GROUPS` databases-and-regions with most failures and deletions, and where the
/// full list is: the pruner's log (`log_group`, its CloudWatch Logs group when it runs in Lambda).
pub fn pruner_summary(s: &Summary, log_group: Option<&str>) -> Message {
    let severity = if s.failed() > 0 { Severity::P2 } else { Severity::P3 };
    let databases = s.databases();
    let named = databases.join(", ");
    let whose = if named.len() <= 40 { named } else { format!("{} databases", databases.len()) };
    let subj = if s.failed() > 0 {
        format!("[{severity}] Lifeboat pruner: {} deleted, {} FAILED ({whose})", s.deleted(), s.failed())
    } else {
        format!("[{severity}] Lifeboat pruner: {} snapshots deleted ({whose})", s.deleted())
    };
    let full_list = format!(
        "the pruner's log{}, its `pruner list` lines as of {}",
        log_group.map(|g| format!(" ({g})")).unwrap_or_default(),
        s.as_of.to_rfc3339()
    );
    let mut body = format!("Snapshot retention run as of {}.\n", s.as_of.to_rfc3339());
    if s.part > 1 || s.left > 0 {
        body.push_str(&format!("Part {} of the run", s.part));
        if s.left > 0 {
            body.push_str(&format!(
                ": its time ran out with {} deletions left, handed to part {} (same plan)",
                s.left,
                s.part + 1
            ));
        }
        body.push_str(".\n");
    }
    let shown = s.worst(SHOWN_GROUPS);
    let mut left_out = shown.len() < s.groups.len();
    if left_out {
        body.push_str(&format!(
            "\n{} databases in {} regions: {} deleted, {} failed.\n",
            databases.len(),
            s.by_region().iter().map(|c| c.region.as_str()).collect::<BTreeSet<_>>().len(),
            s.deleted(),
            s.failed()
        ));
        for c in s.by_region() {
            body.push_str(&format!(
                "  {} ({}): {} databases, kept {}, deleted {}{}{}\n",
                c.region,
                scope_words(c.scope),
                c.databases,
                c.kept,
                c.deleted,
                if c.would_delete > 0 { format!(", would delete {} (dry run)", c.would_delete) } else { String::new() },
                if c.failed > 0 { format!(", FAILED {}", c.failed) } else { String::new() },
            ));
        }
        body.push_str(&format!("\nThe {} with the most failures and deletions:\n", shown.len()));
    }
    for g in &shown {
        body.push_str(&group_line(g));
        // Failures first, then deletions, each capped: SNS messages stop at 256 KB, and every
        // item is in the run's log.
        for i in g.failed.iter().take(LISTED_PER_GROUP) {
            body.push_str(&format!("  FAILED to delete {}: {}\n", i.id, crate::text::fit(&i.why, 200, "...")));
        }
        if g.failed.len() > LISTED_PER_GROUP {
            body.push_str(&format!(
                "  ... and {} more failures (see the run's log)\n",
                g.failed.len() - LISTED_PER_GROUP
            ));
        }
        for i in g.deleted.iter().take(LISTED_PER_GROUP) {
            body.push_str(&format!("  deleted {} ({})\n", i.id, i.why));
        }
        if g.deleted.len() > LISTED_PER_GROUP {
            body.push_str(&format!("  ... and {} more (see the run's log)\n", g.deleted.len() - LISTED_PER_GROUP));
        }
        left_out |= g.failed.len() > LISTED_PER_GROUP || g.deleted.len() > LISTED_PER_GROUP;
    }
    if s.groups.len() > shown.len() {
        body.push_str(&format!(
            "\n... and {} more databases and regions, in the counts above.\n",
            s.groups.len() - shown.len()
        ));
    }
    if left_out {
        body.push_str(&format!("\nThe full list, every snapshot kept or deleted and why: {full_list}.\n"));
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
        "databases": databases.len(),
        "by_region": s.by_region(),
        "full_list": full_list,
    });
    // Filtered on by subscribers: the databases most worth hearing about first, when they're many.
    let listed = if databases.len() <= ATTRIBUTE_DATABASES {
        databases.iter().map(|d| (*d).to_owned()).collect()
    } else {
        let mut seen = BTreeSet::new();
        let mut ranked: Vec<&GroupReport> = s.groups.iter().collect();
        ranked.sort_by_key(|g| std::cmp::Reverse((g.failed.len(), g.deleted.len())));
        ranked.iter().map(|g| g.database.clone()).filter(|d| seen.insert(d.clone())).take(ATTRIBUTE_DATABASES).collect()
    };
    let attributes = BTreeMap::from([
        ("severity", Attribute::Text(severity.as_str().to_owned())),
        ("database", Attribute::List(listed)),
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
