//! Data checks, judged: what the recovered database answered to a database's `validate` section
//! means. A check passes when its answer is a number that satisfies its `expect`; the newest
//! write (the later of `freshness` and the heartbeat) measured against the moment the primary
//! failed is the data a failover lost, and against a drill's recovery point how stale the
//! snapshot's data was. Pure: the database adapter asks, the validator function calls `judge`,
//! and `message` says what it means.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use crate::config::validate::{Check, Expect, Validate, HEARTBEAT_READ, HEARTBEAT_TABLE};

/// Why the validator could not get an answer: a named result with what to do, never a crash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum DbFailure {
    /// TCP connect refused or timed out, or the name didn't resolve.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Authentication failed (PostgreSQL 28P01 / 28000, MySQL 1045).
    #[error("credentials: {0}")]
    Credentials(String),
    /// The server refused TLS, or its certificate isn't trusted.
    #[error("tls: {0}")]
    Tls(String),
    /// A statement failed: syntax, a missing table or column, a permission.
    #[error("sql: {0}")]
    Sql(String),
    /// A statement ran past `validate.timeout`.
    #[error("timeout: {0}")]
    Timeout(String),
    /// Secrets Manager refused, has no such secret, or its value isn't `{username, password}`.
    #[error("secret-unreadable: {0}")]
    SecretUnreadable(String),
}

impl DbFailure {
    /// The result's name, as messages, the report and the JSON (`kind`) say it.
    pub fn name(&self) -> &'static str {
        match self {
            DbFailure::Unreachable(_) => "unreachable",
            DbFailure::Credentials(_) => "credentials",
            DbFailure::Tls(_) => "tls",
            DbFailure::Sql(_) => "sql",
            DbFailure::Timeout(_) => "timeout",
            DbFailure::SecretUnreadable(_) => "secret-unreadable",
        }
    }

    /// What the database or AWS said.
    pub fn detail(&self) -> &str {
        match self {
            DbFailure::Unreachable(d)
            | DbFailure::Credentials(d)
            | DbFailure::Tls(d)
            | DbFailure::Sql(d)
            | DbFailure::Timeout(d)
            | DbFailure::SecretUnreadable(d) => d,
        }
    }

    /// What a person does about it.
    pub fn what_to_do(&self) -> &'static str {
        match self {
            DbFailure::Unreachable(_) => {
                "the validator could not reach the database: check that the validator's subnets (stack parameters) \
                 route to it and that the database's security group admits the validator's security group on the \
                 database port (a restore gets the security groups of its restore settings)"
            }
            DbFailure::Credentials(_) => {
                "the validator's login was refused: check the secret's username/password and that the user exists in \
                 the restored database (a restore keeps the source's users)"
            }
            DbFailure::Tls(_) => {
                "the database refused TLS or its certificate is not trusted: the validator requires TLS and verifies \
                 the certificate against the bundle in LIFEBOAT_DB_CA_BUNDLE (RDS's global bundle); check the \
                 instance's certificate authority (ca-certificate-identifier) is in it"
            }
            DbFailure::Sql(_) => {
                "a statement failed: run it by hand as the validator's user on the restored database; a missing table \
                 or column means the restore lacks it, a permission error that the user needs SELECT on it"
            }
            DbFailure::Timeout(_) => {
                "a statement ran past validate.timeout: a just-restored RDS database reads its blocks from S3 on first \
                 touch, so scans are slow at first; make the check cheaper (an index, an estimate) or raise \
                 validate.timeout (at most 5m)"
            }
            DbFailure::SecretUnreadable(_) => {
                "the validator could not read the secret: check it exists in the recovery region (replicate it \
                 there), that the validator's role may secretsmanager:GetSecretValue it and kms:Decrypt its key, and \
                 that its value is JSON with username and password"
            }
        }
    }

    /// Worth asking again: the network or a slow first read may recover; the rest needs a person.
    pub fn retryable(&self) -> bool {
        matches!(self, DbFailure::Unreachable(_) | DbFailure::Timeout(_))
    }
}

