//! keypair-binder binds SSH key pairs to cloud VMs on several clouds behind one
//! trait, [`KeypairBinder`], and gives back a definite outcome for every VM.
//!
//! Each cloud sits behind a cargo feature:
//! - `huawei`: Huawei Cloud KPS ([`huawei`]);
//! - `volcengine`: Volcengine ECS ([`volcengine`]);
//! - `alibaba`: Alibaba Cloud ECS ([`alibaba`]).
//! - `tencent`: Tencent Cloud CVM ([`tencent`]).
//!
//! `default-features = false` builds the model alone: the trait, the request
//! and report types. Provider authors use `keypair-binder-core`'s `kit`.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// The README's library example runs as a doctest (it needs the in-memory binder).
#![cfg_attr(feature = "testing", doc = include_str!("../README.md"))]

pub use keypair_binder_core::http::HttpOptions;
pub use keypair_binder_core::kit::RateLimit;
pub use keypair_binder_core::request::{BindRequestBuilder, RequestCommon, Targets, UnbindRequestBuilder};
/// The HTTP client crate, at the version every provider builder's `.http_client(…)` takes.
pub use keypair_binder_core::reqwest;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub use keypair_binder_core::testing;
pub use keypair_binder_core::{
    BindReport, BindRequest, CancellationToken, Capabilities, DEFAULT_MAX_TARGETS, Error, Failure, FailureKind, Fleet,
    FleetHeader, FleetReport, FleetTarget, InstanceId, InstanceOutcome, Journal, JournalError, JournalHeader,
    KeyPairRef, KeypairBinder, KeypairEnsured, Operation, Plan, PlannedCall, PostCondition, Prior, ProgressEvent,
    ProgressObserver, PublicKey, RetryPolicy, RunOptions, RunStats, Secret, TargetReport, UnbindRequest,
    ValidationError, VmCredential,
};

/// Huawei Cloud KPS provider.
#[cfg(feature = "huawei")]
#[cfg_attr(docsrs, doc(cfg(feature = "huawei")))]
#[doc(inline)]
pub use keypair_binder_huawei as huawei;

/// Alibaba Cloud ECS provider.
#[cfg(feature = "alibaba")]
#[cfg_attr(docsrs, doc(cfg(feature = "alibaba")))]
#[doc(inline)]
pub use keypair_binder_alibaba as alibaba;

/// Tencent Cloud CVM provider.
#[cfg(feature = "tencent")]
#[cfg_attr(docsrs, doc(cfg(feature = "tencent")))]
#[doc(inline)]
pub use keypair_binder_tencent as tencent;

/// Volcengine ECS provider.
#[cfg(feature = "volcengine")]
#[cfg_attr(docsrs, doc(cfg(feature = "volcengine")))]
#[doc(inline)]
pub use keypair_binder_volcengine as volcengine;
