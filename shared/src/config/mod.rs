//! The one policy document users write: what Lifeboat protects, where copies go, how long they live.
//!
//! Parsing is strict (`deny_unknown_fields`): a typo in a retention key must fail at init, not
//! silently keep (or delete) snapshots by a default nobody chose.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use crate::arn::{RdsArn, RdsResource};
pub use crate::error::ConfigError;
use crate::snapshot::{tag_value_ok, MANUAL_SNAPSHOT_QUOTA, TAG_DATABASE};

pub mod drill;
pub mod failover;
pub mod validate;
pub mod vault;

use drill::Drill;
use failover::Failover;
use validate::Validate;
use vault::Vault;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Moved to the stack parameter `NotificationTopicArn`: IAM can only grant `sns:Publish` on a
    /// topic the stack knows, so the topic has one source of truth. Kept here to say so clearly.
    #[serde(default)]
    notifications: Option<serde_yaml_ng::Value>,
    /// The vault every database sends copies to unless it names its own (see `vault.rs`).
    #[serde(default)]
    pub vault: Option<Vault>,
    pub databases: Vec<Database>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    /// How this database fails over (see `failover.rs`); none: Lifeboat only copies and prunes.
    pub failover: Option<Failover>,
    /// Scheduled restore drills (see `drill.rs`); none: never drilled.
    pub drill: Option<Drill>,
    /// Copies kept in another account (see `vault.rs`); the document's `vault` when absent.
    pub vault: Option<Vault>,
    /// Checks inside the recovered database and how to read its newest write (see `validate.rs`);
    /// none: drills and failovers prove the instance, not the data.
    pub validate: Option<Validate>,
    /// Not the user's: set when the database serves elsewhere after a failover (the jobs'
    /// `active::follow`), to the source it moved from, which a failback returns to.
    #[serde(skip)]
    pub moved_from: Option<RdsArn>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyTarget {
    pub region: String,
    /// KMS key ARN in `region`; required to copy encrypted snapshots, as KMS keys are regional.
    pub kms_key: Option<String>,
    /// Option group in `region` for Oracle / SQL Server snapshots with TDE (or other persistent
    /// options): RDS needs one to copy them across regions.
    pub option_group: Option<String>,
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

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    // humantime reads the units people write in runbooks ("5m", "1h", "400d").
    let d =
        humantime::parse_duration(s.trim()).map_err(|e| format!("`{s}` is not a duration like 5m, 1h, 400d: {e}"))?;
    if d.is_zero() {
        return Err(format!("`{s}` must be longer than zero"));
    }
    Ok(d)
}

pub(crate) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

pub(crate) fn de_opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| parse_duration(&s)).transpose().map_err(serde::de::Error::custom)
}

