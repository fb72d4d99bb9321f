//! Binds a key pair to Huawei Cloud ECS VMs with your real account.
//!
//! ```sh
//! export HUAWEICLOUD_SDK_AK=… HUAWEICLOUD_SDK_SK=… HW_REGION_NAME=cn-north-4 HUAWEICLOUD_SDK_PROJECT_ID=…
//! export KEYPAIR_BINDER_VM_PASSWORD=…   # running VMs without a key: batch bind with the root password
//! # or KEYPAIR_BINDER_PRIVATE_KEY_FILE=~/.ssh/old_key  # running VMs with a key: replace it
//! # or neither                                          # stopped VMs: reset
//! cargo run --example huawei -- <keypair-name> <server-id>...
//! ```

use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::{BindRequest, Error, KeypairBinder, VmCredential};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((keypair, servers)) = args.split_first().filter(|(_, s)| !s.is_empty()) else {
        eprintln!("usage: cargo run --example huawei -- <keypair-name> <server-id>...");
        std::process::exit(2);
    };
    let binder = match HuaweiBinder::from_env() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let mut request = BindRequest::builder().keypair_name(keypair).instances(servers.iter().cloned());
    if let Ok(password) = std::env::var("KEYPAIR_BINDER_VM_PASSWORD") {
        request = request.credential(VmCredential::password(password));
    } else if let Ok(path) = std::env::var("KEYPAIR_BINDER_PRIVATE_KEY_FILE") {
        let key = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        });
        request = request.credential(VmCredential::private_key(key));
    }
    match run(&binder, request.build()).await {
        Ok(all_bound) => std::process::exit(if all_bound { 0 } else { 3 }),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

async fn run(binder: &HuaweiBinder, request: Result<BindRequest, Error>) -> Result<bool, Error> {
    let report = binder.bind(request?).await?;
    for (id, outcome) in &report.outcomes {
        match outcome.failure() {
            None => println!("{id}: bound"),
            Some(f) => println!("{id}: {f}"),
        }
    }
    for condition in &report.post_conditions {
        println!("note: {condition}");
    }
    Ok(report.all_bound())
}
