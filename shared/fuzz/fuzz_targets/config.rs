//! Any text as Lifeboat's YAML config: a config or a clear error, no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_core::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = Config::from_yaml(text) {
        assert!(!e.to_string().is_empty(), "an error says what is wrong");
    }
});
