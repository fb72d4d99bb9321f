//! Core of keypair-binder: the [`KeypairBinder`] trait, the unified request and
//! report types (the model), and the provider [`kit`]: the engine every
//! provider shares (validation, de-duplication, chunking, bounded
//! concurrency, retries, the in-operation window, task polling, deadlines,
//! cancellation, progress).
//!
//! Provider crates implement only pure parts (signing, building a call,
//! classifying its answer) as a [`kit::Provider`]; everything that must
//! behave the same on every cloud lives here.

#![warn(missing_docs)]

pub mod binder;
pub mod env;
pub mod error;
pub mod fleet;
pub mod http;
pub mod ids;
pub mod journal;
pub mod kit;
pub mod plan;
pub mod progress;
pub mod public_key;
pub mod rate;
pub mod report;
pub mod request;
pub mod retry;
pub mod secret;
pub mod signing;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod validation;

pub use binder::{Capabilities, KeypairBinder, PostCondition};
pub use error::{Error, ValidationError};
pub use fleet::{DEFAULT_MAX_TARGETS, Fleet, FleetReport, FleetTarget, TargetReport};
pub use ids::{InstanceId, KeyPairRef};
pub use journal::{FleetHeader, Journal, JournalError, JournalHeader, Prior};
pub use plan::{Plan, PlannedCall};
pub use progress::{ProgressEvent, ProgressObserver};
pub use public_key::{KeypairEnsured, PublicKey};
pub use report::{BindReport, Failure, FailureKind, InstanceOutcome, Operation, RunStats};
pub use request::{BindRequest, RunOptions, UnbindRequest, VmCredential};
pub use retry::RetryPolicy;
pub use secret::Secret;

/// Re-exported so implementors need not depend on it themselves.
pub use async_trait::async_trait;
/// The HTTP client crate, at the version the providers' `.http_client(…)` takes.
pub use reqwest;
pub use signing::sha256_hex;
/// Re-exported so callers can cancel a run without depending on `tokio-util`.
pub use tokio_util::sync::CancellationToken;
