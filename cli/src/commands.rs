//! Each command, through the functions' own code: the trigger opens incidents, failover-steps
//! plans, the approval handler decides, dr-drill reports and drills. Nothing here decides.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use chrono::{DateTime, Utc};
use clap::CommandFactory;
use lifeboat_core::approval::Decision;
use lifeboat_core::aws::incidents::IncidentStore;
use lifeboat_core::aws::{ConfigCache, ConfigSource};
use lifeboat_core::config::{store_limit, thousands, Config, Store};
use lifeboat_core::decide::validate::DataReport;
use lifeboat_core::drill::ReportRow;
use lifeboat_core::error::LifeboatError;
use lifeboat_core::failover::steps::{Execution, POLL_SECONDS};
use lifeboat_core::failover::{self, Start};
use lifeboat_core::incident::{Entry, Incident};
use lifeboat_core::message::{self, pages, timeline_table};
use serde_json::{json, Value};

use crate::args::{Cli, Command, Format, Global, Target};
use crate::operator;
use crate::stack::{self, Names};

#[derive(Debug)]
pub enum CliError {
    /// What the operator asked can't be done as asked: exit 1.
    Problem(String),
    /// AWS refused or could not be reached: exit 3.
    Aws(LifeboatError),
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CliError::Problem(s) => f.write_str(&one_line(s)),
            CliError::Aws(e) => f.write_str(&one_line(&e.to_string())),
        }
    }
}

/// What a person reads: one line they can act on. The SDK's errors carry their whole source
/// chain, the credential provider chain's tried-and-failed list and debug dumps over several
/// lines; the first line names the call, and the cases people meet first say what to do.
pub fn one_line(text: &str) -> String {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or_default();
    let lower = text.to_ascii_lowercase();
    if lower.contains("credential")
        && (lower.contains("no credentials") || lower.contains("not loaded") || lower.contains("provider"))
    {
        return "no AWS credentials found: run `aws sso login` or `aws configure`, pass --profile, or set \
                AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            .to_owned();
    }
    if lower.contains("dispatch failure") || lower.contains("connection refused") || lower.contains("dns error") {
        let call = first.split(": ").next().unwrap_or(first);
        return format!("{call}: AWS did not answer (network, or --region wrong?); nothing was changed");
    }
    // A debug dump after the message says nothing a person can act on.
    let cut = first.find(" (Error {").or_else(|| first.find(": Error {")).unwrap_or(first.len());
    let line = &first[..cut];
    if line.chars().count() > 300 {
        format!("{}…", line.chars().take(300).collect::<String>())
    } else {
        line.to_owned()
    }
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Problem(_) => 1,
            CliError::Aws(_) => 3,
        }
    }
}

/// The code paths' errors: AWS's own (`service:Operation: ...`, or retryable) exit 3, the
/// request's (an unknown database, a bad strategy) exit 1.
impl From<LifeboatError> for CliError {
    fn from(e: LifeboatError) -> Self {
        let from_aws = match &e {
            LifeboatError::Transient(_) | LifeboatError::InProgress(_) => true,
            LifeboatError::Rejected(m) => m.split_once(':').is_some_and(|(service, op)| {
                !service.is_empty()
                    && service.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && op.starts_with(|c: char| c.is_ascii_uppercase())
            }),
            _ => false,
        };
        if from_aws {
            CliError::Aws(e)
        } else {
            CliError::Problem(e.to_string())
        }
    }
}

type Done = Result<u8, CliError>;

