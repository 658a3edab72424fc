//! The approval handler's Function URL request handling, under any request: random methods,
//! query strings and bodies (raw or base64, valid or not), genuine links for an incident that
//! does not exist, for one not awaiting approval, expired ones, and genuine links with a byte
//! changed. Each gets a page with a 4xx status — never a panic, never a 5xx — and the emulator
//! sees no write at all: only the key's GetParameter and the incident's GetItem.

use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use lifeboat_core::approval::{task_ref, Decision, Link};
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::config::Config;
use lifeboat_core::incident::{Entry, Incident, Kind};
use lifeboat_tests::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as Cases, TestRunner};
use serde_json::Value;

const KEY: &str = "local-approval-key-0123456789abcdef-0123456789";

fn request(method: &str, query: &str, body: Option<(String, bool)>) -> LambdaFunctionUrlRequest {
    let mut v = event("approval-url-get.json", None);
    v["requestContext"]["http"]["method"] = method.into();
    v["rawQueryString"] = query.into();
    match body {
        Some((b, base64)) => {
            v["body"] = b.into();
            v["isBase64Encoded"] = base64.into();
        }
        None => v["body"] = Value::Null,
    }
    serde_json::from_value(v).expect("a Function URL request")
}

/// Genuine link queries: for `incidents`, either decision, live or expired.
fn genuine(incidents: Vec<String>, now: DateTime<Utc>) -> impl Strategy<Value = String> {
    (prop::sample::select(incidents), any::<bool>(), -86_400i64..86_400, "[a-f0-9]{24}").prop_map(
        move |(incident, approve, expires_in, task)| {
            let decision = if approve { Decision::Approve } else { Decision::Reject };
            Link::new(KEY.as_bytes(), &incident, &task, decision, now + Duration::seconds(expires_in)).query()
        },
    )
}

fn any_query(incidents: Vec<String>, now: DateTime<Utc>) -> impl Strategy<Value = String> {
    prop_oneof![
        ".*",
        "([a-z]{1,2}=[^&]{0,12}&?){0,7}",
        genuine(incidents.clone(), now),
        // A genuine link with one byte changed, or one more field.
        (genuine(incidents.clone(), now), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(q, at, b)| {
            let mut bytes = q.into_bytes();
            let i = at.index(bytes.len());
            bytes[i] = b;
            String::from_utf8_lossy(&bytes).into_owned()
        }),
        (genuine(incidents, now), "[a-z]{1,8}=[^&]{0,40}").prop_map(|(q, extra)| format!("{q}&{extra}")),
    ]
}

/// The config the handler reads only to decide, which no request here gets to: a file that isn't
/// there, so reading it would fail the test.
fn unread_config(sdk: &aws_config::SdkConfig) -> lifeboat_core::aws::ConfigCache {
    let missing = lifeboat_core::aws::ConfigSource::File("/nonexistent/lifeboat.yaml".into());
    lifeboat_core::aws::ConfigCache::new(missing, sdk, std::time::Duration::from_secs(60))
}

