//! The seven problems engine v2 fixed, each shown on the emulator over real
//! HTTP with signatures checked: applied-but-failed, applied twice, the
//! Huawei window and deadline, Huawei 502/504 after applying, refused
//! credentials, fixed polling, and cancellation.

mod support;

use std::sync::Arc;
use std::time::Duration;

use keypair_binder::{
    BindRequest, CancellationToken, Error, FailureKind, InstanceOutcome, KeypairBinder, ProgressEvent, VmCredential,
};
use keypair_binder_emulator::{
    Cloud, DEFAULT_KEYPAIR, Emulator, Fault, FaultRates, InstanceSpec, Inventory, KeypairSpec, ScriptedFault,
};
use support::*;

const HW: Cloud = Cloud::Huawei;
const VC: Cloud = Cloud::Volcengine;

fn script(cloud: Cloud, action: &str, fault: Fault) -> ScriptedFault {
    ScriptedFault { cloud: Some(cloud), action: Some(action.into()), fault }
}

fn hw_request(emu: &Emulator, ids: &[String]) -> keypair_binder::BindRequestBuilder {
    BindRequest::builder()
        .keypair_name(DEFAULT_KEYPAIR)
        .instances(ids.iter().cloned())
        .credential(VmCredential::password(&emu.credentials().huawei.vm_password))
}

/// Instances no call ever named.
fn never_sent(emu: &Emulator, ids: &[String]) -> Vec<String> {
    let log = emu.request_log();
    ids.iter().filter(|id| !log.iter().any(|e| e.instance_ids.contains(id))).cloned().collect()
}

/// 1. A call applied and then dropped, followed by throttling until the
/// deadline, ends `unknown`, never `failed`: the resends carried its token.
#[tokio::test]
async fn applied_then_throttled_to_the_deadline_is_unknown_not_failed() {
    let rates = FaultRates { retry_after: Duration::from_millis(400), ..FaultRates::default() };
    let mut builder = emulator().instances(5).faults(rates).script(script(VC, "AttachKeyPair", Fault::DropAfterApply));
    for _ in 0..50 {
        builder = builder.script(script(VC, "AttachKeyPair", Fault::Throttle));
    }
    let emu = builder.start().await.unwrap();
    let ids = emu.inventory().ids(VC);
    let request = BindRequest::builder()
        .keypair_name(DEFAULT_KEYPAIR)
        .instances(ids.clone())
        .deadline(Duration::from_secs(2))
        .build()
        .unwrap();
    let report = volcengine(&emu).build().unwrap().bind(request).await.unwrap();
    assert_consistent(&emu, VC, &report, Some(DEFAULT_KEYPAIR));
    for (id, outcome) in &report.outcomes {
        assert_eq!(emu.applications(VC, id.as_str()), 1);
        assert!(matches!(outcome, InstanceOutcome::Unknown(_)), "{id}: {outcome:?}");
    }
    assert!(emu.calls("AttachKeyPair") >= 3, "resent through the throttling");
}

/// 1 and 4 on Huawei: a batch applied and answered 502 or 504 is reconciled
/// through the running tasks and followed to its end, never resubmitted.
#[tokio::test]
async fn huawei_gateway_errors_after_applying_are_reconciled() {
    for fault in [Fault::BadGatewayAfterApply, Fault::GatewayTimeoutAfterApply] {
        let emu = emulator()
            .instances(10)
            .task_duration(Duration::from_millis(300))
            .script(script(HW, "BatchAssociateKeypair", fault.clone()))
            .start()
            .await
            .unwrap();
        let ids = emu.inventory().ids(HW);
        let report = huawei(&emu).build().unwrap().bind(hw_request(&emu, &ids).build().unwrap()).await.unwrap();
        assert!(report.all_bound(), "{fault:?}: {:?}", report.outcomes);
        assert_consistent(&emu, HW, &report, Some(DEFAULT_KEYPAIR));
        assert_eq!(emu.calls("BatchAssociateKeypair"), 1, "{fault:?}: never resubmitted");
        assert!(emu.calls("ListRunningTask") >= 1);
    }
}

