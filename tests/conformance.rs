//! One conformance suite, run against every provider on the emulator. Each
//! case checks the report and the emulator's own state.

mod support;

use std::time::Duration;

use keypair_binder::{Error, FailureKind, InstanceOutcome};
use keypair_binder_emulator::{
    Cloud, DEFAULT_KEYPAIR, Fault, FaultRates, InstanceSpec, Inventory, KeypairSpec, Os, ScriptedFault, VmState,
};
use support::*;

async fn bind_one(cloud: Cloud) {
    let emu = emulator().instances(3).start().await.unwrap();
    let ids = emu.inventory().ids(cloud)[..1].to_vec();
    let report = binder(cloud, &emu).bind(bind_request(cloud, &emu, &ids)).await.unwrap();
    assert!(report.all_bound(), "{:?}", report.outcomes);
    assert_eq!(emu.binding(cloud, &ids[0]).as_deref(), Some(DEFAULT_KEYPAIR));
    assert_eq!(emu.applications(cloud, &ids[0]), 1);
    assert_eq!(emu.calls(bind_action(cloud)), 1);
    assert_consistent(&emu, cloud, &report, Some(DEFAULT_KEYPAIR));
}

async fn bind_thousand(cloud: Cloud) {
    let emu = emulator().instances(1000).start().await.unwrap();
    let ids = emu.inventory().ids(cloud);
    let report = binder(cloud, &emu).bind(bind_request(cloud, &emu, &ids)).await.unwrap();
    assert_eq!(report.outcomes.len(), 1000);
    assert!(report.all_bound());
    let minimum = match cloud {
        Cloud::Huawei => 100,
        Cloud::Volcengine => 10,
        Cloud::Alibaba => 20,
        Cloud::Tencent => 10,
    };
    assert_eq!(emu.calls(bind_action(cloud)), minimum);
    assert!(emu.max_in_operation() <= 10);
    assert_consistent(&emu, cloud, &report, Some(DEFAULT_KEYPAIR));
}

async fn unbind(cloud: Cloud) {
    let emu = emulator().instances(5).start().await.unwrap();
    let ids = emu.inventory().ids(cloud);
    let binder = binder(cloud, &emu);
    binder.bind(bind_request(cloud, &emu, &ids)).await.unwrap();
    let report = binder.unbind(unbind_request(cloud, &ids)).await.unwrap();
    assert!(report.all_bound(), "{:?}", report.outcomes);
    for id in &ids {
        assert_eq!(emu.binding(cloud, id), None);
        assert_eq!(emu.applications(cloud, id), 2, "bound once, unbound once");
    }
}

fn vm(cloud: Cloud, id: &str) -> InstanceSpec {
    InstanceSpec::new(cloud, id)
}

