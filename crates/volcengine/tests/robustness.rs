//! Never panics on arbitrary bytes: the response readers and the signer's
//! canonicalization (the proptest twins of the `fuzz/` targets).

use keypair_binder_core::Secret;
use keypair_binder_core::http::HttpResponse;
use keypair_binder_volcengine::errors::{parse_error, read_result};
use keypair_binder_volcengine::signer::{self, Credentials, SignableRequest, canonical_query, parse_authorization};
use keypair_binder_volcengine::wire::{DescribeInstancesResult, OperationResult};
use proptest::prelude::*;

fn response(status: u16, body: &[u8]) -> HttpResponse {
    HttpResponse::new(status, body.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn response_readers_never_panic(status in 100u16..600, body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let r = response(status, &body);
        let _ = parse_error(&r);
        let _ = read_result::<OperationResult>(&r);
        let _ = read_result::<DescribeInstancesResult>(&r);
    }

    #[test]
    fn json_shaped_answers_never_panic(status in 100u16..600, body in "\\{\"(ResponseMetadata|Result|OperationDetails|Error|Code|InstanceId)\":.{0,80}") {
        let r = response(status, body.as_bytes());
        let _ = parse_error(&r);
        let _ = read_result::<OperationResult>(&r);
    }

    #[test]
    fn signing_never_panics(
        query in proptest::collection::vec(("\\PC{0,12}", "\\PC{0,12}"), 0..8),
        headers in proptest::collection::vec(("[A-Za-z-]{1,12}", "\\PC{0,16}"), 0..6),
        host in "\\PC{0,20}",
        region in "\\PC{0,12}",
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = canonical_query(&query);
        let credentials = Credentials { access_key: "AK".into(), secret_key: Secret::new("SK"), token: None };
        let request = SignableRequest { method: "GET", host: &host, path: "/", query: &query, headers: &headers, body: &body };
        let sig = signer::sign(&request, &credentials, &region, chrono::Utc::now());
        prop_assert!(sig.authorization.starts_with("HMAC-SHA256 "));
    }

    #[test]
    fn authorization_parsing_never_panics(value in "\\PC{0,200}") {
        let _ = parse_authorization(&value);
    }
}
