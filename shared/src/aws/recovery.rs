//! RDS calls that recover a database: read instance and cluster state, promote, fail over,
//! switch a global database, restore from a DR copy or to a point in time, reboot with failover.
//! Each call is made so that repeating it is success: an identifier that already exists is the
//! restore this incident started, a replica that is no longer one was promoted.

use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use chrono::{DateTime, Utc};

use super::rds::Rds;
use super::{error_code, sdk_error, to_chrono};
use crate::error::LifeboatError;
use crate::failover::steps::DbState;
use crate::failover::Restore;

/// What a recovery call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acted {
    Started,
    /// It was done before: a retried or repeated step.
    AlreadyDone,
}

const INSTANCE_NOT_FOUND: [&str; 2] = ["DBInstanceNotFound", "DBInstanceNotFoundFault"];
const CLUSTER_NOT_FOUND: [&str; 2] = ["DBClusterNotFoundFault", "DBClusterNotFound"];
const INSTANCE_EXISTS: [&str; 2] = ["DBInstanceAlreadyExists", "DBInstanceAlreadyExistsFault"];
const CLUSTER_EXISTS: [&str; 2] = ["DBClusterAlreadyExistsFault", "DBClusterAlreadyExists"];

fn outcome<T, E, R>(op: &str, result: Result<T, SdkError<E, R>>, done: &[&str]) -> Result<Acted, LifeboatError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(Acted::Started),
        Err(e) if error_code(&e).is_some_and(|c| done.contains(&c)) => Ok(Acted::AlreadyDone),
        Err(e) => Err(sdk_error(op, e)),
    }
}

/// RDS refuses to promote what is not (any more) a replica: "DB Instance is not a read replica".
/// For a step that promoted it before, that is the promotion done.
fn not_a_replica<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    let SdkError::ServiceError(se) = e else { return false };
    matches!(
        se.err().code(),
        Some("InvalidDBInstanceState" | "InvalidDBInstanceStateFault" | "InvalidDBClusterStateFault")
    ) && se.err().message().is_some_and(|m| m.contains("not a read replica"))
}

fn from_instance(i: &DbInstance) -> DbState {
    DbState {
        id: i.db_instance_identifier.clone().unwrap_or_default(),
        status: i.db_instance_status.clone().unwrap_or_default(),
        endpoint: i.endpoint.as_ref().and_then(|e| e.address.clone()),
        multi_az: i.multi_az.unwrap_or(false),
        replica_of: i.read_replica_source_db_instance_identifier.clone(),
        latest_restorable: i.latest_restorable_time.as_ref().and_then(to_chrono),
        writer: None,
        members: Vec::new(),
        availability_zone: i.availability_zone.clone(),
        engine_version: i.engine_version.clone(),
        port: i.endpoint.as_ref().and_then(|e| e.port),
        tags: tag_map(i.tag_list()),
    }
}

fn tag_map(list: &[Tag]) -> std::collections::BTreeMap<String, String> {
    list.iter().filter_map(|t| Some((t.key.clone()?, t.value.clone().unwrap_or_default()))).collect()
}

fn from_cluster(c: &DbCluster) -> DbState {
    let members = c.db_cluster_members();
    DbState {
        id: c.db_cluster_identifier.clone().unwrap_or_default(),
        status: c.status.clone().unwrap_or_default(),
        endpoint: c.endpoint.clone(),
        multi_az: c.multi_az.unwrap_or(false),
        replica_of: c.replication_source_identifier.clone(),
        latest_restorable: c.latest_restorable_time.as_ref().and_then(to_chrono),
        writer: members
            .iter()
            .find(|m| m.is_cluster_writer == Some(true))
            .and_then(|m| m.db_instance_identifier.clone()),
        members: members.iter().filter_map(|m| m.db_instance_identifier.clone()).collect(),
        availability_zone: None,
        engine_version: c.engine_version.clone(),
        port: c.port,
        tags: tag_map(c.tag_list()),
    }
}

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()
}

