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
const CREATES: [&str; 6] = [
    "rds:CreateDBInstanceReadReplica",
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
                // The approval page and the operator URL (`lifeboat approve`): Lifeboat's roles,
                // never a person's policy.
                assert!(
                    ["ApprovalHandlerFunction", "OperatorFunction"].contains(&owner.as_str()),
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
            let creates = a.starts_with("rds:Restore") || a == "rds:CreateDBInstanceReadReplica";
            if creates
                && !resources.contains(":snapshot:")
                && !(a.starts_with("rds:Restore") && resources.contains("subgrp"))
            {
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

    // And it writes only the endpoint parameters the stack admits, not every parameter.
    let steps = lifeboat_tests::template_statements("FailoverStepsFunction", "us-east-1");
    let parameter = |name: &str| format!("arn:aws:ssm:us-east-1:123456789012:parameter{name}");
    for action in ["ssm:PutParameter", "ssm:GetParameter"] {
        assert!(role_allows(&steps, action, &parameter("/orders/prod/db-endpoint")), "{action}");
        for other in ["/shop/api-key", "/orders/prod/db-password", "/db-endpoint-not"] {
            assert!(!role_allows(&steps, action, &parameter(other)), "failover-steps may {action} {other}");
        }
    }
    let t = template();
    let pattern = &t["Parameters"]["EndpointParameterPattern"];
    assert_eq!(pattern["Default"].as_str(), Some("/*/db-endpoint"), "{pattern:?}");
    let granted: Vec<String> = statements(&t)
        .into_iter()
        .filter(|(o, s)| o == "FailoverStepsFunction" && allows(s))
        .filter(|(_, s)| list(s.get("Action")).iter().any(|a| a == "ssm:PutParameter"))
        .flat_map(|(_, s)| list(s.get("Resource")))
        .collect();
    assert_eq!(
        granted,
        [
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${EndpointParameterPattern}",
            "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/lifeboat/active/*"
        ]
    );
}

/// Where a moved database serves decides what the copier copies and the pruner prunes: only the
/// failover steps (when a failover resolves) and re-protect (adding the way back) write it; every
/// other role and person's policy may at most read it.
#[test]
fn only_the_failover_steps_record_where_a_database_serves() {
    let t = template();
    let writers: Vec<(String, Vec<String>)> = statements(&t)
        .into_iter()
        .filter(|(_, s)| allows(s))
        .filter(|(_, s)| {
            list(s.get("Action"))
                .iter()
                .any(|a| ["ssm:PutParameter", "ssm:DeleteParameter", "ssm:*", "*"].contains(&a.as_str()))
        })
        .map(|(o, s)| (o, list(s.get("Resource"))))
        .collect();
    for (owner, resources) in &writers {
        for r in resources {
            let active = r.ends_with("parameter/lifeboat/active/*");
            let lifeboats = owner == "FailoverStepsFunction" || owner == "ReprotectPolicy";
            assert!(!active || lifeboats, "{owner} may write the active sides: {r}");
            assert!(!r.ends_with("parameter/*") && r != "*", "{owner} may write every parameter: {r}");
        }
    }
    assert!(writers
        .iter()
        .any(|(o, r)| o == "FailoverStepsFunction" && r.iter().any(|r| r.ends_with("/lifeboat/active/*"))));
    let readers: Vec<String> = statements(&t)
        .into_iter()
        .filter(|(_, s)| allows(s) && list(s.get("Action")).iter().any(|a| a == "ssm:GetParametersByPath"))
        .map(|(o, _)| o)
        .collect();
    for follows in [
        "SnapshotCopierFunction",
        "SnapshotPrunerFunction",
        "RpoMonitorFunction",
        "FailoverTriggerFunction",
        "DrDrillFunction",
        "OperatorFunction",
        "DataValidatorFunction",
        "OperatorReadOnlyPolicy",
    ] {
        assert!(readers.iter().any(|r| r == follows), "{follows} follows the active sides, so reads them: {readers:?}");
    }
}

/// failover-steps changes DNS only by UPSERTs of CNAME records whose names the stack admits
/// (`FailoverDnsRecordNames`), with Route 53's documented condition keys, each required present:
/// `ForAllValues` alone would hold for a request that carries none.
#[test]
fn the_failover_upserts_only_the_cname_records_the_stack_admits() {
    let t = template();
    let moves: Vec<Value> = statements(&t)
        .into_iter()
        .filter(|(_, s)| allows(s) && list(s.get("Action")).iter().any(|a| a.starts_with("route53:Change")))
        .map(|(o, s)| {
            assert_eq!(o, "FailoverStepsFunction", "{o} may change DNS");
            s
        })
        .collect();
    assert_eq!(moves.len(), 1, "{moves:?}");
    let s = &moves[0];
    assert_eq!(condition(s, "ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsActions"), ["UPSERT"]);
    assert_eq!(condition(s, "ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsRecordTypes"), ["CNAME"]);
    let names = s
        .get("Condition")
        .and_then(|c| c.get("ForAllValues:StringLike"))
        .and_then(|o| o.get("route53:ChangeResourceRecordSetsNormalizedRecordNames"));
    assert!(is_ref(names, "FailoverDnsRecordNames"), "{names:?}");
    for key in [
        "route53:ChangeResourceRecordSetsActions",
        "route53:ChangeResourceRecordSetsRecordTypes",
        "route53:ChangeResourceRecordSetsNormalizedRecordNames",
    ] {
        assert_eq!(condition(s, "Null", key), ["false"], "{key} must be present");
    }
    let records = &t["Parameters"]["FailoverDnsRecordNames"];
    assert_eq!(records["Type"].as_str(), Some("CommaDelimitedList"));
    let default = records["Default"].as_str().unwrap_or("*");
    assert!(default != "*" && glob(default, "db.orders.internal") && !glob(default, "www.example.com"), "{default}");
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
        // Re-protect marks the old primary it leaves as it is: that one tag, on any database.
        let only_old_primary = owner == "ReprotectPolicy"
            && condition(&s, "ForAllValues:StringEquals", "aws:TagKeys") == ["lifeboat:old-primary-of"];
        for r in list(s.get("Resource")) {
            // The copier tags the copies it makes, lifeboat:managed included: those and no other.
            let own = if owner == "SnapshotCopierFunction" {
                r.ends_with(":snapshot:lifeboat-*") || r.ends_with(":cluster-snapshot:lifeboat-*") || only_vaulted
            } else {
                // A recovery account's copy of a vault copy is named as the vault named it.
                is_lf_database(&r)
                    || only_old_primary
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
        // Re-protect's replica of the active side, which may have any name (its source is
        // authorized on the same call): only with the way back's tag.
        let way_back = owner == "ReprotectPolicy"
            && actions == ["rds:CreateDBInstanceReadReplica"]
            && !condition(&s, "Null", "aws:RequestTag/lifeboat:way-back-of").is_empty();
        if way_back {
            continue;
        }
        // An Aurora MySQL way back: a replica cluster and its instance, both Lifeboat's (lf-),
        // only with the way back's tag.
        let way_back_cluster = owner == "ReprotectPolicy"
            && actions == ["rds:CreateDBCluster", "rds:CreateDBInstance"]
            && !condition(&s, "Null", "aws:RequestTag/lifeboat:way-back-of").is_empty();
        if way_back_cluster {
            for r in resources.iter().filter(|r| r.contains(":db:") || r.contains(":cluster:")) {
                assert!(is_lf_database(r), "{owner}: {actions:?} creates {r}");
            }
            creating += 1;
            continue;
        }
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

/// The Data API goes on only where Lifeboat restored: the failover's lf- clusters carrying the
/// incident's tag, the drill's lf-drill- clusters carrying the drill's; no role may turn it on
/// anywhere else (it opens a cluster to SQL over HTTPS for whoever holds a login).
#[test]
fn the_data_api_is_turned_on_only_on_lifeboats_own_restored_clusters() {
    let mut found = Vec::new();
    for (owner, s) in statements(&template()) {
        let actions = list(s.get("Action"));
        if !allows(&s) || !actions.iter().any(|a| a == "rds:EnableHttpEndpoint" || a == "rds:*") {
            continue;
        }
        let (prefix, tag) = match owner.as_str() {
            "DrDrillFunction" => (":cluster:lf-drill-", "aws:ResourceTag/lifeboat:drill"),
            "FailoverStepsFunction" => (":cluster:lf-", "aws:ResourceTag/lifeboat:incident"),
            other => panic!("{other} may turn the Data API on"),
        };
        let resources = list(s.get("Resource"));
        assert!(!resources.is_empty() && resources.iter().all(|r| r.contains(prefix)), "{owner}: {resources:?}");
        assert!(!condition(&s, "Null", tag).is_empty(), "{owner}: EnableHttpEndpoint without {tag}");
        found.push(owner);
    }
    found.sort();
    assert_eq!(found, ["DrDrillFunction", "FailoverStepsFunction"]);
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
        assert!(is_read(a) || a == "dynamodb:Scan" || a == "dynamodb:BatchGetItem", "read-only policy grants {a}");
    }
    // The approver may only reach the operator URL, as an identity AWS authenticated: no
    // execution started, no task answered, no incident written by a person's own policy.
    let approver: Vec<&Value> = all.iter().filter(|(o, _)| o == "ApproverPolicy").map(|(_, s)| s).collect();
    assert_eq!(approver.len(), 1, "{approver:?}");
    assert_eq!(list(approver[0].get("Action")), ["lambda:InvokeFunctionUrl"]);
    assert_eq!(list(approver[0].get("Resource")), ["OperatorFunction.Arn"]);
    assert_eq!(condition(approver[0], "StringEquals", "lambda:FunctionUrlAuthType"), ["AWS_IAM"]);
    for (o, s) in all.iter().filter(|(o, _)| o == "ApproverPolicy" || o == "OperatorReadOnlyPolicy") {
        for a in list(s.get("Action")) {
            let forbidden =
                a.starts_with("states:Start") || a.starts_with("states:SendTask") || a.starts_with("states:Stop");
            let writes_table = a.starts_with("dynamodb:")
                && !matches!(a.as_str(), "dynamodb:GetItem" | "dynamodb:BatchGetItem" | "dynamodb:Scan");
            assert!(!forbidden && !writes_table, "{o} grants {a}");
        }
    }
    let t = template();
    let operator = resource(&t, "OperatorFunction");
    assert_eq!(operator["Properties"]["FunctionUrlConfig"]["AuthType"], "AWS_IAM");
    // `lifeboat validate`: the operator's role invokes the data validator and no other function
    // (which would let an approver run any of Lifeboat's roles' code through it).
    let invokes: Vec<String> = all
        .iter()
        .filter(|(o, s)| {
            o == "OperatorFunction" && allows(s) && list(s.get("Action")).iter().any(|a| a.starts_with("lambda:"))
        })
        .flat_map(|(_, s)| {
            assert_eq!(list(s.get("Action")), ["lambda:InvokeFunction"], "{s:?}");
            list(s.get("Resource"))
        })
        .collect();
    assert_eq!(invokes, ["DataValidatorFunction.Arn"]);
    let env = &operator["Properties"]["Environment"]["Variables"];
    assert!(is_ref(env.get("LIFEBOAT_VALIDATOR_FUNCTION"), "DataValidatorFunction"), "{env:?}");
}

/// Evaluated as IAM evaluates it (the emulator's simulator): a person holding both managed
/// policies can't write the incident table, start an execution or answer a task token; they can
/// reach the operator URL, and only with AWS_IAM auth.
#[tokio::test]
async fn a_person_with_the_approver_policy_can_only_ask_lifeboat() {
    let moto = lifeboat_tests::Moto::start();
    let mut statements = lifeboat_tests::managed_policy_statements("ApproverPolicy", "us-east-1");
    statements.extend(lifeboat_tests::managed_policy_statements("OperatorReadOnlyPolicy", "us-east-1"));
    let role = lifeboat_tests::role_with(&moto, "approver", &statements).await;
    let iam = aws_sdk_iam::Client::new(&moto.sdk("us-east-1").await);
    // `!GetAtt IncidentsTable.Arn`, as `managed_policy_statements` resolves it.
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/IncidentsTable.Arn";
    let machine = "arn:aws:states:us-east-1:123456789012:stateMachine:lifeboat-failover";
    let operator = "arn:aws:lambda:us-east-1:123456789012:function:operator";
    let decide = |action: &'static str, resource: &'static str, auth: Option<&'static str>| {
        let iam = iam.clone();
        let role = role.clone();
        async move {
            let mut sim =
                iam.simulate_principal_policy().policy_source_arn(role).action_names(action).resource_arns(resource);
            if let Some(a) = auth {
                let entry = aws_sdk_iam::types::ContextEntry::builder()
                    .context_key_name("lambda:FunctionUrlAuthType")
                    .context_key_values(a)
                    .context_key_type(aws_sdk_iam::types::ContextKeyTypeEnum::String)
                    .build();
                sim = sim.context_entries(entry);
            }
            let out = sim.send().await.expect("simulate");
            out.evaluation_results()[0].eval_decision().as_str().to_owned()
        }
    };
    for (action, resource) in [
        ("dynamodb:PutItem", table),
        ("dynamodb:UpdateItem", table),
        ("dynamodb:DeleteItem", table),
        ("states:StartExecution", machine),
        ("states:SendTaskSuccess", "*"),
        ("states:SendTaskFailure", "*"),
    ] {
        assert_eq!(decide(action, resource, None).await, "implicitDeny", "{action}");
    }
    assert_eq!(decide("dynamodb:GetItem", table, None).await, "allowed");
    assert_eq!(decide("lambda:InvokeFunctionUrl", operator, Some("AWS_IAM")).await, "allowed");
    assert_eq!(decide("lambda:InvokeFunctionUrl", operator, Some("NONE")).await, "implicitDeny");
    assert_eq!(decide("lambda:InvokeFunction", operator, None).await, "implicitDeny");
}

/// The data validator reads the logins Lifeboat's config may name (secrets `lifeboat-*`, through
/// Secrets Manager's use of their keys) and writes only the incident its report goes on: it
/// moves nothing, and can't be pointed at the account's other secrets.
#[tokio::test]
async fn the_data_validator_reads_only_lifeboats_logins_and_moves_nothing() {
    let moto = lifeboat_tests::Moto::start();
    let statements = lifeboat_tests::template_statements("DataValidatorFunction", "us-west-2");
    let role = lifeboat_tests::role_with(&moto, "data-validator", &statements).await;
    let iam = aws_sdk_iam::Client::new(&moto.sdk("us-east-1").await);
    let table = "arn:aws:dynamodb:us-west-2:123456789012:table/IncidentsTable.Arn";
    let secret = |name: &str| format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}");
    let decide = |action: &'static str, resource: String, via: Option<&'static str>| {
        let (iam, role) = (iam.clone(), role.clone());
        async move {
            let mut sim =
                iam.simulate_principal_policy().policy_source_arn(role).action_names(action).resource_arns(resource);
            if let Some(v) = via {
                let entry = aws_sdk_iam::types::ContextEntry::builder()
                    .context_key_name("kms:ViaService")
                    .context_key_values(v)
                    .context_key_type(aws_sdk_iam::types::ContextKeyTypeEnum::String)
                    .build();
                sim = sim.context_entries(entry);
            }
            let out = sim.send().await.expect("simulate");
            out.evaluation_results()[0].eval_decision().as_str().to_owned()
        }
    };
    assert_eq!(decide("secretsmanager:GetSecretValue", secret("lifeboat-validator-AbCdEf"), None).await, "allowed");
    let key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab".to_owned();
    assert_eq!(decide("kms:Decrypt", key.clone(), Some("secretsmanager.us-east-1.amazonaws.com")).await, "allowed");
    assert_eq!(decide("kms:Decrypt", key, Some("rds.us-east-1.amazonaws.com")).await, "implicitDeny");
    assert_eq!(decide("dynamodb:UpdateItem", table.to_owned(), None).await, "allowed");
    // Aurora's checks over the Data API: a transaction it only ever rolls back.
    let cluster = "arn:aws:rds:us-west-2:123456789012:cluster:lf-drill-ledger-1".to_owned();
    for action in ["rds-data:BeginTransaction", "rds-data:ExecuteStatement", "rds-data:RollbackTransaction"] {
        assert_eq!(decide(action, cluster.clone(), None).await, "allowed", "{action}");
    }
    // RDS IAM tokens: as the stack's ValidatorDbUser only, on any instance (a restore has a new
    // resource id); never as another user, the heartbeat writer's or the master's.
    let dbuser = |user: &str| format!("arn:aws:rds-db:us-west-2:123456789012:dbuser:db-ABCDEFGHIJKLMNOPQRS/{user}");
    assert_eq!(decide("rds-db:connect", dbuser("lifeboat_validator"), None).await, "allowed");
    for user in ["lifeboat_heartbeat", "postgres", "admin", "lifeboat_validator2"] {
        assert_eq!(decide("rds-db:connect", dbuser(user), None).await, "implicitDeny", "{user}");
    }
    for (action, resource) in [
        ("rds-data:CommitTransaction", cluster.clone()),
        ("rds-data:BatchExecuteStatement", cluster.clone()),
        ("rds:EnableHttpEndpoint", cluster.clone()),
        ("secretsmanager:GetSecretValue", secret("rds!db-0123-master")),
        ("secretsmanager:GetSecretValue", secret("prod/orders/admin")),
        ("secretsmanager:PutSecretValue", secret("lifeboat-validator-AbCdEf")),
        ("dynamodb:PutItem", table.to_owned()),
        ("dynamodb:DeleteItem", table.to_owned()),
        ("rds:PromoteReadReplica", "arn:aws:rds:us-west-2:123456789012:db:orders-replica".to_owned()),
        ("rds:ModifyDBInstance", "arn:aws:rds:us-west-2:123456789012:db:orders-replica".to_owned()),
        ("route53:ChangeResourceRecordSets", "arn:aws:route53:::hostedzone/Z1".to_owned()),
        ("ssm:PutParameter", "arn:aws:ssm:us-west-2:123456789012:parameter/orders/prod/db-endpoint".to_owned()),
        ("states:SendTaskSuccess", "*".to_owned()),
    ] {
        assert_eq!(decide(action, resource.clone(), None).await, "implicitDeny", "{action} on {resource}");
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
/// topic), and simulates only the failover-steps and data validator roles' policies, never another
/// principal's.
#[test]
fn readiness_only_reads_and_simulates_only_the_failovers_role() {
    let t = template();
    for (owner, s) in statements(&t).into_iter().filter(|(o, s)| o == "RpoMonitorFunction" && allows(s)) {
        for a in list(s.get("Action")) {
            let resources = list(s.get("Resource"));
            match a.as_str() {
                "iam:SimulatePrincipalPolicy" => {
                    let r = s.get("Resource").expect("a resource");
                    let roles: Vec<Option<&str>> = match r {
                        Value::Sequence(all) => all
                            .iter()
                            .map(|r| match r {
                                Value::Tagged(t) if t.tag == "GetAtt" => text(&t.value),
                                _ => None,
                            })
                            .collect(),
                        _ => vec![None],
                    };
                    assert_eq!(
                        roles,
                        [Some("FailoverStepsFunctionRole.Arn"), Some("DataValidatorFunctionRole.Arn")],
                        "{owner} simulates {r:?}"
                    );
                }
                "dynamodb:PutItem"
                | "dynamodb:UpdateItem"
                | "dynamodb:DeleteItem"
                | "dynamodb:BatchGetItem"
                | "dynamodb:BatchWriteItem" => {
                    assert_eq!(resources, ["IncidentsTable.Arn"], "{a}")
                }
                "sns:Publish" => assert!(is_ref(s.get("Resource"), "NotificationTopicArn"), "{a}"),
                _ => assert!(is_read(&a), "{owner} may {a}"),
            }
        }
    }
}

/// IAM's `*` wildcard (any run of characters), for actions and ARNs.
fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((head, rest)) => {
            value.starts_with(head) && (0..=value.len() - head.len()).any(|i| glob(rest, &value[head.len() + i..]))
        }
    }
}

/// Whether the function's role, as template.yaml writes it (conditions aside: readiness's reads
/// carry none), allows `action` on `resource`.
fn role_allows(statements: &[serde_json::Value], action: &str, resource: &str) -> bool {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        match v {
            serde_json::Value::Array(l) => l.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
            serde_json::Value::String(s) => vec![s.clone()],
            _ => Vec::new(),
        }
    };
    statements.iter().filter(|s| s["Effect"] == "Allow").any(|s| {
        strings(&s["Action"]).iter().any(|a| glob(a, action))
            && strings(&s["Resource"]).iter().any(|r| glob(r, resource))
    })
}

/// Every call rpo-monitor's readiness run makes (functions/rpo-monitor/src/readiness.rs, through
/// shared/src/aws), on a resource of the kind it reads.
const READINESS_CALLS: &[(&str, &str)] = &[
    ("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/config"),
    ("rds:DescribeDBInstances", "arn:aws:rds:us-west-2:123456789012:db:orders-replica"),
    ("rds:DescribeDBClusters", "arn:aws:rds:us-west-2:123456789012:cluster:ledger-west"),
    ("rds:DescribeGlobalClusters", "arn:aws:rds::123456789012:global-cluster:ledger"),
    ("rds:DescribeAccountAttributes", "*"),
    ("rds:DescribeDBSnapshots", "arn:aws:rds:us-west-2:123456789012:snapshot:lifeboat-orders-prod-1"),
    ("rds:DescribeDBClusterSnapshots", "arn:aws:rds:us-west-2:123456789012:cluster-snapshot:lifeboat-ledger-1"),
    ("rds:DescribeDBSubnetGroups", "arn:aws:rds:us-west-2:123456789012:subgrp:dr-db"),
    ("rds:DescribeDBParameterGroups", "arn:aws:rds:us-west-2:123456789012:pg:orders"),
    ("rds:DescribeDBClusterParameterGroups", "arn:aws:rds:us-west-2:123456789012:cluster-pg:ledger"),
    ("rds:DescribeOptionGroups", "arn:aws:rds:us-west-2:123456789012:og:orders"),
    ("rds:DescribeOrderableDBInstanceOptions", "*"),
    ("ec2:DescribeSecurityGroups", "*"),
    ("cloudwatch:GetMetricStatistics", "*"),
    ("kms:DescribeKey", "arn:aws:kms:us-west-2:123456789012:key/dr"),
    // The DR key's policy, which decides whether the failover's role may use the key at all.
    ("kms:GetKeyPolicy", "arn:aws:kms:us-west-2:123456789012:key/dr"),
    ("route53:ListResourceRecordSets", "arn:aws:route53:::hostedzone/Z1"),
    (
        "route53-recovery-cluster:GetRoutingControlState",
        "arn:aws:route53-recovery-control::123456789012:controlpanel/p/routingcontrol/west",
    ),
    // The endpoint parameter the config names, and the approval key.
    ("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/orders-prod/endpoint"),
    ("ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/approval-key"),
    ("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/IncidentsTable.Arn"),
    // What it remembers of every database, in batches.
    ("dynamodb:BatchGetItem", "arn:aws:dynamodb:us-east-1:123456789012:table/IncidentsTable.Arn"),
    ("dynamodb:BatchWriteItem", "arn:aws:dynamodb:us-east-1:123456789012:table/IncidentsTable.Arn"),
];

/// Readiness is never blind for want of a permission: rpo-monitor's role allows every read it
/// makes (DescribeGlobalClusters and the snapshot quotas included); those reads, which once sat on
/// the copier's role, are gone from it, as is its `ssm:GetParameter` on every parameter — the
/// copier keeps the reads it makes itself, its sweep's snapshot quotas among them.
#[test]
fn rpo_monitors_role_holds_every_read_readiness_makes_and_the_copiers_none() {
    let monitor = lifeboat_tests::template_statements("RpoMonitorFunction", "us-east-1");
    for (action, resource) in READINESS_CALLS {
        assert!(role_allows(&monitor, action, resource), "rpo-monitor's role may not {action} on {resource}");
    }

    let copier = lifeboat_tests::template_statements("SnapshotCopierFunction", "us-east-1");
    let any_parameter = "arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/orders-prod/endpoint";
    assert!(!role_allows(&copier, "ssm:GetParameter", any_parameter), "the copier reads only the config parameter");
    assert!(role_allows(&copier, "ssm:GetParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/lifeboat/config"));
    let copier_reads = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots", "rds:DescribeAccountAttributes"];
    for (action, resource) in
        READINESS_CALLS.iter().filter(|(a, _)| a.starts_with("rds:Describe") || a.starts_with("route53:"))
    {
        let mine = copier_reads.contains(action);
        assert_eq!(role_allows(&copier, action, resource), mine, "the copier's role and {action}");
    }
}

/// The recoverability report reads last drills and readiness verdicts 100 keys a BatchGetItem, in
/// dr-drill and in `lifeboat status` (which runs it with the operator's read-only policy); the
/// schedule reads last drills so too.
#[test]
fn the_reports_batched_reads_are_allowed_to_dr_drill_and_the_operators_read_only_policy() {
    let table = "arn:aws:dynamodb:us-east-1:123456789012:table/IncidentsTable.Arn";
    let drill = lifeboat_tests::template_statements("DrDrillFunction", "us-east-1");
    let operator = lifeboat_tests::managed_policy_statements("OperatorReadOnlyPolicy", "us-east-1");
    for (who, statements) in [("dr-drill's role", &drill), ("the read-only policy", &operator)] {
        assert!(role_allows(statements, "dynamodb:BatchGetItem", table), "{who} may not BatchGetItem");
        assert!(!role_allows(statements, "dynamodb:BatchWriteItem", table), "{who} need not BatchWriteItem");
    }
}

/// The evidence bucket's policy as deployed: `${EvidenceBucket.Arn}` as `arn:aws:s3:::lifeboat-evidence`,
/// a role's `!GetAtt X.Arn` as this account's role named X.
fn evidence_bucket_policy() -> serde_json::Value {
    fn resolve(v: &Value) -> serde_json::Value {
        match v {
            Value::Tagged(t) if t.tag == "Sub" => {
                serde_json::json!(text(&t.value)
                    .unwrap_or_default()
                    .replace("${EvidenceBucket.Arn}", "arn:aws:s3:::lifeboat-evidence"))
            }
            Value::Tagged(t) if t.tag == "GetAtt" => match text(&t.value).unwrap_or_default() {
                "EvidenceBucket.Arn" => serde_json::json!("arn:aws:s3:::lifeboat-evidence"),
                role => serde_json::json!(format!(
                    "arn:aws:iam::{}:role/{}",
                    lifeboat_tests::ACCOUNT,
                    role.trim_end_matches(".Arn")
                )),
            },
            Value::Tagged(t) => resolve(&t.value),
            Value::Mapping(m) => serde_json::Value::Object(
                m.iter().map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), resolve(v))).collect(),
            ),
            Value::Sequence(l) => serde_json::Value::Array(l.iter().map(resolve).collect()),
            Value::String(s) => serde_json::json!(s),
            Value::Bool(b) => serde_json::json!(b.to_string()),
            Value::Number(n) => serde_json::json!(n.to_string()),
            Value::Null => serde_json::Value::Null,
        }
    }
    resolve(&resource(&template(), "EvidenceBucketPolicy")["Properties"]["PolicyDocument"])
}

