//! Restore drills: prove, on a schedule, that the newest DR copy restores and how long it takes.
//! A drill restores into a temporary, tagged, private instance (cluster plus instance for Aurora)
//! in the DR region, checks it, measures time-to-available as the RTO actually achieved, and always
//! deletes what it made. Pure: what is due, names, verdicts and the recoverability report; the
//! `dr-drill` function and `infra/drill.asl.json` act on them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::config::drill::{Drill, MACHINE_TIMEOUT, STEPS_BUDGET, VALIDATION_PREFIX};
use crate::config::Database;
use crate::decide::validate::{Against, DataReport};

/// Tag on everything a drill creates: its database's name. The drill deletes only what carries it.
pub const TAG_DRILL: &str = "lifeboat:drill";
/// Tag naming the drill that created a resource.
pub const TAG_DRILL_ID: &str = "lifeboat:drill-id";
/// A drill holds its database's lock at most this long: a crashed drill's lock is taken over.
pub const LOCK_FOR: Duration = Duration::from_secs(6 * 3600);

pub fn region(db: &Database, d: &Drill) -> Option<String> {
    d.restore.region.clone().or_else(|| db.copy_to.first().map(|t| t.region.clone()))
}

/// `drill-orders-prod-20261126T0300Z`: one drill per database and minute, so a redelivered
/// schedule starts nothing new (it is also the execution's name).
/// At most 80 characters (StartExecution's limit): a long name is shortened, its minute kept.
pub fn drill_id(database: &str, at: DateTime<Utc>) -> String {
    let clean: String = database.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    let id = format!("drill-{}-{}", clean.trim_matches('-'), at.format("%Y%m%dT%H%MZ"));
    crate::failover::fitted_name(&id, 15)
}

/// The temporary instance (or cluster): a valid RDS identifier, starting `lf-drill-`.
pub fn temporary_id(drill_id: &str) -> String {
    crate::failover::steps::new_database_id(drill_id)
}

/// Due when the database has a drill section and its last drill (passed or not) is `every` ago.
pub fn due(d: &Drill, last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|at| (now - at).to_std().is_ok_and(|since| since >= d.every))
}

/// A drill's state as `infra/drill.asl.json` carries it from step to step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillRun {
    pub drill_id: String,
    pub database: String,
    pub region: String,
    pub cluster: bool,
    /// The temporary instance, or cluster (its writer is `writer`).
    pub temporary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
    pub poll_seconds: u64,
    /// How long to wait for the restore before the drill fails (and is cleaned up).
    pub timeout_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_lambda: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// What the restore creates and with which settings, once prepare chose the DR copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<crate::restore::RestoreSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub available: bool,
    /// Always present (null until known): the validation task's Payload names them.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub port: Option<i32>,
    /// Another drill of the database holds its lock: this one does nothing.
    #[serde(default)]
    pub skipped: bool,
    /// There is a validation Lambda to invoke (the state machine's Choice reads a boolean).
    #[serde(default)]
    pub validate: bool,
    /// The database has a `validate` section: the built-in data checks run on the restore
    /// (beside the validation Lambda, when there is one too). A Choice reads it.
    #[serde(default)]
    pub data_checks: bool,
    /// The point in time the restored copy holds (its snapshot's), which the restore's newest
    /// write is measured against. Always present (null until prepare knows it): the data checks'
    /// Payload names it.
    #[serde(default)]
    pub recovery_point: Option<DateTime<Utc>>,
    /// What the data checks found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataReport>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub cleaned_up: Vec<String>,
    /// Leftovers of earlier, crashed drills deleted first.
    #[serde(default)]
    pub leftovers: Vec<String>,
    /// What a Catch caught (`{Error, Cause}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<serde_json::Value>,
    /// What a Catch caught from the cleanup (the temporary resources may be left).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<serde_json::Value>,
    /// The validation Lambda's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<DrillResult>,
}

