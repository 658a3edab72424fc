//! Evidence an auditor can keep: one record per failover (resolved, aborted or failed) and per
//! drill, as JSON for machines and a Markdown page for people. Built from the closing message, so
//! the figures in the record are the figures people were told. Pure; `aws::evidence` stores it.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{cell, data_line, when, Message};
use crate::decide::validate::{CheckOutcome, DataReport};
use crate::drill::DrillResult;
use crate::incident::Incident;

/// The record's format, for readers that outlive this code.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct Evidence {
    /// The object key without its extension: `<key>.json` and `<key>.md` are written.
    pub key: String,
    pub json: Value,
    pub markdown: String,
}

/// The last readiness verdict when the record is written, and when it was made (the plan of a
/// failover carries the one its approval request showed).
pub type Readiness<'a> = Option<&'a (String, DateTime<Utc>)>;

/// Where an incident's record goes: one per incident, so a redelivered or retried closing
/// message finds it already written.
pub fn incident_key(i: &Incident) -> String {
    format!("failovers/{}/{}", i.database, i.id)
}

pub fn drill_key(r: &DrillResult) -> String {
    format!("drills/{}/{}", r.database, r.drill_id)
}

fn readiness_json(r: Readiness) -> Value {
    r.map_or(Value::Null, |(summary, at)| json!({"summary": summary, "checked_at": at}))
}

fn readiness_line(r: Readiness) -> String {
    r.map_or("never checked".to_owned(), |(summary, at)| format!("{summary} (checked {})", when(*at)))
}

/// A failover's record: the incident and its timeline, the plan it asked approval for, who
/// decided and when, the readiness before it, and the duration and data loss against the targets
/// exactly as the closing message `m` states them.
pub fn of_incident(i: &Incident, m: &Message, readiness: Readiness, now: DateTime<Utc>) -> Evidence {
    let plan = i.timeline.iter().rev().find(|e| e.key == "step:preflight");
    let decisions: Vec<_> = i.timeline.iter().filter(|e| e.key.starts_with("approval:")).collect();
    let requested = i.timeline.first();
    let json = json!({
        "format": FORMAT,
        "kind": "failover",
        "written_at": now,
        "incident_id": i.id,
        "database": i.database,
        "status": i.status.as_str(),
        "requested": requested.map(|e| json!({"at": e.at, "by": e.by, "what": e.what})),
        "plan": plan.map(|p| json!({"what": p.what, "details": p.details})),
        "decisions": decisions.iter().map(|e| json!({"at": e.at, "by": e.by, "what": e.what})).collect::<Vec<_>>(),
        "readiness_last_check": readiness_json(readiness),
        "data": i.data,
        "data_loss_measured": i.data.as_ref().and_then(DataReport::measured_loss),
        "message": m.facts,
        "timeline": i.timeline,
    });
    let mut md = format!("# Failover of {}: {}\n\n", i.database, i.status.as_str().replace('-', " "));
    md.push_str("| | |\n|---|---|\n");
    let mut row = |k: &str, v: String| md.push_str(&format!("| {k} | {} |\n", cell(&v)));
    row("Incident", i.id.clone());
    row("Database", format!("{} ({})", i.database, i.tier.as_str()));
    row("Started", when(i.started));
    row("Ended", i.ended.map_or("not ended".to_owned(), when));
    if let Some(e) = requested {
        row("Started by", format!("{}: {}", e.by, e.what));
    }
    row(
        "Decided",
        if decisions.is_empty() {
            "no decision recorded".to_owned()
        } else {
            decisions.iter().map(|e| format!("{} at {}", e.what, when(e.at))).collect::<Vec<_>>().join("; ")
        },
    );
    row("Last readiness check", readiness_line(readiness));
    for figure in ["Duration:", "Data loss:"] {
        if let Some(line) = m.body.lines().find(|l| l.starts_with(figure)) {
            row(figure.trim_end_matches(':'), line[figure.len()..].trim().trim_end_matches('.').to_owned());
        }
    }
    if let Some(d) = &i.data {
        row("Data checks", data_line(d));
    }
    if let Some(arn) = &i.execution_arn {
        row("Execution", arn.clone());
    }
    if let Some(d) = &i.data {
        md.push_str(&data_section(d));
    }
    if let Some(p) = plan {
        md.push_str(&format!("\n## Plan approved or refused\n\n{}\n", p.what));
        if let Some(d) = &p.details {
            md.push_str(&format!("\n```\n{d}\n```\n"));
        }
    }
    md.push_str(&format!("\n## What people were told at the end\n\n**{}**\n\n{}", m.subject, m.body));
    md.push_str(&format!("\n---\nWritten by Lifeboat at {}; the same record as JSON beside this page.\n", when(now)));
    Evidence { key: incident_key(i), json, markdown: md }
}

