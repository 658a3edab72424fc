//! The decisions: pure functions of (config, what AWS said, now). What to copy, what to keep and
//! delete, which failover steps and what they found, drills, RPO, incidents, approvals, which
//! databases an event touches. Uses the config and the ground floor; never a message or an
//! adapter.

pub mod active;
pub mod approval;
pub mod copy;
pub mod drill;
pub mod failover;
pub mod health;
pub mod incident;
pub mod notify;
pub mod probe;
pub mod prune;
pub mod readiness;
pub mod restore;
pub mod retention;
pub mod rpo;
pub mod validate;
pub mod vault;
