//! Huawei KPS specifics on the emulator: batching, the 10-VM window, task
//! polling, re-signing, the three binding modes, and both auth modes.

mod support;

use std::time::Duration;

use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::{BindRequest, Error, FailureKind, InstanceId, InstanceOutcome, KeypairBinder, VmCredential};
use keypair_binder_emulator::{
    Cloud, DEFAULT_KEYPAIR, Fault, FaultRates, InstanceSpec, Inventory, KeypairSpec, Os, ScriptedFault, VmState,
    private_key_for,
};
use support::*;

const HW: Cloud = Cloud::Huawei;

#[tokio::test]
async fn twenty_five_vms_take_three_batches_of_at_most_ten() {
    let emu = emulator().instances(25).start().await.unwrap();
    let ids = emu.inventory().ids(HW);
    let report = huawei(&emu).build().unwrap().bind(bind_request(HW, &emu, &ids)).await.unwrap();
    assert!(report.all_bound());
    let batches: Vec<usize> =
        emu.request_log().iter().filter(|e| e.action == "BatchAssociateKeypair").map(|e| e.instances).collect();
    assert_eq!(batches.len(), 3);
    assert!(batches.iter().all(|n| *n <= 10));
    assert_eq!(batches.iter().sum::<usize>(), 25);
    assert!(emu.calls("ListKeypairTask") >= 25, "every task polled to its end");
}

#[tokio::test]
async fn the_window_of_ten_is_filled_and_never_exceeded() {
    let emu = emulator().instances(100).task_duration(Duration::from_millis(60)).start().await.unwrap();
    let ids = emu.inventory().ids(HW);
    let request = BindRequest::builder()
        .keypair_name(DEFAULT_KEYPAIR)
        .instances(ids)
        .credential(VmCredential::password(&emu.credentials().huawei.vm_password))
        .concurrency(6)
        .build()
        .unwrap();
    let report = huawei(&emu).build().unwrap().bind(request).await.unwrap();
    assert!(report.all_bound());
    assert_eq!(emu.max_in_operation(), 10);
}

fn inventory(instances: Vec<InstanceSpec>) -> Inventory {
    let keypairs = [DEFAULT_KEYPAIR, "kp-old"]
        .iter()
        .map(|name| KeypairSpec {
            provider: HW,
            name: name.to_string(),
            id: None,
            private_key: None,
            public_key: None,
            region: None,
            account: None,
        })
        .collect();
    Inventory { instances, keypairs }
}

fn vm(id: &str) -> InstanceSpec {
    InstanceSpec::new(HW, id)
}