/// A drill's record: what was restored, from which copy, the measured RTO against the target,
/// each check, what was cleaned up, and the readiness before it.
pub fn of_drill(r: &DrillResult, m: &Message, readiness: Readiness, now: DateTime<Utc>) -> Evidence {
    let json = json!({
        "format": FORMAT,
        "kind": "drill",
        "written_at": now,
        "drill": r,
        "rto_met": r.rto_met(),
        "data_passed": r.data.as_ref().map(|d| d.passed),
        "recovery_point_gap": r.data.as_ref().and_then(|d| d.loss.as_ref()),
        "readiness_last_check": readiness_json(readiness),
        "message": m.facts,
    });
    let mut md = format!(
        "# Restore drill of {}: {}\n\n| | |\n|---|---|\n",
        r.database,
        if r.passed { "passed" } else { "FAILED" }
    );
    let mut row = |k: &str, v: String| md.push_str(&format!("| {k} | {} |\n", cell(&v)));
    row("Drill", r.drill_id.clone());
    row("Region", r.region.clone());
    row("Snapshot", r.snapshot.clone().unwrap_or_else(|| "none found".to_owned()));
    row("Started", when(r.started));
    row("Ended", when(r.ended));
    row(
        "Measured RTO",
        match (r.measured_rto_seconds, r.rto_met()) {
            (Some(s), Some(met)) => format!(
                "{} (RTO {}: {})",
                super::human(chrono::Duration::seconds(s)),
                super::human_std(std::time::Duration::from_secs(r.rto_seconds)),
                if met { "met" } else { "MISSED" }
            ),
            _ => "not measured: the restore never became available".to_owned(),
        },
    );
    row("Last readiness check", readiness_line(readiness));
    md.push_str("\n## Checks\n\n| Check | Result | Detail |\n|---|---|---|\n");
    for c in &r.checks {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            cell(&c.name),
            if c.passed { "ok" } else { "FAILED" },
            cell(&c.detail)
        ));
    }
    if let Some(d) = &r.data {
        md.push_str(&data_section(d));
    }
    if let Some(f) = &r.failure {
        md.push_str(&format!("\nFailure: {}\n", f));
    }
    md.push_str(&format!("\n## What people were told\n\n**{}**\n\n{}", m.subject, m.body));
    md.push_str(&format!("\n---\nWritten by Lifeboat at {}; the same record as JSON beside this page.\n", when(now)));
    Evidence { key: drill_key(r), json, markdown: md }
}

