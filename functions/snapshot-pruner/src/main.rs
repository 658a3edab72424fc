use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lifeboat_core::aws::{diagnostic, sdk_loader, ConfigCache};
use serde_json::Value;
use snapshot_pruner::{handle, Deps};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = sdk_loader().load().await;
    let config = ConfigCache::from_env(&sdk).await?;
    let topic = std::env::var("LIFEBOAT_TOPIC_ARN").ok().filter(|t| !t.is_empty());
    let deps = Deps::new(config, &sdk, topic.as_deref());
    run(service_fn(|event: LambdaEvent<Value>| async {
        handle(&deps, event.payload, chrono::Utc::now()).await.map_err(diagnostic)
    }))
    .await
}
