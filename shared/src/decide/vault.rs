//! Copies in a vault account: what this account sends, what the vault copies and keeps, and which
//! copy a restore from the vault uses. Pure: the functions read RDS, ask these, then write.
//!
//! The path, and why each step: RDS shares only manual snapshots, never one under the AWS managed
//! `aws/rds` key, and Aurora copies a shared cluster snapshot only within its region. So the
//! source account first makes a *transit* copy of the snapshot in the vault's region under its
//! shareable key (`vault.share_key`), shares that copy with the vault account alone, and puts an
//! event on its bus that EventBridge forwards to the vault's. The vault copies the share under its
//! own key and announces the copy back; the source then tags its snapshot `lifeboat:vaulted`,
//! stops sharing and deletes the transit copy. Both sweeps redo whatever an event missed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

use serde_json::Value;

use crate::arn::{RdsArn, RdsResource};
use crate::config::vault::{Frequency, Vault};
use crate::config::{Database, Tier};
use crate::copy::{
    available_sources, in_flight, short_hash, CopyRequest, CLUSTER_COPIES_IN_FLIGHT, INSTANCE_COPIES_IN_FLIGHT,
};
use crate::event::EventError;
use crate::snapshot::{
    tag_time, Snapshot, FAILED, TAG_DATABASE, TAG_MANAGED, TAG_RETAIN_UNTIL, TAG_SOURCE_ARN, TAG_SOURCE_CREATED,
    TAG_SOURCE_DATABASE, TAG_VAULTED, TAG_VAULT_SOURCE, TAG_VAULT_TRANSIT,
};

/// EventBridge `source` and `detail-type` of what the source account says to the vault...
pub const SOURCE_EVENTS: &str = "lifeboat.source";
pub const SHARED: &str = "Lifeboat Snapshot Shared";
/// ... and of what the vault says back, and what a recovery account asks of it.
pub const VAULT_EVENTS: &str = "lifeboat.vault";
pub const VAULTED: &str = "Lifeboat Vault Copy Made";
pub const RESTORE_REQUESTED: &str = "Lifeboat Vault Restore Requested";
pub const RECOVERY_EVENTS: &str = "lifeboat.recovery";

/// What one account says to another over EventBridge. `from` is the envelope's `account`, which
/// EventBridge sets to the account that put the event: a sender can't claim to be another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaultMessage {
    /// From a source account: `snapshot`, its transit copy, is shared with the vault.
    Shared { from: String, snapshot: RdsArn, database: Option<String>, retention: Option<Duration> },
    /// From the vault: it holds `copy` of the share `shared`.
    Vaulted { from: String, shared: RdsArn, copy: RdsArn },
    /// From a recovery account: share the newest vault copy of `database` (`<account>/<id>`).
    /// `not_after`: the newest copy taken at or before it, not simply the newest.
    RestoreRequested { from: String, database: String, not_after: Option<DateTime<Utc>> },
}

/// The vault message in an EventBridge event; None when it is none of Lifeboat's vault events.
pub fn message(payload: &Value) -> Option<Result<VaultMessage, EventError>> {
    let source = payload.get("source")?.as_str()?;
    let kind = payload.get("detail-type")?.as_str()?;
    if source != SOURCE_EVENTS && source != VAULT_EVENTS && source != RECOVERY_EVENTS {
        return None;
    }
    Some(parse_message(source, kind, payload))
}

fn parse_message(source: &str, kind: &str, payload: &Value) -> Result<VaultMessage, EventError> {
    let bad = |why: String| EventError(format!("{kind} from {source}: {why}"));
    let from = payload["account"]
        .as_str()
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad("no 12-digit `account`".into()))?
        .to_owned();
    let detail = &payload["detail"];
    let arn = |field: &str| -> Result<RdsArn, EventError> {
        let text = detail[field].as_str().ok_or_else(|| bad(format!("detail.{field} is missing")))?;
        let arn: RdsArn = text.parse().map_err(|e| bad(format!("detail.{field}: {e}")))?;
        if !arn.is_snapshot() {
            return Err(bad(format!("detail.{field} `{arn}` is not a snapshot")));
        }
        Ok(arn)
    };
    match (source, kind) {
        (SOURCE_EVENTS, SHARED) => {
            let snapshot = arn("snapshot")?;
            if snapshot.account != from {
                return Err(bad(format!("{snapshot} is not account {from}'s to share")));
            }
            Ok(VaultMessage::Shared {
                from,
                snapshot,
                database: detail["database"].as_str().map(str::to_owned),
                retention: detail["retention_seconds"].as_u64().map(Duration::from_secs),
            })
        }
        (VAULT_EVENTS, VAULTED) => Ok(VaultMessage::Vaulted { from, shared: arn("shared")?, copy: arn("copy")? }),
        (RECOVERY_EVENTS, RESTORE_REQUESTED) => {
            let database = detail["database"]
                .as_str()
                .filter(|d| d.split_once('/').is_some_and(|(a, id)| a.len() == 12 && !id.is_empty()))
                .ok_or_else(|| bad("detail.database must be <account>/<database identifier>".into()))?;
            let not_after = match detail.get("not_after").filter(|v| !v.is_null()) {
                None => None,
                Some(v) => Some(
                    v.as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc))
                        .ok_or_else(|| bad("detail.not_after must be an RFC 3339 time".into()))?,
                ),
            };
            Ok(VaultMessage::RestoreRequested { from, database: database.to_owned(), not_after })
        }
        _ => Err(bad("not a vault event Lifeboat knows".into())),
    }
}

const TRANSIT_PREFIX: &str = "lifeboat-vault-";
const STAMP: &str = "%Y%m%d%H%M%S";

/// The transit copy's identifier: the restore point it holds (the vault reads it back: a shared
/// snapshot's tags are not the vault's to read) and a hash of the source ARN, so a replay finds
/// the copy already there. 38 characters: within a cluster snapshot identifier's 63.
pub fn transit_identifier(source: &RdsArn, restore_point: DateTime<Utc>) -> String {
    format!("{TRANSIT_PREFIX}{}-{}", restore_point.format(STAMP), short_hash(source))
}

