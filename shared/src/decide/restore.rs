//! One description of a restore, for the failover and the drill alike: this source into that
//! identifier, with these network, parameter and option settings. RDS restores with its defaults
//! ("the default security group, the default subnet group, and the default DB parameter group")
//! whatever a request leaves out, so a recovered primary would lose `rds.force_ssl`, its option
//! group and its Multi-AZ standby, in a network the applications can't reach. Every setting is
//! therefore named here, from the source itself (same region) or from the config (a DR region,
//! where the source region may be gone), and the plan people approve says which.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::failover::Restore;
use crate::config::{Database, Tier};

/// What RDS creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    Instance,
    /// An Aurora cluster: restored empty, its writer created once the cluster is `available`
    /// ("You can create DB instances only after the RestoreDBClusterFromSnapshot operation has
    /// completed and the DB cluster is available").
    Aurora,
    /// A Multi-AZ DB cluster (MySQL / PostgreSQL, not Aurora): RDS creates its instances itself
    /// from `DBClusterInstanceClass`; no CreateDBInstance.
    MultiAzCluster,
}

impl Shape {
    /// From a cluster's engine: Aurora engines are named `aurora-*`.
    pub fn of_cluster(engine: &str) -> Shape {
        if engine.starts_with("aurora") {
            Shape::Aurora
        } else {
            Shape::MultiAzCluster
        }
    }

    pub fn is_cluster(self) -> bool {
        self != Shape::Instance
    }
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "type")]
pub enum Origin {
    /// A snapshot in the restore's own region (its ARN).
    Snapshot { arn: String },
    /// The source database itself (its identifier, same region), as of `time`.
    PointInTime { source: String, time: DateTime<Utc> },
}

/// The settings a restore carries over instead of RDS's defaults. `None` leaves a setting to RDS
/// only where nothing was found to carry (the plan then says "RDS default").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub instance_class: Option<String>,
    pub subnet_group: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// DB parameter group: the instance's, or an Aurora writer's.
    pub parameter_group: Option<String>,
    pub cluster_parameter_group: Option<String>,
    pub option_group: Option<String>,
    #[serde(default)]
    pub multi_az: bool,
}

impl Settings {
    /// What the restore will use, for the plan: one clause per setting.
    pub fn describe(&self, shape: Shape) -> String {
        let or_default = |v: &Option<String>| v.clone().unwrap_or_else(|| "RDS default".to_owned());
        let mut parts = vec![
            format!("class {}", or_default(&self.instance_class)),
            format!("subnet group {}", or_default(&self.subnet_group)),
            format!(
                "security groups {}",
                if self.security_groups.is_empty() {
                    "RDS default".to_owned()
                } else {
                    self.security_groups.join(", ")
                }
            ),
        ];
        if shape.is_cluster() {
            parts.push(format!("cluster parameter group {}", or_default(&self.cluster_parameter_group)));
        }
        if shape != Shape::MultiAzCluster {
            parts.push(format!("parameter group {}", or_default(&self.parameter_group)));
        }
        if shape == Shape::Instance {
            parts.push(format!("option group {}", or_default(&self.option_group)));
            parts.push(if self.multi_az { "Multi-AZ".to_owned() } else { "single-AZ".to_owned() });
        }
        parts.join(", ")
    }

    /// A DR region's settings, from the config: the source region may be gone, so nothing is read
    /// from it. The copy's option group (`copy_to[].option_group`, for TDE copies) is the default
    /// option group. Multi-AZ unless the config says otherwise, for a production database.
    pub fn from_config(db: &Database, r: &Restore, region: &str, default_multi_az: bool) -> Settings {
        let copy_option_group = db.copy_to.iter().find(|t| t.region == region).and_then(|t| t.option_group.clone());
        Settings {
            instance_class: Some(r.instance_class.clone()),
            subnet_group: Some(r.subnet_group.clone()),
            security_groups: r.security_groups.clone(),
            parameter_group: r.parameter_group.clone(),
            cluster_parameter_group: r.cluster_parameter_group.clone(),
            option_group: r.option_group.clone().or(copy_option_group),
            multi_az: r.multi_az.unwrap_or(default_multi_az),
        }
    }
}

/// One restore: from `origin` into `id` in `region`, shaped `shape`, with `settings`, tagged `tags`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSpec {
    pub region: String,
    pub shape: Shape,
    pub id: String,
    /// An Aurora cluster's first instance, created once the cluster is available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
    pub origin: Origin,
    pub settings: Settings,
    /// Where the settings came from, for people: "the source orders-prod", "failover.restore".
    pub settings_from: String,
    pub tags: Vec<(String, String)>,
    /// Enable the cluster's HTTP endpoint once it is available: the database's checks go over
    /// the RDS Data API (`validate.connect.data_api`), and a restore comes with it off ("created
    /// ... with a default configuration", RestoreDBClusterFromSnapshot).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub data_api: bool,
    /// Restore with IAM database authentication enabled (`EnableIAMDatabaseAuthentication`): the
    /// validator logs in with an IAM token (`validate.connect.iam_user`), and a restore has it off
    /// unless asked ("By default, mapping isn't enabled").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub iam_auth: bool,
}

