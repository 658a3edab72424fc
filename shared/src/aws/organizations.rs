//! AWS Organizations, read-only: is the vault's guardrail SCP attached above the vault account,
//! and what does it say now? Organizations API reference (ListPoliciesForTarget, ListParents,
//! DescribePolicy): "This operation can be called only from the organization's management account
//! or by a member account that is a delegated administrator." A vault account reads them through
//! the delegation infra/vault-guardrail.yaml grants it; without it, the answer is "not known".

use std::collections::BTreeSet;

use aws_sdk_organizations::types::{ParentType, PolicyType};
use aws_sdk_organizations::Client;

use super::{sdk_error, SdkConfig};
use crate::error::LifeboatError;
use crate::vault::GuardrailFacts;

/// How many OU levels Organizations allows under a root (five), plus the root and the account.
const MAX_DEPTH: usize = 7;

pub struct Organizations {
    client: Client,
}

impl Organizations {
    pub fn new(sdk: &SdkConfig) -> Self {
        Organizations { client: Client::new(sdk) }
    }

    /// The management account, every SCP attached to `account` or above it (SCPs inherit down
    /// the tree: `ListPoliciesForTarget` lists only direct attachments), and `policy_id`'s document.
    pub async fn guardrail_facts(&self, account: &str, policy_id: &str) -> Result<GuardrailFacts, LifeboatError> {
        let org = self
            .client
            .describe_organization()
            .send()
            .await
            .map_err(|e| sdk_error("organizations:DescribeOrganization", e))?;
        let management_account = org.organization().and_then(|o| o.master_account_id()).unwrap_or_default().to_owned();
        let mut attached = BTreeSet::new();
        let (mut target, mut at_root) = (account.to_owned(), false);
        for _ in 0..MAX_DEPTH {
            attached.extend(self.scps(&target).await?);
            if at_root {
                break;
            }
            let parents = self
                .client
                .list_parents()
                .child_id(&target)
                .send()
                .await
                .map_err(|e| sdk_error("organizations:ListParents", e))?;
            let Some(parent) = parents.parents().first() else { break };
            at_root = parent.r#type() == Some(&ParentType::Root);
            target = parent.id().unwrap_or_default().to_owned();
        }
        let content = match self.client.describe_policy().policy_id(policy_id).send().await {
            Ok(p) => p.policy().and_then(|p| p.content()).map(str::to_owned),
            Err(e) if super::error_code(&e) == Some("PolicyNotFoundException") => None,
            Err(e) => return Err(sdk_error("organizations:DescribePolicy", e)),
        };
        Ok(GuardrailFacts { management_account, attached, content })
    }

    /// The SCPs attached directly to `target` (an account, OU or root), every page.
    async fn scps(&self, target: &str) -> Result<Vec<String>, LifeboatError> {
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list_policies_for_target()
                .target_id(target)
                .filter(PolicyType::ServiceControlPolicy)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error("organizations:ListPoliciesForTarget", e))?;
            out.extend(page.policies().iter().filter_map(|p| p.id()).map(str::to_owned));
            token = page.next_token().map(str::to_owned);
            if token.is_none() {
                return Ok(out);
            }
        }
    }
}