#[tokio::test]
async fn a_failed_task_reports_its_reason_and_is_never_resubmitted() {
    let emu = emulator()
        .task_duration(Duration::from_millis(900))
        .inventory(inventory(vec![vm("vm-good"), InstanceSpec { os: Os::Windows, ..vm("vm-windows") }]))
        .start()
        .await
        .unwrap();
    let ids = vec!["vm-good".to_string(), "vm-windows".to_string()];
    let report = huawei(&emu).build().unwrap().bind(bind_request(HW, &emu, &ids)).await.unwrap();
    assert!(report.outcomes[0].1.is_bound());
    match &report.outcomes[1].1 {
        InstanceOutcome::Failed(f) => {
            assert!(f.message.contains("does not support key pair"), "{f}");
            assert_eq!(f.code.as_deref(), Some("KPS.0002"));
            assert!(!f.retryable);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(emu.calls("BatchAssociateKeypair"), 1, "a FAILED task is final");
    assert_eq!(emu.calls("ListFailedTask"), 1);
    assert!(emu.calls("ListKeypairTask") >= 4, "READY and RUNNING were polled through");
}

#[tokio::test]
async fn throttled_submission_is_resent_signed_anew() {
    let rates = FaultRates { retry_after: Duration::from_millis(1100), ..FaultRates::default() };
    let emu = emulator()
        .instances(3)
        .faults(rates)
        .script(ScriptedFault { cloud: Some(HW), action: Some("BatchAssociateKeypair".into()), fault: Fault::Throttle })
        .start()
        .await
        .unwrap();
    let ids = emu.inventory().ids(HW);
    let report = huawei(&emu).build().unwrap().bind(bind_request(HW, &emu, &ids)).await.unwrap();
    assert!(report.all_bound());
    let attempts: Vec<_> = emu.request_log().into_iter().filter(|e| e.action == "BatchAssociateKeypair").collect();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status, 429);
    assert_ne!(attempts[0].signed_at, attempts[1].signed_at, "a fresh X-Sdk-Date on the retry");
}

#[tokio::test]
async fn replace_with_the_current_key_and_reset_of_stopped_vms() {
    let emu = emulator()
        .inventory(inventory(vec![
            InstanceSpec { keypair: Some("kp-old".into()), ..vm("vm-a") },
            InstanceSpec { keypair: Some("kp-old".into()), ..vm("vm-b") },
            InstanceSpec { state: VmState::Stopped, ..vm("vm-stopped") },
        ]))
        .start()
        .await
        .unwrap();
    let binder = huawei(&emu).build().unwrap();
    let replace = BindRequest::builder()
        .keypair_name(DEFAULT_KEYPAIR)
        .instances(["vm-a", "vm-b"])
        .credential(VmCredential::private_key(private_key_for("kp-old")))
        .build()
        .unwrap();
    assert!(binder.bind(replace).await.unwrap().all_bound());
    let reset = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instance("vm-stopped").build().unwrap();
    assert!(binder.bind(reset).await.unwrap().all_bound());
    assert_eq!(emu.calls("AssociateKeypair"), 3);
    assert_eq!(emu.calls("BatchAssociateKeypair"), 0);
    for id in ["vm-a", "vm-b", "vm-stopped"] {
        assert_eq!(emu.binding(HW, id).as_deref(), Some(DEFAULT_KEYPAIR));
    }
    let wrong_key = BindRequest::builder()
        .keypair_name("kp-old")
        .instance("vm-a")
        .credential(VmCredential::private_key(
            "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-it\n-----END OPENSSH PRIVATE KEY-----",
        ))
        .build()
        .unwrap();
    let report = binder.bind(wrong_key).await.unwrap();
    assert!(matches!(&report.outcomes[0].1, InstanceOutcome::Failed(f) if f.message.contains("log in")));
    assert_eq!(emu.binding(HW, "vm-a").as_deref(), Some(DEFAULT_KEYPAIR));
}

#[tokio::test]
async fn password_mode_obtains_refreshes_and_recovers_tokens() {
    let emu = emulator().instances(30).token_lifetime(Duration::from_millis(400)).start().await.unwrap();
    let c = emu.credentials().huawei.clone();
    let binder = HuaweiBinder::builder()
        .endpoint(emu.base_url().as_str())
        .iam_endpoint(emu.base_url().as_str())
        .region(&c.region)
        .password(&c.user, &c.password, &c.domain)
        .retry_policy(fast_retry())
        .polling(fast_polling())
        .build()
        .unwrap();
    let ids = emu.inventory().ids(HW);
    let report = binder.bind(bind_request(HW, &emu, &ids[..20])).await.unwrap();
    assert!(report.all_bound());
    let obtained = emu.calls("iam:CreateToken");
    assert!(obtained >= 1);
    // Proactive refresh: the next run, in the last fifth of the lifetime, takes a new token.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(binder.bind(bind_request(HW, &emu, &ids[20..25])).await.unwrap().all_bound());
    assert!(emu.calls("iam:CreateToken") > obtained);
    // Revoked tokens: one 401 (the run's first call goes alone), one new token, and the run goes on.
    let before = emu.calls("iam:CreateToken");
    emu.revoke_tokens();
    assert!(binder.bind(bind_request(HW, &emu, &ids[25..])).await.unwrap().all_bound());
    assert_eq!(emu.calls("iam:CreateToken"), before + 1);
    assert_eq!(emu.request_log().iter().filter(|e| e.status == 401).count(), 1);
}

#[tokio::test]
async fn given_token_temporary_keys_and_project_lookup() {
    let emu = emulator().instances(3).start().await.unwrap();
    let c = emu.credentials().huawei.clone();
    let ids = emu.inventory().ids(HW);
    let token = huawei(&emu).token(&c.token).build().unwrap();
    assert!(token.bind(bind_request(HW, &emu, &ids[..1])).await.unwrap().all_bound());
    let temporary = huawei(&emu).temporary_access_key(&c.temp_ak, &c.temp_sk, &c.security_token).build().unwrap();
    assert!(temporary.bind(bind_request(HW, &emu, &ids[1..2])).await.unwrap().all_bound());
    let no_project = HuaweiBinder::builder()
        .endpoint(emu.base_url().as_str())
        .iam_endpoint(emu.base_url().as_str())
        .region(&c.region)
        .credentials(&c.ak, &c.sk)
        .polling(fast_polling())
        .build()
        .unwrap();
    assert!(no_project.bind(bind_request(HW, &emu, &ids[2..])).await.unwrap().all_bound());
    assert_eq!(emu.calls("iam:KeystoneListProjects"), 1);
    // A revoked given token cannot be refreshed: the run is refused as a whole.
    emu.revoke_tokens();
    let err = token.bind(bind_request(HW, &emu, &ids[..1])).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err}");
}