pub async fn run(cli: Cli) -> Done {
    let g = cli.global;
    match cli.command {
        Command::Check { file } => check(&file, g.json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "lifeboat", &mut std::io::stdout());
            Ok(0)
        }
        command => {
            let aws = Aws::connect(&g).await?;
            match command {
                Command::Status { database } => status(&aws, database.as_deref(), g.json).await,
                Command::Plan(t) => plan(&aws, &t, g.json).await,
                Command::Failover { target, reason, follow } => {
                    start_failover(&aws, &target, &reason, follow, g.json).await
                }
                Command::Approve { incident, confirm } => {
                    decide(&aws, &incident, Decision::Approve, confirm, None, g.json).await
                }
                Command::Reject { incident, reason } => {
                    decide(&aws, &incident, Decision::Reject, None, reason, g.json).await
                }
                Command::Incidents { open } => incidents(&aws, open, g.json).await,
                Command::Timeline { incident, format } => timeline(&aws, &incident, format).await,
                Command::Drill { database, follow } => drill(&aws, &database, follow, g.json).await,
                Command::Failback { database, reason, follow } => {
                    failback(&aws, &database, &reason, follow, g.json).await
                }
                Command::Reprotect { database, dry_run } => reprotect(&aws, &database, dry_run, g.json).await,
                Command::Validate { database, target } => validate(&aws, &database, target.as_deref(), g.json).await,
                Command::Check { .. } | Command::Completions { .. } => Ok(0),
            }
        }
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// `lifeboat check`: the functions' parser and rules, offline; and whether the document fits
/// where the deploy stores it: the S3 object LIFEBOAT_CONFIG_OBJECT names, else an SSM parameter,
/// which scripts/deploy.sh writes Intelligent-Tiering (Advanced once past Standard's limit).
fn check(file: &str, json_out: bool) -> Done {
    let text = std::fs::read_to_string(file).map_err(|e| CliError::Problem(format!("{file}: {e}")))?;
    let bytes = text.len();
    let store = if std::env::var("LIFEBOAT_CONFIG_OBJECT").is_ok_and(|v| !v.is_empty()) {
        Store::Object
    } else if store_limit(bytes, Store::SsmStandard).is_ok() {
        Store::SsmStandard
    } else {
        Store::SsmAdvanced
    };
    let mut problems = Config::problems(&text);
    problems.extend(store_limit(bytes, store).err());
    let (mut warnings, databases) = match Config::from_yaml(&text) {
        Ok(c) => (c.warnings(), c.databases.len()),
        Err(_) => (Vec::new(), 0),
    };
    if store == Store::SsmAdvanced && problems.is_empty() {
        warnings.push(format!(
            "{} bytes is past the SSM Standard tier's {}: the parameter must be Advanced, which AWS charges for \
             (or store it in S3: LIFEBOAT_CONFIG_OBJECT)",
            thousands(bytes),
            thousands(Store::SsmStandard.limit())
        ));
    }
    if json_out {
        print_json(&json!({
            "file": file, "ok": problems.is_empty(), "problems": problems, "warnings": warnings,
            "bytes": bytes, "store": store.as_str(), "store_limit": store.limit(),
        }));
    } else {
        for p in &problems {
            println!("{file}: {p}");
        }
        for w in &warnings {
            println!("{file}: warning: {w}");
        }
        if problems.is_empty() {
            println!("{file}: ok, {databases} databases, {} bytes: fits {store}", thousands(bytes));
        }
    }
    Ok(if problems.is_empty() { 0 } else { 1 })
}

/// The clients and names every AWS command needs, built once.
struct Aws {
    sdk: SdkConfig,
    names: Names,
}

impl Aws {
    async fn connect(g: &Global) -> Result<Aws, CliError> {
        let mut loader = lifeboat_core::aws::sdk_loader();
        if let Some(r) = &g.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(p) = &g.profile {
            loader = loader.profile_name(p);
        }
        let sdk = loader.load().await;
        if sdk.region().is_none() {
            return Err(CliError::Problem("no region: pass --region or set AWS_REGION".into()));
        }
        let names = stack::resolve(&sdk, &g.stack).await?;
        Ok(Aws { sdk, names })
    }

    fn region(&self) -> String {
        self.sdk.region().map(|r| r.to_string()).unwrap_or_default()
    }

    /// What the stack's functions read, in their order (`ConfigSource::first_of`).
    fn config(&self) -> Result<ConfigCache, CliError> {
        let named = |v: &str| Some(v.to_owned()).filter(|v| !v.is_empty());
        let source = ConfigSource::first_of(
            std::env::var("LIFEBOAT_CONFIG_FILE").ok().filter(|v| !v.is_empty()),
            named(&self.names.config_object),
            named(&self.names.config_param),
        )
        .map_err(|e| CliError::Problem(e.to_string()))?;
        Ok(ConfigCache::new(source, &self.sdk, Duration::from_secs(3600)))
    }

    fn store(&self) -> IncidentStore {
        IncidentStore::new(&self.sdk, &self.names.table)
    }

    /// Who is asking: the caller's AWS identity, as CloudTrail will name it.
    async fn identity(&self) -> Result<String, CliError> {
        let out = aws_sdk_sts::Client::new(&self.sdk)
            .get_caller_identity()
            .send()
            .await
            .map_err(|e| CliError::Aws(lifeboat_core::aws::sdk_error("sts:GetCallerIdentity", e)))?;
        out.arn().map(str::to_owned).ok_or_else(|| CliError::Problem("sts:GetCallerIdentity named no ARN".into()))
    }

    async fn incident(&self, id: &str) -> Result<Incident, CliError> {
        self.store().get(id).await?.ok_or_else(|| {
            CliError::Problem(format!(
                "no incident {id} in {} ({}): `lifeboat incidents` lists them",
                self.names.table,
                self.region()
            ))
        })
    }
}

/// `lifeboat status`: dr-drill's recoverability report, with each database's open incident.
async fn status(aws: &Aws, database: Option<&str>, json_out: bool) -> Done {
    let config = aws.config()?.following_active();
    let (followed, actives) = config.get_with_actives().await?;
    let databases: Vec<String> =
        followed.databases.iter().map(|d| d.name.clone()).filter(|n| database.is_none_or(|d| d == n)).collect();
    if let Some(d) = database.filter(|_| databases.is_empty()) {
        return Err(CliError::Problem(format!("no database named {d} in Lifeboat's config")));
    }
    let mut deps = dr_drill::Deps::new(config, &aws.sdk, &aws.names.table, "");
    deps.own_only = aws.names.recovers_own;
    let report = dr_drill::handle(&deps, json!({"report": true}), Utc::now()).await?;
    let rows: Vec<ReportRow> = serde_json::from_value(report["databases"].clone())
        .map_err(|e| CliError::Problem(format!("dr-drill's report: {e}")))?;
    let rows: Vec<ReportRow> = rows.into_iter().filter(|r| databases.contains(&r.database)).collect();
    let store = aws.store();
    let mut open = Vec::new();
    let mut ready = Vec::new();
    for name in &databases {
        open.push(store.open_for(name).await?);
        ready.push(store.readiness(name).await?);
    }
    let unreachable: Vec<String> = serde_json::from_value(report["unreachable"].clone()).unwrap_or_default();
    let problem = rows.iter().any(|r| !r.rpo_met || r.last_drill_passed == Some(false));
    if json_out {
        let v: Vec<Value> = databases
            .iter()
            .zip(&open)
            .map(|(name, i)| {
                let mut v = rows
                    .iter()
                    .find(|r| &r.database == name)
                    .map_or_else(|| json!({"database": name}), |r| serde_json::to_value(r).unwrap_or_default());
                v["incident"] = i.as_ref().map_or(Value::Null, |i| json!({"id": i.id, "status": i.status}));
                if let (Some(a), Some(db)) =
                    (actives.iter().find(|a| &a.database == name), followed.database_named(name))
                {
                    v["active"] = json!({
                        "arn": a.arn, "region": db.source.region, "since": a.since, "incident": a.incident,
                        "previous": a.previous, "replica": a.replica, "protected": lifeboat_core::active::protected(a, db).as_str(),
                    });
                }
                v
            })
            .zip(&ready)
            .map(|(mut v, r)| {
                v["readiness"] = r.as_ref().map_or(Value::Null, |(s, at)| json!({"summary": s, "checked": at}));
                v
            })
            .collect();
        print_json(&json!({"region": aws.region(), "databases": v, "unreachable": unreachable}));
    } else {
        if !rows.is_empty() {
            print!("{}", lifeboat_core::drill::report_text(&rows));
        }
        for region in &unreachable {
            println!("RDS in {region} did not answer: its snapshots are not counted");
        }
        for a in actives.iter().filter(|a| databases.contains(&a.database)) {
            if let Some(db) = followed.database_named(&a.database) {
                println!("{}", lifeboat_core::message::active_line(a, db));
            }
        }
        for (name, i) in databases.iter().zip(&open) {
            if !rows.iter().any(|r| &r.database == name) {
                println!("{name}: no DR copies, replica or drills: no recovery point to report");
            }
            match i {
                Some(i) => println!("{name}: open incident {} ({})", i.id, i.status),
                None => println!("{name}: no open incident"),
            }
        }
        for (name, r) in databases.iter().zip(&ready) {
            match r {
                Some((summary, at)) => println!("{name}: {summary} (checked {})", when(*at)),
                None => println!("{name}: readiness not checked yet"),
            }
        }
    }
    Ok(if problem { 1 } else { 0 })
}

/// A person's request: what the trigger takes (`events/failover-manual-request.json`) less who
/// asks, which the operator URL takes from AWS and `plan` from sts:GetCallerIdentity.
fn request(t: &Target, reason: &str) -> Value {
    let mut r = json!({"database": t.database, "reason": reason});
    if let Some(s) = &t.strategy {
        r["strategy"] = json!(s);
    }
    if let Some(at) = &t.restore_time {
        r["restore_time"] = json!(at);
    }
    r
}

/// `lifeboat plan`: failover-steps' preflight (its reads and verdict), nothing written.
async fn plan(aws: &Aws, t: &Target, json_out: bool) -> Done {
    let mut asked = request(t, "plan");
    asked["requested_by"] = json!(aws.identity().await?);
    let config = aws.config()?;
    let now = Utc::now();
    let snapshot = config.get().await?;
    let classified = failover::classify(&snapshot, &asked, now).map_err(|e| CliError::Problem(e.to_string()))?;
    let Start::Failover(requests) = classified else {
        return Err(CliError::Problem("not a failover request".into()));
    };
    let Some(r) = requests.first() else { return Err(CliError::Problem("nothing to plan".into())) };
    let Some(db) = snapshot.database_named(&r.database) else {
        return Err(CliError::Problem(format!("no database named {}", r.database)));
    };
    let exec = Execution::new(db, r, "plan", Duration::from_secs(POLL_SECONDS));
    let deps = failover_steps::Deps::new(config, &aws.sdk, &aws.names.table);
    let (p, details) = failover_steps::plan(&deps, db, &exec, now).await?;
    let owner = failover::steps::recovered_from(db, r.strategy);
    if json_out {
        print_json(&json!({
            "database": db.name, "strategy": r.strategy.to_string(), "runs_in": owner,
            "approval_required": exec.approval_required, "plan": p.plan, "details": details,
            "expected_loss_seconds": p.expected_loss_seconds, "within_rpo": p.within_rpo,
        }));
    } else {
        println!("{} by {} (runs in {owner}'s stack)", db.name, r.strategy);
        println!("What will happen: {}.", p.plan);
        println!("{details}");
        println!("Approval: {}", if exec.approval_required { "required" } else { "not required" });
    }
    Ok(0)
}

/// `lifeboat failover`: a request to the operator URL, which opens the incident with the trigger's
/// own code and role; the requester is the identity AWS verified for the request.
async fn start_failover(aws: &Aws, t: &Target, reason: &str, follow: bool, json_out: bool) -> Done {
    let mut ask = request(t, reason);
    ask["action"] = json!("failover");
    start(aws, &ask, &t.database, follow, json_out).await
}

/// `lifeboat failback`: the operator URL's failback, which the trigger refuses unless the way
/// back exists; the rest is a failover's.
async fn failback(aws: &Aws, database: &str, reason: &str, follow: bool, json_out: bool) -> Done {
    let ask = json!({"action": "failback", "database": database, "reason": reason});
    start(aws, &ask, database, follow, json_out).await
}

async fn start(aws: &Aws, ask: &Value, database: &str, follow: bool, json_out: bool) -> Done {
    let kind = ask["action"].as_str().unwrap_or("failover");
    let report = operator::ask(&aws.sdk, &aws.names.operator_url, ask).await?;
    if json_out {
        print_json(&report);
    }
    let text = |k: &str| report[k].as_str().map(str::to_owned);
    if let (Some(why), None) = (text("ignored"), text("incident_id")) {
        return Err(CliError::Problem(format!("{why}: ask that region's stack (--region)")));
    }
    let id = text("incident_id").or(text("joined")).unwrap_or_default();
    if !json_out {
        match (text("joined"), report["started"] == true) {
            (Some(other), _) => {
                println!("{database} already has an open incident, {other}: your request is on its timeline")
            }
            (None, true) => println!("incident {id} opened; {kind} {}", text("execution_arn").unwrap_or_default()),
            (None, false) => println!("incident {id} was open already; its {kind} runs"),
        }
    }
    if follow && !id.is_empty() {
        follow_incident(aws, &id).await?;
    }
    Ok(0)
}

/// Print the incident's timeline as it grows, until it closes; Ctrl-C leaves it running.
async fn follow_incident(aws: &Aws, id: &str) -> Result<(), CliError> {
    let store = aws.store();
    let mut shown = 0;
    let watch = async {
        loop {
            let i = store.get(id).await?.ok_or_else(|| CliError::Problem(format!("incident {id} is gone")))?;
            for e in i.timeline.iter().skip(shown) {
                println!("{} {:<16} {}", e.at.format("%H:%M:%S"), e.by, e.what);
            }
            shown = i.timeline.len();
            if !i.status.is_open() {
                println!("incident {id} is {}", i.status);
                return Ok::<(), CliError>(());
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    };
    tokio::select! {
        r = watch => r,
        _ = tokio::signal::ctrl_c() => {
            println!("\nleft running: `lifeboat timeline {id}` shows where it is");
            Ok(())
        }
    }
}

/// `lifeboat approve` / `reject`: the approval handler's one decision, taken by the operator URL
/// for the identity AWS verified. What is pending is read here first, to ask before typing.
async fn decide(
    aws: &Aws,
    id: &str,
    decision: Decision,
    confirm: Option<String>,
    reason: Option<String>,
    json_out: bool,
) -> Done {
    let incident = aws.incident(id).await?;
    if let Some((decided, why)) = approval_handler::not_pending_reason(&incident, None) {
        return Err(CliError::Problem(if decided {
            format!("no incident {id} is waiting for approval: it was {why}")
        } else {
            format!("incident {why}: nothing to decide")
        }));
    }
    let mut confirmed = None;
    if decision == Decision::Approve && pages::must_type_database(&incident) {
        let typed = match confirm {
            Some(c) => c,
            None if std::io::stdin().is_terminal() => {
                print!("{} is production. Type its name to approve the failover: ", incident.database);
                std::io::stdout().flush().ok();
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).ok();
                line.trim().to_owned()
            }
            None => {
                return Err(CliError::Problem(format!(
                    "{} is production: pass --confirm {} to approve without a prompt",
                    incident.database, incident.database
                )))
            }
        };
        if typed != incident.database {
            return Err(CliError::Problem(format!("`{typed}` is not `{}`: nothing was decided", incident.database)));
        }
        confirmed = Some(typed);
    }
    let ask = match decision {
        Decision::Approve => json!({"action": "approve", "incident": id, "confirm": confirmed}),
        Decision::Reject => json!({"action": "reject", "incident": id, "reason": reason}),
    };
    let answer = operator::ask(&aws.sdk, &aws.names.operator_url, &ask).await?;
    let what = answer["decided"].as_str().unwrap_or_default();
    if json_out {
        print_json(&answer);
    } else {
        println!("incident {id}: {what}");
    }
    Ok(0)
}

async fn incidents(aws: &Aws, open_only: bool, json_out: bool) -> Done {
    let store = aws.store();
    let list = if open_only { store.list_open().await? } else { store.list_all().await? };
    if json_out {
        let v: Vec<Value> = list
            .iter()
            .map(|i| json!({"id": i.id, "database": i.database, "status": i.status, "started": i.started}))
            .collect();
        print_json(&json!(v));
    } else {
        println!("| Incident | Database | Status | Started |\n|---|---|---|---|");
        for i in &list {
            println!("| {} | {} | {} | {} |", i.id, i.database, i.status, when(i.started));
        }
    }
    Ok(0)
}

fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `lifeboat timeline`: the table the resolved message carries.
async fn timeline(aws: &Aws, id: &str, format: Format) -> Done {
    let i = aws.incident(id).await?;
    match format {
        Format::Md => print!("{}", timeline_table(&i.timeline)),
        Format::Json => {
            let entries: Vec<Value> = i.timeline.iter().map(entry_json).collect();
            print_json(&json!({"id": i.id, "database": i.database, "status": i.status, "timeline": entries}));
        }
    }
    Ok(0)
}

fn entry_json(e: &Entry) -> Value {
    json!({"at": e.at, "by": e.by, "what": e.what, "key": e.key, "details": e.details})
}

/// `lifeboat reprotect`: the reprotect function's on-demand path, through the operator URL.
async fn reprotect(aws: &Aws, database: &str, dry_run: bool, json_out: bool) -> Done {
    let ask = json!({"action": "reprotect", "database": database, "dry_run": dry_run});
    let out = operator::ask(&aws.sdk, &aws.names.operator_url, &ask).await?;
    if json_out {
        print_json(&out);
    } else if let Some(would) = out["would"].as_str() {
        println!("would build: {would}");
    } else {
        let how = match (out["built"] == true, out["recorded"] == true) {
            (true, _) => "building",
            // A global database's old primary, a secondary again: nothing to build.
            (false, true) => "recorded",
            (false, false) => "already there",
        };
        println!("{database}: way back {how}: {}", out["replica"].as_str().unwrap_or_default());
        println!("`lifeboat status {database}` says when it is available and inside the RPO");
    }
    Ok(0)
}

/// `lifeboat validate`: the data validator's on-demand path, through the operator URL (which
/// invokes it in the stack's VPC). Exit 1 when a check did not pass or nothing could be checked.
async fn validate(aws: &Aws, database: &str, target: Option<&str>, json_out: bool) -> Done {
    let mut ask = json!({"action": "validate", "database": database});
    if let Some(t) = target {
        ask["target"] = json!(t);
    }
    let out = operator::ask(&aws.sdk, &aws.names.operator_url, &ask).await?;
    let report: DataReport = serde_json::from_value(out.clone())
        .map_err(|e| CliError::Problem(format!("the validator's answer is not a data report ({e}): {out}")))?;
    if json_out {
        print_json(&out);
    } else {
        let at = &out["target"];
        let port = at["port"].as_u64().map(|p| format!(":{p}")).unwrap_or_default();
        let engine = at["engine"].as_str().unwrap_or_default();
        println!("{database} at {}{port} ({engine}): {}", at["address"].as_str().unwrap_or("?"), report.summary());
        print!("{}", message::data_lines(&report));
    }
    Ok(if report.passed { 0 } else { 1 })
}

/// `lifeboat drill`: dr-drill's on-demand path, through the operator URL; `--follow` waits for
/// the execution to end.
async fn drill(aws: &Aws, database: &str, follow: bool, json_out: bool) -> Done {
    let out =
        operator::ask(&aws.sdk, &aws.names.operator_url, &json!({"action": "drill", "database": database})).await?;
    if json_out {
        print_json(&out);
    }
    let Some(arn) = out["started"][0]["execution_arn"].as_str().map(str::to_owned) else {
        let why = out["not_due"].to_string();
        return Err(CliError::Problem(format!("no drill of {database} started: {why} {}", out)));
    };
    if !json_out {
        println!("drill of {database} started: {arn}");
    }
    if follow {
        let sfn = lifeboat_core::aws::sfn::StepFunctions::new(&aws.sdk);
        let watch = async {
            loop {
                let status = sfn.status(&arn).await?;
                if status != "RUNNING" {
                    println!("drill {status}");
                    return Ok::<(), CliError>(());
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        };
        tokio::select! {
            r = watch => r?,
            _ = tokio::signal::ctrl_c() => println!("\nleft running: `lifeboat status {database}` shows its result"),
        }
    }
    Ok(0)
}
