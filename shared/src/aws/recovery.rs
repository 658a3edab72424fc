//! RDS calls that recover a database: read instance and cluster state, promote, fail over,
//! switch a global database, restore from a DR copy or to a point in time, reboot with failover.
//! Each call is made so that repeating it is success: an identifier that already exists is the
//! restore this incident started, a replica that is no longer one was promoted.

use aws_sdk_rds::types::{DbCluster, DbInstance, Tag};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::rds::Rds;
use super::{error_code, sdk_error, to_chrono};
use crate::error::LifeboatError;
use crate::failover::steps::{DbState, Replication};
use crate::restore::{Origin, RestoreSpec, Settings, Shape};

pub use crate::failover::steps::Membership;

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

/// RDS's "not a read replica" to a promotion is one already made.
fn promotion<T, E, R>(op: &str, result: Result<T, SdkError<E, R>>) -> Result<Acted, LifeboatError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match result {
        Err(e) if not_a_replica(&e) => Ok(Acted::AlreadyDone),
        other => outcome(op, other, &[]),
    }
}

/// A promotion found already made is this failover's only when it had asked for it before.
fn promoted(id: &str, requested: bool, result: Result<Acted, LifeboatError>) -> Result<Acted, LifeboatError> {
    match result {
        Ok(Acted::AlreadyDone) if !requested => Err(LifeboatError::Rejected(format!(
            "{id} is no longer a read replica, and this failover did not promote it: someone else did. \
             Check its data before pointing the applications at it"
        ))),
        other => other,
    }
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
        engine: i.engine.clone(),
        port: i.endpoint.as_ref().and_then(|e| e.port),
        tags: tag_map(i.tag_list()),
        kms_key: i.kms_key_id.clone().filter(|_| i.storage_encrypted == Some(true)),
        settings: Settings {
            instance_class: i.db_instance_class.clone(),
            subnet_group: i.db_subnet_group.as_ref().and_then(|g| g.db_subnet_group_name.clone()),
            security_groups: i.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id.clone()).collect(),
            parameter_group: i.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name.clone()),
            cluster_parameter_group: None,
            option_group: i.option_group_memberships().first().and_then(|g| g.option_group_name.clone()),
            multi_az: i.multi_az.unwrap_or(false),
        },
        replication: i.status_infos().iter().find(|s| s.status_type() == Some("read replication")).map(|s| {
            Replication {
                status: s.status().unwrap_or_default().to_owned(),
                normal: s.normal(),
                message: s.message().filter(|m| !m.is_empty()).map(str::to_owned),
            }
        }),
        arn: i.db_instance_arn.clone(),
        data_api: false,
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
        engine: c.engine.clone(),
        port: c.port,
        tags: tag_map(c.tag_list()),
        kms_key: c.kms_key_id.clone().filter(|_| c.storage_encrypted == Some(true)),
        // An Aurora writer's class and parameter group are its instance's: `Rds::database` adds them.
        settings: Settings {
            instance_class: c.db_cluster_instance_class.clone(),
            subnet_group: c.db_subnet_group.clone(),
            security_groups: c.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id.clone()).collect(),
            parameter_group: None,
            cluster_parameter_group: c.db_cluster_parameter_group.clone(),
            option_group: None,
            multi_az: c.multi_az.unwrap_or(false),
        },
        replication: None,
        arn: c.db_cluster_arn.clone(),
        data_api: c.http_endpoint_enabled == Some(true),
    }
}

