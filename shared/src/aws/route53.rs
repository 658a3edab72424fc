//! Route 53: point the database's DNS name at the new primary, and see the change reach every
//! Route 53 name server (`INSYNC`).

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, RrType,
};
use aws_sdk_route53::Client;

use super::{sdk_error, SdkConfig};
use crate::error::LifeboatError;

pub struct Dns {
    client: Client,
}

/// Route 53 answers names fully qualified, with the trailing dot.
fn same_name(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

impl Dns {
    pub fn new(sdk: &SdkConfig) -> Self {
        Dns { client: Client::new(sdk) }
    }

    /// `UPSERT` a CNAME `record` → `target`: creating or replacing it is the same call, so a
    /// repeat is harmless. Returns the change id to wait on.
    pub async fn upsert_cname(
        &self,
        zone: &str,
        record: &str,
        target: &str,
        ttl: u32,
        comment: &str,
    ) -> Result<String, LifeboatError> {
        let set = ResourceRecordSet::builder()
            .name(record)
            .r#type(RrType::Cname)
            .ttl(i64::from(ttl))
            .resource_records(
                ResourceRecord::builder().value(target).build().map_err(|e| LifeboatError::Rejected(e.to_string()))?,
            )
            .build()
            .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(set)
            .build()
            .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        // ChangeBatch Comment: at most 256 characters.
        let comment: String = comment.chars().take(256).collect();
        let batch = ChangeBatch::builder()
            .changes(change)
            .comment(comment)
            .build()
            .map_err(|e| LifeboatError::Rejected(e.to_string()))?;
        let out = self
            .client
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch)
            .send()
            .await
            .map_err(|e| sdk_error(&format!("route53:ChangeResourceRecordSets {record}"), e))?;
        Ok(out.change_info().map(|c| c.id().to_owned()).unwrap_or_default())
    }

    /// Whether the change reached all Route 53 name servers.
    pub async fn insync(&self, change_id: &str) -> Result<bool, LifeboatError> {
        let out = self.client.get_change().id(change_id).send().await.map_err(|e| sdk_error("route53:GetChange", e))?;
        Ok(out.change_info().is_some_and(|c| c.status() == &ChangeStatus::Insync))
    }

    /// Why a CNAME UPSERT of `record` would be refused, or None. A CNAME can't share its name
    /// with another type (an alias A record, say), and a simple record can't replace records with
    /// a routing policy: Route 53 answers InvalidChangeBatch. Preflight asks, before anything is
    /// done, rather than the DNS step finding out after the database moved.
    pub async fn cname_refused(&self, zone: &str, record: &str) -> Result<Option<String>, LifeboatError> {
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(record)
            .max_items(20)
            .send()
            .await
            .map_err(|e| sdk_error("route53:ListResourceRecordSets", e))?;
        Ok(out.resource_record_sets().iter().filter(|s| same_name(s.name(), record)).find_map(|s| {
            let alias = if s.alias_target().is_some() { "an alias " } else { "a " };
            if s.r#type() != &RrType::Cname {
                Some(format!("{record} is {alias}{} record", s.r#type().as_str()))
            } else {
                s.set_identifier().map(|id| format!("{record} is a CNAME with a routing policy (set {id})"))
            }
            .map(|what| {
                format!(
                    "{what}: Route 53 refuses a simple CNAME UPSERT over it (InvalidChangeBatch). Point failover.dns \
                     at a simple CNAME record, or remove failover.dns and move traffic by hand"
                )
            })
        }))
    }

    /// In a failover pair: the CNAME target of `record`'s set whose health check is the Route 53
    /// ARC routing control `control` (a `RECOVERY_CONTROL` check), if there is one.
    pub async fn guarded_by(&self, zone: &str, record: &str, control: &str) -> Result<Option<String>, LifeboatError> {
        // A failover pair is two sets of one name: both come in the first page.
        for set in self.cnames(zone, record, None).await? {
            let Some(id) = set.health_check_id() else { continue };
            let check = self
                .client
                .get_health_check()
                .health_check_id(id)
                .send()
                .await
                .map_err(|e| sdk_error("route53:GetHealthCheck", e))?;
            let guards =
                check.health_check().and_then(|c| c.health_check_config()).and_then(|c| c.routing_control_arn());
            if guards == Some(control) {
                return Ok(set.resource_records().first().map(|r| r.value().trim_end_matches('.').to_owned()));
            }
        }
        Ok(None)
    }

    /// The CNAME target `record` has now, if it is a CNAME.
    pub async fn cname(&self, zone: &str, record: &str) -> Result<Option<String>, LifeboatError> {
        let sets = self.cnames(zone, record, Some(1)).await?;
        Ok(sets.first().and_then(|s| s.resource_records().first()).map(|r| r.value().trim_end_matches('.').to_owned()))
    }

    /// `record`'s CNAME record sets, from the first page of the zone's listing starting there.
    async fn cnames(
        &self,
        zone: &str,
        record: &str,
        max: Option<i32>,
    ) -> Result<Vec<ResourceRecordSet>, LifeboatError> {
        let out = self
            .client
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(record)
            .start_record_type(RrType::Cname)
            .set_max_items(max)
            .send()
            .await
            .map_err(|e| sdk_error("route53:ListResourceRecordSets", e))?;
        let mut sets = out.resource_record_sets;
        sets.retain(|s| same_name(s.name(), record) && s.r#type() == &RrType::Cname);
        Ok(sets)
    }
}
