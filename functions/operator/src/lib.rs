//! operator: the Lambda Function URL (AuthType AWS_IAM) behind `lifeboat failover`, `approve`,
//! `reject`, `drill`, `reprotect`, `failback` and `validate`. AWS authenticates every request (SigV4) and allows it only to a principal
//! whose policy grants `lambda:InvokeFunctionUrl` here (the stack's ApproverPolicy); the request
//! context then carries that principal's ARN, which is who Lifeboat records: people's own
//! policies start no execution, answer no task and write no incident. What each request does is
//! the trigger's, the approval handler's and dr-drill's own code, run with this function's role.

use aws_lambda_events::event::lambda_function_urls::{LambdaFunctionUrlRequest, LambdaFunctionUrlResponse};
use aws_lambda_events::http::{HeaderMap, HeaderValue};
use base64::Engine;
use chrono::{DateTime, Utc};
use lifeboat_core::approval::{Channel, Decision};
use lifeboat_core::aws::invoke::Invoker;
use lifeboat_core::aws::{required_env, ConfigCache, ConfigSource, SdkConfig, CONFIG_TTL};
use lifeboat_core::error::LifeboatError;
use lifeboat_core::message::pages;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info, warn};

pub struct Deps {
    pub trigger: failover_trigger::Deps,
    pub approval: approval_handler::Deps,
    pub drill: dr_drill::Deps,
    pub reprotect: reprotect::Deps,
    /// The data validator's function name (LIFEBOAT_VALIDATOR_FUNCTION) and a client to invoke
    /// it: it sits in the VPC beside the databases, this function does not.
    pub validator: Option<(Invoker, String)>,
}

impl Deps {
    pub async fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let trigger = failover_trigger::Deps::from_env(sdk).await?;
        let drill = dr_drill::Deps::from_env(sdk).await?;
        let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
        // Decisions come with an AWS identity here, never a link: no approval key.
        let config = ConfigCache::new(ConfigSource::from_env()?, sdk, CONFIG_TTL);
        let approval = approval_handler::Deps::new(config, sdk, &table, "");
        let reprotect = reprotect::Deps::from_env(sdk).await?;
        let validator = std::env::var("LIFEBOAT_VALIDATOR_FUNCTION")
            .ok()
            .filter(|f| !f.is_empty())
            .map(|function| (Invoker::new(sdk), function));
        Ok(Deps { trigger, approval, drill, reprotect, validator })
    }
}

/// What a person asks, as `lifeboat` sends it.
#[derive(Debug, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Ask {
    Failover {
        database: String,
        reason: String,
        #[serde(default)]
        strategy: Option<String>,
        #[serde(default)]
        restore_time: Option<DateTime<Utc>>,
    },
    Approve {
        incident: String,
        /// The database's name typed again, which production asks for.
        #[serde(default)]
        confirm: Option<String>,
    },
    Reject {
        incident: String,
        #[serde(default)]
        reason: Option<String>,
    },
    Drill {
        database: String,
    },
    /// After a failover and re-protect: the planned move home, with the same approval.
    Failback {
        database: String,
        reason: String,
    },
    /// After a failover: build the way back (`reprotect`), or only say what it would build.
    Reprotect {
        database: String,
        #[serde(default)]
        dry_run: bool,
    },
    /// The database's data checks, now, read-only: on its primary, or on an instance or cluster
    /// named by identifier (this stack's region) or ARN — a point-in-time restore, a clone.
    Validate {
        database: String,
        #[serde(default)]
        target: Option<String>,
    },
}

fn answer(status: i64, body: Value) -> LambdaFunctionUrlResponse {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("cache-control", HeaderValue::from_static("no-store"));
    let mut r = LambdaFunctionUrlResponse::default();
    r.status_code = status;
    r.headers = headers;
    r.body = Some(body.to_string());
    r
}

fn refused(status: i64, why: impl Into<String>) -> LambdaFunctionUrlResponse {
    answer(status, json!({"error": why.into()}))
}

/// The principal AWS verified for this request: the IAM user's or assumed role's ARN, a role
/// session's name included (`arn:aws:sts::123456789012:assumed-role/oncall/alice`).
pub fn principal(req: &LambdaFunctionUrlRequest) -> Option<&str> {
    req.request_context.authorizer.as_ref()?.iam.as_ref()?.user_arn.as_deref().filter(|a| a.starts_with("arn:"))
}

pub async fn handle(deps: &Deps, req: LambdaFunctionUrlRequest, now: DateTime<Utc>) -> LambdaFunctionUrlResponse {
    // A URL left with AuthType NONE hands over no principal: act for nobody.
    let Some(who) = principal(&req) else {
        warn!("request without an IAM principal: the operator URL must use AuthType AWS_IAM");
        return refused(403, "Lifeboat's operator URL acts only for a caller AWS authenticated (AuthType AWS_IAM)");
    };
    if req.request_context.http.method.as_deref() != Some("POST") {
        return refused(405, "POST a JSON request");
    }
    let body = match (req.body.as_deref(), req.is_base64_encoded) {
        (Some(b), true) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default(),
        (b, _) => b.unwrap_or_default().to_owned(),
    };
    let ask: Ask = match serde_json::from_str(&body) {
        Ok(a) => a,
        Err(e) => return refused(400, format!("not a Lifeboat request: {e}")),
    };
    info!(principal = %who, ?ask, "operator request");
    match act(deps, ask, who, now).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "operator request failed");
            let status = if e.is_retryable() { 503 } else { 400 };
            answer(status, json!({"error": e.to_string(), "retryable": e.is_retryable()}))
        }
    }
}

