//! Binds a key pair to a few hundred instances on each emulated cloud, through
//! `Arc<dyn KeypairBinder>`, with no account and no network: the emulator
//! serves Huawei Cloud KPS, Volcengine ECS, Alibaba Cloud ECS and Tencent
//! Cloud CVM on a loopback port, checks every signature, and throttles now
//! and then, as the clouds do.
//!
//! Run: `cargo run --example quickstart`

use std::sync::Arc;
use std::time::Duration;

use keypair_binder::alibaba::AlibabaBinder;
use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::tencent::TencentBinder;
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{BindRequest, KeypairBinder, VmCredential};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator, FaultRates};

const INSTANCES: usize = 300;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let faults = FaultRates { throttle: 0.05, retry_after: Duration::from_millis(200), ..FaultRates::default() };
    let emulator = Emulator::builder()
        .instances(INSTANCES)
        .task_duration(Duration::from_millis(100))
        .faults(faults)
        .seed(2026)
        .start()
        .await?;
    let endpoint = emulator.base_url().to_string();
    let creds = emulator.credentials();
    let (hw, vc, ali, tc) = (&creds.huawei, &creds.volcengine, &creds.alibaba, &creds.tencent);
    println!("emulator listening on {endpoint}");

    // Built as a user's would be from their environment, pointed at the emulator.
    let huawei: Arc<dyn KeypairBinder> = Arc::new(
        HuaweiBinder::builder()
            .endpoint(&endpoint)
            .iam_endpoint(&endpoint)
            .region(&hw.region)
            .project_id(&hw.project_id)
            .credentials(&hw.ak, &hw.sk)
            .build()?,
    );
    let volcengine: Arc<dyn KeypairBinder> = Arc::new(
        VolcengineBinder::builder().endpoint(&endpoint).region(&vc.region).credentials(&vc.ak, &vc.sk).build()?,
    );
    let alibaba: Arc<dyn KeypairBinder> = Arc::new(
        AlibabaBinder::builder().endpoint(&endpoint).region(&ali.region).credentials(&ali.ak, &ali.sk).build()?,
    );

    // CVM takes the key pair by name (looked up once) or by id; its instances here are stopped.
    let tencent: Arc<dyn KeypairBinder> = Arc::new(
        TencentBinder::builder()
            .endpoint(&endpoint)
            .region(&tc.region)
            .credentials(&tc.secret_id, &tc.secret_key)
            .build()?,
    );

    let binders = [
        (Cloud::Huawei, huawei),
        (Cloud::Volcengine, volcengine),
        (Cloud::Alibaba, alibaba),
        (Cloud::Tencent, tencent),
    ];
    for (cloud, binder) in binders {
        let mut request =
            BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(emulator.inventory().ids(cloud));
        if cloud == Cloud::Huawei {
            // Huawei binds in batches with the VMs' root password.
            request = request.credential(VmCredential::password(&hw.vm_password));
        }
        let report = binder.bind(request.build()?).await?;
        let (bound, failed, unknown) = report.counts();
        println!(
            "{:<10} {bound} bound, {failed} failed, {unknown} unknown: {} API calls, {} retries, {:.1?}",
            report.provider, report.stats.api_calls, report.stats.retries, report.stats.elapsed
        );
        for condition in &report.post_conditions {
            println!("{:<10} note: {condition}", "");
        }
    }
    emulator.shutdown().await;
    Ok(())
}
