//! Tencent Cloud CVM provider: binds key pairs with
//! `AssociateInstancesKeyPairs` and removes them with
//! `DisassociateInstancesKeyPairs` (API 2017-03-12), 100 instances a call,
//! following each instance's asynchronous operation to its end.
//!
//! - `signer`: TC3-HMAC-SHA256 (the SDK's default) and the legacy
//!   signature (`HmacSHA1` / `HmacSHA256` over the sorted parameters).
//! - [`TencentBuilder`]: credentials, region and endpoint from settings, the
//!   environment (`TENCENTCLOUD_*`) and the tccli and SDK profile files.
//! - `request`: one call built without I/O, and `CvmSigner`,
//!   TC3 as the provider kit's signer.
//! - `wire`: the JSON bodies and the `{"Response": …}` envelope.
//! - `errors`: error codes mapped to failure kinds, class and scope.
//! - [`TencentBinder`]: the [`KeypairBinder`](keypair_binder_core::KeypairBinder).
//!
//! `signer`, `wire`, `request` and `errors` are public only with the
//! `internals` feature, which is unstable and outside semver (the emulator,
//! benchmarks and fuzz targets use it).
//!
//! Running instances are never stopped without consent: they fail unsent
//! unless the request consents with `force_stop(true)` on its builder.
//!
//! ```no_run
//! use keypair_binder_core::{BindRequest, KeypairBinder};
//! use keypair_binder_tencent::TencentBinder;
//!
//! # async fn rotate(instances: Vec<String>) -> Result<(), keypair_binder_core::Error> {
//! // TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY, TENCENTCLOUD_REGION (or a tccli profile).
//! let binder = TencentBinder::from_env()?;
//! let request = BindRequest::builder()
//!     .keypair_id("skey-3fa1b2c4")
//!     .instances(instances)
//!     .force_stop(true) // running instances are stopped and started again
//!     .build()?;
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

pub use binder::{TencentBinder, plan};
pub use config::{TencentBuilder, TencentConfigKey, default_endpoint};