impl Rds {
    pub async fn instance(&self, region: &str, id: &str) -> Result<Option<DbState>, LifeboatError> {
        self.count();
        match self.client(region).describe_db_instances().db_instance_identifier(id).send().await {
            Ok(out) => Ok(out.db_instances().first().map(from_instance)),
            Err(e) if error_code(&e).is_some_and(|c| INSTANCE_NOT_FOUND.contains(&c)) => Ok(None),
            Err(e) => Err(sdk_error("rds:DescribeDBInstances", e)),
        }
    }

    pub async fn cluster(&self, region: &str, id: &str) -> Result<Option<DbState>, LifeboatError> {
        self.count();
        match self.client(region).describe_db_clusters().db_cluster_identifier(id).send().await {
            Ok(out) => Ok(out.db_clusters().first().map(from_cluster)),
            Err(e) if error_code(&e).is_some_and(|c| CLUSTER_NOT_FOUND.contains(&c)) => Ok(None),
            Err(e) => Err(sdk_error("rds:DescribeDBClusters", e)),
        }
    }

    /// An instance, or a cluster whose status also says how its `writer` instance stands: a
    /// cluster Lifeboat created is usable only once that instance is available too.
    pub async fn database(
        &self,
        region: &str,
        id: &str,
        cluster: bool,
        writer: Option<&str>,
    ) -> Result<Option<DbState>, LifeboatError> {
        if !cluster {
            return self.instance(region, id).await;
        }
        let Some(mut c) = self.cluster(region, id).await? else { return Ok(None) };
        if let Some(w) = writer {
            match self.instance(region, w).await? {
                Some(i) if i.available() => {}
                Some(i) => c.status = format!("{} (writer {w} {})", c.status, i.status),
                None => c.status = format!("{} (writer {w} not created yet)", c.status),
            }
        }
        Ok(Some(c))
    }

    /// `PromoteReadReplica`. RDS refuses it for an instance that is no longer a replica
    /// (InvalidDBInstanceState): when the instance shows no replica source, that is a promotion
    /// already made.
    pub async fn promote_instance(&self, region: &str, id: &str) -> Result<Acted, LifeboatError> {
        if self.instance(region, id).await?.is_some_and(|s| s.replica_of.is_none()) {
            return Ok(Acted::AlreadyDone);
        }
        self.count();
        let result = self.client(region).promote_read_replica().db_instance_identifier(id).send().await;
        match result {
            Err(e) if not_a_replica(&e) => Ok(Acted::AlreadyDone),
            other => outcome("rds:PromoteReadReplica", other, &[]),
        }
    }

    /// `PromoteReadReplicaDBCluster`, for an Aurora cross-region replica cluster.
    pub async fn promote_cluster(&self, region: &str, id: &str) -> Result<Acted, LifeboatError> {
        if self.cluster(region, id).await?.is_some_and(|s| s.replica_of.is_none()) {
            return Ok(Acted::AlreadyDone);
        }
        self.count();
        let result = self.client(region).promote_read_replica_db_cluster().db_cluster_identifier(id).send().await;
        match result {
            Err(e) if not_a_replica(&e) => Ok(Acted::AlreadyDone),
            other => outcome("rds:PromoteReadReplicaDBCluster", other, &[]),
        }
    }

    /// `FailoverDBCluster`, unless the writer already moved away from `writer_before`: a second
    /// call would fail the cluster back.
    pub async fn failover_cluster(
        &self,
        region: &str,
        id: &str,
        target_instance: Option<&str>,
        writer_before: Option<&str>,
    ) -> Result<Acted, LifeboatError> {
        let now = self.cluster(region, id).await?;
        let writer = now.as_ref().and_then(|c| c.writer.as_deref());
        if writer.is_some() && writer != writer_before {
            return Ok(Acted::AlreadyDone);
        }
        self.count();
        let result = self
            .client(region)
            .failover_db_cluster()
            .db_cluster_identifier(id)
            .set_target_db_instance_identifier(target_instance.map(str::to_owned))
            .send()
            .await;
        outcome("rds:FailoverDBCluster", result, &[])
    }