/// 4. Reconciliation adopts only a task of this run's key pair and operation.
#[tokio::test]
async fn reconciliation_ignores_tasks_of_other_key_pairs() {
    let instances = (0..3).map(|i| InstanceSpec::new(HW, format!("vm-{i}"))).collect();
    let keypairs = [DEFAULT_KEYPAIR, "kp-other"]
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
    let emu = emulator()
        .inventory(Inventory { instances, keypairs })
        .task_duration(Duration::from_secs(2))
        .script(script(HW, "BatchAssociateKeypair", Fault::DropBeforeApply))
        .start()
        .await
        .unwrap();
    emu.start_foreign_task("vm-0", "kp-other").unwrap();
    let ids: Vec<String> = (0..3).map(|i| format!("vm-{i}")).collect();
    let report = huawei(&emu).build().unwrap().bind(hw_request(&emu, &ids).build().unwrap()).await.unwrap();
    for (id, outcome) in &report.outcomes {
        assert!(matches!(outcome, InstanceOutcome::Unknown(_)), "{id}: {outcome:?}");
    }
    assert_eq!(emu.calls("ListKeypairTask"), 0, "the other key pair's task was not followed");
}

/// 2. A state change between attempts never sends an ambiguous set again
/// under another token: the resend is the same call, replayed by the cloud.
#[tokio::test]
async fn a_state_change_between_attempts_never_applies_twice() {
    let emu = Arc::new(
        emulator()
            .instances(20)
            .transition(Duration::from_millis(300))
            .script(script(VC, "AttachKeyPair", Fault::DropAfterApply))
            .start()
            .await
            .unwrap(),
    );
    let ids = emu.inventory().ids(VC);
    let (watch, first) = (emu.clone(), ids[0].clone());
    let observer = Arc::new(move |event: &ProgressEvent| {
        if matches!(event, ProgressEvent::RetryScheduled { .. }) {
            watch.start_transition(VC, &first);
        }
    });
    let request =
        BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids.clone()).observer(observer).build().unwrap();
    let binder = volcengine(&emu).precheck_states(true).build().unwrap();
    let report = binder.bind(request).await.unwrap();
    assert!(report.all_bound(), "{:?}", report.outcomes);
    assert_consistent(&emu, VC, &report, Some(DEFAULT_KEYPAIR));
    let attaches: Vec<_> = emu.request_log().into_iter().filter(|e| e.action == "AttachKeyPair").collect();
    assert_eq!(attaches.len(), 2);
    assert_eq!(attaches[0].instance_ids, attaches[1].instance_ids, "the same call, sent again");
    assert_eq!(emu.calls("DescribeInstances"), 1, "the pre-check ran once");
}

/// 3. Near the deadline the window holds, confirmed outcomes are kept, and
/// instances never sent fail (not applied) instead of ending unknown.
#[tokio::test]
async fn huawei_deadline_keeps_outcomes_and_fails_the_unsent() {
    let emu = emulator().instances(50).task_duration(Duration::from_millis(700)).start().await.unwrap();
    let ids = emu.inventory().ids(HW);
    let request = hw_request(&emu, &ids).deadline(Duration::from_millis(1800)).build().unwrap();
    let report = huawei(&emu).build().unwrap().bind(request).await.unwrap();
    assert_consistent(&emu, HW, &report, Some(DEFAULT_KEYPAIR));
    let (bound, failed, _) = report.counts();
    assert!(bound >= 10, "confirmed outcomes kept: {bound}");
    assert!(failed >= 10, "{failed}");
    let unsent = never_sent(&emu, &ids);
    assert!(!unsent.is_empty());
    for id in &unsent {
        let outcome = report.outcomes.iter().find(|(i, _)| i.as_str() == id).unwrap();
        assert!(matches!(&outcome.1, InstanceOutcome::Failed(f) if f.kind == FailureKind::Timeout && f.retryable));
    }
    for (id, f) in report.failed() {
        assert!(!f.message.contains("at most 10"), "{id} refused by the window: {f}");
    }
    assert!(emu.max_in_operation() <= 10);
}

/// 3. A VM whose submission is ambiguous keeps its slot while running tasks
/// cannot be listed: later batches never push past the 10-VM window.
#[tokio::test]
async fn ambiguous_vms_keep_their_window_slots() {
    let mut builder = emulator().instances(20).task_duration(Duration::from_millis(300)).script(script(
        HW,
        "BatchAssociateKeypair",
        Fault::DropAfterApply,
    ));
    for _ in 0..3 {
        builder = builder.script(script(HW, "ListRunningTask", Fault::ServerError));
    }
    let emu = builder.start().await.unwrap();
    let ids = emu.inventory().ids(HW);
    let report = huawei(&emu).build().unwrap().bind(hw_request(&emu, &ids).build().unwrap()).await.unwrap();
    assert!(report.all_bound(), "{:?}", report.outcomes);
    assert_consistent(&emu, HW, &report, Some(DEFAULT_KEYPAIR));
    assert!(emu.max_in_operation() <= 10);
    assert_eq!(emu.calls("BatchAssociateKeypair"), 2);
}

