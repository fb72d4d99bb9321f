//! Imports a public key as a key pair into each region where it is missing,
//! then binds it to a few hundred instances on each emulated cloud, two
//! regions each, as one fleet of eight targets running at once, through
//! `Arc<dyn KeypairBinder>`, with no account and no network: the emulator
//! serves Huawei Cloud KPS, Volcengine ECS, Alibaba Cloud ECS and Tencent
//! Cloud CVM on a loopback port, checks every signature, and throttles now
//! and then, as the clouds do.
//!
//! Run: `cargo run --example quickstart`

use std::sync::Arc;
use std::time::{Duration, Instant};

use keypair_binder::alibaba::AlibabaBinder;
use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::tencent::TencentBinder;
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{BindRequest, Fleet, FleetTarget, KeypairBinder, PublicKey, VmCredential};
use keypair_binder_emulator::{Cloud, DEFAULT_ACCOUNT, Emulator, FaultRates};

const INSTANCES: usize = 300;

/// The key pair to make sure of in every region (Tencent takes letters, digits and `_`).
const KEYPAIR: &str = "ops_2026";
/// Its public key, as `~/.ssh/id_ed25519.pub` holds one.
const PUBLIC_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcurPTkdniudeVIVoKJ47fksQbU+WXB9FUQgaL+HgFV ops@example";

/// Two regions of each cloud.
const REGIONS: [(Cloud, [&str; 2]); 4] = [
    (Cloud::Huawei, ["cn-north-4", "cn-south-1"]),
    (Cloud::Volcengine, ["cn-beijing", "cn-shanghai"]),
    (Cloud::Alibaba, ["cn-hangzhou", "cn-shanghai"]),
    (Cloud::Tencent, ["ap-guangzhou", "ap-shanghai"]),
];

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let faults = FaultRates { throttle: 0.05, retry_after: Duration::from_millis(200), ..FaultRates::default() };
    let emulator = Emulator::builder()
        .instances(INSTANCES)
        .regions(REGIONS.iter().flat_map(|(cloud, regions)| regions.map(|r| (Some(*cloud), r.to_string()))))
        .task_duration(Duration::from_millis(100))
        .faults(faults)
        .seed(2026)
        .start()
        .await?;
    let endpoint = emulator.base_url().to_string();
    let creds = emulator.credentials();
    let (hw, vc, ali, tc) = (&creds.huawei, &creds.volcengine, &creds.alibaba, &creds.tencent);
    let projects = &creds.accounts[DEFAULT_ACCOUNT].huawei.projects;
    println!("emulator listening on {endpoint}");

    // One binder per cloud and region, built as a user's would be, pointed at the emulator.
    let key = PublicKey::parse(PUBLIC_KEY)?;
    let mut targets = Vec::new();
    for (cloud, regions) in REGIONS {
        for region in regions {
            let binder: Arc<dyn KeypairBinder> = match cloud {
                Cloud::Huawei => Arc::new(
                    HuaweiBinder::builder()
                        .endpoint(&endpoint)
                        .iam_endpoint(&endpoint)
                        .region(region)
                        .project_id(&projects[region])
                        .credentials(&hw.ak, &hw.sk)
                        .build()?,
                ),
                Cloud::Volcengine => Arc::new(
                    VolcengineBinder::builder()
                        .endpoint(&endpoint)
                        .region(region)
                        .credentials(&vc.ak, &vc.sk)
                        .build()?,
                ),
                Cloud::Alibaba => Arc::new(
                    AlibabaBinder::builder()
                        .endpoint(&endpoint)
                        .region(region)
                        .credentials(&ali.ak, &ali.sk)
                        .build()?,
                ),
                // CVM takes the key pair by name (looked up once) or by id; its instances here are stopped.
                Cloud::Tencent => Arc::new(
                    TencentBinder::builder()
                        .endpoint(&endpoint)
                        .region(region)
                        .credentials(&tc.secret_id, &tc.secret_key)
                        .build()?,
                ),
            };
            let ids = emulator.inventory().ids_in(cloud, region);
            let mut request = BindRequest::builder().keypair_name(KEYPAIR).instances(ids);
            if cloud == Cloud::Huawei {
                // Huawei binds in batches with the VMs' root password.
                request = request.credential(VmCredential::password(&hw.vm_password));
            }
            // The key pair is imported where it is missing, before anything is bound there.
            let target = FleetTarget::bind(format!("{} {region}", cloud.as_str()), binder, request.build()?);
            targets.push(target.with_public_key(key.clone()));
        }
    }

    // The targets run at once: the fleet takes about as long as its slowest target.
    let started = Instant::now();
    let fleet = Fleet::new(targets).run().await;
    let wall = started.elapsed();
    let mut slowest = Duration::ZERO;
    for target in &fleet.targets {
        match &target.result {
            Ok(report) => {
                let (bound, failed, unknown) = report.counts();
                slowest = slowest.max(report.stats.elapsed);
                let imported = match &target.keypair {
                    Some(k) if k.imported => "imported",
                    Some(_) => "present",
                    None => "-",
                };
                println!(
                    "{:<24} key pair {imported}; {bound} bound, {failed} failed, {unknown} unknown: {} API calls, {} retries, {:.1?}",
                    target.label, report.stats.api_calls, report.stats.retries, report.stats.elapsed
                );
                for condition in &report.post_conditions {
                    println!("{:<24} note: {condition}", "");
                }
            }
            Err(error) => println!("{:<24} not run: {error}", target.label),
        }
    }
    let (bound, failed, unknown, failed_targets) = fleet.counts();
    println!(
        "fleet: {} targets ({failed_targets} failed as a whole), {bound} bound, {failed} failed, {unknown} unknown in {wall:.1?} (slowest target {slowest:.1?})",
        fleet.targets.len()
    );
    emulator.shutdown().await;
    Ok(())
}