    /// `RebootDBInstance` with `ForceFailover`, unless the instance already left `az_before` or is
    /// rebooting: a second forced failover would move it back.
    pub async fn reboot_with_failover(
        &self,
        region: &str,
        id: &str,
        az_before: Option<&str>,
    ) -> Result<Acted, LifeboatError> {
        if let Some(s) = self.instance(region, id).await? {
            if s.status == "rebooting" || (az_before.is_some() && s.availability_zone.as_deref() != az_before) {
                return Ok(Acted::AlreadyDone);
            }
        }
        self.count();
        let result =
            self.client(region).reboot_db_instance().db_instance_identifier(id).force_failover(true).send().await;
        outcome("rds:RebootDBInstance", result, &[])
    }

    /// The global cluster a member cluster (by ARN) belongs to, and whether it is the writer.
    /// DescribeGlobalClusters filters only by region, so the member's own
    /// `GlobalClusterIdentifier` names it (a name, or the global cluster's ARN).
    pub async fn global_membership(
        &self,
        region: &str,
        cluster_arn: &str,
    ) -> Result<Option<(String, bool)>, LifeboatError> {
        let id = cluster_arn.rsplit(':').next().unwrap_or(cluster_arn);
        self.count();
        let global = match self.client(region).describe_db_clusters().db_cluster_identifier(id).send().await {
            Ok(out) => out.db_clusters().first().and_then(|c| c.global_cluster_identifier.clone()),
            Err(e) if error_code(&e).is_some_and(|c| CLUSTER_NOT_FOUND.contains(&c)) => None,
            Err(e) => return Err(sdk_error("rds:DescribeDBClusters", e)),
        };
        let Some(global) = global.map(|g| g.rsplit(':').next().unwrap_or(&g).to_owned()) else {
            return Ok(None);
        };
        self.count();
        let out = self
            .client(region)
            .describe_global_clusters()
            .global_cluster_identifier(&global)
            .send()
            .await
            .map_err(|e| sdk_error("rds:DescribeGlobalClusters", e))?;
        Ok(out.global_clusters().iter().find_map(|g| {
            let member =
                g.global_cluster_members().iter().find(|m| m.db_cluster_arn.as_deref() == Some(cluster_arn))?;
            Some((g.global_cluster_identifier.clone()?, member.is_writer == Some(true)))
        }))
    }

    /// `SwitchoverGlobalCluster` (planned) or `FailoverGlobalCluster` with `AllowDataLoss`
    /// (unplanned) to the secondary `target_arn`. Already the writer: done.
    pub async fn switch_global(
        &self,
        region: &str,
        target_arn: &str,
        allow_data_loss: bool,
    ) -> Result<Acted, LifeboatError> {
        let Some((global, is_writer)) = self.global_membership(region, target_arn).await? else {
            return Err(LifeboatError::Rejected(format!("{target_arn} is in no global cluster")));
        };
        if is_writer {
            return Ok(Acted::AlreadyDone);
        }
        self.count();
        let client = self.client(region);
        if allow_data_loss {
            let result = client
                .failover_global_cluster()
                .global_cluster_identifier(&global)
                .target_db_cluster_identifier(target_arn)
                .allow_data_loss(true)
                .send()
                .await;
            outcome("rds:FailoverGlobalCluster", result, &[])
        } else {
            let result = client
                .switchover_global_cluster()
                .global_cluster_identifier(&global)
                .target_db_cluster_identifier(target_arn)
                .send()
                .await;
            outcome("rds:SwitchoverGlobalCluster", result, &[])
        }
    }

    /// A new private instance from a DR copy in its own region.
    pub async fn restore_instance(
        &self,
        region: &str,
        new_id: &str,
        snapshot_arn: &str,
        r: &Restore,
        tag_pairs: &[(&str, &str)],
    ) -> Result<Acted, LifeboatError> {
        self.count();
        let result = self
            .client(region)
            .restore_db_instance_from_db_snapshot()
            .db_instance_identifier(new_id)
            // The copy is in this region: its name is enough, and what moto takes.
            .db_snapshot_identifier(snapshot_arn.rsplit(':').next().unwrap_or(snapshot_arn))
            .db_instance_class(&r.instance_class)
            .db_subnet_group_name(&r.subnet_group)
            .set_vpc_security_group_ids(Some(r.security_groups.clone()).filter(|g| !g.is_empty()))
            .publicly_accessible(false)
            .set_tags(Some(tags(tag_pairs)))
            .send()
            .await;
        outcome("rds:RestoreDBInstanceFromDBSnapshot", result, &INSTANCE_EXISTS)
    }

