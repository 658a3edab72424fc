// The handler future (SDK calls nested in async fns) is deeper than rustc's default layout limit.
#![recursion_limit = "256"]

use approval_handler::{handle, Deps};
use aws_lambda_events::event::lambda_function_urls::LambdaFunctionUrlRequest;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use lifeboat_core::aws::{required_env, sdk_loader};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let sdk = sdk_loader().load().await;
    let table = required_env("LIFEBOAT_INCIDENTS_TABLE")?;
    let secret = required_env("LIFEBOAT_APPROVAL_SECRET_PARAM")?;
    let deps = Deps::new(&sdk, &table, &secret);
    run(service_fn(|event: LambdaEvent<LambdaFunctionUrlRequest>| async {
        Ok::<_, Error>(handle(&deps, event.payload, chrono::Utc::now()).await)
    }))
    .await
}
