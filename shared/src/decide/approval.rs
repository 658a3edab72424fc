//! Signed approval links. A link names the incident, the pending Step Functions task (by a hash of
//! its token: the token itself never travels in a URL), the decision and an expiry, and carries an
//! HMAC-SHA256 over all four. The approval handler decides only what a valid, unexpired link for
//! the task still pending says, and only on a form POST. Pure: the key comes from outside.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;

use crate::config::failover::{ApprovalPolicy, Via};
use crate::incident::{Entry, Incident};
use crate::text::kebab_names;

type HmacSha256 = Hmac<Sha256>;

/// A key shorter than this is a configuration error: HMAC is only as strong as its key.
pub const MIN_KEY_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Approve,
    Reject,
}

kebab_names!(Decision, "approve, reject", Approve => "approve", Reject => "reject");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub incident: String,
    /// `task_ref` of the pending task's token.
    pub task: String,
    pub decision: Decision,
    pub expires: DateTime<Utc>,
    pub signature: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("this link is incomplete or malformed ({0})")]
    Malformed(String),
    #[error("this link's signature is not valid: it was altered, or not made by Lifeboat")]
    Forged,
    #[error("this link expired at {0}")]
    Expired(DateTime<Utc>),
}

/// A short, stable name for a task token: what links carry and what the incident remembers.
pub fn task_ref(task_token: &str) -> String {
    crate::text::short_digest(task_token, 12)
}

fn mac(key: &[u8], incident: &str, task: &str, decision: Decision, expires: i64) -> HmacSha256 {
    // new_from_slice accepts any key length for HMAC; length is checked where the key is loaded.
    let mut mac = HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    // Newline-separated: none of the fields can contain one (they are checked on parse).
    mac.update(format!("lifeboat-approval-v1\n{incident}\n{task}\n{decision}\n{expires}").as_bytes());
    mac
}

impl Link {
    pub fn new(key: &[u8], incident: &str, task: &str, decision: Decision, expires: DateTime<Utc>) -> Link {
        let tag = mac(key, incident, task, decision, expires.timestamp()).finalize().into_bytes();
        Link {
            incident: incident.to_owned(),
            task: task.to_owned(),
            decision,
            expires,
            signature: URL_SAFE_NO_PAD.encode(tag),
        }
    }

    /// The link's query string: `i`, `t`, `d`, `e`, `s`.
    pub fn query(&self) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("i", &self.incident)
            .append_pair("t", &self.task)
            .append_pair("d", self.decision.as_str())
            .append_pair("e", &self.expires.timestamp().to_string())
            .append_pair("s", &self.signature)
            .finish()
    }

    pub fn url(&self, base: &str) -> String {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}{}", self.query())
    }

    /// The link's fields from a query string or a form body (which also carries other fields).
    pub fn parse(encoded: &str) -> Result<Link, Refusal> {
        let mut fields = std::collections::BTreeMap::new();
        for (k, v) in form_urlencoded::parse(encoded.as_bytes()) {
            if fields.insert(k.to_string(), v.to_string()).is_some() {
                return Err(Refusal::Malformed(format!("`{k}` given twice")));
            }
        }
        let get = |k: &str| -> Result<String, Refusal> {
            match fields.get(k) {
                Some(v) if !v.is_empty() && v.len() <= 256 && !v.contains(['\n', '\r']) => Ok(v.clone()),
                _ => Err(Refusal::Malformed(format!("`{k}` missing or invalid"))),
            }
        };
        let decision = get("d")?.parse().map_err(|_| Refusal::Malformed("`d` is not approve or reject".into()))?;
        let expires = get("e")?
            .parse::<i64>()
            .ok()
            .and_then(|e| DateTime::from_timestamp(e, 0))
            .ok_or_else(|| Refusal::Malformed("`e` is not a time".into()))?;
        Ok(Link { incident: get("i")?, task: get("t")?, decision, expires, signature: get("s")? })
    }

    /// Valid when the signature matches (compared in constant time) and the link has not expired.
    pub fn verify(&self, key: &[u8], now: DateTime<Utc>) -> Result<(), Refusal> {
        let tag = self.precheck(now)?;
        mac(key, &self.incident, &self.task, self.decision, self.expires.timestamp())
            .verify_slice(&tag)
            .map_err(|_| Refusal::Forged)
    }

    /// What can be refused without the key: a link past its expiry, or a signature that is no
    /// HMAC-SHA256 tag. The handler reads the key (an SSM call) only for links that pass, so
    /// junk sent to the public URL costs no AWS call. The tag, when it passes.
    pub fn precheck(&self, now: DateTime<Utc>) -> Result<Vec<u8>, Refusal> {
        if now >= self.expires {
            return Err(Refusal::Expired(self.expires));
        }
        match URL_SAFE_NO_PAD.decode(&self.signature) {
            Ok(tag) if tag.len() == 32 => Ok(tag),
            _ => Err(Refusal::Forged),
        }
    }
}

