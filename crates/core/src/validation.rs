//! Why a request was refused before anything was sent: the model's input
//! checks, apart from the errors of a run.

/// Why a request was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A public key that is not one OpenSSH public key line the clouds take.
    #[error("malformed public key: {reason}")]
    PublicKey {
        /// Why.
        reason: String,
    },
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