fn tags(pairs: &[(String, String)]) -> Vec<Tag> {
    pairs.iter().map(|(k, v)| Tag::builder().key(k).value(v).build()).collect()
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
        // What a restore of an Aurora cluster gives its writer: the current writer's class and group.
        if let Some(current) = c.writer.clone().filter(|_| writer.is_none()) {
            if let Some(w) = self.instance(region, &current).await? {
                c.settings.instance_class = c.settings.instance_class.or(w.settings.instance_class);
                c.settings.parameter_group = w.settings.parameter_group;
            }
        }
        if let Some(w) = writer {
            match self.instance(region, w).await? {
                Some(i) if i.available() => {}
                Some(i) => c.status = format!("{} (writer {w} {})", c.status, i.status),
                None => c.status = format!("{} (writer {w} not created yet)", c.status),
            }
        }
        Ok(Some(c))
    }

    /// `PromoteReadReplica`, or `PromoteReadReplicaDBCluster` for an Aurora replica cluster. RDS
    /// refuses it for what is no longer a replica (InvalidDBInstanceState). That is this
    /// failover's promotion done only when `requested` (its timeline shows it asked before, so
    /// this is a retry); otherwise someone promoted the target outside the failover, and taking it
    /// over would point the applications at a database nobody checked.
    pub async fn promote(
        &self,
        region: &str,
        id: &str,
        cluster: bool,
        requested: bool,
    ) -> Result<Acted, LifeboatError> {
        let now = if cluster { self.cluster(region, id).await? } else { self.instance(region, id).await? };
        // A retry finds its own promotion still running (RDS keeps the source while it does):
        // asking again would be refused, and fail the failover mid-promotion.
        if requested && now.as_ref().is_some_and(|s| !s.available()) {
            return Ok(Acted::AlreadyDone);
        }
        if now.as_ref().is_some_and(|s| s.replica_of.is_none()) {
            // Promoted before this step asked: someone else's doing, unless an earlier attempt asked.
            return promoted(id, requested, Ok(Acted::AlreadyDone));
        }
        // It was a replica when this call went out: "not a read replica" to it is this call's own
        // first attempt, gone through with its answer lost (the SDK retried), not someone else's.
        self.count();
        let client = self.client(region);
        if cluster {
            let sent = client.promote_read_replica_db_cluster().db_cluster_identifier(id).send().await;
            promotion("rds:PromoteReadReplicaDBCluster", sent)
        } else {
            promotion("rds:PromoteReadReplica", client.promote_read_replica().db_instance_identifier(id).send().await)
        }
    }

    /// `CreateDBInstanceReadReplica` in the old primary's region, of the active side (by ARN: "If
    /// the source DB instance is in a different AWS Region from the read replica, specify a valid
    /// DB instance ARN"). An identifier that exists already is done when it is a replica of that
    /// source (a repeat); anything else under that name is refused, never taken over.
    pub async fn create_replica(&self, back: &crate::active::WayBack) -> Result<Acted, LifeboatError> {
        if let Some(there) = self.instance(&back.region, &back.id).await? {
            let of = there.replica_of.as_deref();
            let source_id = back.source.rsplit(':').next().unwrap_or_default();
            if of.is_some_and(|o| o == back.source || o == source_id) {
                return Ok(Acted::AlreadyDone);
            }
            return Err(LifeboatError::Rejected(format!(
                "{} exists in {} and is not a replica of {} ({of:?}): not taking it over",
                back.id, back.region, back.source
            )));
        }
        let s = &back.settings;
        self.count();
        let sent = self
            .client(&back.region)
            .create_db_instance_read_replica()
            .db_instance_identifier(&back.id)
            .source_db_instance_identifier(&back.source)
            .set_db_instance_class(s.instance_class.clone())
            .set_db_subnet_group_name(s.subnet_group.clone())
            .set_vpc_security_group_ids(Some(s.security_groups.clone()).filter(|g| !g.is_empty()))
            .set_db_parameter_group_name(s.parameter_group.clone())
            .set_option_group_name(s.option_group.clone())
            .multi_az(s.multi_az)
            .set_kms_key_id(back.kms_key.clone())
            .set_enable_iam_database_authentication(back.iam_auth.then_some(true))
            .set_tags(Some(tags(&back.tags)))
            .send()
            .await;
        outcome("rds:CreateDBInstanceReadReplica", sent, &INSTANCE_EXISTS)
    }

    /// The way back of an Aurora MySQL database: `CreateDBCluster` in the old primary's region
    /// as a replica of the active cluster ("ReplicationSourceIdentifier: The Amazon Resource Name
    /// (ARN) of the source DB instance or DB cluster if this DB cluster is created as a read
    /// replica"), then its instance once the cluster is available (RDS creates instances only in
    /// an available cluster). None: the cluster is still being created, run again. A cluster of
    /// that name replicating from anything else is refused, never taken over.
    pub async fn create_replica_cluster(&self, back: &crate::active::WayBack) -> Result<Option<Acted>, LifeboatError> {
        let s = &back.settings;
        let client = self.client(&back.region);
        let mut started = false;
        let cluster = match self.cluster(&back.region, &back.id).await? {
            Some(c) => c,
            None => {
                self.count();
                let sent = client
                    .create_db_cluster()
                    .db_cluster_identifier(&back.id)
                    .set_engine(back.engine.clone())
                    .set_engine_version(back.engine_version.clone())
                    .replication_source_identifier(&back.source)
                    .set_db_subnet_group_name(s.subnet_group.clone())
                    .set_vpc_security_group_ids(Some(s.security_groups.clone()).filter(|g| !g.is_empty()))
                    .set_db_cluster_parameter_group_name(s.cluster_parameter_group.clone())
                    .set_kms_key_id(back.kms_key.clone())
                    .set_storage_encrypted(back.kms_key.as_ref().map(|_| true))
                    .set_enable_iam_database_authentication(back.iam_auth.then_some(true))
                    .set_tags(Some(tags(&back.tags)))
                    .send()
                    .await;
                started = outcome("rds:CreateDBCluster", sent, &CLUSTER_EXISTS)? == Acted::Started;
                let Some(c) = self.cluster(&back.region, &back.id).await? else { return Ok(None) };
                c
            }
        };
        let source_id = back.source.rsplit(':').next().unwrap_or_default();
        if !cluster.replica_of.as_deref().is_some_and(|o| o == back.source || o == source_id) {
            return Err(LifeboatError::Rejected(format!(
                "{} exists in {} and is not a replica of {} ({:?}): not taking it over",
                back.id, back.region, back.source, cluster.replica_of
            )));
        }
        let Some(instance) = back.instance.as_deref() else { return Ok(Some(Acted::AlreadyDone)) };
        if self.instance(&back.region, instance).await?.is_some() {
            return Ok(Some(if started { Acted::Started } else { Acted::AlreadyDone }));
        }
        if !cluster.available() {
            return Ok(None);
        }
        let engine = back.engine.clone().unwrap_or_default();
        let acted = self.cluster_instance(&back.region, instance, &back.id, engine, s, &back.tags).await?;
        Ok(Some(if started { Acted::Started } else { acted }))
    }

    /// `CreateDBInstance` of `id` in Aurora cluster `cluster` (available: RDS refuses one sooner),
    /// private, with `settings`' class and parameter group: a restore's writer, a way back's
    /// instance. The identifier existing already is this call's, made before.
    async fn cluster_instance(
        &self,
        region: &str,
        id: &str,
        cluster: &str,
        engine: String,
        settings: &Settings,
        tag_pairs: &[(String, String)],
    ) -> Result<Acted, LifeboatError> {
        self.count();
        let sent = self
            .client(region)
            .create_db_instance()
            .db_instance_identifier(id)
            .db_cluster_identifier(cluster)
            .engine(engine)
            .set_db_instance_class(settings.instance_class.clone())
            .set_db_parameter_group_name(settings.parameter_group.clone())
            .publicly_accessible(false)
            .set_tags(Some(tags(tag_pairs)))
            .send()
            .await;
        outcome("rds:CreateDBInstance", sent, &INSTANCE_EXISTS)
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

    /// The global cluster a member cluster (by ARN) belongs to, whether it is the writer, and
    /// the switchover or failover in progress, if any. DescribeGlobalClusters filters only by
    /// region, so the member's own `GlobalClusterIdentifier` names it (a name, or its ARN).
    pub async fn global_membership(
        &self,
        region: &str,
        cluster_arn: &str,
    ) -> Result<Option<Membership>, LifeboatError> {
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
            // "This data type is empty unless a switchover or failover operation is scheduled or
            // is in progress" (FailoverState): present means under way, not failed.
            let moving_to = g
                .failover_state()
                .filter(|f| f.status().is_some_and(|s| s.as_str() != "cancelling"))
                .map(|f| f.to_db_cluster_arn().unwrap_or_default().to_owned());
            Some(Membership {
                global: g.global_cluster_identifier.clone()?,
                is_writer: member.is_writer == Some(true),
                moving_to,
                status: g.status.clone(),
            })
        }))
    }

    /// `SwitchoverGlobalCluster` (planned) or `FailoverGlobalCluster` with `AllowDataLoss`
    /// (unplanned) to the secondary `target_arn`. Already the writer: done.
    pub async fn switch_global(
        &self,
        region: &str,
        target_arn: &str,
        allow_data_loss: bool,
        requested: bool,
    ) -> Result<Acted, LifeboatError> {
        let Some(Membership { global, is_writer, moving_to, .. }) = self.global_membership(region, target_arn).await?
        else {
            return Err(LifeboatError::Rejected(format!("{target_arn} is in no global cluster")));
        };
        // Found done or under way is this failover's own only when it asked before (a retry);
        // otherwise someone else switched the global database, as `promote` refuses too.
        if !requested && (is_writer || moving_to.as_deref() == Some(target_arn)) {
            return Err(LifeboatError::Rejected(format!(
                "{global} is already switching to, or written by, {target_arn}, and this failover did not ask: \
                 someone else did. Check it before pointing the applications at it"
            )));
        }
        match moving_to {
            // A retried step finds its own switchover under way: asking again would be refused,
            // or start another.
            Some(to) if to == target_arn => return Ok(Acted::AlreadyDone),
            Some(to) => {
                return Err(LifeboatError::Rejected(format!(
                    "{global} is already switching or failing over to {to}: not starting another"
                )))
            }
            None if is_writer => return Ok(Acted::AlreadyDone),
            None => {}
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

    /// Start the restore `spec` describes: instance or cluster, from a snapshot in its region or
    /// a point in time of its source, private, tagged, with every setting it names (RDS would
    /// use its defaults for any left out). An Aurora cluster gets no instance here: RDS refuses
    /// one until the cluster is available (`create_writer`, from the status step). The same
    /// identifier existing already is this restore, started before.
    pub async fn restore(&self, spec: &RestoreSpec) -> Result<Acted, LifeboatError> {
        let client = self.client(&spec.region);
        let s = &spec.settings;
        let groups = Some(s.security_groups.clone()).filter(|g| !g.is_empty());
        let tag_list = Some(tags(&spec.tags));
        // A Multi-AZ DB cluster is sized by DBClusterInstanceClass; an Aurora cluster by its writer.
        let cluster_class = (spec.shape == Shape::MultiAzCluster).then(|| s.instance_class.clone()).flatten();
        // IAM authentication is off in a restore unless asked for; left out rather than `false`
        // otherwise, as the calls have always been made.
        let iam_auth = spec.iam_auth.then_some(true);
        // The settings every restore call takes under the same names.
        macro_rules! common {
            ($b:expr) => {
                $b.set_db_subnet_group_name(s.subnet_group.clone())
                    .set_vpc_security_group_ids(groups.clone())
                    .set_tags(tag_list.clone())
                    .set_enable_iam_database_authentication(iam_auth)
            };
        }
        macro_rules! instance {
            ($b:expr) => {
                common!($b)
                    .set_db_instance_class(s.instance_class.clone())
                    .set_db_parameter_group_name(s.parameter_group.clone())
                    .set_option_group_name(s.option_group.clone())
                    .multi_az(s.multi_az)
                    .publicly_accessible(false)
            };
        }
        macro_rules! cluster {
            ($b:expr) => {
                common!($b)
                    .set_db_cluster_parameter_group_name(s.cluster_parameter_group.clone())
                    .set_db_cluster_instance_class(cluster_class.clone())
                    .set_publicly_accessible(cluster_class.as_ref().map(|_| false))
            };
        }
        self.count();
        match (&spec.origin, spec.shape) {
            (Origin::Snapshot { arn }, Shape::Instance) => {
                // The copy is in this region: its name is enough, and what moto takes.
                let b = client
                    .restore_db_instance_from_db_snapshot()
                    .db_instance_identifier(&spec.id)
                    .db_snapshot_identifier(arn.rsplit(':').next().unwrap_or(arn));
                outcome("rds:RestoreDBInstanceFromDBSnapshot", instance!(b).send().await, &INSTANCE_EXISTS)
            }
            (Origin::PointInTime { source, time }, Shape::Instance) => {
                let b = client
                    .restore_db_instance_to_point_in_time()
                    .source_db_instance_identifier(source)
                    .target_db_instance_identifier(&spec.id)
                    .restore_time(aws_smithy_types::DateTime::from_secs(time.timestamp()));
                outcome("rds:RestoreDBInstanceToPointInTime", instance!(b).send().await, &INSTANCE_EXISTS)
            }
            (Origin::Snapshot { arn }, _) => {
                let snap_id = arn.rsplit(':').next().unwrap_or(arn);
                let (engine, _) = self
                    .snapshot_engine(arn)
                    .await?
                    .ok_or_else(|| LifeboatError::Rejected(format!("{arn} is gone from {}", spec.region)))?;
                let b = client
                    .restore_db_cluster_from_snapshot()
                    .db_cluster_identifier(&spec.id)
                    .snapshot_identifier(snap_id)
                    .engine(engine);
                outcome("rds:RestoreDBClusterFromSnapshot", cluster!(b).send().await, &CLUSTER_EXISTS)
            }
            (Origin::PointInTime { source, time }, _) => {
                let b = client
                    .restore_db_cluster_to_point_in_time()
                    .source_db_cluster_identifier(source)
                    .db_cluster_identifier(&spec.id)
                    .restore_to_time(aws_smithy_types::DateTime::from_secs(time.timestamp()));
                outcome("rds:RestoreDBClusterToPointInTime", cluster!(b).send().await, &CLUSTER_EXISTS)
            }
        }
    }

    /// An Aurora restore's writer, once its cluster is `available`: "You can create DB instances
    /// only after the RestoreDBClusterFromSnapshot operation has completed and the DB cluster is
    /// available" (RDS API reference; RestoreDBClusterToPointInTime says the same). `None` while
    /// the cluster isn't: the status step looks again at its next poll.
    /// With `spec.data_api`, the cluster's HTTP endpoint is enabled too, once it is available.
    pub async fn create_writer(&self, spec: &RestoreSpec) -> Result<Option<Acted>, LifeboatError> {
        let made = self.writer(spec).await?;
        if made.is_some() && spec.data_api {
            self.data_api_on(&spec.region, &spec.id).await?;
        }
        Ok(made)
    }

    /// EnableHttpEndpoint on a cluster that is available and has it off ("This operation applies
    /// only to Aurora Serverless v2 and provisioned DB clusters", RDS API reference); a cluster
    /// that has it on already is left as it is, so a replayed status step calls nothing.
    async fn data_api_on(&self, region: &str, id: &str) -> Result<(), LifeboatError> {
        let Some(cluster) = self.cluster(region, id).await? else { return Ok(()) };
        let Some(arn) = cluster.arn.as_deref().filter(|_| cluster.available() && !cluster.data_api) else {
            return Ok(());
        };
        self.count();
        match self.client(region).enable_http_endpoint().resource_arn(arn).send().await {
            Ok(_) => Ok(()),
            // "another operation is in progress" (the writer just created): the next poll asks again.
            Err(e) if error_code(&e) == Some("InvalidResourceStateFault") => Ok(()),
            Err(e) => Err(sdk_error("rds:EnableHttpEndpoint", e)),
        }
    }

    async fn writer(&self, spec: &RestoreSpec) -> Result<Option<Acted>, LifeboatError> {
        let Some(writer) = &spec.writer else { return Ok(Some(Acted::AlreadyDone)) };
        if self.instance(&spec.region, writer).await?.is_some() {
            return Ok(Some(Acted::AlreadyDone));
        }
        let Some(cluster) = self.cluster(&spec.region, &spec.id).await? else { return Ok(None) };
        if !cluster.available() {
            return Ok(None);
        }
        let engine =
            cluster.engine.clone().ok_or_else(|| LifeboatError::Transient(format!("{} has no engine yet", spec.id)))?;
        self.cluster_instance(&spec.region, writer, &spec.id, engine, &spec.settings, &spec.tags).await.map(Some)
    }

    /// Instances and clusters in `region` carrying tag `key` = `value` (the listing includes
    /// tags), each with whether it is a cluster.
    pub async fn tagged(&self, region: &str, key: &str, value: &str) -> Result<Vec<(bool, DbState)>, LifeboatError> {
        let client = self.client(region);
        let mut out = Vec::new();
        let mut pages = client.describe_db_instances().into_paginator().send();
        while let Some(page) = pages.next().await {
            self.count();
            let page = page.map_err(|e| sdk_error("rds:DescribeDBInstances", e))?;
            out.extend(page.db_instances().iter().map(|i| (false, from_instance(i))));
        }
        let mut pages = client.describe_db_clusters().into_paginator().send();
        while let Some(page) = pages.next().await {
            self.count();
            let page = page.map_err(|e| sdk_error("rds:DescribeDBClusters", e))?;
            out.extend(page.db_clusters().iter().map(|c| (true, from_cluster(c))));
        }
        out.retain(|(_, d)| d.tags.get(key).map(String::as_str) == Some(value));
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
        // An Aurora cluster's instances go first; a Multi-AZ DB cluster's are RDS's own, and
        // DeleteDBCluster terminates them.
        let aurora = c.engine.as_deref().is_none_or(|e| e.starts_with("aurora"));
        for member in c.members.iter().filter(|_| aurora) {
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

    /// The engine and its version a snapshot (instance or cluster, by ARN) restores to.
    pub async fn snapshot_engine(&self, arn: &str) -> Result<Option<(String, String)>, LifeboatError> {
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
                .map(|s| (s.engine.clone().unwrap_or_default(), s.engine_version.clone().unwrap_or_default())),
            _ => client
                .describe_db_snapshots()
                .db_snapshot_identifier(&parsed.id)
                .send()
                .await
                .map_err(|e| sdk_error("rds:DescribeDBSnapshots", e))?
                .db_snapshots()
                .first()
                .map(|s| (s.engine.clone().unwrap_or_default(), s.engine_version.clone().unwrap_or_default())),
        })
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

    fn way_back_cluster() -> crate::active::WayBack {
        crate::active::WayBack {
            way: crate::active::Way::ReplicaCluster,
            region: "us-east-1".into(),
            id: "lf-shop-r202612071402".into(),
            arn: "arn:aws:rds:us-east-1:123456789012:cluster:lf-shop-r202612071402".into(),
            source: "arn:aws:rds:us-west-2:123456789012:cluster:shop-west".into(),
            settings: Settings { instance_class: Some("db.r6g.large".into()), ..Settings::default() },
            kms_key: Some("arn:aws:kms:us-east-1:123456789012:key/old".into()),
            engine: Some("aurora-mysql".into()),
            engine_version: Some("8.0.mysql_aurora.3.05.2".into()),
            instance: Some("lf-shop-r202612071402-1".into()),
            tags: Vec::new(),
            iam_auth: false,
        }
    }

    fn cluster_is(status: &'static str, source: &'static str) -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(move || {
            DescribeDbClustersOutput::builder()
                .db_clusters(
                    DbCluster::builder()
                        .db_cluster_identifier("lf-shop-r202612071402")
                        .status(status)
                        .replication_source_identifier(source)
                        .build(),
                )
                .build()
        })
    }

    #[tokio::test]
    async fn a_replica_cluster_gets_its_instance_only_once_available_and_a_stranger_is_never_taken_over() {
        use aws_sdk_rds::operation::create_db_cluster::{CreateDBClusterError, CreateDbClusterOutput};
        use aws_sdk_rds::operation::create_db_instance::CreateDbInstanceOutput;
        use aws_sdk_rds::types::error::DbClusterNotFoundFault;
        let back = way_back_cluster();
        let missing = mock!(aws_sdk_rds::Client::describe_db_clusters).then_error(|| {
            aws_sdk_rds::operation::describe_db_clusters::DescribeDBClustersError::DbClusterNotFoundFault(
                DbClusterNotFoundFault::builder()
                    .message("none")
                    .meta(aws_smithy_types::error::ErrorMetadata::builder().code("DBClusterNotFoundFault").build())
                    .build(),
            )
        });
        let create = mock!(aws_sdk_rds::Client::create_db_cluster)
            .match_requests(|r| {
                r.replication_source_identifier() == Some("arn:aws:rds:us-west-2:123456789012:cluster:shop-west")
                    && r.engine() == Some("aurora-mysql")
                    && r.engine_version() == Some("8.0.mysql_aurora.3.05.2")
                    && r.kms_key_id() == Some("arn:aws:kms:us-east-1:123456789012:key/old")
                    && r.storage_encrypted() == Some(true)
            })
            .then_output(|| CreateDbClusterOutput::builder().build());
        let creating = cluster_is("creating", "arn:aws:rds:us-west-2:123456789012:cluster:shop-west");
        let no_instance = mock!(aws_sdk_rds::Client::describe_db_instances).then_error(|| {
            aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError::DbInstanceNotFoundFault(
                aws_sdk_rds::types::error::DbInstanceNotFoundFault::builder()
                    .message("none")
                    .meta(aws_smithy_types::error::ErrorMetadata::builder().code("DBInstanceNotFound").build())
                    .build(),
            )
        });
        let instance =
            mock!(aws_sdk_rds::Client::create_db_instance).then_output(|| CreateDbInstanceOutput::builder().build());
        let rds = Rds::with_client(
            "us-east-1",
            mock_client!(aws_sdk_rds, RuleMode::Sequential, [&missing, &create, &creating, &no_instance, &instance]),
        );
        assert_eq!(rds.create_replica_cluster(&back).await.unwrap(), None, "still creating: run again");
        assert_eq!((create.num_calls(), instance.num_calls()), (1, 0), "no instance in a cluster that is creating");

        // Another source under that name: refused, nothing created.
        let stranger = cluster_is("available", "arn:aws:rds:eu-west-1:123456789012:cluster:other");
        let never =
            mock!(aws_sdk_rds::Client::create_db_cluster).then_error(|| CreateDBClusterError::unhandled("never asked"));
        let rds = Rds::with_client("us-east-1", mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&stranger, &never]));
        let refused = rds.create_replica_cluster(&back).await.unwrap_err().to_string();
        assert!(refused.contains("not taking it over"), "{refused}");
        assert_eq!(never.num_calls(), 0);
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
        assert_eq!(rds.switch_global("us-west-2", SECONDARY, false, false).await.unwrap(), Acted::Started);
        assert_eq!(switch.num_calls(), 1);

        let after = mock!(aws_sdk_rds::Client::describe_global_clusters).then_output(|| global(SECONDARY));
        let never = mock!(aws_sdk_rds::Client::failover_global_cluster)
            .then_output(|| FailoverGlobalClusterOutput::builder().build());
        let rds = Rds::with_client(
            "us-west-2",
            mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&member_cluster(), &after, &never]),
        );
        assert_eq!(rds.switch_global("us-west-2", SECONDARY, true, true).await.unwrap(), Acted::AlreadyDone);
        assert_eq!(never.num_calls(), 0, "a repeated step doesn't fail over again");
    }

    #[tokio::test]
    async fn a_switchover_under_way_is_this_steps_own_not_a_failure_and_not_asked_twice() {
        use aws_sdk_rds::types::{FailoverState, FailoverStatus};
        let moving = |to: &str| {
            let mut out = global(PRIMARY);
            let g = out.global_clusters.as_mut().unwrap().first_mut().unwrap();
            g.failover_state = Some(
                FailoverState::builder()
                    .status(FailoverStatus::FailingOver)
                    .from_db_cluster_arn(PRIMARY)
                    .to_db_cluster_arn(to)
                    .is_data_loss_allowed(true)
                    .build(),
            );
            out
        };
        let under_way = mock!(aws_sdk_rds::Client::describe_global_clusters).then_output(move || moving(SECONDARY));
        let never = mock!(aws_sdk_rds::Client::failover_global_cluster)
            .then_output(|| FailoverGlobalClusterOutput::builder().build());
        let rds = Rds::with_client(
            "us-west-2",
            mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&member_cluster(), &under_way, &never]),
        );
        // The primary is still the writer while the failover runs: a retry must not ask again.
        assert_eq!(rds.switch_global("us-west-2", SECONDARY, true, true).await.unwrap(), Acted::AlreadyDone);
        assert_eq!(never.num_calls(), 0);
        // The same found by a first attempt is not this failover's: someone else started it.
        let err = rds.switch_global("us-west-2", SECONDARY, true, false).await.unwrap_err();
        assert!(!err.is_retryable() && err.to_string().contains("someone else"), "{err}");

        let elsewhere = "arn:aws:rds:eu-west-1:123456789012:cluster:catalog-aurora-eu";
        let other = mock!(aws_sdk_rds::Client::describe_global_clusters).then_output(move || moving(elsewhere));
        let rds = Rds::with_client(
            "us-west-2",
            mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&member_cluster(), &other, &never]),
        );
        let err = rds.switch_global("us-west-2", SECONDARY, true, true).await.unwrap_err();
        assert!(!err.is_retryable() && err.to_string().contains("already switching or failing over"), "{err}");
        assert_eq!(never.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_promotion_whose_answer_was_lost_is_this_calls_own_not_someone_elses() {
        use aws_sdk_rds::operation::describe_db_instances::DescribeDbInstancesOutput;
        use aws_sdk_rds::operation::promote_read_replica::PromoteReadReplicaError;
        use aws_sdk_rds::types::error::InvalidDbInstanceStateFault;
        let replica = mock!(aws_sdk_rds::Client::describe_db_instances).then_output(|| {
            DescribeDbInstancesOutput::builder()
                .db_instances(
                    DbInstance::builder()
                        .db_instance_identifier("orders-replica")
                        .db_instance_status("available")
                        .read_replica_source_db_instance_identifier("arn:aws:rds:us-east-1:123456789012:db:orders")
                        .build(),
                )
                .build()
        });
        // What the SDK's retry hears after the first attempt went through: RDS's refusal.
        let refused = mock!(aws_sdk_rds::Client::promote_read_replica).then_error(|| {
            PromoteReadReplicaError::InvalidDbInstanceStateFault(
                InvalidDbInstanceStateFault::builder()
                    .message("DB Instance is not a read replica.")
                    .meta(
                        aws_sdk_rds::error::ErrorMetadata::builder()
                            .code("InvalidDBInstanceState")
                            .message("DB Instance is not a read replica.")
                            .build(),
                    )
                    .build(),
            )
        });
        let rds = Rds::with_client("us-west-2", mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&replica, &refused]));
        // The first act (nothing asked before): still a replica when asked, so the refusal is the
        // promotion this call made.
        assert_eq!(rds.promote("us-west-2", "orders-replica", false, false).await.unwrap(), Acted::AlreadyDone);
        assert_eq!(refused.num_calls(), 1);
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
        assert_eq!(rds.switch_global("us-west-2", SECONDARY, true, true).await.unwrap(), Acted::Started);
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
                    // Every setting named, none left to RDS's defaults.
                    && r.db_subnet_group_name() == Some("dr-db")
                    && r.vpc_security_group_ids() == ["sg-dr"]
                    && r.db_parameter_group_name() == Some("orders-pg")
                    && r.option_group_name() == Some("orders-og")
                    && r.multi_az() == Some(true)
                    && r.db_instance_class() == Some("db.t3.micro")
            };
        let first = mock!(aws_sdk_rds::Client::restore_db_instance_from_db_snapshot)
            .match_requests(private_and_tagged)
            .then_output(|| RestoreDbInstanceFromDbSnapshotOutput::builder().build());
        let arn = "arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-orders-1";
        let settings = Settings {
            instance_class: Some("db.t3.micro".into()),
            subnet_group: Some("dr-db".into()),
            security_groups: vec!["sg-dr".into()],
            parameter_group: Some("orders-pg".into()),
            cluster_parameter_group: None,
            option_group: Some("orders-og".into()),
            multi_az: true,
        };
        let spec = RestoreSpec::new(
            "us-west-2",
            Shape::Instance,
            "lf-i-1",
            Origin::Snapshot { arn: arn.into() },
            settings,
            "t",
        )
        .tagged(&[("lifeboat:incident", "i-1")]);
        let rds = Rds::with_client("us-west-2", mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&first]));
        let acted = rds.restore(&spec).await;
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
        assert_eq!(rds.restore(&spec).await.unwrap(), Acted::AlreadyDone);
    }

    #[tokio::test]
    async fn a_multi_az_db_cluster_is_sized_by_its_cluster_class_and_gets_no_writer() {
        use aws_sdk_rds::operation::describe_db_cluster_snapshots::DescribeDbClusterSnapshotsOutput;
        use aws_sdk_rds::operation::restore_db_cluster_from_snapshot::RestoreDbClusterFromSnapshotOutput;
        use aws_sdk_rds::types::DbClusterSnapshot;
        let snapshot = mock!(aws_sdk_rds::Client::describe_db_cluster_snapshots).then_output(|| {
            DescribeDbClusterSnapshotsOutput::builder()
                .db_cluster_snapshots(DbClusterSnapshot::builder().engine("postgres").engine_version("16.4").build())
                .build()
        });
        let restore = mock!(aws_sdk_rds::Client::restore_db_cluster_from_snapshot)
            .match_requests(|r| {
                r.engine() == Some("postgres")
                    && r.db_cluster_instance_class() == Some("db.m6gd.large")
                    && r.publicly_accessible() == Some(false)
                    && r.db_cluster_parameter_group_name() == Some("ledger-cpg")
                    && r.db_subnet_group_name() == Some("dr-db")
            })
            .then_output(|| RestoreDbClusterFromSnapshotOutput::builder().build());
        let settings = Settings {
            instance_class: Some("db.m6gd.large".into()),
            subnet_group: Some("dr-db".into()),
            cluster_parameter_group: Some("ledger-cpg".into()),
            ..Settings::default()
        };
        let arn = "arn:aws:rds:us-west-2:123456789012:cluster-snapshot:lifeboat-ledger-1";
        let spec = RestoreSpec::new(
            "us-west-2",
            Shape::MultiAzCluster,
            "lf-ledger",
            Origin::Snapshot { arn: arn.into() },
            settings,
            "t",
        );
        let rds = Rds::with_client("us-west-2", mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&snapshot, &restore]));
        assert_eq!(rds.restore(&spec).await.unwrap(), Acted::Started);
        assert_eq!(restore.num_calls(), 1);
        // RDS makes a Multi-AZ DB cluster's instances itself: nothing to create, nothing called.
        assert_eq!(rds.create_writer(&spec).await.unwrap(), Some(Acted::AlreadyDone));
    }

    #[tokio::test]
    async fn a_cluster_outside_any_global_database_is_refused() {
        let alone = mock!(aws_sdk_rds::Client::describe_db_clusters).then_output(|| {
            DescribeDbClustersOutput::builder()
                .db_clusters(DbCluster::builder().db_cluster_identifier("catalog-aurora-west").build())
                .build()
        });
        let rds = Rds::with_client("us-west-2", mock_client!(aws_sdk_rds, RuleMode::MatchAny, [&alone]));
        let err = rds.switch_global("us-west-2", SECONDARY, false, true).await.unwrap_err();
        assert!(!err.is_retryable() && err.to_string().contains("no global cluster"), "{err}");
    }
}

