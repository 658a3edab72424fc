//! RDS ARNs: the only identifiers Lifeboat trusts to say which region and account a thing lives in.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// What an RDS ARN names. Only the four kinds Lifeboat works with are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RdsResource {
    /// `db:` — a DB instance.
    Instance,
    /// `cluster:` — an Aurora / Multi-AZ DB cluster.
    Cluster,
    /// `snapshot:` — a DB instance snapshot.
    InstanceSnapshot,
    /// `cluster-snapshot:` — a DB cluster snapshot.
    ClusterSnapshot,
}

impl RdsResource {
    fn prefix(self) -> &'static str {
        match self {
            RdsResource::Instance => "db",
            RdsResource::Cluster => "cluster",
            RdsResource::InstanceSnapshot => "snapshot",
            RdsResource::ClusterSnapshot => "cluster-snapshot",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RdsArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub resource: RdsResource,
    /// The identifier after the resource prefix; automated snapshots keep their `rds:` prefix.
    pub id: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("`{arn}` is not an RDS ARN of a DB instance, cluster or snapshot: {why}")]
pub struct ArnError {
    pub arn: String,
    pub why: &'static str,
}

/// An AWS account id: 12 digits.
pub fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

impl RdsArn {
    pub fn new(partition: &str, region: &str, account: &str, resource: RdsResource, id: &str) -> Self {
        RdsArn {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource,
            id: id.to_owned(),
        }
    }

    /// The same account and partition, another region and resource: where a copy will live.
    pub fn sibling(&self, region: &str, resource: RdsResource, id: &str) -> Self {
        RdsArn::new(&self.partition, region, &self.account, resource, id)
    }

    pub fn is_snapshot(&self) -> bool {
        matches!(self.resource, RdsResource::InstanceSnapshot | RdsResource::ClusterSnapshot)
    }
}

impl FromStr for RdsArn {
    type Err = ArnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ArnError { arn: s.to_owned(), why };
        // arn:partition:rds:region:account:type:id — the id of an automated snapshot holds a ':'.
        let mut parts = s.splitn(7, ':');
        let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(kind), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err("expected arn:PARTITION:rds:REGION:ACCOUNT:TYPE:ID"));
        };
        if !partition.starts_with("aws") {
            return Err(err("unknown partition"));
        }
        if service != "rds" {
            return Err(err("service is not rds"));
        }
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(err("region is missing or malformed"));
        }
        if !is_account_id(account) {
            return Err(err("account must be 12 digits"));
        }
        let resource = match kind {
            "db" => RdsResource::Instance,
            "cluster" => RdsResource::Cluster,
            "snapshot" => RdsResource::InstanceSnapshot,
            "cluster-snapshot" => RdsResource::ClusterSnapshot,
            _ => return Err(err("resource type must be db, cluster, snapshot or cluster-snapshot")),
        };
        if id.is_empty() {
            return Err(err("identifier is empty"));
        }
        Ok(RdsArn::new(partition, region, account, resource, id))
    }
}

impl fmt::Display for RdsArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:rds:{}:{}:{}:{}", self.partition, self.region, self.account, self.resource.prefix(), self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_automated_snapshot_arn_with_colon_in_id() {
        let arn: RdsArn = "arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-2026-11-24-03-00".parse().unwrap();
        assert_eq!(arn.resource, RdsResource::InstanceSnapshot);
        assert_eq!(arn.id, "rds:orders-2026-11-24-03-00");
        assert_eq!(arn.region, "us-east-1");
        assert_eq!(arn.to_string(), "arn:aws:rds:us-east-1:123456789012:snapshot:rds:orders-2026-11-24-03-00");
    }

    #[test]
    fn rejects_non_rds_and_short_arns() {
        for bad in [
            "",
            "orders-prod",
            "arn:aws:ec2:us-east-1:123456789012:instance:i-1",
            "arn:aws:rds:us-east-1:1234:db:x",
            "arn:aws:rds:us-east-1:123456789012:og:x",
            "arn:aws:rds:us-east-1:123456789012:db:",
        ] {
            assert!(bad.parse::<RdsArn>().is_err(), "{bad} should be rejected");
        }
    }
}
