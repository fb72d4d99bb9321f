//! The Volcengine binder against a real HTTP server on 127.0.0.1 that checks
//! every signature: chunking, tokens, retries, per-instance results, hostile answers.

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use keypair_binder_core::http::HttpOptions;
use keypair_binder_core::{
    BindRequest, Error, FailureKind, InstanceOutcome, KeypairBinder, UnbindRequest, VmCredential,
};
use serde_json::json;

#[tokio::test]
async fn binds_250_instances_in_calls_of_100_100_50() {
    let (endpoint, fake) = start(|_, call| details(call, &[])).await;
    let binder = builder(&endpoint).build().unwrap();
    let report = binder.bind(bind(ids(250))).await.unwrap();
    assert!(report.all_bound());
    assert_eq!(report.outcomes.len(), 250);
    let calls = fake.of("AttachKeyPair");
    let mut sizes: Vec<usize> = calls.iter().map(|c| c.ids().len()).collect();
    sizes.sort();
    assert_eq!(sizes, [50, 100, 100]);
    assert!(calls.iter().all(|c| c.signature_ok && c.get("KeyPairName") == Some("kp-prod")));
    let tokens: std::collections::HashSet<_> =
        calls.iter().map(|c| c.get("ClientToken").unwrap().to_string()).collect();
    assert_eq!(tokens.len(), 3, "one token per chunk");
    assert_eq!(report.stats.api_calls, 3);
}

#[tokio::test]
async fn a_retried_chunk_keeps_its_token_and_is_signed_again() {
    let (endpoint, fake) = start(|n, call| match n {
        0 => Reply::Json(500, error_body("InternalError", "try later")),
        1 => Reply::Throttle(error_body("FlowLimitExceeded", "slow down")),
        _ => details(call, &[]),
    })
    .await;
    let report = builder(&endpoint).build().unwrap().bind(bind(ids(3))).await.unwrap();
    assert!(report.all_bound());
    let calls = fake.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(report.stats.retries, 2);
    let token = calls[0].get("ClientToken").unwrap();
    assert!(calls.iter().all(|c| c.get("ClientToken") == Some(token) && c.signature_ok));
    let attempts: Vec<&str> = calls.iter().map(|c| c.headers["x-sdk-request"].as_str()).collect();
    assert_eq!(attempts, ["attempt=1; max=7", "attempt=2; max=7", "attempt=3; max=7"]);
}

#[tokio::test]
async fn idempotent_processing_is_waited_out() {
    let (endpoint, fake) = start(|n, call| match n {
        0 | 1 => Reply::Json(412, error_body("IdempotentProcessing", "still running")),
        _ => details(call, &[]),
    })
    .await;
    let report = builder(&endpoint).build().unwrap().bind(bind(ids(2))).await.unwrap();
    assert!(report.all_bound());
    assert_eq!(fake.calls().len(), 3);
}

