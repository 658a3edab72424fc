//! Readiness: could this database fail over right now? Given the config and what read-only calls
//! returned (`Facts`), one check per thing a recovery needs, each `ok`, `warning` or `blocked`
//! with a reason a person can act on. Pure: rpo-monitor reads, this decides, `message` words it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::failover::{short_control, Restore};
use crate::config::Database;
use crate::drill::DrillResult;
use crate::failover::steps::{hopeless, restore_region, DbState, Replication};
use crate::failover::Strategy;
use crate::snapshot::{Snapshot, MANUAL_SNAPSHOT_QUOTA};
use crate::text::human;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    Ok,
    Warning,
    Blocked,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub level: Level,
    pub reason: String,
}

/// The steps' role simulated on a database's needs: how many calls, and those it may not make
/// (action, resource); Err when the simulation could not run.
pub type Simulated = Result<(usize, Vec<(String, String)>), String>;

/// What the read-only calls returned for one database; `None` where a check doesn't apply.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The database that takes over (`failover.target`): Some(None) when it doesn't exist.
    pub target: Option<Option<DbState>>,
    pub replica_lag_seconds: Option<f64>,
    /// What a restore in the DR region would use, and whether each exists there.
    pub subnet_group: Option<bool>,
    /// Those of the restore's security groups not found in its region (None: none named).
    pub missing_security_groups: Option<Vec<String>>,
    pub parameter_group: Option<(String, bool)>,
    pub option_group: Option<(String, bool)>,
    /// The newest DR copy a restore would use (restore strategies): Some(None) when there is none.
    pub newest_copy: Option<Option<Snapshot>>,
    /// Why an UPSERT of the record would be refused (Ok(None): it would not); Err: unreadable.
    pub dns: Option<Result<Option<String>, String>>,
    /// `dns.mode: routing-control`: the target's and the primary's controls as an ARC cluster
    /// endpoint read them, and that endpoint's region; Err when no endpoint answered.
    pub routing_controls: Option<Result<(String, String, String), String>>,
    /// The endpoint parameter exists (in this stack's region).
    pub endpoint_parameter: Option<bool>,
    /// The approval links' signing key: its length, or None when it is missing.
    pub approval_key_length: Option<Option<usize>>,
    /// The manual snapshot quota of the database's kind in each region Lifeboat copies it to.
    pub snapshot_quotas: Vec<Quota>,
    /// Lifeboat's copies in flight per DR region: (region, instance copies, cluster copies).
    pub copies_in_flight: Vec<(String, usize, usize)>,
    /// The last drill (Some(None): never drilled); None: no drill section.
    pub last_drill: Option<Option<DrillResult>>,
    /// Each DR region's key (`copy_to[].kms_key`): its KeyState, None when it is gone.
    pub dr_keys: Vec<(String, String, Option<String>)>,
    /// The restore's instance class, the engine and version of the copy it would restore, and
    /// whether RDS offers that class for them in the restore region.
    pub instance_class: Option<Offered>,
    /// A global strategy's target in its global cluster: (global cluster, the target is its
    /// writer already, the global cluster's status); Some(None) when it is in none.
    pub global: Option<Option<(String, bool, String)>>,
    /// The steps' role simulated on `needs`: how many calls, and those it may not make
    /// (action, resource); Err when the simulation could not run.
    pub permissions: Option<Simulated>,
    /// Each key `needs` uses, as its key policy answers for the steps' role.
    pub key_policies: Vec<KeyAccess>,
    /// The data validator's role simulated on `validator_needs`: the secrets it may not read;
    /// Err when the simulation could not run; None: no `validate`, or no role to simulate.
    pub validator: Option<Result<Vec<String>, String>>,
}

/// What one KMS key's policy says of the uses of it a recovery needs, by the steps' role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAccess {
    pub key: String,
    pub role: String,
    pub says: Vec<(&'static str, KeyPolicy)>,
}

/// A key policy's answer for one use of the key by one role. KMS developer guide, "Key policies
/// in AWS KMS": "Unless the key policy explicitly allows it, you cannot use IAM policies to allow
/// access to a KMS key. Without permission from the key policy, IAM policies that allow
/// permissions have no effect." The statement that lets them is the default key policy's, whose
/// Principal is the account (`arn:aws:iam::<account>:root`).
///
/// Not IAM's policy simulator with the key policy as `ResourcePolicy`: it evaluates one "for IAM
/// users only" (SimulatePrincipalPolicy: `CallerArn`, "required if you include a ResourcePolicy
/// and the PolicySourceArn is not the ARN for an IAM user", takes "only the ARN of an IAM user"),
/// and the steps' principal is a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPolicy {
    /// A statement allows the role itself (or every principal): the key policy alone allows it.
    AllowsRole,
    /// A statement allows the account: the role's IAM policies decide (the `permissions` check).
    EnablesIam,
    /// A statement denies it.
    Denies,
    /// None of these: no IAM policy can allow it.
    Silent,
}

/// What `policy` (a key policy document) says of `n` (a use of `key`) by `role`. A statement's
/// Condition is tested against the use's context (`kms:ViaService`, `kms:CallerAccount`,
/// `aws:PrincipalArn`, and `kms:GrantIsForAWSResource` for a grant made through a service); one
/// this can't evaluate never applies, so an Allow under it is not counted.
pub fn key_policy_says(policy: &str, key: &str, role: &str, n: &Need) -> KeyPolicy {
    let account = role.split(':').nth(4).unwrap_or_default();
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(policy) else { return KeyPolicy::Silent };
    let list = |v: Option<&serde_json::Value>| -> Vec<String> {
        match v {
            Some(serde_json::Value::Array(l)) => l.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
            Some(serde_json::Value::String(x)) => vec![x.clone()],
            _ => Vec::new(),
        }
    };
    let mut context: Vec<(String, Vec<String>)> =
        n.context.iter().map(|(k, v, _)| (k.to_lowercase(), v.clone())).collect();
    context.push(("kms:calleraccount".into(), vec![account.to_owned()]));
    context.push(("aws:principalarn".into(), vec![role.to_owned()]));
    context.push(("aws:principalaccount".into(), vec![account.to_owned()]));
    if n.action == "kms:CreateGrant" && n.context.iter().any(|(k, _, _)| *k == "kms:ViaService") {
        context.push(("kms:grantisforawsresource".into(), vec!["true".into()]));
    }
    let statements = match &doc["Statement"] {
        serde_json::Value::Array(l) => l.clone(),
        st @ serde_json::Value::Object(_) => vec![st.clone()],
        _ => Vec::new(),
    };
    let (mut role_allowed, mut iam_enabled) = (false, false);
    for st in &statements {
        // Who: the role (or everyone), the account (delegation to IAM), or someone else.
        let principal = &st["Principal"];
        let named = if principal.as_str() == Some("*") { vec!["*".to_owned()] } else { list(principal.get("AWS")) };
        let root = format!("arn:aws:iam::{account}:root");
        let for_role = named.iter().any(|p| p == "*" || p == role);
        let for_account = named.iter().any(|p| *p == root || p == account);
        if !for_role && !for_account {
            continue;
        }
        let actions = list(st.get("Action"));
        let not_actions = list(st.get("NotAction"));
        let acts = if st.get("NotAction").is_some() {
            !not_actions.iter().any(|a| glob(&a.to_lowercase(), &n.action.to_lowercase()))
        } else {
            actions.iter().any(|a| glob(&a.to_lowercase(), &n.action.to_lowercase()))
        };
        // In a key policy, "*" is this key.
        let on_key = list(st.get("Resource")).iter().any(|r| glob(r, key)) || st.get("Resource").is_none();
        if !acts || !on_key || conditions_hold(st.get("Condition"), &context) != Some(true) {
            continue;
        }
        match st["Effect"].as_str() {
            Some("Deny") => return KeyPolicy::Denies,
            Some("Allow") if for_role => role_allowed = true,
            Some("Allow") => iam_enabled = true,
            _ => {}
        }
    }
    if role_allowed {
        KeyPolicy::AllowsRole
    } else if iam_enabled {
        KeyPolicy::EnablesIam
    } else {
        KeyPolicy::Silent
    }
}

