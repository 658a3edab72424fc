use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lifeboat_core::aws::{diagnostic, required_env, sdk_loader, ConfigCache};
use notifier::{handle, Deps};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = sdk_loader().load().await;
    let config = ConfigCache::from_env(&sdk).await?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
    let topic = required_env("LIFEBOAT_TOPIC_ARN")?;
    let mut deps = Deps::new(config, &sdk, &table, &topic, env("LIFEBOAT_CHAT_TOPIC_ARN").as_deref());
    if let (Some(url), Some(secret)) = (env("LIFEBOAT_APPROVAL_URL"), env("LIFEBOAT_APPROVAL_SECRET_PARAM")) {
        deps = deps.with_approval(&sdk, &url, &secret);
    }
    run(service_fn(|event: LambdaEvent<Value>| async {
        handle(&deps, event.payload, chrono::Utc::now()).await.map_err(diagnostic)
    }))
    .await
}
