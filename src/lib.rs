//! keypair-binder binds SSH key pairs to cloud VMs on several clouds behind one
//! trait, [`KeypairBinder`], and gives back a definite outcome for every VM.
//!
//! Each cloud sits behind a cargo feature:
//! - `huawei`: Huawei Cloud KPS ([`huawei`]);
//! - `volcengine`: Volcengine ECS ([`volcengine`]).
//!
//! `default-features = false` builds the core alone: the trait, the request
//! and report types and the shared engine.

pub use keypair_binder_core::*;

/// Huawei Cloud KPS provider.
#[cfg(feature = "huawei")]
pub use keypair_binder_huawei as huawei;

/// Volcengine ECS provider.
#[cfg(feature = "volcengine")]
pub use keypair_binder_volcengine as volcengine;