/// The evidence bucket's policy itself, evaluated with the writer's role by the emulator's IAM
/// evaluation (SimulatePrincipalPolicy with the bucket policy as its ResourcePolicy; moto enforces
/// no bucket policy, AWS does): a writer's PutObject with `If-None-Match` is allowed, without it
/// (an overwrite) denied; deletes are denied to every principal, writers included; another role
/// allowed `s3:*` by its own policy can't write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_evidence_bucket_policy_allows_only_a_writers_first_write_and_no_delete() {
    use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType as D};
    let moto = lifeboat_tests::Moto::start();
    let region = "us-east-1";
    let notifier = lifeboat_tests::role_with(
        &moto,
        "NotifierFunctionRole",
        &lifeboat_tests::template_statements("NotifierFunction", region),
    )
    .await;
    let drill = lifeboat_tests::role_with(
        &moto,
        "DrDrillFunctionRole",
        &lifeboat_tests::template_statements("DrDrillFunction", region),
    )
    .await;
    let admin = lifeboat_tests::role_with(
        &moto,
        "AccountAdmin",
        &[serde_json::json!({"Effect": "Allow", "Action": "*", "Resource": "*"})],
    )
    .await;
    let bucket_policy = evidence_bucket_policy().to_string();
    let iam = aws_sdk_iam::Client::new(&moto.sdk(region).await);
    let decide = |role: String, action: &'static str, key: &'static str, if_none_match: bool| {
        let iam = iam.clone();
        let bucket_policy = bucket_policy.clone();
        async move {
            let entry = |k: &str, v: &str| {
                ContextEntry::builder()
                    .context_key_name(k)
                    .context_key_values(v)
                    .context_key_type(ContextKeyTypeEnum::String)
                    .build()
            };
            let mut context = vec![entry("aws:PrincipalArn", &role), entry("aws:SecureTransport", "true")];
            if if_none_match {
                context.push(entry("s3:if-none-match", "*"));
            }
            let answer = iam
                .simulate_principal_policy()
                .policy_source_arn(&role)
                .action_names(action)
                .resource_arns(format!("arn:aws:s3:::lifeboat-evidence/{key}"))
                .resource_policy(bucket_policy)
                .set_context_entries(Some(context))
                .send()
                .await
                .expect("simulate");
            answer.evaluation_results()[0].eval_decision().clone()
        }
    };
    let record = "failovers/orders-prod/x.json";
    assert_eq!(decide(notifier.clone(), "s3:PutObject", record, true).await, D::Allowed, "a first write");
    assert_eq!(decide(notifier.clone(), "s3:PutObject", record, false).await, D::ExplicitDeny, "an overwrite");
    assert_eq!(decide(drill.clone(), "s3:PutObject", "drills/orders-prod/x.json", true).await, D::Allowed);
    assert_eq!(decide(drill.clone(), "s3:PutObject", "drills/orders-prod/x.json", false).await, D::ExplicitDeny);
    for who in [&notifier, &drill, &admin] {
        for action in ["s3:DeleteObject", "s3:DeleteObjectVersion"] {
            assert_eq!(decide(who.clone(), action, record, false).await, D::ExplicitDeny, "{who} {action}");
        }
    }
    assert_eq!(decide(admin.clone(), "s3:PutObject", record, true).await, D::ExplicitDeny, "not a writer");
    // Noncurrent versions are kept as long as current ones, and Object Lock is on unless opted out.
    let t = template();
    let rule = &resource(&t, "EvidenceBucket")["Properties"]["LifecycleConfiguration"]["Rules"][0];
    assert!(is_ref(rule["NoncurrentVersionExpiration"].get("NoncurrentDays"), "EvidenceRetentionDays"), "{rule:?}");
    let lock = &t["Parameters"]["EvidenceObjectLock"];
    assert_eq!(lock["Default"].as_str(), Some("COMPLIANCE"));
    assert!(t["Outputs"].get("EvidenceLock").is_some(), "the outputs say which lock holds the evidence");
}