/// The groups a restore names, which must exist in the region it restores in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Subnet,
    Parameter,
    ClusterParameter,
    Option,
}

impl Rds {
    /// Whether the `kind` group `name` exists in `region` (readiness: read-only).
    pub async fn group_exists(&self, region: &str, kind: Group, name: &str) -> Result<bool, LifeboatError> {
        self.count();
        let client = self.client(region);
        match kind {
            Group::Subnet => found(
                "rds:DescribeDBSubnetGroups",
                client.describe_db_subnet_groups().db_subnet_group_name(name).send().await,
            ),
            Group::Parameter => found(
                "rds:DescribeDBParameterGroups",
                client.describe_db_parameter_groups().db_parameter_group_name(name).send().await,
            ),
            Group::ClusterParameter => found(
                "rds:DescribeDBClusterParameterGroups",
                client.describe_db_cluster_parameter_groups().db_cluster_parameter_group_name(name).send().await,
            ),
            Group::Option => {
                found("rds:DescribeOptionGroups", client.describe_option_groups().option_group_name(name).send().await)
            }
        }
    }
}

impl Rds {
    /// Whether RDS in `region` offers `class` for `engine` `version` (readiness: read-only). A
    /// region answers an empty list for a class it doesn't offer.
    pub async fn offers(&self, region: &str, engine: &str, version: &str, class: &str) -> Result<bool, LifeboatError> {
        self.count();
        let answer = self
            .client(region)
            .describe_orderable_db_instance_options()
            .engine(engine)
            .engine_version(version)
            .db_instance_class(class)
            .max_records(20)
            .send()
            .await
            .map_err(|e| sdk_error("rds:DescribeOrderableDBInstanceOptions", e))?;
        Ok(!answer.orderable_db_instance_options().is_empty())
    }
}

/// RDS's "not found" codes for the groups (DBSubnetGroupNotFoundFault, DBParameterGroupNotFound,
/// OptionGroupNotFoundFault) are an answer, not a failure.
fn found<T, E, R>(op: &str, answer: Result<T, SdkError<E, R>>) -> Result<bool, LifeboatError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match answer {
        Ok(_) => Ok(true),
        Err(e) if error_code(&e).is_some_and(|c| c.contains("NotFound")) => Ok(false),
        Err(e) => Err(sdk_error(op, e)),
    }
}
