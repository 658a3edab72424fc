//! vault-keeper: the vault account's side of Lifeboat's vault (see `lifeboat_core::vault`). One
//! binary deployed as two functions, each with its own role: the copier (copies what sources
//! share, announces each copy back, shares a copy with a recovery account that asks, reports the
//! vault's RPO) may not delete; the pruner may delete only past the stack's lock. Every setting is
//! the vault stack's own: nothing a source account says can change a key, a lock or a retention.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lifeboat_core::arn::{RdsArn, RdsResource};
use lifeboat_core::aws::events::Bus;
use lifeboat_core::aws::organizations::Organizations;
use lifeboat_core::aws::rds::{CopyOutcome, Kinds, Rds};
use lifeboat_core::aws::{optional_env, required_env, SdkConfig};
use lifeboat_core::copy::CopyRequest;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::event::{self, Trigger};
use lifeboat_core::metrics;
use lifeboat_core::vault::{self, Keep, NotVaulted, VaultMessage, VaultSettings};
use serde::Serialize;
use serde_json::Value;
use tracing::info;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Copier,
    Pruner,
}

pub struct Deps {
    pub settings: VaultSettings,
    pub role: Role,
    /// The pruner only reports what it would delete (stack parameter, or `"dry_run": true`).
    pub dry_run: bool,
    pub rds: Rds,
    pub bus: Bus,
    pub emit_metrics: bool,
    /// The guardrail SCP's id (the vault stack's GuardrailPolicyId), checked every copier sweep.
    pub guardrail_policy: Option<String>,
    pub organizations: Organizations,
}

fn days(name: &str, text: &str) -> Result<Duration, LifeboatError> {
    text.parse::<u64>()
        .ok()
        .filter(|d| *d > 0)
        .map(|d| Duration::from_secs(d * 86_400))
        .ok_or_else(|| LifeboatError::Rejected(format!("{name} must be a whole number of days above 0, not `{text}`")))
}

fn accounts(name: &str) -> Result<BTreeSet<String>, LifeboatError> {
    let list: BTreeSet<String> = optional_env(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    match list.iter().find(|a| !lifeboat_core::arn::is_account_id(a)) {
        Some(bad) => Err(LifeboatError::Rejected(format!("{name}: `{bad}` is not a 12-digit account id"))),
        None => Ok(list),
    }
}

impl Deps {
    /// As infra/vault.yaml configures it; a broken setting fails the init.
    pub fn from_env(sdk: &SdkConfig) -> Result<Self, LifeboatError> {
        let role = match required_env("LIFEBOAT_VAULT_ROLE")?.as_str() {
            "copier" => Role::Copier,
            "pruner" => Role::Pruner,
            other => {
                return Err(LifeboatError::Rejected(format!("LIFEBOAT_VAULT_ROLE is copier or pruner, not `{other}`")))
            }
        };
        let minimum_retention =
            days("LIFEBOAT_VAULT_MIN_RETENTION_DAYS", &required_env("LIFEBOAT_VAULT_MIN_RETENTION_DAYS")?)?;
        let default_retention = days("LIFEBOAT_VAULT_RETENTION_DAYS", &required_env("LIFEBOAT_VAULT_RETENTION_DAYS")?)?;
        let minimum_kept = optional_env("LIFEBOAT_VAULT_MIN_KEPT").map_or(Ok(1), |k| {
            k.parse::<usize>()
                .ok()
                .filter(|k| *k >= 1)
                .ok_or_else(|| LifeboatError::Rejected(format!("LIFEBOAT_VAULT_MIN_KEPT must be 1 or more, not `{k}`")))
        })?;
        let settings = VaultSettings {
            account: required_env("LIFEBOAT_VAULT_ACCOUNT")?,
            region: required_env("AWS_REGION")?,
            kms_key: required_env("LIFEBOAT_VAULT_KMS_KEY")?,
            minimum_retention,
            default_retention: default_retention.max(minimum_retention),
            minimum_kept,
            sources: accounts("LIFEBOAT_VAULT_SOURCE_ACCOUNTS")?,
            restore_accounts: accounts("LIFEBOAT_VAULT_RESTORE_ACCOUNTS")?,
        };
        let dry_run = optional_env("LIFEBOAT_VAULT_DRY_RUN").is_some_and(|v| v == "true");
        let mut deps = Deps::new(settings, role, dry_run, sdk);
        deps.guardrail_policy = optional_env("LIFEBOAT_VAULT_GUARDRAIL_POLICY").filter(|p| !p.is_empty());
        Ok(deps)
    }

    pub fn new(settings: VaultSettings, role: Role, dry_run: bool, sdk: &SdkConfig) -> Self {
        Deps {
            settings,
            role,
            dry_run,
            rds: Rds::new(sdk),
            bus: Bus::new(sdk),
            emit_metrics: true,
            guardrail_policy: None,
            organizations: Organizations::new(sdk),
        }
    }
}

/// The newest vault copy of one database.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Newest {
    pub copy: String,
    pub restore_point: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
}