/// What the database answered to one statement, unjudged: the first column of the first row as
/// text (None: NULL, or no row), or why the statement failed.
pub type Answer = Result<Option<String>, DbFailure>;

/// What the validator got from the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reached {
    Connected {
        checks: Vec<Answer>,
        freshness: Option<Answer>,
        heartbeat: Option<Answer>,
    },
    /// No answer at all: the secret, the connection, TLS or the login failed.
    Failed(DbFailure),
}

impl Reached {
    /// The adapter's answers, one per `v.statements()` in that order, put back where they belong.
    /// A statement the adapter did not answer is a failed one, never a pass.
    pub fn zip(v: &Validate, asked: Result<Vec<Answer>, DbFailure>) -> Reached {
        let answers = match asked {
            Ok(a) => a,
            Err(f) => return Reached::Failed(f),
        };
        let mut answers = answers.into_iter();
        let mut next = || answers.next().unwrap_or_else(|| Err(DbFailure::Sql("the validator got no answer".into())));
        let checks = v.checks.iter().map(|_| next()).collect();
        let freshness = v.freshness.as_ref().map(|_| next());
        let heartbeat = v.heartbeat.as_ref().map(|_| next());
        Reached::Connected { checks, freshness, heartbeat }
    }
}

/// What the newest write is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Against {
    /// When the primary was lost (a failover's incident start): the writes after the newest one
    /// the recovered database holds, up to then, are lost.
    FailedAt(DateTime<Utc>),
    /// The point in time the restore claims to hold (a drill's snapshot, a point-in-time restore's
    /// time): the newest write should be just before it.
    RecoveryPoint(DateTime<Utc>),
    /// When a planned move (a failback) began: nothing failed; the writes after the newest one
    /// the way back holds, up to then, did not come along.
    MoveBegan(DateTime<Utc>),
}

impl Against {
    pub fn time(&self) -> DateTime<Utc> {
        match self {
            Against::FailedAt(t) | Against::RecoveryPoint(t) | Against::MoveBegan(t) => *t,
        }
    }

    /// How people name the moment: `primary lost`, or `planned move began`.
    pub fn moment(&self) -> &'static str {
        match self {
            Against::FailedAt(_) => "primary lost",
            Against::RecoveryPoint(_) => "recovery point",
            Against::MoveBegan(_) => "planned move began",
        }
    }
}

/// One check, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    /// As configured: `>= 1000`.
    pub expect: String,
    /// The answer as the database gave it (None: NULL, no row, or an error).
    pub value: Option<String>,
    pub outcome: CheckOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckOutcome {
    Passed,
    /// Answered, but not a number that satisfies `expect`.
    Failed,
    /// The statement itself failed.
    Error(DbFailure),
}

/// Answers longer than this are cut in what people read.
const VALUE_SHOWN: usize = 80;

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.outcome == CheckOutcome::Passed
    }

    /// What it answered against what was expected: `1000 (>= 1000)`, `answered NULL (or no row),
    /// expected = 0`, `answered 'abc', not a number (expected = 0)`, `timeout: ...`.
    pub fn detail(&self) -> String {
        if let CheckOutcome::Error(f) = &self.outcome {
            return f.to_string();
        }
        match &self.value {
            None => format!("answered NULL (or no row), expected {}", self.expect),
            Some(v) if number(v).is_some() => format!("{} ({})", v.trim(), self.expect),
            Some(v) => format!(
                "answered '{}', not a number (expected {})",
                crate::text::fit(v, VALUE_SHOWN, "..."),
                self.expect
            ),
        }
    }
}

