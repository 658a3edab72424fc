//! Any text as an approval link's query: parsed or refused, and never verified without the key.
#![no_main]

use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use lifeboat_core::approval::Link;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(link) = Link::parse(&text) {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap();
        assert!(link.verify(b"0123456789abcdef0123456789abcdef", now).is_err(), "forged: {link:?}");
        // What a link says survives its own encoding.
        assert_eq!(Link::parse(&link.query()).as_ref(), Ok(&link));
    }
});
