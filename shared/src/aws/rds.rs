//! RDS, one client per region, built once at init. Every call is counted: API economy is a feature
//! (RDS's control plane throttles per account and region, shared with everything else there).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::SdkConfig;
use aws_sdk_rds::types::{DbClusterSnapshot, DbSnapshot, Tag};
use aws_sdk_rds::Client;

use super::{error_code, sdk_error, to_chrono, PerRegion};
use crate::arn::{RdsArn, RdsResource};
use crate::copy::CopyRequest;
use crate::error::LifeboatError;
use crate::snapshot::{Snapshot, SnapshotType};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOutcome {
    Started,
    /// The deterministic target already existed: a replay, or another invocation won the race.
    AlreadyThere,
    /// RDS refused for a snapshot quota (copies in flight, or manual snapshots in the region):
    /// waiting is the cure, and the sweep comes back.
    QuotaFull,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    /// Already gone: a retried run deleting again is success.
    AlreadyGone,
}

/// Which snapshot kinds a listing needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kinds {
    pub instances: bool,
    pub clusters: bool,
}

/// The manual snapshot quotas of the account in a region, as `DescribeAccountAttributes` reports
/// them: (used, max) of `ManualSnapshots` (instance snapshots) and `ManualClusterSnapshots`; None
/// when RDS reports no such quota.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotQuotas {
    pub instances: Option<(usize, usize)>,
    pub clusters: Option<(usize, usize)>,
}

/// A region's snapshots, and the (engine, version) of each that RDS said.
pub type Listed = (Vec<Snapshot>, BTreeMap<RdsArn, (String, String)>);

/// Clients are made per region on first use: the regions come from a config that may change
/// between invocations, and a client is cheap once the shared `SdkConfig` exists.
pub struct Rds {
    sdk: SdkConfig,
    clients: PerRegion<Client>,
    calls: AtomicUsize,
}

// RDS documents `DBSnapshotNotFound`; moto answers `DBSnapshotNotFoundFault`. Both mean gone.
const NOT_FOUND: [&str; 3] = ["DBSnapshotNotFound", "DBSnapshotNotFoundFault", "DBClusterSnapshotNotFoundFault"];
const ALREADY_EXISTS: [&str; 2] = ["DBSnapshotAlreadyExists", "DBClusterSnapshotAlreadyExistsFault"];
const QUOTA: [&str; 2] = ["SnapshotQuotaExceeded", "SnapshotQuotaExceededFault"];

fn tags_of(list: Option<&[Tag]>) -> BTreeMap<String, String> {
    list.unwrap_or_default()
        .iter()
        .filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default())))
        .collect()
}

fn from_instance_snapshot(s: &DbSnapshot) -> Option<Snapshot> {
    Some(Snapshot {
        arn: s.db_snapshot_arn.as_deref()?.parse().ok()?,
        database_id: s.db_instance_identifier.clone().unwrap_or_default(),
        snapshot_type: SnapshotType::parse(s.snapshot_type.as_deref().unwrap_or_default()),
        status: s.status.clone().unwrap_or_default(),
        created: s.snapshot_create_time.as_ref().and_then(to_chrono),
        original_created: s.original_snapshot_create_time.as_ref().and_then(to_chrono),
        encrypted: s.encrypted.unwrap_or(false),
        tags: tags_of(s.tag_list.as_deref()),
    })
}

fn from_cluster_snapshot(s: &DbClusterSnapshot) -> Option<Snapshot> {
    Some(Snapshot {
        arn: s.db_cluster_snapshot_arn.as_deref()?.parse().ok()?,
        database_id: s.db_cluster_identifier.clone().unwrap_or_default(),
        snapshot_type: SnapshotType::parse(s.snapshot_type.as_deref().unwrap_or_default()),
        status: s.status.clone().unwrap_or_default(),
        created: s.snapshot_create_time.as_ref().and_then(to_chrono),
        original_created: None,
        encrypted: s.storage_encrypted.unwrap_or(false),
        tags: tags_of(s.tag_list.as_deref()),
    })
}

impl Rds {
    pub fn new(sdk: &SdkConfig) -> Self {
        Rds { sdk: sdk.clone(), clients: PerRegion::default(), calls: AtomicUsize::new(0) }
    }