impl RestoreSpec {
    pub fn new(region: &str, shape: Shape, id: &str, origin: Origin, settings: Settings, from: &str) -> RestoreSpec {
        RestoreSpec {
            region: region.to_owned(),
            shape,
            id: id.to_owned(),
            writer: (shape == Shape::Aurora).then(|| writer_id(id)),
            origin,
            settings,
            settings_from: from.to_owned(),
            tags: Vec::new(),
            data_api: false,
            iam_auth: false,
        }
    }

    /// For `db`: an Aurora restore of a database checked over the Data API gets its endpoint on;
    /// one checked with an IAM token gets IAM authentication on.
    pub fn checked_as(mut self, db: &Database) -> Self {
        self.data_api = self.shape == Shape::Aurora && db.validate.as_ref().is_some_and(|v| v.connect.data_api);
        self.iam_auth = db.checked_by_iam_token();
        self
    }

    pub fn tagged(mut self, tags: &[(&str, &str)]) -> Self {
        self.tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self
    }

    /// The plan's clause: what it will use and where that came from.
    pub fn describe(&self) -> String {
        format!("with {} (from {})", self.settings.describe(self.shape), self.settings_from)
    }
}

/// Multi-AZ by default for what replaces a production primary; a drill's instance is temporary.
pub fn default_multi_az(db: &Database) -> bool {
    db.tier == Tier::Production
}

/// The first instance of a cluster Lifeboat restores.
pub fn writer_id(cluster_id: &str) -> String {
    let mut base = cluster_id.to_owned();
    base.truncate(63 - 2);
    format!("{}-1", base.trim_end_matches('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_of_a_database_checked_by_iam_token_gets_iam_authentication() {
        let spec = |connect: &str| {
            let config = crate::config::validate::one_checked_as(connect);
            let origin = Origin::Snapshot { arn: "arn:aws:rds:us-west-2:123456789012:snapshot:s".into() };
            RestoreSpec::new("us-west-2", Shape::Instance, "lf-orders", origin, Settings::default(), "the source")
                .checked_as(&config.databases[0])
        };
        assert!(spec("iam_user: lifeboat_validator").iam_auth);
        let by_secret = spec("secret: \"arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-v\"");
        assert!(!by_secret.iam_auth && !by_secret.data_api);
    }

    #[test]
    fn the_plan_names_every_setting_and_says_where_a_default_is_left_to_rds() {
        let s = Settings {
            instance_class: Some("db.r6g.large".into()),
            subnet_group: Some("prod-db".into()),
            security_groups: vec!["sg-1".into(), "sg-2".into()],
            parameter_group: Some("orders-pg".into()),
            cluster_parameter_group: None,
            option_group: None,
            multi_az: true,
        };
        let text = s.describe(Shape::Instance);
        assert_eq!(
            text,
            "class db.r6g.large, subnet group prod-db, security groups sg-1, sg-2, parameter group orders-pg, \
             option group RDS default, Multi-AZ"
        );
        let aurora = s.describe(Shape::Aurora);
        assert!(aurora.contains("cluster parameter group RDS default") && !aurora.contains("option group"), "{aurora}");
        assert!(!s.describe(Shape::MultiAzCluster).contains(", parameter group"));
    }

    #[test]
    fn cluster_shapes_follow_the_engine() {
        assert_eq!(Shape::of_cluster("aurora-postgresql"), Shape::Aurora);
        assert_eq!(Shape::of_cluster("aurora-mysql"), Shape::Aurora);
        assert_eq!(Shape::of_cluster("postgres"), Shape::MultiAzCluster);
        let spec = RestoreSpec::new(
            "us-west-2",
            Shape::MultiAzCluster,
            "lf-x",
            Origin::Snapshot { arn: "a".into() },
            Settings::default(),
            "t",
        );
        assert_eq!(spec.writer, None, "RDS makes a Multi-AZ DB cluster's instances itself");
        let aurora = RestoreSpec { shape: Shape::Aurora, ..spec.clone() };
        assert_eq!(
            RestoreSpec::new("r", Shape::Aurora, "lf-x", aurora.origin, Settings::default(), "t").writer.as_deref(),
            Some("lf-x-1")
        );
    }

    #[test]
    fn writer_ids_stay_valid() {
        assert_eq!(writer_id("lf-a"), "lf-a-1");
        assert!(writer_id(&"b".repeat(63)).len() <= 63);
    }
}