#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Report {
    pub role: Option<Role>,
    pub trigger: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
    pub copied: Vec<String>,
    pub already_copied: Vec<String>,
    /// Copies announced to their source (which then stops sharing and deletes its transit copy).
    pub announced: Vec<String>,
    pub refused: Vec<String>,
    pub deleted: Vec<String>,
    pub would_delete: Vec<String>,
    pub kept: usize,
    /// Vault copies shared with a recovery account that asked.
    pub shared_for_restore: Vec<String>,
    /// The vault's RPO: per database (`<account>/<identifier>`), its newest copy.
    pub newest: BTreeMap<String, Newest>,
    /// With the RPO, whether the lock AWS enforces (the guardrail SCP) binds this account:
    /// `in place: ...`, `NOT in place: ...` or `not known: ...` (`vault::guardrail`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guardrail: Option<String>,
    pub failed: Vec<String>,
    pub api_calls: usize,
}

pub async fn handle(deps: &Deps, payload: Value, wall_clock: DateTime<Utc>) -> Result<Report, LifeboatError> {
    let calls_before = deps.rds.calls();
    let mut report = Report { role: Some(deps.role), ..Report::default() };
    let result = match vault::message(&payload) {
        Some(Err(e)) => Err(e.into()),
        Some(Ok(message)) => on_message(deps, message, &mut report).await,
        None => match event::classify(&payload)? {
            Trigger::Sweep { at } => {
                report.trigger = "schedule".into();
                let now = event::as_of(at, wall_clock);
                match deps.role {
                    Role::Copier => sweep(deps, now, &mut report).await,
                    Role::Pruner => {
                        let dry_run = deps.dry_run || payload["dry_run"].as_bool() == Some(true);
                        prune(deps, now, dry_run, &mut report).await
                    }
                }
            }
            Trigger::SnapshotCreated { snapshot, .. } => {
                report.trigger = "rds".into();
                report.ignored =
                    Some(format!("{snapshot}: the vault copies what sources share, not its own snapshots"));
                Ok(())
            }
            Trigger::Ignored { reason } => {
                report.trigger = "ignored".into();
                report.ignored = Some(reason);
                Ok(())
            }
        },
    };
    report.api_calls = deps.rds.calls() - calls_before;
    info!(report = %serde_json::to_string(&report).unwrap_or_default(), "vault-keeper run");
    if deps.emit_metrics {
        for line in rpo_metrics(&report, wall_clock) {
            println!("{line}");
        }
    }
    result.map(|()| report)
}

/// `VaultCopyAgeSeconds` by database, and their maximum (what the vault stack's alarm watches).
pub fn rpo_metrics(report: &Report, at: DateTime<Utc>) -> Vec<String> {
    report
        .newest
        .iter()
        .filter_map(|(db, n)| {
            // By database, and by function alone: the vault stack's alarm watches the maximum.
            Some(metrics::emf(
                at,
                &[("Function", "vault-keeper"), ("Database", db)],
                &[&["Function", "Database"], &["Function"]],
                &[("VaultCopyAgeSeconds", n.age_seconds?, "Seconds")],
            ))
        })
        .collect()
}

const BOTH: Kinds = Kinds { instances: true, clusters: true };

async fn on_message(deps: &Deps, message: VaultMessage, report: &mut Report) -> Result<(), LifeboatError> {
    match (deps.role, message) {
        (Role::Copier, VaultMessage::Shared { from, snapshot, database, retention }) => {
            report.trigger = format!("shared by {from}");
            let kinds = Kinds {
                instances: snapshot.resource == RdsResource::InstanceSnapshot,
                clusters: snapshot.resource == RdsResource::ClusterSnapshot,
            };
            let shared = deps.rds.list_shared(&deps.settings.region, kinds).await?;
            let Some(share) = shared.iter().find(|s| s.arn == snapshot) else {
                // Not (or no longer) shared with this account: nothing to copy; a source that
                // shares it later announces it again, and the sweep looks too.
                report.refused.push(format!("{snapshot} is not shared with this account"));
                return Ok(());
            };
            match vault::vault_copy(share, &deps.settings, retention, database.as_deref()) {
                Ok(req) => copy_and_announce(deps, &req, report).await,
                Err(NotVaulted::NotAvailable(why)) => Err(LifeboatError::Transient(why)),
                Err(NotVaulted::NotFromASource(why) | NotVaulted::NotATransit(why)) => {
                    Err(LifeboatError::Rejected(why))
                }
            }
        }
        (Role::Copier, VaultMessage::RestoreRequested { from, database, not_after }) => {
            report.trigger = format!("restore requested by {from}");
            if !deps.settings.restore_accounts.contains(&from) {
                return Err(LifeboatError::Rejected(format!(
                    "account {from} may not restore from this vault (the vault stack's RestoreAccountIds)"
                )));
            }
            let mut own = deps.rds.list(&deps.settings.region, BOTH).await?;
            // A person chose a time before an attack: only copies taken at or before it.
            own.retain(|s| not_after.is_none_or(|t| s.restore_point().is_some_and(|p| p <= t)));
            let newest = vault::newest_copies(&own, &deps.settings);
            let Some(copy) = newest.get(&database) else {
                let when = not_after.map(|t| format!(" taken at or before {t}")).unwrap_or_default();
                return Err(LifeboatError::Rejected(format!("the vault holds no available copy of {database}{when}")));
            };
            deps.rds.share(&copy.arn, &from, true).await?;
            report.shared_for_restore.push(format!("{} -> account {from}", copy.arn));
            Ok(())
        }
        (role, message) => {
            report.trigger = "vault".into();
            report.ignored = Some(format!("{message:?} is not the vault {role:?}'s business"));
            Ok(())
        }
    }
}

