//! approval-handler: the Lambda Function URL behind the approval links. A GET shows the page
//! (never decides: mail scanners and chat unfurlers fetch links); the form's POST decides, once,
//! for the task the incident still waits on. Links are checked by `lifeboat_core::approval`,
//! pages rendered by `lifeboat_core::message::pages`.

use aws_lambda_events::event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use chrono::{DateTime, Utc};
use lifeboat_core::approval::{self, task_ref, Channel, Decision, Link, Refusal, Request, Unreadable};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::sfn::{Answered, StepFunctions};
use lifeboat_core::aws::ssm::ApprovalKey;
use lifeboat_core::aws::{required_env, ConfigCache, SdkConfig};
use lifeboat_core::config::failover::ApprovalPolicy;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::incident::{Incident, Status};
use lifeboat_core::message::pages;
use serde_json::json;
use tracing::{info, warn};

pub struct Deps {
    /// Who may decide how (`failover.approval`): the stack's config, never the request.
    pub config: ConfigCache,
    pub store: IncidentStore,
    pub sfn: StepFunctions,
    pub key: ApprovalKey,
}

impl Deps {
    /// As the template configures it: the config, the incident table and the approval key's parameter.
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let config = ConfigCache::from_env(sdk).await?;
        let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
        Ok(Deps::new(config, sdk, &table, &required_env("LIFEBOAT_APPROVAL_SECRET_PARAM")?))
    }

    pub fn new(config: ConfigCache, sdk: &SdkConfig, table: &str, secret_param: &str) -> Self {
        Deps {
            config,
            store: IncidentStore::new(sdk, table),
            sfn: StepFunctions::new(sdk),
            key: ApprovalKey::new(sdk, secret_param),
        }
    }
}

fn respond(status: i64, html: String) -> LambdaFunctionUrlResponse {
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("content-type", "text/html; charset=utf-8"),
        ("cache-control", "no-store"),
        // The page's URL carries a signed link: don't hand it to other sites, or frame it.
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
    ] {
        headers.insert(k, HeaderValue::from_static(v));
    }
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status;
    r.headers = headers;
    r.body = Some(html);
    r
}

fn page(status: i64, title: &str, text: &str) -> LambdaFunctionUrlResponse {
    respond(status, pages::outcome(title, text))
}

/// Every request gets a page; AWS trouble is a "try again" page, and is logged. The page says
/// nothing of what AWS said: its errors name the account, the role and the resources, and the
/// URL is public.
pub async fn handle(deps: &Deps, req: LambdaFunctionUrlRequest, now: DateTime<Utc>) -> LambdaFunctionUrlResponse {
    match answer(deps, &req, now).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "approval request failed");
            let status = if e.is_retryable() { 503 } else { 500 };
            page(
                status,
                "Something went wrong",
                "Nothing was decided: Lifeboat could not complete the request (the details are in its log). \
                 Try the link again in a minute.",
            )
        }
    }
}

async fn answer(
    deps: &Deps,
    req: &LambdaFunctionUrlRequest,
    now: DateTime<Utc>,
) -> Result<LambdaFunctionUrlResponse, LifeboatError> {
    let request = Request::read(
        req.request_context.http.method.as_deref(),
        req.raw_query_string.as_deref(),
        req.body.as_deref(),
        req.is_base64_encoded,
    );
    let Request { post, fields, link } = match request {
        Ok(r) => r,
        Err(Unreadable::Method(_)) => {
            return Ok(page(405, "Not allowed", "Open the link from the message, then use the form."))
        }
        Err(Unreadable::Body) => return Ok(page(400, "Bad request", "The form could not be read.")),
        Err(Unreadable::Link(r)) => return Ok(page(400, "Not a valid approval link", &r.to_string())),
    };
    let checked = match link.precheck(now) {
        Ok(_) => link.verify(deps.key.get().await?, now),
        Err(r) => Err(r),
    };
    if let Err(r) = checked {
        info!(incident = %link.incident, refusal = %r, "approval link refused");
        let status = if matches!(r, Refusal::Expired(_)) { 410 } else { 403 };
        return Ok(page(status, "Link refused", &format!("{r}. Nothing was changed.")));
    }
    let Some(incident) = deps.store.get(&link.incident).await? else {
        return Ok(page(404, "No such incident", "Nothing was changed."));
    };
    if let Some(r) = not_pending(&incident, &link) {
        return Ok(r);
    }
    // A database that takes decisions only from an AWS identity: the page says how, and decides nothing.
    if let Err(why) = approval::may_decide(&policy(deps, &incident).await?, Channel::Link, link.decision, "", &incident)
    {
        return Ok(page(403, "Decide from a terminal", &format!("{why}. Nothing was changed.")));
    }
    if !post {
        return Ok(respond(200, pages::approval_form(&incident, &link, now)));
    }
    decide(deps, &incident, &link, &fields, now).await
}