impl Config {
    /// Every problem of a document, not only the first `from_yaml` stops at: each database is
    /// checked on its own (with the document's other sections), then the whole, for what two
    /// databases can only get wrong together (a shared name, source or alarm). For `lifeboat check`.
    pub fn problems(text: &str) -> Vec<String> {
        let Err(first) = Config::from_yaml(text) else { return Vec::new() };
        let doc: Option<serde_yaml_ng::Value> = serde_yaml_ng::from_str(text).ok();
        let Some(databases) = doc.as_ref().and_then(|d| d.get("databases")).and_then(|d| d.as_sequence()) else {
            return vec![first.to_string()];
        };
        let mut out: Vec<String> = Vec::new();
        for (i, db) in databases.iter().enumerate() {
            let mut one = doc.clone().unwrap_or_default();
            one["databases"] = serde_yaml_ng::Value::Sequence(vec![db.clone()]);
            let Ok(text) = serde_yaml_ng::to_string(&one) else { continue };
            if let Err(e) = Config::from_yaml(&text) {
                let said = e.to_string().replace("databases[0]", &format!("databases[{i}]"));
                // Line numbers would point into the one-database copy, not the file.
                let said = said.split(" at line ").next().unwrap_or(&said).to_owned();
                if !out.contains(&said) {
                    out.push(said);
                }
            }
        }
        if out.is_empty() {
            out.push(first.to_string());
        }
        out
    }

    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        // serde_path_to_error names the field ("databases[0].rpo") even for our own parse errors.
        let mut config: Config = serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(text))
            .map_err(|e| ConfigError::Parse(format!("{}: {}", e.path(), e.inner())))?;
        for db in &mut config.databases {
            if db.vault.is_none() {
                db.vault.clone_from(&config.vault);
            }
        }
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: String, why: String| Err(ConfigError::Invalid { field, why });
        if self.notifications.is_some() {
            return invalid(
                "notifications".into(),
                "the topic is now the stack parameter NotificationTopicArn (IAM grants sns:Publish on it); remove this section".into(),
            );
        }
        let mut names = BTreeSet::new();
        let mut sources = BTreeSet::new();
        let mut alarms = BTreeSet::new();
        for (i, db) in self.databases.iter().enumerate() {
            let at = |f: &str| format!("databases[{i}] ({}).{f}", db.name);
            if db.name.trim().is_empty() {
                return invalid(format!("databases[{i}].name"), "must not be empty".into());
            }
            if let Err(why) = tag_value_ok(&db.name) {
                return invalid(at("name"), format!("is the `{TAG_DATABASE}` tag on every copy, so {why}"));
            }
            if !names.insert(db.name.as_str()) {
                return invalid(at("name"), "is used by another database".into());
            }
            if db.source.partition != "aws" {
                return invalid(at("source"), unsupported_partition(&db.source.partition));
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
                // Copies can't leave the partition: China regions copy nowhere else, GovCloud only
                // to GovCloud (and Lifeboat refuses both partitions as sources).
                if ["cn-", "us-gov-", "us-iso"].iter().any(|p| target.region.starts_with(p)) {
                    return invalid(
                        at("region"),
                        format!("{} is outside the aws partition; copies can't go there", target.region),
                    );
                }
                if let Some(key) = &target.kms_key {
                    if let Err(why) = kms_key_arn_ok(key, &target.region) {
                        return invalid(at("kms_key"), why);
                    }
                }
                if target.option_group.is_some() && db.is_cluster() {
                    return invalid(
                        at("option_group"),
                        "applies to DB instance snapshots only; CopyDBClusterSnapshot takes no option group".into(),
                    );
                }
            }
            // Without a failover section a person's request still runs one, with the default
            // approval timeout: its waits must fit the state machine's own timeout too.
            if db.failover.is_none() {
                let worst =
                    failover::default_approval_timeout() + failover::recovery_wait(db.rto) + failover::STEPS_BUDGET;
                if worst > failover::MACHINE_TIMEOUT {
                    return invalid(
                        at("rto"),
                        format!(
                            "a requested failover would wait up to twice the rto ({}s) for the recovery, more than the \
                             failover state machine allows with its other steps: at most {}s",
                            failover::recovery_wait(db.rto).as_secs(),
                            (failover::MACHINE_TIMEOUT - failover::STEPS_BUDGET - failover::default_approval_timeout()).as_secs()
                        ),
                    );
                }
            }
            if let Some(f) = &db.failover {
                if let Some((field, why)) = failover::invalid(db, f) {
                    return invalid(at(&format!("failover.{field}")), why);
                }
                for alarm in &f.triggers.alarms {
                    if !alarms.insert(alarm.as_str()) {
                        return invalid(
                            at("failover.triggers.alarms"),
                            format!("alarm {alarm} already starts another database's failover"),
                        );
                    }
                }
            }
            if let Some((field, why)) = db.drill.as_ref().and_then(|d| drill::invalid(db, d)) {
                return invalid(at(field), why);
            }
            if let Some((field, why)) = db.validate.as_ref().and_then(validate::invalid) {
                return invalid(at(&field), why);
            }
            if db.validate.as_ref().is_some_and(|v| v.connect.data_api) && !db.is_cluster() {
                return invalid(
                    at("validate.connect.data_api"),
                    "the RDS Data API serves Aurora clusters only: connect to an instance directly".into(),
                );
            }
            if let Some((field, why)) = db.vault.as_ref().and_then(|v| vault::invalid(v, &db.source.account)) {
                return invalid(at(&format!("vault.{field}")), why);
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

    /// What is valid but will hurt later, for the log at load.
    pub fn warnings(&self) -> Vec<String> {
        let piling = self
            .databases
            .iter()
            .filter(|db| !db.copy_to.is_empty() && db.retention.as_ref().is_none_or(|r| r.copies.is_none()))
            .map(|db| {
                format!(
                    "{} copies to {} without retention.copies: its copies are never pruned and pile up towards \
                     the quota of {MANUAL_SNAPSHOT_QUOTA} manual snapshots per region",
                    db.name,
                    db.copy_to.iter().map(|t| t.region.as_str()).collect::<Vec<_>>().join(", ")
                )
            });
        // The validator runs where the recovery does: a secret kept only in the failed region
        // can't be read when it is needed most.
        let secret_at_home = self.databases.iter().filter_map(|db| {
            let secret = validate::secret_arn(db.validate.as_ref()?.connect.secret.as_deref()?).ok()?;
            (secret.region == db.source.region).then(|| {
                format!(
                    "{}: validate.connect.secret is in {}, the source's region: a recovery from that region's \
                     outage could not read it; replicate the secret to the recovery regions and name the replica",
                    db.name, secret.region
                )
            })
        });
        piling.chain(secret_at_home).collect()
    }

    /// The source regions and accounts Lifeboat protects: snapshot events from anywhere else are
    /// not Lifeboat's business (EventBridge delivers RDS events in their own region only).
    pub fn protects_snapshots_in(&self, region: &str, account: &str) -> bool {
        self.databases.iter().any(|db| db.source.region == region && db.source.account == account)
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

/// GovCloud needs a presigned URL for cross-region copies and China can't copy across partitions'
/// regions at all; Lifeboat supports neither yet, and says so at load rather than at the first copy.
fn unsupported_partition(partition: &str) -> String {
    format!(
        "partition `{partition}` is not supported yet (only `aws`): cross-region copies in aws-us-gov need a \
         presigned URL and aws-cn does not support them"
    )
}

/// IAM policies (the template's `DrKmsKeyArns`) can name a key only by its key ARN: "You cannot use
/// a key id, alias name, or alias ARN" (KMS developer guide), so an alias here would deploy but
/// every encrypted copy would be denied.
pub(crate) fn kms_key_arn_ok(key: &str, region: &str) -> Result<(), String> {
    let parts: Vec<&str> = key.splitn(6, ':').collect();
    let [arn, partition, service, key_region, account, resource] = parts[..] else {
        return Err(format!("`{key}` is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"));
    };
    if arn != "arn" || service != "kms" {
        return Err(format!("`{key}` is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)"));
    }
    if partition != "aws" {
        return Err(unsupported_partition(partition));
    }
    if key_region != region {
        return Err(format!("key is in {key_region} but the copy goes to {region}; KMS keys are regional"));
    }
    if !crate::arn::is_account_id(account) {
        return Err(format!("`{key}`: account must be 12 digits"));
    }
    match resource.split_once('/') {
        Some(("key", id)) if !id.is_empty() => Ok(()),
        Some(("alias", alias)) => Err(format!(
            "`{key}` is an alias ARN; IAM policies need the key ARN. Find it with: aws kms describe-key \
             --region {region} --key-id alias/{alias} --query KeyMetadata.Arn"
        )),
        _ => Err(format!("`{key}` is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)")),
    }
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Production => "production",
            Tier::NonProduction => "non-production",
        }
    }
}

impl Database {
    /// Who decides a failover, and how: `failover.approval`, or a person by either way when the
    /// database has no failover section.
    pub fn approval(&self) -> failover::ApprovalPolicy {
        self.failover.as_ref().map(|f| f.approval).unwrap_or_default()
    }

    pub fn is_cluster(&self) -> bool {
        self.source.resource == RdsResource::Cluster
    }

    /// Its data checks log in with an RDS IAM token (`validate.connect.iam_user`): what Lifeboat
    /// creates of it (restores, ways back) needs IAM database authentication on.
    pub fn checked_by_iam_token(&self) -> bool {
        self.validate.as_ref().is_some_and(|v| v.connect.iam_user.is_some())
    }

    pub fn snapshot_resource(&self) -> RdsResource {
        if self.is_cluster() {
            RdsResource::ClusterSnapshot
        } else {
            RdsResource::InstanceSnapshot
        }
    }
}

/// Where the document is kept, for how much of it the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// An SSM parameter in the Standard tier (SSM's default).
    SsmStandard,
    /// An SSM parameter in the Advanced tier, which `scripts/deploy.sh` gets by writing
    /// `Intelligent-Tiering`: Standard while the document fits it, Advanced (charged) once not.
    SsmAdvanced,
    /// An S3 object (`LIFEBOAT_CONFIG_OBJECT`, the stack's `ConfigObject`).
    Object,
}

