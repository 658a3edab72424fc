use dr_drill::{handle, Deps};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lifeboat_core::aws::{diagnostic, required_env, sdk_loader, ConfigCache};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = sdk_loader().load().await;
    let config = ConfigCache::from_env(&sdk).await?;
    let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
    let topic = required_env("LIFEBOAT_TOPIC_ARN")?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut deps = Deps::new(config, &sdk, &table, &topic);
    deps.state_machine = env("LIFEBOAT_DRILL_STATE_MACHINE_ARN");
    deps.poll_seconds = env("LIFEBOAT_DRILL_POLL_SECONDS").and_then(|s| s.parse().ok()).unwrap_or(30);
    deps.emulated_endpoints = env("LIFEBOAT_EMULATED_ENDPOINTS").as_deref() == Some("true");
    run(service_fn(|event: LambdaEvent<Value>| async {
        handle(&deps, event.payload, chrono::Utc::now()).await.map_err(diagnostic)
    }))
    .await
}