    /// An `Rds` whose client for `region` is `client` (mocked RDS answers in tests).
    #[cfg(test)]
    pub(crate) fn with_client(region: &str, client: Client) -> Self {
        Rds {
            sdk: SdkConfig::builder().build(),
            clients: PerRegion(std::sync::Mutex::new([(region.to_owned(), client)].into())),
            calls: AtomicUsize::new(0),
        }
    }

    /// API calls made so far (pages count one each).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    pub(crate) fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn client(&self, region: &str) -> Client {
        self.clients.get(region, |r| Client::from_conf(aws_sdk_rds::config::Builder::from(&self.sdk).region(r).build()))
    }

    /// One snapshot by ARN, or None when RDS has no such snapshot.
    pub async fn describe(&self, arn: &RdsArn) -> Result<Option<Snapshot>, LifeboatError> {
        let client = self.client(&arn.region);
        self.count();
        // DescribeDBSnapshots: "If this identifier is for an automated snapshot, the SnapshotType
        // parameter must also be specified" (the same for clusters). Automated snapshots, and only
        // they, have identifiers starting `rds:`: manual identifiers can't hold a colon.
        let snapshot_type = if arn.id.starts_with("rds:") {
            Some("automated")
        } else if arn.id.starts_with("awsbackup:") {
            // By analogy (the reference names only automated): AWS Backup's identifiers carry
            // their own prefix and type.
            Some("awsbackup")
        } else {
            None
        };
        match arn.resource {
            RdsResource::InstanceSnapshot => {
                match client
                    .describe_db_snapshots()
                    .db_snapshot_identifier(&arn.id)
                    .set_snapshot_type(snapshot_type.map(str::to_owned))
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.db_snapshots().first().and_then(from_instance_snapshot)),
                    Err(e) if error_code(&e).is_some_and(|c| NOT_FOUND.contains(&c)) => Ok(None),
                    Err(e) => Err(sdk_error("rds:DescribeDBSnapshots", e)),
                }
            }
            RdsResource::ClusterSnapshot => {
                match client
                    .describe_db_cluster_snapshots()
                    .db_cluster_snapshot_identifier(&arn.id)
                    .set_snapshot_type(snapshot_type.map(str::to_owned))
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.db_cluster_snapshots().first().and_then(from_cluster_snapshot)),
                    Err(e) if error_code(&e).is_some_and(|c| NOT_FOUND.contains(&c)) => Ok(None),
                    Err(e) => Err(sdk_error("rds:DescribeDBClusterSnapshots", e)),
                }
            }
            _ => Err(LifeboatError::Rejected(format!("{arn} is not a snapshot"))),
        }
    }

    /// Every snapshot in a region, page by page. `DescribeDBSnapshots` already returns each
    /// snapshot's tags, so no per-snapshot call is needed.
    pub async fn list(&self, region: &str, kinds: Kinds) -> Result<Vec<Snapshot>, LifeboatError> {
        Ok(self.listing(region, kinds, false).await?.0)
    }

    /// `list`, with the engine and version each snapshot restores to, which the same pages carry
    /// (readiness: no DescribeDBSnapshots per copy to learn what a restore would run).
    pub async fn list_with_engines(&self, region: &str, kinds: Kinds) -> Result<Listed, LifeboatError> {
        self.listing(region, kinds, false).await
    }

    /// Snapshots of other accounts shared with this one in `region` (`IncludeShared` with
    /// `SnapshotType=shared`: without the type RDS lists this account's own as well).
    pub async fn list_shared(&self, region: &str, kinds: Kinds) -> Result<Vec<Snapshot>, LifeboatError> {
        Ok(self.listing(region, kinds, true).await?.0)
    }

    async fn listing(&self, region: &str, kinds: Kinds, shared: bool) -> Result<Listed, LifeboatError> {
        let client = self.client(region);
        let mut out = Vec::new();
        let mut engines = BTreeMap::new();
        let engine = |arn: Option<&str>, engine: Option<&str>, version: Option<&str>| {
            Some((arn?.parse::<RdsArn>().ok()?, (engine?.to_owned(), version?.to_owned())))
        };
        let (include_shared, snapshot_type) =
            if shared { (Some(true), Some("shared".to_owned())) } else { (None, None) };
        // The SDK's paginators follow the markers; every page is one call.
        if kinds.instances {
            let mut pages = client
                .describe_db_snapshots()
                .set_include_shared(include_shared)
                .set_snapshot_type(snapshot_type.clone())
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                self.count();
                let page = page.map_err(|e| sdk_error("rds:DescribeDBSnapshots", e))?;
                out.extend(page.db_snapshots().iter().filter_map(from_instance_snapshot));
                engines.extend(page.db_snapshots().iter().filter_map(|s| {
                    engine(s.db_snapshot_arn.as_deref(), s.engine.as_deref(), s.engine_version.as_deref())
                }));
            }
        }
        if kinds.clusters {
            let mut pages = client
                .describe_db_cluster_snapshots()
                .set_include_shared(include_shared)
                .set_snapshot_type(snapshot_type)
                .max_records(100)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                self.count();
                let page = page.map_err(|e| sdk_error("rds:DescribeDBClusterSnapshots", e))?;
                out.extend(page.db_cluster_snapshots().iter().filter_map(from_cluster_snapshot));
                engines.extend(page.db_cluster_snapshots().iter().filter_map(|s| {
                    engine(s.db_cluster_snapshot_arn.as_deref(), s.engine.as_deref(), s.engine_version.as_deref())
                }));
            }
        }
        // Pages shift while snapshots come and go, so one snapshot can be listed twice.
        let mut seen = BTreeSet::new();
        out.retain(|s| seen.insert(s.arn.clone()));
        Ok((out, engines))
    }

    /// The region's manual snapshot quotas (one call: `DescribeAccountAttributes` takes no
    /// parameters and answers every quota of the account in the region).
    pub async fn snapshot_quotas(&self, region: &str) -> Result<SnapshotQuotas, LifeboatError> {
        self.count();
        let out = self
            .client(region)
            .describe_account_attributes()
            .send()
            .await
            .map_err(|e| sdk_error("rds:DescribeAccountAttributes", e))?;
        let quota = |name: &str| {
            out.account_quotas()
                .iter()
                .find(|q| q.account_quota_name() == Some(name))
                .and_then(|q| Some((usize::try_from(q.used()?).unwrap_or(0), usize::try_from(q.max()?).unwrap_or(0))))
        };
        Ok(SnapshotQuotas { instances: quota("ManualSnapshots"), clusters: quota("ManualClusterSnapshots") })
    }

    /// Start a copy in the destination region, source by ARN (no SourceRegion: the Rust SDK has
    /// none, and the ARN names the region). Tags are passed whole because RDS ignores CopyTags then.
    pub async fn copy(&self, req: &CopyRequest) -> Result<CopyOutcome, LifeboatError> {
        let client = self.client(&req.target.region);
        self.count();
        let tags: Vec<Tag> = req.tags.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect();
        let result = match req.source.resource {
            RdsResource::InstanceSnapshot => client
                .copy_db_snapshot()
                .source_db_snapshot_identifier(req.source.to_string())
                .target_db_snapshot_identifier(&req.target.id)
                .set_kms_key_id(req.kms_key.clone())
                .set_option_group_name(req.option_group.clone())
                .set_tags(Some(tags))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_code(&e).map(str::to_owned), sdk_error("rds:CopyDBSnapshot", e))),
            RdsResource::ClusterSnapshot => client
                .copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(req.source.to_string())
                .target_db_cluster_snapshot_identifier(&req.target.id)
                .set_kms_key_id(req.kms_key.clone())
                .set_tags(Some(tags))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_code(&e).map(str::to_owned), sdk_error("rds:CopyDBClusterSnapshot", e))),
            _ => return Err(LifeboatError::Rejected(format!("{} is not a snapshot", req.source))),
        };
        match result {
            Ok(()) => Ok(CopyOutcome::Started),
            Err((Some(code), _)) if ALREADY_EXISTS.contains(&code.as_str()) => Ok(CopyOutcome::AlreadyThere),
            Err((Some(code), _)) if QUOTA.contains(&code.as_str()) => Ok(CopyOutcome::QuotaFull),
            Err((_, e)) => Err(e),
        }
    }

    /// Let `account` copy and restore the snapshot (attribute `restore`), or stop letting it.
    /// Both are idempotent at RDS: adding an account twice, or removing one not there, changes
    /// nothing. Never `all`: Lifeboat shares with one named account only.
    pub async fn share(&self, arn: &RdsArn, account: &str, shared: bool) -> Result<(), LifeboatError> {
        if account == "all" {
            return Err(LifeboatError::Rejected("Lifeboat never makes a snapshot public".into()));
        }
        let client = self.client(&arn.region);
        self.count();
        let (add, remove) =
            if shared { (Some(vec![account.to_owned()]), None) } else { (None, Some(vec![account.to_owned()])) };
        match arn.resource {
            RdsResource::InstanceSnapshot => client
                .modify_db_snapshot_attribute()
                .db_snapshot_identifier(&arn.id)
                .attribute_name("restore")
                .set_values_to_add(add)
                .set_values_to_remove(remove)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error("rds:ModifyDBSnapshotAttribute", e)),
            RdsResource::ClusterSnapshot => client
                .modify_db_cluster_snapshot_attribute()
                .db_cluster_snapshot_identifier(&arn.id)
                .attribute_name("restore")
                .set_values_to_add(add)
                .set_values_to_remove(remove)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error("rds:ModifyDBClusterSnapshotAttribute", e)),
            _ => Err(LifeboatError::Rejected(format!("{arn} is not a snapshot"))),
        }
    }

    /// One tag on a resource (added, or its value replaced).
    pub async fn tag(&self, arn: &RdsArn, key: &str, value: &str) -> Result<(), LifeboatError> {
        let client = self.client(&arn.region);
        self.count();
        client
            .add_tags_to_resource()
            .resource_name(arn.to_string())
            .tags(Tag::builder().key(key).value(value).build())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| sdk_error("rds:AddTagsToResource", e))
    }

    pub async fn delete(&self, arn: &RdsArn) -> Result<DeleteOutcome, LifeboatError> {
        let client = self.client(&arn.region);
        self.count();
        let result = match arn.resource {
            RdsResource::InstanceSnapshot => client
                .delete_db_snapshot()
                .db_snapshot_identifier(&arn.id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_code(&e).map(str::to_owned), sdk_error("rds:DeleteDBSnapshot", e))),
            RdsResource::ClusterSnapshot => client
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(&arn.id)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (error_code(&e).map(str::to_owned), sdk_error("rds:DeleteDBClusterSnapshot", e))),
            _ => return Err(LifeboatError::Rejected(format!("{arn} is not a snapshot"))),
        };
        match result {
            Ok(()) => Ok(DeleteOutcome::Deleted),
            Err((Some(code), _)) if NOT_FOUND.contains(&code.as_str()) => Ok(DeleteOutcome::AlreadyGone),
            Err((_, e)) => Err(e),
        }
    }
}