/// IAM's wildcards: `*` any run of characters, `?` one.
fn glob(pattern: &str, value: &str) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = (pattern.chars().collect(), value.chars().collect());
    fn go(p: &[char], v: &[char]) -> bool {
        match p.first() {
            None => v.is_empty(),
            Some('*') => (0..=v.len()).any(|i| go(&p[1..], &v[i..])),
            Some('?') => !v.is_empty() && go(&p[1..], &v[1..]),
            Some(c) => v.first() == Some(c) && go(&p[1..], &v[1..]),
        }
    }
    go(&p, &v)
}

/// Whether a statement's Condition holds for `context` (lower-cased keys); None when it names an
/// operator this doesn't evaluate.
fn conditions_hold(condition: Option<&serde_json::Value>, context: &[(String, Vec<String>)]) -> Option<bool> {
    let Some(serde_json::Value::Object(ops)) = condition else { return Some(true) };
    for (operator, keys) in ops {
        let op = operator.rsplit(':').next().unwrap_or(operator);
        let (op, if_exists) = op.strip_suffix("IfExists").map_or((op, false), |o| (o, true));
        let serde_json::Value::Object(keys) = keys else { return None };
        for (key, wanted) in keys {
            let wanted: Vec<String> = match wanted {
                serde_json::Value::Array(l) => {
                    l.iter().map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned)).collect()
                }
                x => vec![x.as_str().map_or_else(|| x.to_string(), str::to_owned)],
            };
            let have = context.iter().find(|(k, _)| *k == key.to_lowercase()).map(|(_, v)| v);
            let test = |w: &str, h: &str| -> Option<bool> {
                Some(match op {
                    "StringEquals" | "ArnEquals" | "StringNotEquals" | "ArnNotEquals" => w == h,
                    "StringEqualsIgnoreCase" => w.eq_ignore_ascii_case(h),
                    "StringLike" | "ArnLike" | "StringNotLike" | "ArnNotLike" => glob(w, h),
                    "Bool" => w.eq_ignore_ascii_case(h),
                    _ => return None,
                })
            };
            let negated = op.contains("Not");
            let null_wanted = wanted.iter().any(|w| w == "true");
            let Some(have) = have else {
                // A key the use lacks: Null "true" holds, IfExists and ForAllValues pass, the rest fail.
                let passes = if op == "Null" {
                    null_wanted
                } else {
                    test("", "")?;
                    if_exists || operator.starts_with("ForAllValues:")
                };
                if !passes {
                    return Some(false);
                }
                continue;
            };
            if op == "Null" {
                if null_wanted {
                    return Some(false);
                }
                continue;
            }
            let mut any = false;
            for h in have {
                for w in &wanted {
                    any |= test(w, h)?;
                }
            }
            if any == negated {
                return Some(false);
            }
        }
    }
    Some(true)
}

/// One region's manual snapshot quota of one kind (`DescribeAccountAttributes`: `ManualSnapshots`
/// for instance snapshots, `ManualClusterSnapshots` for cluster snapshots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quota {
    pub region: String,
    /// `instance` or `cluster`.
    pub kind: &'static str,
    pub used: usize,
    /// The quota's maximum; None when RDS reported none (judged against the default).
    pub max: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    pub class: String,
    pub engine: String,
    pub version: String,
    pub offered: bool,
}

/// One call a recovery of the database would make, as IAM sees it: the action, the resource, and
/// the request context its conditions test (what the real call would carry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub action: &'static str,
    pub resource: String,
    /// (key, values, a list key): `aws:TagKeys` and Route 53's change keys are lists.
    pub context: Vec<(&'static str, Vec<String>, bool)>,
}

fn need(action: &'static str, resource: impl Into<String>) -> Need {
    Need { action, resource: resource.into(), context: Vec::new() }
}

/// What the data validator of `region`'s stack reads for `db`'s checks and heartbeat: the logins'
/// secrets, or the IAM database user it signs tokens for, on the databases it checks, which are
/// in its own region (any instance's resource id: restores get new ones). A secret it can't read
/// makes every check of a recovery `secret-unreadable`; a user it may not connect as, `credentials`.
pub fn validator_needs(db: &Database, region: &str) -> Vec<Need> {
    let Some(v) = &db.validate else { return Vec::new() };
    let mut out = Vec::new();
    out.extend(v.connect.secret.as_ref().map(|s| need("secretsmanager:GetSecretValue", s.clone())));
    out.extend(v.connect.iam_user.as_ref().map(|user| {
        let arn = &db.source;
        need("rds-db:connect", format!("arn:{}:rds-db:{region}:{}:dbuser:*/{user}", arn.partition, arn.account))
    }));
    out.extend(v.heartbeat.as_ref().map(|h| need("secretsmanager:GetSecretValue", h.secret.clone())));
    out
}

