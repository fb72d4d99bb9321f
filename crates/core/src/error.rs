//! Request-level errors. Per-instance failures are data in the report, not errors.

use crate::report::Failure;
pub use crate::validation::ValidationError;

/// A failure of the whole request: nothing (or nothing more) could be done.
///
/// Partial failure is never an `Error`: every instance then has its own
/// outcome in the [`BindReport`](crate::BindReport).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed; nothing was sent.
    #[error("invalid request: {0}")]
    Validation(#[from] ValidationError),
    /// The provider cannot honour an option; nothing was sent.
    #[error("{provider}: option `{option}` is not supported: {reason}")]
    Unsupported {
        /// The provider.
        provider: &'static str,
        /// The option.
        option: &'static str,
        /// Why.
        reason: String,
    },
    /// The binder is misconfigured (endpoint, region, credentials missing).
    #[error("{provider}: configuration error: {message}")]
    Config {
        /// The provider.
        provider: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No source of the credential chain yielded credentials; nothing was sent to the cloud.
    #[error("{provider}: {failure}")]
    NoCredentials {
        /// The provider.
        provider: &'static str,
        /// The sources tried and why each had none.
        failure: Box<Failure>,
    },
    /// The cloud refused the credentials; nothing was applied.
    #[error("{provider}: authentication failed: {failure}")]
    Authentication {
        /// The provider.
        provider: &'static str,
        /// What the cloud said.
        failure: Box<Failure>,
    },
    /// The credentials lack permission; nothing was applied.
    #[error("{provider}: permission denied: {failure}")]
    PermissionDenied {
        /// The provider.
        provider: &'static str,
        /// What the cloud said.
        failure: Box<Failure>,
    },
    /// Nothing could be sent (connection refused, DNS, TLS).
    #[error("{provider}: nothing could be sent: {failure}")]
    Unreachable {
        /// The provider.
        provider: &'static str,
        /// What the cloud said.
        failure: Box<Failure>,
    },
    /// The key pair could not be ensured: it holds another key under that
    /// name, or the import failed; nothing was bound.
    #[error("{provider}: key pair {name}: {message}")]
    KeyPair {
        /// The provider.
        provider: &'static str,
        /// The key pair.
        name: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// A configuration error for `provider`.
    pub fn config(provider: &'static str, message: impl Into<String>) -> Self {
        Self::Config { provider, message: message.into() }
    }

    /// An option `provider` cannot honour.
    pub fn unsupported(provider: &'static str, option: &'static str, reason: impl Into<String>) -> Self {
        Self::Unsupported { provider, option, reason: reason.into() }
    }
}
