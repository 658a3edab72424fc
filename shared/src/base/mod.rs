//! The ground floor: identifiers, snapshot and event shapes, error kinds, metrics and the few
//! words every floor above writes alike (names of enum values, durations for people). Imports
//! nothing of the crate but its own floor.

pub mod arn;
pub mod error;
pub mod event;
pub mod metrics;
pub mod snapshot;
pub mod text;