// moto ignores MaxRecords and answers in one page, so paging is tested against mocked responses.
#[cfg(test)]
mod tests {
    use aws_sdk_rds::operation::describe_db_snapshots::DescribeDbSnapshotsOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    fn snapshot(id: &str) -> DbSnapshot {
        DbSnapshot::builder()
            .db_snapshot_arn(format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"))
            .db_instance_identifier("orders")
            .snapshot_type("manual")
            .status("available")
            .tag_list(Tag::builder().key("lifeboat:managed").value("true").build())
            .build()
    }

    #[tokio::test]
    async fn list_follows_markers_through_every_page_counts_each_and_lists_a_snapshot_once() {
        let first = mock!(Client::describe_db_snapshots).match_requests(|r| r.marker().is_none()).then_output(|| {
            DescribeDbSnapshotsOutput::builder()
                .db_snapshots(snapshot("a"))
                .db_snapshots(snapshot("b"))
                .db_snapshots(snapshot("b"))
                .marker("page-2")
                .build()
        });
        let second =
            mock!(Client::describe_db_snapshots).match_requests(|r| r.marker() == Some("page-2")).then_output(|| {
                DescribeDbSnapshotsOutput::builder().db_snapshots(snapshot("c")).db_snapshots(snapshot("a")).build()
            });
        let client = mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&first, &second]);
        let rds = Rds::with_client("us-east-1", client);

        let listed = rds.list("us-east-1", Kinds { instances: true, clusters: false }).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|s| s.arn.id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert!(listed.iter().all(|s| s.is_owned()), "tags come with the listing");
        assert_eq!(rds.calls(), 2);
    }
}
