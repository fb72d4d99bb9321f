//! Tencent Cloud CVM provider (in progress): the request signatures, wire
//! types and error map, as pure functions tested against the official SDK's
//! vectors and captured exchanges.
//!
//! - [`signer`]: TC3-HMAC-SHA256 (the SDK's default) and the legacy
//!   signature (`HmacSHA1` / `HmacSHA256` over the sorted parameters).
//! - [`config`]: credentials, region and endpoint from settings, the
//!   environment (`TENCENTCLOUD_*`) and the tccli and SDK profile files.
//! - [`request`]: one call built without I/O, and [`request::CvmSigner`],
//!   TC3 as the provider kit's signer.
//! - [`wire`]: the JSON bodies and the `{"Response": …}` envelope.
//! - [`errors`]: error codes mapped to failure kinds, class and scope.
//!
//! The binder (AssociateInstancesKeyPairs/DisassociateInstancesKeyPairs on
//! the provider kit) comes next; see the project's open issue on Alibaba
//! Cloud and Tencent Cloud.

#![warn(missing_docs)]

pub mod config;
pub mod errors;
pub mod request;
pub mod signer;
pub mod wire;
