//! The one policy document users write: what Lifeboat protects, where copies go, how long they live.
//!
//! Parsing is strict (`deny_unknown_fields`): a typo in a retention key must fail at init, not
//! silently keep (or delete) snapshots by a default nobody chose.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use thiserror::Error;

use crate::arn::{RdsArn, RdsResource};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("config is not valid YAML for Lifeboat: {0}")]
    Parse(String),
    #[error("config field {field}: {why}")]
    Invalid { field: String, why: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub notifications: Notifications,
    pub databases: Vec<Database>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notifications {
    /// SNS topic for run summaries and incident messages. Optional: without it Lifeboat only logs.
    pub topic_arn: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    Production,
    NonProduction,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub name: String,
    #[serde(deserialize_with = "de_arn")]
    pub source: RdsArn,
    pub tier: Tier,
    #[serde(deserialize_with = "de_duration")]
    pub rpo: Duration,
    #[serde(deserialize_with = "de_duration")]
    pub rto: Duration,
    #[serde(default)]
    pub copy_to: Vec<CopyTarget>,
    pub retention: Option<Retention>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyTarget {
    pub region: String,
    /// KMS key ARN in `region`; required to copy encrypted snapshots, as KMS keys are regional.
    pub kms_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Snapshots Lifeboat owns in the source region (manual snapshots tagged `lifeboat:managed=true`).
    pub source: Option<RetentionPolicy>,
    /// Lifeboat's copies in the DR regions.
    pub copies: Option<RetentionPolicy>,
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    #[serde(default)]
    pub daily: u32,
    #[serde(default)]
    pub weekly: u32,
    #[serde(default)]
    pub monthly: u32,
    #[serde(default, deserialize_with = "de_opt_duration")]
    pub max_age: Option<Duration>,
    /// Required on purpose: how many restore points survive any policy is a choice, not a default.
    pub min_keep: u32,
}

fn de_arn<'de, D: Deserializer<'de>>(d: D) -> Result<RdsArn, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map_err(serde::de::Error::custom)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    // humantime reads the units people write in runbooks ("5m", "1h", "400d").
    let d =
        humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a duration like 5m, 1h, 400d: {e}"))?;
    if d.is_zero() {
        return Err(format!("`{s}` must be longer than zero"));
    }
    Ok(d)
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| parse_duration(&s)).transpose().map_err(serde::de::Error::custom)
}