/// What a Function URL request asks, read without AWS: whether it decides (a form POST), the
/// encoded fields (the query of a GET, the form of a POST) and the link among them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub post: bool,
    pub fields: String,
    pub link: Link,
}

/// Why a request is no approval request at all; each is a 4xx page.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Unreadable {
    #[error("method {0} is not allowed")]
    Method(String),
    #[error("the form could not be read")]
    Body,
    #[error(transparent)]
    Link(#[from] Refusal),
}

impl Request {
    /// From a Function URL request's method, raw query string and body. GET and HEAD carry the
    /// link in the query; POST in the form body, which Function URLs hand over base64-encoded.
    pub fn read(
        method: Option<&str>,
        query: Option<&str>,
        body: Option<&str>,
        base64: bool,
    ) -> Result<Request, Unreadable> {
        let method = method.unwrap_or("GET").to_ascii_uppercase();
        let fields = match (method.as_str(), body) {
            ("GET" | "HEAD", _) => query.unwrap_or_default().to_owned(),
            ("POST", Some(b)) if base64 => {
                let bytes = base64::engine::general_purpose::STANDARD.decode(b).map_err(|_| Unreadable::Body)?;
                String::from_utf8_lossy(&bytes).into_owned()
            }
            ("POST", b) => b.unwrap_or_default().to_owned(),
            _ => return Err(Unreadable::Method(method)),
        };
        let link = Link::parse(&fields)?;
        Ok(Request { post: method == "POST", fields, link })
    }
}

/// How a decision reached Lifeboat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The signed page: whoever holds the link, with a name they typed.
    Link,
    /// The operator URL (AWS_IAM): the principal AWS authenticated.
    AwsIdentity,
}

/// Who asked for the failover: whoever declared it and whoever joined with a request of their own.
pub fn requesters(incident: &Incident) -> impl Iterator<Item = &str> {
    incident.timeline.iter().filter(|e| e.key == "declared" || e.key.starts_with("seen:")).map(|e| e.by.as_str())
}

/// Whether `approver`, coming by `channel`, may take `decision` on `incident` under the database's
/// `policy`; why not, when not. Rejecting is open to anyone the channel admits: stopping a
/// failover needs no second person.
pub fn may_decide(
    policy: &ApprovalPolicy,
    channel: Channel,
    decision: Decision,
    approver: &str,
    incident: &Incident,
) -> Result<(), String> {
    match (policy.via, channel) {
        (Via::AwsIdentity, Channel::Link) => {
            return Err(format!(
                "{} takes decisions only from an AWS identity: run `lifeboat approve {}` (or reject)",
                incident.database, incident.id
            ))
        }
        (Via::Link, Channel::AwsIdentity) => {
            return Err(format!("{} takes decisions only through the approval message's links", incident.database))
        }
        _ => {}
    }
    if decision == Decision::Approve && policy.distinct_from_requester && requesters(incident).any(|r| r == approver) {
        return Err(format!(
            "{approver} requested this failover: {} needs another person's approval (two-person rule)",
            incident.database
        ));
    }
    Ok(())
}

/// The timeline entry that is the decision on the task `task_token`: written once, first one wins.
pub fn decision_entry(at: DateTime<Utc>, approver: &str, decision: Decision, task_token: &str) -> Entry {
    let what = match decision {
        Decision::Approve => format!("approved by {approver}"),
        Decision::Reject => format!("rejected by {approver}"),
    };
    Entry::new(at, approver, &what, &format!("approval:{}", task_ref(task_token)))
}

/// The decision Lifeboat recorded on the approval `incident` waits on (or waited on last), and
/// who took it. Only Lifeboat's roles write the incident table, so this is what the act step
/// trusts, never what an execution's input says.
pub fn recorded(incident: &Incident) -> Option<(Decision, &str)> {
    let key = format!("approval:{}", task_ref(incident.approval_task.as_deref()?));
    let e = incident.timeline.iter().find(|e| e.key == key)?;
    let decision = if e.what.starts_with("approved by ") {
        Decision::Approve
    } else if e.what.starts_with("rejected by ") {
        Decision::Reject
    } else {
        return None;
    };
    Some((decision, e.by.as_str()))
}

