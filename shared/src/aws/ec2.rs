//! EC2, read-only: whether the security groups a restore in the DR region names still exist there
//! (readiness). A restore naming a deleted group is refused.

use aws_config::Region;
use aws_sdk_ec2::types::Filter;
use aws_sdk_ec2::Client;

use super::{sdk_error, SdkConfig};
use crate::error::LifeboatError;

pub struct Network {
    sdk: SdkConfig,
}

impl Network {
    pub fn new(sdk: &SdkConfig) -> Self {
        Network { sdk: sdk.clone() }
    }

    /// Those of `ids` that don't exist in `region`. Asked as a filter, which answers the groups
    /// found, where naming them as GroupIds fails the whole call on the first one missing.
    pub async fn missing_security_groups(&self, region: &str, ids: &[String]) -> Result<Vec<String>, LifeboatError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let conf = aws_sdk_ec2::config::Builder::from(&self.sdk).region(Region::new(region.to_owned())).build();
        let filter = Filter::builder().name("group-id").set_values(Some(ids.to_vec())).build();
        let found = Client::from_conf(conf)
            .describe_security_groups()
            .filters(filter)
            .send()
            .await
            .map_err(|e| sdk_error("ec2:DescribeSecurityGroups", e))?;
        let seen: Vec<&str> = found.security_groups().iter().filter_map(|g| g.group_id()).collect();
        Ok(ids.iter().filter(|id| !seen.contains(&id.as_str())).cloned().collect())
    }
}
