//! Lifeboat's domain: what to copy, what to keep, how to classify events and what to tell people.
//! Everything here is pure and testable without AWS; the functions adapt it to AWS.

pub mod approval;
pub mod arn;
pub mod config;
pub mod copy;
pub mod drill;
pub mod error;
pub mod event;
pub mod failover;
pub mod health;
pub mod incident;
pub mod message;
pub mod metrics;
pub mod notify;
pub mod prune;
pub mod restore;
pub mod retention;
pub mod rpo;
pub mod snapshot;

#[cfg(feature = "lambda")]
pub mod aws;
