//! Every scheduled run at fleet size (issue 30): `lifeboat_tests::fleet` builds 10, 100 and 1,000
//! databases in the emulator (`FLEET_SIZES=10,100` to choose), RDS throttling on as the emulator
//! models it (`FLEET_THROTTLE=off` for none), and runs the copier's sweep, the pruner dry and
//! real, the RPO run, readiness (first and steady) and the drill report in-process, release
//! build. Per run: AWS calls by API (throttled attempts apart), wall time, this process's peak
//! RSS, throttles absorbed. The table replaces the one between the `fleet` markers in
//! BENCHMARKS.md. `scripts/bench.sh` runs it (`BENCH_ONLY=fleet`).

use std::fmt::Write as _;

use lifeboat_tests::fleet::{self, Fleet, Measured, Stack};
use lifeboat_tests::*;
use serde_json::json;

/// The call formula each run is meant to keep, beside the count (n databases, r replicas).
fn formula(run: &str) -> &'static str {
    match run {
        "copier sweep" => "one listing page per region and kind",
        "pruner, dry run" => "one listing page per region and kind",
        "pruner, real run" => "listing + one delete per copy past retention",
        "rpo-monitor" => "listing + one lag read per replica (r) + table reads in batches of 100",
        "readiness, first run" | "readiness, steady" => "≤ n + one per distinct resource",
        "drill report" => "table reads in batches of 100",
        _ => "",
    }
}

fn main() {
    if std::env::var("BENCH_ONLY").is_ok_and(|o| o != "fleet") {
        return;
    }
    let sizes: Vec<usize> = std::env::var("FLEET_SIZES")
        .unwrap_or_else(|_| "10,100,1000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let throttled = std::env::var("FLEET_THROTTLE").map_or(true, |v| v != "off");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let mut rows = String::new();
    for n in sizes {
        // A fleet this size has had its manual snapshot quota raised (RDS's default is 100 a
        // region): 1,000 databases keep ~6,000 copies in their DR region.
        let moto = Moto::start_with(&[("MOTO_RDS_SNAPSHOT_LIMIT", "20000")]);
        let started = std::time::Instant::now();
        let built = rt.block_on(fleet::build(&moto, Fleet::of(n)));
        eprintln!("fleet of {n} built in {:.1} s", started.elapsed().as_secs_f64());
        let stack = rt.block_on(Stack::start(&moto, &built));
        // The emulator's RDS defaults (AWS's documented bucket), for the functions' calls only.
        let throttle = json!({"services": ["rds"], "caller": FUNCTIONS_ACCESS_KEY});
        let runs = rt.block_on(fleet::scheduled_runs(&moto, &stack, throttled.then_some(&throttle)));
        for r in &runs {
            rows.push_str(&row(n, r));
            eprintln!("{}", row(n, r).trim_end());
        }
    }
    let table = format!(
        "| N | run | calls (AWS API) | calls by API | formula | wall s | peak RSS MB | throttled | result |\n\
         |---|---|---|---|---|---|---|---|---|\n{rows}"
    );
    println!("{table}");
    let path = repo_root().join("BENCHMARKS.md");
    let Ok(text) = std::fs::read_to_string(&path) else { return };
    let (start, end) = ("<!-- fleet:start -->", "<!-- fleet:end -->");
    if let (Some(a), Some(b)) = (text.find(start), text.find(end)) {
        let note = format!(
            "\n_Measured {} by `scripts/bench.sh` (`BENCH_ONLY=fleet`), throttling {}._\n\n",
            chrono::Utc::now().format("%Y-%m-%d"),
            if throttled { "on" } else { "off" }
        );
        let updated = format!("{}{start}{note}{table}{}", &text[..a], &text[b..]);
        std::fs::write(&path, updated).expect("BENCHMARKS.md");
    }
}

fn row(n: usize, r: &Measured) -> String {
    let mut by_api: Vec<(&String, &u64)> = r.calls.iter().collect();
    by_api.sort_by(|a, b| b.1.cmp(a.1));
    let mut apis = String::new();
    for (api, count) in by_api.iter().take(6) {
        let _ = write!(apis, "{api} {count}<br>");
    }
    let result = match &r.result {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("**fails**: {}", e.chars().take(120).collect::<String>().replace('|', "/")),
    };
    format!(
        "| {n} | {} | {} | {} | {} | {:.1} | {} | {} | {result} |\n",
        r.run,
        r.total(),
        apis.trim_end_matches("<br>"),
        formula(r.run),
        r.wall.as_secs_f64(),
        r.peak_rss_kb.map_or("?".into(), |k| format!("{:.0}", k as f64 / 1024.0)),
        r.throttled,
    )
}
