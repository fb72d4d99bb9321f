//! Volcengine ECS provider: binds key pairs with `AttachKeyPair` and removes
//! them with `DetachKeyPair` (API version 2020-04-01).
//!
//! - [`signer`]: the `HMAC-SHA256` signature, a pure function.
//! - [`wire`]: query parameters and response types.
//! - [`request`]: a signed call, built without I/O.
//! - [`errors`]: error codes to failure kinds and retry advice.
//! - [`VolcengineBinder`]: the [`KeypairBinder`](keypair_binder_core::KeypairBinder).

mod binder;
mod config;
pub mod errors;
pub mod request;
pub mod signer;
pub mod wire;

pub use binder::{VolcengineBinder, default_retry_policy, plan};
pub use config::{BOOTSTRAP_REGIONS, GLOBAL_HOST, VolcengineBuilder, VolcengineConfigKey, default_endpoint};
