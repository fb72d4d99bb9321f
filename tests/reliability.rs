//! Chaos: every provider against an emulator that throttles 30% of calls
//! (with `Retry-After`), fails 5% with a 5xx, drops 2% of connections before
//! applying and 2% after, and jitters its latency. For several seeds, from the
//! emulator's own state: one outcome per instance, nothing applied twice,
//! every `Bound` bound, every `Failed` untouched, `Unknown` only where a
//! dropped connection left the outcome ambiguous, and at least 99% bound.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use keypair_binder::alibaba::AlibabaBinder;
use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::tencent::TencentBinder;
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{InstanceOutcome, KeypairBinder};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator, FaultRates};
use support::*;

fn chaos() -> FaultRates {
    FaultRates {
        throttle: 0.30,
        server_error: 0.05,
        drop_before: 0.02,
        drop_after: 0.02,
        retry_after: Duration::from_millis(20),
        jitter: Duration::from_millis(4),
        ..FaultRates::default()
    }
}

/// The provider's default retry policy; only the emulator's short task times differ from production.
fn default_policy_binder(cloud: Cloud, emu: &Emulator) -> Arc<dyn KeypairBinder> {
    let endpoint = emu.base_url().to_string();
    match cloud {
        Cloud::Huawei => {
            let c = &emu.credentials().huawei;
            Arc::new(
                HuaweiBinder::builder()
                    .endpoint(&endpoint)
                    .region(&c.region)
                    .project_id(&c.project_id)
                    .credentials(&c.ak, &c.sk)
                    .polling(fast_polling())
                    .build()
                    .unwrap(),
            )
        }
        Cloud::Volcengine => {
            let c = &emu.credentials().volcengine;
            Arc::new(
                VolcengineBinder::builder()
                    .endpoint(&endpoint)
                    .region(&c.region)
                    .credentials(&c.ak, &c.sk)
                    .build()
                    .unwrap(),
            )
        }
        Cloud::Alibaba => {
            let c = &emu.credentials().alibaba;
            Arc::new(
                AlibabaBinder::builder()
                    .endpoint(&endpoint)
                    .region(&c.region)
                    .credentials(&c.ak, &c.sk)
                    .build()
                    .unwrap(),
            )
        }
        Cloud::Tencent => {
            let c = &emu.credentials().tencent;
            Arc::new(
                TencentBinder::builder()
                    .endpoint(&endpoint)
                    .region(&c.region)
                    .credentials(&c.secret_id, &c.secret_key)
                    // The emulator shows a started operation at once; CVM may take seconds.
                    .settle_grace(Duration::from_secs(1))
                    .build()
                    .unwrap(),
            )
        }
    }
}

async fn chaos_run(cloud: Cloud, seed: u64, instances: usize) {
    let emu = emulator()
        .instances(instances)
        .seed(seed)
        .latency(Duration::from_millis(1))
        .faults(chaos())
        .start()
        .await
        .unwrap();
    let ids = emu.inventory().ids(cloud);
    let report = default_policy_binder(cloud, &emu).bind(bind_request(cloud, &emu, &ids)).await.unwrap();

    let reported: Vec<&str> = report.outcomes.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(reported, ids.iter().map(String::as_str).collect::<Vec<_>>(), "one outcome per instance, in order");
    assert_consistent(&emu, cloud, &report, Some(DEFAULT_KEYPAIR));

    let log = emu.request_log();
    let faults: usize = log.iter().filter(|e| e.fault.is_some()).count();
    assert!(faults > 0, "seed {seed}: the chaos was real");
    let dropped: HashSet<String> = log
        .iter()
        .filter(|e| e.fault.as_deref().is_some_and(|f| f.starts_with("Drop")))
        .flat_map(|e| e.instance_ids.iter().cloned())
        .collect();
    let (bound, failed, unknown) = report.counts();
    for (id, outcome) in &report.outcomes {
        if let InstanceOutcome::Unknown(f) = outcome {
            assert!(dropped.contains(id.as_str()), "{cloud:?} seed {seed}: {id} unknown without a dropped call: {f}");
        }
    }
    for (id, f) in report.failed() {
        eprintln!("  {cloud:?} seed {seed}: {id} failed: {f}");
    }
    let decided = ids.len() - unknown;
    let rate = bound as f64 / decided as f64;
    assert!(rate >= 0.99, "{cloud:?} seed {seed}: {bound} bound, {failed} failed, {unknown} unknown ({faults} faults)");
    if cloud == Cloud::Volcengine {
        assert_eq!(unknown, 0, "a ClientToken makes every drop safe to resend");
    }
    eprintln!(
        "{cloud:?} seed {seed}: {bound} bound, {failed} failed, {unknown} unknown; {} calls, {faults} faults, {} retries",
        log.len(),
        report.stats.retries
    );
}

#[tokio::test]
async fn volcengine_under_chaos() {
    futures::future::join_all([1, 2, 3, 4].map(|seed| chaos_run(Cloud::Volcengine, seed, 2_000))).await;
}

#[tokio::test]
async fn huawei_under_chaos() {
    futures::future::join_all([1, 2, 3].map(|seed| chaos_run(Cloud::Huawei, seed, 150))).await;
}

#[tokio::test]
async fn alibaba_under_chaos() {
    futures::future::join_all([1, 2, 3].map(|seed| chaos_run(Cloud::Alibaba, seed, 1_000))).await;
}

#[tokio::test]
async fn tencent_under_chaos() {
    futures::future::join_all([1, 2, 3].map(|seed| chaos_run(Cloud::Tencent, seed, 1_000))).await;
}