impl DrillRun {
    pub fn new(db: &Database, d: &Drill, region: &str, at: DateTime<Utc>, poll_seconds: u64) -> DrillRun {
        let drill_id = drill_id(&db.name, at);
        let temporary = temporary_id(&drill_id);
        DrillRun {
            writer: db.is_cluster().then(|| crate::restore::writer_id(&temporary)),
            drill_id,
            database: db.name.clone(),
            region: region.to_owned(),
            cluster: db.is_cluster(),
            temporary,
            poll_seconds: poll_seconds.max(1),
            // What a failover would wait for: a restore that slow has failed the drill anyway,
            // and must be cleaned up.
            timeout_seconds: crate::failover::steps::recovery_wait(db.rto).as_secs(),
            restore: None,
            validate: d.validation_lambda.is_some(),
            data_checks: db.validate.is_some(),
            recovery_point: None,
            data: None,
            validation_lambda: d.validation_lambda.clone(),
            skipped: false,
            snapshot: None,
            started: None,
            available_at: None,
            available: false,
            endpoint: None,
            port: None,
            checks: Vec::new(),
            cleaned_up: Vec::new(),
            leftovers: Vec::new(),
            error: None,
            cleanup_error: None,
            validation: None,
            result: None,
        }
    }

    /// Restore start to available.
    pub fn measured_rto_seconds(&self) -> Option<i64> {
        Some((self.available_at? - self.started?).num_seconds())
    }

    /// What the data checks measure the restore's newest write against: its recovery point.
    pub fn against(&self) -> Option<Against> {
        self.recovery_point.map(Against::RecoveryPoint)
    }
}

