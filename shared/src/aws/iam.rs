//! IAM's policy simulator, read-only: may the failover's role make the calls a recovery needs,
//! on the database's own ARNs (readiness)? Asked, not assumed from the template: a policy edited
//! by hand, a permissions boundary's absence of one, or a Deny added later all show.
//!
//! A fleet's needs are asked together: SimulatePrincipalPolicy takes many actions and many
//! resources ("Each operation is evaluated for each resource", ActionNames, IAM API reference)
//! under one request context, so the calls are one per distinct context (and action, where
//! asking every action on every resource would mostly evaluate pairs nobody needs), not one per
//! need.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
use aws_sdk_iam::Client;
use futures_util::stream::{self, StreamExt};

use super::{sdk_error, SdkConfig};
use crate::error::LifeboatError;
use crate::readiness::Need;

/// Resources named in one simulation: ours, not IAM's (the reference bounds each ARN's length,
/// not their number), to keep a request and its answer small.
const RESOURCES_PER_CALL: usize = 100;
/// Simulations in flight at once.
const SIMULATIONS_AT_ONCE: usize = 4;

pub struct Policies {
    client: Client,
}

type Context = Vec<(&'static str, Vec<String>, bool)>;

impl Policies {
    pub fn new(sdk: &SdkConfig) -> Self {
        Policies { client: Client::new(sdk) }
    }

    /// For each of `needs`, in order, whether `role_arn` may make it, each simulated with the
    /// context the real call carries (its tags, Route 53's change keys). A need the simulator
    /// gives no answer for is not allowed.
    pub async fn allowed(&self, role_arn: &str, needs: &[Need]) -> Result<Vec<bool>, LifeboatError> {
        let mut by_context: BTreeMap<&Context, BTreeSet<(&str, &str)>> = BTreeMap::new();
        for n in needs {
            by_context.entry(&n.context).or_default().insert((n.action, n.resource.as_str()));
        }
        let mut calls = Vec::new();
        for (context, pairs) in &by_context {
            let actions: BTreeSet<&str> = pairs.iter().map(|(a, _)| *a).collect();
            let resources: BTreeSet<&str> = pairs.iter().map(|(_, r)| *r).collect();
            // Every action on every resource when that is at most twice the pairs needed; else
            // each action on its own resources.
            let asks: Vec<(Vec<&str>, Vec<&str>)> = if actions.len() * resources.len() <= 2 * pairs.len() {
                vec![(actions.into_iter().collect(), resources.into_iter().collect())]
            } else {
                actions
                    .into_iter()
                    .map(|a| (vec![a], pairs.iter().filter(|(x, _)| *x == a).map(|(_, r)| *r).collect()))
                    .collect()
            };
            for (actions, resources) in asks {
                for chunk in resources.chunks(RESOURCES_PER_CALL) {
                    calls.push((*context, actions.clone(), chunk.to_vec()));
                }
            }
        }
        // A few at once: restores and DNS moves each bring a context of their own, and one after
        // another a fleet's would outlast the run.
        let mut answers = stream::iter(calls)
            .map(|(context, actions, resources)| async move {
                self.simulate(role_arn, context, &actions, &resources).await.map(|r| (context, r))
            })
            .buffer_unordered(SIMULATIONS_AT_ONCE);
        let mut decided: HashMap<(&Context, String, String), bool> = HashMap::new();
        while let Some(answer) = answers.next().await {
            let (context, results) = answer?;
            for (action, resource, ok) in results {
                let seen = decided.entry((context, action, resource)).or_insert(ok);
                *seen &= ok;
            }
        }
        Ok(needs
            .iter()
            .map(|n| decided.get(&(&n.context, n.action.to_owned(), n.resource.clone())).copied().unwrap_or(false))
            .collect())
    }

    /// One simulation, all its pages: (action, resource, allowed) for each answer.
    async fn simulate(
        &self,
        role_arn: &str,
        context: &Context,
        actions: &[&str],
        resources: &[&str],
    ) -> Result<Vec<(String, String, bool)>, LifeboatError> {
        let entries = context
            .iter()
            .map(|(key, values, list)| {
                ContextEntry::builder()
                    .context_key_name(*key)
                    .set_context_key_values(Some(values.clone()))
                    .context_key_type(if *list { ContextKeyTypeEnum::StringList } else { ContextKeyTypeEnum::String })
                    .build()
            })
            .collect();
        let mut pages = self
            .client
            .simulate_principal_policy()
            .policy_source_arn(role_arn)
            .set_action_names(Some(actions.iter().map(|a| (*a).to_owned()).collect()))
            .set_resource_arns(Some(resources.iter().map(|r| (*r).to_owned()).collect()))
            .set_context_entries(Some(entries))
            .into_paginator()
            .send();
        let allowed = |d: &PolicyEvaluationDecisionType| d == &PolicyEvaluationDecisionType::Allowed;
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| sdk_error("iam:SimulatePrincipalPolicy", e))?;
            for r in page.evaluation_results() {
                let action = r.eval_action_name().to_owned();
                // "The simulator now returns a single EvaluationResult per action, regardless of how
                // many resource ARNs are provided ... To see the decision for each individual
                // resource, use ResourceSpecificResults" (EvaluationResult, IAM API reference).
                // Before that, and in our emulator, one result per action and resource.
                let specific = r.resource_specific_results();
                if !specific.is_empty() {
                    for s in specific {
                        out.push((
                            action.clone(),
                            s.eval_resource_name().to_owned(),
                            allowed(s.eval_resource_decision()),
                        ));
                    }
                } else if let [only] = resources {
                    out.push((action, (*only).to_owned(), allowed(r.eval_decision())));
                } else if let Some(resource) = r.eval_resource_name() {
                    out.push((action, resource.to_owned(), allowed(r.eval_decision())));
                }
            }
        }
        Ok(out)
    }
}

