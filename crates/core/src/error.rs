//! Request-level errors. Per-instance failures are data in the report, not errors.

use crate::report::Failure;

/// Why a request was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// The request names no instance.
    #[error("no instances given")]
    NoInstances,
    /// More instances than the configured ceiling.
    #[error("{count} instances exceed the ceiling of {max} per request")]
    TooManyInstances {
        /// Distinct instances given.
        count: usize,
        /// The ceiling.
        max: usize,
    },
    /// A required value is empty.
    #[error("{what} is empty")]
    Empty {
        /// Which value.
        what: &'static str,
    },
    /// A value is longer than allowed.
    #[error("{what} is {len} bytes long; at most {max} allowed")]
    TooLong {
        /// Which value.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most allowed.
        max: usize,
    },
    /// A value holds a character that is not allowed.
    #[error("{what} contains the character {character:?}, which is not allowed")]
    InvalidCharacter {
        /// Which value.
        what: &'static str,
        /// The character.
        character: char,
    },
    /// A value starts or ends with whitespace.
    #[error("{what} starts or ends with whitespace")]
    SurroundingWhitespace {
        /// Which value.
        what: &'static str,
    },
    /// An instance id at a given input position is invalid.
    #[error("instance #{index}: {source}")]
    Instance {
        /// Its position in the input.
        index: usize,
        /// What is wrong with it.
        #[source]
        source: Box<ValidationError>,
    },
    /// The request lacks a key pair.
    #[error("no key pair given")]
    NoKeyPair,
    /// A value is outside its allowed range.
    #[error("{what}: {reason}")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

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