impl Store {
    /// The most bytes of document the store holds. "Standard parameters have a value limit of
    /// 4 KB. Advanced parameters have a value limit of 8 KB." (SSM API reference, PutParameter.)
    /// SSM's own refusal counts "4096 characters"; bytes are never fewer than characters, so
    /// counting UTF-8 bytes never lets through what either reading refuses (the same for the
    /// ASCII YAML people write). S3 takes objects up to 5 TB; `OBJECT_MAX_BYTES` is Lifeboat's.
    pub const fn limit(self) -> usize {
        match self {
            Store::SsmStandard => 4096,
            Store::SsmAdvanced => 8192,
            Store::Object => OBJECT_MAX_BYTES,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Store::SsmStandard => "ssm-standard",
            Store::SsmAdvanced => "ssm-advanced",
            Store::Object => "s3",
        }
    }
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let limit = thousands(self.limit());
        match self {
            Store::SsmStandard => write!(f, "an SSM parameter, Standard tier ({limit} bytes)"),
            Store::SsmAdvanced => write!(f, "an SSM parameter, Advanced tier ({limit} bytes)"),
            Store::Object => write!(f, "an S3 object (Lifeboat reads up to {limit} bytes)"),
        }
    }
}

/// Lifeboat's own bound on a document: each function holds the text and its parse in its 256 MB
/// and parses it again after every edit. About 8,300 databases like the example's (505 bytes
/// each), past the 1,000 one stack's scheduled runs are built to serve (issue 30).
pub const OBJECT_MAX_BYTES: usize = 4 * 1024 * 1024;

