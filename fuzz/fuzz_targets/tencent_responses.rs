#![no_main]
//! Tencent Cloud CVM response readers on arbitrary bytes.

use keypair_binder_tencent::errors::{failure_of, named_instances};
use keypair_binder_tencent::wire::{self, InstancesAnswer, KeyPairsAnswer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(head) = wire::head(data)
        && let Some(error) = head.error
    {
        let _ = failure_of(&error, head.request_id);
        let _ = named_instances(&error.message, &["ins-1", "ins-2", ""]);
    }
    let _ = wire::parse::<InstancesAnswer>(data);
    let _ = wire::parse::<KeyPairsAnswer>(data);
    let text = String::from_utf8_lossy(data);
    let _ = named_instances(&text, &["ins-abc", "ins-abcd", "a"]);
});
