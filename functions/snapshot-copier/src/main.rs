use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lifeboat_core::aws::{diagnostic, sdk_loader, ConfigSource};
use serde_json::Value;
use snapshot_copier::{handle, Deps};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = sdk_loader().load().await;
    // A broken config fails the init, loudly, before any event is touched.
    let config = ConfigSource::from_env().load(&sdk).await?;
    let deps = Deps::new(config, &sdk);
    run(service_fn(|event: LambdaEvent<Value>| async { handle(&deps, event.payload).await.map_err(diagnostic) })).await
}
