//! Tencent Cloud CVM provider (in progress): the request signatures, as
//! pure functions tested against the official SDK's vectors.
//!
//! - [`signer`]: TC3-HMAC-SHA256 (the SDK's default) and the legacy
//!   signature (`HmacSHA1` / `HmacSHA256` over the sorted parameters).
//!
//! The binder (AssociateInstancesKeyPairs/DisassociateInstancesKeyPairs on
//! the provider kit) comes next; see the project's open issue on Alibaba
//! Cloud and Tencent Cloud.

#![warn(missing_docs)]

pub mod signer;
