//! Huawei Cloud KPS provider: binds key pairs to ECS VMs with associate and
//! batch-associate, removes them with disassociate, and polls every task to its end.
//!
//! - `signer`: the `SDK-HMAC-SHA256` signature, a pure function.
//! - `wire`: request bodies, paths and response types.
//! - `request`: one call, built without I/O.
//! - `errors`: KPS and gateway codes to failure kinds and retry advice.
//! - [`HuaweiBinder`]: the [`KeypairBinder`](keypair_binder_core::KeypairBinder).
//!
//! `signer`, `wire`, `request` and `errors` are public only with the
//! `internals` feature, which is unstable and outside semver (the emulator,
//! benchmarks and fuzz targets use it).
//!
//! ```no_run
//! use keypair_binder_core::{BindRequest, KeypairBinder, VmCredential};
//! use keypair_binder_huawei::HuaweiBinder;
//!
//! # async fn rotate(vms: Vec<String>, root_password: String) -> Result<(), keypair_binder_core::Error> {
//! // HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK, HW_REGION_NAME (or ~/.huaweicloud/credentials).
//! let binder = HuaweiBinder::from_env()?;
//! // A root password binds running VMs without a key, 10 a call; stopped VMs are reset.
//! let request = BindRequest::builder()
//!     .keypair_name("ops-2026")
//!     .instances(vms)
//!     .credential(VmCredential::password(root_password))
//!     .build()?;
//! let report = binder.bind(request).await?;
//! println!("{} of {} bound", report.bound().count(), report.outcomes.len());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod auth;
mod binder;
mod config;
mod instance_role;
mod sts;
keypair_binder_core::internal_modules!(errors, request, signer, wire);

pub use binder::{AGENT_SOURCE_CIDR, HuaweiBinder, plan};
pub use config::{HuaweiAuth, HuaweiBuilder, HuaweiConfigKey, Polling, REGIONS};