/// The restore point a transit identifier carries; None for any other identifier.
pub fn transit_restore_point(id: &str) -> Option<DateTime<Utc>> {
    let rest = id.strip_prefix(TRANSIT_PREFIX)?;
    let (stamp, hash) = rest.split_once('-')?;
    if hash.len() != 8 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, STAMP).ok().map(|t| t.and_utc())
}

/// A transit copy to start: `source` into `transit`, in the vault's region, this account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitRequest {
    pub copy: CopyRequest,
    /// An unencrypted cluster snapshot can't be encrypted by a copy: it is shared as it is.
    pub shares_unencrypted: bool,
}

/// What the source account does for the vault in one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SendPlan {
    pub transits: Vec<TransitRequest>,
    /// Over the in-flight copy quota: the next sweep starts them.
    pub deferred: Vec<TransitRequest>,
    /// Transit copies ready to share with the vault (again: sharing twice changes nothing) and
    /// announce on the bus, as (database, transit ARN).
    pub share: Vec<(String, RdsArn)>,
    /// Transit copies RDS failed to make: deleted, and made again by a later run.
    pub delete_failed: Vec<RdsArn>,
    /// What a person must know: unencrypted snapshots shared as they are.
    pub warnings: Vec<String>,
}

fn is_transit_of(db: &Database, vault: &Vault, s: &Snapshot) -> bool {
    s.is_vault_transit()
        && s.arn.region == vault.region
        && s.arn.account == db.source.account
        && s.tags.get(TAG_DATABASE) == Some(&db.name)
}

/// The transit copy that carries `source` to `vault`.
pub fn transit_request(db: &Database, vault: &Vault, source: &Snapshot) -> Option<TransitRequest> {
    let at = source.restore_point()?;
    let id = transit_identifier(&source.arn, at);
    let cluster = source.arn.resource == RdsResource::ClusterSnapshot;
    // CopyDBClusterSnapshot refuses a key for an unencrypted source; CopyDBSnapshot encrypts with
    // it, so an instance snapshot never leaves this account unencrypted.
    let shares_unencrypted = cluster && !source.encrypted;
    let tags = vec![
        (TAG_VAULT_TRANSIT.to_owned(), vault.account.clone()),
        (TAG_DATABASE.to_owned(), db.name.clone()),
        (TAG_VAULT_SOURCE.to_owned(), source.arn.to_string()),
        (TAG_SOURCE_CREATED.to_owned(), tag_time(at)),
    ];
    Some(TransitRequest {
        copy: CopyRequest {
            database: db.name.clone(),
            source: source.arn.clone(),
            target: source.arn.sibling(&vault.region, source.arn.resource, &id),
            kms_key: (!shares_unencrypted).then(|| vault.share_key.clone()),
            option_group: None,
            tags,
            replaces_failed: false,
        },
        shares_unencrypted,
    })
}

/// Which source snapshots go to the vault now. `EverySnapshot`: each one newer than the newest
/// already vaulted or on its way (history before the first is not back-filled: only the newest
/// then). `Every(d)`: the newest, once the newest vaulted or on its way is `d` older.
pub fn due<'a>(vault: &Vault, sources: &[&'a Snapshot], transits: &[&Snapshot]) -> Vec<&'a Snapshot> {
    let sent: Option<DateTime<Utc>> = sources
        .iter()
        .filter(|s| s.tags.contains_key(TAG_VAULTED))
        .filter_map(|s| s.restore_point())
        .chain(transits.iter().filter_map(|t| t.restore_point()))
        .max();
    let mut candidates: Vec<&'a Snapshot> =
        sources.iter().copied().filter(|s| !s.tags.contains_key(TAG_VAULTED) && s.restore_point().is_some()).collect();
    candidates.sort_by_key(|s| (s.restore_point(), s.arn.id.clone()));
    let Some(newest) = candidates.last().copied() else { return Vec::new() };
    let Some(sent) = sent else { return vec![newest] };
    match vault.frequency {
        Frequency::EverySnapshot => candidates.into_iter().filter(|s| s.restore_point() > Some(sent)).collect(),
        Frequency::Every(d) => {
            let gap = newest.restore_point().map(|at| at - sent);
            let d = chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
            if gap.is_some_and(|g| g >= d) {
                vec![newest]
            } else {
                Vec::new()
            }
        }
    }
}

/// The source account's vault work for `db`: `source_listing` is its source region,
/// `vault_listing` this account's snapshots in the vault's region.
pub fn plan_sends(db: &Database, source_listing: &[Snapshot], vault_listing: &[Snapshot]) -> SendPlan {
    let mut plan = SendPlan::default();
    let Some(vault) = &db.vault else { return plan };
    let sources = available_sources(db, source_listing);
    let transits: Vec<&Snapshot> = vault_listing.iter().filter(|s| is_transit_of(db, vault, s)).collect();
    let live: Vec<&Snapshot> = transits.iter().copied().filter(|t| t.status != FAILED).collect();
    for t in &transits {
        if t.status == FAILED {
            plan.delete_failed.push(t.arn.clone());
        } else if t.is_available() {
            if !t.encrypted {
                let source = t.tags.get(TAG_VAULT_SOURCE).map_or(t.arn.to_string(), String::clone);
                plan.warnings.push(unencrypted_warning(db, &source));
            }
            plan.share.push((db.name.clone(), t.arn.clone()));
        }
    }
    let (resource, limit) = if db.is_cluster() {
        (RdsResource::ClusterSnapshot, CLUSTER_COPIES_IN_FLIGHT)
    } else {
        (RdsResource::InstanceSnapshot, INSTANCE_COPIES_IN_FLIGHT)
    };
    let mut flying = in_flight(vault_listing, resource);
    let live_ids: BTreeSet<&str> = live.iter().map(|t| t.arn.id.as_str()).collect();
    for source in due(vault, &sources, &live) {
        let Some(req) = transit_request(db, vault, source) else { continue };
        if live_ids.contains(req.copy.target.id.as_str()) {
            continue;
        }
        if flying >= limit {
            plan.deferred.push(req);
        } else {
            flying += 1;
            plan.transits.push(req);
        }
    }
    plan
}