/// The calls that move the database in a failover of `db`, run from `stack_region`'s stack in
/// `stack_account` (the steps' role's account), each with the resource IAM checks it on: what an
/// IAM policy simulation of the steps' role must allow. What the recovery creates or writes is the
/// stack's account's, which is not the source's in a recovery account (`restore.from_vault`). A
/// global database's own name is not in the config: its switchover is among them when the
/// `global` cluster the target belongs to was read.
pub fn needs(db: &Database, stack_region: &str, stack_account: &str, global: Option<&str>) -> Vec<Need> {
    use Strategy::*;
    let Some(f) = db.failover.as_ref() else { return Vec::new() };
    let (partition, account) = (db.source.partition.as_str(), stack_account);
    let mut out = Vec::new();
    let tagged = |mut n: Need| {
        n.context.push(("aws:RequestTag/lifeboat:incident", vec!["readiness".to_owned()], false));
        n.context.push(("aws:RequestTag/lifeboat:database", vec![db.name.clone()], false));
        n.context.push(("aws:TagKeys", vec!["lifeboat:incident".to_owned(), "lifeboat:database".to_owned()], true));
        n
    };
    match f.strategy {
        PromoteReplica => {
            if let Some(t) = &f.target {
                let action = if db.is_cluster() { "rds:PromoteReadReplicaDBCluster" } else { "rds:PromoteReadReplica" };
                out.push(need(action, t.to_string()));
            }
        }
        AuroraFailover => out.push(need("rds:FailoverDBCluster", db.source.to_string())),
        RebootMultiAz => out.push(need("rds:RebootDBInstance", db.source.to_string())),
        GlobalSwitchover | GlobalFailover => {
            if let Some(g) = global {
                let action = if f.strategy == GlobalSwitchover {
                    "rds:SwitchoverGlobalCluster"
                } else {
                    "rds:FailoverGlobalCluster"
                };
                out.push(need(action, format!("arn:{partition}:rds::{account}:global-cluster:{g}")));
            }
        }
        RestoreLatestCopy | PointInTime => {
            let region = if f.strategy == PointInTime {
                db.source.region.as_str()
            } else {
                restore_region(db).unwrap_or(&db.source.region)
            };
            let (kind, action) = match (db.is_cluster(), f.strategy) {
                (false, PointInTime) => ("db", "rds:RestoreDBInstanceToPointInTime"),
                (true, PointInTime) => ("cluster", "rds:RestoreDBClusterToPointInTime"),
                (false, _) => ("db", "rds:RestoreDBInstanceFromDBSnapshot"),
                (true, _) => ("cluster", "rds:RestoreDBClusterFromSnapshot"),
            };
            let rds = |what: &str| format!("arn:{partition}:rds:{region}:{account}:{what}");
            out.push(tagged(need(action, rds(&format!("{kind}:lf-readiness")))));
            out.push(tagged(need("rds:AddTagsToResource", rds(&format!("{kind}:lf-readiness")))));
            if f.strategy == PointInTime {
                out.push(tagged(need(action, db.source.to_string())));
            }
            // A DR copy under a customer managed key: RDS describes it and makes a grant on it,
            // through RDS; the key's own policy must allow both too (`key_policy_says`).
            let key = db.copy_to.iter().find(|t| t.region == region).and_then(|t| t.kms_key.as_ref());
            if let (Some(key), RestoreLatestCopy) = (key, f.strategy) {
                for action in ["kms:CreateGrant", "kms:DescribeKey"] {
                    let mut n = need(action, key.clone());
                    n.context.push(("kms:ViaService", vec![format!("rds.{region}.amazonaws.com")], false));
                    out.push(n);
                }
            }
            if let Some(r) = restore_of(db) {
                out.push(need(action, rds(&format!("subgrp:{}", r.subnet_group))));
                if db.is_cluster() {
                    out.push(tagged(need("rds:CreateDBInstance", rds("db:lf-readiness-1"))));
                }
            }
        }
    }
    if let Some(d) = &f.dns {
        match d.mode {
            crate::failover::DnsMode::Upsert => {
                let mut n = need(
                    "route53:ChangeResourceRecordSets",
                    format!("arn:{partition}:route53:::hostedzone/{}", d.zone_id),
                );
                n.context.push(("route53:ChangeResourceRecordSetsActions", vec!["UPSERT".to_owned()], true));
                n.context.push(("route53:ChangeResourceRecordSetsRecordTypes", vec!["CNAME".to_owned()], true));
                n.context.push((
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames",
                    vec![d.record.to_lowercase()],
                    true,
                ));
                out.push(n);
            }
            crate::failover::DnsMode::RoutingControl => {
                for c in d.routing_controls.iter().flat_map(|r| [&r.on, &r.off]) {
                    out.push(need("route53-recovery-cluster:UpdateRoutingControlStates", c.clone()));
                }
            }
        }
    }
    if let Some(name) = &f.endpoint_parameter {
        out.push(need("ssm:PutParameter", format!("arn:{partition}:ssm:{stack_region}:{account}:parameter{name}")));
    }
    out
}

/// The approval key must be at least this long (HMAC-SHA256: 32 bytes).
pub const MIN_KEY_LENGTH: usize = 32;

/// What a restore of `db` would be given: `failover.restore`, else `drill.restore`.
pub fn restore_of(db: &Database) -> Option<&Restore> {
    db.failover.as_ref().and_then(|f| f.restore.as_ref()).or_else(|| db.drill.as_ref().map(|d| &d.restore))
}

fn check(check: &'static str, level: Level, reason: impl Into<String>) -> Check {
    Check { check, level, reason: reason.into() }
}

