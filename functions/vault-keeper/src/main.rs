use lifeboat_core::aws::{serve, start};
use vault_keeper::{handle, Deps};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = Deps::from_env(&start().await)?;
    serve(|event: serde_json::Value, now| handle(&deps, event, now)).await
}
