//! The signer reproduces all 17 vectors made by the official Python SDK's signer.

use chrono::{NaiveDateTime, TimeZone, Utc};
use keypair_binder_core::{InstanceId, KeyPairRef, Secret};
use keypair_binder_volcengine::request;
use keypair_binder_volcengine::signer::{self, Credentials, SignableRequest, canonical_query, encode};
use keypair_binder_volcengine::wire::{self, Action};
use proptest::prelude::*;
use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    match v {
        Value::Array(items) => items.iter().map(|p| (text(&p[0]), text(&p[1]))).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        _ => vec![],
    }
}

#[test]
fn all_official_vectors() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/volcengine-signing.json")).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 17);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let input = &v["input"];
        let output = &v["output"];
        let time = NaiveDateTime::parse_from_str(input["x_date"].as_str().unwrap(), "%Y%m%dT%H%M%SZ").unwrap();
        let credentials = Credentials {
            access_key: input["ak"].as_str().unwrap().into(),
            secret_key: Secret::new(input["sk"].as_str().unwrap()),
            token: input["session_token"].as_str().map(Secret::new),
        };
        let query = pairs(&input["query"]);
        let headers = pairs(&input["headers"]);
        let body = output["hashed_body"].as_str().unwrap_or("");
        let request = SignableRequest {
            method: input["method"].as_str().unwrap(),
            host: input["host"].as_str().unwrap(),
            path: input["path"].as_str().unwrap(),
            query: &query,
            headers: &headers,
            body: body.as_bytes(),
        };
        let sig = signer::sign(&request, &credentials, input["region"].as_str().unwrap(), Utc.from_utc_datetime(&time));
        assert_eq!(sig.canonical_request, output["canonical_request"].as_str().unwrap(), "{name}: canonical request");
        assert_eq!(sig.string_to_sign, output["string_to_sign"].as_str().unwrap(), "{name}: string to sign");
        assert_eq!(sig.signature, output["signature"].as_str().unwrap(), "{name}: signature");
        assert_eq!(sig.authorization, output["authorization"].as_str().unwrap(), "{name}: authorization");
        if let Some(key) = output["signing_key_hex"].as_str() {
            let date = &input["x_date"].as_str().unwrap()[..8];
            let ours =
                signer::signing_key(credentials.secret_key.expose(), date, input["region"].as_str().unwrap(), "ecs");
            assert_eq!(hex::encode(ours), key, "{name}: signing key");
        }
        for (header, value) in output["added_headers"].as_object().unwrap() {
            let ours = sig.headers.iter().find(|(n, _)| n == header).map(|(_, v)| v.as_str());
            assert_eq!(ours, value.as_str(), "{name}: added header {header}");
        }
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8().unwrap().into_owned()
}