/// The data a recovery lost, or how stale a restore's data was, as measured in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loss {
    /// Never negative. Against `FailedAt`: the seconds of writes lost, from the newest write the
    /// recovered database holds to the moment the primary was lost. Against `RecoveryPoint`: how
    /// much older the newest write is than the point the restore claims to hold; near zero (the
    /// heartbeat's minute at most) is a healthy snapshot, a large gap means the snapshot was
    /// taken of stale data (a replica that had stopped replicating) or the database was quiet.
    pub seconds: i64,
    /// The newest write the recovered database holds.
    pub newest_write: DateTime<Utc>,
    pub against: Against,
    #[serde(rename = "rpo_seconds", with = "as_seconds")]
    pub rpo: Duration,
    /// `seconds <= rpo`: the promise kept (against a failure), or the snapshot's data within the
    /// RPO of its own time (against a recovery point).
    pub rpo_met: bool,
}

impl Loss {
    pub fn new(newest_write: DateTime<Utc>, against: Against, rpo: Duration) -> Loss {
        // Rounded up: a loss is never understated, and it reads as the whole seconds between the
        // two moments people see (`newest write 14:01:18, primary lost 14:02:00`: 42s).
        let gap = against.time() - newest_write;
        let seconds =
            if gap <= chrono::Duration::zero() { 0 } else { gap.num_seconds() + i64::from(gap.subsec_nanos() > 0) };
        Loss { seconds, newest_write, against, rpo, rpo_met: seconds as u64 <= rpo.as_secs() }
    }
}

mod as_seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// What the data checks of one recovered database found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataReport {
    pub at: DateTime<Utc>,
    /// Connected, and every check passed. Freshness and the heartbeat never fail it: they measure.
    pub passed: bool,
    /// Why nothing could be asked at all (the secret, the connection, TLS, the login).
    #[serde(default)]
    pub failure: Option<DbFailure>,
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// The later of what `freshness` and the heartbeat answered.
    #[serde(default)]
    pub newest_write: Option<DateTime<Utc>>,
    #[serde(default)]
    pub loss: Option<Loss>,
    /// Why `loss` is not measured, when it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmeasured: Option<String>,
}

impl DataReport {
    /// The checks that did not pass (failed or in error), in the configured order.
    pub fn not_passed(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed())
    }

    /// The loss measured against the primary's failure (or a planned move's start), when it was.
    pub fn measured_loss(&self) -> Option<&Loss> {
        self.loss.as_ref().filter(|l| matches!(l.against, Against::FailedAt(_) | Against::MoveBegan(_)))
    }

    /// One line for a timeline entry or a log: `data checks passed (3 of 3)`, `data checks
    /// failed (no orphans: 3 (= 0))`, `data checks failed (could not check: credentials: ...)`.
    pub fn summary(&self) -> String {
        if let Some(f) = &self.failure {
            return format!("data checks failed (could not check: {f})");
        }
        let verdict = if self.passed { "passed" } else { "failed" };
        let bad: Vec<String> = self.not_passed().map(|c| format!("{}: {}", c.name, c.detail())).collect();
        if bad.is_empty() {
            let total = self.checks.len();
            format!("data checks {verdict} ({total} of {total})")
        } else {
            format!("data checks {verdict} ({})", bad.join("; "))
        }
    }
}

fn number(text: &str) -> Option<f64> {
    text.trim().parse::<f64>().ok().filter(|n| n.is_finite())
}

fn judge_check(c: &Check, answer: Answer) -> CheckResult {
    let (value, outcome) = match answer {
        Err(f) => (None, CheckOutcome::Error(f)),
        Ok(None) => (None, CheckOutcome::Failed),
        Ok(Some(text)) => {
            let ok = number(&text).is_some_and(|n| c.expect.holds(n));
            (Some(text), if ok { CheckOutcome::Passed } else { CheckOutcome::Failed })
        }
    };
    CheckResult { name: c.name.clone(), expect: c.expect.to_string(), value, outcome }
}