/// Instances that fail in each cloud's own ways, and the kind each must report.
fn troubled(cloud: Cloud) -> (Inventory, Vec<(&'static str, Option<FailureKind>)>) {
    let (ok, missing, windows) = match cloud {
        Cloud::Huawei => (
            "6f1c7e2a-0000-4000-8000-000000000001",
            "6f1c7e2a-0000-4000-8000-0000000000ff",
            "6f1c7e2a-0000-4000-8000-000000000002",
        ),
        Cloud::Volcengine => ("i-ok0000000000000001", "i-missing00000000001", "i-windows00000000001"),
        Cloud::Alibaba => ("i-bp1ok000000000001", "i-bp1missing0000001", "i-bp1windows0000001"),
        Cloud::Tencent => ("ins-ok000001", "ins-missing1", "ins-windows1"),
    };
    // CVM binds stopped instances.
    let vm = |cloud: Cloud, id: &str| {
        let state = if cloud == Cloud::Tencent { VmState::Stopped } else { VmState::Running };
        InstanceSpec { state, ..vm(cloud, id) }
    };
    let mut instances = vec![vm(cloud, ok), InstanceSpec { os: Os::Windows, ..vm(cloud, windows) }];
    let mut expected =
        vec![(ok, None), (missing, Some(FailureKind::InvalidRequest)), (windows, Some(FailureKind::InvalidRequest))];
    match cloud {
        Cloud::Huawei => {
            let stopped = "6f1c7e2a-0000-4000-8000-000000000003";
            let bound = "6f1c7e2a-0000-4000-8000-000000000004";
            let wrong_pw = "6f1c7e2a-0000-4000-8000-000000000005";
            instances.push(InstanceSpec { state: VmState::Stopped, ..vm(cloud, stopped) });
            instances.push(InstanceSpec { keypair: Some("kp-old".into()), ..vm(cloud, bound) });
            instances.push(InstanceSpec { password: Some("another".into()), ..vm(cloud, wrong_pw) });
            // The ECS read before sending finds the missing VM gone, and the VM
            // bound to another key pair not replaceable with the root password
            // (both never sent). KPS reports failed tasks with no code. A stopped
            // VM is reset (the ECS read shows it stopped), so it binds.
            expected[1].1 = Some(FailureKind::InstanceNotFound);
            expected.extend([
                (stopped, None),
                (bound, Some(FailureKind::InvalidRequest)),
                (wrong_pw, Some(FailureKind::ProviderError)),
            ]);
        }
        Cloud::Volcengine => {
            let no_agent = "i-noagent00000000001";
            instances.push(InstanceSpec { agent: false, ..vm(cloud, no_agent) });
            expected[1].1 = Some(FailureKind::InstanceNotFound);
            expected[2].1 = Some(FailureKind::UnsupportedImage);
            expected.push((no_agent, Some(FailureKind::UnsupportedImage)));
        }
        Cloud::Alibaba => {
            // AttachKeyPair replaces a bound key pair; Results name the others' reasons.
            let bound = "i-bp1bound000000001";
            instances.push(InstanceSpec { keypair: Some("kp-old".into()), ..vm(cloud, bound) });
            expected[1].1 = Some(FailureKind::InstanceNotFound);
            expected[2].1 = Some(FailureKind::UnsupportedImage);
            expected.push((bound, None));
        }
        Cloud::Tencent => {
            // Running without consent: never sent. A Windows image CVM does not
            // reveal: refused by name in an all-or-nothing answer. An unnamed
            // refusal: isolated by halving the call. A failing agent: the
            // operation ends FAILED with its reason.
            let running = "ins-running1";
            let hidden_windows = "ins-hidewin1";
            let unnamed = "ins-unnamed1";
            let no_agent = "ins-noagent1";
            let later = "ins-ok000002";
            instances.extend([
                InstanceSpec { state: VmState::Running, ..vm(cloud, running) },
                InstanceSpec { os: Os::Windows, image_supported: false, ..vm(cloud, hidden_windows) },
                InstanceSpec { image_supported: false, ..vm(cloud, unnamed) },
                InstanceSpec { agent: false, ..vm(cloud, no_agent) },
                vm(cloud, later),
            ]);
            expected[1].1 = Some(FailureKind::InstanceNotFound);
            expected[2].1 = Some(FailureKind::UnsupportedImage);
            expected.extend([
                (running, Some(FailureKind::InvalidState)),
                (hidden_windows, Some(FailureKind::UnsupportedImage)),
                (unnamed, Some(FailureKind::UnsupportedImage)),
                (no_agent, Some(FailureKind::ProviderError)),
                (later, None),
            ]);
        }
    }
    let keypairs = vec![
        KeypairSpec {
            provider: cloud,
            name: DEFAULT_KEYPAIR.into(),
            id: Some("kp-emulatordefault001".into()),
            private_key: None,
            public_key: None,
            region: None,
            account: None,
        },
        KeypairSpec {
            provider: cloud,
            name: "kp-old".into(),
            id: Some("kp-emulatorold000001".into()),
            private_key: None,
            public_key: None,
            region: None,
            account: None,
        },
    ];
    (Inventory { instances, keypairs }, expected)
}

async fn per_instance_failures(cloud: Cloud) {
    let (inventory, expected) = troubled(cloud);
    let emu = emulator().inventory(inventory).start().await.unwrap();
    let ids: Vec<String> = expected.iter().map(|(id, _)| id.to_string()).collect();
    let report = binder(cloud, &emu).bind(bind_request(cloud, &emu, &ids)).await.unwrap();
    for ((id, outcome), (expected_id, kind)) in report.outcomes.iter().zip(&expected) {
        assert_eq!(id.as_str(), *expected_id);
        match (outcome, kind) {
            (InstanceOutcome::Bound, None) => {}
            (InstanceOutcome::Failed(f), Some(kind)) => {
                assert_eq!(f.kind, *kind, "{cloud:?} {id}: {f}");
                assert!(f.code.is_some() || !f.message.is_empty(), "{cloud:?} {id}: the cloud's reason is kept");
                assert!(!f.retryable, "{cloud:?} {id}");
            }
            other => panic!("{cloud:?} {id}: {other:?}"),
        }
    }
    assert_consistent(&emu, cloud, &report, Some(DEFAULT_KEYPAIR));
}

async fn unknown_key_pair(cloud: Cloud) {
    let emu = emulator().instances(3).start().await.unwrap();
    let ids = emu.inventory().ids(cloud);
    // A space, `*`, `~` and `+`: encoded differently on the wire (Volcengine
    // sends the form encoding, as its SDK does) and in the signed canonical
    // query, so the cloud answering "not found" (not "bad signature") shows
    // each signer signs what it sends.
    let mut request = keypair_binder::BindRequest::builder().keypair_name("no such kp *~+").instances(ids.clone());
    if cloud == Cloud::Huawei {
        request = request.credential(keypair_binder::VmCredential::password(&emu.credentials().huawei.vm_password));
    }
    let report = binder(cloud, &emu).bind(request.build().unwrap()).await.unwrap();
    for (_, outcome) in &report.outcomes {
        assert!(matches!(outcome, InstanceOutcome::Failed(f) if f.kind == FailureKind::KeyPairNotFound), "{outcome:?}");
    }
    // CVM takes key ids: the name is looked up first, and nothing is sent without one.
    let expected = if cloud == Cloud::Tencent { 0 } else { 1 };
    assert_eq!(emu.calls(bind_action(cloud)), expected, "not retried");
}

async fn bad_signature(cloud: Cloud) {
    let emu = emulator().instances(30).start().await.unwrap();
    let ids = emu.inventory().ids(cloud);
    let binder: std::sync::Arc<dyn keypair_binder::KeypairBinder> = match cloud {
        Cloud::Huawei => {
            std::sync::Arc::new(huawei(&emu).credentials(&emu.credentials().huawei.ak, "wrong-secret").build().unwrap())
        }
        Cloud::Volcengine => std::sync::Arc::new(
            volcengine(&emu).credentials(&emu.credentials().volcengine.ak, "wrong-secret").build().unwrap(),
        ),
        Cloud::Alibaba => std::sync::Arc::new(
            alibaba(&emu).credentials(&emu.credentials().alibaba.ak, "wrong-secret").build().unwrap(),
        ),
        Cloud::Tencent => std::sync::Arc::new(
            tencent(&emu).credentials(&emu.credentials().tencent.secret_id, "wrong-secret").build().unwrap(),
        ),
    };
    let err = binder.bind(bind_request(cloud, &emu, &ids)).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err}");
    // Never retried: five failed AK/SK attempts lock a Huawei key.
    // CVM refuses with HTTP 200 and `AuthFailure.*`: every Tencent call here was refused.
    let refused = emu
        .request_log()
        .iter()
        .filter(|e| matches!(e.status, 400 | 401) || (cloud == Cloud::Tencent && e.cloud == Cloud::Tencent))
        .count();
    assert!(refused <= 3, "{refused} refused calls (at most one per chunk in flight)");
    assert!(ids.iter().all(|id| emu.applications(cloud, id) == 0));
}

