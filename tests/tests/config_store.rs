//! Where a fleet's policy document lives: 1,000 databases (~300 KB) don't fit an SSM parameter
//! (8 KB at most), so they live in an S3 object, which every function reads once and then asks
//! "changed since?" each TTL (a 304 while it hasn't). `lifeboat check` says which store holds it.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use lifeboat_core::aws::{ConfigCache, ConfigSource, CONFIG_TTL};
use lifeboat_core::config::{store_limit, Store};
use lifeboat_tests::{lifeboat, lifeboat_cli, Moto};

const BUCKET: &str = "lifeboat-config-us-east-1";
const KEY: &str = "prod/lifeboat.yaml";

/// A fleet as a platform team writes one: every database copied to a DR region under its key,
/// with retention; production ones with a failover.
fn fleet(n: usize) -> String {
    let mut yaml = String::from("databases:\n");
    for i in 0..n {
        let tier = if i % 10 == 0 { "production" } else { "non-production" };
        yaml.push_str(&format!(
            "  - name: db-{i:04}\n    source: arn:aws:rds:us-east-1:123456789012:db:db-{i:04}\n    tier: {tier}\n    \
             rpo: 1h\n    rto: 4h\n    copy_to:\n      - region: us-west-2\n        \
             kms_key: arn:aws:kms:us-west-2:123456789012:key/1f2e3d4c-0000-4000-8000-{i:012}\n    \
             retention:\n      source: {{ daily: 7, weekly: 4, min_keep: 3 }}\n      \
             copies: {{ daily: 7, weekly: 4, monthly: 3, min_keep: 2 }}\n"
        ));
    }
    yaml
}

async fn put_object(s3: &aws_sdk_s3::Client, body: &str) {
    s3.put_object().bucket(BUCKET).key(KEY).body(ByteStream::from(body.as_bytes().to_vec())).send().await.unwrap();
}

/// One request the SDK sent and what the emulator answered.
#[derive(Debug, Clone, PartialEq)]
struct Exchange {
    request: String,
    if_none_match: bool,
    status: u16,
}

/// A loopback relay between the SDK and the emulator that notes every exchange: the emulator's
/// call counts (`fault_counts`) name only the JSON and query protocols and Route 53, not S3, and
/// a 304 is a status, which no count shows.
#[derive(Clone, Default)]
struct Wire(Arc<Mutex<Vec<Exchange>>>);

impl Wire {
    /// The relay's endpoint, in front of `moto`.
    fn start(moto: &Moto) -> (Wire, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let (wire, upstream) = (Wire::default(), moto.port);
        let serving = wire.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let w = serving.clone();
                std::thread::spawn(move || w.relay(client, upstream));
            }
        });
        (wire, endpoint)
    }

    /// Each request of the client's connection over a connection of its own to the emulator.
    fn relay(&self, client: TcpStream, upstream: u16) {
        let mut from_client = BufReader::new(client.try_clone().unwrap());
        let mut to_client = client;
        while let Some(request) = head(&mut from_client) {
            let asked = String::from_utf8_lossy(&request).into_owned();
            let sent = body(&mut from_client, &asked);
            let mut up = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
            up.write_all(&request).unwrap();
            up.write_all(&sent).unwrap();
            let mut from_up = BufReader::new(up);
            let response = head(&mut from_up).expect("the emulator answered");
            let said = String::from_utf8_lossy(&response).into_owned();
            let status = said.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            // "A 304 response cannot contain a message-body" (RFC 7232 §4.1).
            let payload = if status == 304 { Vec::new() } else { body(&mut from_up, &said) };
            self.0.lock().unwrap().push(Exchange {
                request: asked.lines().next().unwrap_or_default().to_owned(),
                if_none_match: header(&asked, "if-none-match").is_some(),
                status,
            });
            if to_client.write_all(&response).and_then(|()| to_client.write_all(&payload)).is_err() {
                return;
            }
        }
    }

    fn seen(&self) -> Vec<Exchange> {
        self.0.lock().unwrap().clone()
    }
}

