use lifeboat_core::aws::{serve_until, start};
use snapshot_pruner::{handle_until, Deps};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = Deps::from_env(&start().await).await?;
    serve_until(|event: serde_json::Value, now, until| {
        let run = handle_until(&deps, event, now, until);
        async move { run.await.map(|summary| summary.answer()) }
    })
    .await
}
