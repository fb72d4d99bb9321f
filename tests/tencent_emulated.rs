//! Tencent Cloud CVM on the emulator: what only this cloud does. Consent
//! before power-cycling, all-or-nothing calls isolated, asynchronous
//! operations followed, key ids, STS tokens.

mod support;

use keypair_binder::{BindRequest, FailureKind, InstanceOutcome, KeypairBinder, PostCondition};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, InstanceSpec, Inventory, KeypairSpec, Os, VmState};
use support::*;

const ASSOCIATE: &str = "AssociateInstancesKeyPairs";

fn stopped(id: &str) -> InstanceSpec {
    InstanceSpec { state: VmState::Stopped, ..InstanceSpec::new(Cloud::Tencent, id) }
}

fn inventory(instances: Vec<InstanceSpec>) -> Inventory {
    let keypairs = vec![KeypairSpec {
        provider: Cloud::Tencent,
        name: DEFAULT_KEYPAIR.into(),
        id: Some("skey-default1".into()),
        private_key: None,
        public_key: None,
        region: None,
        account: None,
    }];
    Inventory { instances, keypairs }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ins-a{i:07}")).collect()
}

/// Which instances each `AssociateInstancesKeyPairs` call carried, in order.
fn associate_calls(emu: &keypair_binder_emulator::Emulator) -> Vec<Vec<String>> {
    emu.request_log().into_iter().filter(|e| e.action == ASSOCIATE).map(|e| e.instance_ids).collect()
}

#[tokio::test]
async fn running_instances_are_never_sent_without_consent() {
    let running = InstanceSpec::new(Cloud::Tencent, "ins-running1");
    let emu = emulator().inventory(inventory(vec![running, stopped("ins-stopped1")])).start().await.unwrap();
    let all = vec!["ins-running1".to_string(), "ins-stopped1".to_string()];
    let report = tencent(&emu).build().unwrap().bind(bind_request(Cloud::Tencent, &emu, &all)).await.unwrap();
    let InstanceOutcome::Failed(f) = &report.outcomes[0].1 else { panic!("{:?}", report.outcomes) };
    assert_eq!(f.kind, FailureKind::InvalidState);
    assert!(f.message.contains("--force-stop"), "says how to proceed: {f}");
    assert!(report.outcomes[1].1.is_bound());
    assert!(associate_calls(&emu).iter().flatten().all(|id| id != "ins-running1"), "never sent");
    assert_eq!(emu.applications(Cloud::Tencent, "ins-running1"), 0);
    assert!(!report.post_conditions.contains(&PostCondition::RunningInstancesRestarted));

    // With consent, it is stopped for the change and started again; the report says so.
    let request = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instance("ins-running1").force_stop(true);
    let report = tencent(&emu).build().unwrap().bind(request.build().unwrap()).await.unwrap();
    assert!(report.all_bound(), "{:?}", report.outcomes);
    assert_eq!(emu.binding(Cloud::Tencent, "ins-running1").as_deref(), Some(DEFAULT_KEYPAIR));
    assert!(report.post_conditions.contains(&PostCondition::RunningInstancesRestarted));
    assert_consistent(&emu, Cloud::Tencent, &report, Some(DEFAULT_KEYPAIR));
}

#[tokio::test]
async fn a_named_refusal_costs_one_more_call() {
    let mut instances: Vec<InstanceSpec> = ids(60).iter().map(|id| stopped(id)).collect();
    instances[17].os = Os::Windows;
    instances[17].image_supported = false;
    let emu = emulator().inventory(inventory(instances)).start().await.unwrap();
    let all = ids(60);
    let report = tencent(&emu).build().unwrap().bind(bind_request(Cloud::Tencent, &emu, &all)).await.unwrap();
    let InstanceOutcome::Failed(f) = &report.outcomes[17].1 else { panic!("{:?}", report.outcomes[17]) };
    assert_eq!(f.code.as_deref(), Some("UnsupportedOperation.InstanceOsWindows"));
    assert_eq!(report.outcomes.iter().filter(|(_, o)| o.is_bound()).count(), 59);
    let calls = associate_calls(&emu);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].len(), 59, "the rest, without the one named");
    assert_eq!(report.stats.retries, 0, "isolation spends no retry");
    assert_consistent(&emu, Cloud::Tencent, &report, Some(DEFAULT_KEYPAIR));
}

