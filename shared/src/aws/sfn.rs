//! Step Functions: start the failover execution, and answer the approval task.

use aws_sdk_sfn::Client;

use super::{error_code, sdk_error, SdkConfig};
use crate::error::LifeboatError;

pub struct StepFunctions {
    client: Client,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    New(String),
    /// An execution with this name ran or runs already: a redelivered trigger.
    AlreadyStarted(String),
}

/// What answering a task token gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Delivered,
    /// The task was answered before, timed out, or its execution ended: nothing to decide.
    Closed,
}

impl StepFunctions {
    pub fn new(sdk: &SdkConfig) -> Self {
        StepFunctions { client: Client::new(sdk) }
    }

    /// `StartExecution` named `name`. The same name with the same input returns the running
    /// execution; `ExecutionAlreadyExists` (a finished one, or other input) is a redelivery too.
    pub async fn start(&self, state_machine: &str, name: &str, input: &str) -> Result<Started, LifeboatError> {
        match self.client.start_execution().state_machine_arn(state_machine).name(name).input(input).send().await {
            Ok(out) => Ok(Started::New(out.execution_arn)),
            Err(e) if error_code(&e) == Some("ExecutionAlreadyExists") => {
                // Execution ARNs are the state machine's ARN with `execution` and the name.
                let arn = state_machine.replacen(":stateMachine:", ":execution:", 1);
                Ok(Started::AlreadyStarted(format!("{arn}:{name}")))
            }
            Err(e) => Err(sdk_error("states:StartExecution", e)),
        }
    }

    pub async fn succeed(&self, token: &str, output: &str) -> Result<Answered, LifeboatError> {
        let result = self.client.send_task_success().task_token(token).output(output).send().await;
        match result {
            Ok(_) => Ok(Answered::Delivered),
            Err(e) if matches!(error_code(&e), Some("TaskTimedOut" | "TaskDoesNotExist")) => Ok(Answered::Closed),
            Err(e) => Err(sdk_error("states:SendTaskSuccess", e)),
        }
    }

    /// An execution's status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT or ABORTED.
    pub async fn status(&self, execution_arn: &str) -> Result<String, LifeboatError> {
        let out = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| sdk_error("states:DescribeExecution", e))?;
        Ok(out.status().as_str().to_owned())
    }

    /// `error` at most 256 characters, `cause` at most 32768 (the API's limits).
    pub async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<Answered, LifeboatError> {
        let error: String = error.chars().take(256).collect();
        let cause: String = cause.chars().take(32768).collect();
        let result = self.client.send_task_failure().task_token(token).error(error).cause(cause).send().await;
        match result {
            Ok(_) => Ok(Answered::Delivered),
            Err(e) if matches!(error_code(&e), Some("TaskTimedOut" | "TaskDoesNotExist")) => Ok(Answered::Closed),
            Err(e) => Err(sdk_error("states:SendTaskFailure", e)),
        }
    }
}
