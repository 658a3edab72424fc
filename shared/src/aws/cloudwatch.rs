//! CloudWatch, read only: a replica's lag (`ReplicaLag`, or an Aurora secondary's). One client per region, made on first use.
//! The CloudWatch SDK speaks Smithy RPC v2 CBOR, which moto does not (getmoto/moto#9195), so this
//! adapter is tested against aws-smithy-mocks.

use std::collections::BTreeMap;
use std::sync::Mutex;

use aws_config::{Region, SdkConfig};
use aws_sdk_cloudwatch::types::{Dimension, Statistic};
use aws_sdk_cloudwatch::Client;
use chrono::{DateTime, Utc};

use super::sdk_error;
use crate::error::LifeboatError;

pub struct Metrics {
    sdk: SdkConfig,
    clients: Mutex<BTreeMap<String, Client>>,
}

impl Metrics {
    pub fn new(sdk: &SdkConfig) -> Self {
        Metrics { sdk: sdk.clone(), clients: Mutex::default() }
    }

    /// With `client` for `region`, made elsewhere: a test's mock, since moto can't answer this
    /// SDK's CloudWatch calls.
    pub fn with_client(sdk: &SdkConfig, region: &str, client: Client) -> Self {
        Metrics { sdk: sdk.clone(), clients: Mutex::new([(region.to_owned(), client)].into()) }
    }

    fn client(&self, region: &str) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        clients
            .entry(region.to_owned())
            .or_insert_with(|| {
                Client::from_conf(
                    aws_sdk_cloudwatch::config::Builder::from(&self.sdk).region(Region::new(region.to_owned())).build(),
                )
            })
            .clone()
    }

    /// The newest `ReplicaLag` (seconds) of a read replica over the last 10 minutes; None when
    /// CloudWatch has no datapoint (a replica that stopped reporting is not "0 s behind").
    pub async fn replica_lag(
        &self,
        region: &str,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<i64>, LifeboatError> {
        Ok(self.lag(region, Lag::Replica, instance, now).await?.map(|s| s.round() as i64))
    }

    /// The newest lag of `id` by `lag`'s metric, in seconds, over the last 10 minutes; None when
    /// CloudWatch has no datapoint.
    pub async fn lag(
        &self,
        region: &str,
        lag: Lag,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<f64>, LifeboatError> {
        let (metric, dimension, per_second) = lag.metric();
        let role = lag.role().map(|(name, value)| Dimension::builder().name(name).value(value).build());
        let out = self
            .client(region)
            .get_metric_statistics()
            .namespace("AWS/RDS")
            .metric_name(metric)
            .set_dimensions(Some(
                std::iter::once(Dimension::builder().name(dimension).value(id).build()).chain(role).collect(),
            ))
            .start_time(aws_smithy_types::DateTime::from_secs(now.timestamp() - 600))
            .end_time(aws_smithy_types::DateTime::from_secs(now.timestamp()))
            .period(60)
            .statistics(Statistic::Maximum)
            .send()
            .await
            .map_err(|e| sdk_error("cloudwatch:GetMetricStatistics", e))?;
        Ok(out
            .datapoints()
            .iter()
            .filter_map(|d| Some((d.timestamp()?.secs(), d.maximum()?)))
            .max_by_key(|(t, _)| *t)
            .map(|(_, v)| v / per_second))
    }
}

/// Which lag a replica reports (Amazon CloudWatch metrics for Amazon RDS / for Amazon Aurora).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lag {
    /// `ReplicaLag` of a read replica instance, seconds.
    Replica,
    /// `AuroraGlobalDBReplicationLag` of a global database's secondary cluster, milliseconds.
    GlobalSecondary,
    /// `AuroraBinlogReplicaLag` of an Aurora MySQL replica cluster, seconds.
    BinlogCluster,
}

impl Lag {
    /// Its metric, dimension, and units per second.
    pub fn metric(self) -> (&'static str, &'static str, f64) {
        match self {
            Lag::Replica => ("ReplicaLag", "DBInstanceIdentifier", 1.0),
            Lag::GlobalSecondary => ("AuroraGlobalDBReplicationLag", "DBClusterIdentifier", 1000.0),
            Lag::BinlogCluster => ("AuroraBinlogReplicaLag", "DBClusterIdentifier", 1.0),
        }
    }

    /// A further dimension: a replica cluster's binlog lag is its writer instance's, published
    /// per cluster with `Role` `WRITER`.
    pub fn role(self) -> Option<(&'static str, &'static str)> {
        (self == Lag::BinlogCluster).then_some(("Role", "WRITER"))
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_cloudwatch::operation::get_metric_statistics::GetMetricStatisticsOutput;
    use aws_sdk_cloudwatch::types::Datapoint;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    #[tokio::test]
    async fn the_newest_datapoint_is_the_lag_and_no_datapoint_is_unknown() {
        let point = |secs: i64, max: f64| {
            Datapoint::builder().timestamp(aws_smithy_types::DateTime::from_secs(secs)).maximum(max).build()
        };
        let asked = mock!(Client::get_metric_statistics)
            .match_requests(|r| {
                r.metric_name() == Some("ReplicaLag")
                    && r.namespace() == Some("AWS/RDS")
                    && r.dimensions().first().and_then(|d| d.value()) == Some("orders-replica")
            })
            .then_output(move || {
                GetMetricStatisticsOutput::builder()
                    .datapoints(point(1_000, 12.0))
                    .datapoints(point(1_120, 41.6))
                    .datapoints(point(1_060, 90.0))
                    .build()
            });
        let silent = mock!(Client::get_metric_statistics).then_output(|| GetMetricStatisticsOutput::builder().build());
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::Sequential, [&asked, &silent]);
        let metrics = Metrics {
            sdk: SdkConfig::builder().build(),
            clients: Mutex::new([("us-west-2".to_owned(), client)].into()),
        };
        let now = DateTime::from_timestamp(1_200, 0).unwrap_or_default();
        assert_eq!(metrics.replica_lag("us-west-2", "orders-replica", now).await.unwrap(), Some(42));
        assert_eq!(metrics.replica_lag("us-west-2", "orders-replica", now).await.unwrap(), None);
    }
}
