//! The signer reproduces all 17 vectors made by the official Python SDK's signer.

use chrono::{NaiveDateTime, TimeZone, Utc};
use keypair_binder_core::Secret;
use keypair_binder_huawei::signer::{self, AkSk, SignableRequest, canonical_query, canonical_uri, encode};
use proptest::prelude::*;
use serde_json::Value;

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `[key, value]` pairs; a list value is a repeated key, as the SDK sends it.
fn query(v: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pair in v.as_array().unwrap() {
        let key = text(&pair[0]);
        match &pair[1] {
            Value::Array(values) => out.extend(values.iter().map(|x| (key.clone(), text(x)))),
            value => out.push((key, text(value))),
        }
    }
    out
}

#[test]
fn all_official_vectors() {
    let doc: Value = serde_json::from_str(include_str!("fixtures/huawei-signing.json")).unwrap();
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 17);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let (input, output) = (&v["input"], &v["output"]);
        let mut headers: Vec<(String, String)> =
            input["headers"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), text(v))).collect();
        if input["date_source"] == "caller_header" {
            headers.push(("X-Sdk-Date".into(), input["date"].as_str().unwrap().into()));
        }
        let time = NaiveDateTime::parse_from_str(input["date"].as_str().unwrap(), "%Y%m%dT%H%M%SZ").unwrap();
        let credentials = AkSk {
            access_key: input["ak"].as_str().unwrap().into(),
            secret_key: Secret::new(input["sk"].as_str().unwrap()),
            token: input["security_token"].as_str().map(Secret::new),
        };
        let query = query(&input["query_params"]);
        let request = SignableRequest {
            method: input["method"].as_str().unwrap(),
            host: input["host"].as_str().unwrap(),
            path: input["resource_path"].as_str().unwrap(),
            query: &query,
            headers: &headers,
            body: input["body"].as_str().unwrap_or("").as_bytes(),
        };
        let sig = signer::sign(&request, &credentials, input["project_id"].as_str(), Utc.from_utc_datetime(&time));
        assert_eq!(sig.canonical_request, output["canonical_request"].as_str().unwrap(), "{name}: canonical request");
        assert_eq!(sig.string_to_sign, output["string_to_sign"].as_str().unwrap(), "{name}: string to sign");
        assert_eq!(sig.signature, output["signature"].as_str().unwrap(), "{name}: signature");
        assert_eq!(sig.signed_headers, output["signed_headers"].as_str().unwrap(), "{name}: signed headers");
        assert_eq!(sig.authorization, output["authorization"].as_str().unwrap(), "{name}: authorization");
        let added = output["headers_added"].as_object().unwrap();
        assert_eq!(sig.headers.len(), added.len(), "{name}: headers added");
        for (header, value) in added {
            let ours = sig.headers.iter().find(|(n, _)| n == header).map(|(_, v)| v.as_str());
            assert_eq!(ours, value.as_str(), "{name}: added header {header}");
        }
        // The wire query is the canonical one.
        let target = output["request_target"].as_str().unwrap();
        let wire_query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
        assert_eq!(canonical_query(&query), wire_query, "{name}: wire query");
    }
}