async fn throttling_with_retry_after(cloud: Cloud) {
    let rates = FaultRates { retry_after: Duration::from_millis(150), ..FaultRates::default() };
    let emu = emulator()
        .instances(5)
        .faults(rates)
        .script(ScriptedFault { cloud: Some(cloud), action: Some(bind_action(cloud).into()), fault: Fault::Throttle })
        .start()
        .await
        .unwrap();
    let ids = emu.inventory().ids(cloud);
    let report = binder(cloud, &emu).bind(bind_request(cloud, &emu, &ids)).await.unwrap();
    assert!(report.all_bound());
    assert_eq!(report.stats.retries, 1);
    // CVM sends no Retry-After.
    if cloud != Cloud::Tencent {
        assert!(report.stats.elapsed >= Duration::from_millis(150), "waited {:?}", report.stats.elapsed);
    }
    let statuses: Vec<u16> =
        emu.request_log().iter().filter(|e| e.action == bind_action(cloud)).map(|e| e.status).collect();
    // ECS answers throttling with 400 `Throttling.User`, CVM with 200 `RequestLimitExceeded`; the others with 429.
    let throttled = match cloud {
        Cloud::Alibaba => 400,
        Cloud::Tencent => 200,
        Cloud::Huawei | Cloud::Volcengine => 429,
    };
    assert_eq!(statuses[0], throttled);
    assert!(statuses[1] < 300);
    assert_consistent(&emu, cloud, &report, Some(DEFAULT_KEYPAIR));
}