/// Whether a document of `bytes` fits `store`; if not, the one line that says so, names the limit
/// and the way out.
pub fn store_limit(bytes: usize, store: Store) -> Result<(), String> {
    if bytes <= store.limit() {
        return Ok(());
    }
    let limit = thousands(store.limit());
    let to_s3 = "store it in S3 (LIFEBOAT_CONFIG_OBJECT / the stack's ConfigObject)";
    let (holds, way_out) = match store {
        Store::SsmStandard => (
            format!("an SSM parameter holds {limit} (Standard)"),
            format!("use the Advanced tier ({}) or {to_s3}", thousands(Store::SsmAdvanced.limit())),
        ),
        Store::SsmAdvanced => (format!("an SSM parameter holds {limit} (Advanced)"), to_s3.to_owned()),
        Store::Object => (
            format!("Lifeboat reads at most {limit}"),
            "split the fleet between stacks, each with its own document".to_owned(),
        ),
    };
    Err(format!("the document is {} bytes; {holds}: {way_out}", thousands(bytes)))
}

/// `37412` as people read it: `37,412`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../../examples/lifeboat.yaml");

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
    fn a_maintenance_endpoint_needs_the_endpoint_parameter_it_goes_into() {
        let failover = "    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:123456789012:db:orders-r\n      approval: required\n";
        let e = err_of(&format!("{DB}{failover}      maintenance_endpoint: maintenance.orders.internal\n"));
        assert!(e.contains("maintenance_endpoint") && e.contains("needs endpoint_parameter"), "{e}");
        let ok = format!(
            "{DB}{failover}      endpoint_parameter: /orders/endpoint\n      maintenance_endpoint: maintenance.orders.internal\n"
        );
        let c = Config::from_yaml(&ok).unwrap();
        let f = c.databases[0].failover.as_ref().unwrap();
        assert_eq!(f.maintenance_endpoint.as_deref(), Some("maintenance.orders.internal"));
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
    fn a_kms_alias_is_refused_with_the_command_that_finds_its_key_arn() {
        let e = err_of(&format!(
            "{DB}    copy_to:\n      - region: us-west-2\n        kms_key: arn:aws:kms:us-west-2:123456789012:alias/lifeboat-dr\n"
        ));
        assert!(e.contains("copy_to[0].kms_key") && e.contains("alias ARN"), "{e}");
        assert!(e.contains("describe-key --region us-west-2 --key-id alias/lifeboat-dr"), "{e}");
        for bad in ["1f2e3d4c-0000-4000-8000-000000000001", "alias/lifeboat-dr", "arn:aws:kms:us-west-2:123:key/k"] {
            let e = err_of(&format!("{DB}    copy_to:\n      - region: us-west-2\n        kms_key: {bad}\n"));
            assert!(e.contains("kms_key"), "{bad}: {e}");
        }
    }

    #[test]
    fn partitions_other_than_aws_are_refused_at_load() {
        let e = err_of(&DB.replace("arn:aws:rds:us-east-1", "arn:aws-us-gov:rds:us-gov-west-1"));
        assert!(e.contains("source") && e.contains("aws-us-gov") && e.contains("presigned"), "{e}");
        let e = err_of(&DB.replace("arn:aws:rds:us-east-1", "arn:aws-cn:rds:cn-north-1"));
        assert!(e.contains("aws-cn"), "{e}");
        let e = err_of(&format!("{DB}    copy_to:\n      - region: cn-north-1\n"));
        assert!(e.contains("copy_to[0].region") && e.contains("partition"), "{e}");
    }

    #[test]
    fn names_rds_would_refuse_as_a_tag_value_are_config_errors() {
        let e = err_of(&DB.replace("name: orders", "name: \"orders#prod\""));
        assert!(e.contains("name") && e.contains("lifeboat:database") && e.contains('#'), "{e}");
        let long = "o".repeat(257);
        let e = err_of(&DB.replace("name: orders", &format!("name: {long}")));
        assert!(e.contains("256"), "{e}");
        let e = err_of(&DB.replace("name: orders", "name: \"rds:orders\""));
        assert!(e.contains("rds:"), "{e}");
        assert!(Config::from_yaml(&DB.replace("name: orders", "name: orders prod/eu@2")).is_ok());
    }

    #[test]
    fn the_topic_moved_to_the_stack_and_the_old_section_says_so() {
        let e = err_of(&format!("notifications:\n  topic_arn: arn:aws:sns:us-east-1:123456789012:t\n{DB}"));
        assert!(e.contains("NotificationTopicArn"), "{e}");
    }

    #[test]
    fn option_groups_are_for_instance_snapshots_only() {
        let with = |src: &str| {
            format!(
                "{}    copy_to:\n      - {{ region: us-west-2, option_group: tde-dr }}\n",
                DB.replace(":db:orders", src)
            )
        };
        let c = Config::from_yaml(&with(":db:orders")).unwrap();
        assert_eq!(c.databases[0].copy_to[0].option_group.as_deref(), Some("tde-dr"));
        let e = err_of(&with(":cluster:orders"));
        assert!(e.contains("option_group"), "{e}");
    }

    #[test]
    fn copies_without_a_copies_policy_are_flagged_at_load() {
        let c = Config::from_yaml(&format!("{DB}    copy_to:\n      - region: us-west-2\n")).unwrap();
        let w = c.warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("orders") && w[0].contains("us-west-2") && w[0].contains("100"), "{w:?}");
        let pruned = format!(
            "{DB}    copy_to:\n      - region: us-west-2\n    retention:\n      copies: {{ daily: 7, min_keep: 2 }}\n"
        );
        assert!(Config::from_yaml(&pruned).unwrap().warnings().is_empty());
        assert!(Config::from_yaml(DB).unwrap().warnings().is_empty(), "no copies, nothing to pile up");
    }

    #[test]
    fn copy_to_source_region_is_rejected() {
        let e = err_of(&format!("{DB}    copy_to:\n      - region: us-east-1\n"));
        assert!(e.contains("copy_to[0].region"), "{e}");
    }

    #[test]
    fn problems_lists_every_database_s_own_and_a_shared_one() {
        let example = include_str!("../../../examples/lifeboat.yaml");
        assert!(Config::problems(example).is_empty());
        let two = example.replacen("rpo: 5m", "rpo: soon", 1).replacen("rto: ", "rto: -", 3);
        let said = Config::problems(&two);
        assert!(said.len() >= 2, "{said:?}");
        assert!(said[0].contains("databases[0]") && said[0].contains("rpo"), "{said:?}");
        assert!(said.iter().any(|p| p.contains("databases[1]")), "{said:?}");
        let shared = example.replace("name: reporting-staging", "name: orders-prod");
        let said = Config::problems(&shared);
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("used by another database"), "{said:?}");
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

    const VAULT: &str = "vault:\n  account: \"210987654321\"\n  region: us-west-2\n  share_key: arn:aws:kms:us-west-2:123456789012:key/share\n  retention: 35d\n";

    #[test]
    fn the_document_s_vault_is_every_database_s_unless_it_names_its_own() {
        let two = format!(
            "{VAULT}{DB}{}",
            &DB["databases:\n".len()..].replace(":db:orders", ":db:other").replace("name: orders", "name: other")
        );
        let c = Config::from_yaml(&two).unwrap();
        assert!(c.databases.iter().all(|d| d.vault.as_ref().is_some_and(|v| v.account == "210987654321")));
        assert_eq!(c.databases[0].vault.as_ref().unwrap().frequency, vault::Frequency::EverySnapshot);
        let own = format!(
            "{DB}    vault: {{ account: \"210987654322\", region: eu-west-1, share_key: \"arn:aws:kms:eu-west-1:123456789012:key/k\", retention: 90d, frequency: 24h }}\n"
        );
        let c = Config::from_yaml(&format!("{VAULT}{own}")).unwrap();
        let v = c.databases[0].vault.as_ref().unwrap();
        assert_eq!(
            (v.account.as_str(), v.frequency),
            ("210987654322", vault::Frequency::Every(Duration::from_secs(86_400)))
        );
    }

    #[test]
    fn a_vault_must_be_another_account_and_share_with_a_key_of_this_one_in_its_region() {
        let with = |edit: &dyn Fn(&str) -> String| err_of(&format!("{}{DB}", edit(VAULT)));
        let e = with(&|v| v.replace("210987654321", "123456789012"));
        assert!(e.contains("vault.account") && e.contains("same account"), "{e}");
        let e = with(&|v| v.replace("\"210987654321\"", "\"vault\""));
        assert!(e.contains("vault.account") && e.contains("12-digit"), "{e}");
        let e = with(&|v| v.replace("us-west-2:123456789012", "us-west-2:210987654321"));
        assert!(e.contains("vault.share_key") && e.contains("database's account"), "{e}");
        let e = with(&|v| v.replace("kms:us-west-2", "kms:us-east-1"));
        assert!(e.contains("vault.share_key") && e.contains("regional"), "{e}");
        let e = with(&|v| v.replace("retention: 35d", "retention: 1h"));
        assert!(e.contains("vault.retention"), "{e}");
        let e = with(&|v| format!("{v}  frequency: sometimes\n"));
        assert!(e.contains("frequency") && e.contains("every-snapshot"), "{e}");
    }

    #[test]
    fn a_restore_from_the_vault_names_another_account_and_an_instance() {
        let restore = |from: &str, source: &str| {
            format!(
                "{}    copy_to:\n      - {{ region: us-west-2, kms_key: \"arn:aws:kms:us-west-2:123456789012:key/dr\" }}\n    failover:\n      strategy: restore-latest-copy\n      approval: required\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr, from_vault: \"{from}\" }}\n",
                DB.replace(":db:orders", source)
            )
        };
        assert!(Config::from_yaml(&restore("210987654321", ":db:orders")).is_ok());
        let e = err_of(&restore("123456789012", ":db:orders"));
        assert!(e.contains("from_vault") && e.contains("own account"), "{e}");
        let e = err_of(&restore("vault", ":db:orders"));
        assert!(e.contains("from_vault") && e.contains("12-digit"), "{e}");
        let e = err_of(&restore("210987654321", ":cluster:orders"));
        assert!(e.contains("from_vault") && e.contains("instances"), "{e}");
    }

    /// The ReplicaBroken rule matches DB instance events, and RDS has no DB cluster event for a
    /// replica cluster's broken replication: `replica_events` on an Aurora database is refused
    /// (saying why), and still accepted for a DB instance's read replica.
    #[test]
    fn replica_events_are_refused_for_a_cluster_database() {
        let with = |source: &str, target: &str, triggers: &str| {
            format!(
                "{}    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:123456789012:{target}\n      approval: required\n      triggers: {{ {triggers} }}\n",
                DB.replace(":db:orders", source)
            )
        };
        let e = err_of(&with(":cluster:orders", "cluster:orders-west", "replica_events: true"));
        assert!(e.contains("failover.triggers.replica_events"), "{e}");
        assert!(e.contains("DB instance") && e.contains("RDS-EVENT-0045") && e.contains("probe"), "{e}");
        assert!(Config::from_yaml(&with(":cluster:orders", "cluster:orders-west", "probe: 5m")).is_ok());
        assert!(Config::from_yaml(&with(":db:orders", "db:orders-replica", "replica_events: true")).is_ok());
    }

    /// RDS copies a shared encrypted snapshot only with a KmsKeyId (CopyDBSnapshot): a restore from
    /// the vault without the DR key of the region it restores in is refused at load, not after the
    /// approval.
    #[test]
    fn a_restore_from_the_vault_needs_the_dr_key_of_its_region() {
        let restore = |copy_to: &str, region: &str| {
            format!(
                "{DB}    copy_to:\n{copy_to}    failover:\n      strategy: restore-latest-copy\n      approval: required\n      restore: {{ instance_class: db.t3.micro, subnet_group: dr, from_vault: \"210987654321\"{region} }}\n"
            )
        };
        let keyed = |r: &str| format!("      - {{ region: {r}, kms_key: \"arn:aws:kms:{r}:123456789012:key/dr\" }}\n");
        let bare = |r: &str| format!("      - {{ region: {r} }}\n");
        let e = err_of(&restore(&bare("us-west-2"), ""));
        assert!(e.contains("failover.restore.from_vault"), "{e}");
        assert!(e.contains("copy_to[0].kms_key") && e.contains("us-west-2") && e.contains("KmsKeyId"), "{e}");
        assert!(Config::from_yaml(&restore(&keyed("us-west-2"), "")).is_ok());
        // The key that counts is the restore region's, not any other copy_to's.
        let two = format!("{}{}", keyed("eu-west-1"), bare("us-west-2"));
        let e = err_of(&restore(&two, ", region: us-west-2"));
        assert!(e.contains("copy_to[1].kms_key") && e.contains("us-west-2"), "{e}");
        assert!(Config::from_yaml(&restore(&two, ", region: eu-west-1")).is_ok());
        // A restore from this account's own DR copies needs no key to restore an unencrypted one.
        let own = restore(&bare("us-west-2"), "").replace(", from_vault: \"210987654321\"", "");
        assert!(Config::from_yaml(&own).is_ok());
    }

    const VALIDATE: &str = "    validate:\n      connect: { secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-validator-Ab12\", database: orders }\n      checks:\n        - { name: users exist, sql: \"select count(*) from users\", expect: \">= 1000\" }\n        - { name: no orphans, sql: \"select count(*) from orders o left join users u on u.id = o.user_id where u.id is null\", expect: \"= 0\" }\n      freshness: \"select max(updated_at) from orders\"\n      heartbeat: { secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-heartbeat-Cd34\" }\n";

    #[test]
    fn a_validate_section_parses_with_its_defaults() {
        let c = Config::from_yaml(&format!("{DB}{VALIDATE}")).unwrap();
        let v = c.databases[0].validate.as_ref().unwrap();
        assert_eq!(v.connect.database, "orders");
        assert_eq!(v.timeout, Duration::from_secs(30));
        assert_eq!(v.checks[0].expect, validate::Expect { op: validate::Op::Ge, value: 1000.0 });
        assert_eq!(v.checks[1].expect.to_string(), "= 0");
        assert_eq!(
            v.statements(),
            [
                v.checks[0].sql.as_str(),
                &v.checks[1].sql,
                "select max(updated_at) from orders",
                validate::HEARTBEAT_READ
            ]
        );
        assert!(Config::from_yaml(DB).unwrap().databases[0].validate.is_none());
    }

    #[test]
    fn each_mistake_in_validate_names_its_field() {
        let with = |from: &str, to: &str| err_of(&format!("{DB}{}", VALIDATE.replace(from, to)));
        let cases = [
            ("\">= 1000\"", "\"at least 1000\"", "validate.checks[0].expect"),
            ("\">= 1000\"", "\"== 1000\"", "validate.checks[0].expect"),
            ("\"= 0\"", "0", "validate.checks[1].expect"),
            ("name: no orphans", "name: users exist", "validate.checks[1].name"),
            ("name: no orphans", "name: \" \"", "validate.checks[1].name"),
            ("sql: \"select count(*) from users\"", "sql: \"\"", "validate.checks[0].sql"),
            ("lifeboat-validator-Ab12", "", "validate.connect.secret"),
            ("secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-validator", "secret: \"lifeboat-validator", "validate.connect.secret"),
            ("database: orders", "database: \"\"", "validate.connect.database"),
            ("lifeboat-heartbeat-Cd34", "lifeboat-validator-Ab12", "validate.heartbeat.secret"),
            ("heartbeat: { secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-heartbeat-Cd34\" }", "heartbeat: true", "heartbeat"),
            ("freshness: \"select max(updated_at) from orders\"", "freshness: \"\"", "validate.freshness"),
            ("      freshness:", "      timeout: 0.5s\n      freshness:", "validate.timeout"),
            ("      freshness:", "      timeout: 6m\n      freshness:", "validate.timeout"),
            ("      freshness:", "      timeout: 4m\n      freshness:", "validate.timeout"),
            ("      freshness:", "      retries: 3\n      freshness:", "retries"),
            ("database: orders }", "database: orders, data_api: true }", "validate.connect.data_api"),
        ];
        for (from, to, field) in cases {
            let e = with(from, to);
            assert!(e.contains(field) && e.contains("databases[0]"), "{to}: {e}");
        }
        assert!(with("\">= 1000\"", "\"== 1000\"").contains("=, !=, <, <=, >, >="));
        assert!(with("\"= 0\"", "0").contains("write \"= 0\""));
        assert!(with("lifeboat-heartbeat-Cd34", "lifeboat-validator-Ab12").contains("its own user"));
        assert!(with("      freshness:", "      timeout: 4m\n      freshness:").contains("15 minutes"));
        assert!(with("database: orders }", "database: orders, data_api: true }").contains("Aurora clusters only"));
        let over_api = VALIDATE.replace("database: orders }", "database: orders, data_api: true }");
        let cluster = Config::from_yaml(&format!("{}{over_api}", DB.replace(":db:orders", ":cluster:orders"))).unwrap();
        assert!(cluster.databases[0].validate.as_ref().is_some_and(|v| v.connect.data_api));
        // An IAM token instead of a secret: one of the two, a real user name, not over the Data API.
        let secret = "secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-validator-Ab12\"";
        let iam = VALIDATE.replace(secret, "iam_user: lifeboat_validator");
        let by_token = Config::from_yaml(&format!("{DB}{iam}")).unwrap();
        // The longest name the config takes: MySQL's 32 characters.
        let longest = format!("l{}", "_".repeat(31));
        assert!(Config::from_yaml(&format!("{DB}{}", iam.replace("lifeboat_validator", &longest))).is_ok());
        let connect = &by_token.databases[0].validate.as_ref().unwrap().connect;
        assert_eq!((connect.secret.as_deref(), connect.iam_user.as_deref()), (None, Some("lifeboat_validator")));
        for (to, field, says) in [
            (format!("{secret}, iam_user: lifeboat_validator"), "validate.connect", "both"),
            (String::new(), "validate.connect", "no login"),
            ("iam_user: \"lifeboat-validator\"".into(), "validate.connect.iam_user", "not a database user name"),
            ("iam_user: 1st".into(), "validate.connect.iam_user", "not a database user name"),
            ("iam_user: Lifeboat_validator".into(), "validate.connect.iam_user", "lower-case"),
            (format!("iam_user: l{}", "_".repeat(32)), "validate.connect.iam_user", "32 at most"),
            ("iam_user: lifeboat_validator, data_api: true".into(), "validate.connect.data_api", "Secrets Manager"),
        ] {
            let e = err_of(&format!(
                "{DB}{}",
                VALIDATE.replace(&format!("{secret}, "), format!("{to}, ").trim_start_matches(", "))
            ));
            assert!(e.contains(field) && e.contains(says), "{to}: {e}");
        }
        let nothing = format!("{DB}    validate:\n      connect: {{ secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-v\", database: orders }}\n");
        assert!(err_of(&nothing).contains("nothing to check"), "{}", err_of(&nothing));
    }

    #[test]
    fn a_validator_secret_only_in_the_source_region_is_a_warning() {
        let home = VALIDATE.replace(
            "us-west-2:123456789012:secret:lifeboat-validator",
            "us-east-1:123456789012:secret:lifeboat-validator",
        );
        let w = Config::from_yaml(&format!("{DB}{home}")).unwrap().warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("orders") && w[0].contains("us-east-1") && w[0].contains("replicate"), "{w:?}");
        assert!(Config::from_yaml(&format!("{DB}{VALIDATE}")).unwrap().warnings().is_empty());
    }

    #[test]
    fn snapshot_arn_as_source_is_rejected() {
        let e = err_of(&DB.replace(":db:orders", ":snapshot:orders"));
        assert!(e.contains("source"), "{e}");
    }

    #[test]
    fn each_store_holds_up_to_its_limit_and_past_it_says_the_limit_and_the_way_out() {
        for (store, limit) in [(Store::SsmStandard, 4096), (Store::SsmAdvanced, 8192), (Store::Object, 4 << 20)] {
            assert_eq!(store_limit(limit, store), Ok(()), "{store:?}");
            assert!(store_limit(limit + 1, store).is_err(), "{store:?}");
        }
        assert_eq!(
            store_limit(37_412, Store::SsmAdvanced).unwrap_err(),
            "the document is 37,412 bytes; an SSM parameter holds 8,192 (Advanced): store it in S3 \
             (LIFEBOAT_CONFIG_OBJECT / the stack's ConfigObject)"
        );
        let standard = store_limit(4097, Store::SsmStandard).unwrap_err();
        assert!(standard.contains("4,097 bytes") && standard.contains("4,096 (Standard)"), "{standard}");
        assert!(
            standard.contains("Advanced tier (8,192)") && standard.contains("LIFEBOAT_CONFIG_OBJECT"),
            "{standard}"
        );
        let object = store_limit(5_000_000, Store::Object).unwrap_err();
        assert!(object.contains("5,000,000 bytes") && object.contains("4,194,304"), "{object}");
    }

    /// The example, three databases, fits the free tier; 1,000 of its entries need S3.
    #[test]
    fn the_example_fits_ssm_standard_and_a_thousand_of_its_databases_only_s3() {
        assert_eq!(store_limit(EXAMPLE.len(), Store::SsmStandard), Ok(()));
        let body = &EXAMPLE[EXAMPLE.find("  - name:").unwrap()..];
        let fleet = format!("databases:\n{}", body.repeat(334));
        assert!(store_limit(fleet.len(), Store::SsmAdvanced).is_err());
        assert_eq!(store_limit(fleet.len(), Store::Object), Ok(()));
    }
}