/// Said in the report whenever an unencrypted snapshot is shared; louder for production.
pub fn unencrypted_warning(db: &Database, source: &str) -> String {
    let tier = if db.tier == Tier::Production { "PRODUCTION database " } else { "" };
    format!(
        "{tier}{}: snapshot {source} is unencrypted, and an unencrypted Aurora snapshot can't be encrypted by a \
         copy; it is shared with vault account {} unencrypted",
        db.name,
        db.vault.as_ref().map_or("?", |v| v.account.as_str())
    )
}

/// The vault stack's own settings (its parameters): nothing here comes from a source account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultSettings {
    /// The vault account and region.
    pub account: String,
    pub region: String,
    /// The vault's key: every copy it makes is encrypted with it (but unencrypted Aurora ones).
    pub kms_key: String,
    /// The lock: no copy younger than this is deleted, whatever anyone asks.
    pub minimum_retention: Duration,
    /// Retention when no source asked for one (a copy the sweep made on its own).
    pub default_retention: Duration,
    /// The newest this many copies of each database are kept, however old.
    pub minimum_kept: usize,
    /// The accounts whose shares the vault copies.
    pub sources: BTreeSet<String>,
    /// The accounts a restore may share a vault copy with.
    pub restore_accounts: BTreeSet<String>,
}

/// `<account>/<database identifier>`: which database a vault copy restores, read from RDS's own
/// fields of the share, so an event and the sweep agree.
pub fn source_database(shared: &Snapshot) -> String {
    database_key(&shared.arn.account, &shared.database_id)
}

fn database_key(account: &str, id: &str) -> String {
    format!("{account}/{id}")
}

/// Why the vault won't copy a share (not its business, or not yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotVaulted {
    NotFromASource(String),
    NotATransit(String),
    NotAvailable(String),
}

/// The vault copy of one share. `asked` is the retention the source asked for (the vault's
/// default without one); `name` the source's name for the database, for people.
pub fn vault_copy(
    shared: &Snapshot,
    settings: &VaultSettings,
    asked: Option<Duration>,
    name: Option<&str>,
) -> Result<CopyRequest, NotVaulted> {
    if !settings.sources.contains(&shared.arn.account) {
        return Err(NotVaulted::NotFromASource(format!(
            "{} is shared by account {}, which this vault doesn't serve",
            shared.arn, shared.arn.account
        )));
    }
    let Some(at) = transit_restore_point(&shared.arn.id) else {
        return Err(NotVaulted::NotATransit(format!("{} is not a Lifeboat transit copy", shared.arn)));
    };
    if !shared.is_available() {
        return Err(NotVaulted::NotAvailable(format!("{} is {}", shared.arn, shared.status)));
    }
    let keep = asked.unwrap_or(settings.default_retention).max(settings.minimum_retention);
    let until = at + chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let name = name.unwrap_or(&shared.database_id).to_owned();
    let tags = vec![
        (TAG_MANAGED.to_owned(), "true".to_owned()),
        (TAG_DATABASE.to_owned(), name.clone()),
        (TAG_SOURCE_DATABASE.to_owned(), source_database(shared)),
        (TAG_SOURCE_ARN.to_owned(), shared.arn.to_string()),
        (TAG_SOURCE_CREATED.to_owned(), tag_time(at)),
        (TAG_RETAIN_UNTIL.to_owned(), tag_time(until)),
    ];
    let cluster = shared.arn.resource == RdsResource::ClusterSnapshot;
    Ok(CopyRequest {
        database: name,
        source: shared.arn.clone(),
        target: RdsArn::new(
            &shared.arn.partition,
            &settings.region,
            &settings.account,
            shared.arn.resource,
            // The transit's own identifier: unique (it hashes the source ARN, account included),
            // and it carries the restore point to whoever is shared the copy later.
            &shared.arn.id,
        ),
        // "If you copy an encrypted DB snapshot that is shared from another AWS account, then you
        // must specify a value for KmsKeyId"; an unencrypted cluster snapshot refuses one.
        kms_key: (!cluster || shared.encrypted).then(|| settings.kms_key.clone()),
        option_group: None,
        tags,
        replaces_failed: false,
    })
}

/// The vault's copies: Lifeboat-made, in its account.
fn vault_copies<'a>(own: &'a [Snapshot], settings: &VaultSettings) -> Vec<&'a Snapshot> {
    own.iter()
        .filter(|s| s.arn.account == settings.account && s.is_owned() && s.tags.contains_key(TAG_SOURCE_DATABASE))
        .collect()
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VaultSweep {
    /// Shares without a vault copy yet.
    pub copies: Vec<CopyRequest>,
    /// Vault copies made whose share is still there: tell the source (again), as (share, copy).
    pub announce: Vec<(RdsArn, RdsArn)>,
    /// Shares the vault won't copy, and why.
    pub refused: Vec<String>,
    /// Failed vault copies: the vault's pruner clears them; the next sweep copies again.
    pub failed: Vec<RdsArn>,
}

/// The vault's sweep: every share a source made gets a copy, every copy made is announced while
/// its share lasts (the source stops sharing once it hears).
pub fn plan_vault_sweep(shared: &[Snapshot], own: &[Snapshot], settings: &VaultSettings) -> VaultSweep {
    let mut plan = VaultSweep::default();
    let by_id: BTreeMap<&str, &Snapshot> = own.iter().map(|s| (s.arn.id.as_str(), s)).collect();
    for share in shared.iter().filter(|s| s.arn.account != settings.account) {
        let req = match vault_copy(share, settings, None, None) {
            Ok(req) => req,
            Err(NotVaulted::NotAvailable(_)) => continue,
            Err(NotVaulted::NotFromASource(why) | NotVaulted::NotATransit(why)) => {
                plan.refused.push(why);
                continue;
            }
        };
        match by_id.get(req.target.id.as_str()) {
            Some(copy) if copy.is_available() => plan.announce.push((share.arn.clone(), copy.arn.clone())),
            Some(copy) if copy.status == FAILED => plan.failed.push(copy.arn.clone()),
            Some(_) => {}
            None => plan.copies.push(req),
        }
    }
    plan
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Keep {
    Keep(String),
    Delete(String),
}

fn retain_until(s: &Snapshot) -> Option<DateTime<Utc>> {
    s.tags.get(TAG_RETAIN_UNTIL).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc))
}