/// Against the emulator, an evidence bucket under Object Lock (compliance): a second write of a
/// record through the writers' path (`If-None-Match: *`) is refused with 412 and the original
/// survives; deleting the original version, or shortening its retention first, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evidence_overwrite_is_refused_and_the_locked_original_survives() {
    let moto = lifeboat_tests::Moto::start();
    let region = "us-east-1";
    let bucket = lifeboat_tests::evidence_bucket(&moto, region).await;
    let sdk = moto.sdk(region).await;
    let writer = lifeboat_core::aws::evidence::EvidenceBucket::new(&sdk, &bucket);
    let record = |text: &str| lifeboat_core::message::evidence::Evidence {
        key: "failovers/orders-prod/20261201T1402Z".into(),
        json: serde_json::json!({ "said": text }),
        markdown: text.to_owned(),
    };
    assert!(writer.put_once(&record("the original")).await.expect("first write"), "written");
    assert!(!writer.put_once(&record("a rewrite")).await.expect("second write"), "already kept: nothing written");
    let s3 = aws_sdk_s3::Client::new(&sdk);
    let again = s3
        .put_object()
        .bucket(&bucket)
        .key("failovers/orders-prod/20261201T1402Z.md")
        .if_none_match("*")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"a rewrite"))
        .send()
        .await
        .expect_err("a second write is refused");
    assert_eq!(again.raw_response().map(|r| r.status().as_u16()), Some(412), "{again:?}");
    let kept = lifeboat_tests::evidence(&moto, region, &bucket).await;
    assert_eq!(kept.len(), 2, "one version each of the JSON and the page: {kept:?}");
    assert!(kept.iter().all(|(_, body)| body.contains("the original")), "{kept:?}");

    let versions = s3.list_object_versions().bucket(&bucket).send().await.expect("versions");
    let original =
        versions.versions().iter().find(|v| v.key() == Some("failovers/orders-prod/20261201T1402Z.md")).expect("page");
    let version = original.version_id().expect("version id").to_owned();
    let key = original.key().expect("key").to_owned();
    let gone = s3.delete_object().bucket(&bucket).key(&key).version_id(&version).send().await;
    assert!(gone.is_err(), "a locked version can't be deleted: {gone:?}");
    let retain = |mode: aws_sdk_s3::types::ObjectLockRetentionMode, seconds: i64| {
        let until = aws_sdk_s3::primitives::DateTime::from_secs(chrono::Utc::now().timestamp() + seconds);
        let retention = aws_sdk_s3::types::ObjectLockRetention::builder().mode(mode).retain_until_date(until).build();
        s3.put_object_retention().bucket(&bucket).key(&key).version_id(&version).retention(retention).send()
    };
    let shorter = retain(aws_sdk_s3::types::ObjectLockRetentionMode::Compliance, 60).await;
    assert!(shorter.is_err(), "compliance retention can't be shortened: {shorter:?}");
    let governance = retain(aws_sdk_s3::types::ObjectLockRetentionMode::Governance, 30 * 86_400).await;
    assert!(governance.is_err(), "nor its mode changed: {governance:?}");
    let gone = s3.delete_object().bucket(&bucket).key(&key).version_id(&version).send().await;
    assert!(gone.is_err(), "still locked: {gone:?}");
    let kept = lifeboat_tests::evidence(&moto, region, &bucket).await;
    assert!(kept.iter().any(|(k, body)| k == &key && body == "the original"), "{kept:?}");
}

