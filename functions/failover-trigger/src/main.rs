use std::time::Duration;

use failover_trigger::{handle, Deps};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lifeboat_core::aws::{diagnostic, required_env, sdk_loader, ConfigCache};
use lifeboat_core::failover::steps::POLL_SECONDS;
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = sdk_loader().load().await;
    let config = ConfigCache::from_env(&sdk).await?;
    let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
    let machine = required_env("LIFEBOAT_FAILOVER_STATE_MACHINE_ARN")?;
    let poll =
        std::env::var("LIFEBOAT_FAILOVER_POLL_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(POLL_SECONDS);
    let deps = Deps::new(config, &sdk, &table, &machine, Duration::from_secs(poll));
    run(service_fn(|event: LambdaEvent<Value>| async {
        handle(&deps, event.payload, chrono::Utc::now()).await.map_err(diagnostic)
    }))
    .await
}
