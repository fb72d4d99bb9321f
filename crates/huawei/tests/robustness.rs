//! Never panics on arbitrary bytes: the response readers and the signer's
//! canonicalization (the proptest twins of the `fuzz/` targets).

use keypair_binder_core::Secret;
use keypair_binder_core::http::HttpResponse;
use keypair_binder_huawei::errors::{failure_of, parse_error};
use keypair_binder_huawei::signer::{self, AkSk, SignableRequest, canonical_query, canonical_uri, parse_authorization};
use keypair_binder_huawei::wire::{BatchResponse, FailedTasks, RunningTasks, TaskResponse, TaskStatus, phase_of};
use proptest::prelude::*;

fn response(status: u16, body: &[u8]) -> HttpResponse {
    HttpResponse::new(status, body.to_vec())
}

fn read_all(body: &[u8]) {
    let _ = serde_json::from_slice::<BatchResponse>(body);
    let _ = serde_json::from_slice::<TaskResponse>(body).map(|t| t.delivered());
    let _ = serde_json::from_slice::<TaskStatus>(body).map(|t| t.phase());
    let _ = serde_json::from_slice::<FailedTasks>(body);
    let _ = serde_json::from_slice::<RunningTasks>(body);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn response_readers_never_panic(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let r = response(status, &body);
        let _ = parse_error(&r);
        let _ = failure_of(&r);
        read_all(&body);
    }

    #[test]
    fn json_shaped_answers_never_panic(status in 100u16..600, body in "\\{\"(error_code|error_msg|tasks|task_status|error|code|message)\":.{0,80}") {
        let r = response(status, body.as_bytes());
        let _ = failure_of(&r);
        read_all(body.as_bytes());
    }

    #[test]
    fn task_phases_never_panic(status in "\\PC{0,30}") {
        let _ = phase_of(&status);
    }

    #[test]
    fn canonicalization_and_signing_never_panic(
        path in "\\PC{0,40}",
        query in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,12}"), 0..8),
        headers in proptest::collection::vec(("[A-Za-z_-]{1,12}", "\\PC{0,16}"), 0..6),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let uri = canonical_uri(&path);
        prop_assert!(uri.ends_with('/'));
        let _ = canonical_query(&query);
        let credentials = AkSk { access_key: "AK".into(), secret_key: Secret::new("SK"), token: None };
        let request = SignableRequest { method: "POST", host: "h", path: &path, query: &query, headers: &headers, body: &body };
        let sig = signer::sign(&request, &credentials, Some("p"), chrono::Utc::now());
        prop_assert!(sig.authorization.starts_with("SDK-HMAC-SHA256 "));
    }

    #[test]
    fn authorization_parsing_never_panics(value in "\\PC{0,200}") {
        let _ = parse_authorization(&value);
    }
}