    /// A new private cluster from a DR cluster copy, then its writer instance.
    pub async fn restore_cluster(
        &self,
        region: &str,
        new_id: &str,
        writer_id: &str,
        snapshot_arn: &str,
        r: &Restore,
        tag_pairs: &[(&str, &str)],
    ) -> Result<Acted, LifeboatError> {
        self.count();
        let snap_id = snapshot_arn.rsplit(':').next().unwrap_or(snapshot_arn);
        let engine = self
            .client(region)
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(snap_id)
            .send()
            .await
            .map_err(|e| sdk_error("rds:DescribeDBClusterSnapshots", e))?
            .db_cluster_snapshots()
            .first()
            .and_then(|s| s.engine.clone())
            .ok_or_else(|| LifeboatError::Rejected(format!("{snapshot_arn} is gone")))?;
        self.count();
        let result = self
            .client(region)
            .restore_db_cluster_from_snapshot()
            .db_cluster_identifier(new_id)
            .snapshot_identifier(snap_id)
            .engine(&engine)
            .db_subnet_group_name(&r.subnet_group)
            .set_vpc_security_group_ids(Some(r.security_groups.clone()).filter(|g| !g.is_empty()))
            .set_tags(Some(tags(tag_pairs)))
            .send()
            .await;
        let cluster = outcome("rds:RestoreDBClusterFromSnapshot", result, &CLUSTER_EXISTS)?;
        let instance = self.cluster_instance(region, new_id, writer_id, &engine, r, tag_pairs).await?;
        Ok(if cluster == Acted::Started || instance == Acted::Started { Acted::Started } else { Acted::AlreadyDone })
    }

    async fn cluster_instance(
        &self,
        region: &str,
        cluster: &str,
        id: &str,
        engine: &str,
        r: &Restore,
        tag_pairs: &[(&str, &str)],
    ) -> Result<Acted, LifeboatError> {
        self.count();
        let result = self
            .client(region)
            .create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(cluster)
            .engine(engine)
            .db_instance_class(&r.instance_class)
            .publicly_accessible(false)
            .set_tags(Some(tags(tag_pairs)))
            .send()
            .await;
        outcome("rds:CreateDBInstance", result, &INSTANCE_EXISTS)
    }

    /// A new private instance holding `source` as of `time`.
    pub async fn restore_instance_to_time(
        &self,
        region: &str,
        source: &str,
        new_id: &str,
        time: DateTime<Utc>,
        r: Option<&Restore>,
        tag_pairs: &[(&str, &str)],
    ) -> Result<Acted, LifeboatError> {
        self.count();
        let result = self
            .client(region)
            .restore_db_instance_to_point_in_time()
            .source_db_instance_identifier(source)
            .target_db_instance_identifier(new_id)
            .restore_time(aws_smithy_types::DateTime::from_secs(time.timestamp()))
            .set_db_instance_class(r.map(|r| r.instance_class.clone()))
            .set_db_subnet_group_name(r.map(|r| r.subnet_group.clone()))
            .set_vpc_security_group_ids(r.map(|r| r.security_groups.clone()).filter(|g| !g.is_empty()))
            .publicly_accessible(false)
            .set_tags(Some(tags(tag_pairs)))
            .send()
            .await;
        outcome("rds:RestoreDBInstanceToPointInTime", result, &INSTANCE_EXISTS)
    }