/// What the vault's pruner does with each of its copies. A copy is deleted only when all hold:
/// it is older than the lock (by when the vault made it), past the retention it was made with,
/// and not among its database's newest `minimum_kept`. Failed copies, once past the lock too.
pub fn plan_vault_prune<'a>(
    own: &'a [Snapshot],
    settings: &VaultSettings,
    now: DateTime<Utc>,
) -> Vec<(&'a Snapshot, Keep)> {
    let lock = chrono::Duration::from_std(settings.minimum_retention).unwrap_or(chrono::Duration::MAX);
    let mut by_db: BTreeMap<&str, Vec<&Snapshot>> = BTreeMap::new();
    for s in vault_copies(own, settings) {
        by_db.entry(s.tags.get(TAG_SOURCE_DATABASE).map_or("", String::as_str)).or_default().push(s);
    }
    let mut out = Vec::new();
    for (_, mut copies) in by_db {
        copies.sort_by(|a, b| b.restore_point().cmp(&a.restore_point()).then_with(|| a.arn.id.cmp(&b.arn.id)));
        let mut kept_available = 0;
        for s in copies {
            // A copy RDS hasn't dated is as young as now: the lock holds it.
            let made = s.created.unwrap_or(now);
            let decision = if now - made < lock {
                Keep::Keep(format!("younger than the vault's lock of {} days", lock.num_days()))
            } else if s.status == FAILED {
                Keep::Delete("RDS failed to make this copy".into())
            } else if !s.is_available() {
                Keep::Keep(format!("{}, not available", s.status))
            } else if kept_available < settings.minimum_kept {
                Keep::Keep(format!("among the newest {} of its database", settings.minimum_kept))
            } else if retain_until(s).is_none_or(|until| now < until) {
                Keep::Keep("within the retention it was made with".into())
            } else {
                Keep::Delete("past its retention and the vault's lock".into())
            };
            if s.is_available() && matches!(decision, Keep::Keep(_)) {
                kept_available += 1;
            }
            out.push((s, decision));
        }
    }
    out
}

/// The newest available vault copy of each database (`<account>/<identifier>`) and its restore
/// point: the vault's RPO.
pub fn newest_copies<'a>(own: &'a [Snapshot], settings: &VaultSettings) -> BTreeMap<String, &'a Snapshot> {
    let mut out: BTreeMap<String, &Snapshot> = BTreeMap::new();
    for s in vault_copies(own, settings).into_iter().filter(|s| s.is_available()) {
        let key = s.tags.get(TAG_SOURCE_DATABASE).cloned().unwrap_or_default();
        let newer = out.get(&key).is_none_or(|n| (s.restore_point(), &s.arn.id) > (n.restore_point(), &n.arn.id));
        if newer {
            out.insert(key, s);
        }
    }
    out
}

/// The newest copy `vault` shares with this account of `db` (matched by the source database's
/// identifier, which a copy keeps), dated by the restore point its identifier carries but never
/// later than RDS made the vault's copy (the identifier is the source account's to choose, RDS's
/// creation time is not): what a restore from the vault uses. With `not_after`, the newest taken
/// at or before it (after ransomware, the newest copy may hold the attacker's work).
pub fn newest_share(
    db: &Database,
    vault: &str,
    shared: &[Snapshot],
    not_after: Option<DateTime<Utc>>,
) -> Option<Snapshot> {
    let mut best: Option<(DateTime<Utc>, &Snapshot)> = None;
    for s in shared.iter().filter(|s| {
        s.arn.account == vault
            && s.arn.resource == db.snapshot_resource()
            && s.database_id == db.source.id
            && s.is_available()
    }) {
        let Some(claimed) = transit_restore_point(&s.arn.id) else { continue };
        let at = s.created.map_or(claimed, |made| claimed.min(made));
        if not_after.is_some_and(|t| at > t) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, n)| (at, &s.arn.id) > (*b, &n.arn.id)) {
            best = Some((at, s));
        }
    }
    best.map(|(at, s)| {
        let mut s = s.clone();
        s.tags.insert(TAG_SOURCE_CREATED.into(), tag_time(at));
        s
    })
}

/// This account's copy of a vault copy shared with it, under the same identifier (so a restore
/// planned from the share finds it by name) and `kms_key` ("If you copy an encrypted DB snapshot
/// that is shared from another AWS account, then you must specify a value for KmsKeyId"), tagged
/// as a Lifeboat copy of `db`, but not `lifeboat:managed`: the restore's source is not the
/// pruner's to take. RDS names the target in the caller's account: the target ARN's account is
/// left empty, the adapter addresses it by region and identifier.
pub fn local_copy(db: &Database, share: &RdsArn, kms_key: Option<String>) -> CopyRequest {
    let mut tags = vec![(TAG_DATABASE.to_owned(), db.name.clone()), (TAG_SOURCE_ARN.to_owned(), share.to_string())];
    if let Some(at) = transit_restore_point(&share.id) {
        tags.push((TAG_SOURCE_CREATED.to_owned(), tag_time(at)));
    }
    CopyRequest {
        database: db.name.clone(),
        source: share.clone(),
        target: RdsArn::new(&share.partition, &share.region, "", share.resource, &share.id),
        kms_key,
        option_group: None,
        tags,
        replaces_failed: false,
    }
}

/// The key a config database has on the vault side.
pub fn key_of(db: &Database) -> String {
    database_key(&db.source.account, &db.source.id)
}

/// The newest restore point this account knows reached the vault (the `lifeboat:vaulted` tag the
/// vault's answer sets): the source side's view of the vault's RPO.
pub fn newest_vaulted(db: &Database, source_listing: &[Snapshot]) -> Option<DateTime<Utc>> {
    available_sources(db, source_listing)
        .into_iter()
        .filter(|s| s.tags.contains_key(TAG_VAULTED))
        .filter_map(Snapshot::restore_point)
        .max()
}