#[tokio::test]
async fn an_unnamed_refusal_is_isolated_by_halving_within_bounds() {
    let n = 100;
    let mut instances: Vec<InstanceSpec> = ids(n).iter().map(|id| stopped(id)).collect();
    for bad in [3, 71] {
        instances[bad].image_supported = false;
    }
    let emu = emulator().inventory(inventory(instances)).start().await.unwrap();
    let all = ids(n);
    let report = tencent(&emu).build().unwrap().bind(bind_request(Cloud::Tencent, &emu, &all)).await.unwrap();
    for (i, (id, outcome)) in report.outcomes.iter().enumerate() {
        if i == 3 || i == 71 {
            let InstanceOutcome::Failed(f) = outcome else { panic!("{id}: {outcome:?}") };
            assert_eq!(f.code.as_deref(), Some("InvalidInstance.NotSupported"), "{id}");
        } else {
            assert!(outcome.is_bound(), "{id}: {outcome:?}");
        }
    }
    let calls = associate_calls(&emu);
    assert!(calls.len() <= 1 + 2 * n, "{} calls", calls.len());
    // Halving finds two bad instances in far fewer calls than one per instance.
    assert!(calls.len() <= 30, "{} calls", calls.len());
    assert!(calls.iter().all(|c| c.len() <= 100));
    assert_consistent(&emu, Cloud::Tencent, &report, Some(DEFAULT_KEYPAIR));
}

#[tokio::test]
async fn a_failed_operation_is_reported_with_its_reason_and_not_restarted() {
    let instances = vec![stopped("ins-ok000001"), InstanceSpec { agent: false, ..stopped("ins-noagent1") }];
    let emu = emulator().inventory(inventory(instances)).start().await.unwrap();
    let all = vec!["ins-ok000001".to_string(), "ins-noagent1".to_string()];
    let report = tencent(&emu).build().unwrap().bind(bind_request(Cloud::Tencent, &emu, &all)).await.unwrap();
    assert!(report.outcomes[0].1.is_bound());
    let InstanceOutcome::Failed(f) = &report.outcomes[1].1 else { panic!("{:?}", report.outcomes) };
    assert!(f.message.contains("cloud-init"), "LatestOperationErrorMsg kept: {f}");
    assert!(!f.retryable);
    assert_eq!(emu.calls(ASSOCIATE), 1);
    assert_eq!(emu.applications(Cloud::Tencent, "ins-noagent1"), 1, "never started again");
    assert_consistent(&emu, Cloud::Tencent, &report, Some(DEFAULT_KEYPAIR));
}

#[tokio::test]
async fn key_ids_sts_tokens_and_converged_reruns() {
    let emu = emulator().instances(150).start().await.unwrap();
    let all = emu.inventory().ids(Cloud::Tencent);
    let key_id = emu.inventory().keypairs.iter().find(|k| k.provider == Cloud::Tencent).unwrap().id.clone().unwrap();
    let c = emu.credentials().tencent.clone();
    let binder = tencent(&emu).credentials(&c.sts_secret_id, &c.sts_secret_key).token(&c.token).build().unwrap();
    let request = BindRequest::builder().keypair_id(&key_id).instances(all.clone()).build().unwrap();
    let report = binder.bind(request.clone()).await.unwrap();
    assert!(report.all_bound(), "{:?}", report.outcomes);
    assert_eq!(emu.calls(ASSOCIATE), 2, "100 a call");
    assert_eq!(emu.calls("DescribeKeyPairs"), 1, "the key is checked once");
    // A second run reads the key ids and sends nothing.
    let again = binder.bind(request).await.unwrap();
    assert!(again.outcomes.iter().all(|(_, o)| matches!(o, InstanceOutcome::Unchanged)), "{:?}", again.outcomes);
    assert_eq!(emu.calls(ASSOCIATE), 2);
    assert_consistent(&emu, Cloud::Tencent, &report, Some(DEFAULT_KEYPAIR));
}

