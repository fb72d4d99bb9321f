#![no_main]
//! Alibaba Cloud ACS3 and RPC canonicalisation and signatures on arbitrary text.

use keypair_binder_alibaba::signer::{AccessKey, Acs3Request, canonical_query, sign_acs3, sign_rpc};
use keypair_binder_core::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\u{1}').collect();
    let query: Vec<(String, String)> =
        parts.chunks(2).map(|p| (p[0].to_string(), p.get(1).unwrap_or(&"").to_string())).collect();
    let _ = canonical_query(&query);
    let token = (data.len() % 2 == 0).then(|| Secret::new("token"));
    let key = AccessKey { access_key: "LTAI".into(), secret_key: Secret::new("SK"), token };
    let headers = vec![("host".to_string(), "ecs.aliyuncs.com".to_string()), ("x-fuzz".to_string(), text.to_string())];
    let request = Acs3Request { method: parts[0], path: "/", query: &query, headers: &headers, body: data };
    let _ = sign_acs3(&request, &key);
    let _ = sign_rpc(parts[0], &query, &key);
});