/// What Organizations says of the vault account (read by vault-keeper with a delegated read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuardrailFacts {
    /// The organization's management account: SCPs don't apply there.
    pub management_account: String,
    /// Every SCP attached to the vault account and to each OU and root above it.
    pub attached: BTreeSet<String>,
    /// The guardrail's policy document as it is now (DescribePolicy), if it exists.
    pub content: Option<String>,
}

/// The actions the guardrail must deny for it to be the vault's lock (infra/vault-guardrail.yaml).
pub const GUARDRAIL_DENIES: [&str; 2] = ["rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot"];

/// Whether the guardrail SCP binds the vault account, in the words of the vault's RPO report:
/// `in place`, `NOT in place` or `not known`, each with why.
pub fn guardrail(policy_id: Option<&str>, account: &str, facts: Result<GuardrailFacts, String>) -> String {
    let Some(id) = policy_id.filter(|p| !p.is_empty()) else {
        return "not known: the vault stack names no GuardrailPolicyId (docs/vault.md, the guardrail)".into();
    };
    let facts = match facts {
        Ok(f) => f,
        Err(why) => return format!("not known: {why}"),
    };
    if facts.management_account == account {
        return format!(
            "NOT in place: account {account} is its organization's management account, where SCPs don't apply"
        );
    }
    if !facts.attached.contains(id) {
        return format!(
            "NOT in place: SCP {id} is attached neither to account {account} nor to an OU or root above it"
        );
    }
    let denied = facts.content.as_deref().map(denied_actions).unwrap_or_default();
    let missing: Vec<&str> =
        GUARDRAIL_DENIES.iter().copied().filter(|a| !denied.iter().any(|d| action_matches(d, a))).collect();
    if missing.is_empty() {
        format!("in place: SCP {id} binds account {account}; snapshot deletes only by the vault pruner")
    } else {
        format!("NOT in place: SCP {id} is attached but no longer denies {}", missing.join(", "))
    }
}

/// An IAM action pattern (`rds:Delete*`, `*`) against an action, case-insensitively as IAM does.
fn action_matches(pattern: &str, action: &str) -> bool {
    let (pattern, action) = (pattern.to_ascii_lowercase(), action.to_ascii_lowercase());
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == action;
    }
    let mut rest = action.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else { return false };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else { return false };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

