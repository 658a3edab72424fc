//! Where each moved database serves now (`decide::active`), kept as SSM parameters under
//! `/lifeboat/active/` in the region whose stack recovered it. Why SSM and not the incident table:
//! every function already reads SSM for its config, so the copier and the pruner follow the active
//! side without a DynamoDB client of their own, and the path is the same in every region (a table's
//! name is its stack's). Only failover-steps' role may write under the path (template.yaml).

use aws_sdk_ssm::types::ParameterType;

use super::sdk_error;
use crate::active::Active;
use crate::error::LifeboatError;

pub const ACTIVE_PATH: &str = "/lifeboat/active";
/// "MaxResults: The maximum number of items to return for this call" — valid range 1 to 10
/// (SSM API reference, GetParametersByPath).
const PAGE: i32 = 10;

/// A parameter name may hold only `a-zA-Z0-9_.-` between its slashes (SSM API reference,
/// PutParameter `Name`); a database name may hold what a tag value may (spaces, `:`, `@`, …), so
/// anything else is written as `_` and its hex code.
pub fn parameter_name(database: &str) -> String {
    let mut out = format!("{ACTIVE_PATH}/");
    for c in database.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            out.push(c);
        } else {
            out.extend(format!("_{:x}_", u32::from(c)).chars());
        }
    }
    out
}

/// Every active side recorded in this region. A record that does not parse is logged and left
/// out: the database then follows its config, as before it moved, and `lifeboat status` says so.
pub async fn read_all(ssm: &aws_sdk_ssm::Client) -> Result<Vec<Active>, LifeboatError> {
    let what = format!("ssm:GetParametersByPath {ACTIVE_PATH}");
    let mut pages = ssm.get_parameters_by_path().path(ACTIVE_PATH).max_results(PAGE).into_paginator().send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| sdk_error(&what, e))?;
        for p in page.parameters() {
            match p.value().map(serde_json::from_str::<Active>) {
                Some(Ok(a)) => out.push(a),
                other => {
                    tracing::warn!(parameter = ?p.name(), error = ?other.map(|r| r.err()), "unreadable active side")
                }
            }
        }
    }
    Ok(out)
}

/// Record `a`; false when the same incident recorded it already (a replayed step writes nothing).
/// A record of an older move is replaced: the newest move is where it serves.
pub async fn record(ssm: &aws_sdk_ssm::Client, a: &Active) -> Result<bool, LifeboatError> {
    let name = parameter_name(&a.database);
    let current_side = recorded(ssm, &name).await?;
    // The same incident's (a replayed step), or a newer move's (never undone by an older one).
    if current_side.is_some_and(|c| c.incident == a.incident || c.since > a.since) {
        return Ok(false);
    }
    write(ssm, &name, a).await
}

/// Write `a` as it is now (re-protect adding the way back), unless it is recorded so already.
pub async fn put(ssm: &aws_sdk_ssm::Client, a: &Active) -> Result<bool, LifeboatError> {
    let name = parameter_name(&a.database);
    let current_side = recorded(ssm, &name).await?;
    // Already so, or a newer move's record (a stale copy told to another region must not undo it).
    if current_side.is_some_and(|c| &c == a || c.since > a.since) {
        return Ok(false);
    }
    write(ssm, &name, a).await
}

/// What `name` holds now; None when absent or unreadable (then written over).
async fn recorded(ssm: &aws_sdk_ssm::Client, name: &str) -> Result<Option<Active>, LifeboatError> {
    Ok(super::ssm::parameter(ssm, name).await?.and_then(|v| serde_json::from_str::<Active>(&v).ok()))
}

async fn write(ssm: &aws_sdk_ssm::Client, name: &str, a: &Active) -> Result<bool, LifeboatError> {
    let value = serde_json::to_string(a).map_err(|e| LifeboatError::Rejected(format!("active side: {e}")))?;
    ssm.put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        // Always: two deliveries creating it at once must not fail one with ParameterAlreadyExists.
        .overwrite(true)
        .send()
        .await
        .map_err(|e| sdk_error(&format!("ssm:PutParameter {name}"), e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_name_becomes_a_parameter_name_ssm_accepts() {
        assert_eq!(parameter_name("orders-prod"), "/lifeboat/active/orders-prod");
        let odd = parameter_name("orders prod@eu:1");
        assert_eq!(odd, "/lifeboat/active/orders_20_prod_40_eu_3a_1");
        assert!(odd.chars().all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c)));
        assert_ne!(parameter_name("a b"), parameter_name("a_b"), "two names, two parameters");
    }
}
