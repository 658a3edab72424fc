//! The last readiness verdict per database, for the approval request ("ready: yes / 2 warnings,
//! checked 12 minutes ago") and the CLI: rpo-monitor writes a database's verdict when it changes,
//! and after each whole run when it checked them all; preflight reads both.
//!
//! The readiness run reads what it remembers of every database at once (`remembered`), and
//! writes back only what changed (`set_ready`, `put_verdicts`): a fleet's steady run costs a
//! BatchGetItem per 100 keys and no write at all.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::claims::state_of;
use super::drills::drill_of;
use super::{s, ts, IncidentStore};
use crate::aws::sdk_error;
use crate::drill::DrillResult;
use crate::error::LifeboatError;

/// When the last whole run checked every database this stack checks: a verdict not rewritten
/// since is still that run's.
const RUN_KEY: &str = "readiness-run";

fn verdict_key(database: &str) -> String {
    format!("readiness#{database}")
}

/// The remembered state of `ready#<database>`: on when it was last told not ready.
fn ready_key(database: &str) -> String {
    format!("ready#{database}")
}

/// What the readiness run remembers of one database.
#[derive(Debug, Default)]
pub struct Remembered {
    /// Not ready when last told, and since when; None: never told (ready is the quiet default).
    pub not_ready: Option<(bool, DateTime<Utc>)>,
    /// The verdict kept for preflight.
    pub summary: Option<String>,
    /// The last drill, asked for databases with a drill section; Err: its item is unreadable.
    pub last_drill: Option<Result<DrillResult, LifeboatError>>,
}

fn at_of(item: &HashMap<String, aws_sdk_dynamodb::types::AttributeValue>) -> Option<DateTime<Utc>> {
    item.get("at")
        .and_then(|v| v.as_s().ok())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

impl IncidentStore {
    /// What is remembered of each of `databases` (name, has a drill section), in as few
    /// BatchGetItem calls as 100 keys a call allow: up to three keys a database.
    pub async fn remembered(&self, databases: &[(&str, bool)]) -> Result<BTreeMap<String, Remembered>, LifeboatError> {
        let keys = databases.iter().flat_map(|(db, drilled)| {
            let drill = drilled.then(|| format!("drill#{db}"));
            [Some(format!("state#{}", ready_key(db))), Some(verdict_key(db)), drill].into_iter().flatten()
        });
        let mut items = self.batch_get(keys).await?;
        Ok(databases
            .iter()
            .map(|(db, _)| {
                let remembered = Remembered {
                    not_ready: items.get(&format!("state#{}", ready_key(db))).map(state_of),
                    summary: items
                        .get(&verdict_key(db))
                        .and_then(|i| i.get("summary"))
                        .and_then(|v| v.as_s().ok())
                        .cloned(),
                    last_drill: items.remove(&format!("drill#{db}")).and_then(|i| drill_of(db, &i)),
                };
                ((*db).to_owned(), remembered)
            })
            .collect())
    }

    /// Each (database, not ready) told now: what `remembered` says next time, since `now`.
    pub async fn set_ready(&self, changed: &[(&str, bool)], now: DateTime<Utc>) -> Result<(), LifeboatError> {
        let states: Vec<(String, bool, DateTime<Utc>)> =
            changed.iter().map(|(db, not_ready)| (ready_key(db), *not_ready, now)).collect();
        self.set_states(&states).await
    }

    /// Each (database, summary) whose verdict changed, as of `at`; and, when `whole_run`, that
    /// every database the run checked was checked at `at` (written last: a run that failed before
    /// it never claims so).
    pub async fn put_verdicts(
        &self,
        changed: &[(&str, &str)],
        at: DateTime<Utc>,
        whole_run: bool,
    ) -> Result<(), LifeboatError> {
        let items = changed
            .iter()
            .map(|(db, summary)| {
                HashMap::from([
                    ("pk".to_owned(), s(verdict_key(db))),
                    ("summary".to_owned(), s(*summary)),
                    ("at".to_owned(), ts(at)),
                ])
            })
            .collect();
        self.batch_put(items).await?;
        if whole_run {
            self.batch_put(vec![HashMap::from([("pk".to_owned(), s(RUN_KEY)), ("at".to_owned(), ts(at))])]).await?;
        }
        Ok(())
    }

    /// The last summary and when it was last checked: its own time, or the last whole run's if
    /// later (a run rewrites only the verdicts that changed). Two GetItems, not a batch: the
    /// functions and people that read this hold GetItem on the table, not BatchGetItem.
    pub async fn readiness(&self, database: &str) -> Result<Option<(String, DateTime<Utc>)>, LifeboatError> {
        let get = |pk: String| async move {
            self.client
                .get_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .send()
                .await
                .map(|out| out.item)
                .map_err(|e| sdk_error("dynamodb:GetItem", e))
        };
        let Some(item) = get(verdict_key(database)).await? else { return Ok(None) };
        let summary = item.get("summary").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let own = at_of(&item).unwrap_or_default();
        let run = get(RUN_KEY.to_owned()).await?.as_ref().and_then(at_of).unwrap_or_default();
        Ok(Some((summary, own.max(run))))
    }
}
