//! AWS Health events for RDS: which protected databases they may touch. EventBridge delivers a
//! Health event in the region Health chose (the envelope's `region`); the affected region is
//! `detail.eventRegion`, and `affectedEntities`, when present, name the resources.
//! Parsed by hand rather than with `aws_lambda_events`' Health type, which requires `endTime`,
//! absent from every open event.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{Config, Database};
use crate::event::EventError;

pub const HEALTH_EVENT: &str = "AWS Health Event";

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthEvent {
    pub event_arn: String,
    pub service: String,
    #[serde(default)]
    pub event_type_code: String,
    #[serde(default)]
    pub event_type_category: String,
    /// `open`, `closed` or `upcoming`.
    pub status_code: String,
    pub event_region: String,
    #[serde(default)]
    pub start_time: Option<String>,
    /// As Health writes it (`Wed, 25 Nov 2026 19:38:00 GMT`); a new value is a new update.
    #[serde(default)]
    pub last_updated_time: Option<String>,
    #[serde(default)]
    pub event_description: Vec<Description>,
    #[serde(default)]
    pub affected_entities: Vec<Entity>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Description {
    #[serde(default)]
    pub language: String,
    pub latest_description: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entity {
    pub entity_value: String,
}

impl HealthEvent {
    /// `Ok(None)` when the payload is some other EventBridge event.
    pub fn parse(payload: &Value) -> Result<Option<HealthEvent>, EventError> {
        let Ok(envelope) = serde_json::from_value::<EventBridgeEvent<Value>>(payload.clone()) else { return Ok(None) };
        if envelope.detail_type != HEALTH_EVENT || envelope.source != "aws.health" {
            return Ok(None);
        }
        serde_json::from_value(envelope.detail).map(Some).map_err(|e| EventError(format!("{HEALTH_EVENT}: {e}")))
    }

    pub fn is_closed(&self) -> bool {
        self.status_code == "closed"
    }

    pub fn description(&self) -> &str {
        self.event_description
            .iter()
            .find(|d| d.language.starts_with("en"))
            .or(self.event_description.first())
            .map_or("", |d| d.latest_description.as_str())
    }

    /// When the issue began (`startTime`, `Wed, 25 Nov 2026 19:30:00 GMT`): the same in every
    /// update of it, unlike the envelope's time.
    pub fn began(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let t = self.start_time.as_deref()?;
        chrono::DateTime::parse_from_rfc2822(t)
            .or_else(|_| chrono::DateTime::parse_from_rfc3339(t))
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// What makes this update distinct: a new `lastUpdatedTime`, or the close.
    pub fn update_key(&self) -> String {
        if self.is_closed() {
            format!("health:{}:closed", self.event_arn)
        } else {
            format!("health:{}:{}", self.event_arn, self.last_updated_time.as_deref().unwrap_or("-"))
        }
    }

    /// The protected databases this event may touch, or why it concerns none of them.
    pub fn affected<'a>(&self, config: &'a Config) -> Result<Vec<&'a Database>, String> {
        self.affected_with(config, &ClusterMembers::new())
    }

    /// The protected clusters in the affected region that the entities don't name themselves:
    /// for an Aurora cluster Health names its instances, so only their membership tells.
    pub fn clusters_to_resolve<'a>(&self, config: &'a Config) -> Vec<&'a Database> {
        if self.affected_entities.is_empty() {
            return Vec::new();
        }
        config
            .databases
            .iter()
            .filter(|db| db.is_cluster() && db.source.region == self.event_region)
            .filter(|db| !self.affected_entities.iter().any(|e| names(&e.entity_value, db)))
            .collect()
    }

    /// As `affected`, with the instances of protected clusters the trigger read (`members`).
    pub fn affected_with<'a>(&self, config: &'a Config, members: &ClusterMembers) -> Result<Vec<&'a Database>, String> {
        if self.service != "RDS" {
            return Err(format!("{} is about {}, not RDS", self.event_arn, self.service));
        }
        // Scheduled changes and account notifications are planned work, not possible impact.
        if self.event_type_category != "issue" {
            return Err(format!("{} is a {}, not an issue", self.event_arn, self.event_type_category));
        }
        let in_region: Vec<&Database> =
            config.databases.iter().filter(|db| db.source.region == self.event_region).collect();
        if in_region.is_empty() {
            return Err(format!("{} is in {}, where Lifeboat protects no database", self.event_arn, self.event_region));
        }
        if self.affected_entities.is_empty() {
            // Health names no resource: everything protected in the region may be touched.
            return Ok(in_region);
        }
        let named = |db: &Database| {
            self.affected_entities.iter().any(|e| {
                names(&e.entity_value, db)
                    || match members.get(&db.name) {
                        // Unreadable: the region may be impaired. Possibly touched only where a
                        // person approves anyway; never an unattended failover on a guess.
                        Some(None) => approved_by_a_person(db),
                        Some(Some(instances)) => instances.iter().any(|i| {
                            e.entity_value == *i || e.entity_value.rsplit_once(":db:").is_some_and(|(_, id)| id == i)
                        }),
                        None => false,
                    }
            })
        };
        let hit: Vec<&Database> = in_region.into_iter().filter(|db| named(db)).collect();
        if hit.is_empty() {
            return Err(format!("{} names no protected database in {}", self.event_arn, self.event_region));
        }
        Ok(hit)
    }
}

/// Whether a failover of `db` waits for a person (production always does).
fn approved_by_a_person(db: &Database) -> bool {
    db.tier == crate::config::Tier::Production || db.failover.as_ref().is_none_or(|f| f.approval.required())
}

