//! Where the stack's resources are: the LIFEBOAT_* variables the functions themselves read, else
//! the stack's outputs (one DescribeStacks, only when a name is missing). Never pasted ARNs.

use aws_config::SdkConfig;
use lifeboat_core::error::LifeboatError;

use crate::commands::CliError;

#[derive(Debug, Default)]
pub struct Names {
    pub table: String,
    /// Where `failover`, `approve`, `reject` and `drill` go (AWS_IAM); the read-only commands
    /// don't need it.
    pub operator_url: String,
    /// The config's SSM parameter; LIFEBOAT_CONFIG_FILE, when set, is read instead.
    pub config_param: String,
    /// The config's S3 object (`s3://bucket/key`), read instead of the parameter when there is one.
    pub config_object: String,
    pub recovers_own: bool,
}

/// (environment variable, stack output)
const NAMES: [(&str, &str); 5] = [
    ("LIFEBOAT_INCIDENTS_TABLE", "IncidentsTableName"),
    ("LIFEBOAT_OPERATOR_URL", "OperatorUrl"),
    ("LIFEBOAT_CONFIG_PARAM", "ConfigParameterName"),
    ("LIFEBOAT_RECOVERS", "Recovers"),
    ("LIFEBOAT_CONFIG_OBJECT", "ConfigObject"),
];

pub async fn resolve(sdk: &SdkConfig, stack: &str) -> Result<Names, CliError> {
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let mut values: Vec<Option<String>> = NAMES.iter().map(|(var, _)| env(var)).collect();
    // What is read comes first (ConfigSource::first_of): a file, else an object, else the
    // parameter; a named one leaves the others unasked.
    if env("LIFEBOAT_CONFIG_FILE").is_some() {
        values[2] = Some(String::new());
        values[4] = Some(String::new());
    } else if values[4].is_some() {
        values[2] = Some(String::new());
    } else if values[2].is_some() {
        values[4] = Some(String::new());
    }
    if values.iter().any(Option::is_none) {
        let cf = aws_sdk_cloudformation::Client::new(sdk);
        let out = cf.describe_stacks().stack_name(stack).send().await.map_err(|e| {
            if lifeboat_core::aws::error_code(&e) == Some("ValidationError") {
                let region = sdk.region().map(|r| r.to_string()).unwrap_or_default();
                return CliError::Problem(format!(
                    "no stack {stack} in {region}: pass --stack and --region, or set {}",
                    NAMES.map(|(var, _)| var).join(", ")
                ));
            }
            CliError::Aws(lifeboat_core::aws::sdk_error(&format!("cloudformation:DescribeStacks {stack}"), e))
        })?;
        let outputs = out.stacks().first().map(|s| s.outputs().to_vec()).unwrap_or_default();
        for (slot, (_, output)) in values.iter_mut().zip(NAMES) {
            if slot.is_none() {
                *slot = outputs
                    .iter()
                    .find(|o| o.output_key() == Some(output))
                    .and_then(|o| o.output_value())
                    .map(str::to_owned);
            }
        }
    }
    let mut it = values.into_iter().zip(NAMES);
    let mut next = |missing_ok: bool| -> Result<String, CliError> {
        match it.next() {
            Some((Some(v), _)) => Ok(v),
            Some((None, _)) if missing_ok => Ok(String::new()),
            Some((None, (var, output))) => Err(CliError::Problem(format!(
                "stack {stack} has no output {output}: deploy the current template, or set {var}"
            ))),
            None => Err(CliError::Aws(LifeboatError::Rejected("names".into()))),
        }
    };
    Ok(Names {
        table: next(false)?,
        operator_url: next(true)?,
        config_param: next(true)?,
        recovers_own: next(true)? == "own",
        // A stack deployed before ConfigObject has no such output: its config is the parameter.
        config_object: next(true)?,
    })
}