pub fn evaluate(db: &Database, f: &Facts, now: DateTime<Utc>) -> Vec<Check> {
    use Level::*;
    let mut out = Vec::new();
    let failover = db.failover.as_ref();
    let region = restore_region(db).unwrap_or(&db.source.region).to_owned();
    if let (Some(seen), Some(fo)) = (&f.target, failover) {
        let target = fo.target.as_ref().map_or_else(String::new, |t| t.to_string());
        out.push(match seen {
            None => check("target", Blocked, format!("{target} not found: recreate it or change failover.target")),
            Some(s) if hopeless(&s.status) || s.status == "failed" => {
                check("target", Blocked, format!("{} is {}: it can't take over", s.id, s.status))
            }
            Some(s) if fo.strategy == Strategy::PromoteReplica && !s.replicates_from(&db.source) => check(
                "target",
                Blocked,
                format!(
                    "{} no longer replicates from {} (promoted, or rebuilt from another source): recreate the replica \
                     or change failover.target",
                    s.id, db.source.id
                ),
            ),
            Some(s) if !s.available() => check("target", Warning, format!("{} is {}, not available", s.id, s.status)),
            Some(s) => check("target", Ok, format!("{} is available", s.id)),
        });
        if let Some((s, r)) = seen.as_ref().and_then(|s| s.replication.as_ref().map(|r| (s, r))) {
            out.push(replication(&s.id, r));
        }
        if fo.strategy == Strategy::PromoteReplica {
            let rpo = db.rpo.as_secs() as f64;
            out.push(match f.replica_lag_seconds {
                // RDS reports -1 when replication is not active: not a small lag.
                Some(l) if l < 0.0 => check(
                    "replica-lag",
                    Blocked,
                    "ReplicaLag is -1: RDS says replication is not active, so the replica holds data only until it \
                     stopped; read its events (aws rds describe-events), then restart replication or recreate the replica",
                ),
                Some(l) if l > rpo => check(
                    "replica-lag",
                    Warning,
                    format!(
                        "replica lag {}s is more than the RPO ({}s): a failover now loses that much",
                        l as i64, rpo as i64
                    ),
                ),
                Some(l) => check("replica-lag", Ok, format!("{}s", l as i64)),
                None => {
                    check("replica-lag", Warning, "no replica lag datapoint in the last minutes: the loss is unknown")
                }
            });
        }
    }
    if let (Some(member), Some(fo)) = (&f.global, failover) {
        let target = fo.target.as_ref().map_or_else(String::new, |t| t.to_string());
        out.push(match member {
            None => check(
                "global-cluster",
                Blocked,
                format!("{target} is in no global cluster: nothing to switch over to; add it as a secondary or change failover.target"),
            ),
            Some((g, true, _)) => check("global-cluster", Warning, format!("{target} is already the writer of {g}")),
            Some((g, false, status)) if status != "available" => {
                check("global-cluster", Warning, format!("{g} is {status}, not available: a switchover now would be refused"))
            }
            Some((g, false, _)) => check("global-cluster", Ok, format!("a secondary of {g}, which is available")),
        });
    }
    if let Some(r) = restore_of(db) {
        let section = if failover.and_then(|f| f.restore.as_ref()).is_some() { "failover" } else { "drill" };
        if let Some(exists) = f.subnet_group {
            out.push(if exists {
                check("restore-subnet-group", Ok, format!("{} in {region}", r.subnet_group))
            } else {
                check(
                    "restore-subnet-group",
                    Blocked,
                    format!(
                        "subnet group {} not found in {region}: create it or set {section}.restore.subnet_group",
                        r.subnet_group
                    ),
                )
            });
        }
        if let Some(missing) = &f.missing_security_groups {
            out.push(if missing.is_empty() {
                check("restore-security-groups", Ok, format!("{} in {region}", r.security_groups.join(", ")))
            } else {
                check(
                    "restore-security-groups",
                    Blocked,
                    format!(
                        "security group {} not found in {region}: create it or set {section}.restore.security_groups",
                        missing.join(", ")
                    ),
                )
            });
        }
        for (name, seen, field) in [
            ("restore-parameter-group", &f.parameter_group, "parameter_group"),
            ("restore-option-group", &f.option_group, "option_group"),
        ] {
            if let Some((group, exists)) = seen {
                out.push(if *exists {
                    check(name, Ok, format!("{group} in {region}"))
                } else {
                    check(
                        name,
                        Blocked,
                        format!("{group} not found in {region}: create it or set {section}.restore.{field}"),
                    )
                });
            }
        }
    }
    let from_vault = failover.and_then(|f| f.restore.as_ref()).and_then(|r| r.from_vault.as_deref());
    if let Some(vault) = from_vault {
        // Nothing to read here before a failover asks: the vault shares its copy then, and its
        // own alarm (VaultRpoAlarm) watches that copy's age.
        out.push(check(
            "dr-copy",
            Ok,
            format!("restores from vault account {vault}: its newest copy is shared when a failover asks"),
        ));
    } else if let Some(copy) = &f.newest_copy {
        out.push(match copy.as_ref().and_then(|c| c.restore_point().map(|p| (c, p))) {
            None => check("dr-copy", Blocked, format!("no available DR copy in {region}: nothing to restore")),
            Some((c, point)) => {
                let age = now - point;
                let level = if age.num_seconds() > db.rpo.as_secs() as i64 { Warning } else { Ok };
                check("dr-copy", level, format!("{} holds data until {} ago", c.arn.id, human(age)))
            }
        });
    }
    if let Some(dns) = &f.dns {
        out.push(match dns {
            Result::Ok(None) => check("dns", Ok, "the record can be moved"),
            Result::Ok(Some(why)) => check("dns", Blocked, why.clone()),
            Err(e) => check("dns", Warning, format!("the record was not read: {e}")),
        });
    }
    if let (Some(read), Some(rc)) =
        (&f.routing_controls, failover.and_then(|f| f.dns.as_ref()).and_then(|d| d.routing_controls.as_ref()))
    {
        let (on, off) = (short_control(&rc.on), short_control(&rc.off));
        out.push(match read {
            Result::Ok((a, b, at)) if a == "Off" && b == "On" => check(
                "routing-controls",
                Ok,
                format!("{on} Off, {off} On, read at the {at} cluster endpoint: the failover can flip them"),
            ),
            Result::Ok((a, b, _)) if a == "On" && b == "Off" => {
                check("routing-controls", Warning, format!("{on} On, {off} Off: traffic already goes to the target"))
            }
            Result::Ok((a, b, _)) => check(
                "routing-controls",
                Warning,
                format!("{on} {a}, {off} {b}: not the state before a failover ({on} Off, {off} On)"),
            ),
            Err(e) => check(
                "routing-controls",
                Blocked,
                format!("no ARC cluster endpoint answered ({e}): the DNS switch would fail; check dns.routing_controls.cluster_endpoints"),
            ),
        });
    }
    if let (Some(exists), Some(name)) = (f.endpoint_parameter, failover.and_then(|f| f.endpoint_parameter.as_ref())) {
        out.push(if exists {
            check("endpoint-parameter", Ok, name.clone())
        } else {
            check(
                "endpoint-parameter",
                Warning,
                format!("{name} does not exist here: the failover creates it, but nothing reads it yet"),
            )
        });
    }
    if let Some(key) = f.approval_key_length {
        out.push(match key {
            None => check("approval-key", Blocked, "the approval signing key is missing: nobody could approve"),
            Some(n) if n < MIN_KEY_LENGTH => check(
                "approval-key",
                Blocked,
                format!("the approval signing key is {n} bytes: make it at least {MIN_KEY_LENGTH}"),
            ),
            Some(_) => check("approval-key", Ok, "present"),
        });
    }
    if let Some(o) = &f.instance_class {
        out.push(if o.offered {
            check("restore-instance-class", Ok, format!("{} for {} {} in {region}", o.class, o.engine, o.version))
        } else {
            check(
                "restore-instance-class",
                Blocked,
                format!(
                    "{} is not offered for {} {} in {region}: pick one that is (aws rds describe-orderable-db-instance-options) for restore.instance_class",
                    o.class, o.engine, o.version
                ),
            )
        });
    }
    if let Some(p) = &f.permissions {
        out.push(match p {
            Result::Ok((n, denied)) if denied.is_empty() => {
                check("permissions", Ok, format!("the failover's role may make all {n} calls that move the database"))
            }
            Result::Ok((_, denied)) => check(
                "permissions",
                Blocked,
                format!(
                    "the failover's role may not {}: add it to the failover-steps role's policy (template.yaml)",
                    denied.iter().map(|(a, r)| format!("{a} on {r}")).collect::<Vec<_>>().join(", ")
                ),
            ),
            Err(e) => check("permissions", Warning, format!("not simulated: {e}")),
        });
    }
    if let Some(v) = &f.validator {
        out.push(match v {
            Result::Ok(denied) if denied.is_empty() => {
                check("data-checks", Ok, "the data validator may read the logins its checks use")
            }
            // A warning, not blocked: the recovery itself works; its data checks would fail and
            // hold the cut-over for a person.
            Result::Ok(denied) => check(
                "data-checks",
                Warning,
                format!(
                    "the data validator may not use {}: its checks would fail (secret-unreadable, or credentials \
                     for an IAM user) and hold the cut-over for a person; allow it secretsmanager:GetSecretValue \
                     (template.yaml: secret:lifeboat-*), or for connect.iam_user rds-db:connect (the stack's \
                     ValidatorDbUser)",
                    denied.join(", ")
                ),
            ),
            Err(e) => check("data-checks", Warning, format!("the data validator's access not simulated: {e}")),
        });
    }
    for k in &f.key_policies {
        let with =
            |p: KeyPolicy| k.says.iter().filter(|(_, s)| *s == p).map(|(a, _)| *a).collect::<Vec<_>>().join(", ");
        let account = k.role.split(':').nth(4).unwrap_or_default();
        let (denied, silent) = (with(KeyPolicy::Denies), with(KeyPolicy::Silent));
        out.push(if !denied.is_empty() {
            check(
                "key-policy",
                Blocked,
                format!(
                    "the key policy of {} denies the failover's role {denied}: remove that Deny for {} (aws kms get-key-policy / put-key-policy --policy-name default)",
                    k.key, k.role
                ),
            )
        } else if !silent.is_empty() {
            check(
                "key-policy",
                Blocked,
                format!(
                    "the key policy of {} neither allows the failover's role {silent} nor lets the account's IAM policies allow it, and without the key policy's leave IAM policies have no effect on a KMS key: add the default key policy's statement for arn:aws:iam::{account}:root, or one allowing {} {silent} (aws kms put-key-policy --policy-name default)",
                    k.key, k.role
                ),
            )
        } else if with(KeyPolicy::EnablesIam).is_empty() {
            check("key-policy", Ok, format!("the key policy of {} allows the failover's role what a restore needs", k.key))
        } else {
            check(
                "key-policy",
                Ok,
                format!("the key policy of {} lets the account's IAM policies allow a restore's use of it", k.key),
            )
        });
    }
    for (r, key, state) in &f.dr_keys {
        out.push(match state.as_deref() {
            Some("Enabled") => check("dr-key", Ok, format!("{key} is enabled in {r}")),
            Some("PendingDeletion") => check(
                "dr-key",
                Blocked,
                format!("{key} is pending deletion in {r}: cancel it (aws kms cancel-key-deletion) or set copy_to[].kms_key"),
            ),
            Some(other) => check("dr-key", Blocked, format!("{key} is {other} in {r}: enable it or set copy_to[].kms_key")),
            None => check("dr-key", Blocked, format!("{key} not found in {r}: set copy_to[].kms_key to a key that exists")),
        });
    }
    out.extend(f.snapshot_quotas.iter().map(snapshot_quota));
    for (r, instances, clusters) in &f.copies_in_flight {
        use crate::copy::{CLUSTER_COPIES_IN_FLIGHT, INSTANCE_COPIES_IN_FLIGHT};
        let full = *instances >= INSTANCE_COPIES_IN_FLIGHT || *clusters >= CLUSTER_COPIES_IN_FLIGHT;
        out.push(check(
            "copies-in-flight",
            if full { Warning } else { Ok },
            format!(
                "{instances} of {INSTANCE_COPIES_IN_FLIGHT} instance and {clusters} of {CLUSTER_COPIES_IN_FLIGHT} cluster copies in flight into {r}{}",
                if full { ": at RDS's limit, new copies wait and the RPO slips" } else { "" }
            ),
        ));
    }
    if let (Some(last), Some(d)) = (&f.last_drill, &db.drill) {
        out.push(match last {
            None => check("last-drill", Warning, "never drilled: the restore is not proven"),
            Some(r) if !r.passed => check(
                "last-drill",
                Warning,
                format!(
                    "the drill of {} failed: {}",
                    r.started.format("%Y-%m-%d"),
                    r.failure.clone().unwrap_or_default()
                ),
            ),
            Some(r) if (now - r.started).to_std().is_ok_and(|age| age > d.every) => check(
                "last-drill",
                Warning,
                format!("the last drill ({}) is older than drill.every", r.started.format("%Y-%m-%d")),
            ),
            Some(r) => check("last-drill", Ok, format!("passed {}", r.started.format("%Y-%m-%d"))),
        });
    }
    out
}

