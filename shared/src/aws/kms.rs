//! KMS, read-only: whether a DR key can still be used (readiness). A key pending deletion or
//! disabled fails every copy and restore under it; a key policy that doesn't let the failover's
//! role use it fails the restore.

use aws_config::Region;
use aws_sdk_kms::Client;

use super::{error_code, sdk_error, SdkConfig};
use crate::error::LifeboatError;

pub struct Keys {
    sdk: SdkConfig,
}

impl Keys {
    pub fn new(sdk: &SdkConfig) -> Self {
        Keys { sdk: sdk.clone() }
    }

    /// The key's `KeyState` (Enabled, Disabled, PendingDeletion, ...), or None when it is gone.
    pub async fn state(&self, region: &str, key_arn: &str) -> Result<Option<String>, LifeboatError> {
        let conf = aws_sdk_kms::config::Builder::from(&self.sdk).region(Region::new(region.to_owned())).build();
        match Client::from_conf(conf).describe_key().key_id(key_arn).send().await {
            Ok(out) => Ok(out.key_metadata().and_then(|m| m.key_state()).map(|s| s.as_str().to_owned())),
            Err(e) if error_code(&e) == Some("NotFoundException") => Ok(None),
            Err(e) => Err(sdk_error("kms:DescribeKey", e)),
        }
    }

    /// The key's policy (GetKeyPolicy; "default" is a key's one policy name), or None when the
    /// key is gone or unusable. KMS lets an IAM policy allow a use of the key only where this policy says so.
    pub async fn policy(&self, region: &str, key_arn: &str) -> Result<Option<String>, LifeboatError> {
        let conf = aws_sdk_kms::config::Builder::from(&self.sdk).region(Region::new(region.to_owned())).build();
        match Client::from_conf(conf).get_key_policy().key_id(key_arn).policy_name("default").send().await {
            Ok(out) => Ok(out.policy().map(str::to_owned)),
            // Gone, or in a state the dr-key check reports: nothing to judge here.
            Err(e) if matches!(error_code(&e), Some("NotFoundException" | "KMSInvalidStateException")) => Ok(None),
            Err(e) => Err(sdk_error("kms:GetKeyPolicy", e)),
        }
    }
}
