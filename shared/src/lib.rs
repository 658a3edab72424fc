//! Lifeboat's domain: what to copy, what to keep, how to classify events, how to recover and what
//! to tell people. Everything but `aws` is pure and testable without AWS; the functions adapt it.
//!
//! Floors, each a folder; a module uses only its own floor and the ones below it
//! (`tests/floors.rs` fails on an upward import or a cycle):
//!
//! | floor | folder | what |
//! |---|---|---|
//! | 4 | `aws/` | one adapter per AWS service, each behind a cargo feature; no decisions |
//! | 3 | `message/` | everything a person reads: subjects, text, JSON facts, chat cards, pages |
//! | 2 | `decide/` | the decisions: copy, retention, prune, failover and its steps, restore, drill, rpo, incident, approval, health, notify |
//! | 1 | `config/` | the document users write: its types (failover and drill sections as plain data), parsing, validation |
//! | 0 | `base/` | identifiers, snapshot and event shapes, error kinds, metrics, shared wording |
//!
//! Above them sit `functions/*` (and the tests): adapters from events, Function URLs and
//! terminals to these. The modules keep their short paths (`lifeboat_core::failover`, not
//! `lifeboat_core::decide::failover`): the floors are where the files live, not how callers
//! name them.

pub mod base;
pub mod config;
pub mod decide;
pub mod message;

#[cfg(feature = "lambda")]
pub mod aws;

pub use base::{arn, error, event, metrics, snapshot, text};
pub use decide::{
    active, approval, copy, drill, failover, health, incident, notify, probe, prune, readiness, restore, retention,
    rpo, vault,
};
