#![no_main]
//! Tencent Cloud TC3 and legacy signatures on arbitrary text.

use keypair_binder_core::Secret;
use keypair_binder_tencent::signer::{Credentials, LegacyMethod, Tc3Request, sign_legacy, sign_tc3};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let parts: Vec<&str> = text.split('\u{1}').collect();
    let timestamp = i64::from_le_bytes(data.iter().copied().chain([0; 8]).take(8).collect::<Vec<_>>().try_into().unwrap());
    let credentials = Credentials { access_key: "AKID".into(), secret_key: Secret::new("SK"), token: None };
    let request = Tc3Request {
        method: parts[0],
        host: parts.get(1).copied().unwrap_or("cvm.tencentcloudapi.com"),
        query: parts.get(2).copied().unwrap_or(""),
        content_type: "application/json; charset=utf-8",
        payload: data,
        unsigned_payload: data.first().is_some_and(|b| b % 2 == 1),
        timestamp,
    };
    let _ = sign_tc3(&request, &credentials);
    let params: Vec<(String, String)> =
        parts.chunks(2).map(|p| (p[0].to_string(), p.get(1).unwrap_or(&"").to_string())).collect();
    let _ = sign_legacy(parts[0], "cvm.tencentcloudapi.com", "/", &params, "SK", LegacyMethod::HmacSha256);
});
