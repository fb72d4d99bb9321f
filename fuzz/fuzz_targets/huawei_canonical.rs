#![no_main]
//! Huawei canonical URI, query and signature on arbitrary text.

use keypair_binder_core::Secret;
use keypair_binder_huawei::signer::{self, AkSk, SignableRequest, canonical_query, canonical_uri, parse_authorization};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\u{1}');
    let path = parts.next().unwrap_or("");
    let query: Vec<(String, String)> = parts.clone().zip(parts.skip(1)).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(canonical_uri(path).ends_with('/'));
    let _ = canonical_query(&query);
    let _ = parse_authorization(&text);
    let credentials = AkSk { access_key: "AK".into(), secret_key: Secret::new("SK"), token: None };
    let headers = vec![("X-Fuzz".to_string(), text.to_string())];
    let request = SignableRequest { method: "GET", host: "h", path, query: &query, headers: &headers, body: data };
    let _ = signer::sign(&request, &credentials, Some("p"), chrono::Utc::now());
});