/// Why `incident` has no approval waiting for `task` (the link's, or the pending one), or None.
pub fn not_pending_reason(incident: &Incident, task: Option<&str>) -> Option<(bool, String)> {
    let pending = incident.approval_task.as_deref().map(task_ref);
    let task = task.or(pending.as_deref());
    let decided = incident.timeline.iter().rev().find(|e| match task {
        Some(t) => e.key == format!("approval:{t}"),
        None => e.key.starts_with("approval:"),
    });
    if let Some(done) = decided {
        return Some((true, format!("{} ({})", done.what, done.at.format("%Y-%m-%d %H:%M UTC"))));
    }
    if !approval::awaits_decision(incident) || pending.is_none() || pending.as_deref() != task {
        return Some((false, format!("{} is {}", incident.id, incident.status)));
    }
    None
}

/// Who may decide `incident`'s approval, and how: its database's in the stack's config (a
/// database no longer there gets the default, a person by either way).
async fn policy(deps: &Deps, incident: &Incident) -> Result<ApprovalPolicy, LifeboatError> {
    let config = deps.config.get_all().await?;
    Ok(config.database_named(&incident.database).map(|d| d.approval()).unwrap_or_default())
}

/// The page to show instead of the form when this link's task is no longer waiting.
fn not_pending(incident: &Incident, link: &Link) -> Option<LambdaFunctionUrlResponse> {
    match not_pending_reason(incident, Some(&link.task))? {
        (true, done) => Some(page(409, "Already decided", &format!("Already decided: {done}. Nothing was changed."))),
        (false, why) => Some(page(
            409,
            "Nothing to decide",
            &format!("Incident {why}: this approval is no longer pending. Nothing was changed."),
        )),
    }
}

/// What deciding found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// This decision is the one: what the timeline now says.
    Decided(String),
    /// Another decision came first, or the wait timed out.
    AlreadyDecided,
    NothingPending,
    /// The config doesn't admit this decision this way, or from this person: why.
    Refused(String),
}