/// `!Sub` text as CloudFormation would make it for the stack `stack` in `region`.
fn sub_as_deployed(v: &Value, stack: &str, region: &str) -> Option<String> {
    Some(
        text(v)?
            .replace("${AWS::StackName}", stack)
            .replace("${AWS::Partition}", "aws")
            .replace("${AWS::Region}", region)
            .replace("${AWS::AccountId}", "123456789012"),
    )
}

/// Every rule or schedule in template.yaml whose `DeadLetterConfig` names the dead-letter queue,
/// as the ARN EventBridge sends with (`aws:SourceArn`), or why it has none: a SAM event
/// (`Type: EventBridgeRule | Schedule`, its `RuleName`/`Name`), an `AWS::Events::Rule` (its
/// `Name`, the DLQ on a target), or a scheduler schedule (`ScheduleV2`, `AWS::Scheduler::Schedule`).
fn rules_naming_the_dead_letter_queue(template: &Value, stack: &str, region: &str) -> Vec<(String, String)> {
    fn names_queue(v: &Value) -> bool {
        matches!(v.get("Arn"), Some(Value::Tagged(t)) if t.tag == "GetAtt" && text(&t.value) == Some("DeadLetterQueue.Arn"))
    }
    // `kind` and `name`: the nearest enclosing `Type` and `Name`/`RuleName`.
    fn walk(v: &Value, kind: &str, name: Option<&Value>, at: &str, out: &mut Vec<(String, Option<Value>, String)>) {
        match v {
            Value::Mapping(m) => {
                let kind = m.get("Type").and_then(Value::as_str).unwrap_or(kind);
                let props = m.get("Properties");
                let here = m.get("RuleName").or_else(|| m.get("Name"));
                let name = here.or_else(|| props.and_then(|p| p.get("RuleName").or_else(|| p.get("Name")))).or(name);
                if m.get("DeadLetterConfig").is_some_and(names_queue) {
                    out.push((kind.to_owned(), name.cloned(), at.to_owned()));
                }
                for (k, x) in m {
                    walk(x, kind, name, &format!("{at}.{}", k.as_str().unwrap_or("?")), out);
                }
            }
            Value::Sequence(l) => {
                l.iter().enumerate().for_each(|(i, x)| walk(x, kind, name, &format!("{at}[{i}]"), out))
            }
            Value::Tagged(t) => walk(&t.value, kind, name, at, out),
            _ => {}
        }
    }
    let mut found = Vec::new();
    let Some(Value::Mapping(resources)) = template.get("Resources") else { panic!("no Resources") };
    for (id, r) in resources {
        walk(r, "", None, id.as_str().unwrap_or("?"), &mut found);
    }
    found
        .into_iter()
        .map(|(kind, name, at)| {
            let name = name.and_then(|n| sub_as_deployed(&n, stack, region));
            let arn = match (kind.as_str(), name) {
                (_, None) => format!("(no name: EventBridge names it, and no prefix can admit it) {kind}"),
                ("Schedule" | "EventBridgeRule" | "CloudWatchEvent" | "AWS::Events::Rule", Some(n)) => {
                    format!("arn:aws:events:{region}:123456789012:rule/{n}")
                }
                ("ScheduleV2" | "AWS::Scheduler::Schedule", Some(n)) => {
                    format!("arn:aws:scheduler:{region}:123456789012:schedule/default/{n}")
                }
                (other, Some(n)) => format!("(unknown kind {other}) {n}"),
            };
            (at, arn)
        })
        .collect()
}

