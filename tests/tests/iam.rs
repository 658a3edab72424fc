//! Least privilege, read from template.yaml itself: no write action on `*` (the one exception,
//! answering Step Functions task tokens, which IAM cannot scope, belongs to the approval handler
//! alone); every RDS delete conditioned on an ownership tag; restores only with Lifeboat's tag,
//! into `lf-` databases (a point-in-time restore excepted: IAM can't tell its source, which the
//! config names, from its target), and tags only Lifeboat's own keys on them. Also what keeps a
//! failover running: reserved concurrency, and alarms for executions that fail or time out.

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

/// A scalar read through its tag: `!Sub arn:...` is `arn:...`, `!Ref X` is `X`.
fn text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Tagged(t) => text(&t.value),
        _ => None,
    }
}

/// A string or a list of them (`Action`, `Resource`, a condition's values), tags read through.
fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(l)) => l.iter().filter_map(text).map(str::to_owned).collect(),
        Some(v) => text(v).map(|s| vec![s.to_owned()]).unwrap_or_default(),
        None => Vec::new(),
    }
}

/// The values a statement's `Condition` gives `key` under `operator`.
fn condition(s: &Value, operator: &str, key: &str) -> Vec<String> {
    list(s.get("Condition").and_then(|c| c.get(operator)).and_then(|o| o.get(key)))
}

fn allows(s: &Value) -> bool {
    s.get("Effect").and_then(Value::as_str) == Some("Allow")
}

/// `!Ref name`, and not a literal that happens to spell it.
fn is_ref(v: Option<&Value>, name: &str) -> bool {
    matches!(v, Some(Value::Tagged(t)) if t.tag == "Ref" && text(&t.value) == Some(name))
}

fn is_lf_database(arn: &str) -> bool {
    arn.contains(":db:lf-") || arn.contains(":cluster:lf-")
}

/// The actions that create a database.
const CREATES: [&str; 5] = [
    "rds:RestoreDBInstanceFromDBSnapshot",
    "rds:RestoreDBClusterFromSnapshot",
    "rds:RestoreDBInstanceToPointInTime",
    "rds:RestoreDBClusterToPointInTime",
    "rds:CreateDBInstance",
];

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
                // The approval page, and the people who approve with `lifeboat approve`.
                assert!(
                    ["ApprovalHandlerFunction", "ApproverPolicy"].contains(&owner.as_str()),
                    "{a} granted to {owner}"
                );
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

#[test]
fn failover_and_drill_restores_may_use_the_dr_keys_through_rds_only() {
    let all = statements(&template());
    for owner in ["FailoverStepsFunction", "DrDrillFunction"] {
        let granted = all.iter().any(|(o, s)| {
            let actions = list(s.get("Action"));
            o == owner
                && allows(s)
                && actions.contains(&"kms:CreateGrant".into())
                && actions.contains(&"kms:DescribeKey".into())
                && is_ref(s.get("Resource"), "DrKmsKeyArns")
        });
        assert!(granted, "{owner}: no kms:CreateGrant + kms:DescribeKey on !Ref DrKmsKeyArns");
    }
    // Whoever holds a grant on the keys, holds it only through RDS.
    for (owner, s) in all.iter().filter(|(_, s)| allows(s)) {
        if !list(s.get("Action")).contains(&"kms:CreateGrant".into()) {
            continue;
        }
        let via: Vec<String> =
            ["StringLike", "StringEquals"].iter().flat_map(|op| condition(s, op, "kms:ViaService")).collect();
        assert!(
            !via.is_empty() && via.iter().all(|v| v.starts_with("rds.") && v.ends_with(".amazonaws.com")),
            "{owner}: kms:CreateGrant not limited to kms:ViaService rds: {via:?}"
        );
    }
}

