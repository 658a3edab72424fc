//! Route 53 ARC routing controls: move traffic through Route 53's data plane. The controls live
//! on a cluster with five regional endpoints; AWS asks callers to try them in turn, since any one
//! may be unavailable (and, on the day Lifeboat is for, one may be in the failing region).

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::Region;
use aws_sdk_route53recoverycluster::types::{RoutingControlState, UpdateRoutingControlStateEntry};
use aws_sdk_route53recoverycluster::{config, Client};
use tracing::warn;

use super::{sdk_error, SdkConfig};
use crate::config::failover::{ClusterEndpoint, Dns};
use crate::error::LifeboatError;

pub struct RoutingControls {
    sdk: SdkConfig,
}

/// What the cluster said, and which endpoint said it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct States {
    pub on: String,
    pub off: String,
    pub region: String,
}

impl RoutingControls {
    pub fn new(sdk: &SdkConfig) -> Self {
        RoutingControls { sdk: sdk.clone() }
    }

    /// One client per endpoint, signed for its region. Trying the next endpoint is the retry, so
    /// each gets two attempts and a short deadline rather than the SDK's usual five.
    fn client(&self, at: &ClusterEndpoint) -> Client {
        let conf = config::Builder::from(&self.sdk)
            .endpoint_url(&at.url)
            .region(Region::new(at.region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(8))
                    .build(),
            )
            .build();
        Client::from_conf(conf)
    }

    /// Turn `on` On and `off` Off in one `UpdateRoutingControlStates` (a safety rule sees both
    /// changes at once), at the first endpoint that answers, in the order `Dns::endpoints_in_order`
    /// gives. Setting a state it already has is harmless, so a retry is too. Returns the region
    /// of the endpoint that did it.
    pub async fn flip(&self, d: &Dns, first: &str, last: &str) -> Result<String, LifeboatError> {
        let Some(rc) = &d.routing_controls else {
            return Err(LifeboatError::Rejected("dns has no routing_controls".into()));
        };
        let entry = |arn: &str, state: RoutingControlState| {
            UpdateRoutingControlStateEntry::builder()
                .routing_control_arn(arn)
                .routing_control_state(state)
                .build()
                .map_err(|e| LifeboatError::Rejected(e.to_string()))
        };
        let entries = vec![entry(&rc.on, RoutingControlState::On)?, entry(&rc.off, RoutingControlState::Off)?];
        self.rotate(d, first, last, |client| {
            let entries = entries.clone();
            async move {
                client
                    .update_routing_control_states()
                    .set_update_routing_control_state_entries(Some(entries))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| sdk_error("route53-recovery-cluster:UpdateRoutingControlStates", e))
            }
        })
        .await
        .map(|((), region)| region)
    }

    /// Both controls' states, read at the first endpoint that answers.
    pub async fn states(&self, d: &Dns, first: &str, last: &str) -> Result<States, LifeboatError> {
        let Some(rc) = &d.routing_controls else {
            return Err(LifeboatError::Rejected("dns has no routing_controls".into()));
        };
        let ((on, off), region) = self
            .rotate(d, first, last, |client| async move {
                let read = |arn: String| {
                    let client = client.clone();
                    async move {
                        client
                            .get_routing_control_state()
                            .routing_control_arn(arn)
                            .send()
                            .await
                            .map(|o| o.routing_control_state().as_str().to_owned())
                            .map_err(|e| sdk_error("route53-recovery-cluster:GetRoutingControlState", e))
                    }
                };
                Ok((read(rc.on.clone()).await?, read(rc.off.clone()).await?))
            })
            .await?;
        Ok(States { on, off, region })
    }

    /// `call` at each endpoint in turn until one answers; an endpoint's refusal that another
    /// wouldn't change (a safety rule, a missing control, no permission) ends the rotation.
    async fn rotate<T, F, Fut>(&self, d: &Dns, first: &str, last: &str, call: F) -> Result<(T, String), LifeboatError>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, LifeboatError>>,
    {
        let mut tried = Vec::new();
        for at in d.endpoints_in_order(first, last) {
            match call(self.client(at)).await {
                Ok(v) => return Ok((v, at.region.clone())),
                Err(e) if e.is_retryable() || e.to_string().contains("EndpointTemporarilyUnavailable") => {
                    warn!(region = %at.region, error = %e, "ARC cluster endpoint did not answer; trying the next");
                    tried.push(format!("{}: {e}", at.region));
                }
                Err(e) => return Err(e),
            }
        }
        Err(LifeboatError::Transient(format!("no ARC cluster endpoint answered ({})", tried.join("; "))))
    }
}
