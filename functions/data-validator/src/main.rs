use data_validator::{handle, Deps};
use lifeboat_core::aws::{serve_until, start};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = &Deps::from_env(&start().await).await?;
    serve_until(|event, now, until| handle(deps, event, now, until)).await
}
