use lifeboat_core::aws::{serve, start};
use rpo_monitor::{handle, Deps};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = Deps::from_env(&start().await).await?;
    serve(|event: serde_json::Value, now| {
        let run = handle(&deps, event, now);
        async move { run.await.map(|report| report.answer()) }
    })
    .await
}
