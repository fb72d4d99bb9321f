//! Binds a key pair to Volcengine ECS instances with your real account.
//!
//! ```sh
//! export VOLCENGINE_ACCESS_KEY=… VOLCENGINE_SECRET_KEY=… VOLCENGINE_REGION=cn-beijing
//! cargo run --example volcengine -- <keypair-name> <instance-id>...
//! ```

use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{BindRequest, Error, KeypairBinder};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((keypair, instances)) = args.split_first().filter(|(_, s)| !s.is_empty()) else {
        eprintln!("usage: cargo run --example volcengine -- <keypair-name> <instance-id>...");
        std::process::exit(2);
    };
    let binder = match VolcengineBinder::from_env() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("set VOLCENGINE_ACCESS_KEY, VOLCENGINE_SECRET_KEY and VOLCENGINE_REGION (or run `ve configure`)");
            std::process::exit(1);
        }
    };
    let request = BindRequest::builder().keypair_name(keypair).instances(instances.iter().cloned()).build();
    match run(&binder, request).await {
        Ok(all_bound) => std::process::exit(if all_bound { 0 } else { 3 }),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

async fn run(binder: &VolcengineBinder, request: Result<BindRequest, Error>) -> Result<bool, Error> {
    let report = binder.bind(request?).await?;
    for (id, outcome) in &report.outcomes {
        match outcome.failure() {
            None => println!("{id}: attached"),
            Some(f) => println!("{id}: {f}"),
        }
    }
    for condition in &report.post_conditions {
        println!("note: {condition}");
    }
    Ok(report.all_bound())
}