#[test]
fn any_request_gets_a_4xx_page_and_writes_nothing() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let moto = Moto::start();
    let now = Utc::now();
    let (table, declared, deps) = rt.block_on(async {
        let table = incidents_table(&moto, "us-east-1").await;
        let sdk = moto.sdk("us-east-1").await;
        approval_key(&moto, "us-east-1", KEY).await;
        // An incident that exists but is not awaiting approval.
        let config = Config::from_yaml(&format!(
            "databases:\n  - name: orders-prod\n    source: arn:aws:rds:us-east-1:{ACCOUNT}:db:orders-prod\n    tier: production\n    rpo: 5m\n    rto: 30m\n"
        ))
        .expect("config");
        let db = config.database_named("orders-prod").expect("database");
        let incident = Incident::declare(db, Kind::Outage, now, "t", "down", "proptest");
        let store = IncidentStore::new(&sdk, &table);
        store.open(&incident, &Entry::new(now, "t", "seen", "seen:proptest")).await.expect("open");
        (table.clone(), incident.id, approval_handler::Deps::new(unread_config(&sdk), &sdk, &table, APPROVAL_KEY_PARAM))
    });
    let before = rt.block_on(table_items(&moto, "us-east-1", &table));
    // Setting faults (none) also zeroes the emulator's call counts: from here, only the requests'.
    moto.post("/_lifeboat/faults", &serde_json::json!({"faults": []}));
    let incidents = vec![declared, "orders-prod-20261125T1942Z-3f2a".to_owned(), task_ref("not an incident")];
    let method = prop_oneof![
        Just("GET".to_owned()),
        Just("POST".to_owned()),
        Just("HEAD".to_owned()),
        Just("post".to_owned()),
        "[A-Z]{0,8}"
    ];
    let body = prop::option::of(prop_oneof![
        (any_query(incidents.clone(), now), any::<bool>())
            .prop_map(|(q, b64)| (format!("{q}&approver=mallory&database=orders-prod"), b64)),
        any_query(incidents.clone(), now).prop_map(|q| (base64::engine::general_purpose::STANDARD.encode(q), true)),
        (".*", any::<bool>()),
    ]);
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(500);
    let mut runner = TestRunner::new(Cases { cases, ..Cases::default() });
    let statuses = std::cell::RefCell::new(std::collections::BTreeMap::new());
    runner
        .run(&(method, any_query(incidents, now), body), |(method, query, body)| {
            let req = request(method.as_str(), &query, body);
            let page = rt.block_on(approval_handler::handle(&deps, req, now));
            *statuses.borrow_mut().entry(page.status_code).or_insert(0) += 1;
            prop_assert!(
                [400, 403, 404, 405, 409, 410].contains(&page.status_code),
                "{method} ?{query}: {} {:?}",
                page.status_code,
                page.body
            );
            prop_assert!(page.body.as_deref().is_some_and(|b| b.contains("</html>")), "a page: {:?}", page.body);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let statuses = statuses.into_inner();
    println!("APPROVAL-REQUESTS {cases} requests, statuses {statuses:?}");
    // Every refusal path was taken, not only the parser's.
    for status in [400, 403, 404, 405, 409, 410] {
        assert!(statuses.contains_key(&status), "no request got {status}: {statuses:?}");
    }
    let calls = moto.fault_counts();
    let ops: Vec<&String> = calls["calls"].as_object().expect("calls").keys().collect();
    assert!(ops.iter().all(|op| ["ssm:GetParameter", "dynamodb:GetItem"].contains(&op.as_str())), "{ops:?}");
    assert_eq!(rt.block_on(table_items(&moto, "us-east-1", &table)), before, "the table is as it was");
}

/// The public URL reads the signing key (an SSM call) only for a link that could be genuine, and
/// its error page tells visitors nothing of AWS (account, role, error text): that goes to the log.
#[tokio::test]
async fn junk_links_cost_no_aws_call_and_error_pages_show_no_aws_text() {
    let moto = Moto::start();
    let now = Utc::now();
    let table = incidents_table(&moto, "us-east-1").await;
    let sdk = moto.sdk("us-east-1").await;
    approval_key(&moto, "us-east-1", KEY).await;
    let deps = approval_handler::Deps::new(unread_config(&sdk), &sdk, &table, APPROVAL_KEY_PARAM);
    moto.post("/_lifeboat/faults", &serde_json::json!({"faults": []}));
    let expired = Link::new(KEY.as_bytes(), "orders-x", "abc", Decision::Approve, now - Duration::minutes(1)).query();
    let live = Link::new(KEY.as_bytes(), "orders-x", "abc", Decision::Approve, now + Duration::minutes(30)).query();
    let short_signature = format!("{}AAAA", &live[..live.rfind("s=").expect("signature") + 2]);
    for (query, status) in [(expired.as_str(), 410), (short_signature.as_str(), 403)] {
        let page = approval_handler::handle(&deps, request("GET", query, None), now).await;
        assert_eq!(page.status_code, status, "{query}: {:?}", page.body);
    }
    let calls = moto.fault_counts();
    assert_eq!(summed(&calls, "calls"), 0, "refused before the key was read: {calls}");

    // AWS refuses: the visitor reads "try again", never what AWS said.
    moto.post(
        "/_lifeboat/faults",
        &serde_json::json!({"faults": [{"service": "dynamodb", "code": "AccessDeniedException", "kinds": ["throttle"]}]}),
    );
    let page = approval_handler::handle(&deps, request("GET", &live, None), now).await;
    let body = page.body.unwrap_or_default();
    assert!(page.status_code >= 500, "{}: {body}", page.status_code);
    for secret in ["AccessDenied", "injected", ACCOUNT, "arn:", "dynamodb"] {
        assert!(!body.contains(secret), "the page shows `{secret}`: {body}");
    }
    assert!(body.contains("Nothing was decided"), "{body}");
}
