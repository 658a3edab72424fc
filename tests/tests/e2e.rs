//! Every end-to-end test in one binary: each file links the SDKs, the functions and the test bed,
//! ~90 MB apiece in a debug build, so 28 test binaries were 2.5 GB of disk and 28 links; one is
//! one. Each test still starts its own emulator and beds (`lifeboat_tests`), so they share nothing
//! but the process. Run one file: `cargo test -p lifeboat-tests --test e2e <file>::`.

mod after_failover;
mod after_failover_aurora;
mod approval_browser;
mod approval_requests;
mod chaos;
mod chaos_recovery;
mod cli;
mod config_store;
mod copier;
mod data_checks;
mod drill;
mod duplicates;
mod emulator_limits;
mod failover;
mod failover_strategies;
mod fleet;
mod iam;
mod incident_store;
mod kill_resume;
mod lambda_runtime;
mod notifier;
mod pruner;
mod readiness;
mod recovery_as_aws;
mod region_down;
mod report_replica_rpo;
mod rpo;
mod vault;