    /// A new cluster holding `source` as of `time`, then its writer instance.
    #[allow(clippy::too_many_arguments)]
    pub async fn restore_cluster_to_time(
        &self,
        region: &str,
        source: &str,
        new_id: &str,
        writer_id: &str,
        time: DateTime<Utc>,
        r: &Restore,
        tag_pairs: &[(&str, &str)],
    ) -> Result<Acted, LifeboatError> {
        let engine = self
            .cluster_engine(region, source)
            .await?
            .ok_or_else(|| LifeboatError::Rejected(format!("cluster {source} not found in {region}")))?;
        self.count();
        let result = self
            .client(region)
            .restore_db_cluster_to_point_in_time()
            .source_db_cluster_identifier(source)
            .db_cluster_identifier(new_id)
            .restore_to_time(aws_smithy_types::DateTime::from_secs(time.timestamp()))
            .db_subnet_group_name(&r.subnet_group)
            .set_vpc_security_group_ids(Some(r.security_groups.clone()).filter(|g| !g.is_empty()))
            .set_tags(Some(tags(tag_pairs)))
            .send()
            .await;
        let cluster = outcome("rds:RestoreDBClusterToPointInTime", result, &CLUSTER_EXISTS)?;
        let instance = self.cluster_instance(region, new_id, writer_id, &engine, r, tag_pairs).await?;
        Ok(if cluster == Acted::Started || instance == Acted::Started { Acted::Started } else { Acted::AlreadyDone })
    }

    /// Instances and clusters in `region` carrying tag `key` = `value` (the listing includes tags).
    pub async fn tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<DbState>, LifeboatError> {
        let client = self.client(region);
        let mut out = Vec::new();
        let mut pages = client.describe_db_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            self.count();
            out.extend(
                page.map_err(|e| sdk_error("rds:DescribeDBInstances", e))?.db_instances().iter().map(from_instance),
            );
        }
        let mut pages = client.describe_db_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            self.count();
            out.extend(
                page.map_err(|e| sdk_error("rds:DescribeDBClusters", e))?.db_clusters().iter().map(from_cluster),
            );
        }
        out.retain(|d| d.tags.get(key).map(String::as_str) == Some(value));
        Ok(out)
    }

    /// Delete instance `id` (no final snapshot: it is a throwaway), but only when it carries tag
    /// `key` = `value`; gone already is done.
    pub async fn delete_instance_tagged(
        &self,
        region: &str,
        id: &str,
        key: &str,
        value: &str,
    ) -> Result<Acted, LifeboatError> {
        match self.instance(region, id).await? {
            None => return Ok(Acted::AlreadyDone),
            Some(i) if i.tags.get(key).map(String::as_str) != Some(value) => {
                return Err(LifeboatError::Rejected(format!("{id} does not carry {key}={value}: not deleting it")));
            }
            Some(i) if i.status == "deleting" => return Ok(Acted::AlreadyDone),
            Some(_) => {}
        }
        self.count();
        let result = self
            .client(region)
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .delete_automated_backups(true)
            .send()
            .await;
        outcome("rds:DeleteDBInstance", result, &INSTANCE_NOT_FOUND)
    }

    /// Delete cluster `id` and its instances, only when it carries tag `key` = `value`.
    pub async fn delete_cluster_tagged(
        &self,
        region: &str,
        id: &str,
        key: &str,
        value: &str,
    ) -> Result<Acted, LifeboatError> {
        let Some(c) = self.cluster(region, id).await? else { return Ok(Acted::AlreadyDone) };
        if c.tags.get(key).map(String::as_str) != Some(value) {
            return Err(LifeboatError::Rejected(format!("{id} does not carry {key}={value}: not deleting it")));
        }
        for member in &c.members {
            self.delete_instance_tagged(region, member, key, value).await?;
        }
        if c.status == "deleting" {
            return Ok(Acted::AlreadyDone);
        }
        self.count();
        let result =
            self.client(region).delete_db_cluster().db_cluster_identifier(id).skip_final_snapshot(true).send().await;
        outcome("rds:DeleteDBCluster", result, &CLUSTER_NOT_FOUND)
    }

    /// The engine version a snapshot (instance or cluster, by ARN) restores to.
    pub async fn snapshot_engine_version(&self, arn: &str) -> Result<Option<String>, LifeboatError> {
        let parsed: crate::arn::RdsArn = arn.parse().map_err(|e| LifeboatError::Rejected(format!("{arn}: {e}")))?;
        let client = self.client(&parsed.region);
        self.count();
        Ok(match parsed.resource {
            crate::arn::RdsResource::ClusterSnapshot => client
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(&parsed.id)
                .send()
                .await
                .map_err(|e| sdk_error("rds:DescribeDBClusterSnapshots", e))?
                .db_cluster_snapshots()
                .first()
                .and_then(|s| s.engine_version.clone()),
            _ => client
                .describe_db_snapshots()
                .db_snapshot_identifier(&parsed.id)
                .send()
                .await
                .map_err(|e| sdk_error("rds:DescribeDBSnapshots", e))?
                .db_snapshots()
                .first()
                .and_then(|s| s.engine_version.clone()),
        })
    }

    async fn cluster_engine(&self, region: &str, id: &str) -> Result<Option<String>, LifeboatError> {
        self.count();
        match self.client(region).describe_db_clusters().db_cluster_identifier(id).send().await {
            Ok(out) => Ok(out.db_clusters().first().and_then(|c| c.engine.clone())),
            Err(e) if error_code(&e).is_some_and(|c| CLUSTER_NOT_FOUND.contains(&c)) => Ok(None),
            Err(e) => Err(sdk_error("rds:DescribeDBClusters", e)),
        }
    }
}