/// 5. Refused credentials: one call reaches the cloud, whatever the concurrency or mode.
#[tokio::test]
async fn refused_credentials_send_one_call() {
    let emu = emulator().instances(300).start().await.unwrap();
    let c = &emu.credentials().volcengine;
    let binder = volcengine(&emu).credentials(&c.ak, "wrong-secret").concurrency(8).build().unwrap();
    let ids = emu.inventory().ids(VC);
    let err = binder.bind(bind_request(VC, &emu, &ids)).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err}");
    assert_eq!(emu.total_calls(), 1);

    let hw_ids = emu.inventory().ids(HW)[..40].to_vec();
    let h = &emu.credentials().huawei;
    for credential in [VmCredential::password(&h.vm_password), VmCredential::private_key("current key")] {
        let before = emu.total_calls();
        let binder = huawei(&emu).credentials(&h.ak, "wrong-secret").build().unwrap();
        let request = BindRequest::builder()
            .keypair_name(DEFAULT_KEYPAIR)
            .instances(hw_ids.clone())
            .credential(credential)
            .build()
            .unwrap();
        let err = binder.bind(request).await.unwrap_err();
        assert!(matches!(err, Error::Authentication { .. }), "{err}");
        assert_eq!(emu.total_calls() - before, 1, "one refused AK/SK call, never five");
    }
}

/// 6. Default polling learns task durations it is not told: few status
/// queries per VM (wall time against the floor is in the fleet benchmark).
#[tokio::test]
async fn adaptive_polling_needs_few_status_queries() {
    for task in [Duration::from_millis(300), Duration::from_millis(1200)] {
        let emu = emulator().instances(60).task_duration(task).start().await.unwrap();
        let ids = emu.inventory().ids(HW);
        let binder = huawei(&emu).polling(keypair_binder::huawei::Polling::default()).build().unwrap();
        let report = binder.bind(hw_request(&emu, &ids).build().unwrap()).await.unwrap();
        assert!(report.all_bound());
        let per_vm = emu.calls("ListKeypairTask") as f64 / ids.len() as f64;
        assert!(per_vm <= 1.5, "{task:?} tasks: {per_vm:.2} status queries per VM");
    }
}

/// 7. A library caller cancels a run and gets the partial report: started
/// tasks followed to their end, never-sent instances failed as cancelled.
#[tokio::test]
async fn cancellation_returns_a_true_partial_report() {
    for cloud in [HW, VC] {
        // Huawei: the first batch's tasks outlive the cancellation; Volcengine: a call is in flight.
        let (latency, instances) = if cloud == HW { (40, 60) } else { (200, 500) };
        let emu = emulator()
            .instances(instances)
            .latency(Duration::from_millis(latency))
            .task_duration(Duration::from_millis(400))
            .start()
            .await
            .unwrap();
        let ids = emu.inventory().ids(cloud);
        let cancel = CancellationToken::new();
        let mut request =
            BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids.clone()).cancel(cancel.clone());
        let binder: Arc<dyn KeypairBinder> = match cloud {
            Cloud::Huawei => {
                request = request.credential(VmCredential::password(&emu.credentials().huawei.vm_password));
                Arc::new(huawei(&emu).build().unwrap())
            }
            Cloud::Volcengine => Arc::new(volcengine(&emu).concurrency(1).build().unwrap()),
            other => unreachable!("{other:?} is not in this test's list"),
        };
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            stopper.cancel();
        });
        let report = binder.bind(request.build().unwrap()).await.unwrap();
        assert_consistent(&emu, cloud, &report, Some(DEFAULT_KEYPAIR));
        let (bound, failed, unknown) = report.counts();
        assert_eq!(unknown, 0, "{cloud:?}: in-flight calls and started tasks were finished");
        assert!(bound > 0 && failed > 0, "{cloud:?}: {bound} bound, {failed} failed");
        for (id, f) in report.failed() {
            assert_eq!(f.kind, FailureKind::Cancelled, "{cloud:?} {id}: {f}");
            assert!(f.retryable);
            assert_eq!(emu.applications(cloud, id.as_str()), 0);
        }
    }
}
