//! A database's `failover` section: the plan as the user states it (strategy, target, approval,
//! what starts it, the endpoints that follow, where a restore goes) and whether it can work.
//! Plain data: the decisions are `failover` and its steps.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Database, Tier};
use crate::arn::{RdsArn, RdsResource};
use crate::text::kebab_names;

/// `TimeoutSeconds` of `infra/failover.asl.json` (a test compares them). A machine-level timeout
/// runs no `Catch`: the incident would stay open and nobody be told, so the config may not ask
/// for waits that add up to it (`invalid`).
pub const MACHINE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// What the steps besides the approval and the recovery wait may take at most: retries of every
/// step (about 10 minutes each at worst), the DNS change, the messages.
pub const STEPS_BUDGET: Duration = Duration::from_secs(2 * 3600);

/// How long a recovery may take to come up before it is a failure people must look at: twice the
/// RTO (a restore that slow has broken the promise anyway), at least 15 minutes. The drill uses
/// the same limit, so a drill proves what a failover would wait for.
pub fn recovery_wait(rto: Duration) -> Duration {
    (rto * 2).max(Duration::from_secs(15 * 60))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Promote a read replica (instance), or an Aurora cross-region replica cluster.
    PromoteReplica,
    /// `FailoverDBCluster` within the region.
    AuroraFailover,
    /// Aurora global database, planned: no data loss.
    GlobalSwitchover,
    /// Aurora global database, unplanned (`AllowDataLoss`).
    GlobalFailover,
    /// Restore the newest available Lifeboat DR copy into a new instance (or cluster + instance).
    RestoreLatestCopy,
    /// `RebootDBInstance` with `ForceFailover`: the endpoint stays.
    RebootMultiAz,
    /// Restore to a given time into a new database: manual requests only (data corruption).
    PointInTime,
}

kebab_names!(Strategy, "promote-replica, aurora-failover, global-switchover, global-failover, restore-latest-copy, reboot-multi-az, point-in-time",
    PromoteReplica => "promote-replica", AuroraFailover => "aurora-failover",
    GlobalSwitchover => "global-switchover", GlobalFailover => "global-failover",
    RestoreLatestCopy => "restore-latest-copy", RebootMultiAz => "reboot-multi-az",
    PointInTime => "point-in-time");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    Required,
    Auto,
}

/// How a decision may reach Lifeboat: `link`, the signed page in the approval message (its holder
/// types a name Lifeboat can't verify); `aws-identity`, `lifeboat approve` through the operator
/// URL, where AWS authenticates the caller (AWS_IAM) and hands Lifeboat the principal; or `both`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    Link,
    AwsIdentity,
    #[default]
    Both,
}

kebab_names!(Via, "link, aws-identity, both", Link => "link", AwsIdentity => "aws-identity", Both => "both");

/// A database's `failover.approval`: `required` or `auto` as before, or the long form
/// `{ required: true, via: aws-identity, distinct_from_requester: true }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApprovalPolicy {
    pub when: Approval,
    pub via: Via,
    /// The two-person rule: whoever asked for the failover may not approve it.
    pub distinct_from_requester: bool,
}

impl ApprovalPolicy {
    pub fn required(&self) -> bool {
        self.when == Approval::Required
    }
}

impl Default for ApprovalPolicy {
    /// What a database with no failover section gets: a person decides, by either way.
    fn default() -> Self {
        ApprovalPolicy { when: Approval::Required, via: Via::Both, distinct_from_requester: false }
    }
}