/// The actions a policy document's `Deny` statements name (case kept; wildcards as written).
fn denied_actions(document: &str) -> Vec<String> {
    let Ok(doc) = serde_json::from_str::<Value>(document) else { return Vec::new() };
    let statements = match &doc["Statement"] {
        Value::Array(list) => list.clone(),
        one @ Value::Object(_) => vec![one.clone()],
        _ => Vec::new(),
    };
    statements
        .iter()
        .filter(|s| s["Effect"] == "Deny")
        .flat_map(|s| match &s["Action"] {
            Value::String(a) => vec![a.clone()],
            Value::Array(l) => l.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
            _ => Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::snapshot::SnapshotType;
    use chrono::TimeZone;

    const SOURCE: &str = "111111111111";
    const VAULT: &str = "222222222222";

    #[test]
    fn the_guardrail_is_in_place_only_attached_above_a_member_and_denying_deletes() {
        let scp = r#"{"Statement": [{"Effect": "Deny", "Action": ["rds:DeleteDB*Snapshot"], "Resource": "*"}]}"#;
        let facts = |attached: &[&str], content: &str| GuardrailFacts {
            management_account: "999999999999".into(),
            attached: attached.iter().map(|s| (*s).to_owned()).collect(),
            content: Some(content.to_owned()),
        };
        let id = Some("p-guardrail1");
        assert!(guardrail(None, VAULT, Ok(facts(&[], scp))).starts_with("not known: "));
        assert!(guardrail(id, VAULT, Err("AccessDeniedException".into())).starts_with("not known: AccessDenied"));
        assert!(guardrail(id, VAULT, Ok(facts(&["p-FullAWSAccess"], scp))).starts_with("NOT in place: "));
        assert!(guardrail(id, VAULT, Ok(facts(&["p-guardrail1"], scp))).starts_with("in place: "));
        let emptied = facts(&["p-guardrail1"], r#"{"Statement": {"Effect": "Allow", "Action": "*"}}"#);
        assert!(guardrail(id, VAULT, Ok(emptied)).contains("no longer denies rds:DeleteDBSnapshot"));
        let management = GuardrailFacts { management_account: VAULT.into(), ..facts(&["p-guardrail1"], scp) };
        assert!(guardrail(id, VAULT, Ok(management)).contains("management account"));
    }

    fn config(frequency: &str) -> Config {
        Config::from_yaml(&format!(
            "vault:\n  account: \"{VAULT}\"\n  region: us-west-2\n  share_key: arn:aws:kms:us-west-2:{SOURCE}:key/share\n  retention: 35d\n  frequency: {frequency}\ndatabases:\n  - name: orders\n    source: arn:aws:rds:us-east-1:{SOURCE}:db:orders\n    tier: production\n    rpo: 1h\n    rto: 1h\n  - name: ledger\n    source: arn:aws:rds:us-east-1:{SOURCE}:cluster:ledger\n    tier: production\n    rpo: 1h\n    rto: 1h\n"
        ))
        .unwrap()
    }

    fn at(hour: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + chrono::Duration::hours(hour)
    }

    fn snap(arn: &str, db: &str, hour: i64, tags: &[(&str, &str)]) -> Snapshot {
        let arn: RdsArn = arn.parse().unwrap();
        Snapshot {
            snapshot_type: if arn.id.starts_with("rds:") { SnapshotType::Automated } else { SnapshotType::Manual },
            arn,
            database_id: db.into(),
            status: "available".into(),
            created: Some(at(hour)),
            original_created: None,
            encrypted: true,
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn source(id: &str, hour: i64) -> Snapshot {
        snap(&format!("arn:aws:rds:us-east-1:{SOURCE}:snapshot:{id}"), "orders", hour, &[])
    }

    #[test]
    fn transit_identifiers_carry_the_restore_point_and_fit_a_cluster_snapshot() {
        let arn: RdsArn =
            format!("arn:aws:rds:us-east-1:{SOURCE}:cluster-snapshot:rds:ledger-2026-12-01").parse().unwrap();
        let id = transit_identifier(&arn, at(5));
        assert!(id.len() <= 63 && id.starts_with("lifeboat-vault-20261201050000-"), "{id}");
        assert_eq!(transit_restore_point(&id), Some(at(5)));
        assert_eq!(id, transit_identifier(&arn, at(5)), "a replay names the same copy");
        assert_ne!(id, transit_identifier(&arn.sibling("eu-west-1", arn.resource, &arn.id), at(5)));
        for other in ["lifeboat-orders-1234abcd", "lifeboat-vault-2026-x", "lifeboat-vault-20261201050000-xyz"] {
            assert_eq!(transit_restore_point(other), None, "{other}");
        }
    }

    #[test]
    fn every_snapshot_sends_the_newest_first_then_each_newer_one() {
        let c = config("every-snapshot");
        let db = c.database_named("orders").unwrap();
        let listing = vec![source("rds:orders-a", 1), source("rds:orders-b", 2), source("rds:orders-c", 3)];
        let plan = plan_sends(db, &listing, &[]);
        let sent: Vec<&str> = plan.transits.iter().map(|t| t.copy.source.id.as_str()).collect();
        assert_eq!(sent, ["rds:orders-c"], "history is not back-filled");
        let t = &plan.transits[0].copy;
        assert_eq!(t.target.region, "us-west-2");
        assert_eq!(t.target.account, SOURCE, "the transit copy stays in this account");
        assert_eq!(t.kms_key.as_deref(), Some(format!("arn:aws:kms:us-west-2:{SOURCE}:key/share").as_str()));
        // Once the vault holds c, a new snapshot d goes too.
        let mut listing = listing;
        listing[2].tags.insert(TAG_VAULTED.into(), "x".into());
        listing.push(source("rds:orders-d", 4));
        let plan = plan_sends(db, &listing, &[]);
        let sent: Vec<&str> = plan.transits.iter().map(|t| t.copy.source.id.as_str()).collect();
        assert_eq!(sent, ["rds:orders-d"]);
    }

    #[test]
    fn a_transit_in_flight_is_not_started_twice_and_is_shared_once_available() {
        let c = config("every-snapshot");
        let db = c.database_named("orders").unwrap();
        let listing = vec![source("rds:orders-a", 1)];
        let req = plan_sends(db, &listing, &[]).transits.remove(0).copy;
        let mut transit = snap(&req.target.to_string(), "orders", 1, &[]);
        transit.tags = req.tags.iter().cloned().collect();
        transit.status = "copying".into();
        let plan = plan_sends(db, &listing, std::slice::from_ref(&transit));
        assert!(plan.transits.is_empty() && plan.share.is_empty(), "{plan:?}");
        transit.status = "available".into();
        let plan = plan_sends(db, &listing, std::slice::from_ref(&transit));
        assert!(plan.transits.is_empty(), "{plan:?}");
        assert_eq!(plan.share, vec![("orders".to_owned(), transit.arn.clone())]);
        transit.status = FAILED.into();
        let plan = plan_sends(db, &listing, std::slice::from_ref(&transit));
        assert_eq!(plan.delete_failed, vec![transit.arn.clone()]);
        assert_eq!(plan.transits.len(), 1, "made again");
    }

    #[test]
    fn transit_copies_and_dr_copies_share_the_destination_s_quota() {
        let c = config("every-snapshot");
        let db = c.database_named("orders").unwrap();
        let flying = |n: usize, transit: bool| -> Vec<Snapshot> {
            (0..n)
                .map(|i| {
                    let mut s =
                        snap(&format!("arn:aws:rds:us-west-2:{SOURCE}:snapshot:lifeboat-x-{i}"), "other", 1, &[]);
                    s.status = "copying".into();
                    s.tags.insert(if transit { TAG_VAULT_TRANSIT } else { TAG_SOURCE_ARN }.into(), "x".into());
                    s
                })
                .collect()
        };
        let full = flying(INSTANCE_COPIES_IN_FLIGHT, false);
        let plan = plan_sends(db, &[source("rds:orders-a", 1)], &full);
        assert!(plan.transits.is_empty() && plan.deferred.len() == 1, "DR copies fill the quota: {plan:?}");
        let transits = flying(INSTANCE_COPIES_IN_FLIGHT, true);
        assert_eq!(
            in_flight(&transits, RdsResource::InstanceSnapshot),
            INSTANCE_COPIES_IN_FLIGHT,
            "and transit copies count for the DR sweep"
        );
    }

    #[test]
    fn a_daily_frequency_sends_one_a_day() {
        let c = config("24h");
        let db = c.database_named("orders").unwrap();
        let mut listing = vec![source("rds:orders-a", 1)];
        listing[0].tags.insert(TAG_VAULTED.into(), "x".into());
        listing.push(source("rds:orders-b", 13));
        assert!(plan_sends(db, &listing, &[]).transits.is_empty(), "12 hours after the last one");
        listing.push(source("rds:orders-c", 25));
        let plan = plan_sends(db, &listing, &[]);
        let sent: Vec<&str> = plan.transits.iter().map(|t| t.copy.source.id.as_str()).collect();
        assert_eq!(sent, ["rds:orders-c"]);
    }

    #[test]
    fn transits_and_copies_are_never_sources() {
        let c = config("every-snapshot");
        let db = c.database_named("orders").unwrap();
        let mut transit = source("lifeboat-vault-20261201010000-0a0b0c0d", 1);
        transit.tags.insert(TAG_VAULT_TRANSIT.into(), VAULT.into());
        let mut copy = source("lifeboat-orders-0a0b0c0d", 1);
        copy.tags.insert(TAG_SOURCE_ARN.into(), "arn".into());
        assert!(plan_sends(db, &[transit, copy], &[]).transits.is_empty());
    }

    #[test]
    fn an_unencrypted_cluster_snapshot_is_shared_as_it_is_and_the_report_says_so() {
        let c = config("every-snapshot");
        let db = c.database_named("ledger").unwrap();
        let mut s = snap(&format!("arn:aws:rds:us-east-1:{SOURCE}:cluster-snapshot:rds:ledger-a"), "ledger", 1, &[]);
        s.encrypted = false;
        let plan = plan_sends(db, std::slice::from_ref(&s), &[]);
        let req = &plan.transits[0].copy;
        assert_eq!(req.kms_key, None);
        let mut transit = s.clone();
        transit.arn = req.target.clone();
        transit.tags = req.tags.iter().cloned().collect();
        let plan = plan_sends(db, &[s], &[transit]);
        assert_eq!(plan.share.len(), 1);
        assert!(
            plan.warnings[0].contains("PRODUCTION") && plan.warnings[0].contains("unencrypted"),
            "said when shared: {plan:?}"
        );
        let mut i = source("rds:orders-a", 1);
        i.encrypted = false;
        let plan = plan_sends(c.database_named("orders").unwrap(), &[i], &[]);
        assert!(
            plan.transits[0].copy.kms_key.is_some() && plan.warnings.is_empty(),
            "a copy encrypts an instance snapshot"
        );
    }

    fn settings() -> VaultSettings {
        VaultSettings {
            account: VAULT.into(),
            region: "us-west-2".into(),
            kms_key: format!("arn:aws:kms:us-west-2:{VAULT}:key/vault"),
            minimum_retention: Duration::from_secs(7 * 86_400),
            default_retention: Duration::from_secs(30 * 86_400),
            minimum_kept: 1,
            sources: [SOURCE.to_owned()].into(),
            restore_accounts: BTreeSet::new(),
        }
    }

    fn share(hour: i64) -> Snapshot {
        let arn: RdsArn = format!("arn:aws:rds:us-east-1:{SOURCE}:snapshot:rds:orders-{hour}").parse().unwrap();
        let id = transit_identifier(&arn, at(hour));
        snap(&format!("arn:aws:rds:us-west-2:{SOURCE}:snapshot:{id}"), "orders", hour + 1, &[])
    }

    #[test]
    fn the_vault_copies_a_share_under_its_own_key_and_keeps_at_least_its_lock() {
        let s = settings();
        let req = vault_copy(&share(1), &s, Some(Duration::from_secs(86_400)), Some("orders-prod")).unwrap();
        assert_eq!(req.target.account, VAULT);
        assert_eq!(req.kms_key.as_deref(), Some(s.kms_key.as_str()));
        let tags: BTreeMap<_, _> = req.tags.iter().cloned().collect();
        assert_eq!(tags[TAG_SOURCE_DATABASE], format!("{SOURCE}/orders"));
        assert_eq!(tags[TAG_DATABASE], "orders-prod");
        assert_eq!(tags[TAG_SOURCE_CREATED], "2026-12-01T01:00:00Z");
        assert_eq!(tags[TAG_RETAIN_UNTIL], "2026-12-08T01:00:00Z", "a day asked, the 7-day lock kept");
        let mut stranger = share(1);
        stranger.arn.account = "333333333333".into();
        assert!(matches!(vault_copy(&stranger, &s, None, None), Err(NotVaulted::NotFromASource(_))));
        let mut other = share(1);
        other.arn.id = "payroll-export".into();
        assert!(matches!(vault_copy(&other, &s, None, None), Err(NotVaulted::NotATransit(_))));
    }

    fn made(share: &Snapshot, s: &VaultSettings, made_at: i64, asked: Option<Duration>) -> Snapshot {
        let req = vault_copy(share, s, asked, None).unwrap();
        let mut c = snap(&req.target.to_string(), "orders", made_at, &[]);
        c.tags = req.tags.into_iter().collect();
        c
    }

    #[test]
    fn the_sweep_copies_what_no_event_brought_and_announces_what_is_made() {
        let s = settings();
        let (a, b) = (share(1), share(2));
        let copy_a = made(&a, &s, 2, None);
        let plan = plan_vault_sweep(&[a.clone(), b.clone()], std::slice::from_ref(&copy_a), &s);
        assert_eq!(plan.copies.len(), 1);
        assert_eq!(plan.copies[0].source, b.arn);
        assert_eq!(plan.announce, vec![(a.arn.clone(), copy_a.arn.clone())]);
    }

    #[test]
    fn the_pruner_keeps_everything_younger_than_the_lock_and_the_newest_always() {
        let s = settings();
        let day = 24;
        let copies: Vec<Snapshot> =
            (0..4).map(|d| made(&share(d * day), &s, d * day + 1, Some(Duration::from_secs(86_400)))).collect();
        // Day 5: every copy is within the 7-day lock.
        let now = at(5 * day);
        assert!(plan_vault_prune(&copies, &s, now).iter().all(|(_, k)| matches!(k, Keep::Keep(_))));
        // Day 9: copies of days 0 and 1 are past the lock and their asked day; 3 is the newest.
        let now = at(9 * day);
        let deleted: Vec<&str> = plan_vault_prune(&copies, &s, now)
            .into_iter()
            .filter(|(_, k)| matches!(k, Keep::Delete(_)))
            .map(|(c, _)| c.arn.id.as_str())
            .collect();
        assert_eq!(deleted, [copies[1].arn.id.as_str(), copies[0].arn.id.as_str()], "newest first");
        // A year on, the newest stays.
        let kept: Vec<_> = plan_vault_prune(&copies, &s, at(400 * day))
            .into_iter()
            .filter(|(_, k)| matches!(k, Keep::Keep(_)))
            .map(|(c, _)| c.arn.id.clone())
            .collect();
        assert_eq!(kept, [copies[3].arn.id.clone()]);
        // Not the vault's own copies: never touched.
        let mut foreign = copies[0].clone();
        foreign.tags.remove(TAG_MANAGED);
        assert!(plan_vault_prune(&[foreign], &s, at(400 * day)).is_empty());
    }

    #[test]
    fn messages_are_read_with_the_account_eventbridge_set_and_forgeries_refused() {
        let shared = serde_json::json!({"source": SOURCE_EVENTS, "detail-type": SHARED, "account": SOURCE,
            "detail": {"snapshot": format!("arn:aws:rds:us-west-2:{SOURCE}:snapshot:lifeboat-vault-20261201000000-0a0b0c0d"),
                       "database": "orders", "retention_seconds": 86400}});
        match message(&shared) {
            Some(Ok(VaultMessage::Shared { from, retention, .. })) => {
                assert_eq!((from.as_str(), retention), (SOURCE, Some(Duration::from_secs(86_400))));
            }
            other => panic!("{other:?}"),
        }
        let mut forged = shared.clone();
        forged["account"] = VAULT.into();
        assert!(matches!(message(&forged), Some(Err(_))), "a share of another account's snapshot");
        let mut anonymous = shared.clone();
        anonymous.as_object_mut().unwrap().remove("account");
        assert!(matches!(message(&anonymous), Some(Err(_))));
        let restore = serde_json::json!({"source": RECOVERY_EVENTS, "detail-type": RESTORE_REQUESTED, "account": VAULT,
            "detail": {"database": "orders"}});
        assert!(matches!(message(&restore), Some(Err(_))), "a database is <account>/<identifier>");
        let rds = serde_json::json!({"source": "aws.rds", "detail-type": "RDS DB Snapshot Event", "detail": {}});
        assert!(message(&rds).is_none(), "not a vault event");
    }

    #[test]
    fn a_restore_uses_the_newest_share_of_the_database_from_the_vault_alone() {
        let c = config("every-snapshot");
        let db = c.database_named("orders").unwrap();
        let shared_by = |account: &str, hour: i64| {
            let arn: RdsArn = format!("arn:aws:rds:us-east-1:{SOURCE}:snapshot:rds:orders-{hour}").parse().unwrap();
            snap(
                &format!("arn:aws:rds:us-west-2:{account}:snapshot:{}", transit_identifier(&arn, at(hour))),
                "orders",
                hour,
                &[],
            )
        };
        let shares = [shared_by(VAULT, 1), shared_by(VAULT, 5), shared_by("333333333333", 9)];
        let newest = newest_share(db, VAULT, &shares, None).unwrap();
        assert_eq!(newest.arn, shares[1].arn);
        assert_eq!(newest.restore_point(), Some(at(5)), "dated by its identifier, not when it was copied");
        let local = local_copy(db, &newest.arn, Some("k".into()));
        assert_eq!((local.target.id.as_str(), local.target.region.as_str()), (newest.arn.id.as_str(), "us-west-2"));
        assert!(local.tags.contains(&(TAG_DATABASE.to_owned(), "orders".to_owned())));

        // A person picks a time before the attack: the newest taken at or before it.
        assert_eq!(newest_share(db, VAULT, &shares, Some(at(4))).map(|s| s.arn), Some(shares[0].arn.clone()));
        assert_eq!(newest_share(db, VAULT, &shares, Some(at(0))), None);
        // The identifier is the source account's to choose: one claiming a restore point in 2099,
        // copied into the vault at hour 6, is dated hour 6, and loses to a copy made after it.
        let source: RdsArn = format!("arn:aws:rds:us-east-1:{SOURCE}:snapshot:rds:orders-x").parse().unwrap();
        let forged = snap(
            &format!("arn:aws:rds:us-west-2:{VAULT}:snapshot:{}", transit_identifier(&source, at(24 * 365 * 73))),
            "orders",
            6,
            &[],
        );
        let later = shared_by(VAULT, 7);
        let both = [forged.clone(), later.clone()];
        assert_eq!(newest_share(db, VAULT, &both, None).map(|s| s.arn), Some(later.arn));
        assert_eq!(newest_share(db, VAULT, &[forged], None).and_then(|s| s.restore_point()), Some(at(6)));
    }

    #[test]
    fn the_source_s_vault_rpo_is_the_newest_restore_point_the_vault_confirmed() {
        let c = config("24h");
        let mut listing = vec![source("rds:orders-a", 1), source("rds:orders-b", 20)];
        listing[0].tags.insert(TAG_VAULTED.into(), "arn".into());
        let listings: crate::copy::RegionListings = [("us-east-1".to_owned(), listing)].into();
        let vault_of = |hour: i64| {
            crate::rpo::assess(&c, &listings, &|_, _| None, at(hour))
                .into_iter()
                .find(|a| a.database == "orders" && a.region == "vault:us-west-2")
                .expect("a vault assessment")
        };
        let a = vault_of(30);
        assert_eq!(a.copy_age_seconds, Some(29 * 3600), "b is not confirmed yet: a counts");
        assert!(!a.breached, "within a day plus six hours: {a:?}");
        assert!(vault_of(32).breached);
        let ledger = crate::rpo::assess(&c, &listings, &|_, _| None, at(2))
            .into_iter()
            .find(|a| a.database == "ledger" && a.region == "vault:us-west-2")
            .expect("ledger");
        assert!(ledger.breached && ledger.copy_age_seconds.is_none(), "nothing in the vault yet");
    }

    #[test]
    fn the_sample_events_are_what_the_functions_read() {
        let load = |name: &str| -> Value {
            let path = format!("{}/../events/{name}", env!("CARGO_MANIFEST_DIR"));
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
        };
        assert!(matches!(message(&load("vault-snapshot-shared.json")), Some(Ok(VaultMessage::Shared { .. }))));
        assert!(matches!(message(&load("vault-copy-made.json")), Some(Ok(VaultMessage::Vaulted { .. }))));
        assert!(matches!(
            message(&load("vault-restore-requested.json")),
            Some(Ok(VaultMessage::RestoreRequested { .. }))
        ));
    }

    #[test]
    fn the_newest_copy_per_database_is_the_vault_s_restore_point() {
        let s = settings();
        let copies = vec![made(&share(1), &s, 2, None), made(&share(5), &s, 6, None)];
        let newest = newest_copies(&copies, &s);
        assert_eq!(newest[&format!("{SOURCE}/orders")].arn, copies[1].arn);
    }
}