#[tokio::test]
async fn calls_are_paced_within_the_documented_limits() {
    let emu = emulator().instances(1_500).start().await.unwrap();
    let all = emu.inventory().ids(Cloud::Tencent);
    let binder = tencent(&emu).concurrency(15).build().unwrap();
    let report = binder.bind(bind_request(Cloud::Tencent, &emu, &all)).await.unwrap();
    assert!(report.all_bound());
    // 10 AssociateInstancesKeyPairs a second, evenly spaced: 11 calls span at least a second.
    let log = emu.request_log();
    let at: Vec<_> = log.iter().filter(|e| e.action == ASSOCIATE).map(|e| e.received).collect();
    assert_eq!(at.len(), 15);
    for pair in at.windows(11) {
        let span = pair[10] - pair[0];
        assert!(span >= std::time::Duration::from_millis(950), "11 calls within {span:?}");
    }
    // 40 DescribeInstances a second.
    let reads: Vec<_> = log.iter().filter(|e| e.action == "DescribeInstances").map(|e| e.received).collect();
    for pair in reads.windows(41) {
        assert!(pair[40] - pair[0] >= std::time::Duration::from_millis(950), "41 reads within a second");
    }
}

#[tokio::test]
async fn a_write_that_may_have_started_is_settled_by_its_operation_never_sent_twice() {
    use keypair_binder_emulator::{Fault, ScriptedFault};
    // (fault, calls): applied then a gateway error is followed; an internal error before
    // applying shows no new operation within the grace, so it is sent again, once.
    for (fault, calls) in
        [(Fault::BadGatewayAfterApply, 1), (Fault::GatewayTimeoutAfterApply, 1), (Fault::ServerError, 2)]
    {
        let script =
            ScriptedFault { cloud: Some(Cloud::Tencent), action: Some(ASSOCIATE.into()), fault: fault.clone() };
        let emu = emulator().instances(30).script(script).start().await.unwrap();
        let all = emu.inventory().ids(Cloud::Tencent);
        let report = tencent(&emu).build().unwrap().bind(bind_request(Cloud::Tencent, &emu, &all)).await.unwrap();
        assert!(report.all_bound(), "{fault:?}: {:?}", report.outcomes);
        assert_eq!(emu.calls(ASSOCIATE), calls, "{fault:?}");
        assert_consistent(&emu, Cloud::Tencent, &report, Some(DEFAULT_KEYPAIR));
    }
}

#[tokio::test]
async fn a_call_refused_for_everyone_ends_with_every_instance_failed_within_the_bound() {
    let n = 16;
    let instances: Vec<InstanceSpec> =
        ids(n).iter().map(|id| InstanceSpec { image_supported: false, ..stopped(id) }).collect();
    let emu = emulator().inventory(inventory(instances)).start().await.unwrap();
    let all = ids(n);
    let report = tencent(&emu).build().unwrap().bind(bind_request(Cloud::Tencent, &emu, &all)).await.unwrap();
    for (id, outcome) in &report.outcomes {
        let InstanceOutcome::Failed(f) = outcome else { panic!("{id}: {outcome:?}") };
        assert_eq!(f.code.as_deref(), Some("InvalidInstance.NotSupported"), "{id}");
        assert!(!f.retryable, "{id}");
    }
    let calls = emu.calls(ASSOCIATE) as usize;
    assert!(calls <= 1 + 2 * n, "{calls} calls for {n} instances");
    assert_eq!(report.stats.retries, 0, "isolation spends no retry");
    assert_consistent(&emu, Cloud::Tencent, &report, Some(DEFAULT_KEYPAIR));
}
