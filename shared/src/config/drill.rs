//! A database's `drill` section: how often to prove it restores, where and how. Plain data; the
//! drill itself is `drill`'s.

use std::time::Duration;

use serde::Deserialize;

use super::failover::{recovery_wait, Restore};
use super::Database;

/// The drill state machine may invoke only validation functions named so.
pub const VALIDATION_PREFIX: &str = "lifeboat-validate-";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drill {
    /// How often to prove the database restores (the schedule checks daily what is due). Also
    /// accepted as `schedule`; a duration, not a cron expression: one stack schedule serves all.
    #[serde(default = "monthly", alias = "schedule", deserialize_with = "crate::config::de_duration")]
    pub every: Duration,
    /// Where and how to restore: `region` (one of copy_to; needed if several), class, subnet group.
    pub restore: Restore,
    /// A Lambda (name or ARN) invoked with `{"database", "endpoint", "port", "drill_id"}` once the
    /// instance is up: an error fails the drill. Lifeboat's own checks run without it. Named
    /// `lifeboat-validate-*`: the only functions the drill state machine may invoke.
    pub validation_lambda: Option<String>,
}

fn monthly() -> Duration {
    Duration::from_secs(30 * 86_400)
}

/// `TimeoutSeconds` of `infra/drill.asl.json` (a test compares them): it runs no Catch, so a
/// drill that reached it would never clean up. The restore wait and the other steps must fit.
pub const MACHINE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Prepare, checks, validation, cleanup (10 attempts) and the record, at their worst.
pub const STEPS_BUDGET: Duration = Duration::from_secs(2 * 3600);

/// Why `db.drill` can't work as written.
pub fn invalid(db: &Database, d: &Drill) -> Option<(&'static str, String)> {
    let wait = recovery_wait(db.rto);
    if wait + STEPS_BUDGET > MACHINE_TIMEOUT {
        return Some((
            "drill",
            format!(
                "a drill waits up to twice the rto ({}s) for its restore, which with its other steps is more than \
                 the drill state machine's {}s: drills need an rto of at most {}h",
                wait.as_secs(),
                MACHINE_TIMEOUT.as_secs(),
                (MACHINE_TIMEOUT - STEPS_BUDGET).as_secs() / 7200
            ),
        ));
    }
    if db.copy_to.is_empty() {
        return Some(("drill", "a drill restores a DR copy: the database needs copy_to".into()));
    }
    match &d.restore.region {
        Some(r) if !db.copy_to.iter().any(|t| &t.region == r) => {
            Some(("drill.restore.region", format!("{r} is not one of copy_to's regions")))
        }
        None if db.copy_to.len() > 1 => Some(("drill.restore.region", "name one of copy_to's regions".into())),
        _ if d.every < Duration::from_secs(86_400) => Some(("drill.every", "at most one drill a day".into())),
        _ => match &d.validation_lambda {
            Some(f)
                if !f.rsplit(':').next().unwrap_or(f).starts_with(VALIDATION_PREFIX)
                    && !f.contains(&format!(":function:{VALIDATION_PREFIX}")) =>
            {
                Some((
                    "drill.validation_lambda",
                    format!("`{f}`: name validation functions {VALIDATION_PREFIX}* (the drill may invoke only those)"),
                ))
            }
            _ => None,
        },
    }
}