#[tokio::test]
async fn per_instance_throttling_reissues_only_those_with_a_new_token() {
    let (endpoint, fake) = start(|n, call| match n {
        0 => details(call, &[("i-0001", "FlowLimitExceeded"), ("i-0003", "InvalidInstance.NotFound")]),
        _ => details(call, &[]),
    })
    .await;
    let report = builder(&endpoint).build().unwrap().bind(bind(ids(4))).await.unwrap();
    let calls = fake.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].ids(), ["i-0001"]);
    assert_ne!(calls[0].get("ClientToken"), calls[1].get("ClientToken"));
    let outcome = |id: &str| report.outcomes.iter().find(|(i, _)| i.as_str() == id).unwrap().1.clone();
    assert!(outcome("i-0001").is_bound());
    match outcome("i-0003") {
        InstanceOutcome::Failed(f) => {
            assert_eq!(f.kind, FailureKind::InstanceNotFound);
            assert_eq!(f.code.as_deref(), Some("InvalidInstance.NotFound"));
            assert_eq!(f.http_status, Some(200));
            assert_eq!(f.request_id.as_deref(), Some("req-4"));
            assert!(!f.retryable);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn an_instance_missing_from_operation_details_is_unknown() {
    let (endpoint, _) = start(|_, call| {
        let mut call = call.clone();
        call.params.retain(|(k, v)| !(k.starts_with("InstanceIds.") && v == "i-0002"));
        details(&call, &[])
    })
    .await;
    let report = builder(&endpoint).build().unwrap().bind(bind(ids(3))).await.unwrap();
    assert!(matches!(report.outcomes[2].1, InstanceOutcome::Unknown(_)), "{:?}", report.outcomes[2]);
    assert!(report.outcomes[0].1.is_bound());
}

#[tokio::test]
async fn changing_state_waits_by_reading_and_final_states_fail() {
    // i-0000 is STARTING on the first read after the refusal, RUNNING on the next.
    let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = reads.clone();
    let (endpoint, fake) = start(move |n, call| match call.action() {
        "DescribeInstances" => {
            let read = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let status = if read == 0 { "STARTING" } else { "RUNNING" };
            Reply::Json(
                200,
                json!({"Result": {"Instances": [
                {"InstanceId": "i-0000", "Status": status}, {"InstanceId": "i-0001", "Status": "ERROR"}]}}),
            )
        }
        _ if n == 0 => details(call, &[("i-0000", "InvalidInstanceStatus"), ("i-0001", "InvalidInstanceStatus")]),
        _ => details(call, &[]),
    })
    .await;
    let report = builder(&endpoint).build().unwrap().bind(bind(ids(2))).await.unwrap();
    assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 2, "waiting is reading: two reads");
    assert!(report.outcomes[0].1.is_bound());
    assert!(
        matches!(&report.outcomes[1].1, InstanceOutcome::Failed(f) if f.kind == FailureKind::InvalidState && f.message.contains("ERROR"))
    );
    assert_eq!(fake.of("AttachKeyPair").len(), 2);
    assert_eq!(fake.of("AttachKeyPair")[1].ids(), ["i-0000"]);
}

#[tokio::test]
async fn parameter_mismatch_is_not_retried() {
    let (endpoint, fake) =
        start(|_, _| Reply::Json(400, error_body("IdempotentParameterMismatch", "token reused"))).await;
    let report = builder(&endpoint).build().unwrap().bind(bind(ids(2))).await.unwrap();
    assert_eq!(fake.calls().len(), 1);
    for (_, o) in &report.outcomes {
        assert!(
            matches!(o, InstanceOutcome::Failed(f) if f.code.as_deref() == Some("IdempotentParameterMismatch") && !f.retryable && f.http_status == Some(400))
        );
    }
}

#[tokio::test]
async fn hostile_answers_are_clear_failures() {
    let cases: Vec<(Reply, &str)> = vec![
        (Reply::Raw(200, "application/json", b"{\"ResponseMetadata\": {".to_vec()), "unreadable response"),
        (Reply::Raw(502, "text/html", b"<html><body>Bad Gateway</body></html>".to_vec()), "Bad Gateway"),
        (Reply::Raw(200, "application/json", vec![b' '; 200_000]), "larger than"),
        (Reply::Raw(200, "application/json", b"[1,2,3]".to_vec()), "unreadable response"),
        (Reply::Json(200, json!({"ResponseMetadata": {"RequestId": "r"}})), "no Result"),
    ];
    for (reply, expected) in cases {
        let reply = Arc::new(Mutex::new(Some(reply)));
        let (endpoint, _) = start(move |_, _| {
            let mut slot = reply.lock().unwrap();
            match slot.take() {
                Some(r) => {
                    let replay = match &r {
                        Reply::Raw(s, t, b) => Reply::Raw(*s, t, b.clone()),
                        Reply::Json(s, v) => Reply::Json(*s, v.clone()),
                        Reply::Throttle(v) => Reply::Throttle(v.clone()),
                    };
                    *slot = Some(r);
                    replay
                }
                None => unreachable!(),
            }
        })
        .await;
        let options = HttpOptions::default().with_max_body_bytes(64 * 1024);
        let report = builder(&endpoint).http_options(options).build().unwrap().bind(bind(ids(2))).await.unwrap();
        for (_, outcome) in &report.outcomes {
            let failure = outcome.failure().unwrap_or_else(|| panic!("{expected}: bound?"));
            assert!(failure.message.contains(expected), "{expected}: {failure}");
        }
    }
}

#[tokio::test]
async fn a_bad_secret_key_is_an_authentication_error_after_one_call() {
    let (endpoint, fake) = start(|_, call| details(call, &[])).await;
    let binder = builder(&endpoint).credentials(AK, "wrong-secret").concurrency(1).build().unwrap();
    let err = binder.bind(bind(ids(300))).await.unwrap_err();
    assert!(matches!(err, Error::Authentication { .. }), "{err}");
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
    assert_eq!(fake.calls().len(), 1);
}

#[tokio::test]
async fn options_volcengine_cannot_honour_are_refused_before_sending() {
    let (endpoint, fake) = start(|_, call| details(call, &[])).await;
    let binder = builder(&endpoint).build().unwrap();
    let with_credential = BindRequest::builder()
        .keypair_name("kp")
        .instance("i-1")
        .credential(VmCredential::password("pw"))
        .build()
        .unwrap();
    assert!(matches!(binder.bind(with_credential).await, Err(Error::Unsupported { option: "credential", .. })));
    let with_port = BindRequest::builder().keypair_name("kp").instance("i-1").ssh_port(2222).build().unwrap();
    assert!(matches!(binder.bind(with_port).await, Err(Error::Unsupported { option: "ssh_port", .. })));
    let no_key = UnbindRequest::builder().instance("i-1").build().unwrap();
    assert!(matches!(binder.unbind(no_key).await, Err(Error::Validation(_))));
    assert!(fake.calls().is_empty());
}

#[tokio::test]
async fn unbind_detaches_by_key_pair_id() {
    let (endpoint, fake) = start(|_, call| details(call, &[])).await;
    let binder = builder(&endpoint).build().unwrap();
    let request = UnbindRequest::builder().keypair_id("kp-abc").instances(ids(2)).force(true).build().unwrap();
    let report = binder.unbind(request).await.unwrap();
    assert!(report.all_bound());
    let call = &fake.calls()[0];
    assert_eq!(call.action(), "DetachKeyPair");
    assert_eq!(call.get("KeyPairId"), Some("kp-abc"));
}

#[tokio::test]
async fn ten_thousand_instances_take_exactly_100_calls() {
    let (endpoint, fake) = start(|_, call| details(call, &[])).await;
    let report = builder(&endpoint).build().unwrap().bind(bind(ids(10_000))).await.unwrap();
    assert!(report.all_bound());
    assert_eq!(report.stats.api_calls, 100);
    let calls = fake.of("AttachKeyPair");
    assert_eq!(calls.len(), 100);
    let mut seen: Vec<String> = calls.iter().flat_map(|c| c.ids()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 10_000, "each instance sent once");
}

#[tokio::test]
async fn verified_bindings_downgrade_what_describe_does_not_show() {
    let (endpoint, fake) = start(|_, call| match call.action() {
        "DescribeInstances" => Reply::Json(
            200,
            json!({"Result": {"Instances": [
                {"InstanceId": "i-0000", "Status": "RUNNING", "KeyPairName": "kp-prod"},
                {"InstanceId": "i-0001", "Status": "RUNNING", "KeyPairName": "other"}]}}),
        ),
        _ => details(call, &[]),
    })
    .await;
    let report = builder(&endpoint).verify_bindings(true).build().unwrap().bind(bind(ids(3))).await.unwrap();
    assert!(report.outcomes[0].1.is_bound());
    assert!(
        matches!(&report.outcomes[1].1, InstanceOutcome::Unknown(f) if f.message.contains("\"other\"")),
        "{:?}",
        report.outcomes[1]
    );
    assert!(matches!(&report.outcomes[2].1, InstanceOutcome::Unknown(f) if f.message.contains("no such instance")));
    assert_eq!(fake.of("DescribeInstances").len(), 1);
    assert_eq!(fake.of("DescribeInstances")[0].ids(), ["i-0000", "i-0001", "i-0002"]);
}

#[tokio::test]
async fn prechecked_states_settle_what_cannot_take_a_key_before_sending() {
    let describes = Arc::new(Mutex::new(0));
    let seen = describes.clone();
    let (endpoint, fake) = start(move |_, call| match call.action() {
        "DescribeInstances" => {
            let mut n = seen.lock().unwrap();
            *n += 1;
            let starting = if *n == 1 { "STARTING" } else { "RUNNING" };
            let all = json!([
                {"InstanceId": "i-0000", "Status": "RUNNING", "OsType": "Linux"},
                {"InstanceId": "i-0001", "Status": "RUNNING", "OsType": "Windows"},
                {"InstanceId": "i-0002", "Status": starting, "OsType": "Linux"},
                {"InstanceId": "i-0004", "Status": "ERROR", "OsType": "Linux"}]);
            let asked = call.ids();
            let shown: Vec<_> = all
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| asked.iter().any(|a| i["InstanceId"] == a.as_str()))
                .cloned()
                .collect();
            Reply::Json(200, json!({"Result": {"Instances": shown}}))
        }
        _ => details(call, &[]),
    })
    .await;
    let report = builder(&endpoint).precheck_states(true).build().unwrap().bind(bind(ids(5))).await.unwrap();
    let kinds: Vec<Option<FailureKind>> = report.outcomes.iter().map(|(_, o)| o.failure().map(|f| f.kind)).collect();
    assert_eq!(
        kinds,
        [
            None,
            Some(FailureKind::UnsupportedImage),
            None,
            Some(FailureKind::InstanceNotFound),
            Some(FailureKind::InvalidState)
        ]
    );
    let attaches = fake.of("AttachKeyPair");
    assert_eq!(
        attaches.iter().map(Call::ids).collect::<Vec<_>>(),
        [vec!["i-0000".to_string()], vec!["i-0002".to_string()]]
    );
    let tokens: std::collections::HashSet<_> =
        attaches.iter().map(|c| c.get("ClientToken").unwrap().to_string()).collect();
    assert_eq!(tokens.len(), 2, "each subset sent is its own call, with its own token");
}