// moto has no global databases: the switchover adapter is tested against mocked RDS answers.
#[cfg(test)]
mod tests {
    use aws_sdk_rds::operation::describe_db_clusters::DescribeDbClustersOutput;
    use aws_sdk_rds::operation::describe_global_clusters::DescribeGlobalClustersOutput;
    use aws_sdk_rds::operation::failover_global_cluster::FailoverGlobalClusterOutput;
    use aws_sdk_rds::operation::switchover_global_cluster::SwitchoverGlobalClusterOutput;
    use aws_sdk_rds::types::{GlobalCluster, GlobalClusterMember};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    const PRIMARY: &str = "arn:aws:rds:us-east-1:123456789012:cluster:catalog-aurora";
    const SECONDARY: &str = "arn:aws:rds:us-west-2:123456789012:cluster:catalog-aurora-west";

    fn member_cluster() -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_rds::Client::describe_db_clusters)
            .match_requests(|r| r.db_cluster_identifier() == Some("catalog-aurora-west"))
            .then_output(|| {
                DescribeDbClustersOutput::builder()
                    .db_clusters(
                        DbCluster::builder()
                            .db_cluster_identifier("catalog-aurora-west")
                            .global_cluster_identifier("catalog-global")
                            .build(),
                    )
                    .build()
            })
    }

    fn global(writer: &str) -> DescribeGlobalClustersOutput {
        let member = |arn: &str| GlobalClusterMember::builder().db_cluster_arn(arn).is_writer(arn == writer).build();
        DescribeGlobalClustersOutput::builder()
            .global_clusters(
                GlobalCluster::builder()
                    .global_cluster_identifier("catalog-global")
                    .global_cluster_members(member(PRIMARY))
                    .global_cluster_members(member(SECONDARY))
                    .build(),
            )
            .build()
    }

    #[tokio::test]
    async fn switchover_names_the_global_cluster_and_the_target_arn_and_is_done_once_the_target_writes() {
        let describe = mock!(aws_sdk_rds::Client::describe_global_clusters)
            .match_requests(|r| r.global_cluster_identifier() == Some("catalog-global"))
            .then_output(|| global(PRIMARY));
        let switch = mock!(aws_sdk_rds::Client::switchover_global_cluster)
            .match_requests(|r| {
                r.global_cluster_identifier() == Some("catalog-global")
                    && r.target_db_cluster_identifier() == Some(SECONDARY)
            })
            .then_output(|| SwitchoverGlobalClusterOutput::builder().build());
        let rds = Rds::with_client(
            "us-west-2",
            mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&member_cluster(), &describe, &switch]),
        );
        assert_eq!(rds.switch_global("us-west-2", SECONDARY, false).await.unwrap(), Acted::Started);
        assert_eq!(switch.num_calls(), 1);

        let after = mock!(aws_sdk_rds::Client::describe_global_clusters).then_output(|| global(SECONDARY));
        let never = mock!(aws_sdk_rds::Client::failover_global_cluster)
            .then_output(|| FailoverGlobalClusterOutput::builder().build());
        let rds = Rds::with_client(
            "us-west-2",
            mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&member_cluster(), &after, &never]),
        );
        assert_eq!(rds.switch_global("us-west-2", SECONDARY, true).await.unwrap(), Acted::AlreadyDone);
        assert_eq!(never.num_calls(), 0, "a repeated step doesn't fail over again");
    }

    #[tokio::test]
    async fn unplanned_failover_allows_data_loss() {
        let describe = mock!(aws_sdk_rds::Client::describe_global_clusters).then_output(|| global(PRIMARY));
        let failover = mock!(aws_sdk_rds::Client::failover_global_cluster)
            .match_requests(|r| {
                r.allow_data_loss() == Some(true) && r.target_db_cluster_identifier() == Some(SECONDARY)
            })
            .then_output(|| FailoverGlobalClusterOutput::builder().build());
        let rds = Rds::with_client(
            "us-west-2",
            mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&member_cluster(), &describe, &failover]),
        );
        assert_eq!(rds.switch_global("us-west-2", SECONDARY, true).await.unwrap(), Acted::Started);
        assert_eq!(failover.num_calls(), 1);
    }

    #[tokio::test]
    async fn restores_ask_for_a_private_instance_tagged_with_the_incident_and_take_already_exists_as_done() {
        use aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::{
            RestoreDBInstanceFromDBSnapshotError, RestoreDbInstanceFromDbSnapshotOutput,
        };
        use aws_sdk_rds::types::error::DbInstanceAlreadyExistsFault;
        let private_and_tagged =
            |r: &aws_sdk_rds::operation::restore_db_instance_from_db_snapshot::RestoreDbInstanceFromDbSnapshotInput| {
                r.publicly_accessible() == Some(false)
                    && r.db_snapshot_identifier() == Some("lifeboat-orders-1")
                    && r.tags().iter().any(|t| t.key() == Some("lifeboat:incident") && t.value() == Some("i-1"))
            };
        let first = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
            .match_requests(private_and_tagged)
            .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
        let restore = Restore {
            region: None,
            instance_class: "db.t3.micro".into(),
            subnet_group: "dr-db".into(),
            security_groups: vec![],
        };
        let arn = "arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-orders-1";
        let rds = Rds::with_client("us-west-2", mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&first]));
        let acted = rds.restore_instance("us-west-2", "lf-i-1", arn, &restore, &[("lifeboat:incident", "i-1")]).await;
        assert_eq!(acted.unwrap(), Acted::Started);
        assert_eq!(first.num_calls(), 1);

        let exists = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot).then_error(|| {
            RestoreDBInstanceFromDBSnapshotError::DbInstanceAlreadyExistsFault(
                DbInstanceAlreadyExistsFault::builder()
                    .meta(aws_smithy_types::error::ErrorMetadata::builder().code("DBInstanceAlreadyExists").build())
                    .build(),
            )
        });
        let rds = Rds::with_client("us-west-2", mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&exists]));
        let acted = rds.restore_instance("us-west-2", "lf-i-1", arn, &restore, &[("lifeboat:incident", "i-1")]).await;
        assert_eq!(acted.unwrap(), Acted::AlreadyDone);
    }

    #[tokio::test]
    async fn a_cluster_outside_any_global_database_is_refused() {
        let alone = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(DbCluster::builder().db_cluster_identifier("catalog-aurora-west").build())
                .build()
        });
        let rds = Rds::with_client("us-west-2", mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&alone]));
        let err = rds.switch_global("us-west-2", SECONDARY, false).await.unwrap_err();
        assert!(!err.is_retryable() && err.to_string().contains("no global cluster"), "{err}");
    }
}
