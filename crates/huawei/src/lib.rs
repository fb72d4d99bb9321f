//! Huawei Cloud KPS provider: binds key pairs to ECS VMs with associate and
//! batch-associate, removes them with disassociate, and polls every task to its end.
//!
//! - [`signer`]: the `SDK-HMAC-SHA256` signature, a pure function.
//! - [`wire`]: request bodies, paths and response types.
//! - [`request`]: one call, built without I/O.
//! - [`errors`]: KPS and gateway codes to failure kinds and retry advice.
//! - [`HuaweiBinder`]: the [`KeypairBinder`](keypair_binder_core::KeypairBinder).

mod auth;
mod binder;
mod config;
pub mod errors;
pub mod request;
pub mod signer;
pub mod wire;

pub use binder::{AGENT_SOURCE_CIDR, HuaweiBinder, default_retry_policy, plan};
pub use config::{HuaweiAuth, HuaweiBuilder, HuaweiConfigKey, Polling, REGIONS};
