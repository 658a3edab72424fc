//! Any bytes as a Lambda Function URL request to the approval handler: read or refused (the pages
//! the handler maps refusals to), and never a genuine link without the key. The handler's AWS part
//! is covered by tests/tests/approval_requests.rs against the emulator.
#![no_main]

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;
use lifeboat_core::approval::Request;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<LambdaFunctionUrlRequest>(data) else { return };
    let read = Request::read(
        req.request_context.http.method.as_deref(),
        req.raw_query_string.as_deref(),
        req.body.as_deref(),
        req.is_base64_encoded,
    );
    if let Ok(r) = read {
        let now = Utc.with_ymd_and_hms(2026, 11, 26, 3, 0, 0).unwrap();
        assert!(r.link.verify(b"0123456789abcdef0123456789abcdef", now).is_err());
    }
});
