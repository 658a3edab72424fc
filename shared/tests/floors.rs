//! The domain crate's floors (`src/lib.rs`), kept true: every file's folder is its floor, and no
//! `crate::` path in it may name a module of a higher floor; within the decisions, no two modules
//! import each other, however indirectly. Read from the sources as text, so it needs no tooling.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FLOORS: [&str; 5] = ["base", "config", "decide", "message", "aws"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first segment of every `crate::` path in code (comments left out), `crate::{a, b}` too.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or_default();
                out.extend(inner.split(',').filter_map(|p| p.trim().split("::").next()).map(str::to_owned));
            } else {
                out.insert(rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect());
            }
        }
    }
    out.retain(|s| !s.is_empty() && s != "self");
    out
}

#[test]
fn no_module_imports_from_a_floor_above_its_own_and_decisions_form_no_cycle() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    // Every module, by the name callers use (`crate::copy`, `crate::message`), and its floor.
    let mut floor_of: BTreeMap<String, usize> = BTreeMap::new();
    for (floor, folder) in FLOORS.iter().enumerate() {
        floor_of.insert((*folder).to_owned(), floor);
        for entry in std::fs::read_dir(src.join(folder)).expect("floor folder") {
            let path = entry.expect("entry").path();
            let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            if name != "mod" && name != "snapshots" {
                floor_of.entry(name).or_insert(floor);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut decisions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let Some(folder) = rel.components().next().and_then(|c| c.as_os_str().to_str()) else { continue };
        let Some(here) = FLOORS.iter().position(|f| *f == folder) else {
            assert_eq!(rel, Path::new("lib.rs"), "{} is in no floor's folder", rel.display());
            continue;
        };
        let text = std::fs::read_to_string(file).expect("source");
        let module = rel.components().nth(1).and_then(|c| c.as_os_str().to_str()).unwrap_or_default();
        let module = module.trim_end_matches(".rs").to_owned();
        for used in crate_paths(&text) {
            let Some(&there) = floor_of.get(&used) else { continue };
            if there > here {
                upward.push(format!("{} (floor {folder}) uses crate::{used} (floor {})", rel.display(), FLOORS[there]));
            }
            if folder == "decide" && there == here && used != module && used != "decide" {
                decisions.entry(module.clone()).or_default().insert(used);
            }
        }
    }
    assert!(upward.is_empty(), "imports that go up a floor:\n{}", upward.join("\n"));
    assert!(floor_of.len() > 20, "found only {floor_of:?}: is the walk right?");

    // Depth-first: a decision module met again while still on the path closes a cycle.
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            return Some(path[at..].iter().cloned().chain([m.to_owned()]).collect());
        }
        if !done.insert(m.to_owned()) {
            return None;
        }
        path.push(m.to_owned());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in decisions.keys() {
        if let Some(cycle) = visit(m, &decisions, &mut Vec::new(), &mut done) {
            panic!("decision modules import each other: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_floor_reader_sees_grouped_and_nested_paths() {
    let text = "use crate::{arn::RdsArn, copy};\nlet x = crate::message::human(d);\n// crate::aws in a comment\n";
    let got: Vec<String> = crate_paths(text).into_iter().collect();
    assert_eq!(got, ["arn", "copy", "message"]);
}