async fn dropped_connections(cloud: Cloud) {
    for fault in [Fault::DropBeforeApply, Fault::DropAfterApply] {
        let emu = emulator()
            .instances(4)
            .script(ScriptedFault { cloud: Some(cloud), action: Some(bind_action(cloud).into()), fault: fault.clone() })
            .start()
            .await
            .unwrap();
        let ids = emu.inventory().ids(cloud);
        let report = binder(cloud, &emu).bind(bind_request(cloud, &emu, &ids)).await.unwrap();
        assert_consistent(&emu, cloud, &report, Some(DEFAULT_KEYPAIR));
        match (cloud, &fault) {
            // Volcengine resends under the same ClientToken: the cloud replays, never re-applies.
            (Cloud::Volcengine, _) => assert!(report.all_bound(), "{fault:?}: {:?}", report.outcomes),
            // Alibaba reads the key pairs: applied ones are bound, the others re-issued once.
            (Cloud::Alibaba, _) => {
                assert!(report.all_bound(), "{fault:?}: {:?}", report.outcomes);
                assert!(emu.calls("DescribeInstances") >= 1);
            }
            // Tencent watches the instances' latest operation: one that moved is
            // followed, one that did not within the grace is sent again.
            (Cloud::Tencent, _) => {
                assert!(report.all_bound(), "{fault:?}: {:?}", report.outcomes);
                let expected = if fault == Fault::DropAfterApply { 1 } else { 2 };
                assert_eq!(emu.calls(bind_action(cloud)), expected, "{fault:?}");
            }
            // Huawei finds the running tasks and polls them to their end.
            (Cloud::Huawei, Fault::DropAfterApply) => assert!(report.all_bound(), "{fault:?}: {:?}", report.outcomes),
            // Nothing runs and nothing says whether it was applied: truly unknown, never resent.
            (Cloud::Huawei, _) => {
                assert!(
                    report.outcomes.iter().all(|(_, o)| matches!(o, InstanceOutcome::Unknown(_))),
                    "{:?}",
                    report.outcomes
                );
                assert_eq!(emu.calls(bind_action(cloud)), 1);
            }
        }
    }
}

macro_rules! on_both_clouds {
    ($($case:ident),* $(,)?) => {
        mod huawei {
            $(#[tokio::test] async fn $case() { super::$case(keypair_binder_emulator::Cloud::Huawei).await })*
        }
        mod volcengine {
            $(#[tokio::test] async fn $case() { super::$case(keypair_binder_emulator::Cloud::Volcengine).await })*
        }
        mod alibaba {
            $(#[tokio::test] async fn $case() { super::$case(keypair_binder_emulator::Cloud::Alibaba).await })*
        }
        mod tencent {
            $(#[tokio::test] async fn $case() { super::$case(keypair_binder_emulator::Cloud::Tencent).await })*
        }
    };
}

on_both_clouds!(
    bind_one,
    bind_thousand,
    unbind,
    per_instance_failures,
    unknown_key_pair,
    bad_signature,
    throttling_with_retry_after,
    dropped_connections,
);
