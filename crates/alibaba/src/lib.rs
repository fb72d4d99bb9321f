//! Alibaba Cloud ECS provider (in progress): the request signatures, as
//! pure functions tested against the official SDK's vectors.
//!
//! - [`signer`]: ACS3-HMAC-SHA256 (the SDK's default) and the legacy RPC
//!   signature (HMAC-SHA1, `SignatureVersion=1.0`).
//! - [`wire`]: parameters and answers of AttachKeyPair, DetachKeyPair and
//!   DescribeInstances.
//!
//! The binder (AttachKeyPair/DetachKeyPair on the provider kit) comes next;
//! see the project's open issue on Alibaba Cloud and Tencent Cloud.

#![warn(missing_docs)]

pub mod signer;
pub mod wire;