/// A timestamp answer read, or why it can't be.
fn read_time(what: &str, answer: Answer) -> Result<DateTime<Utc>, String> {
    match answer {
        Err(f) => Err(format!("{what} failed: {f}")),
        Ok(None) => Err(format!("{what} answered NULL (or no row)")),
        Ok(Some(text)) => parse_timestamp(&text).ok_or_else(|| {
            format!("{what} answered '{}', not a timestamp", crate::text::fit(&text, VALUE_SHOWN, "..."))
        }),
    }
}

/// What `reached` means for `v`: each check judged, the newest write read, and the loss measured
/// against `against` and the database's `rpo`.
pub fn judge(v: &Validate, reached: Reached, against: Option<Against>, rpo: Duration, at: DateTime<Utc>) -> DataReport {
    let (checks, freshness, heartbeat) = match reached {
        Reached::Failed(f) => {
            return DataReport {
                at,
                passed: false,
                failure: Some(f),
                checks: Vec::new(),
                newest_write: None,
                loss: None,
                unmeasured: Some("the validator could not connect".into()),
            }
        }
        Reached::Connected { checks, freshness, heartbeat } => (checks, freshness, heartbeat),
    };
    let mut answers = checks.into_iter();
    let checks: Vec<CheckResult> = v
        .checks
        .iter()
        .map(|c| judge_check(c, answers.next().unwrap_or_else(|| Err(DbFailure::Sql("no answer".into())))))
        .collect();
    let times: Vec<Result<DateTime<Utc>, String>> = [("freshness", freshness), ("the heartbeat", heartbeat)]
        .into_iter()
        .filter_map(|(what, a)| a.map(|a| read_time(what, a)))
        .collect();
    let newest_write = times.iter().filter_map(|t| t.as_ref().ok()).max().copied();
    let why_not: Vec<&str> = times.iter().filter_map(|t| t.as_ref().err()).map(String::as_str).collect();
    let (loss, unmeasured) = match (newest_write, against) {
        (Some(newest), Some(against)) => (Some(Loss::new(newest, against, rpo)), None),
        (Some(_), None) => (None, Some("nothing to measure against (no failure time or recovery point)".to_owned())),
        (None, _) if times.is_empty() => {
            (None, Some("validate has no freshness or heartbeat: nothing tells the newest write".to_owned()))
        }
        (None, _) => (None, Some(why_not.join("; "))),
    };
    DataReport {
        at,
        passed: checks.iter().all(CheckResult::passed),
        failure: None,
        checks,
        newest_write,
        loss,
        unmeasured,
    }
}

/// A timestamp as PostgreSQL (`2026-12-07 01:02:03.123+00`, `+05:30`), MySQL/MariaDB
/// (`2026-12-07 01:02:03.123456`: the validator's sessions run in UTC, so an offset-less time is
/// UTC) or RFC 3339 write it; a date alone is its midnight. None for anything else (`infinity`,
/// MySQL's zero date, BC dates).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|n| Utc.from_utc_datetime(&n));
    }
    // The date holds `-`s; an offset's sign comes after the time.
    let (naive, offset) = match t.get(10..).and_then(|time| time.rfind(['+', '-']).map(|i| i + 10)) {
        Some(i) => (&t[..i], offset_seconds(&t[i..])?),
        None => (t.strip_suffix('Z').unwrap_or(t), 0),
    };
    let naive = NaiveDateTime::parse_from_str(naive.trim(), "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(naive.trim(), "%Y-%m-%dT%H:%M:%S%.f"))
        .ok()?;
    let zone = FixedOffset::east_opt(offset)?;
    zone.from_local_datetime(&naive).single().map(|d| d.with_timezone(&Utc))
}