/// Whether DeadLetterQueuePolicy, as deployed for `stack`, lets EventBridge send from `source`.
fn dead_letter_queue_admits(template: &Value, stack: &str, region: &str, source: &str) -> bool {
    let policy = &template["Resources"]["DeadLetterQueuePolicy"]["Properties"]["PolicyDocument"];
    policy["Statement"].as_sequence().into_iter().flatten().filter(|s| allows(s)).any(|s| {
        let events = s["Principal"]["Service"].as_str() == Some("events.amazonaws.com");
        let sends = list(s.get("Action")).iter().any(|a| glob(a, "sqs:SendMessage"));
        let arns = |op: &str| -> Vec<String> {
            match s.get("Condition").and_then(|c| c.get(op)).and_then(|o| o.get("aws:SourceArn")) {
                Some(Value::Sequence(l)) => l.iter().filter_map(|x| sub_as_deployed(x, stack, region)).collect(),
                Some(v) => sub_as_deployed(v, stack, region).into_iter().collect(),
                None => Vec::new(),
            }
        };
        let like = arns("ArnLike").iter().any(|p| glob(p, source));
        let equal = arns("ArnEquals").iter().any(|p| p == source);
        events && sends && (like || equal)
    })
}

/// An event that failed every retry is kept only if the queue's policy admits the rule that
/// sends it: every rule and schedule of the stack that names the dead-letter queue (the replica
/// events and the readiness schedule were once missing) is named under the stack's prefix and
/// admitted; another stack's rule, or another account's, is not.
#[test]
fn the_dead_letter_queue_admits_every_rule_that_sends_to_it_and_no_other() {
    let t = template();
    let (stack, region) = ("lifeboat-prod", "us-west-2");
    let rules = rules_naming_the_dead_letter_queue(&t, stack, region);
    assert!(rules.len() >= 12, "found only {} rules naming the queue: is the walk right? {rules:?}", rules.len());
    for (at, arn) in &rules {
        assert!(
            arn.starts_with(&format!("arn:aws:events:{region}:123456789012:rule/{stack}-")),
            "{at}: {arn} is not named under the stack's prefix {stack}-"
        );
        assert!(dead_letter_queue_admits(&t, stack, region, arn), "{at}: the queue's policy refuses {arn}");
    }
    for named in ["failover-replica", "readiness"] {
        assert!(rules.iter().any(|(_, arn)| arn.ends_with(&format!("rule/{stack}-{named}"))), "{named}: {rules:?}");
    }
    for stranger in [
        format!("arn:aws:events:{region}:123456789012:rule/other-stack-health"),
        format!("arn:aws:events:{region}:210987654321:rule/{stack}-health"),
        format!("arn:aws:events:us-east-1:123456789012:rule/{stack}-health"),
    ] {
        assert!(!dead_letter_queue_admits(&t, stack, region, &stranger), "the queue admits {stranger}");
    }
}