/// The one decision on the approval `incident` waits on, by `approver` (a name typed on the page,
/// or the principal AWS verified for the operator URL), coming by `channel`. The config says who
/// may decide how (`approval::may_decide`). The decision is recorded on the incident first, with
/// a condition that no decision is there yet, so of the page and the CLI only one can win; then
/// the task is answered. The act step acts on that record, never on the task's output.
pub async fn decide_pending(
    deps: &Deps,
    incident: &Incident,
    decision: Decision,
    approver: &str,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<Outcome, LifeboatError> {
    let Some(token) = incident.approval_task.as_deref() else { return Ok(Outcome::NothingPending) };
    if let Err(why) = approval::may_decide(&policy(deps, incident).await?, channel, decision, approver, incident) {
        info!(incident = %incident.id, %approver, %why, "decision refused");
        return Ok(Outcome::Refused(why));
    }
    let mut entry = approval::decision_entry(now, approver, decision, token);
    if channel == Channel::Link {
        entry = entry.with_details("through the approval link: the name was typed on the page, not verified");
    }
    if !deps.store.record(&incident.id, &entry).await? {
        // There already: this very decision (a retry whose answer was lost) goes on to answer
        // the task; anyone else's came first.
        let now_there = deps.store.get(&incident.id).await?;
        let ours =
            now_there.as_ref().and_then(approval::recorded).is_some_and(|(d, who)| d == decision && who == approver);
        if !ours {
            return Ok(Outcome::AlreadyDecided);
        }
    }
    let answered = match decision {
        Decision::Approve => {
            let output = json!({"decision": "approve", "approver": approver}).to_string();
            deps.sfn.succeed(token, &output).await?
        }
        // The error name is what the state machine's Catch matches; the timeline says who.
        Decision::Reject => deps.sfn.fail(token, "Rejected", &format!("rejected by {approver}")).await?,
    };
    if answered == Answered::Closed
        && deps
            .store
            .get(&incident.id)
            .await?
            .is_some_and(|i| i.status != Status::AwaitingApproval && i.status != Status::Recovering)
    {
        // The wait ended (timed out) before this decision reached it: nothing goes ahead.
        return Ok(Outcome::AlreadyDecided);
    }
    info!(incident = %incident.id, what = %entry.what, "decided");
    Ok(Outcome::Decided(entry.what))
}

async fn decide(
    deps: &Deps,
    incident: &Incident,
    link: &Link,
    form: &str,
    now: DateTime<Utc>,
) -> Result<LambdaFunctionUrlResponse, LifeboatError> {
    let field = |name: &str| {
        form_urlencoded::parse(form.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let approver = field("approver");
    if approver.is_empty() || approver.chars().count() > 100 {
        return Ok(page(
            400,
            "Who decides?",
            "Type your name (up to 100 characters) on the form. Nothing was changed.",
        ));
    }
    if link.decision == Decision::Approve
        && pages::must_type_database(incident)
        && field("database") != incident.database
    {
        let text = format!("Type the database name `{}` exactly to approve. Nothing was changed.", incident.database);
        return Ok(page(400, "Database name does not match", &text));
    }
    match decide_pending(deps, incident, link.decision, &approver, Channel::Link, now).await? {
        Outcome::NothingPending => Ok(page(409, "Nothing to decide", "No approval is pending. Nothing was changed.")),
        Outcome::Refused(why) => Ok(page(403, "Not decided", &format!("{why}. Nothing was changed."))),
        Outcome::AlreadyDecided => Ok(page(
            409,
            "Already decided",
            // Also what a click whose SendTaskSuccess went through, but whose answer was lost,
            // sees on the SDK's retry: so no "nothing was changed" here. The recovering step
            // records the approver from the task's output either way.
            "This approval is no longer waiting: it was answered already, or it timed out. The \
             incident's next message says which.",
        )),
        Outcome::Decided(_) => {
            let text = match link.decision {
                Decision::Approve => format!(
                    "Approved by {approver}: the failover of {} goes ahead. Updates follow by message.",
                    incident.database
                ),
                Decision::Reject => {
                    format!("Rejected by {approver}: nothing will be changed on {}.", incident.database)
                }
            };
            Ok(page(200, "Decided", &text))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_function_url_event_parses_and_its_link_does_not_verify() {
        let path = format!("{}/../../events/approval-url-get.json", env!("CARGO_MANIFEST_DIR"));
        let req: LambdaFunctionUrlRequest = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(req.request_context.http.method.as_deref(), Some("GET"));
        let link = Link::parse(req.raw_query_string.as_deref().unwrap()).unwrap();
        assert_eq!(link.decision, Decision::Approve);
        let now = DateTime::from_timestamp(1_795_549_500, 0).unwrap();
        assert_eq!(link.verify(b"0123456789abcdef0123456789abcdef", now), Err(Refusal::Forged));
    }

    #[test]
    fn pages_are_never_cached_framed_or_leaked_by_referrer() {
        let r = page(403, "Link refused", "x < y");
        assert_eq!(r.status_code, 403);
        assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
        assert_eq!(r.headers.get("referrer-policy").unwrap(), "no-referrer");
        assert!(r.body.unwrap().contains("x &lt; y"));
    }
}
