// The handler future (SDK calls nested in async fns) is deeper than rustc's default layout limit.
#![recursion_limit = "256"]

use lifeboat_core::aws::{serve, start};
use operator::{handle, Deps};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deps = &Deps::from_env(&start().await).await?;
    // Every request gets an answer, AWS trouble included: nothing to report to Lambda as an error.
    serve(|request, now| async move { Ok(handle(deps, request, now).await) }).await
}