proptest! {
    #[test]
    fn encoding_round_trips_and_keeps_only_unreserved(s in "\\PC*") {
        let e = encode(&s);
        prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        prop_assert_eq!(decode(&e), s);
    }

    #[test]
    fn canonical_query_is_sorted_by_bytes(pairs in proptest::collection::hash_map("[A-Za-z0-9. _+*~/]{1,12}", "\\PC{0,12}", 0..12)) {
        let pairs: Vec<(String, String)> = pairs.into_iter().collect();
        let canonical = canonical_query(&pairs);
        let keys: Vec<&str> = if canonical.is_empty() { vec![] } else { canonical.split('&').map(|p| p.split('=').next().unwrap()).collect() };
        let mut sorted = keys.clone();
        sorted.sort();
        prop_assert_eq!(&keys, &sorted);
        prop_assert_eq!(keys.len(), pairs.len());
        prop_assert!(!canonical.contains('+') && !canonical.contains(' '));
    }

    /// The single-pass canonical query of a key-pair call is the reference construction's.
    #[test]
    fn single_pass_query_equals_the_reference(
        ids in proptest::collection::vec("[!-~]{1,40}|\\PC{1,8}", 1..=100),
        by_id in any::<bool>(),
        keypair in "\\PC{1,30}",
        token in proptest::option::of("[!-~]{1,64}"),
        detach in any::<bool>(),
    ) {
        let ids: Vec<InstanceId> = ids.into_iter().filter_map(|i| InstanceId::new(i).ok()).collect();
        prop_assume!(!ids.is_empty());
        let keypair = if by_id { KeyPairRef::id(keypair.replace(char::is_whitespace, "x")) } else { KeyPairRef::name(keypair.trim().to_string()) };
        let Ok(keypair) = keypair else { return Ok(()) };
        let action = if detach { Action::DetachKeyPair } else { Action::AttachKeyPair };
        let reference = canonical_query(&wire::keypair_call(action, &ids, &keypair, token.as_deref()));
        prop_assert_eq!(wire::keypair_call_canonical(action, &ids, &keypair, token.as_deref()), reference);
    }

    /// What goes on the wire (as the SDK encodes it, written into the URL)
    /// decodes to the call's parameters, and its signature is the one of the
    /// canonical query: spaces, `*` and `~` included.
    #[test]
    fn the_sent_query_is_signed_in_its_canonical_form(
        ids in proptest::collection::vec("[!-~]{1,40}|\\PC{1,8}", 1..=100),
        keypair in "[ -~]{1,30}",
        token in proptest::option::of("[ -~*~]{1,64}"),
    ) {
        let ids: Vec<InstanceId> = ids.into_iter().filter_map(|i| InstanceId::new(i).ok()).collect();
        prop_assume!(!ids.is_empty());
        let Ok(keypair) = KeyPairRef::name(keypair.trim().to_string()) else { return Ok(()) };
        let endpoint = url::Url::parse("https://open.volcengineapi.com/").unwrap();
        let action = Action::AttachKeyPair;
        let params = wire::keypair_call_params(action, &ids, &keypair, token.as_deref());
        let mut sent = request::unsigned_params(&endpoint, &params, None, "AttachKeyPair").unwrap();
        let mut expected = request::unsigned_canonical(
            &endpoint,
            &wire::keypair_call_canonical(action, &ids, &keypair, token.as_deref()),
            None,
            "AttachKeyPair",
        )
        .unwrap();
        let decoded: Vec<(String, String)> =
            url::form_urlencoded::parse(sent.uri.query().unwrap().as_bytes()).into_owned().collect();
        let mut reference = wire::keypair_call(action, &ids, &keypair, token.as_deref());
        reference.sort();
        let mut decoded_sorted = decoded.clone();
        decoded_sorted.sort();
        prop_assert_eq!(decoded_sorted, reference);
        let credentials = Credentials { access_key: "AKLTexample".into(), secret_key: Secret::new("SK"), token: None };
        let time = Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0).unwrap();
        request::sign(&mut sent, "cn-beijing", &credentials, time);
        request::sign(&mut expected, "cn-beijing", &credentials, time);
        prop_assert_eq!(&sent.headers["authorization"], &expected.headers["authorization"]);
    }

    /// Likewise for the converging read, `DescribeInstances`.
    #[test]
    fn single_pass_describe_query_equals_the_reference(
        ids in proptest::collection::vec("[!-~]{1,40}|\\PC{1,8}", 0..=130),
        token in proptest::option::of("[!-~]{1,64}"),
    ) {
        let ids: Vec<InstanceId> = ids.into_iter().filter_map(|i| InstanceId::new(i).ok()).collect();
        let reference = canonical_query(&wire::describe_instances(&ids, token.as_deref()));
        prop_assert_eq!(wire::describe_instances_canonical(&ids, token.as_deref()), reference);
    }

    #[test]
    fn instance_ids_sort_as_bytes(n in 1usize..=100) {
        let pairs: Vec<(String, String)> = (1..=n).map(|i| (format!("InstanceIds.{i}"), format!("i-{i}"))).collect();
        let canonical = canonical_query(&pairs);
        let keys: Vec<String> = canonical.split('&').map(|p| p.split('=').next().unwrap().to_string()).collect();
        let mut expected: Vec<String> = pairs.iter().map(|(k, _)| k.clone()).collect();
        expected.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        prop_assert_eq!(keys, expected);
    }
}

#[test]
fn byte_order_puts_10_before_2() {
    let pairs: Vec<(String, String)> = ["InstanceIds.2", "InstanceIds.100", "InstanceIds.1", "InstanceIds.10"]
        .iter()
        .map(|k| (k.to_string(), "x".into()))
        .collect();
    assert_eq!(canonical_query(&pairs), "InstanceIds.1=x&InstanceIds.10=x&InstanceIds.100=x&InstanceIds.2=x");
}
