//! A database's `validate` section: the checks Lifeboat runs inside a recovered database (a
//! drill's restore, a failover's new primary, a point-in-time restore, or on demand), read-only,
//! in one transaction with a statement timeout, and what tells the newest write it holds. Plain
//! data and its own validation; what an answer means is `decide::validate`'s.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The heartbeat's one-row table: `(id int primary key, at timestamp(6) / timestamptz)`, row
/// `id = 1`, written each minute on the primary by the heartbeat writer's own user.
pub const HEARTBEAT_TABLE: &str = "lifeboat_heartbeat";
/// What the validator reads for the heartbeat's recovery point.
pub const HEARTBEAT_READ: &str = "select at from lifeboat_heartbeat where id = 1";

/// Each statement's timeout at most: a check slower than this is a report query, not a check.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Each statement's timeout at least: a just-restored RDS instance reads its blocks from S3 on
/// first touch, so a first scan is slower than the same query on the primary.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// All statements of one validation, each at its timeout, plus connecting, must fit in one Lambda
/// invocation (15 minutes at most), with a minute left to answer.
pub const RUN_BUDGET: Duration = Duration::from_secs(14 * 60);

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validate {
    /// Who the validator logs in as, and to which database: a read-only user.
    pub connect: Connect,
    #[serde(default)]
    pub checks: Vec<Check>,
    /// SQL whose first column of the first row is a timestamp: the newest committed write the
    /// recovered database holds (`select max(updated_at) from orders`).
    #[serde(default)]
    pub freshness: Option<String>,
    /// A one-row table the heartbeat writer updates each minute on the primary: a recovery point
    /// every database has, `updated_at` or not.
    #[serde(default, deserialize_with = "de_heartbeat")]
    pub heartbeat: Option<Heartbeat>,
    /// Each statement's timeout, enforced by the server (`statement_timeout`,
    /// `max_statement_time` / `max_execution_time`) and by the client.
    #[serde(default = "default_timeout", deserialize_with = "crate::config::de_duration")]
    pub timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connect {
    /// A Secrets Manager secret ARN whose value is JSON with `username` and `password` (RDS's
    /// shape): the validator's own read-only user. This or `iam_user`.
    #[serde(default)]
    pub secret: Option<String>,
    /// RDS IAM database authentication instead of a password: the validator's role signs a
    /// 15-minute token for this database user (PostgreSQL: `GRANT rds_iam`; MySQL: `IDENTIFIED
    /// WITH AWSAuthenticationPlugin AS 'RDS'`), which must be the stack's ValidatorDbUser, the
    /// one user its role may connect as. Restores Lifeboat makes of the database get IAM
    /// authentication enabled. This or `secret`.
    #[serde(default)]
    pub iam_user: Option<String>,
    /// The database (schema, for MySQL) to connect to.
    pub database: String,
    /// Ask an Aurora cluster over the RDS Data API (HTTPS, no VPC, no CA bundle) instead of a
    /// direct connection: the cluster's HTTP endpoint must be enabled (a restore Lifeboat makes
    /// gets it enabled). The heartbeat writer still connects directly.
    #[serde(default)]
    pub data_api: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub name: String,
    /// Its first column of the first row is the answer, which must be a number.
    pub sql: String,
    pub expect: Expect,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The heartbeat writer's own user, allowed to write `lifeboat_heartbeat` and nothing else:
    /// never the validator's (which must stay read-only).
    pub secret: String,
}

/// A check's expectation: `>= 1000`, `= 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expect {
    pub op: Op,
    pub value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

impl Expect {
    /// Whether `answer` satisfies it.
    pub fn holds(&self, answer: f64) -> bool {
        match self.op {
            Op::Eq => answer == self.value,
            Op::Ne => answer != self.value,
            Op::Lt => answer < self.value,
            Op::Le => answer <= self.value,
            Op::Gt => answer > self.value,
            Op::Ge => answer >= self.value,
        }
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // f64's Display is the shortest text that reads back as the same number: `1000`, `0.5`.
        write!(f, "{} {}", self.op.as_str(), self.value)
    }
}

const GRAMMAR: &str = "an operator (=, !=, <, <=, >, >=) and a number, like \">= 1000\" or \"= 0\"";

impl FromStr for Expect {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        // Longest first: `<=` must not read as `<` followed by `=1000`.
        let ops = [(">=", Op::Ge), ("<=", Op::Le), ("!=", Op::Ne), ("=", Op::Eq), ("<", Op::Lt), (">", Op::Gt)];
        let Some((op, rest)) = ops.iter().find_map(|(text, op)| t.strip_prefix(text).map(|rest| (*op, rest))) else {
            return Err(format!("`{s}` is not {GRAMMAR}"));
        };
        let number = rest.trim();
        // `==` or `=>` would otherwise fail as a number with a less helpful message.
        if number.starts_with(['=', '<', '>', '!']) {
            return Err(format!("`{s}`: the operator is one of =, !=, <, <=, >, >="));
        }
        match number.parse::<f64>() {
            Ok(value) if value.is_finite() && !number.is_empty() => Ok(Expect { op, value }),
            _ => Err(format!("`{s}`: `{number}` is not a number; expected {GRAMMAR}")),
        }
    }
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Expect;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(GRAMMAR)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Expect, E> {
                v.parse().map_err(E::custom)
            }
            // YAML reads `expect: 0` as a number: say what to write instead.
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Expect, E> {
                Err(E::custom(format!("`{v}` has no operator: write \"= {v}\" (or >=, <=, !=, <, >)")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Expect, E> {
                Err(E::custom(format!("`{v}` has no operator: write \"= {v}\" (or >=, <=, !=, <, >)")))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Expect, E> {
                Err(E::custom(format!("`{v}` has no operator: write \"= {v}\" (or >=, <=, !=, <, >)")))
            }
        }
        d.deserialize_any(V)
    }
}

// By hand: the issue that asked for it wrote `heartbeat: true`, which needs a user of its own.
fn de_heartbeat<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Heartbeat>, D::Error> {
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Option<Heartbeat>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("{ secret: <ARN of the heartbeat writer's own user> }")
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Err(E::custom(
                "is { secret: <Secrets Manager ARN> }: the heartbeat writer logs in as its own user, allowed to write \
                 lifeboat_heartbeat only",
            ))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            Heartbeat::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(V)
}

impl Validate {
    /// The statements the validator runs, in order: every check's, then `freshness` (if any),
    /// then `HEARTBEAT_READ` (if a heartbeat). `decide::validate` zips the answers back in this order.
    pub fn statements(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self.checks.iter().map(|c| c.sql.as_str()).collect();
        out.extend(self.freshness.as_deref());
        if self.heartbeat.is_some() {
            out.push(HEARTBEAT_READ);
        }
        out
    }
}

/// The parts of a Secrets Manager secret ARN: `arn:aws:secretsmanager:<region>:<account>:secret:<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretArn<'a> {
    pub region: &'a str,
    pub account: &'a str,
    pub name: &'a str,
}

/// `arn` as a secret ARN, or why it is not one.
pub fn secret_arn(arn: &str) -> Result<SecretArn<'_>, String> {
    let shape = "arn:aws:secretsmanager:<region>:<account>:secret:<name>";
    let parts: Vec<&str> = arn.trim().splitn(7, ':').collect();
    let [prefix, partition, service, region, account, kind, name] = parts[..] else {
        return Err(format!("`{arn}` is not a Secrets Manager secret ARN ({shape})"));
    };
    if prefix != "arn" || service != "secretsmanager" || kind != "secret" {
        return Err(format!("`{arn}` is not a Secrets Manager secret ARN ({shape})"));
    }
    // The databases Lifeboat protects are in `aws` (see `unsupported_partition`), and a role
    // there can read no secret of another partition.
    if partition != "aws" {
        return Err(format!("`{arn}`: the secret must be in the aws partition, as the databases are"));
    }
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("`{arn}`: `{region}` is not a region"));
    }
    if !crate::arn::is_account_id(account) {
        return Err(format!("`{arn}`: account must be 12 digits"));
    }
    if name.is_empty() {
        return Err(format!("`{arn}` names no secret"));
    }
    Ok(SecretArn { region, account, name })
}

