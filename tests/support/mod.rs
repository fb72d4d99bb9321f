//! Binders wired to an in-process emulator, with timings fit for tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use keypair_binder::alibaba::{AlibabaBinder, AlibabaBuilder};
use keypair_binder::huawei::{HuaweiBinder, HuaweiBuilder, Polling};
use keypair_binder::tencent::{TencentBinder, TencentBuilder};
use keypair_binder::volcengine::{VolcengineBinder, VolcengineBuilder};
use keypair_binder::{BindRequest, KeypairBinder, RetryPolicy, UnbindRequest, VmCredential};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator, EmulatorBuilder, private_key_for};

pub const CLOUDS: [Cloud; 2] = [Cloud::Huawei, Cloud::Volcengine];

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::default().with_max_retries(6).with_backoff(Duration::from_millis(5), Duration::from_millis(50))
}

/// The default (adaptive) polling, with a task timeout fit for tests.
pub fn fast_polling() -> Polling {
    Polling::adaptive(Duration::from_secs(20))
}

/// An emulator whose Huawei tasks take 20 ms.
pub fn emulator() -> EmulatorBuilder {
    Emulator::builder().task_duration(Duration::from_millis(20)).seed(11)
}

pub fn huawei(emu: &Emulator) -> HuaweiBuilder {
    let c = &emu.credentials().huawei;
    HuaweiBinder::builder()
        .endpoint(emu.base_url().as_str())
        .iam_endpoint(emu.base_url().as_str())
        .region(&c.region)
        .project_id(&c.project_id)
        .credentials(&c.ak, &c.sk)
        .retry_policy(fast_retry())
        .polling(fast_polling())
}

pub fn volcengine(emu: &Emulator) -> VolcengineBuilder {
    let c = &emu.credentials().volcengine;
    VolcengineBinder::builder()
        .endpoint(emu.base_url().as_str())
        .credentials(&c.ak, &c.sk)
        .region(&c.region)
        .retry_policy(fast_retry())
        .throttle_wait(Duration::from_millis(10))
        .state_change_wait(Duration::from_millis(50))
}

pub fn binder(cloud: Cloud, emu: &Emulator) -> Arc<dyn KeypairBinder> {
    match cloud {
        Cloud::Huawei => Arc::new(huawei(emu).build().unwrap()),
        Cloud::Volcengine => Arc::new(volcengine(emu).build().unwrap()),
        Cloud::Alibaba => Arc::new(alibaba(emu).build().unwrap()),
        Cloud::Tencent => Arc::new(tencent(emu).build().unwrap()),
    }
}

/// A Tencent binder that watches an ambiguous call for 300 ms, not 30 s:
/// the emulator shows a started operation at once.
pub fn tencent(emu: &Emulator) -> TencentBuilder {
    let c = &emu.credentials().tencent;
    TencentBinder::builder()
        .endpoint(emu.base_url().as_str())
        .credentials(&c.secret_id, &c.secret_key)
        .region(&c.region)
        .retry_policy(fast_retry())
        .settle_grace(Duration::from_millis(300))
}

pub fn alibaba(emu: &Emulator) -> AlibabaBuilder {
    let c = &emu.credentials().alibaba;
    AlibabaBinder::builder()
        .endpoint(emu.base_url().as_str())
        .credentials(&c.ak, &c.sk)
        .region(&c.region)
        .retry_policy(fast_retry())
}

/// A bind of the default key pair, with what each cloud needs (Huawei: the VMs' root password).
pub fn bind_request(cloud: Cloud, emu: &Emulator, ids: &[String]) -> BindRequest {
    let mut builder = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids.iter().cloned());
    if cloud == Cloud::Huawei {
        builder = builder.credential(VmCredential::password(&emu.credentials().huawei.vm_password));
    }
    builder.build().unwrap()
}

/// An unbind of the default key pair (Huawei: with its private key, for running VMs).
pub fn unbind_request(cloud: Cloud, ids: &[String]) -> UnbindRequest {
    let builder = UnbindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids.iter().cloned());
    match cloud {
        Cloud::Huawei => builder.credential(VmCredential::private_key(private_key_for(DEFAULT_KEYPAIR))),
        Cloud::Volcengine | Cloud::Alibaba | Cloud::Tencent => builder,
    }
    .build()
    .unwrap()
}

/// The call that binds on each cloud.
pub fn bind_action(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Huawei => "BatchAssociateKeypair",
        Cloud::Volcengine | Cloud::Alibaba => "AttachKeyPair",
        Cloud::Tencent => "AssociateInstancesKeyPairs",
    }
}

/// Nothing applied twice; nothing reported bound that is not; nothing reported failed that is.
pub fn assert_consistent(emu: &Emulator, cloud: Cloud, report: &keypair_binder::BindReport, keypair: Option<&str>) {
    for (id, outcome) in &report.outcomes {
        let applied = emu.applications(cloud, id.as_str());
        assert!(applied <= 1, "{cloud:?} {id}: applied {applied} times");
        let bound = emu.binding(cloud, id.as_str());
        match outcome {
            keypair_binder::InstanceOutcome::Bound => {
                assert_eq!(bound.as_deref(), keypair, "{cloud:?} {id}: reported bound")
            }
            keypair_binder::InstanceOutcome::Unchanged => {
                assert_eq!(applied, 0, "{cloud:?} {id}: reported unchanged but applied");
                assert_eq!(bound.as_deref(), keypair, "{cloud:?} {id}: reported unchanged")
            }
            // A Tencent operation that ended FAILED was started once and applied nothing.
            keypair_binder::InstanceOutcome::Failed(f) if cloud == Cloud::Tencent && applied == 1 => {
                assert_ne!(bound.as_deref(), keypair, "{cloud:?} {id}: reported failed ({f}) but holds the key pair");
                assert_eq!(f.code.as_deref(), Some("LatestOperationState.FAILED"), "{cloud:?} {id}: {f}");
            }
            keypair_binder::InstanceOutcome::Failed(f) => {
                assert_eq!(applied, 0, "{cloud:?} {id}: reported failed ({f}) but applied")
            }
            keypair_binder::InstanceOutcome::Unknown(_) => {}
            other => panic!("{cloud:?} {id}: an outcome this check does not know: {other:?}"),
        }
    }
}