impl Config {
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        // serde_path_to_error names the field ("databases[0].rpo") even for our own parse errors.
        let config: Config = serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text))
            .map_err(|e| ConfigError::Parse(format!("{}: {}", e.path(), e.inner())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, why: String| Err(ConfigError::Invalid { field, why });
        if let Some(topic) = &self.notifications.topic_arn {
            if !topic.starts_with("arn:") || !topic.contains(":sns:") {
                return invalid("notifications.topic_arn".into(), format!("`{topic}` is not an SNS topic ARN"));
            }
        }
        let mut names = BTreeSet::new();
        let mut sources = BTreeSet::new();
        for (i, db) in self.databases.iter().enumerate() {
            let at = |f: &str| format!("databases[{i}] ({}).{f}", db.name);
            if db.name.trim().is_empty() {
                return invalid(format!("databases[{i}].name"), "must not be empty".into());
            }
            if !names.insert(db.name.as_str()) {
                return invalid(at("name"), "is used by another database".into());
            }
            if !matches!(db.source.resource, RdsResource::Instance | RdsResource::Cluster) {
                return invalid(at("source"), "must be a db: or cluster: ARN, not a snapshot".into());
            }
            if !sources.insert(db.source.to_string()) {
                return invalid(at("source"), "is protected twice under different names".into());
            }
            let mut regions = BTreeSet::new();
            for (j, target) in db.copy_to.iter().enumerate() {
                let at = |f: &str| at(&format!("copy_to[{j}].{f}"));
                if target.region == db.source.region {
                    return invalid(
                        at("region"),
                        format!("{} is the source region; a DR copy must leave it", target.region),
                    );
                }
                if !regions.insert(target.region.as_str()) {
                    return invalid(at("region"), format!("{} is listed twice", target.region));
                }
                if let Some(key) = &target.kms_key {
                    let key_region = key.strip_prefix("arn:").and_then(|k| {
                        let mut p = k.split(':');
                        let (_partition, service, region) = (p.next()?, p.next()?, p.next()?);
                        (service == "kms").then_some(region)
                    });
                    match key_region {
                        None => return invalid(at("kms_key"), format!("`{key}` is not a KMS key ARN")),
                        Some(r) if r != target.region => {
                            return invalid(
                                at("kms_key"),
                                format!("key is in {r} but the copy goes to {}; KMS keys are regional", target.region),
                            )
                        }
                        Some(_) => {}
                    }
                }
            }
            if let Some(retention) = &db.retention {
                if retention.copies.is_some() && db.copy_to.is_empty() {
                    return invalid(at("retention.copies"), "is set but the database has no copy_to".into());
                }
                for (scope, policy) in [("source", &retention.source), ("copies", &retention.copies)] {
                    if let Some(p) = policy {
                        if p.daily == 0 && p.weekly == 0 && p.monthly == 0 && p.max_age.is_none() && p.min_keep == 0 {
                            return invalid(
                                at(&format!("retention.{scope}")),
                                "keeps nothing beyond the newest snapshot; set min_keep or daily/weekly/monthly".into(),
                            );
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// The protected database whose source is this instance or cluster, if any.
    pub fn database_for(&self, region: &str, account: &str, resource: RdsResource, id: &str) -> Option<&Database> {
        self.databases.iter().find(|db| {
            db.source.region == region
                && db.source.account == account
                && db.source.resource == resource
                && db.source.id == id
        })
    }

    pub fn database_named(&self, name: &str) -> Option<&Database> {
        self.databases.iter().find(|db| db.name == name)
    }
}

impl Database {
    pub fn is_cluster(&self) -> bool {
        self.source.resource == RdsResource::Cluster
    }

    pub fn snapshot_resource(&self) -> RdsResource {
        if self.is_cluster() {
            RdsResource::ClusterSnapshot
        } else {
            RdsResource::InstanceSnapshot
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/lifeboat.yaml");

    #[test]
    fn example_config_parses() {
        let config = Config::from_yaml(EXAMPLE).unwrap();
        assert!(config.databases.len() >= 2);
        let orders = config.database_named("orders-prod").unwrap();
        assert_eq!(orders.rpo, Duration::from_secs(300));
        assert_eq!(orders.tier, Tier::Production);
        assert_eq!(orders.copy_to[0].region, "us-west-2");
    }

    fn err_of(yaml: &str) -> String {
        Config::from_yaml(yaml).unwrap_err().to_string()
    }

    const DB: &str = "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:123456789012:db:orders\n    tier: production\n    rpo: 5m\n    rto: 30m\n";

    #[test]
    fn unknown_field_is_named() {
        let e = err_of(&format!("{DB}    retenton: {{}}\n"));
        assert!(e.contains("retenton"), "{e}");
    }

    #[test]
    fn bad_duration_is_named() {
        let e = err_of(&DB.replace("rpo: 5m", "rpo: soon"));
        assert!(e.contains("rpo") && e.contains("soon"), "{e}");
    }

    #[test]
    fn kms_key_in_wrong_region_is_rejected() {
        let e = err_of(&format!(
            "{DB}    copy_to:\n      - region: us-west-2\n        kms_key: arn:aws:kms:us-east-1:123456789012:key/k\n"
        ));
        assert!(e.contains("copy_to[0].kms_key") && e.contains("regional"), "{e}");
    }

    #[test]
    fn copy_to_source_region_is_rejected() {
        let e = err_of(&format!("{DB}    copy_to:\n      - region: us-east-1\n"));
        assert!(e.contains("copy_to[0].region"), "{e}");
    }

    #[test]
    fn missing_min_keep_is_an_error_not_a_default() {
        let e = err_of(&format!("{DB}    retention:\n      source: {{ daily: 7 }}\n"));
        assert!(e.contains("min_keep"), "{e}");
    }

    #[test]
    fn duplicate_names_are_rejected() {
        let two = format!("{DB}{}", &DB["databases:\n".len()..].replace(":db:orders", ":db:other"));
        let e = err_of(&two);
        assert!(e.contains("name") && e.contains("another database"), "{e}");
    }

    #[test]
    fn snapshot_arn_as_source_is_rejected() {
        let e = err_of(&DB.replace(":db:orders", ":snapshot:orders"));
        assert!(e.contains("source"), "{e}");
    }
}
