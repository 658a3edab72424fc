use lifeboat_core::aws::{serve, start};
use reprotect::{handle, Deps};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = Deps::from_env(&start().await).await?;
    serve(|event: serde_json::Value, now| handle(&deps, event, now)).await
}
