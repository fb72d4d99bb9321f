//! Volcengine ECS provider: binds key pairs with `AttachKeyPair` and removes
//! them with `DetachKeyPair` (API version 2020-04-01).
//!
//! - `signer`: the `HMAC-SHA256` signature, a pure function.
//! - `wire`: query parameters and response types.
//! - `request`: a signed call, built without I/O.
//! - `errors`: error codes to failure kinds and retry advice.
//! - [`VolcengineBinder`]: the [`KeypairBinder`](keypair_binder_core::KeypairBinder).
//!
//! `signer`, `wire`, `request` and `errors` are public only with the
//! `internals` feature, which is unstable and outside semver (the emulator,
//! benchmarks and fuzz targets use it).
//!
//! ```no_run
//! use keypair_binder_core::{BindRequest, KeypairBinder};
//! use keypair_binder_volcengine::VolcengineBinder;
//!
//! # async fn rotate(instances: Vec<String>) -> Result<(), keypair_binder_core::Error> {
//! // VOLCENGINE_ACCESS_KEY, VOLCENGINE_SECRET_KEY, VOLCENGINE_REGION (or ~/.volcengine/config.json).
//! let binder = VolcengineBinder::from_env()?;
//! let request = BindRequest::builder().keypair_name("ops-2026").instances(instances).build()?;
//! let report = binder.bind(request).await?;
//! for (id, failure) in report.failed() {
//!     eprintln!("{id}: {failure}");
//! }
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod binder;
mod config;
mod instance_role;
mod sts;
keypair_binder_core::internal_modules!(errors, request, signer, wire);

pub use binder::{VolcengineBinder, plan};
pub use config::{BOOTSTRAP_REGIONS, GLOBAL_HOST, VolcengineBuilder, VolcengineConfigKey, default_endpoint};