/// `+00`, `-07`, `+05:30`, `+0530`, `+00:53:28` (PostgreSQL's historical zones) in seconds east.
fn offset_seconds(text: &str) -> Option<i32> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = text[1..].chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !matches!(digits.len(), 2 | 4 | 6) {
        return None;
    }
    let part = |i: usize| digits.get(i..i + 2).map_or(Some(0), |p| p.parse::<i32>().ok());
    let (h, m, s) = (part(0)?, part(2)?, part(4)?);
    (h < 24 && m < 60 && s < 60).then_some(sign * (h * 3600 + m * 60 + s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use proptest::prelude::*;

    fn validate(extra: &str) -> Validate {
        let yaml = format!(
            "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:123456789012:db:orders\n    tier: \
             production\n    rpo: 5m\n    rto: 30m\n    validate:\n      connect: {{ secret: \
             \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-v\", database: orders }}\n      checks:\n        \
             - {{ name: users exist, sql: \"select count(*) from users\", expect: \">= 1000\" }}\n        - {{ name: \
             no orphans, sql: \"select count(*) from orphans\", expect: \"= 0\" }}\n{extra}"
        );
        Config::from_yaml(&yaml).unwrap().databases[0].validate.clone().unwrap()
    }

    fn full() -> Validate {
        validate(
            "      freshness: \"select max(updated_at) from orders\"\n      heartbeat: { secret: \
             \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-h\" }\n",
        )
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn some(s: &str) -> Answer {
        Ok(Some(s.to_owned()))
    }

    const RPO: Duration = Duration::from_secs(300);

    #[test]
    fn a_check_passes_only_on_a_number_that_satisfies_it() {
        let v = validate("");
        let report = |a: Answer, b: Answer| {
            judge(
                &v,
                Reached::Connected { checks: vec![a, b], freshness: None, heartbeat: None },
                None,
                RPO,
                t("2026-12-07T14:05:00Z"),
            )
        };
        let ok = report(some("1000"), some(" 0 "));
        assert!(ok.passed && ok.failure.is_none(), "{ok:?}");
        assert_eq!(ok.checks[0].detail(), "1000 (>= 1000)");
        assert_eq!(ok.summary(), "data checks passed (2 of 2)");

        let r = report(some("999"), some("3"));
        assert!(!r.passed);
        assert_eq!(r.checks[1].detail(), "3 (= 0)");
        assert_eq!(r.checks[1].outcome, CheckOutcome::Failed);
        assert_eq!(r.summary(), "data checks failed (users exist: 999 (>= 1000); no orphans: 3 (= 0))");

        let r = report(Ok(None), some("abc"));
        assert!(!r.passed);
        assert_eq!(r.checks[0].detail(), "answered NULL (or no row), expected >= 1000");
        assert_eq!(r.checks[1].detail(), "answered 'abc', not a number (expected = 0)");
        assert_eq!(r.checks[1].value.as_deref(), Some("abc"));

        let slow = DbFailure::Timeout("canceling statement due to statement timeout".into());
        let r = report(Err(slow.clone()), some("NaN"));
        assert_eq!(r.checks[0].outcome, CheckOutcome::Error(slow));
        assert_eq!(r.checks[0].detail(), "timeout: canceling statement due to statement timeout");
        assert_eq!(r.checks[1].outcome, CheckOutcome::Failed, "NaN is not a number");
        assert!(!r.passed);
    }

    #[test]
    fn no_connection_fails_the_report_with_the_named_failure() {
        let refused = DbFailure::Credentials("password authentication failed for user \"lifeboat_validator\"".into());
        let r = judge(
            &full(),
            Reached::Failed(refused.clone()),
            Some(Against::FailedAt(t("2026-12-07T14:02:00Z"))),
            RPO,
            t("2026-12-07T14:05:00Z"),
        );
        assert!(!r.passed && r.checks.is_empty() && r.loss.is_none());
        assert_eq!(r.failure.as_ref(), Some(&refused));
        assert!(
            r.summary().starts_with("data checks failed (could not check: credentials: password authentication"),
            "{}",
            r.summary()
        );
        assert!(refused.what_to_do().contains("restore keeps the source's users"));
        assert!(!refused.retryable() && DbFailure::Unreachable("x".into()).retryable());
    }

    #[test]
    fn the_newest_write_is_the_later_of_freshness_and_heartbeat_and_measures_the_loss() {
        let v = full();
        let reached = |f: Answer, h: Answer| Reached::Connected {
            checks: vec![some("1000"), some("0")],
            freshness: Some(f),
            heartbeat: Some(h),
        };
        let failed = Against::FailedAt(t("2026-12-07T14:02:00Z"));
        let r = judge(
            &v,
            reached(some("2026-12-07 14:01:18.5+00"), some("2026-12-07 14:01:00.000001")),
            Some(failed),
            RPO,
            t("2026-12-07T14:05:00Z"),
        );
        assert!(r.passed);
        assert_eq!(r.newest_write, Some(t("2026-12-07T14:01:18.5Z")));
        let loss = r.loss.as_ref().unwrap();
        assert_eq!((loss.seconds, loss.rpo_met), (42, true), "41.5s rounds up: a loss is never understated");
        assert_eq!(r.measured_loss(), Some(loss));

        // Freshness unreadable: the report still passes, the heartbeat alone measures.
        let r = judge(
            &v,
            reached(Err(DbFailure::Sql("relation \"orders\" does not exist".into())), some("2026-12-07 13:50:00")),
            Some(failed),
            RPO,
            t("2026-12-07T14:05:00Z"),
        );
        assert!(r.passed);
        assert_eq!(r.loss.as_ref().map(|l| (l.seconds, l.rpo_met)), Some((720, false)));

        // Neither readable: passed, loss unmeasured, saying why.
        let r = judge(&v, reached(Ok(None), some("yesterday")), Some(failed), RPO, t("2026-12-07T14:05:00Z"));
        assert!(r.passed && r.loss.is_none() && r.newest_write.is_none());
        assert_eq!(
            r.unmeasured.as_deref(),
            Some("freshness answered NULL (or no row); the heartbeat answered 'yesterday', not a timestamp")
        );

        // Nothing to measure against, and nothing configured to measure with.
        let r = judge(
            &v,
            reached(some("2026-12-07 14:01:18+00"), some("2026-12-07 14:01:00")),
            None,
            RPO,
            t("2026-12-07T14:05:00Z"),
        );
        assert!(r.loss.is_none() && r.unmeasured.as_deref().is_some_and(|u| u.contains("nothing to measure against")));
        let bare = validate("");
        let r = judge(
            &bare,
            Reached::Connected { checks: vec![some("1000"), some("0")], freshness: None, heartbeat: None },
            Some(failed),
            RPO,
            t("2026-12-07T14:05:00Z"),
        );
        assert!(r.unmeasured.as_deref().is_some_and(|u| u.contains("no freshness or heartbeat")), "{r:?}");
    }

    #[test]
    fn against_a_recovery_point_the_loss_is_how_much_older_the_newest_write_is() {
        let v = full();
        let reached = Reached::Connected {
            checks: vec![some("1000"), some("0")],
            freshness: Some(some("2026-12-07 02:00:00+00")),
            heartbeat: Some(some("2026-12-07 02:59:30")),
        };
        let snapshot = Against::RecoveryPoint(t("2026-12-07T03:00:00Z"));
        let r = judge(&v, reached, Some(snapshot), RPO, t("2026-12-07T05:00:00Z"));
        let loss = r.loss.clone().unwrap();
        assert_eq!((loss.seconds, loss.newest_write, loss.rpo_met), (30, t("2026-12-07T02:59:30Z"), true));
        assert_eq!(r.measured_loss(), None, "a recovery point's gap is not a failover's loss");
        let json = serde_json::to_value(&loss).unwrap();
        assert_eq!(json["against"], serde_json::json!({"recovery_point": "2026-12-07T03:00:00Z"}));
        assert_eq!(json["rpo_seconds"], 300);
    }

    #[test]
    fn answers_are_zipped_back_in_the_order_of_the_statements() {
        let v = full();
        assert_eq!(v.statements().len(), 4);
        let asked = Ok(vec![some("1"), some("2"), some("2026-12-07 14:00:00"), some("2026-12-07 14:01:00")]);
        assert_eq!(
            Reached::zip(&v, asked),
            Reached::Connected {
                checks: vec![some("1"), some("2")],
                freshness: Some(some("2026-12-07 14:00:00")),
                heartbeat: Some(some("2026-12-07 14:01:00")),
            }
        );
        let Reached::Connected { heartbeat, .. } = Reached::zip(&v, Ok(vec![some("1")])) else { panic!("connected") };
        assert!(matches!(heartbeat, Some(Err(DbFailure::Sql(_)))), "a missing answer is no pass");
        let gone = DbFailure::Unreachable("connection refused".into());
        assert_eq!(Reached::zip(&v, Err(gone.clone())), Reached::Failed(gone));
    }

    #[test]
    fn timestamps_read_as_postgresql_and_mariadb_write_them() {
        let want = t("2026-12-07T01:02:03.123Z");
        for text in [
            "2026-12-07 01:02:03.123+00",
            "2026-12-07 01:02:03.123",
            "2026-12-07T01:02:03.123Z",
            "2026-12-07 06:32:03.123+05:30",
            "2026-12-06 18:02:03.123-07",
            "2026-12-07 06:32:03.123+0530",
            " 2026-12-07 01:02:03.123000 ",
        ] {
            assert_eq!(parse_timestamp(text), Some(want), "{text}");
        }
        assert_eq!(parse_timestamp("2026-12-07"), Some(t("2026-12-07T00:00:00Z")));
        for bad in ["infinity", "0000-00-00 00:00:00", "yesterday", "", "2026-12-07 01:02:03+99", "1700000000"] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_report_round_trips_through_json_with_named_failures() {
        let r = judge(
            &validate(""),
            Reached::Connected {
                checks: vec![Err(DbFailure::Sql("permission denied for table users".into())), some("0")],
                freshness: None,
                heartbeat: None,
            },
            None,
            RPO,
            t("2026-12-07T14:05:00Z"),
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["checks"][0]["outcome"],
            serde_json::json!({"error": {"kind": "sql", "detail": "permission denied for table users"}})
        );
        assert_eq!(json["checks"][1]["outcome"], "passed");
        assert_eq!(serde_json::from_value::<DataReport>(json).unwrap(), r);
    }

    proptest! {
        #[test]
        fn loss_is_never_negative_and_met_only_within_the_rpo(newest in 0i64..4_000_000_000, gap in -100_000i64..100_000, rpo in 0u64..100_000, failed in any::<bool>()) {
            let newest = DateTime::from_timestamp(newest, 0).unwrap();
            let then = newest + chrono::Duration::seconds(gap);
            let against = if failed { Against::FailedAt(then) } else { Against::RecoveryPoint(then) };
            let loss = Loss::new(newest, against, Duration::from_secs(rpo));
            prop_assert!(loss.seconds >= 0);
            prop_assert_eq!(loss.seconds, gap.max(0));
            prop_assert_eq!(loss.rpo_met, loss.seconds as u64 <= rpo);
        }

        #[test]
        fn a_timestamp_reads_back_in_either_engine_s_text(secs in 0i64..4_000_000_000, micros in 0u32..1_000_000, offset_min in -12 * 60i32..14 * 60) {
            let at = DateTime::from_timestamp(secs, micros * 1000).unwrap();
            let zone = FixedOffset::east_opt(offset_min * 60).unwrap();
            let pg = at.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S%.6f%:z").to_string();
            let mariadb = at.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
            prop_assert_eq!(parse_timestamp(&pg), Some(at), "{}", pg);
            prop_assert_eq!(parse_timestamp(&mariadb), Some(at), "{}", mariadb);
        }

        #[test]
        fn no_answer_panics_the_timestamp_reader(text in ".{0,40}") {
            let _ = parse_timestamp(&text);
        }
    }
}