/// Start the copy (a replay finds it there) and, once RDS has it available, tell the source.
async fn copy_and_announce(deps: &Deps, req: &CopyRequest, report: &mut Report) -> Result<(), LifeboatError> {
    let label = format!("{}:{}", req.target.region, req.target.id);
    match deps.rds.copy(req).await? {
        CopyOutcome::Started => report.copied.push(label),
        CopyOutcome::AlreadyThere => report.already_copied.push(label),
        CopyOutcome::QuotaFull => {
            return Err(LifeboatError::Transient(format!("{label}: snapshot quota full; the sweep copies it later")))
        }
    }
    if deps.rds.describe(&req.target).await?.is_some_and(|c| c.is_available()) {
        announce(deps, &req.source, &req.target, report).await?;
    }
    Ok(())
}

/// Tell the source the vault holds `copy` of its share.
async fn announce(deps: &Deps, shared: &RdsArn, copy: &RdsArn, report: &mut Report) -> Result<(), LifeboatError> {
    let detail = serde_json::json!({ "shared": shared.to_string(), "copy": copy.to_string() });
    deps.bus.put(vault::VAULT_EVENTS, vault::VAULTED, &detail).await?;
    report.announced.push(format!("{} -> {shared}", copy.id));
    Ok(())
}

async fn sweep(deps: &Deps, now: DateTime<Utc>, report: &mut Report) -> Result<(), LifeboatError> {
    let region = &deps.settings.region;
    let shared = deps.rds.list_shared(region, BOTH).await?;
    let own = deps.rds.list(region, BOTH).await?;
    let plan = vault::plan_vault_sweep(&shared, &own, &deps.settings);
    report.refused = plan.refused;
    report.failed =
        plan.failed.iter().map(|a| format!("{}: RDS failed this copy; the pruner clears it", a.id)).collect();
    let mut errors = Vec::new();
    for req in &plan.copies {
        if let Err(e) = copy_and_announce(deps, req, report).await {
            report.failed.push(format!("{}: {e}", req.target.id));
            errors.push(e);
        }
    }
    for (share, copy) in &plan.announce {
        if let Err(e) = announce(deps, share, copy, report).await {
            errors.push(e);
        }
    }
    // The RPO from a listing taken before this run's copies: a copy just started is not a
    // restore point until RDS has it available.
    for (db, copy) in vault::newest_copies(&own, &deps.settings) {
        let restore_point = copy.restore_point();
        report.newest.insert(
            db,
            Newest {
                copy: copy.arn.to_string(),
                restore_point,
                age_seconds: restore_point.map(|t| (now - t).num_seconds().max(0)),
            },
        );
    }
    report.guardrail = Some(guardrail(deps).await);
    LifeboatError::all(errors)
}

/// Whether the guardrail binds this account. Never fails the sweep: a check that can't be made is
/// reported as `not known`, with Organizations' answer.
async fn guardrail(deps: &Deps) -> String {
    let account = &deps.settings.account;
    let facts = match deps.guardrail_policy.as_deref() {
        Some(id) => deps.organizations.guardrail_facts(account, id).await.map_err(|e| e.to_string()),
        None => Err(String::new()),
    };
    vault::guardrail(deps.guardrail_policy.as_deref(), account, facts)
}

async fn prune(deps: &Deps, now: DateTime<Utc>, dry_run: bool, report: &mut Report) -> Result<(), LifeboatError> {
    let own = deps.rds.list(&deps.settings.region, BOTH).await?;
    let mut errors = Vec::new();
    for (copy, decision) in vault::plan_vault_prune(&own, &deps.settings, now) {
        match decision {
            Keep::Keep(_) => report.kept += 1,
            Keep::Delete(why) if dry_run => report.would_delete.push(format!("{}: {why}", copy.arn.id)),
            Keep::Delete(why) => match deps.rds.delete(&copy.arn).await {
                Ok(_) => report.deleted.push(format!("{}: {why}", copy.arn.id)),
                Err(e) => {
                    report.failed.push(format!("{}: {e}", copy.arn.id));
                    errors.push(e);
                }
            },
        }
    }
    LifeboatError::all(errors)
}