/// The timeline key of a held cut-over: the data checks inside the new primary failed or could
/// not run, and a person decides whether traffic moves to it (failover-steps' `hold`).
pub const HOLD_KEY: &str = "step:hold";

/// Whether `incident` waits for a person: its approval before anything changes, or a cut-over its
/// data checks held (recovering, the hold's decision not taken yet).
pub fn awaits_decision(incident: &Incident) -> bool {
    use crate::incident::Status;
    match incident.status {
        Status::AwaitingApproval => true,
        Status::Recovering => incident.timeline.iter().any(|e| e.key == HOLD_KEY) && recorded(incident).is_none(),
        _ => false,
    }
}

/// Who approved the held cut-over: the approval of the task the incident waits on, recorded after
/// the hold (the first approval, before anything changed, doesn't count for it).
pub fn hold_approved(incident: &Incident) -> Option<&str> {
    let hold = incident.timeline.iter().position(|e| e.key == HOLD_KEY)?;
    let key = format!("approval:{}", task_ref(incident.approval_task.as_deref()?));
    let (at, e) = incident.timeline.iter().enumerate().find(|(_, e)| e.key == key)?;
    (at > hold && e.what.starts_with("approved by ")).then_some(e.by.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_request_carries_its_link_in_the_query_or_the_form_and_only_a_post_decides() {
        let expires = Utc.with_ymd_and_hms(2026, 11, 25, 21, 0, 0).unwrap();
        let q = Link::new(KEY, "orders-prod-20261125T1942Z-3f2a", "t1", Decision::Approve, expires).query();
        let get = Request::read(Some("get"), Some(&q), Some("ignored"), false).unwrap();
        assert!(!get.post && get.link.decision == Decision::Approve);
        let form = format!("{q}&approver=alice");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&form);
        let post = Request::read(Some("POST"), None, Some(&b64), true).unwrap();
        assert_eq!((post.post, post.fields.as_str()), (true, form.as_str()));
        assert_eq!(Request::read(Some("POST"), Some(&q), Some(&form), false).unwrap().fields, form);
        assert_eq!(Request::read(Some("PUT"), Some(&q), None, false), Err(Unreadable::Method("PUT".into())));
        assert_eq!(Request::read(Some("POST"), None, Some("%%%"), true), Err(Unreadable::Body));
        assert!(matches!(Request::read(Some("POST"), Some(&q), None, false), Err(Unreadable::Link(_))));
        assert!(matches!(Request::read(None, None, None, false), Err(Unreadable::Link(_))));
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 19, 42, 0).unwrap()
    }

    fn link() -> Link {
        Link::new(
            KEY,
            "orders-prod-20261125T1942Z-3f2a",
            &task_ref("token-1"),
            Decision::Approve,
            now() + chrono::Duration::minutes(30),
        )
    }

    #[test]
    fn a_link_round_trips_through_its_url_and_verifies_until_it_expires() {
        let l = link();
        let url = l.url("http://127.0.0.1:9000/lambda-url/approval-handler/");
        let query = url.split_once('?').unwrap().1;
        let parsed = Link::parse(query).unwrap();
        assert_eq!(parsed, l);
        assert_eq!(parsed.verify(KEY, now()), Ok(()));
        assert_eq!(parsed.verify(KEY, l.expires), Err(Refusal::Expired(l.expires)));
    }

    #[test]
    fn altered_forged_or_malformed_links_are_refused() {
        let l = link();
        let mut other = l.clone();
        other.decision = Decision::Reject;
        assert_eq!(other.verify(KEY, now()), Err(Refusal::Forged), "approve turned into reject");
        let mut other = l.clone();
        other.expires += chrono::Duration::days(1);
        assert_eq!(other.verify(KEY, now()), Err(Refusal::Forged), "expiry pushed out");
        let mut other = l.clone();
        other.task = task_ref("another execution's token");
        assert_eq!(other.verify(KEY, now()), Err(Refusal::Forged));
        assert_eq!(l.verify(b"another key, also thirty-two bytes", now()), Err(Refusal::Forged));
        let mut other = l.clone();
        other.signature = "not base64!".into();
        assert_eq!(other.verify(KEY, now()), Err(Refusal::Forged));
        assert!(matches!(Link::parse("i=a&t=b&d=maybe&e=1&s=x"), Err(Refusal::Malformed(_))));
        assert!(matches!(Link::parse(&format!("{}&d=reject", l.query())), Err(Refusal::Malformed(_))));
        assert!(matches!(Link::parse(""), Err(Refusal::Malformed(_))));
    }

    fn waiting(database: &str, requester: &str) -> Incident {
        let mut i: Incident = serde_json::from_value(serde_json::json!({
            "id": format!("{database}-20261125T1942Z-3f2a"), "database": database, "tier": "production",
            "severity": "P1", "kind": "manual", "status": "awaiting-approval", "started": now(), "ended": null,
            "execution_arn": null, "recovered_to": null, "approval_task": "token-1", "timeline": []
        }))
        .unwrap();
        i.timeline.push(Entry::new(now(), requester, "declared: primary unreachable", "declared"));
        i
    }

    #[test]
    fn the_two_person_rule_refuses_the_requester_and_each_channel_only_where_the_config_admits_it() {
        let i = waiting("orders-prod", "arn:aws:sts::123456789012:assumed-role/oncall/alice");
        let mut joined = i.clone();
        joined.timeline.push(Entry::new(
            now(),
            "arn:aws:sts::123456789012:assumed-role/oncall/carol",
            "also seen",
            "seen:x",
        ));
        let strict =
            ApprovalPolicy { distinct_from_requester: true, via: Via::AwsIdentity, ..ApprovalPolicy::default() };
        let alice = "arn:aws:sts::123456789012:assumed-role/oncall/alice";
        let bob = "arn:aws:sts::123456789012:assumed-role/oncall/bob";
        let carol = "arn:aws:sts::123456789012:assumed-role/oncall/carol";
        let e = may_decide(&strict, Channel::AwsIdentity, Decision::Approve, alice, &i).unwrap_err();
        assert!(e.contains("two-person rule"), "{e}");
        assert!(
            may_decide(&strict, Channel::AwsIdentity, Decision::Approve, carol, &joined).is_err(),
            "joined, so asked"
        );
        assert_eq!(may_decide(&strict, Channel::AwsIdentity, Decision::Approve, bob, &joined), Ok(()));
        assert_eq!(may_decide(&strict, Channel::AwsIdentity, Decision::Reject, alice, &i), Ok(()), "may call it off");
        let e = may_decide(&strict, Channel::Link, Decision::Approve, "Bob", &i).unwrap_err();
        assert!(e.contains("lifeboat approve orders-prod-20261125T1942Z-3f2a"), "{e}");
        let links = ApprovalPolicy { via: Via::Link, ..ApprovalPolicy::default() };
        assert!(may_decide(&links, Channel::AwsIdentity, Decision::Approve, bob, &i).is_err());
        assert_eq!(may_decide(&ApprovalPolicy::default(), Channel::Link, Decision::Approve, alice, &i), Ok(()));
    }

    #[test]
    fn only_the_decision_recorded_for_the_pending_task_counts() {
        let mut i = waiting("orders-prod", "alarm orders-prod-down");
        assert_eq!(recorded(&i), None);
        i.timeline.push(decision_entry(now(), "mallory", Decision::Approve, "an older task"));
        assert_eq!(recorded(&i), None, "another task's decision");
        i.timeline.push(decision_entry(now(), "arn:aws:iam::123456789012:user/bob", Decision::Approve, "token-1"));
        assert_eq!(recorded(&i), Some((Decision::Approve, "arn:aws:iam::123456789012:user/bob")));
        let mut rejected = waiting("orders-prod", "x");
        rejected.timeline.push(decision_entry(now(), "carol", Decision::Reject, "token-1"));
        assert_eq!(recorded(&rejected), Some((Decision::Reject, "carol")));
        rejected.approval_task = None;
        assert_eq!(recorded(&rejected), None, "no task waited: nothing was decided");
    }

    #[test]
    fn task_refs_are_short_and_distinct() {
        assert_eq!(task_ref("a").len(), 24);
        assert_ne!(task_ref("a"), task_ref("b"));
    }

    proptest! {
        #[test]
        fn no_input_panics_the_parser_and_nothing_unsigned_verifies(q in ".{0,300}") {
            if let Ok(l) = Link::parse(&q) {
                prop_assert!(l.verify(KEY, now()).is_err());
            }
        }
    }
}
