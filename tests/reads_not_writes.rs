//! Every call has a reason, on the emulator over real HTTP: what a received
//! answer left out is settled by reading state, never by sending the write
//! again, and a transitional state is waited for by reading it.

mod support;

use std::time::Duration;

use keypair_binder::{BindRequest, FailureKind, InstanceOutcome, KeypairBinder};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator, Fault, ScriptedFault};
use support::*;

const VC: Cloud = Cloud::Volcengine;

/// Calls of `action` that carried `id`.
fn calls_with(emu: &Emulator, action: &str, id: &str) -> usize {
    emu.request_log().iter().filter(|e| e.action == action && e.instance_ids.iter().any(|i| i == id)).count()
}

#[tokio::test]
async fn an_instance_applied_but_left_out_of_the_answer_is_read_not_resent() {
    let omit = ScriptedFault { cloud: Some(VC), action: Some("AttachKeyPair".into()), fault: Fault::OmitFirstInstance };
    let emu = emulator().instances(60).script(omit).start().await.unwrap();
    let ids = emu.inventory().ids(VC);
    let request = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids.clone()).build().unwrap();
    let report = volcengine(&emu).build().unwrap().bind(request).await.unwrap();
    assert_consistent(&emu, VC, &report, Some(DEFAULT_KEYPAIR));
    assert!(report.all_bound(), "{report:?}");
    let left_out = &ids[0];
    assert_eq!(calls_with(&emu, "AttachKeyPair", left_out), 1, "no further write for it");
    // The converging read before the write, then one read of what the answer did not say.
    assert_eq!(calls_with(&emu, "DescribeInstances", left_out), 2);
    assert_eq!(emu.calls("AttachKeyPair"), 1);
    for id in &ids {
        assert_eq!(emu.applications(VC, id), 1, "{id}");
    }
}

#[tokio::test]
async fn an_instance_stuck_starting_is_read_until_the_bound_and_never_written_again() {
    let emu = emulator().instances(20).transition(Duration::from_secs(60)).start().await.unwrap();
    let ids = emu.inventory().ids(VC);
    let stuck = ids[3].clone();
    emu.start_transition(VC, &stuck);
    let bound = Duration::from_secs(3);
    let request =
        BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids.clone()).state_wait(bound).build().unwrap();
    let started = std::time::Instant::now();
    let report = volcengine(&emu).build().unwrap().bind(request).await.unwrap();
    let took = started.elapsed();
    assert_consistent(&emu, VC, &report, Some(DEFAULT_KEYPAIR));
    match report.outcome(&keypair_binder::InstanceId::new(&stuck).unwrap()).unwrap() {
        InstanceOutcome::Failed(f) => {
            assert_eq!(f.kind, FailureKind::InvalidState, "{f}");
            assert!(f.retryable, "{f}");
            assert!(f.message.contains("still"), "names the last state seen: {f}");
        }
        other => panic!("{other:?}"),
    }
    let (succeeded, failed, unknown) = report.counts();
    assert_eq!((succeeded, failed, unknown), (19, 1, 0));
    assert_eq!(calls_with(&emu, "AttachKeyPair", &stuck), 1, "the refused write is the only one");
    let reads = calls_with(&emu, "DescribeInstances", &stuck);
    assert!((3..=30).contains(&reads), "{reads} reads");
    // About the bound, not more (the emulator answers in milliseconds).
    assert!(took >= bound - Duration::from_millis(1500) && took < bound + Duration::from_secs(2), "{took:?}");
}

/// A re-run where every instance already holds the key pair: no write, and
/// about one round of reads (the chunks read side by side, `concurrency` at once).
#[tokio::test]
async fn a_converged_re_run_sends_no_write_and_takes_about_one_round_of_reads() {
    let latency = Duration::from_millis(100);
    let emu = emulator().instances(800).latency(latency).start().await.unwrap();
    let ids = emu.inventory().ids(VC);
    let request =
        || BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids.clone()).concurrency(8).build().unwrap();
    let binder = volcengine(&emu).build().unwrap();
    assert!(binder.bind(request()).await.unwrap().all_bound());
    let writes = emu.calls("AttachKeyPair");
    let started = std::time::Instant::now();
    let report = binder.bind(request()).await.unwrap();
    let took = started.elapsed();
    assert!(report.outcomes.iter().all(|(_, o)| matches!(o, InstanceOutcome::Unchanged)));
    assert_eq!(emu.calls("AttachKeyPair"), writes, "no write");
    // The first read alone proves the credentials, then the other seven chunks read at once.
    assert!(took < latency * 4, "{took:?}");
}
