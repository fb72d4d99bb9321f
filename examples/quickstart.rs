//! Binds a key pair to a few hundred instances through `Arc<dyn KeypairBinder>`,
//! with no account and no network: the in-memory binder stands in for a cloud
//! (including throttling and an instance that does not exist).
//!
//! Run: `cargo run --example quickstart`

use std::sync::Arc;

use keypair_binder::testing::{Behavior, InMemoryBinder};
use keypair_binder::{BindRequest, Failure, FailureKind, KeypairBinder};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let throttled = Failure::new(FailureKind::Throttled, "flow limit exceeded").retryable(true);
    let binder: Arc<dyn KeypairBinder> = Arc::new(
        InMemoryBinder::builder()
            .max_per_call(100)
            .behavior("i-0042", Behavior::RetryThenApply(2, throttled))
            .behavior("i-0099", Behavior::Fail(Failure::new(FailureKind::InstanceNotFound, "no such instance")))
            .build(),
    );

    let ids = (0..300).map(|i| format!("i-{i:04}"));
    let request = BindRequest::builder().keypair_name("ops-2026").instances(ids).build()?;
    let report = binder.bind(request).await?;

    let (bound, failed, unknown) = report.counts();
    println!(
        "{}: {bound} bound, {failed} failed, {unknown} unknown in {} calls ({} retries)",
        report.provider, report.stats.api_calls, report.stats.retries
    );
    for (id, failure) in report.failed() {
        println!("  {id}: {failure}");
    }
    Ok(())
}
