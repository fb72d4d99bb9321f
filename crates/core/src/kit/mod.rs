//! The provider kit: what a provider author implements, and the engine that
//! runs it.
//!
//! A provider supplies pure parts through [`Provider`]: a [`Profile`] (caps,
//! defaults), `authorize` (sign a request with a credential at a given
//! time), `build_call` and
//! `classify` (one call and its answer, per instance), and optionally
//! [`TaskQueries`], a [`Reconciler`] and [`StateQueries`]. The [`Engine`]
//! owns everything else: the one send path, chunking, concurrency, the
//! in-operation window, retries with backoff, sticky ambiguity, fixed
//! idempotency tokens, adaptive task polling, the deadline, cancellation
//! and the credential gate (the first call of a run goes alone; a refused
//! credential stops the run).
//!
//! Clouds differ in what an answer can say, and [`Answer`] covers each:
//! per-instance results, tasks to follow, a state to wait out, a call that
//! may have been applied, and (for clouds that validate a call as a whole)
//! instances refused only for another's sake ([`Answer::Resend`]) or for one
//! the answer does not name ([`Answer::Split`]). A call that may have been
//! applied is settled by its idempotency token, a [`Reconciler`], or state
//! queries: the instance's key pair, or its latest operation
//! ([`InstanceView::latest_operation`]) having moved since it was read.
//!
//! This module is for provider crates; applications use the model
//! re-exported by the facade.

mod chunk;
mod credentials;
mod engine;
mod gate;
mod import;
mod instance_role;
mod net;
mod outgoing;
mod poll;
mod polling;
mod provider;
mod role_exchange;
mod run;
mod shell;
mod signer;
mod token;
mod transport;
mod window;

pub use crate::plan::chunks;
pub use crate::rate::{RateLimit, RateLimitError};
pub use crate::request::{DEFAULT_DEADLINE, DEFAULT_GRACE, DEFAULT_STATE_WAIT};
pub use credentials::{Credential, CredentialSource, Credentials, FixedCredential, Issued};
pub use engine::{Engine, RunSpec};
pub use instance_role::{
    InstanceRole, METADATA_TIMEOUT, MetadataService, MetadataToken, credentials_or_role, first_line_role,
};
pub use net::Net;
pub use outgoing::{OutgoingRequest, endpoint_uri, sdk_query_uri, uri_host};
pub use polling::{Polling, Schedule};
pub use provider::{
    Answer, Call, CallAnswer, CallKind, CredentialProblem, ErrorClass, InstanceView, Profile, Provider, Readiness,
    Reconciler, STATE_CHANGE_WAIT, StateQueries, StoredKeypair, TaskAnswer, TaskQueries, TaskRef, shared_id,
};
pub use role_exchange::{RoleExchange, RoleSource};
pub use shell::{CloudBinder, Refusals, RunOf};
pub use signer::{Signer, signed_by};
pub use token::derive_token;
pub use transport::Transport;

/// Declares a provider crate's internal modules (wire types, signer,
/// request builder, error map): public, and unstable, with the crate's
/// `internals` feature (for the emulator, benchmarks and fuzz targets);
/// private otherwise.
#[macro_export]
macro_rules! internal_modules {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        $(
            $(#[$attr])*
            #[cfg(feature = "internals")]
            pub mod $name;
            $(#[$attr])*
            #[cfg(not(feature = "internals"))]
            #[allow(dead_code, unused_imports)]
            mod $name;
        )*
    };
}
