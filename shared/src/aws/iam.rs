//! IAM's policy simulator, read-only: may the failover's role make the calls a recovery needs,
//! on the database's own ARNs (readiness)? Asked, not assumed from the template: a policy edited
//! by hand, a permissions boundary's absence of one, or a Deny added later all show.

use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
use aws_sdk_iam::Client;

use super::{sdk_error, SdkConfig};
use crate::error::LifeboatError;
use crate::readiness::Need;

pub struct Policies {
    client: Client,
}

impl Policies {
    pub fn new(sdk: &SdkConfig) -> Self {
        Policies { client: Client::new(sdk) }
    }

    /// The needs `role_arn` may not meet, as (action, resource): one simulation per call, each
    /// with the context the real call carries (its tags, Route 53's change keys).
    pub async fn denied(&self, role_arn: &str, needs: &[Need]) -> Result<Vec<(String, String)>, LifeboatError> {
        let mut out = Vec::new();
        for n in needs {
            let context = n
                .context
                .iter()
                .map(|(key, values, list)| {
                    ContextEntry::builder()
                        .context_key_name(*key)
                        .set_context_key_values(Some(values.clone()))
                        .context_key_type(if *list {
                            ContextKeyTypeEnum::StringList
                        } else {
                            ContextKeyTypeEnum::String
                        })
                        .build()
                })
                .collect();
            let answer = self
                .client
                .simulate_principal_policy()
                .policy_source_arn(role_arn)
                .action_names(n.action)
                .resource_arns(&n.resource)
                .set_context_entries(Some(context))
                .send()
                .await
                .map_err(|e| sdk_error("iam:SimulatePrincipalPolicy", e))?;
            let allowed =
                answer.evaluation_results().iter().all(|r| r.eval_decision() == &PolicyEvaluationDecisionType::Allowed);
            if !allowed || answer.evaluation_results().is_empty() {
                out.push((n.action.to_owned(), n.resource.clone()));
            }
        }
        Ok(out)
    }
}