async fn act(deps: &Deps, ask: Ask, who: &str, now: DateTime<Utc>) -> Result<LambdaFunctionUrlResponse, LifeboatError> {
    match ask {
        Ask::Failover { database, reason, strategy, restore_time } => {
            let mut r = json!({"database": database, "reason": reason, "requested_by": who});
            if let Some(s) = strategy {
                r["strategy"] = json!(s);
            }
            if let Some(t) = restore_time {
                r["restore_time"] = json!(t);
            }
            let report = failover_trigger::handle(&deps.trigger, r, now).await?;
            Ok(answer(200, serde_json::to_value(&report).unwrap_or_default()))
        }
        Ask::Failback { database, reason } => {
            let r = json!({"database": database, "reason": reason, "requested_by": who, "failback": true});
            let report = failover_trigger::handle(&deps.trigger, r, now).await?;
            Ok(answer(200, serde_json::to_value(&report).unwrap_or_default()))
        }
        Ask::Approve { incident, confirm } => {
            decide(deps, &incident, Decision::Approve, who.to_owned(), confirm, now).await
        }
        Ask::Reject { incident, reason } => {
            let by = match reason.filter(|r| !r.trim().is_empty()) {
                Some(r) => format!("{who} ({})", r.trim()),
                None => who.to_owned(),
            };
            decide(deps, &incident, Decision::Reject, by, None, now).await
        }
        Ask::Drill { database } => {
            let out = dr_drill::handle(&deps.drill, json!({"database": database}), now).await?;
            Ok(answer(200, out))
        }
        Ask::Validate { database, target } => {
            let (invoker, function) = deps.validator.as_ref().ok_or_else(|| {
                LifeboatError::Rejected(
                    "LIFEBOAT_VALIDATOR_FUNCTION is not set: deploy the current template, whose operator names its data \
                     validator"
                        .into(),
                )
            })?;
            // Only a name goes to the validator: where it answers is what RDS describes there.
            let mut ask = json!({"action": "validate", "database": database, "run": format!("on demand by {who}")});
            if let Some(id) = target.filter(|t| !t.trim().is_empty()) {
                ask["target"] = json!({"id": id.trim()});
            }
            let report = invoker.call(function, &ask).await?;
            Ok(answer(200, report))
        }
        Ask::Reprotect { database, dry_run } => {
            // Boxed: inline, its future made every request's outgrow a small thread stack.
            let ask = json!({"database": database, "dry_run": dry_run});
            let out = Box::pin(reprotect::handle(&deps.reprotect, ask, now)).await?;
            Ok(answer(200, out))
        }
    }
}

async fn decide(
    deps: &Deps,
    id: &str,
    decision: Decision,
    approver: String,
    confirm: Option<String>,
    now: DateTime<Utc>,
) -> Result<LambdaFunctionUrlResponse, LifeboatError> {
    let Some(incident) = deps.approval.store.get(id).await? else {
        return Ok(refused(404, format!("no incident {id}: `lifeboat incidents` lists them")));
    };
    if let Some((decided, why)) = approval_handler::not_pending_reason(&incident, None) {
        return Ok(refused(
            409,
            if decided { format!("already decided: {why}") } else { format!("incident {why}: nothing to decide") },
        ));
    }
    if decision == Decision::Approve
        && pages::must_type_database(&incident)
        && confirm.as_deref() != Some(&incident.database)
    {
        return Ok(refused(
            400,
            format!(
                "{} is production: confirm with its name (`--confirm {}`); nothing was decided",
                incident.database, incident.database
            ),
        ));
    }
    use approval_handler::Outcome;
    Ok(
        match approval_handler::decide_pending(
            &deps.approval,
            &incident,
            decision,
            &approver,
            Channel::AwsIdentity,
            now,
        )
        .await?
        {
            Outcome::Decided(what) => answer(200, json!({"incident": id, "decided": what})),
            Outcome::Refused(why) => refused(403, format!("{why}; nothing was decided")),
            Outcome::AlreadyDecided => {
                let again = deps.approval.store.get(id).await?;
                let said = again
                    .and_then(|i| approval_handler::not_pending_reason(&i, None))
                    .map(|(_, w)| w)
                    .unwrap_or_default();
                refused(409, format!("already decided: {said}"))
            }
            Outcome::NothingPending => refused(409, format!("incident {id} waits on no approval: nothing to decide")),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_principal_is_only_what_aws_put_in_the_request_context() {
        let path = format!("{}/../../events/operator-failover-request.json", env!("CARGO_MANIFEST_DIR"));
        let mut sample: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // A header, or the body, naming someone else counts for nothing.
        sample["headers"]["x-lifeboat-approver"] = json!("arn:aws:iam::123456789012:user/mallory");
        let mut req: LambdaFunctionUrlRequest = serde_json::from_value(sample).unwrap();
        assert_eq!(principal(&req), Some("arn:aws:sts::123456789012:assumed-role/oncall/alice"));
        req.request_context.authorizer = None;
        assert_eq!(principal(&req), None, "no IAM authorizer (AuthType NONE): nobody");
    }

    #[test]
    fn requests_name_one_action_and_nothing_else() {
        let a: Ask = serde_json::from_str(r#"{"action":"approve","incident":"i-1","confirm":"orders-prod"}"#).unwrap();
        assert!(matches!(a, Ask::Approve { .. }));
        for bad in [
            r#"{"action":"approve","incident":"i-1","approver":"someone else"}"#,
            r#"{"action":"failover","database":"orders-prod","reason":"r","requested_by":"mallory"}"#,
            r#"{"action":"delete","database":"orders-prod"}"#,
            "not json",
        ] {
            assert!(serde_json::from_str::<Ask>(bad).is_err(), "{bad}");
        }
    }
}