#[test]
fn rds_tags_go_only_on_lf_databases_and_the_copiers_own_copies() {
    let mut taggers = Vec::new();
    for (owner, s) in statements(&template()) {
        if !allows(&s) || !list(s.get("Action")).contains(&"rds:AddTagsToResource".into()) {
            continue;
        }
        // With a vault, the copier marks a source snapshot the vault holds: that one tag only,
        // which makes nothing deletable.
        let only_vaulted = condition(&s, "ForAllValues:StringEquals", "aws:TagKeys") == ["lifeboat:vaulted"];
        for r in list(s.get("Resource")) {
            // The copier tags the copies it makes, lifeboat:managed included: those and no other.
            let own = if owner == "SnapshotCopierFunction" {
                r.ends_with(":snapshot:lifeboat-*") || r.ends_with(":cluster-snapshot:lifeboat-*") || only_vaulted
            } else {
                // A recovery account's copy of a vault copy is named as the vault named it.
                is_lf_database(&r)
                    || r.contains(":snapshot:lifeboat-vault-")
                    || r.contains(":cluster-snapshot:lifeboat-vault-")
            };
            assert!(own, "{owner}: rds:AddTagsToResource on {r}");
        }
        taggers.push(owner);
    }
    for owner in ["SnapshotCopierFunction", "FailoverStepsFunction", "DrDrillFunction"] {
        assert!(taggers.iter().any(|o| o == owner), "{owner} no longer tags: is the walk right?");
    }
}

#[test]
fn restores_tag_only_their_own_keys_and_never_lifeboat_managed() {
    let mut checked = 0;
    for (owner, s) in statements(&template()) {
        if owner == "SnapshotCopierFunction"
            || !allows(&s)
            || !list(s.get("Action")).contains(&"rds:AddTagsToResource".into())
        {
            continue;
        }
        let keys = condition(&s, "ForAllValues:StringEquals", "aws:TagKeys");
        assert!(
            !keys.is_empty() && keys.iter().all(|k| k.starts_with("lifeboat:") && k != "lifeboat:managed"),
            "{owner}: rds:AddTagsToResource with tag keys {keys:?}"
        );
        checked += 1;
    }
    assert!(checked >= 2, "found {checked} restore tagging statements: is the walk right?");
}

#[test]
fn restores_create_only_lf_databases_and_read_from_no_database_but_a_point_in_time_source() {
    let mut creating = 0;
    for (owner, s) in statements(&template()) {
        let actions = list(s.get("Action"));
        if !allows(&s) || !actions.iter().any(|a| CREATES.contains(&a.as_str())) {
            continue;
        }
        let resources = list(s.get("Resource"));
        let tagged = !condition(&s, "Null", "aws:RequestTag/lifeboat:incident").is_empty()
            || !condition(&s, "Null", "aws:RequestTag/lifeboat:drill").is_empty();
        // A point-in-time restore names its source database, which the config picks: any of this
        // account's, still only with the incident's tag.
        let point_in_time_source = owner == "FailoverStepsFunction"
            && tagged
            && actions.iter().all(|a| a.ends_with("ToPointInTime"))
            && resources.iter().all(|r| r.ends_with(":db:*") || r.ends_with(":cluster:*"));
        if point_in_time_source {
            continue;
        }
        if tagged {
            let prefix = if owner == "DrDrillFunction" { "lf-drill-" } else { "lf-" };
            for r in &resources {
                assert!(
                    is_lf_database(r)
                        && (r.contains(&format!(":db:{prefix}")) || r.contains(&format!(":cluster:{prefix}"))),
                    "{owner}: {actions:?} creates {r}"
                );
            }
            creating += 1;
        } else {
            // The source side: snapshots and groups, never a database.
            for r in &resources {
                assert!(
                    !r.contains(":db:") && !r.contains(":cluster:"),
                    "{owner}: {actions:?} on {r} without Lifeboat's tag"
                );
            }
        }
    }
    assert!(creating >= 2, "found {creating} statements creating databases: is the walk right?");
}

fn resource<'a>(template: &'a Value, id: &str) -> &'a Value {
    template.get("Resources").and_then(|r| r.get(id)).unwrap_or_else(|| panic!("no {id}"))
}