/// The data checks as a table of their own, the newest write and what was measured.
fn data_section(d: &DataReport) -> String {
    let mut md = format!("\n## Data checks ({})\n\n{}\n", when(d.at), cell(&data_line(d)));
    if !d.checks.is_empty() {
        md.push_str("\n| Check | Result | Answer | Expected |\n|---|---|---|---|\n");
        for c in &d.checks {
            let result = match &c.outcome {
                CheckOutcome::Passed => "ok".to_owned(),
                CheckOutcome::Failed => "FAILED".to_owned(),
                CheckOutcome::Error(f) => format!("ERROR {}", f.name()),
            };
            let answer = match &c.outcome {
                CheckOutcome::Error(f) => f.detail().to_owned(),
                _ => c.value.clone().unwrap_or_else(|| "NULL (or no row)".to_owned()),
            };
            md.push_str(&format!("| {} | {result} | {} | {} |\n", cell(&c.name), cell(&answer), cell(&c.expect)));
        }
    }
    if let Some(f) = &d.failure {
        md.push_str(&format!("\nCould not check: {f}. What to do: {}\n", f.what_to_do()));
    }
    if let Some(t) = d.newest_write {
        md.push_str(&format!("\nNewest write in the recovered database: {}.\n", t.format("%Y-%m-%d %H:%M:%S%.3f UTC")));
    }
    if let Some(l) = &d.loss {
        let what = match l.against {
            crate::decide::validate::Against::FailedAt(t) => {
                format!(
                    "Writes lost: {}s, to the primary's failure at {}",
                    l.seconds,
                    t.format("%Y-%m-%d %H:%M:%S UTC")
                )
            }
            crate::decide::validate::Against::MoveBegan(t) => {
                format!(
                    "Writes left behind: {}s, to the planned move's start at {}",
                    l.seconds,
                    t.format("%Y-%m-%d %H:%M:%S UTC")
                )
            }
            crate::decide::validate::Against::RecoveryPoint(t) => format!(
                "The newest write is {}s before the recovery point {}",
                l.seconds,
                t.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        };
        md.push_str(&format!("{what} (RPO {}s: {}).\n", l.rpo.as_secs(), if l.rpo_met { "met" } else { "MISSED" }));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drill::Check;
    use crate::incident::Entry;

    fn at(min: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T19:42:00Z").map(|t| t.with_timezone(&Utc)).unwrap_or_default()
            + chrono::Duration::minutes(min)
    }

    fn drill(passed: bool) -> DrillResult {
        DrillResult {
            drill_id: "drill-orders-prod-20261125T1942Z".into(),
            database: "orders-prod".into(),
            region: "us-west-2".into(),
            snapshot: Some("arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-orders-prod-1".into()),
            started: at(0),
            ended: at(14),
            measured_rto_seconds: passed.then_some(545),
            rto_seconds: 1800,
            passed,
            checks: vec![Check { name: "status".into(), passed, detail: "a | b".into() }],
            failure: (!passed).then(|| "checks failed: status".into()),
            cleaned_up: vec![],
            data: None,
        }
    }

    #[test]
    fn a_drill_record_carries_the_figures_its_message_shows() {
        let r = drill(true);
        let m = super::super::drill_result(&r);
        let e = of_drill(&r, &m, Some(&("ready: yes".to_owned(), at(-10))), at(15));
        assert_eq!(e.key, "drills/orders-prod/drill-orders-prod-20261125T1942Z");
        assert_eq!(e.json["drill"]["measured_rto_seconds"], 545);
        assert_eq!(e.json["rto_met"], true);
        assert_eq!(e.json["message"]["subject"], m.subject.as_str());
        assert!(e.markdown.contains("| Measured RTO | 9m (RTO 30m: met) |"), "{}", e.markdown);
        assert!(m.body.contains("Measured RTO: 9m"), "the message shows the same figure: {}", m.body);
        assert!(e.markdown.contains("| status | ok | a \\| b |"), "{}", e.markdown);
        assert!(e.markdown.contains("| Last readiness check | ready: yes (checked 2026-11-25 19:32 UTC) |"));
        let failed = of_drill(&drill(false), &m, None, at(15));
        assert!(failed.markdown.starts_with("# Restore drill of orders-prod: FAILED"));
        assert!(failed.markdown.contains("not measured"), "{}", failed.markdown);
        assert!(failed.markdown.contains("never checked"));
    }

    #[test]
    fn a_failover_record_has_the_plan_the_decision_and_the_closing_figures() {
        let config =
            crate::config::Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).expect("example");
        let db = config.database_named("orders-prod").expect("orders-prod").clone();
        let mut i =
            Incident::declare(&db, crate::incident::Kind::Region, at(0), "failover-trigger", "alarm is ALARM", "seed");
        i.apply(
            Entry::new(at(1), "failover-steps", "promote replica r", "step:preflight").with_details("Readiness: ok"),
            None,
        );
        i.apply(Entry::new(at(5), "alice@example.com", "approved by alice@example.com", "approval:abc"), None);
        for (to, t) in [
            (crate::incident::Status::AwaitingApproval, 1),
            (crate::incident::Status::Recovering, 5),
            (crate::incident::Status::Resolved, 20),
        ] {
            let e = i.transition(to, at(t), "failover", "moved").expect("allowed");
            i.apply(e, Some(to));
        }
        let m = super::super::incident(crate::incident::MessageKind::Resolved, &i, Some(&db), at(21));
        let e = of_incident(&i, &m, None, at(22));
        assert_eq!(e.key, format!("failovers/{}/{}", db.name, i.id));
        assert_eq!(e.json["plan"]["details"], "Readiness: ok");
        assert_eq!(e.json["decisions"][0]["by"], "alice@example.com");
        assert_eq!(e.json["message"]["duration_seconds"], m.facts["duration_seconds"]);
        let duration = m.body.lines().find(|l| l.starts_with("Duration:")).expect("a duration line");
        assert!(
            e.markdown
                .contains(&format!("| Duration | {} |", duration["Duration:".len()..].trim().trim_end_matches('.'))),
            "{}",
            e.markdown
        );
        assert!(e.markdown.contains("approved by alice@example.com at 2026-11-25 19:47 UTC"), "{}", e.markdown);
        assert!(e.markdown.contains("```\nReadiness: ok\n```"));
    }
}