proptest! {
    #[test]
    fn encoding_keeps_only_unreserved_and_round_trips(s in "\\PC*") {
        let e = encode(&s);
        prop_assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)));
        prop_assert_eq!(percent_encoding::percent_decode_str(&e).decode_utf8().unwrap(), s.as_str());
    }

    #[test]
    fn canonical_uri_always_ends_in_one_slash_and_ignores_a_trailing_one(segs in proptest::collection::vec("[a-zA-Z0-9 ._~+-]{1,8}", 1..5)) {
        let path = format!("/{}", segs.join("/"));
        let uri = canonical_uri(&path);
        prop_assert!(uri.ends_with('/') && !uri.ends_with("//"));
        prop_assert_eq!(canonical_uri(&format!("{path}/")), uri.clone());
        prop_assert!(!uri.contains(' ') && !uri.contains('+'));
    }

    #[test]
    fn canonical_uri_matches_the_sdk_rule_for_any_path(path in "[a-zA-Z0-9/%._~ +\u{e9}-]{0,24}") {
        // The SDK's rule, step by step: decode, split on `/`, encode each segment, join, end with `/`.
        let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
        let mut expected = decoded.split('/').map(encode).collect::<Vec<_>>().join("/");
        if !expected.ends_with('/') {
            expected.push('/');
        }
        prop_assert_eq!(canonical_uri(&path), expected);
    }

    #[test]
    fn query_sorted_by_key_then_value_repeats_kept(pairs in proptest::collection::vec(("[a-zA-Z ]{1,4}", "\\PC{0,4}"), 0..10)) {
        let pairs: Vec<(String, String)> = pairs;
        let q = canonical_query(&pairs);
        let parsed: Vec<(String, String)> = if q.is_empty() { vec![] } else {
            q.split('&').map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                let d = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8().unwrap().into_owned();
                (d(k), d(v))
            }).collect()
        };
        let mut expected = pairs.clone();
        expected.sort();
        prop_assert_eq!(parsed, expected);
    }
}

proptest! {
    /// The binder's signer hashes the canonical request as it writes it;
    /// `sign()` writes it out (and reproduces the official vectors). For any
    /// request both give the same `Authorization` and added headers.
    #[test]
    fn the_streaming_signer_signs_as_the_vector_tested_one(
        post in any::<bool>(),
        segments in proptest::collection::vec("[a-zA-Z0-9._~-]{1,8}", 0..4),
        query in proptest::collection::vec(("[a-zA-Z0-9 *~+]{1,6}", "\\PC{0,6}"), 0..5),
        headers in proptest::collection::vec(("[a-z][a-z0-9_-]{0,10}", "[ -~]{0,16}"), 0..5),
        content_type in proptest::option::of(prop_oneof![Just("application/json"), Just("text/plain")]),
        body in proptest::collection::vec(any::<u8>(), 0..64),
        token in proptest::option::of("[A-Za-z0-9]{8}"),
        project in proptest::option::of("[0-9a-f]{8}"),
        secs in 1_600_000_000i64..1_900_000_000,
    ) {
        use keypair_binder_core::kit::{OutgoingRequest, Signer};
        use http::header::{HeaderMap, HeaderName, HeaderValue};

        let time = Utc.timestamp_opt(secs, 0).unwrap();
        let key = AkSk {
            access_key: "HPUAEXAMPLE".into(),
            secret_key: Secret::new("secret"),
            token: token.map(Secret::new),
        };
        let path = format!("/v3/{}", segments.join("/"));
        let wire_query = canonical_query(&query);
        let endpoint = url::Url::parse("https://kps.example.com:8443").unwrap();
        let uri = keypair_binder_core::kit::endpoint_uri(&endpoint, &path, &wire_query).unwrap();
        let mut map = HeaderMap::new();
        for (name, value) in &headers {
            map.insert(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        if let Some(ct) = content_type {
            map.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        let method = if post { http::Method::POST } else { http::Method::GET };
        let mut outgoing = OutgoingRequest::new(method.clone(), uri.clone(), "test").with_headers(map.clone());
        if !body.is_empty() {
            outgoing = outgoing.with_body(body.clone());
        }
        let kit = signer::KpsSigner { project: project.clone() };
        kit.sign(&mut outgoing, &key, time);

        let own: Vec<(String, String)> =
            map.iter().map(|(n, v)| (n.as_str().to_string(), v.to_str().unwrap().to_string())).collect();
        let written = signer::sign(
            &SignableRequest {
                method: method.as_str(),
                host: "kps.example.com:8443",
                path: uri.path(),
                query: &query,
                headers: &own,
                body: &body,
            },
            &key,
            project.as_deref(),
            time,
        );
        prop_assert_eq!(outgoing.headers["authorization"].to_str().unwrap(), written.authorization.as_str());
        for (name, value) in &written.headers {
            if name != "Host" {
                prop_assert_eq!(outgoing.headers[name.as_str()].to_str().unwrap(), value.as_str(), "{}", name);
            }
        }
    }
}
