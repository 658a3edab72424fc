//! What Lifeboat knows about a snapshot, as the adapters read it from RDS.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};

use crate::arn::RdsArn;

/// `lifeboat:managed=true` marks what Lifeboat may delete: its own copies, and manual snapshots a
/// user hands over for retention. Nothing without it is ever deleted.
pub const TAG_MANAGED: &str = "lifeboat:managed";
pub const TAG_DATABASE: &str = "lifeboat:database";
/// Present only on Lifeboat's copies: the snapshot they were copied from.
pub const TAG_SOURCE_ARN: &str = "lifeboat:source-arn";
/// On a copy: when its source was taken. RDS reports `OriginalSnapshotCreateTime` for DB snapshot
/// copies but nothing like it for cluster snapshot copies, and retention needs the restore point.
pub const TAG_SOURCE_CREATED: &str = "lifeboat:source-created";
/// On a transit copy (this account's copy, shared with the vault): the vault account's id. Not a
/// DR copy and not a source: only the vault path touches it.
pub const TAG_VAULT_TRANSIT: &str = "lifeboat:vault-transit";
/// On a transit copy: the snapshot it carries to the vault.
pub const TAG_VAULT_SOURCE: &str = "lifeboat:vault-source-arn";
/// On a source snapshot the vault holds a copy of: that copy's ARN, set once the vault says so.
pub const TAG_VAULTED: &str = "lifeboat:vaulted";
/// On a vault copy: `<account>/<database identifier>` it restores, the same whoever names it.
pub const TAG_SOURCE_DATABASE: &str = "lifeboat:source-database";
/// On a vault copy: the day (RFC 3339) before which the vault keeps it, as the source asked,
/// never earlier than the vault's own lock.
pub const TAG_RETAIN_UNTIL: &str = "lifeboat:retain-until";
const TAG_PREFIX: &str = "lifeboat:";
/// RDS tag values: "up to 256 Unicode characters", matching `^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$`.
pub const MAX_TAG_VALUE: usize = 256;
/// RDS's default quota of manual snapshots per region, for instance and for cluster snapshots alike.
pub const MANUAL_SNAPSHOT_QUOTA: usize = 100;
/// RDS ends a copy it could not finish (often a KMS key policy problem) in this status.
pub const FAILED: &str = "failed";

/// Snapshots as listed once per region, keyed by region.
pub type RegionListings = BTreeMap<String, Vec<Snapshot>>;

/// A moment as Lifeboat's tags hold it (`lifeboat:source-created`, `lifeboat:retain-until`).
pub fn tag_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Whether RDS would take `value` as a tag value; the error says why not.
pub fn tag_value_ok(value: &str) -> Result<(), String> {
    if value.chars().count() > MAX_TAG_VALUE {
        return Err(format!("it must be at most {MAX_TAG_VALUE} characters (RDS tag values)"));
    }
    if value.starts_with("aws:") || value.starts_with("rds:") {
        return Err("it must not start with aws: or rds: (reserved in RDS tag values)".into());
    }
    // \p{L} and \p{N} are alphanumeric; \p{Z} are the space separators.
    let allowed = |c: char| c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c);
    match value.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(format!("`{c}` is not allowed (RDS tag values take letters, digits, spaces and _.:/=+-@)")),
        None => Ok(()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotType {
    Automated,
    Manual,
    /// Made by AWS Backup: only AWS Backup may delete it.
    AwsBackup,
    /// Shared, public, or a type RDS adds later: never ours.
    Other,
}

impl SnapshotType {
    pub fn parse(s: &str) -> Self {
        match s {
            "automated" => SnapshotType::Automated,
            "manual" => SnapshotType::Manual,
            "awsbackup" => SnapshotType::AwsBackup,
            _ => SnapshotType::Other,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub arn: RdsArn,
    /// DBInstanceIdentifier or DBClusterIdentifier of the database it was taken from.
    pub database_id: String,
    pub snapshot_type: SnapshotType,
    /// RDS status string: `available`, `creating`, `copying`, `pending`, `failed`, …
    pub status: String,
    /// When this snapshot (or this copy) was made.
    pub created: Option<DateTime<Utc>>,
    /// For a copy, when the original was taken: the restore point it holds.
    pub original_created: Option<DateTime<Utc>>,
    pub encrypted: bool,
    pub tags: BTreeMap<String, String>,
}

impl Snapshot {
    pub fn is_available(&self) -> bool {
        self.status == "available"
    }

    /// A copy Lifeboat made. Never copied again (no ping-pong between regions).
    pub fn is_lifeboat_copy(&self) -> bool {
        self.tags.contains_key(TAG_SOURCE_ARN)
    }

    /// A transit copy on its way to the vault: never a source, never a DR copy.
    pub fn is_vault_transit(&self) -> bool {
        self.tags.contains_key(TAG_VAULT_TRANSIT)
    }

    pub fn copied_from(&self) -> Option<&str> {
        self.tags.get(TAG_SOURCE_ARN).map(String::as_str)
    }

    pub fn is_aws_backup(&self) -> bool {
        self.snapshot_type == SnapshotType::AwsBackup
            || self.arn.id.starts_with("awsbackup:")
            || self.tags.keys().any(|k| k.starts_with("aws:backup:"))
    }

    /// Lifeboat may delete it: a manual snapshot explicitly tagged as Lifeboat's.
    pub fn is_owned(&self) -> bool {
        self.snapshot_type == SnapshotType::Manual
            && !self.is_aws_backup()
            && self.tags.get(TAG_MANAGED).is_some_and(|v| v == "true")
    }

    /// The point in time this snapshot restores to, to the second: the `lifeboat:source-created`
    /// tag holds seconds, so a copy dated by its tag and one dated by RDS must compare the same.
    pub fn restore_point(&self) -> Option<DateTime<Utc>> {
        let tagged = || {
            self.tags
                .get(TAG_SOURCE_CREATED)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
        };
        // No snapshot holds data from after it was made: a restore point claimed later than
        // RDS's own creation time (a tag or an identifier another account chose) is cut to it.
        let claimed = self.original_created.or_else(tagged).or(self.created)?;
        Some(self.created.map_or(claimed, |made| claimed.min(made)).trunc_subsecs(0))
    }

    /// The user's own tags, without Lifeboat's and AWS's reserved ones.
    pub fn user_tags(&self) -> impl Iterator<Item = (&String, &String)> {
        self.tags.iter().filter(|(k, _)| !k.starts_with(TAG_PREFIX) && !k.starts_with("aws:"))
    }
}
