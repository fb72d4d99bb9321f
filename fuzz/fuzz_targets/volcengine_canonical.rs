#![no_main]
//! Volcengine canonical query and signature on arbitrary text.

use keypair_binder_core::Secret;
use keypair_binder_volcengine::signer::{self, Credentials, SignableRequest, canonical_query, parse_authorization};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\u{1}').collect();
    let query: Vec<(String, String)> = parts.chunks(2).map(|p| (p[0].to_string(), p.get(1).unwrap_or(&"").to_string())).collect();
    let _ = canonical_query(&query);
    let _ = parse_authorization(&text);
    let credentials = Credentials { access_key: "AK".into(), secret_key: Secret::new("SK"), token: None };
    let headers = vec![("X-Fuzz".to_string(), text.to_string())];
    let request = SignableRequest { method: "GET", host: &text, path: "/", query: &query, headers: &headers, body: data };
    let _ = signer::sign(&request, &credentials, parts[0], chrono::Utc::now());
});