#[tokio::test]
async fn keypair_ids_and_client_tokens_are_refused_before_sending() {
    let emu = emulator().instances(1).start().await.unwrap();
    let binder = huawei(&emu).build().unwrap();
    let by_id = BindRequest::builder().keypair_id("kp-123").instance("x").build().unwrap();
    assert!(matches!(binder.bind(by_id).await, Err(Error::Unsupported { option: "keypair_id", .. })));
    let token = BindRequest::builder().keypair_name("kp").instance("x").client_token("t").build().unwrap();
    assert!(matches!(binder.bind(token).await, Err(Error::Unsupported { option: "client_token", .. })));
    assert_eq!(emu.total_calls(), 0);
}

#[tokio::test]
async fn a_task_outliving_its_timeout_is_unknown() {
    let emu = emulator().instances(1).task_duration(Duration::from_secs(30)).start().await.unwrap();
    let ids = emu.inventory().ids(HW);
    let polling = keypair_binder::huawei::Polling::adaptive(Duration::from_millis(200));
    let report = huawei(&emu).polling(polling).build().unwrap().bind(bind_request(HW, &emu, &ids)).await.unwrap();
    assert!(matches!(&report.outcomes[0].1, InstanceOutcome::Unknown(f) if f.kind == FailureKind::Timeout));
}

/// The converging read gives each VM's state, so one run binds a fleet of
/// running and stopped VMs: running ones in batches with the root password,
/// stopped ones reset one by one without a credential.
#[tokio::test]
async fn running_and_stopped_vms_bind_in_one_run() {
    let mut instances: Vec<InstanceSpec> = (0..12).map(|i| vm(&format!("vm-run-{i}"))).collect();
    instances.extend((0..3).map(|i| InstanceSpec { state: VmState::Stopped, ..vm(&format!("vm-stopped-{i}")) }));
    let ids: Vec<String> = instances.iter().map(|s| s.id.clone()).collect();
    let emu = emulator().inventory(inventory(instances)).start().await.unwrap();
    let report = huawei(&emu).build().unwrap().bind(bind_request(HW, &emu, &ids)).await.unwrap();
    assert!(report.all_bound(), "{:?}", report.outcomes);
    assert_consistent(&emu, HW, &report, Some(DEFAULT_KEYPAIR));
    let log = emu.request_log();
    let batched: Vec<&String> =
        log.iter().filter(|e| e.action == "BatchAssociateKeypair").flat_map(|e| &e.instance_ids).collect();
    let reset: Vec<&String> =
        log.iter().filter(|e| e.action == "AssociateKeypair").flat_map(|e| &e.instance_ids).collect();
    assert_eq!(batched.len(), 12);
    assert_eq!(reset.len(), 3);
    assert!(reset.iter().all(|id| id.starts_with("vm-stopped-")));
}

