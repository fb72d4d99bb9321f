#![no_main]
//! Huawei KPS response readers on arbitrary status and bytes.

use keypair_binder_core::http::HttpResponse;
use keypair_binder_huawei::errors::failure_of;
use keypair_binder_huawei::wire::{BatchResponse, FailedTasks, RunningTasks, TaskResponse, TaskStatus};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let status = 100 + u16::from(*data.first().unwrap_or(&0)) % 500;
    let body = data.get(1..).unwrap_or_default();
    let response = HttpResponse::new(status, body.to_vec());
    let _ = failure_of(&response);
    let _ = serde_json::from_slice::<BatchResponse>(body);
    let _ = serde_json::from_slice::<TaskResponse>(body).map(|t| t.delivered());
    let _ = serde_json::from_slice::<TaskStatus>(body).map(|t| t.phase());
    let _ = serde_json::from_slice::<FailedTasks>(body);
    let _ = serde_json::from_slice::<RunningTasks>(body);
});
