//! The `vault` section: copies kept in another account, for the day this one is lost or
//! compromised. Plain data; what to send and when is `vault`'s.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{de_duration, kms_key_arn_ok};

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vault {
    /// The vault account's id: the only account a snapshot is ever shared with.
    pub account: String,
    /// Where the vault keeps its copies. Aurora copies a shared cluster snapshot only within its
    /// region, so Lifeboat makes its transit copy here, in this account, before sharing it.
    pub region: String,
    /// A customer managed key of THIS account in `region` whose key policy lets the vault account
    /// use it (kms:DescribeKey, kms:CreateGrant, kms:Decrypt): the transit copy is encrypted with
    /// it, because RDS won't share a snapshot under the AWS managed `aws/rds` key. The vault's own
    /// key is the vault stack's parameter, never named here: a source that could choose the vault's
    /// key could choose one an attacker controls.
    pub share_key: String,
    /// How long the vault keeps each copy. The vault stack's MinimumRetentionDays is its floor, a
    /// lock this account can't lower.
    #[serde(deserialize_with = "de_duration")]
    pub retention: Duration,
    /// `every-snapshot`, or a duration: at most one snapshot per that window goes to the vault.
    #[serde(default, deserialize_with = "de_frequency")]
    pub frequency: Frequency,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Frequency {
    #[default]
    EverySnapshot,
    Every(Duration),
}

fn de_frequency<'de, D: Deserializer<'de>>(d: D) -> Result<Frequency, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim() == "every-snapshot" {
        return Ok(Frequency::EverySnapshot);
    }
    super::parse_duration(&s)
        .map(Frequency::Every)
        .map_err(|e| serde::de::Error::custom(format!("{e}, or every-snapshot")))
}

/// Why a vault section can't work, as (field, why).
pub fn invalid(v: &Vault, source_account: &str) -> Option<(&'static str, String)> {
    if !crate::arn::is_account_id(&v.account) {
        return Some(("account", format!("`{}` is not a 12-digit account id", v.account)));
    }
    if v.account == source_account {
        return Some(("account", "is the database's own account: a vault in the same account falls with it".into()));
    }
    if ["cn-", "us-gov-", "us-iso"].iter().any(|p| v.region.starts_with(p)) {
        return Some(("region", format!("{} is outside the aws partition; copies can't go there", v.region)));
    }
    if let Err(why) = kms_key_arn_ok(&v.share_key, &v.region) {
        return Some(("share_key", why));
    }
    if v.share_key.split(':').nth(4) != Some(source_account) {
        return Some((
            "share_key",
            format!("must be a key of the database's account {source_account}: this account copies with it"),
        ));
    }
    if v.retention < Duration::from_secs(86_400) {
        return Some(("retention", "must be at least a day".into()));
    }
    None
}