/// A mixed fleet with the root password only: what KPS would refuse is never
/// sent. No key pair → batch; another key pair → failed unsent (its current
/// private key is needed); stopped → reset; ERROR → read until the wait's
/// bound, then failed unsent. With the current private key, the VM holding
/// another key pair takes the replace path.
#[tokio::test]
async fn a_mixed_fleet_is_sent_only_what_kps_accepts() {
    let ids: Vec<String> = (1..=4).map(|i| format!("6f1c7e2a-0000-4000-8000-00000000010{i}")).collect();
    let (fresh, other_key, stopped, error) = (&ids[0], &ids[1], &ids[2], &ids[3]);
    let instances = vec![
        InstanceSpec::new(Cloud::Huawei, fresh.as_str()),
        InstanceSpec { keypair: Some("kp-old".into()), ..InstanceSpec::new(Cloud::Huawei, other_key.as_str()) },
        InstanceSpec { state: VmState::Stopped, ..InstanceSpec::new(Cloud::Huawei, stopped.as_str()) },
        InstanceSpec { state: VmState::Error, ..InstanceSpec::new(Cloud::Huawei, error.as_str()) },
    ];
    let keypairs = [DEFAULT_KEYPAIR, "kp-old"]
        .map(|name| KeypairSpec {
            provider: Cloud::Huawei,
            name: name.into(),
            id: None,
            private_key: Some(private_key_for(name)),
            public_key: None,
            region: None,
            account: None,
        })
        .to_vec();
    let emu = emulator().inventory(Inventory { instances, keypairs }).start().await.unwrap();
    let binder = huawei(&emu).build().unwrap();
    let wait = Duration::from_secs(2);
    let request = BindRequest::builder()
        .keypair_name(DEFAULT_KEYPAIR)
        .instances(ids.clone())
        .credential(VmCredential::password(&emu.credentials().huawei.vm_password))
        .state_wait(wait)
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let report = binder.bind(request).await.unwrap();
    let took = started.elapsed();
    let outcome = |id: &String| report.outcome(&InstanceId::new(id).unwrap()).unwrap().clone();
    assert!(outcome(fresh).is_bound() && outcome(stopped).is_bound(), "{report:?}");
    match outcome(other_key) {
        InstanceOutcome::Failed(f) => {
            assert_eq!(f.kind, FailureKind::InvalidRequest, "{f}");
            assert!(f.message.contains("current private key"), "{f}");
        }
        other => panic!("{other:?}"),
    }
    match outcome(error) {
        InstanceOutcome::Failed(f) => {
            assert_eq!(f.kind, FailureKind::InvalidState, "{f}");
            assert!(f.retryable && f.message.contains("ERROR"), "{f}");
        }
        other => panic!("{other:?}"),
    }
    assert!(took >= wait - Duration::from_millis(500) && took < wait + Duration::from_secs(3), "{took:?}");
    // Nothing the cloud would refuse was sent: one batch for the fresh VM, one reset for the stopped one.
    let log = emu.request_log();
    let sent = |id: &String| -> Vec<String> {
        let writes = ["BatchAssociateKeypair", "AssociateKeypair", "DisassociateKeypair"];
        log.iter()
            .filter(|e| writes.contains(&e.action.as_str()) && e.instance_ids.contains(id))
            .map(|e| e.action.clone())
            .collect()
    };
    assert_eq!(sent(fresh), ["BatchAssociateKeypair"]);
    assert_eq!(sent(stopped), ["AssociateKeypair"]);
    assert!(sent(other_key).is_empty(), "never sent");
    assert!(sent(error).is_empty(), "never sent");
    assert_eq!(emu.binding(Cloud::Huawei, other_key).as_deref(), Some("kp-old"));

    // With the current private key of the VM holding kp-old: the replace path.
    let request = BindRequest::builder()
        .keypair_name(DEFAULT_KEYPAIR)
        .instance(other_key.as_str())
        .credential(VmCredential::private_key(private_key_for("kp-old")))
        .build()
        .unwrap();
    let report = binder.bind(request).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(emu.binding(Cloud::Huawei, other_key).as_deref(), Some(DEFAULT_KEYPAIR));
}

/// A batch item `SUCCESS` without a `task_id` was delivered: it is settled by
/// reading (its running task found and followed), never reported failed nor sent again.
#[tokio::test]
async fn a_delivered_item_without_a_task_id_is_settled_by_reading() {
    let fault = ScriptedFault {
        cloud: Some(HW),
        action: Some("BatchAssociateKeypair".into()),
        fault: Fault::DeliveredWithoutTaskId,
    };
    let emu = emulator().instances(10).task_duration(Duration::from_millis(300)).script(fault).start().await.unwrap();
    let ids = emu.inventory().ids(HW);
    let report = huawei(&emu).build().unwrap().bind(bind_request(HW, &emu, &ids)).await.unwrap();
    assert!(report.all_bound(), "{report:?}");
    assert_consistent(&emu, HW, &report, Some(DEFAULT_KEYPAIR));
    assert_eq!(emu.calls("BatchAssociateKeypair"), 1, "delivered once, never sent again");
    for id in &ids {
        assert_eq!(emu.applications(HW, id), 1, "{id}");
    }
}
