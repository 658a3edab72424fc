//! The DR region's own look at the primary: the stack of the region a database recovers to asks
//! RDS, every minute, about the primary (in its region) and about the database that would take
//! over (in this one). It must tell "the primary is unreachable" from "Lifeboat can't reach AWS":
//! only the first, lasting `failover.triggers.probe`, is a signal, and like every signal it only
//! opens the incident and asks for the approval the config demands. Pure: the trigger looks, this
//! decides, the incident store remembers since when (`state#probe#<database>`).

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Database;
use crate::failover::steps::{hopeless, recovered_from};
use crate::failover::Request;
use crate::incident::Kind;

/// What one look found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// This region's RDS didn't answer about the database that would take over: Lifeboat can't
    /// reach AWS, and knows nothing of the primary.
    Blind(String),
    /// The primary's region answered: the primary's status, or None when it is gone.
    Answered(Option<String>),
    /// The primary's region didn't answer; this one did.
    Unreachable(String),
    /// The primary's region answered, but not with the primary's state (throttling, a 5xx): it is
    /// up enough to refuse, so this is evidence neither way.
    Unsure(String),
}

/// What to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Remember nothing new (Blind), or the primary is fine: forget any earlier failure.
    Healthy,
    NoSignal(String),
    /// Failing since `since`, not yet for `probe`: remember `since`, wait.
    Suspect {
        since: DateTime<Utc>,
        why: String,
    },
    /// Failing for `probe` or longer: a failover request (named from `since`, so one outage
    /// opens one incident however many looks see it).
    Down(Box<Request>),
}

/// The databases this region's stack probes: those with `triggers.probe` whose recovery runs here
/// and whose primary is elsewhere (a probe from the primary's own region proves nothing about it).
pub fn probed<'a>(databases: &'a [Database], region: &str) -> Vec<(&'a Database, Duration)> {
    databases
        .iter()
        .filter_map(|db| {
            let f = db.failover.as_ref()?;
            let after = f.triggers.probe?;
            (recovered_from(db, f.strategy) == region && db.source.region != region).then_some((db, after))
        })
        .collect()
}

/// `failing_since`: the first failed look of the current run of failures, if any.
pub fn judge(
    db: &Database,
    after: Duration,
    region: &str,
    look: &Look,
    failing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Verdict {
    let why = match look {
        Look::Blind(e) => {
            return Verdict::NoSignal(format!(
                "Lifeboat can't reach RDS in {region} ({e}): no signal about {}",
                db.name
            ))
        }
        Look::Unsure(e) => {
            return Verdict::NoSignal(format!(
                "RDS in {} answered without {}'s state ({e}): no signal either way",
                db.source.region, db.source.id
            ))
        }
        Look::Answered(Some(status)) if !hopeless(status) => return Verdict::Healthy,
        Look::Answered(Some(status)) => format!("the primary {} is {status}", db.source.id),
        Look::Answered(None) => format!("the primary {} no longer exists", db.source.id),
        Look::Unreachable(e) => {
            format!("RDS in {} does not answer from {region}, which does ({e})", db.source.region)
        }
    };
    let since = failing_since.unwrap_or(now);
    let lasting = (now - since).to_std().unwrap_or_default();
    if lasting < after {
        return Verdict::Suspect { since, why };
    }
    let Some(f) = db.failover.as_ref() else { return Verdict::NoSignal(format!("{} has no failover", db.name)) };
    Verdict::Down(Box::new(Request {
        database: db.name.clone(),
        kind: Kind::Region,
        strategy: f.strategy,
        reason: format!(
            "Lifeboat's probe from {region}: {why}, for {} (since {})",
            crate::text::human(chrono::Duration::from_std(lasting).unwrap_or_default()),
            since.format("%H:%M UTC")
        ),
        by: format!("Lifeboat probe ({region})"),
        seed: format!("probe:{}:{}", db.name, since.to_rfc3339()),
        restore_time: None,
        began: Some(since),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use chrono::TimeZone;

    fn config() -> Config {
        Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap()
    }

    fn t(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 19, minute, 0).unwrap()
    }

    #[test]
    fn a_throttled_or_failing_answer_from_the_primarys_region_is_no_signal_and_forgets_nothing() {
        let c = config();
        let (db, after) = probed(&c.databases, "us-west-2")[0];
        let look = Look::Unsure("rds:DescribeDBInstances: service error: Throttling".into());
        let v = judge(db, after, "us-west-2", &look, Some(t(0)), t(30));
        assert!(matches!(&v, Verdict::NoSignal(why) if why.contains("no signal either way")), "{v:?}");
        let gone = judge(db, after, "us-west-2", &Look::Unreachable("dispatch failure".into()), Some(t(0)), t(30));
        assert!(matches!(gone, Verdict::Down(_)), "{gone:?}");
    }

    #[test]
    fn only_the_recovery_regions_stack_probes_a_primary_elsewhere() {
        let c = config();
        let west: Vec<&str> = probed(&c.databases, "us-west-2").iter().map(|(d, _)| d.name.as_str()).collect();
        assert_eq!(west, ["orders-prod"]);
        assert!(probed(&c.databases, "us-east-1").is_empty(), "the primary's own region proves nothing");
    }

    #[test]
    fn a_primary_unreachable_for_the_probe_time_is_a_signal_and_blindness_never_is() {
        let c = config();
        let (db, after) = probed(&c.databases, "us-west-2")[0];
        let down = Look::Unreachable("connection reset".into());
        assert!(
            matches!(judge(db, after, "us-west-2", &down, None, t(0)), Verdict::Suspect { since, .. } if since == t(0))
        );
        assert!(matches!(judge(db, after, "us-west-2", &down, Some(t(0)), t(4)), Verdict::Suspect { .. }));
        let Verdict::Down(r) = judge(db, after, "us-west-2", &down, Some(t(0)), t(5)) else { panic!() };
        assert_eq!((r.database.as_str(), r.kind, r.began), ("orders-prod", Kind::Region, Some(t(0))));
        assert!(r.reason.contains("RDS in us-east-1 does not answer from us-west-2"), "{}", r.reason);
        let Verdict::Down(later) = judge(db, after, "us-west-2", &down, Some(t(0)), t(9)) else { panic!() };
        assert_eq!(later.seed, r.seed, "one outage, one incident");

        let blind = Look::Blind("timed out".into());
        assert!(matches!(judge(db, after, "us-west-2", &blind, Some(t(0)), t(30)), Verdict::NoSignal(_)));
        assert_eq!(
            judge(db, after, "us-west-2", &Look::Answered(Some("backing-up".into())), Some(t(0)), t(30)),
            Verdict::Healthy
        );
        for gone in [Look::Answered(None), Look::Answered(Some("inaccessible-encryption-credentials".into()))] {
            assert!(matches!(judge(db, after, "us-west-2", &gone, Some(t(0)), t(6)), Verdict::Down(_)), "{gone:?}");
        }
    }
}