impl From<Approval> for ApprovalPolicy {
    fn from(when: Approval) -> Self {
        ApprovalPolicy { when, ..ApprovalPolicy::default() }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongApproval {
    #[serde(default = "yes")]
    required: bool,
    #[serde(default)]
    via: Via,
    #[serde(default)]
    distinct_from_requester: bool,
}

fn yes() -> bool {
    true
}

// By hand: the short form is a plain word and the long one a map, and an untagged enum would
// turn every mistake in either into "did not match any variant".
impl<'de> Deserialize<'de> for ApprovalPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ApprovalPolicy;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("`required`, `auto`, or { required, via, distinct_from_requester }")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Approval::deserialize(serde::de::value::StrDeserializer::<E>::new(v)).map(ApprovalPolicy::from)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let l = LongApproval::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                let when = if l.required { Approval::Required } else { Approval::Auto };
                Ok(ApprovalPolicy { when, via: l.via, distinct_from_requester: l.distinct_from_requester })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    pub strategy: Strategy,
    /// The replica, cluster or global cluster member that takes over (not for restores or reboots).
    #[serde(default, deserialize_with = "de_opt_arn")]
    pub target: Option<RdsArn>,
    pub approval: ApprovalPolicy,
    #[serde(default = "default_approval_timeout", deserialize_with = "crate::config::de_duration")]
    pub approval_timeout: Duration,
    #[serde(default)]
    pub triggers: Triggers,
    pub dns: Option<Dns>,
    /// SSM parameter the applications read the endpoint from.
    pub endpoint_parameter: Option<String>,
    pub restore: Option<Restore>,
    /// After a failover that moved the database: `auto` builds the way back (a replica of the new
    /// primary in the old primary's region) as soon as that region answers; `manual` (the
    /// default) waits for `lifeboat reprotect`.
    #[serde(default)]
    pub reprotect: Reprotect,
    /// A planned failback by promotion first puts this value in `endpoint_parameter` (a
    /// maintenance endpoint: applications that re-read the parameter stop writing), waits for the
    /// way back's lag to reach 0, then promotes; put back if the lag does not get there.
    pub maintenance_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reprotect {
    #[default]
    Manual,
    Auto,
}

pub(crate) fn default_approval_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

fn de_opt_arn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RdsArn>, D::Error> {
    Option::<String>::deserialize(d)?.map(|s| s.parse().map_err(serde::de::Error::custom)).transpose()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// CloudWatch alarm names whose move into ALARM starts a failover.
    #[serde(default)]
    pub alarms: Vec<String>,
    /// An open AWS Health RDS issue in the database's region, naming it, starts one.
    #[serde(default)]
    pub health: bool,
    /// RDS says, in the target's own region, that the target replica's replication broke
    /// (`REPLICA_BROKEN`): a signal the DR region gets even when the primary's region is silent.
    #[serde(default)]
    pub replica_events: bool,
    /// The stack of the target's region looks at the primary every minute; when the primary's
    /// region hasn't answered (or the primary is gone or broken) for this long while the target's
    /// own region answers, that is a signal (`decide::probe`).
    #[serde(default, deserialize_with = "crate::config::de_opt_duration")]
    pub probe: Option<Duration>,
}

/// RDS events about a read replica that mean its source stopped reaching it: "An error has
/// occurred in the read replication process" and "Replication streaming has been terminated"
/// (RDS User Guide, DB instance events, category `read replica`). A replication stopped by hand
/// (RDS-EVENT-0062) is someone's decision, not a signal.
pub const REPLICA_BROKEN: [&str; 2] = ["RDS-EVENT-0045", "RDS-EVENT-0057"];

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    pub zone_id: String,
    pub record: String,
    #[serde(default = "default_ttl")]
    pub ttl: u32,
    #[serde(default)]
    pub mode: DnsMode,
    /// For `mode: routing-control`.
    pub routing_controls: Option<RoutingControls>,
}

/// How a failover moves traffic, and what that depends on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsMode {
    /// UPSERT a simple CNAME to the new primary: Route 53's control plane, in us-east-1 only. If
    /// it is down, the rest of the failover is done and the record is left for people.
    #[default]
    Upsert,
    /// Flip Route 53 ARC routing controls: the record is a PRIMARY/SECONDARY failover pair set up
    /// beforehand, each guarded by a routing control's health check, and Route 53's data plane
    /// answers with the SECONDARY once its control is On and the primary's Off. The controls live
    /// on a cluster with endpoints in five regions; nothing on the path is in us-east-1 alone.
    RoutingControl,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingControls {
    /// The routing control of the record that names the database taking over: turned On.
    pub on: String,
    /// The primary's: turned Off, in the same call (a safety rule such as "at least one On" must
    /// never see both Off).
    pub off: String,
    /// The ARC cluster's regional endpoints (DescribeCluster's `ClusterEndpoints`).
    pub cluster_endpoints: Vec<ClusterEndpoint>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterEndpoint {
    pub region: String,
    pub url: String,
}

const ROUTING_CONTROL_ARN: &str = "arn:aws:route53-recovery-control::";

impl Dns {
    /// What moving traffic depends on, for the plan and the approval request.
    pub fn plan(&self) -> String {
        match (self.mode, &self.routing_controls) {
            (DnsMode::RoutingControl, Some(rc)) => format!(
                "DNS: {} moves through Route 53 ARC (data plane): routing control {} On and {} Off in one call to a \
                 cluster endpoint ({}); no Route 53 control plane call",
                self.record,
                short_control(&rc.on),
                short_control(&rc.off),
                rc.cluster_endpoints.iter().map(|e| e.region.as_str()).collect::<Vec<_>>().join(", ")
            ),
            _ => format!(
                "DNS: UPSERT of CNAME {} in zone {} through Route 53's control plane (us-east-1 only); if it is down, \
                 the rest is done and the command is left for people",
                self.record, self.zone_id
            ),
        }
    }

    /// The cluster endpoints in the order to try them: those in `first` (the region the failover
    /// moves to), then the others, those in `last` (the region that may be failing) at the end.
    /// AWS asks callers to rotate through the endpoints, as any may be unavailable.
    pub fn endpoints_in_order(&self, first: &str, last: &str) -> Vec<&ClusterEndpoint> {
        let mut out: Vec<&ClusterEndpoint> =
            self.routing_controls.iter().flat_map(|rc| &rc.cluster_endpoints).collect();
        out.sort_by_key(|e| {
            if e.region == first {
                0
            } else if e.region == last {
                2
            } else {
                1
            }
        });
        out
    }
}

/// A routing control's ARN, shortened to what people name it by (`.../routingcontrol/<id>`).
pub fn short_control(arn: &str) -> &str {
    arn.rsplit_once("routingcontrol/").map_or(arn, |(_, id)| id)
}

fn dns_problem(dns: &Dns, strategy: Strategy) -> Option<String> {
    if dns.zone_id.trim().is_empty() || dns.record.trim().is_empty() {
        return Some("needs zone_id and record".into());
    }
    match (dns.mode, &dns.routing_controls) {
        (DnsMode::Upsert, Some(_)) => Some("routing_controls is read only with mode: routing-control".into()),
        (DnsMode::Upsert, None) => None,
        (DnsMode::RoutingControl, None) => {
            Some("mode routing-control needs routing_controls: {on, off, cluster_endpoints}".into())
        }
        (DnsMode::RoutingControl, Some(rc)) => {
            if !rc.on.starts_with(ROUTING_CONTROL_ARN) || !rc.off.starts_with(ROUTING_CONTROL_ARN) {
                return Some(format!(
                    "routing_controls.on and .off must be routing control ARNs ({ROUTING_CONTROL_ARN}...)"
                ));
            }
            if rc.on == rc.off {
                return Some("routing_controls.on and .off are the same control".into());
            }
            if rc.cluster_endpoints.is_empty() {
                return Some(
                    "routing_controls.cluster_endpoints is empty: list the cluster's regional endpoints".into(),
                );
            }
            if let Some(e) =
                rc.cluster_endpoints.iter().find(|e| !e.url.starts_with("https://") && !e.url.starts_with("http://"))
            {
                return Some(format!("cluster endpoint `{}` is not a URL", e.url));
            }
            if matches!(strategy, Strategy::RestoreLatestCopy | Strategy::PointInTime) {
                return Some(format!(
                    "mode routing-control moves traffic to a record set up beforehand, and a {strategy}'s new database \
                     has no endpoint until the failover: use mode upsert"
                ));
            }
            None
        }
    }
}

fn default_ttl() -> u32 {
    60
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Restore {
    /// DR region to restore in; needed only when the database copies to several.
    pub region: Option<String>,
    pub instance_class: String,
    pub subnet_group: String,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// In the DR region: RDS would otherwise restore with its default groups, losing settings
    /// such as `rds.force_ssl` or `max_connections` (see `restore.rs`).
    pub parameter_group: Option<String>,
    /// Aurora and Multi-AZ DB clusters.
    pub cluster_parameter_group: Option<String>,
    /// Defaults to `copy_to[].option_group` of the region (TDE copies need one to restore).
    pub option_group: Option<String>,
    /// Default: Multi-AZ for a production database's failover, single-AZ for a drill.
    pub multi_az: Option<bool>,
    /// The vault account to restore from, in an account that isn't the source's (the day the
    /// source account is lost): restore-latest-copy then asks the vault to share its newest copy
    /// of `source`, copies it here under `copy_to`'s key once approved (RDS restores no shared
    /// encrypted snapshot directly), and restores that copy.
    pub from_vault: Option<String>,
}

/// A restore from the vault copies the vault's shared copy into this account first, in the region
/// it restores in (the vault's: RDS shares a snapshot only within its region), and that copy needs
/// the DR key: "If you copy an encrypted DB snapshot that is shared from another Amazon Web
/// Services account, then you must specify a value for this parameter" (RDS API Reference,
/// CopyDBSnapshot, `KmsKeyId`). failover-steps takes it from that region's `copy_to[].kms_key`;
/// without it the copy would be refused only after the approval, in the middle of the outage.
fn from_vault_without_key(db: &Database, r: &Restore) -> Option<(&'static str, String)> {
    r.from_vault.as_ref()?;
    let region = r.region.as_deref().or_else(|| db.copy_to.first().map(|t| t.region.as_str()))?;
    let (i, target) = db.copy_to.iter().enumerate().find(|(_, t)| t.region == region)?;
    target.kms_key.is_none().then(|| {
        (
            "restore.from_vault",
            format!(
                "needs copy_to[{i}].kms_key, a key of this account in {region} (also in the stack's DrKmsKeyArns): \
                 the vault's copy is shared and encrypted, and RDS copies a shared encrypted snapshot only with a \
                 KmsKeyId (CopyDBSnapshot), which the failover takes from that kms_key"
            ),
        )
    })
}

/// Why `db.failover` can't work as written; `None` when it can.
pub fn invalid(db: &Database, f: &Failover) -> Option<(&'static str, String)> {
    use Strategy::*;
    if !f.approval.required() && db.tier == Tier::Production {
        return Some(("approval", "must be `required` for a production database".into()));
    }
    if f.approval.distinct_from_requester && f.approval.via != Via::AwsIdentity {
        return Some((
            "approval.distinct_from_requester",
            "needs `via: aws-identity`: a name typed on the approval page is not verified, so it can't be \
             told apart from the requester's"
                .into(),
        ));
    }
    let cluster = db.is_cluster();
    let target = f.target.as_ref();
    let needs = |kind: RdsResource, what: &str| -> Option<(&'static str, String)> {
        match target {
            None => Some(("target", format!("{} needs the {what} that takes over", f.strategy))),
            Some(t) if t.resource != kind => {
                Some(("target", format!("{} takes over with a {what}, not `{t}`", f.strategy)))
            }
            Some(t) if *t == db.source => Some(("target", "is the source itself".into())),
            Some(t) if t.account != db.source.account || t.partition != db.source.partition => {
                Some(("target", "must be in the source's account and partition".into()))
            }
            Some(_) => None,
        }
    };
    let problem = match f.strategy {
        PromoteReplica if cluster => needs(RdsResource::Cluster, "replica cluster"),
        PromoteReplica => needs(RdsResource::Instance, "read replica instance"),
        AuroraFailover if !cluster => Some(("strategy", "aurora-failover needs a cluster source".into())),
        AuroraFailover => match target {
            Some(t) if t.resource != RdsResource::Instance || t.region != db.source.region => Some((
                "target",
                "aurora-failover's optional target is an instance of the cluster, in its region".into(),
            )),
            _ => None,
        },
        GlobalSwitchover | GlobalFailover if !cluster => {
            Some(("strategy", format!("{} needs an Aurora global database (a cluster source)", f.strategy)))
        }
        GlobalSwitchover | GlobalFailover => needs(RdsResource::Cluster, "secondary cluster in another region")
            .or_else(|| {
                (target.is_some_and(|t| t.region == db.source.region))
                    .then(|| ("target", "must be the secondary cluster, in another region".into()))
            }),
        RestoreLatestCopy => match &f.restore {
            None => {
                Some(("restore", "restore-latest-copy needs instance_class and subnet_group to restore into".into()))
            }
            Some(_) if db.copy_to.is_empty() => {
                Some(("strategy", "restore-latest-copy needs copy_to: there are no DR copies".into()))
            }
            Some(r) if r.from_vault.as_deref().is_some_and(|a| !crate::arn::is_account_id(a)) => {
                Some(("restore.from_vault", "must be the vault's 12-digit account id".into()))
            }
            Some(r) if r.from_vault.as_ref() == Some(&db.source.account) => {
                Some(("restore.from_vault", "is the source's own account: a vault must be another".into()))
            }
            Some(r) if r.from_vault.is_some() && cluster => {
                Some(("restore.from_vault", "restores DB instances only for now (Aurora: see docs/vault.md)".into()))
            }
            Some(r) => match &r.region {
                Some(region) if !db.copy_to.iter().any(|t| &t.region == region) => {
                    Some(("restore.region", format!("{region} is not one of copy_to's regions")))
                }
                None if db.copy_to.len() > 1 => Some(("restore.region", "name one of copy_to's regions".into())),
                _ => from_vault_without_key(db, r),
            },
        },
        RebootMultiAz if cluster => Some(("strategy", "reboot-multi-az is for DB instances".into())),
        RebootMultiAz => None,
        PointInTime => {
            Some(("strategy", "point-in-time is for manual requests only (`strategy` in the request)".into()))
        }
    };
    if problem.is_some() {
        return problem;
    }
    // RDS reports a read replica's broken replication (REPLICA_BROKEN) as DB instance events of
    // the `read replica` category, which the stack's ReplicaBroken rule matches ("RDS DB Instance
    // Event"). The Aurora User Guide's DB cluster events (configuration change, creation,
    // deletion, failover, failure, global failover, maintenance, notification, ...) have no
    // equivalent for a replica cluster's replication: no event to extend the rule to, so the
    // trigger would never fire. Refused rather than accepted and silent.
    if f.triggers.replica_events && cluster {
        return Some((
            "triggers.replica_events",
            format!(
                "is for DB instance read replicas: RDS says a replica's replication broke ({}) only in DB instance \
                 events, and has no such DB cluster event, so nothing would ever start this failover; use \
                 triggers.probe, alarms or health",
                REPLICA_BROKEN.join(", ")
            ),
        ));
    }
    // The machine's own timeout runs no Catch: an execution that reached it would leave the
    // incident open and nobody told, so the waits the config asks for must fit inside it.
    let worst = f.approval_timeout + recovery_wait(db.rto) + STEPS_BUDGET;
    if worst > MACHINE_TIMEOUT {
        let h = |d: Duration| crate::text::human(chrono::Duration::from_std(d).unwrap_or_default());
        return Some((
            "approval_timeout",
            format!(
                "{} to approve plus up to {} for the recovery (twice the RTO) and {} for the other steps is more \
                 than the failover state machine's {}: shorten approval_timeout or the rto",
                h(f.approval_timeout),
                h(recovery_wait(db.rto)),
                h(STEPS_BUDGET),
                h(MACHINE_TIMEOUT)
            ),
        ));
    }
    if let Some(why) = f.dns.as_ref().and_then(|d| dns_problem(d, f.strategy)) {
        return Some(("dns", why));
    }
    if let Some(p) = &f.endpoint_parameter {
        if !p.starts_with('/') {
            return Some(("endpoint_parameter", format!("`{p}` is not an SSM parameter path (starting with /)")));
        }
    }
    if let Some(m) = &f.maintenance_endpoint {
        if f.endpoint_parameter.is_none() {
            return Some((
                "maintenance_endpoint",
                "needs endpoint_parameter: it is the value the applications read there during a failback".into(),
            ));
        }
        if m.trim().is_empty() {
            return Some(("maintenance_endpoint", "is empty".into()));
        }
    }
    None
}