/// A replica's replication as RDS reports it: broken (`error`, `stopped`, `terminated`, or not
/// operating normally) blocks, as a promotion would take only the data it had when it broke.
pub fn replication(id: &str, r: &Replication) -> Check {
    if !r.broken() {
        return check("replication", Level::Ok, format!("{id}: {}", r.status));
    }
    let said = r.message.as_deref().map_or_else(String::new, |m| format!(" ({m})"));
    check(
        "replication",
        Level::Blocked,
        format!(
            "RDS says {id}'s read replication is {}{said}: it holds data only until replication broke; read its \
             events (aws rds describe-events --source-identifier {id}), then fix the cause or recreate the replica",
            r.status
        ),
    )
}

/// A manual snapshot quota, judged against its own maximum: blocked with fewer than 5 (or 5 %)
/// left, a warning under 20 % left. RDS refuses every copy into a region whose quota is full.
pub fn snapshot_quota(q: &Quota) -> Check {
    let (max, whose) = match q.max {
        Some(m) => (m, String::new()),
        None => (MANUAL_SNAPSHOT_QUOTA, " (RDS reported no quota: the default)".to_owned()),
    };
    let left = max.saturating_sub(q.used);
    let level = if left < 5 || left * 20 < max {
        Level::Blocked
    } else if left * 5 < max {
        Level::Warning
    } else {
        Level::Ok
    };
    let fix = if level == Level::Ok { "" } else { ": delete old manual snapshots there or ask AWS for a higher quota" };
    check(
        "snapshot-quota",
        level,
        format!(
            "{} of {max}{whose} manual {} snapshots used in {}: {left} left for copies and restores{fix}",
            q.used, q.kind, q.region
        ),
    )
}

/// A database whose facts could not all be read (AccessDenied, a throttled or failed call): one
/// blocked check saying what failed and what to do, never a verdict from half the facts.
pub fn unreadable(error: &str, retryable: bool) -> Vec<Check> {
    let denied = ["AccessDenied", "not authorized", "UnauthorizedOperation", "AuthorizationError"]
        .iter()
        .any(|d| error.contains(d));
    let fix = if denied {
        "grant that read to rpo-monitor's role (template.yaml, RpoMonitorFunction)"
    } else if retryable {
        "the next run (every 30 minutes) tries again; if it keeps failing, look at that service in that region"
    } else {
        "check that what the config names exists and that rpo-monitor's role may read it"
    };
    vec![check(
        "readable",
        Level::Blocked,
        format!("readiness could not read what a failover needs, so it is unknown: {error}; {fix}"),
    )]
}

/// A moved database protected again: its plan is the way back (re-protect built it), and
/// readiness finds that available and caught up (its lag known and inside the RPO, or for a
/// global database an available secondary). The key tells it once per way back.
pub fn protected_again(db: &Database, checks: &[Check]) -> Option<String> {
    db.moved_from.as_ref()?;
    let target = db.failover.as_ref()?.target.as_ref()?;
    let level = |name: &str| checks.iter().find(|c| c.check == name).map(|c| c.level);
    let fine = level("target") == Some(Level::Ok)
        && level("replica-lag").is_none_or(|l| l == Level::Ok)
        && level("global-cluster").is_none_or(|l| l == Level::Ok);
    fine.then(|| format!("protected#{}#{target}", db.name))
}

pub fn ready(checks: &[Check]) -> bool {
    checks.iter().all(|c| c.level != Level::Blocked)
}

/// A database whose verdict crossed between ready and not ready since people were last told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub database: String,
    pub checks: Vec<Check>,
    /// When the state it leaves began (the epoch when it was never told: ready, the quiet default).
    pub since: DateTime<Utc>,
}

impl Change {
    /// `checks` against what was last told (None: never): the change, if it is one.
    pub fn of(database: &str, checks: &[Check], told: Option<(bool, DateTime<Utc>)>) -> Option<Change> {
        let (was_not_ready, since) = told.unwrap_or((false, DateTime::<Utc>::MIN_UTC));
        (was_not_ready == ready(checks)).then(|| Change {
            database: database.to_owned(),
            checks: checks.to_vec(),
            since,
        })
    }

    pub fn ready(&self) -> bool {
        ready(&self.checks)
    }
}

/// The send-once key of one run's notice, from its changes: each is its database, which way it
/// went and when the state it left began (to the millisecond: runs on demand can come within a
/// second). A retried run finds the same changes (the states are written after the notice) and
/// so the same key, and tells nothing twice; any later change makes a new one.
pub fn changes_claim(changes: &[Change]) -> String {
    claim_for("ready", changes.iter().map(change_key).collect())
}

/// One change's own key: its database, which way it went (not ready: true) and when the state
/// it left began (to the millisecond: runs on demand can come within a second).
pub fn change_key(c: &Change) -> String {
    format!("ready#{}#{}#{}", c.database, !c.ready(), c.since.timestamp_millis())
}

/// The send-once key of one notice about a set of changes (each a line naming one), whatever
/// their order: `<prefix>#<how many>#<digest>`, short whatever the fleet (a DynamoDB key). One
/// change keeps its own line, the key its notice always had.
pub fn claim_for(prefix: &str, mut lines: Vec<String>) -> String {
    if let [one] = lines.as_mut_slice() {
        return std::mem::take(one);
    }
    lines.sort();
    let hex = crate::text::short_digest(&lines.join("\n"), 16);
    format!("{prefix}#{}#{hex}", lines.len())
}

