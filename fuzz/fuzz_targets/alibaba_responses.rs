#![no_main]
//! Alibaba Cloud ECS response readers on arbitrary status and bytes.

use keypair_binder_alibaba::errors::{failure_of, instance_failure};
use keypair_binder_alibaba::wire::{DescribeInstancesResult, KeyPairCallResult};
use keypair_binder_core::http::HttpResponse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let status = 100 + u16::from(*data.first().unwrap_or(&0)) % 500;
    let body = data.get(1..).unwrap_or_default();
    let response = HttpResponse::new(status, body.to_vec());
    let _ = failure_of(&response);
    if let Ok(result) = serde_json::from_slice::<KeyPairCallResult>(body) {
        let text = format!("{result:?}");
        let _ = instance_failure(&text, &text);
    }
    let _ = serde_json::from_slice::<DescribeInstancesResult>(body);
});