/// The prefix of the secrets the data validator's role may read (template.yaml, `secret:lifeboat-*`):
/// its role reads no other secret of the account.
pub const SECRET_PREFIX: &str = "lifeboat-";

/// A database user name as both engines take it unquoted and RDS's IAM resource ARN
/// (`dbuser:<resource id>/<user>`) names it: lower-case letters, digits and `_`, starting with a
/// letter, at most 32 characters (MySQL's limit; PostgreSQL's is 63). Lower case because
/// PostgreSQL folds an unquoted `create role Validator` to `validator`, and the token's DBUser
/// must be the role's name exactly.
pub fn iam_user(user: &str) -> Result<(), String> {
    let ok = user.len() <= 32
        && user.starts_with(|c: char| c.is_ascii_lowercase())
        && user.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{user}` is not a database user name (lower-case letters, digits and _, a letter first, 32 at most)"
        ))
    }
}

/// A secret the validator's role is allowed to read, or why not.
fn readable(arn: SecretArn<'_>) -> Result<SecretArn<'_>, String> {
    if arn.name.starts_with(SECRET_PREFIX) {
        Ok(arn)
    } else {
        Err(format!(
            "`{}`: the validator may read only secrets named {SECRET_PREFIX}* (its role's policy): name it \
             {SECRET_PREFIX}{}",
            arn.name, arn.name
        ))
    }
}

/// Why `v` can't work as written: the field under `validate.` and why; `None` when it can.
pub fn invalid(v: &Validate) -> Option<(String, String)> {
    let field = |f: &str| format!("validate.{f}");
    match (&v.connect.secret, &v.connect.iam_user) {
        (Some(secret), None) => {
            if let Err(why) = secret_arn(secret).and_then(readable) {
                return Some((field("connect.secret"), why));
            }
        }
        (None, Some(user)) => {
            if let Err(why) = iam_user(user) {
                return Some((field("connect.iam_user"), why));
            }
            if v.connect.data_api {
                return Some((
                    field("connect.data_api"),
                    "the RDS Data API logs in only with a Secrets Manager secret: give connect.secret, or connect \
                     directly with iam_user"
                        .into(),
                ));
            }
        }
        (Some(_), Some(_)) => {
            return Some((
                field("connect"),
                "gives both secret and iam_user: a login is a password (secret) or an IAM token (iam_user), one".into(),
            ))
        }
        (None, None) => {
            return Some((
                field("connect"),
                "says no login: give secret (a Secrets Manager secret with username and password) or iam_user \
                 (RDS IAM authentication)"
                    .into(),
            ))
        }
    }
    if v.connect.database.trim().is_empty() {
        return Some((field("connect.database"), "must name the database to connect to".into()));
    }
    if v.checks.is_empty() && v.freshness.is_none() && v.heartbeat.is_none() {
        return Some((
            "validate".into(),
            "has nothing to check: give checks, freshness or heartbeat (a login alone proves little)".into(),
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, c) in v.checks.iter().enumerate() {
        if c.name.trim().is_empty() {
            return Some((field(&format!("checks[{i}].name")), "must not be empty: messages name the check".into()));
        }
        if !names.insert(c.name.trim()) {
            return Some((field(&format!("checks[{i}].name")), format!("`{}` names another check too", c.name)));
        }
        if c.sql.trim().is_empty() {
            return Some((field(&format!("checks[{i}].sql")), "must not be empty".into()));
        }
    }
    if v.freshness.as_deref().is_some_and(|f| f.trim().is_empty()) {
        return Some((field("freshness"), "must not be empty: SQL answering the newest write's time".into()));
    }
    if let Some(h) = &v.heartbeat {
        if let Err(why) = secret_arn(&h.secret).and_then(readable) {
            return Some((field("heartbeat.secret"), why));
        }
        if v.connect.secret.as_deref().is_some_and(|s| s.trim() == h.secret.trim()) {
            return Some((
                field("heartbeat.secret"),
                "is connect.secret: the heartbeat writer needs its own user (allowed to write lifeboat_heartbeat \
                 only), so the validator's stays read-only"
                    .into(),
            ));
        }
    }
    if v.timeout < MIN_TIMEOUT || v.timeout > MAX_TIMEOUT {
        return Some((field("timeout"), "must be between 1s and 5m".into()));
    }
    // Connecting counts as one more wait of `timeout`.
    let waits = v.statements().len() as u32 + 1;
    if v.timeout * waits > RUN_BUDGET {
        return Some((
            field("timeout"),
            format!(
                "{} statements and the connection, each up to {}s, may take {}s: more than the {}s one validator \
                 invocation has (Lambda runs 15 minutes at most); lower the timeout or the number of checks",
                waits - 1,
                v.timeout.as_secs(),
                (v.timeout * waits).as_secs(),
                RUN_BUDGET.as_secs()
            ),
        ));
    }
    None
}

/// A config of one database, `orders` (an instance in us-east-1), with one check and
/// `validate.connect: { <connect>, database: orders }`: for tests of what follows from the login.
#[cfg(test)]
pub(crate) fn one_checked_as(connect: &str) -> crate::config::Config {
    let yaml = format!(
        "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:123456789012:db:orders\n    tier: production\n    \
         rpo: 5m\n    rto: 30m\n    validate:\n      connect: {{ {connect}, database: orders }}\n      checks:\n        - \
         {{ name: users, sql: \"select count(*) from users\", expect: \">= 1\" }}\n"
    );
    crate::config::Config::from_yaml(&yaml).expect("the test's config")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn expectations_parse_each_operator_and_refuse_anything_else() {
        for (text, op, value) in [
            (">= 1000", Op::Ge, 1000.0),
            ("= 0", Op::Eq, 0.0),
            ("!= 3", Op::Ne, 3.0),
            ("<5.5", Op::Lt, 5.5),
            ("  <=  -2 ", Op::Le, -2.0),
            ("> 1e3", Op::Gt, 1000.0),
        ] {
            assert_eq!(text.parse::<Expect>(), Ok(Expect { op, value }), "{text}");
        }
        for bad in ["1000", "== 0", "=> 5", "<> 1", "~ 1", ">= ", ">= many", ">= NaN", "= inf", "", ">= 1 000"] {
            assert!(bad.parse::<Expect>().is_err(), "{bad}");
        }
        assert_eq!(">= 1000".parse::<Expect>().unwrap().to_string(), ">= 1000");
    }

    #[test]
    fn an_expectation_holds_as_its_operator_says() {
        let e = |s: &str| s.parse::<Expect>().unwrap();
        assert!(e(">= 1000").holds(1000.0) && !e(">= 1000").holds(999.0));
        assert!(e("= 0").holds(0.0) && !e("= 0").holds(3.0));
        assert!(e("!= 0").holds(3.0) && !e("!= 0").holds(0.0));
        assert!(e("< 5").holds(4.9) && !e("< 5").holds(5.0));
        assert!(e("<= 5").holds(5.0) && !e("<= 5").holds(5.1));
        assert!(e("> 5").holds(5.1) && !e("> 5").holds(5.0));
    }

    #[test]
    fn secret_arns_are_read_and_anything_else_is_named() {
        let ok = secret_arn("arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-validator-AbCdEf").unwrap();
        assert_eq!((ok.region, ok.account, ok.name), ("us-west-2", "123456789012", "lifeboat-validator-AbCdEf"));
        for bad in [
            "lifeboat-validator",
            "arn:aws:ssm:us-west-2:123456789012:parameter/x",
            "arn:aws:secretsmanager:us-west-2:1234:secret:x",
            "arn:aws:secretsmanager:us-west-2:123456789012:secret:",
            "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:x",
            "arn:aws:secretsmanager::123456789012:secret:x",
        ] {
            assert!(secret_arn(bad).is_err(), "{bad}");
        }
        // The validator's role reads lifeboat-* only: another name is refused, saying the name to use.
        let other = secret_arn("arn:aws:secretsmanager:us-west-2:123456789012:secret:rds!db-1234").unwrap();
        let why = readable(other).unwrap_err();
        assert!(why.contains("lifeboat-*") && why.contains("name it lifeboat-rds!db-1234"), "{why}");
        assert!(readable(ok).is_ok());
    }

    proptest! {
        /// What Display writes, FromStr reads back as the same expectation.
        #[test]
        fn an_expectation_reads_back_what_it_writes(op in 0usize..6, value in proptest::num::f64::NORMAL | proptest::num::f64::ZERO) {
            let op = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge][op];
            let e = Expect { op, value };
            prop_assert_eq!(e.to_string().parse::<Expect>(), Ok(e));
        }

        #[test]
        fn no_text_panics_the_parser(text in ".{0,40}") {
            if let Ok(e) = text.parse::<Expect>() {
                prop_assert!(e.value.is_finite());
            }
        }
    }
}
