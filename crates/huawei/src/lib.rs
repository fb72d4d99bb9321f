//! Huawei Cloud KPS provider.
pub mod signer;