/// What invoked `dr-drill`.
#[derive(Debug, Clone, PartialEq)]
pub enum DrillRequest {
    /// A step of `infra/drill.asl.json`.
    Step { action: Action, run: Box<DrillRun> },
    /// `{"report": true}`: the recoverability report.
    Report,
    /// `{"database": "..."}` (on demand, now) or the schedule (every database whose drill is due).
    Start { database: Option<String>, at: Option<DateTime<Utc>> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Prepare,
    Restore,
    Status,
    Check,
    Cleanup,
    Record,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepInput {
    action: Action,
    drill: DrillRun,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Manual {
    #[serde(default)]
    report: bool,
    database: Option<String>,
}

pub fn parse(payload: &serde_json::Value) -> Result<DrillRequest, crate::event::EventError> {
    use crate::event::{self, EventError, Trigger};
    if payload.get("action").is_some() {
        let s: StepInput = serde_json::from_value(payload.clone())
            .map_err(|e| EventError(format!(r#"expected {{"action": "prepare" | ..., "drill": {{...}}}}: {e}"#)))?;
        return Ok(DrillRequest::Step { action: s.action, run: Box::new(s.drill) });
    }
    if payload.get("detail-type").is_some() {
        return match event::classify(payload)? {
            Trigger::Sweep { at } => Ok(DrillRequest::Start { database: None, at }),
            _ => Err(EventError("dr-drill runs on its schedule, or on {\"database\"} / {\"report\": true}".into())),
        };
    }
    let m: Manual = serde_json::from_value(payload.clone())
        .map_err(|e| EventError(format!(r#"expected {{"database": "..."}} or {{"report": true}}: {e}"#)))?;
    match (m.report, m.database) {
        (true, None) => Ok(DrillRequest::Report),
        (false, Some(db)) if !db.trim().is_empty() => Ok(DrillRequest::Start { database: Some(db), at: None }),
        _ => Err(EventError(r#"give either {"database": "..."} or {"report": true}"#.into())),
    }
}

/// One check a drill made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

/// What a finished drill proved, kept per database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillResult {
    pub drill_id: String,
    pub database: String,
    pub region: String,
    pub snapshot: Option<String>,
    pub started: DateTime<Utc>,
    pub ended: DateTime<Utc>,
    /// Restore start to available: the RTO measured.
    pub measured_rto_seconds: Option<i64>,
    pub rto_seconds: u64,
    pub passed: bool,
    pub checks: Vec<Check>,
    /// What went wrong, when something did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What was deleted afterwards.
    pub cleaned_up: Vec<String>,
    /// What the data checks found in the restore, when the database has `validate`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<DataReport>,
}

impl DrillResult {
    pub fn rto_met(&self) -> Option<bool> {
        self.measured_rto_seconds.map(|m| m >= 0 && m as u64 <= self.rto_seconds)
    }
}

/// A drill passes when the instance came up, every check passed, nothing failed, and it was up
/// within the RTO. A drill that restored but too slowly fails: the RTO is the promise.
pub fn passed(measured_rto_seconds: Option<i64>, rto: Duration, checks: &[Check], failure: Option<&str>) -> bool {
    failure.is_none()
        && !checks.is_empty()
        && checks.iter().all(|c| c.passed)
        && measured_rto_seconds.is_some_and(|m| m >= 0 && m as u64 <= rto.as_secs())
}

/// Why the data checks fail the drill, if they do: a failed or unanswered check, no connection,
/// or checks that were configured and never ran.
pub fn data_failure(run: &DrillRun) -> Option<String> {
    match &run.data {
        Some(d) if !d.passed => Some(d.summary()),
        Some(_) => None,
        None if run.data_checks => Some("data checks did not run: the data is not proven".into()),
        None => None,
    }
}

/// What the drill proved, from its state: a caught error (a failed validation Lambda among them),
/// a failed check, failed data checks or a failed cleanup each fail it, the first of them its
/// failure.
pub fn result(run: &DrillRun, rto: Duration, now: DateTime<Utc>) -> DrillResult {
    let said = |e: &serde_json::Value| {
        let (name, message) = crate::error::caught(e);
        format!("{}: {message}", name.unwrap_or("error"))
    };
    let caught = run.error.as_ref().map(said);
    let cleanup = run
        .cleanup_error
        .as_ref()
        .map(|e| format!("cleanup failed, the next drill deletes what is left ({})", said(e)));
    let failed_checks: Vec<&str> = run.checks.iter().filter(|c| !c.passed).map(|c| c.name.as_str()).collect();
    let data = data_failure(run);
    let failure = caught
        .or_else(|| (!failed_checks.is_empty()).then(|| format!("checks failed: {}", failed_checks.join(", "))))
        .or_else(|| data.clone())
        .or(cleanup);
    let measured = run.measured_rto_seconds();
    DrillResult {
        drill_id: run.drill_id.clone(),
        database: run.database.clone(),
        region: run.region.clone(),
        snapshot: run.snapshot.clone(),
        started: run.started.unwrap_or(now),
        ended: now,
        measured_rto_seconds: measured,
        rto_seconds: rto.as_secs(),
        passed: passed(measured, rto, &run.checks, failure.as_deref()) && data.is_none(),
        checks: run.checks.clone(),
        failure,
        cleaned_up: run.leftovers.iter().chain(&run.cleaned_up).cloned().collect(),
        data: run.data.clone(),
    }
}

/// One line of the recoverability report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    pub database: String,
    pub rpo_seconds: u64,
    /// The worst of the DR regions' newest recovery points (None: no recovery point anywhere).
    pub recovery_point_age_seconds: Option<i64>,
    pub rpo_met: bool,
    pub rto_seconds: u64,
    pub last_drill: Option<DateTime<Utc>>,
    pub measured_rto_seconds: Option<i64>,
    pub last_drill_passed: Option<bool>,
    /// The last readiness verdict (`ready: yes / 2 warnings`), when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<String>,
    /// The last drill's evidence page, when the stack keeps evidence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill_evidence: Option<String>,
    /// The last drill's data checks in one line (`message::data_line`), when it ran them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_drill_data: Option<String>,
    /// What the move that left the database where it serves found inside the new primary, the
    /// data loss measured there (`failover orders-prod-…: data checks passed (2 of 2); 1m 36s of
    /// writes (measured: …); RPO 5m: met`), when it ran checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_move_data: Option<String>,
}

/// The runbooks' question, answered per database: can we recover, how much would we lose now, and
/// when did we last prove it and how fast was it.
pub fn report_text(rows: &[ReportRow]) -> String {
    let h = |s: i64| crate::text::human(chrono::Duration::seconds(s));
    let mut out = String::from(
        "| Database | RPO now / target | Last drill | Measured RTO / target | Result |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        let rpo = match r.recovery_point_age_seconds {
            Some(a) => {
                format!("{} / {} ({})", h(a), h(r.rpo_seconds as i64), if r.rpo_met { "met" } else { "BREACHED" })
            }
            None => format!("none / {} (BREACHED)", h(r.rpo_seconds as i64)),
        };
        let when = r.last_drill.map_or("never".to_owned(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string());
        let rto = match r.measured_rto_seconds {
            Some(m) => format!("{} / {}", h(m), h(r.rto_seconds as i64)),
            None => format!("- / {}", h(r.rto_seconds as i64)),
        };
        let result = match r.last_drill_passed {
            Some(true) => "passed",
            Some(false) => "FAILED",
            None => "not proven",
        };
        out.push_str(&format!("| {} | {rpo} | {when} | {rto} | {result} |\n", r.database));
    }
    for r in rows {
        if let Some(data) = &r.last_drill_data {
            out.push_str(&format!("{}: the last drill's {data}\n", r.database));
        }
        if let Some(data) = &r.last_move_data {
            out.push_str(&format!("{}: {data}\n", r.database));
        }
    }
    out
}

/// Databases a report's text shows in full; a larger fleet's gives counts and this many rows.
pub const REPORT_SHOWN: usize = 10;

/// What a report row asks of people, most first: a failed drill, a breached RPO, not ready to
/// fail over, recovery never proven.
fn attention(r: &ReportRow) -> (bool, bool, bool, bool) {
    (
        r.last_drill_passed == Some(false),
        !r.rpo_met,
        r.readiness.as_deref().is_some_and(|s| s.starts_with("ready: NO")),
        r.last_drill_passed.is_none(),
    )
}

/// The report as people read it: every database's row, verdict and evidence while they're up to
/// `REPORT_SHOWN`; beyond, the counts and the `REPORT_SHOWN` most in need of attention (in the
/// config's order), every row staying in the report's `databases` and `lifeboat status`.
pub fn report_summary(rows: &[ReportRow]) -> String {
    let shown: Vec<ReportRow> = if rows.len() <= REPORT_SHOWN {
        rows.to_vec()
    } else {
        let mut ranked: Vec<usize> = (0..rows.len()).collect();
        ranked.sort_by_key(|&i| std::cmp::Reverse(attention(&rows[i])));
        ranked.truncate(REPORT_SHOWN);
        ranked.sort_unstable();
        ranked.into_iter().map(|i| rows[i].clone()).collect()
    };
    let mut out = String::new();
    if rows.len() > shown.len() {
        let count = |f: &dyn Fn(&ReportRow) -> bool| rows.iter().filter(|r| f(r)).count();
        out.push_str(&format!(
            "{} databases: RPO met {}, BREACHED {}; last drill passed {}, FAILED {}, never proven {}; \
             ready {}, NOT ready {}, not checked {}.\nThe {} most in need of attention:\n",
            rows.len(),
            count(&|r| r.rpo_met),
            count(&|r| !r.rpo_met),
            count(&|r| r.last_drill_passed == Some(true)),
            count(&|r| r.last_drill_passed == Some(false)),
            count(&|r| r.last_drill_passed.is_none()),
            count(&|r| r.readiness.as_deref().is_some_and(|s| s.starts_with("ready: yes"))),
            count(&|r| r.readiness.as_deref().is_some_and(|s| s.starts_with("ready: NO"))),
            count(&|r| r.readiness.is_none()),
            shown.len(),
        ));
    }
    out.push_str(&report_text(&shown));
    for r in &shown {
        if let Some(ready) = &r.readiness {
            out.push_str(&format!("{}: {ready}\n", r.database));
        }
        if let Some(page) = &r.last_drill_evidence {
            out.push_str(&format!("{}: evidence of the last drill: {page}\n", r.database));
        }
    }
    if rows.len() > shown.len() {
        out.push_str(&format!(
            "... and {} more databases: every row is in this report's `databases`, and `lifeboat status` \
             prints them all.\n",
            rows.len() - shown.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::drill::invalid;
    use crate::config::failover::Restore;
    use crate::config::Config;
    use chrono::TimeZone;

    fn at(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap() + chrono::Duration::hours(h)
    }

    fn drill(every_days: u64) -> Drill {
        Drill {
            every: Duration::from_secs(every_days * 86_400),
            restore: Restore {
                region: None,
                instance_class: "db.t3.micro".into(),
                subnet_group: "dr".into(),
                security_groups: vec![],
                parameter_group: None,
                cluster_parameter_group: None,
                option_group: None,
                multi_az: None,
                from_vault: None,
            },
            validation_lambda: None,
        }
    }

    #[test]
    fn requests_parse_strictly() {
        use serde_json::json;
        assert_eq!(parse(&json!({"report": true})).unwrap(), DrillRequest::Report);
        assert_eq!(
            parse(&json!({"database": "orders"})).unwrap(),
            DrillRequest::Start { database: Some("orders".into()), at: None }
        );
        assert!(parse(&json!({"database": ""})).is_err());
        assert!(parse(&json!({"report": true, "database": "x"})).is_err());
        assert!(parse(&json!({"action": "explode", "drill": {}})).is_err());
        let schedule = serde_json::from_str(include_str!("../../../events/scheduled-sweep.json")).unwrap();
        assert!(matches!(parse(&schedule).unwrap(), DrillRequest::Start { database: None, at: Some(_) }));
    }

    #[test]
    fn a_drill_is_due_once_every_period() {
        let d = drill(30);
        assert!(due(&d, None, at(0)), "never drilled");
        assert!(!due(&d, Some(at(0)), at(24 * 29)));
        assert!(due(&d, Some(at(0)), at(24 * 30)));
    }

    #[test]
    fn names_are_stable_per_minute_and_valid_rds_identifiers() {
        let id = drill_id("orders prod", at(0));
        assert_eq!(id, "drill-orders-prod-20261126T0300Z");
        let t = temporary_id(&id);
        assert_eq!(t, "lf-drill-orders-prod-20261126t0300z");
        assert!(temporary_id(&drill_id(&"x".repeat(100), at(0))).len() <= 63);
        // The longest name the config allows (a tag value, 256): still an execution name, and
        // two long names sharing their start stay apart.
        let long = |c: &str| format!("{}{c}", "orders-eu-".repeat(25));
        let (a, b) = (drill_id(&long("a"), at(0)), drill_id(&long("b"), at(0)));
        assert!(a.len() <= 80 && b.len() <= 80, "{a} {b}");
        assert!(a.ends_with("-20261126T0300Z") && a != b, "{a} {b}");
    }

    #[test]
    fn a_drill_passes_only_when_up_checked_and_within_the_rto() {
        let ok = [Check { name: "status".into(), passed: true, detail: "available".into() }];
        let rto = Duration::from_secs(1800);
        assert!(passed(Some(600), rto, &ok, None));
        assert!(!passed(Some(3600), rto, &ok, None), "too slow: the RTO is the promise");
        assert!(!passed(None, rto, &ok, None), "never came up");
        assert!(!passed(Some(600), rto, &[], None), "nothing checked proves nothing");
        let bad = [Check { name: "engine".into(), passed: false, detail: "14.9 != 15.4".into() }];
        assert!(!passed(Some(600), rto, &bad, None));
        assert!(!passed(Some(600), rto, &ok, Some("validation Lambda failed")));
    }

    /// orders, with a drill, a validation Lambda and data checks (a check and the heartbeat).
    fn validated() -> Config {
        Config::from_yaml(
            "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:123456789012:db:orders\n    tier: \
             production\n    rpo: 5m\n    rto: 30m\n    copy_to: [{ region: us-west-2 }]\n    validate:\n      \
             connect: { secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-v\", database: orders }\n      \
             checks: [{ name: users exist, sql: \"select count(*) from users\", expect: \">= 1000\" }]\n      \
             heartbeat: { secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-h\" }\n    drill:\n      \
             restore: { instance_class: db.t3.micro, subnet_group: dr }\n      validation_lambda: \
             lifeboat-validate-orders\n",
        )
        .unwrap()
    }

    fn validated_run(data: Option<DataReport>) -> DrillRun {
        let config = validated();
        let db = &config.databases[0];
        let mut run = DrillRun::new(db, db.drill.as_ref().unwrap(), "us-west-2", at(0), 30);
        run.started = Some(at(0));
        run.available_at = Some(at(0) + chrono::Duration::minutes(9));
        run.recovery_point = Some(at(-2));
        run.checks = vec![Check { name: "status".into(), passed: true, detail: "available".into() }];
        run.data = data;
        run
    }

    /// What the restore answered: `answer` to the check, a heartbeat 30 s before the recovery point.
    fn report(answer: &str) -> DataReport {
        use crate::decide::validate::{judge, Reached};
        let v = validated().databases[0].validate.clone().unwrap();
        let reached = Reached::Connected {
            checks: vec![Ok(Some(answer.into()))],
            freshness: None,
            heartbeat: Some(Ok(Some("2026-11-26 00:59:30".into()))),
        };
        judge(&v, reached, validated_run(None).against(), Duration::from_secs(300), at(0))
    }

    #[test]
    fn a_drill_whose_data_checks_fail_or_never_ran_is_a_failed_drill() {
        let rto = Duration::from_secs(1800);
        let run = validated_run(None);
        assert!(run.data_checks && run.validate, "the built-in checks and the Lambda both run");
        assert_eq!(run.against(), Some(crate::decide::validate::Against::RecoveryPoint(at(-2))));
        let r = result(&run, rto, at(1));
        assert!(!r.passed, "configured checks that never ran prove nothing");
        assert_eq!(r.failure.as_deref(), Some("data checks did not run: the data is not proven"));

        let r = result(&validated_run(Some(report("1000"))), rto, at(1));
        assert!(r.passed && r.failure.is_none(), "{r:?}");
        assert_eq!(r.data.as_ref().map(|d| d.checks.len()), Some(1));
        assert_eq!(r.data.as_ref().and_then(|d| d.loss.as_ref()).map(|l| l.seconds), Some(30), "the copy's gap");

        let r = result(&validated_run(Some(report("12"))), rto, at(1));
        assert!(!r.passed);
        assert_eq!(r.failure.as_deref(), Some("data checks failed (users exist: 12 (>= 1000))"));

        // The record keeps the report through the state machine's JSON and the store's.
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["data"]["checks"][0]["value"], "12");
        assert_eq!(serde_json::from_value::<DrillResult>(json).unwrap(), r);

        // A database without `validate`: the drill is what it was.
        let mut plain = validated_run(None);
        plain.data_checks = false;
        let r = result(&plain, rto, at(1));
        assert!(r.passed && r.data.is_none(), "{r:?}");
        let old: DrillResult = serde_json::from_value(serde_json::json!({
            "drill_id": "d", "database": "orders", "region": "us-west-2", "snapshot": null,
            "started": at(0), "ended": at(1), "measured_rto_seconds": 60, "rto_seconds": 1800,
            "passed": true, "checks": [], "cleaned_up": []
        }))
        .unwrap();
        assert_eq!(old.data, None, "records written before data checks still read");
    }

    #[test]
    fn drills_need_a_dr_copy_in_a_named_region() {
        let config = Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap();
        let mut d = drill(30);
        let catalog = config.database_named("catalog-aurora").unwrap();
        assert_eq!(invalid(catalog, &d).unwrap().0, "drill.restore.region", "two DR regions");
        d.restore.region = Some("eu-west-1".into());
        assert_eq!(invalid(catalog, &d), None);
        d.restore.region = Some("ap-south-1".into());
        assert!(invalid(catalog, &d).unwrap().1.contains("not one of"));
        assert_eq!(invalid(catalog, &drill(0)).unwrap().0, "drill.restore.region");
        d.restore.region = Some("eu-west-1".into());
        d.validation_lambda = Some("check-orders".into());
        assert_eq!(invalid(catalog, &d).unwrap().0, "drill.validation_lambda");
        d.validation_lambda = Some("arn:aws:lambda:us-east-1:123456789012:function:lifeboat-validate-orders".into());
        assert_eq!(invalid(catalog, &d), None);
    }

    #[test]
    fn the_report_answers_when_we_last_proved_it_and_how_fast() {
        let rows = [
            ReportRow {
                database: "orders-prod".into(),
                rpo_seconds: 300,
                recovery_point_age_seconds: Some(120),
                rpo_met: true,
                rto_seconds: 1800,
                last_drill: Some(at(0)),
                measured_rto_seconds: Some(540),
                last_drill_passed: Some(true),
                readiness: None,
                last_drill_evidence: None,
                last_drill_data: Some("data checks passed (2 of 2); newest write 02:59:00, 1m before".into()),
                last_move_data: Some("failover orders-prod-20261126T0300Z-3f2a: data checks passed (2 of 2)".into()),
            },
            ReportRow {
                database: "ledger".into(),
                rpo_seconds: 3600,
                recovery_point_age_seconds: None,
                rpo_met: false,
                rto_seconds: 3600,
                last_drill: None,
                measured_rto_seconds: None,
                last_drill_passed: None,
                readiness: None,
                last_drill_evidence: None,
                last_drill_data: None,
                last_move_data: None,
            },
        ];
        let text = report_text(&rows);
        assert!(text.contains("| orders-prod | 2m / 5m (met) | 2026-11-26 03:00 UTC | 9m / 30m | passed |"), "{text}");
        assert!(text.contains("| ledger | none / 1h (BREACHED) | never | - / 1h | not proven |"), "{text}");
        assert!(text.contains("\norders-prod: the last drill's data checks passed (2 of 2); newest write"), "{text}");
        assert!(!text.contains("ledger: the last drill"), "{text}");
        assert!(text.contains("\norders-prod: failover orders-prod-20261126T0300Z-3f2a: data checks passed"), "{text}");
        assert!(!text.contains("ledger: failover"), "{text}");
    }

    #[test]
    fn a_fleets_report_gives_counts_and_the_ten_most_in_need_of_attention() {
        let row = |n: usize| ReportRow {
            database: format!("fleet-{n:05}"),
            rpo_seconds: 86_400,
            recovery_point_age_seconds: Some(3_600),
            rpo_met: n % 1_000 != 500,
            rto_seconds: 3_600,
            last_drill: n.is_multiple_of(10).then(|| at(0)),
            measured_rto_seconds: n.is_multiple_of(10).then_some(600),
            last_drill_passed: n.is_multiple_of(10).then_some(n != 7_770),
            readiness: Some(if n % 100 == 1 { "ready: NO — snapshot quota".into() } else { "ready: yes".into() }),
            last_drill_evidence: None,
            last_drill_data: None,
            last_move_data: None,
        };
        let small: Vec<ReportRow> = (0..3).map(row).collect();
        assert!(report_summary(&small).starts_with(&report_text(&small)), "a few databases read in full");
        let rows: Vec<ReportRow> = (0..10_000).map(row).collect();
        let text = report_summary(&rows);
        assert!(text.len() < 8 * 1024, "{} bytes", text.len());
        assert!(
            text.starts_with(
                "10000 databases: RPO met 9990, BREACHED 10; last drill passed 999, FAILED 1, never proven 9000; \
                 ready 9900, NOT ready 100, not checked 0.\nThe 10 most in need of attention:\n"
            ),
            "{text}"
        );
        let shown: Vec<&str> = text.lines().filter(|l| l.starts_with("| fleet-")).map(|l| &l[2..13]).collect();
        // The failed drill first in rank, then the ten breaches' first nine, in the config's order.
        let breaches = ["fleet-00500", "fleet-01500", "fleet-02500", "fleet-03500", "fleet-04500"];
        assert_eq!(shown.len(), 10, "{text}");
        assert!(shown.contains(&"fleet-07770") && breaches.iter().all(|b| shown.contains(b)), "{shown:?}");
        assert!(shown.windows(2).all(|w| w[0] < w[1]), "in the config's order: {shown:?}");
        let end = "... and 9990 more databases: every row is in this report's `databases`, and `lifeboat status` \
                   prints them all.\n";
        assert!(text.ends_with(end), "{text}");
    }
}