/// A message's start line and headers, through the blank line; None at the end of the stream.
fn head(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let start = head.len();
        if r.read_until(b'\n', &mut head).ok()? == 0 {
            return None;
        }
        if head[start..] == *b"\r\n" {
            return Some(head);
        }
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// A message's body as framed on the wire: Content-Length bytes, chunks through the last, or
/// (a response with neither) up to the end of the connection.
fn body(r: &mut impl BufRead, head: &str) -> Vec<u8> {
    if let Some(n) = header(head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut b = vec![0; n];
        r.read_exact(&mut b).unwrap();
        return b;
    }
    let mut b = Vec::new();
    if header(head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        loop {
            let start = b.len();
            r.read_until(b'\n', &mut b).unwrap();
            let size = usize::from_str_radix(String::from_utf8_lossy(&b[start..]).trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            r.read_exact(&mut chunk).unwrap();
            b.extend(chunk);
            if size == 0 {
                return b;
            }
        }
    }
    if !head.starts_with("HTTP/") {
        return b;
    }
    r.read_to_end(&mut b).unwrap();
    b
}

/// A fleet's document in S3 is read whole once; after the TTL each read is a conditional GET that
/// S3 answers 304 while the object is unchanged, and the config already parsed is kept (the same
/// `Arc`, not a new parse). An edit is read on the next look; a broken edit fails the read, naming
/// the field, rather than keeping the old document.
#[tokio::test]
async fn a_fleet_in_s3_is_read_once_then_costs_a_304_until_it_changes() {
    let moto = Moto::start();
    let s3 = aws_sdk_s3::Client::new(&moto.sdk("us-east-1").await);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    let yaml = fleet(1000);
    assert!((250_000..400_000).contains(&yaml.len()), "{} bytes", yaml.len());
    assert!(store_limit(yaml.len(), Store::SsmAdvanced).is_err());
    put_object(&s3, &yaml).await;

    let (wire, endpoint) = Wire::start(&moto);
    let sdk = moto.sdk("us-east-1").await.to_builder().endpoint_url(endpoint).build();
    let object = || ConfigSource::Object { bucket: BUCKET.into(), key: KEY.into() };
    let get = format!("GET /{BUCKET}/{KEY}");

    // Within its TTL a function reads nothing.
    let cached = ConfigCache::new(object(), &sdk, CONFIG_TTL);
    assert_eq!(cached.get_all().await.unwrap().databases.len(), 1000);
    assert_eq!(cached.get_all().await.unwrap().databases.len(), 1000);
    assert_eq!(wire.seen().len(), 1, "{:?}", wire.seen());

    // A TTL of zero: every look is past it.
    let cache = ConfigCache::new(object(), &sdk, Duration::ZERO);
    let first = cache.get_all().await.unwrap();
    let second = cache.get_all().await.unwrap();
    assert!(Arc::ptr_eq(&first, &second), "an unchanged document is not parsed again");
    let seen = wire.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(seen.iter().all(|e| e.request.starts_with(&get)), "{seen:?}");
    assert_eq!((seen[1].if_none_match, seen[1].status), (false, 200), "the first read is whole: {seen:?}");
    assert_eq!((seen[2].if_none_match, seen[2].status), (true, 304), "the next is conditional: {seen:?}");

    put_object(&s3, &yaml.replace("db-0999\n    source", "db-0999-renamed\n    source")).await;
    let third = cache.get_all().await.unwrap();
    assert!(third.database_named("db-0999-renamed").is_some() && third.database_named("db-0999").is_none());
    let seen = wire.seen();
    assert_eq!((seen.len(), seen[3].if_none_match, seen[3].status), (4, true, 200), "{seen:?}");

    put_object(&s3, &yaml.replacen("rpo: 1h", "rpo: soon", 1)).await;
    let broken = cache.get_all().await.unwrap_err();
    assert_eq!(broken.error_type(), "NonRetryable");
    assert!(broken.to_string().contains("databases[0].rpo") && broken.to_string().contains("soon"), "{broken}");
    // Still broken on the next look: the old document is never fallen back to.
    assert!(cache.get_all().await.is_err());
}

/// The object the stack names is where the functions and `lifeboat` read: with only
/// LIFEBOAT_CONFIG_OBJECT (no parameter exists) `plan` reads the fleet and finds no such database.
#[tokio::test]
async fn lifeboat_reads_the_config_object_before_the_parameter() {
    let moto = Moto::start();
    let s3 = aws_sdk_s3::Client::new(&moto.sdk("us-east-1").await);
    s3.create_bucket().bucket(BUCKET).send().await.unwrap();
    put_object(&s3, &fleet(3)).await;
    let url = format!("s3://{BUCKET}/{KEY}");
    let env = [
        ("LIFEBOAT_INCIDENTS_TABLE", "lifeboat-incidents"),
        ("LIFEBOAT_OPERATOR_URL", "http://127.0.0.1:9/"),
        ("LIFEBOAT_RECOVERS", "all"),
        ("LIFEBOAT_CONFIG_OBJECT", url.as_str()),
    ];
    let ran = lifeboat(&moto, &env, &["plan", "db-9999"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stderr.contains("no database named `db-9999`"), "{ran:?}");
    let mut bad = env;
    bad[3].1 = "lifeboat-config/lifeboat.yaml";
    let ran = lifeboat(&moto, &bad, &["plan", "db-0001"]);
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stderr.contains("expected s3://bucket/key"), "{ran:?}");
}

/// Every role that reads the config parameter may read the config object, when the stack names
/// one: only that object, with s3:GetObject alone.
#[test]
fn every_role_that_reads_the_config_may_read_its_object_and_nothing_else() {
    use serde_yaml_ng::Value;
    let text = std::fs::read_to_string(lifeboat_tests::repo_root().join("template.yaml")).unwrap();
    let template: Value = serde_yaml_ng::from_str(&text).unwrap();
    let yaml = |v: &Value| serde_yaml_ng::to_string(v).unwrap();
    let is_ref = |v: &Value, name: &str| matches!(v, Value::Tagged(t) if t.tag == "Ref" && t.value == name);
    // `!If [HasConfigObject, !Ref ConfigObjectPolicy, !Ref AWS::NoValue]`
    let attaches = |p: &Value| {
        matches!(p, Value::Tagged(t) if t.tag == "If"
            && t.value.get(0).is_some_and(|c| c == "HasConfigObject")
            && t.value.get(1).is_some_and(|r| is_ref(r, "ConfigObjectPolicy"))
            && t.value.get(2).is_some_and(|r| is_ref(r, "AWS::NoValue")))
    };
    let mut readers = 0;
    for (id, r) in template["Resources"].as_mapping().unwrap() {
        let policies = &r["Properties"]["Policies"];
        if yaml(policies).contains("Sid: ReadConfig\n") {
            readers += 1;
            let listed = policies.as_sequence().into_iter().flatten();
            assert!(listed.filter(|p| attaches(p)).count() == 1, "{id:?} reads the parameter but not the object");
        }
    }
    assert!(readers >= 9, "{readers}");
    let policy = &template["Resources"]["ConfigObjectPolicy"];
    assert_eq!(policy["Condition"], "HasConfigObject");
    let statements = policy["Properties"]["PolicyDocument"]["Statement"].as_sequence().unwrap();
    assert_eq!(statements.len(), 1);
    assert_eq!(statements[0]["Action"], "s3:GetObject");
    let resource = yaml(&statements[0]["Resource"]);
    assert!(
        resource.contains("arn:${AWS::Partition}:s3:::${Object}") && resource.contains("ConfigObject"),
        "{resource}"
    );
    let people = yaml(&template["Resources"]["OperatorReadOnlyPolicy"]);
    assert!(people.contains("HasConfigObject") && people.contains("Sid: ReadConfigObject"), "{people}");
}

/// What AWS refuses, the emulator refuses and `lifeboat check` says before anyone tries: 1,000
/// databases are no SSM parameter, in either tier; as an S3 object they are fine.
#[tokio::test]
async fn a_fleet_is_refused_by_ssm_and_check_says_why_and_where_it_fits() {
    let moto = Moto::start();
    let yaml = fleet(1000);
    let ssm = aws_sdk_ssm::Client::new(&moto.sdk("us-east-1").await);
    for tier in [aws_sdk_ssm::types::ParameterTier::Standard, aws_sdk_ssm::types::ParameterTier::Advanced] {
        let put = ssm
            .put_parameter()
            .name("/lifeboat/config")
            .value(&yaml)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .tier(tier.clone())
            .overwrite(true)
            .send()
            .await;
        let refused = put.expect_err(&format!("SSM took {} bytes as {tier:?}", yaml.len()));
        assert_eq!(lifeboat_core::aws::error_code(&refused), Some("ValidationException"), "{refused:?}");
    }

    let dir = std::env::temp_dir().join(format!("lifeboat-config-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("fleet.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let path = file.to_str().unwrap();
    let check = |env: &[(&str, &str)]| {
        let out = std::process::Command::new(lifeboat_cli())
            .args(["check", path])
            .env_remove("LIFEBOAT_CONFIG_OBJECT")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, said) = check(&[]);
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(
        said.trim(),
        format!(
            "{path}: the document is {} bytes; an SSM parameter holds 8,192 (Advanced): store it in S3 \
             (LIFEBOAT_CONFIG_OBJECT / the stack's ConfigObject)",
            lifeboat_core::config::thousands(yaml.len())
        )
    );
    let (code, said) = check(&[("LIFEBOAT_CONFIG_OBJECT", "s3://lifeboat-config/lifeboat.yaml")]);
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("ok, 1000 databases") && said.contains("fits an S3 object"), "{said}");
}
