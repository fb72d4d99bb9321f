#![no_main]
//! Volcengine ECS response readers on arbitrary status and bytes.

use keypair_binder_core::http::HttpResponse;
use keypair_binder_volcengine::errors::{parse_error, read_result};
use keypair_binder_volcengine::wire::{DescribeInstancesResult, OperationResult};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let status = 100 + u16::from(*data.first().unwrap_or(&0)) % 500;
    let body = data.get(1..).unwrap_or_default();
    let response = HttpResponse::new(status, body.to_vec());
    let _ = parse_error(&response);
    let _ = read_result::<OperationResult>(&response);
    let _ = read_result::<DescribeInstancesResult>(&response);
});