/// Whether a Health entity names `db` itself (its ARN or identifier).
fn names(entity: &str, db: &Database) -> bool {
    entity == db.source.to_string() || entity == db.source.id
}

/// The instances of protected Aurora clusters, by database name, as the trigger read them
/// (Health names an Aurora cluster's instances, not the cluster). `None`: unreadable.
pub type ClusterMembers = std::collections::BTreeMap<String, Option<Vec<String>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aurora_cluster_is_touched_when_health_names_one_of_its_instances() {
        let c = config();
        let mut h = HealthEvent::parse(&load("health-rds-issue-open.json")).unwrap().unwrap();
        h.affected_entities =
            vec![Entity { entity_value: "arn:aws:rds:us-east-1:123456789012:db:catalog-aurora-writer".into() }];
        let resolve: Vec<&str> = h.clusters_to_resolve(&c).iter().map(|d| d.name.as_str()).collect();
        assert_eq!(resolve, ["catalog-aurora"]);
        assert!(h.affected(&c).is_err(), "without its members, nothing names the cluster");
        let mut members = ClusterMembers::new();
        members.insert("catalog-aurora".into(), Some(vec!["catalog-aurora-reader".into()]));
        assert!(h.affected_with(&c, &members).is_err(), "another instance");
        members.insert("catalog-aurora".into(), Some(vec!["catalog-aurora-writer".into()]));
        let hit: Vec<&str> = h.affected_with(&c, &members).unwrap().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(hit, ["catalog-aurora"]);
        h.affected_entities = vec![Entity { entity_value: "catalog-aurora-writer".into() }];
        assert!(h.affected_with(&c, &members).is_ok(), "by identifier too");
        members.insert("catalog-aurora".into(), None);
        assert!(h.affected_with(&c, &members).is_ok(), "unreadable membership: possibly touched");
        // ...only where a person approves: never an unattended failover on a guess.
        let auto = Config::from_yaml(
            "databases:\n  - name: catalog-aurora\n    source: arn:aws:rds:us-east-1:123456789012:cluster:catalog-aurora\n    tier: non-production\n    rpo: 1h\n    rto: 1h\n    failover: { strategy: aurora-failover, approval: auto, triggers: { health: true } }\n",
        )
        .unwrap();
        assert!(h.affected_with(&auto, &members).is_err(), "approval: auto and membership unknown");
    }

    fn load(name: &str) -> Value {
        let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))).unwrap()
    }

    fn config() -> Config {
        Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap()
    }

    #[test]
    fn the_affected_region_is_event_region_not_where_eventbridge_delivered_it() {
        let v = load("health-rds-issue-open.json");
        let h = HealthEvent::parse(&v).unwrap().unwrap();
        assert_ne!(v["region"], json_str(&h.event_region), "the sample is delivered in another region");
        let c = config();
        let hit: Vec<&str> = h.affected(&c).unwrap().iter().map(|d| d.name.as_str()).collect();
        assert_eq!(hit, ["orders-prod"], "only the entity Health names");
        assert!(h.description().contains("connectivity"));
    }

    fn json_str(s: &str) -> Value {
        Value::String(s.to_owned())
    }

    #[test]
    fn updates_and_the_close_are_distinct_notices() {
        let open = HealthEvent::parse(&load("health-rds-issue-open.json")).unwrap().unwrap();
        let updated = HealthEvent::parse(&load("health-rds-issue-updated.json")).unwrap().unwrap();
        let closed = HealthEvent::parse(&load("health-rds-issue-closed.json")).unwrap().unwrap();
        assert_eq!(open.event_arn, updated.event_arn);
        let keys = [open.update_key(), updated.update_key(), closed.update_key()];
        assert!(keys[0] != keys[1] && keys[1] != keys[2] && keys[2].ends_with(":closed"), "{keys:?}");
        assert!(closed.is_closed());
    }

    #[test]
    fn other_regions_services_and_resources_are_ignored_with_a_reason() {
        let c = config();
        let other = HealthEvent::parse(&load("health-rds-issue-other-region.json")).unwrap().unwrap();
        assert!(other.affected(&c).unwrap_err().contains("protects no database"));
        let mut ec2 = HealthEvent::parse(&load("health-rds-issue-open.json")).unwrap().unwrap();
        ec2.service = "EC2".into();
        assert!(ec2.affected(&c).unwrap_err().contains("not RDS"));
        let mut elsewhere = HealthEvent::parse(&load("health-rds-issue-open.json")).unwrap().unwrap();
        elsewhere.affected_entities =
            vec![Entity { entity_value: "arn:aws:rds:us-east-1:123456789012:db:scratch".into() }];
        assert!(elsewhere.affected(&c).unwrap_err().contains("names no protected database"));
        let mut maintenance = HealthEvent::parse(&load("health-rds-issue-open.json")).unwrap().unwrap();
        maintenance.event_type_category = "scheduledChange".into();
        assert!(maintenance.affected(&c).unwrap_err().contains("not an issue"));
        elsewhere.affected_entities.clear();
        assert_eq!(elsewhere.affected(&c).unwrap().len(), 3, "no entities: every protected database in the region");
    }

    #[test]
    fn other_events_are_not_health_events_and_a_broken_one_is_an_error() {
        assert_eq!(HealthEvent::parse(&load("scheduled-sweep.json")).unwrap(), None);
        assert_eq!(HealthEvent::parse(&serde_json::json!({"incident_id": "x"})).unwrap(), None);
        let mut broken = load("health-rds-issue-open.json");
        broken["detail"] = serde_json::json!({"service": "RDS"});
        assert!(HealthEvent::parse(&broken).is_err());
    }
}