fn reserved(template: &Value, id: &str) -> u64 {
    resource(template, id)
        .get("Properties")
        .and_then(|p| p.get("ReservedConcurrentExecutions"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{id} reserves no concurrency"))
}

#[test]
fn the_public_approval_url_is_capped_and_the_recovery_functions_keep_capacity() {
    let t = template();
    let approval = reserved(&t, "ApprovalHandlerFunction");
    assert!((1..=5).contains(&approval), "ApprovalHandlerFunction reserves {approval}");
    for id in ["FailoverStepsFunction", "FailoverTriggerFunction", "NotifierFunction"] {
        assert!(reserved(&t, id) >= 1, "{id} reserves none");
    }
}

#[test]
fn both_state_machines_alarm_on_timed_out_as_well_as_failed_executions() {
    let t = template();
    let Some(Value::Mapping(resources)) = t.get("Resources") else { panic!("no Resources") };
    let alarms: Vec<&Value> = resources
        .values()
        .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::CloudWatch::Alarm"))
        .filter_map(|r| r.get("Properties"))
        .collect();
    for machine in ["FailoverStateMachine", "DrillStateMachine"] {
        for metric in ["ExecutionsFailed", "ExecutionsTimedOut"] {
            let found = alarms.iter().any(|a| {
                let on_machine = match a.get("Dimensions") {
                    Some(Value::Sequence(d)) => d.iter().any(|d| {
                        d.get("Name").and_then(Value::as_str) == Some("StateMachineArn")
                            && is_ref(d.get("Value"), machine)
                    }),
                    _ => false,
                };
                let tells_people = match a.get("AlarmActions") {
                    Some(Value::Sequence(actions)) => actions.iter().any(|x| is_ref(Some(x), "NotificationTopicArn")),
                    _ => false,
                };
                a.get("Namespace").and_then(Value::as_str) == Some("AWS/States")
                    && a.get("MetricName").and_then(Value::as_str) == Some(metric)
                    && on_machine
                    && tells_people
            });
            assert!(found, "no {metric} alarm on {machine} notifying NotificationTopicArn");
        }
    }
}

/// Route 53 ARC: only failover-steps flips routing controls (the operator's policy may read them),
/// at the cluster (data plane), on routing controls only; nothing may call the control-config API
/// that defines them.
#[test]
fn only_the_failover_steps_flip_routing_controls_and_nothing_redefines_them() {
    let all = statements(&template());
    let arc: Vec<&(String, Value)> =
        all.iter().filter(|(_, s)| list(s.get("Action")).iter().any(|a| a.starts_with("route53-recovery"))).collect();
    assert!(arc.iter().any(|(o, _)| o == "FailoverStepsFunction"), "{arc:?}");
    for (owner, s) in arc {
        for a in list(s.get("Action")) {
            assert!(a.starts_with("route53-recovery-cluster:"), "{owner}: {a}");
            assert!(is_read(&a) || owner == "FailoverStepsFunction", "{owner} may not {a}");
        }
        let resources = list(s.get("Resource"));
        assert!(
            !resources.is_empty() && resources.iter().all(|r| r.ends_with("/routingcontrol/*") && !r.contains("*:")),
            "{resources:?}"
        );
    }
    let steps: Vec<String> = all
        .iter()
        .filter(|(o, _)| o == "FailoverStepsFunction")
        .flat_map(|(_, s)| list(s.get("Action")))
        .filter(|a| a.starts_with("route53-recovery"))
        .collect();
    assert!(steps.contains(&"route53-recovery-cluster:UpdateRoutingControlStates".to_owned()), "{steps:?}");
}

/// The CLI's read-only policy reads; only the approver's may write, and only to Lifeboat's own
/// table and state machines.
#[test]
fn the_operators_read_only_policy_only_reads_and_the_approvers_writes_only_lifeboats_own() {
    let all = statements(&template());
    let of = |owner: &str| -> Vec<String> {
        all.iter().filter(|(o, _)| o == owner).flat_map(|(_, s)| list(s.get("Action"))).collect()
    };
    let read_only = of("OperatorReadOnlyPolicy");
    assert!(
        read_only.contains(&"dynamodb:Scan".to_owned())
            && read_only.contains(&"cloudformation:DescribeStacks".to_owned())
    );
    for a in &read_only {
        assert!(is_read(a) || a == "dynamodb:Scan", "read-only policy grants {a}");
    }
    for (o, s) in all.iter().filter(|(o, _)| o == "ApproverPolicy") {
        for r in list(s.get("Resource")) {
            let ok = r == "*" && list(s.get("Action")).iter().all(|a| a.starts_with("states:SendTask"));
            assert!(ok || r == "IncidentsTable.Arn" || r.ends_with("StateMachine"), "{o}: {r}");
        }
    }
}

/// Evidence: only the notifier (failovers) and dr-drill (drills) may write it, each under its own
/// prefix; no Lifeboat role may delete it, and the bucket denies deletes and other writers to
/// everyone; it is versioned, encrypted, never public, and its retention is its lifecycle.
#[test]
fn evidence_is_written_only_by_lifeboat_under_its_prefix_and_deleted_by_nobody() {
    let t = template();
    let mut writers = Vec::new();
    for (owner, s) in statements(&t) {
        let actions = list(s.get("Action"));
        if owner == "EvidenceBucketPolicy" {
            continue;
        }
        assert!(
            !actions.iter().any(|a| a.starts_with("s3:Delete") || a == "s3:*" || a == "s3:PutLifecycleConfiguration"),
            "{owner} may delete evidence: {actions:?}"
        );
        if allows(&s) && actions.iter().any(|a| a == "s3:PutObject") {
            writers.push((owner, list(s.get("Resource"))));
        }
    }
    assert_eq!(
        writers,
        [
            ("NotifierFunction".to_owned(), vec!["${EvidenceBucket.Arn}/failovers/*".to_owned()]),
            ("DrDrillFunction".to_owned(), vec!["${EvidenceBucket.Arn}/drills/*".to_owned()]),
        ]
    );
    let policy = &resource(&t, "EvidenceBucketPolicy")["Properties"]["PolicyDocument"]["Statement"];
    let denied: Vec<String> = policy
        .as_sequence()
        .expect("statements")
        .iter()
        .filter(|s| s.get("Effect").and_then(Value::as_str) == Some("Deny"))
        .flat_map(|s| list(s.get("Action")))
        .collect();
    for a in ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:*"] {
        assert!(denied.contains(&a.to_owned()), "the bucket policy denies {a}: {denied:?}");
    }
    let bucket = &resource(&t, "EvidenceBucket")["Properties"];
    assert_eq!(bucket["VersioningConfiguration"]["Status"].as_str(), Some("Enabled"));
    assert!(bucket.get("BucketEncryption").is_some(), "encrypted");
    let block = &bucket["PublicAccessBlockConfiguration"];
    for k in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(block[k].as_bool(), Some(true), "{k}");
    }
    assert!(bucket["LifecycleConfiguration"]["Rules"][0].get("ExpirationInDays").is_some(), "retention by lifecycle");
}

/// Readiness reads: rpo-monitor writes only its own state (the incident table) and notices (the
/// topic), and simulates only the failover-steps role's policies, never another principal's.
#[test]
fn readiness_only_reads_and_simulates_only_the_failovers_role() {
    let t = template();
    for (owner, s) in statements(&t).into_iter().filter(|(o, s)| o == "RpoMonitorFunction" && allows(s)) {
        for a in list(s.get("Action")) {
            let resources = list(s.get("Resource"));
            match a.as_str() {
                "iam:SimulatePrincipalPolicy" => {
                    let r = s.get("Resource").expect("a resource");
                    assert!(
                        matches!(r, Value::Tagged(t) if t.tag == "GetAtt" && text(&t.value) == Some("FailoverStepsFunctionRole.Arn")),
                        "{owner} simulates {r:?}"
                    );
                }
                "dynamodb:PutItem" | "dynamodb:UpdateItem" | "dynamodb:DeleteItem" => {
                    assert_eq!(resources, ["IncidentsTable.Arn"], "{a}")
                }
                "sns:Publish" => assert!(is_ref(s.get("Resource"), "NotificationTopicArn"), "{a}"),
                _ => assert!(is_read(&a), "{owner} may {a}"),
            }
        }
    }
}
