use failover_steps::{handle, Deps};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lifeboat_core::aws::{diagnostic, required_env, sdk_loader, ConfigCache};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = sdk_loader().load().await;
    let config = ConfigCache::from_env(&sdk).await?;
    let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
    let deps = Deps::new(config, &sdk, &table);
    run(service_fn(|event: LambdaEvent<Value>| async {
        handle(&deps, event.payload, chrono::Utc::now()).await.map_err(diagnostic)
    }))
    .await
}
