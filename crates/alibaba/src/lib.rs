//! Alibaba Cloud ECS provider: binds key pairs with `AttachKeyPair` and
//! removes them with `DetachKeyPair` (API 2014-05-26), 50 instances a call.
//!
//! - `signer`: ACS3-HMAC-SHA256 (the SDK's default) and the legacy RPC
//!   signature (HMAC-SHA1, `SignatureVersion=1.0`).
//! - `wire`: parameters and answers of AttachKeyPair, DetachKeyPair and
//!   DescribeInstances.
//! - `request`: a call built without I/O, and `AcsSigner`.
//! - `errors`: ECS codes to failure kinds.
//! - [`AlibabaBinder`]: the [`KeypairBinder`](keypair_binder_core::KeypairBinder).
//!
//! `signer`, `wire`, `request` and `errors` are public only with the
//! `internals` feature, which is unstable and outside semver (the emulator,
//! benchmarks and fuzz targets use it).
//!
//! ```no_run
//! use keypair_binder_alibaba::AlibabaBinder;
//! use keypair_binder_core::{BindRequest, KeypairBinder};
//!
//! # async fn rotate(instances: Vec<String>) -> Result<(), keypair_binder_core::Error> {
//! // ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_REGION_ID
//! // (or ~/.aliyun/config.json, ~/.alibabacloud/credentials).
//! let binder = AlibabaBinder::from_env()?;
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

pub use binder::{AlibabaBinder, plan};
pub use config::{AlibabaBuilder, AlibabaConfigKey, default_endpoint};