// The emulator answers one result per action and resource, as IAM once did; IAM now answers one
// per action with each resource's decision inside: that shape is tested against mocked answers.
#[cfg(test)]
mod tests {
    use aws_sdk_iam::operation::simulate_principal_policy::SimulatePrincipalPolicyOutput;
    use aws_sdk_iam::types::{EvaluationResult, PolicyEvaluationDecisionType as D, ResourceSpecificResult};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    fn need(action: &'static str, resource: &str) -> Need {
        Need { action, resource: resource.into(), context: Vec::new() }
    }

    #[tokio::test]
    async fn a_fleets_needs_are_one_simulation_read_per_resource_from_iams_aggregated_answer() {
        let (a, b, c) =
            ("arn:aws:rds:us-west-2:1:db:a", "arn:aws:rds:us-west-2:1:db:b", "arn:aws:rds:us-west-2:1:db:c");
        let answer = mock!(Client::simulate_principal_policy)
            .match_requests(move |r| r.action_names() == ["rds:PromoteReadReplica"] && r.resource_arns().len() == 3)
            .then_output(move || {
                let each = |r: &str, d: D| {
                    ResourceSpecificResult::builder().eval_resource_name(r).eval_resource_decision(d).build().unwrap()
                };
                // The top level is the most restrictive decision of all: it must not be read as each one's.
                let result = EvaluationResult::builder()
                    .eval_action_name("rds:PromoteReadReplica")
                    .eval_resource_name("*")
                    .eval_decision(D::ExplicitDeny)
                    .resource_specific_results(each(a, D::Allowed))
                    .resource_specific_results(each(b, D::ExplicitDeny))
                    .resource_specific_results(each(c, D::Allowed))
                    .build()
                    .unwrap();
                SimulatePrincipalPolicyOutput::builder().evaluation_results(result).build()
            });
        let policies = Policies { client: mock_client!(aws_sdk_iam, RuleMode::MatchAny, [&answer]) };
        let needs =
            [need("rds:PromoteReadReplica", a), need("rds:PromoteReadReplica", b), need("rds:PromoteReadReplica", c)];
        let allowed = policies.allowed("arn:aws:iam::1:role/steps", &needs).await.unwrap();
        assert_eq!(allowed, [true, false, true]);
        assert_eq!(answer.num_calls(), 1, "three databases, one simulation");
    }
}
