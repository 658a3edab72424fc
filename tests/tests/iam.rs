//! Least privilege, read from template.yaml itself: no write action on `*` (the one exception,
//! answering Step Functions task tokens, which IAM cannot scope, belongs to the approval handler
//! alone); every RDS delete conditioned on an ownership tag; restores only with Lifeboat's tag.

use serde_yaml_ng::Value;

/// Every IAM statement in the template, with the logical id of the resource it belongs to.
fn statements(template: &Value) -> Vec<(String, Value)> {
    fn walk(owner: &str, v: &Value, out: &mut Vec<(String, Value)>) {
        match v {
            Value::Mapping(m) => {
                if let Some(Value::Sequence(list)) = m.get("Statement") {
                    out.extend(list.iter().map(|s| (owner.to_owned(), s.clone())));
                    return;
                }
                m.values().for_each(|x| walk(owner, x, out));
            }
            Value::Sequence(list) => list.iter().for_each(|x| walk(owner, x, out)),
            // `!If [condition, policy, AWS::NoValue]` and friends.
            Value::Tagged(t) => walk(owner, &t.value, out),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let Some(Value::Mapping(resources)) = template.get("Resources") else { panic!("no Resources") };
    for (id, r) in resources {
        walk(id.as_str().unwrap_or("?"), r, &mut out);
    }
    out
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Sequence(l)) => l.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

fn is_read(action: &str) -> bool {
    let op = action.split(':').nth(1).unwrap_or(action);
    ["Describe", "Get", "List"].iter().any(|p| op.starts_with(p))
}

fn template() -> Value {
    let text = std::fs::read_to_string(lifeboat_tests::repo_root().join("template.yaml")).expect("template.yaml");
    serde_yaml_ng::from_str(&text).expect("template.yaml parses")
}

#[test]
fn no_write_action_on_every_resource_and_task_tokens_only_for_the_approval_handler() {
    let all = statements(&template());
    assert!(all.len() > 30, "found only {} statements: is the walk right?", all.len());
    for (owner, s) in &all {
        if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let actions = list(s.get("Action"));
        let star = list(s.get("Resource")).iter().any(|r| r == "*");
        for a in &actions {
            if a.starts_with("states:SendTask") {
                assert_eq!(owner, "ApprovalHandlerFunction", "{a} granted to {owner}");
                continue;
            }
            assert!(!star || is_read(a), "{owner}: write action {a} on Resource \"*\"");
        }
    }
    assert!(all.iter().any(
        |(o, s)| o == "ApprovalHandlerFunction" && list(s.get("Action")).contains(&"states:SendTaskSuccess".into())
    ));
}

#[test]
fn rds_deletes_and_restores_need_lifeboats_tags() {
    for (owner, s) in statements(&template()) {
        if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
            continue;
        }
        let condition = serde_yaml_ng::to_string(&s.get("Condition").cloned().unwrap_or(Value::Null)).unwrap();
        for a in list(s.get("Action")) {
            if a.starts_with("rds:Delete") {
                assert!(
                    condition.contains("-tag/lifeboat:") || condition.contains("ResourceTag/lifeboat:"),
                    "{owner}: {a} without an ownership tag condition: {condition}"
                );
            }
            // A restore creates a database: only with the incident's or the drill's tag. (The
            // statements that grant the source side name snapshots and groups, not databases.)
            let resources = list(s.get("Resource")).join(" ");
            if a.starts_with("rds:Restore") && !resources.contains(":snapshot:") && !resources.contains("subgrp") {
                assert!(condition.contains("RequestTag/lifeboat:"), "{owner}: {a} without Lifeboat's tag: {condition}");
            }
        }
    }
}

#[test]
fn the_failover_may_never_overwrite_lifeboats_own_parameters() {
    let denied: Vec<(String, Value)> = statements(&template())
        .into_iter()
        .filter(|(o, s)| o == "FailoverStepsFunction" && s.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .collect();
    assert_eq!(denied.len(), 1);
    let text = serde_yaml_ng::to_string(&denied[0].1).unwrap();
    assert!(
        text.contains("ssm:PutParameter")
            && text.contains("ConfigParameterName")
            && text.contains("ApprovalSecretParameterName"),
        "{text}"
    );
}