/// "ready: yes / 2 warnings", or "ready: NO — subnet group dr-db not found ...".
pub fn summary(checks: &[Check]) -> String {
    let warnings = checks.iter().filter(|c| c.level == Level::Warning).count();
    let blocked: Vec<&str> = checks.iter().filter(|c| c.level == Level::Blocked).map(|c| c.reason.as_str()).collect();
    match (blocked.is_empty(), warnings) {
        (true, 0) => "ready: yes".to_owned(),
        (true, 1) => "ready: yes / 1 warning".to_owned(),
        (true, n) => format!("ready: yes / {n} warnings"),
        (false, _) => format!("ready: NO — {}", blocked.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 20, 0, 0).unwrap()
    }

    fn quota(kind: &'static str, used: usize, max: Option<usize>) -> Quota {
        Quota { region: "us-west-2".into(), kind, used, max }
    }

    #[test]
    fn the_validator_needs_its_secrets_or_its_iam_user_in_the_stacks_region() {
        let needs = |connect: &str| {
            let c = crate::config::validate::one_checked_as(connect);
            validator_needs(&c.databases[0], "us-west-2")
                .into_iter()
                .map(|n| (n.action, n.resource))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            needs("iam_user: lifeboat_validator"),
            [("rds-db:connect", "arn:aws:rds-db:us-west-2:123456789012:dbuser:*/lifeboat_validator".to_owned())]
        );
        let secret = "arn:aws:secretsmanager:us-west-2:123456789012:secret:lifeboat-v";
        assert_eq!(needs(&format!("secret: \"{secret}\"")), [("secretsmanager:GetSecretValue", secret.to_owned())]);
    }

    #[test]
    fn each_kind_of_snapshot_is_judged_against_its_own_quota() {
        let level = |kind, used, max| snapshot_quota(&quota(kind, used, max)).level;
        // The same 96 snapshots: nearly full under a quota of 100, nothing under one of 1000.
        assert_eq!(level("instance", 96, Some(100)), Level::Blocked);
        assert_eq!(level("cluster", 96, Some(1000)), Level::Ok);
        assert_eq!(level("instance", 85, Some(100)), Level::Warning);
        assert_eq!(level("instance", 80, Some(100)), Level::Ok);
        // Under a large quota, 5 % left is too little for a burst of copies.
        assert_eq!(level("cluster", 960, Some(1000)), Level::Blocked);
        assert_eq!(level("cluster", 850, Some(1000)), Level::Warning);
        // A small quota: fewer than 5 left blocks whatever the share.
        assert_eq!(level("cluster", 16, Some(20)), Level::Blocked);
        assert_eq!(level("cluster", 4, Some(20)), Level::Ok);
        assert_eq!(level("instance", 120, Some(100)), Level::Blocked, "over a lowered quota");
        // Not reported: judged against the default of 100, and said so.
        let c = snapshot_quota(&quota("cluster", 97, None));
        assert_eq!(c.level, Level::Blocked);
        assert!(
            c.reason.starts_with("97 of 100 (RDS reported no quota: the default) manual cluster snapshots"),
            "{c:?}"
        );
        assert_eq!(
            snapshot_quota(&quota("cluster", 960, Some(1000))).reason,
            "960 of 1000 manual cluster snapshots used in us-west-2: 40 left for copies and restores: delete old \
             manual snapshots there or ask AWS for a higher quota"
        );

        let c = Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap();
        let db = c.database_named("orders-prod").unwrap();
        let f = Facts {
            snapshot_quotas: vec![
                quota("instance", 30, Some(100)),
                Quota { region: "eu-west-1".into(), ..quota("instance", 99, Some(100)) },
            ],
            ..Facts::default()
        };
        let checks = evaluate(db, &f, now());
        let levels: Vec<(&str, Level)> = checks.iter().map(|c| (c.check, c.level)).collect();
        assert_eq!(levels, [("snapshot-quota", Level::Ok), ("snapshot-quota", Level::Blocked)]);
        assert!(checks[1].reason.contains("in eu-west-1: 1 left"), "{checks:?}");
    }

    /// orders-replica, available, replicating from `db`.
    fn replica_of(db: &Database) -> DbState {
        DbState {
            id: "orders-replica".into(),
            status: "available".into(),
            replica_of: Some(db.source.to_string()),
            ..DbState::default()
        }
    }

    #[test]
    fn a_moved_database_is_protected_again_once_its_way_back_is_there_and_caught_up() {
        let c = Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap();
        let written = c.database_named("orders-prod").unwrap();
        let ok = |name: &'static str| check(name, Level::Ok, "fine");
        let caught_up = [ok("target"), ok("replica-lag")];
        assert_eq!(protected_again(written, &caught_up), None, "not moved: its configured failover, nothing to tell");
        let mut moved = written.clone();
        moved.moved_from = Some(written.source.clone());
        let key = protected_again(&moved, &caught_up).expect("protected again");
        let target = moved.failover.as_ref().and_then(|f| f.target.as_ref()).unwrap();
        assert_eq!(key, format!("protected#orders-prod#{target}"), "once per way back");
        for lagging in [
            [ok("target"), check("replica-lag", Level::Warning, "no datapoint")],
            [check("target", Level::Warning, "creating"), ok("replica-lag")],
        ] {
            assert_eq!(protected_again(&moved, &lagging), None, "{lagging:?}");
        }
        let secondary = [ok("target"), check("global-cluster", Level::Warning, "modifying")];
        assert_eq!(protected_again(&moved, &secondary), None);
    }

    #[test]
    fn a_replica_whose_replication_broke_or_is_not_active_is_not_ok() {
        let c = Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap();
        let db = c.database_named("orders-prod").unwrap();
        let replica = DbState {
            replication: Some(Replication { status: "replicating".into(), normal: Some(true), message: None }),
            ..replica_of(db)
        };
        let facts = |target: DbState, lag: f64| Facts {
            target: Some(Some(target)),
            replica_lag_seconds: Some(lag),
            ..Facts::default()
        };
        let verdict = |f: &Facts| -> Vec<(&'static str, Level)> {
            evaluate(db, f, now()).iter().map(|c| (c.check, c.level)).collect()
        };
        let healthy = facts(replica.clone(), 3.0);
        assert_eq!(verdict(&healthy), [("target", Level::Ok), ("replication", Level::Ok), ("replica-lag", Level::Ok)]);

        // RDS says the replication broke: the instance itself is still "available".
        let broken = Replication {
            status: "error".into(),
            normal: Some(false),
            message: Some("Error 1062: duplicate entry".into()),
        };
        let f = facts(DbState { replication: Some(broken), ..replica.clone() }, 3.0);
        let checks = evaluate(db, &f, now());
        assert_eq!(verdict(&f), [("target", Level::Ok), ("replication", Level::Blocked), ("replica-lag", Level::Ok)]);
        assert!(!ready(&checks));
        assert!(
            checks[1].reason.starts_with(
                "RDS says orders-replica's read replication is error (Error 1062: duplicate entry): it holds data only"
            ),
            "{checks:?}"
        );
        assert!(checks[1].reason.contains("recreate the replica"), "says what to do: {checks:?}");
        // Not normal, whatever the status word.
        let odd = Replication { status: "replication stop point reached".into(), normal: Some(false), message: None };
        assert_eq!(replication("r", &odd).level, Level::Blocked);
        let stopped = Replication { status: "stopped".into(), normal: None, message: None };
        assert_eq!(replication("r", &stopped).level, Level::Blocked);

        // ReplicaLag -1: RDS says replication is not active, which is no lag of -1 s.
        let f = facts(replica, -1.0);
        let checks = evaluate(db, &f, now());
        let lag = checks.iter().find(|c| c.check == "replica-lag").expect("the lag check");
        assert_eq!(lag.level, Level::Blocked, "{checks:?}");
        assert!(lag.reason.starts_with("ReplicaLag is -1: RDS says replication is not active"), "{lag:?}");
        assert!(!ready(&checks));
    }

    #[test]
    fn a_change_is_a_crossing_of_ready_and_its_claim_is_the_same_for_the_same_changes() {
        let blocked = vec![check("restore-subnet-group", Level::Blocked, "subnet group dr-db not found")];
        let warned = vec![check("last-drill", Level::Warning, "never drilled")];
        let since = now() - chrono::Duration::hours(1);
        assert_eq!(Change::of("a", &warned, None), None, "ready is the quiet default");
        assert_eq!(Change::of("a", &blocked, Some((true, since))), None, "still not ready: told already");
        let stopped = Change::of("a", &blocked, None).expect("a database that starts out blocked is told");
        assert!(!stopped.ready() && stopped.since == DateTime::<Utc>::MIN_UTC);
        let again = Change::of("b", &warned, Some((true, since))).expect("ready again");
        assert!(again.ready() && again.since == since);

        let claim = changes_claim(&[stopped.clone(), again.clone()]);
        assert_eq!(claim, changes_claim(&[again.clone(), stopped.clone()]), "whatever the order");
        assert!(claim.starts_with("ready#2#") && claim.len() < 50, "{claim}");
        assert_eq!(changes_claim(std::slice::from_ref(&again)), change_key(&again), "one change, its own key");
        let later = Change { since: since + chrono::Duration::milliseconds(1), ..again.clone() };
        assert_ne!(claim, changes_claim(&[stopped.clone(), later]), "a later change is another notice");
        assert_ne!(claim, changes_claim(&[stopped]), "another set of changes too");
    }

    #[test]
    fn a_database_that_could_not_be_read_is_blocked_with_what_failed_and_what_to_do() {
        let denied = unreadable("rds:DescribeGlobalClusters: service error: AccessDenied: not authorized", false);
        assert!(!ready(&denied));
        assert_eq!(denied[0].check, "readable");
        assert!(denied[0].reason.contains("rds:DescribeGlobalClusters"), "{denied:?}");
        assert!(denied[0]
            .reason
            .ends_with("grant that read to rpo-monitor's role (template.yaml, RpoMonitorFunction)"));
        let throttled = unreadable("rds:DescribeDBInstances: Throttling", true);
        assert!(throttled[0].reason.contains("the next run (every 30 minutes) tries again"), "{throttled:?}");
        assert!(summary(&throttled).starts_with("ready: NO — readiness could not read what a failover needs"));
    }

    #[test]
    fn each_broken_thing_is_its_own_check_with_what_to_do() {
        let c = Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap();
        let db = c.database_named("orders-prod").unwrap();
        let replica = replica_of(db);
        let fine = Facts {
            target: Some(Some(replica.clone())),
            replica_lag_seconds: Some(3.0),
            dns: Some(Ok(None)),
            approval_key_length: Some(Some(48)),
            snapshot_quotas: vec![quota("instance", 12, Some(100))],
            ..Facts::default()
        };
        let checks = evaluate(db, &fine, now());
        assert!(ready(&checks), "{checks:?}");
        assert_eq!(summary(&checks), "ready: yes");

        let promoted = DbState { replica_of: None, ..replica };
        let broken = Facts {
            target: Some(Some(promoted)),
            dns: Some(Ok(Some("db.orders.internal is an alias A record".into()))),
            snapshot_quotas: vec![quota("instance", 98, Some(100))],
            approval_key_length: Some(Some(8)),
            ..fine
        };
        let checks = evaluate(db, &broken, now());
        let blocked: Vec<&str> = checks.iter().filter(|c| c.level == Level::Blocked).map(|c| c.check).collect();
        assert_eq!(blocked, ["target", "dns", "approval-key", "snapshot-quota"], "{checks:?}");
        assert!(summary(&checks).starts_with("ready: NO — orders-replica no longer replicates from orders-prod"));

        let denied = Facts {
            permissions: Some(Ok((3, vec![("rds:PromoteReadReplica".into(), "arn:x".into())]))),
            instance_class: Some(Offered {
                class: "db.r6g.large".into(),
                engine: "postgres".into(),
                version: "15.4".into(),
                offered: false,
            }),
            ..Facts::default()
        };
        let checks = evaluate(db, &denied, now());
        let said: Vec<(&str, Level)> = checks.iter().map(|c| (c.check, c.level)).collect();
        assert_eq!(said, [("restore-instance-class", Level::Blocked), ("permissions", Level::Blocked)]);
        assert!(checks[1].reason.contains("may not rds:PromoteReadReplica on arn:x"), "{checks:?}");
        let busy = Facts {
            copies_in_flight: vec![("us-west-2".into(), 3, 5), ("eu-west-1".into(), 19, 4)],
            ..Facts::default()
        };
        let checks = evaluate(db, &busy, now());
        assert_eq!(checks.iter().map(|c| c.level).collect::<Vec<_>>(), [Level::Warning, Level::Ok], "{checks:?}");
        assert!(checks[0].reason.ends_with("into us-west-2: at RDS's limit, new copies wait and the RPO slips"));
        let unsimulated = Facts { permissions: Some(Err("IAM did not answer".into())), ..Facts::default() };
        assert_eq!(evaluate(db, &unsimulated, now())[0].level, Level::Warning);
    }

    #[test]
    fn a_global_switchover_needs_its_target_a_secondary_of_an_available_global_cluster() {
        let yaml = "databases:\n  - name: ledger\n    source: arn:aws:rds:us-east-1:123456789012:cluster:ledger-east\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover:\n      strategy: global-switchover\n      target: arn:aws:rds:us-west-2:123456789012:cluster:ledger-west\n      approval: required\n";
        let c = Config::from_yaml(yaml).unwrap();
        let db = c.database_named("ledger").unwrap();
        let level = |g: Option<(String, bool, String)>| {
            let f = Facts { global: Some(g), ..Facts::default() };
            evaluate(db, &f, now()).iter().find(|c| c.check == "global-cluster").map(|c| c.level)
        };
        assert_eq!(level(Some(("ledger".into(), false, "available".into()))), Some(Level::Ok));
        assert_eq!(level(Some(("ledger".into(), false, "modifying".into()))), Some(Level::Warning));
        assert_eq!(level(Some(("ledger".into(), true, "available".into()))), Some(Level::Warning));
        assert_eq!(level(None), Some(Level::Blocked));
        let got = needs(db, "us-west-2", &db.source.account, Some("ledger"));
        assert_eq!(got, [need("rds:SwitchoverGlobalCluster", "arn:aws:rds::123456789012:global-cluster:ledger")]);
        assert!(needs(db, "us-west-2", &db.source.account, None).is_empty(), "not read: not simulated");
    }

    #[test]
    fn routing_controls_are_ready_only_in_their_before_failover_state_and_readable() {
        let yaml = "databases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:123456789012:db:orders\n    tier: production\n    rpo: 5m\n    rto: 30m\n    failover:\n      strategy: promote-replica\n      target: arn:aws:rds:us-west-2:123456789012:db:orders-replica\n      approval: required\n      dns:\n        zone_id: Z1\n        record: db.orders.internal\n        mode: routing-control\n        routing_controls:\n          on: arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol/west\n          off: arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol/east\n          cluster_endpoints: [{ region: us-west-2, url: \"https://a.example\" }]\n";
        let c = Config::from_yaml(yaml).unwrap();
        let db = c.database_named("orders").unwrap();
        let seen = |r: Result<(String, String, String), String>| {
            let f = Facts { routing_controls: Some(r), ..Facts::default() };
            let checks = evaluate(db, &f, now());
            let c = checks.into_iter().find(|c| c.check == "routing-controls").expect("the check");
            (c.level, c.reason)
        };
        let s = |a: &str, b: &str| Ok((a.to_owned(), b.to_owned(), "us-west-2".to_owned()));
        assert_eq!(
            seen(s("Off", "On")),
            (Level::Ok, "west Off, east On, read at the us-west-2 cluster endpoint: the failover can flip them".into())
        );
        assert_eq!(seen(s("On", "Off")).0, Level::Warning);
        assert_eq!(seen(s("Off", "Off")).0, Level::Warning);
        assert_eq!(seen(Err("timeout".into())).0, Level::Blocked);
    }

    #[test]
    fn a_replica_failover_needs_the_promotion_the_dns_change_and_the_parameter() {
        let c = Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).unwrap();
        let db = c.database_named("orders-prod").unwrap();
        let f = db.failover.as_ref().unwrap();
        let got = needs(db, "us-west-2", &db.source.account, None);
        let target = f.target.as_ref().unwrap().to_string();
        assert_eq!(got[0], Need { action: "rds:PromoteReadReplica", resource: target, context: vec![] });
        if let Some(d) = &f.dns {
            let dns = got.iter().find(|n| n.action == "route53:ChangeResourceRecordSets").expect("the DNS change");
            assert!(dns.resource.ends_with(&format!("hostedzone/{}", d.zone_id)), "{dns:?}");
            assert!(dns
                .context
                .iter()
                .any(|(k, v, _)| *k == "route53:ChangeResourceRecordSetsActions" && v == &["UPSERT"]));
        }
        if let Some(p) = &f.endpoint_parameter {
            assert!(
                got.iter().any(|n| n.action == "ssm:PutParameter"
                    && n.resource.ends_with(&format!("us-west-2:{}:parameter{p}", db.source.account))),
                "{got:?}"
            );
        }
    }

    #[test]
    fn a_dr_keys_policy_must_let_iam_policies_or_the_role_use_it() {
        let yaml = "databases:\n  - name: audit\n    source: arn:aws:rds:us-east-1:123456789012:db:audit\n    tier: non-production\n    rpo: 1h\n    rto: 4h\n    copy_to:\n      - { region: us-west-2, kms_key: \"arn:aws:kms:us-west-2:123456789012:key/dr\" }\n    failover:\n      strategy: restore-latest-copy\n      approval: auto\n      restore: { instance_class: db.t3.micro, subnet_group: dr-db }\n";
        let c = Config::from_yaml(yaml).unwrap();
        let db = c.database_named("audit").unwrap();
        let key = "arn:aws:kms:us-west-2:123456789012:key/dr";
        let role = "arn:aws:iam::123456789012:role/lifeboat-failover-steps";
        let kms: Vec<Need> =
            needs(db, "us-west-2", &db.source.account, None).into_iter().filter(|n| n.resource == key).collect();
        assert_eq!(kms.iter().map(|n| n.action).collect::<Vec<_>>(), ["kms:CreateGrant", "kms:DescribeKey"]);
        let says = |statements: &str| {
            let policy = format!(r#"{{"Version": "2012-10-17", "Statement": [{statements}]}}"#);
            kms.iter().map(|n| key_policy_says(&policy, key, role, n)).collect::<Vec<_>>()
        };
        let root = r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}"#;
        assert_eq!(says(root), [KeyPolicy::EnablesIam; 2], "the default key policy");
        let admin = r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/key-admin"}, "Action": "kms:*", "Resource": "*"}"#;
        assert_eq!(says(admin), [KeyPolicy::Silent; 2]);
        let other_account = r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"}, "Action": "kms:*", "Resource": "*"}"#;
        assert_eq!(says(other_account), [KeyPolicy::Silent; 2]);
        let via_rds = format!(
            r#"{{"Effect": "Allow", "Principal": {{"AWS": ["{role}"]}}, "Action": ["kms:CreateGrant", "kms:Describe*"], "Resource": "*", "Condition": {{"StringLike": {{"kms:ViaService": "rds.*.amazonaws.com"}}}}}}"#
        );
        assert_eq!(says(&via_rds), [KeyPolicy::AllowsRole; 2]);
        let via_ec2 = via_rds.replace("rds.*", "ec2.*");
        assert_eq!(says(&via_ec2), [KeyPolicy::Silent; 2], "a condition the restore's call doesn't meet");
        // The default policy's statement for grants to AWS resources: CreateGrant carries the key.
        let grants = format!(
            r#"{{"Effect": "Allow", "Principal": {{"AWS": "{role}"}}, "Action": "kms:CreateGrant", "Resource": "*", "Condition": {{"Bool": {{"kms:GrantIsForAWSResource": true}}}}}}"#
        );
        assert_eq!(says(&grants), [KeyPolicy::AllowsRole, KeyPolicy::Silent]);
        let unknown = grants.replace("\"Bool\"", "\"NumericLessThan\"");
        assert_eq!(says(&unknown), [KeyPolicy::Silent; 2], "an operator not evaluated allows nothing");
        let deny = r#"{"Effect": "Deny", "Principal": "*", "Action": "kms:CreateGrant", "Resource": "*"}"#;
        assert_eq!(says(&format!("{root}, {deny}")), [KeyPolicy::Denies, KeyPolicy::EnablesIam]);

        let access = |says: Vec<(&'static str, KeyPolicy)>| {
            let f = Facts {
                key_policies: vec![KeyAccess { key: key.into(), role: role.into(), says }],
                ..Facts::default()
            };
            let c = evaluate(db, &f, now()).into_iter().find(|c| c.check == "key-policy").expect("the check");
            (c.level, c.reason)
        };
        let (level, why) =
            access(vec![("kms:CreateGrant", KeyPolicy::EnablesIam), ("kms:DescribeKey", KeyPolicy::AllowsRole)]);
        assert_eq!(level, Level::Ok, "{why}");
        let (level, why) = access(vec![("kms:CreateGrant", KeyPolicy::Silent), ("kms:DescribeKey", KeyPolicy::Silent)]);
        assert_eq!(level, Level::Blocked);
        assert!(why.contains("neither allows the failover's role kms:CreateGrant, kms:DescribeKey"), "{why}");
        assert!(why.contains("statement for arn:aws:iam::123456789012:root"), "{why}");
        let (level, why) =
            access(vec![("kms:CreateGrant", KeyPolicy::Denies), ("kms:DescribeKey", KeyPolicy::EnablesIam)]);
        assert_eq!(level, Level::Blocked);
        assert!(why.contains("denies the failover's role kms:CreateGrant"), "{why}");
    }
}
