//! Any bytes, as JSON, through every event and request classifier: a value or an error, no panic.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use lifeboat_core::config::Config;
use lifeboat_core::{drill, event, failover, notify};
use std::sync::OnceLock;

fn config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG
        .get_or_init(|| Config::from_yaml(include_str!("../../../examples/lifeboat.yaml")).expect("the example config"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap();
    let _ = event::classify(&v);
    let _ = failover::classify(config(), &v, now);
    let _ = notify::parse(&v);
    let _ = drill::parse(&v);
    let _ = failover::steps::parse(&v);
});
