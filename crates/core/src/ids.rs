//! Validated identifiers: instance ids and key pair references.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::validation::ValidationError;

/// Longest instance or key pair id accepted (every cloud's ids are far shorter).
pub const MAX_ID_LEN: usize = 128;
/// Longest key pair name accepted (Huawei's SDK allows 255).
pub const MAX_KEYPAIR_NAME_LEN: usize = 255;

/// Maps keyed by instance id inside a run: foldhash, seeded per process as
/// std's hasher is, costs a fraction of SipHash on ids this short.
pub(crate) type IdMap<V> = std::collections::HashMap<InstanceId, V, foldhash::fast::RandomState>;
/// Sets of instance ids inside a run; see [`IdMap`].
pub(crate) type IdSet = std::collections::HashSet<InstanceId, foldhash::fast::RandomState>;

/// A cloud VM id, checked before it can reach a request. Held once and
/// shared (cloning is a reference count), so the request, its calls and the
/// report hold no copies of the fleet's ids.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(Arc<str>);

impl<'de> serde::Deserialize<'de> for InstanceId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Checks the text where it lies: no `String` on the way to the `Arc`.
        struct IdVisitor;
        impl serde::de::Visitor<'_> for IdVisitor {
            type Value = InstanceId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an instance id")
            }
            fn visit_str<E: serde::de::Error>(self, id: &str) -> Result<InstanceId, E> {
                InstanceId::new(id).map_err(E::custom)
            }
        }
        d.deserialize_str(IdVisitor)
    }
}

impl Serialize for InstanceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl InstanceId {
    /// Validates an id: non-empty, at most [`MAX_ID_LEN`] bytes, no whitespace or
    /// control characters.
    pub fn new(id: impl AsRef<str>) -> Result<Self, ValidationError> {
        let id = id.as_ref();
        check_id(id, "instance id")?;
        Ok(Self(Arc::from(id)))
    }

    /// The id as sent to the cloud.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for InstanceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for InstanceId {
    type Error = ValidationError;
    fn try_from(value: &str) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl TryFrom<String> for InstanceId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

/// Which key pair to bind: clouds name key pairs, and some also give them ids.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyPairRef {
    /// The key pair's name (every provider).
    Name(String),
    /// The key pair's id (Volcengine's `kp-…`).
    Id(String),
}

impl KeyPairRef {
    /// A key pair by name, validated.
    pub fn name(name: impl Into<String>) -> Result<Self, ValidationError> {
        let name = name.into();
        check_text(&name, "key pair name", MAX_KEYPAIR_NAME_LEN)?;
        Ok(Self::Name(name))
    }

    /// A key pair by id, validated.
    pub fn id(id: impl Into<String>) -> Result<Self, ValidationError> {
        let id = id.into();
        check_id(&id, "key pair id")?;
        Ok(Self::Id(id))
    }

    /// The name or id, whichever this is.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Name(s) | Self::Id(s) => s,
        }
    }
}

impl fmt::Display for KeyPairRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn check_id(value: &str, what: &'static str) -> Result<(), ValidationError> {
    // Real ids are short printable ASCII: one pass settles them.
    if (1..=MAX_ID_LEN).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    check_text(value, what, MAX_ID_LEN)?;
    if let Some(c) = value.chars().find(|c| c.is_whitespace()) {
        return Err(ValidationError::InvalidCharacter { what, character: c });
    }
    Ok(())
}

fn check_text(value: &str, what: &'static str, max: usize) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Empty { what });
    }
    if value.len() > max {
        return Err(ValidationError::TooLong { what, len: value.len(), max });
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(ValidationError::InvalidCharacter { what, character: c });
    }
    if value.trim() != value {
        return Err(ValidationError::SurroundingWhitespace { what });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_checked() {
        assert!(InstanceId::new("i-abc").is_ok());
        assert!(matches!(InstanceId::new(""), Err(ValidationError::Empty { .. })));
        assert!(matches!(InstanceId::new("a b"), Err(ValidationError::InvalidCharacter { character: ' ', .. })));
        assert!(matches!(InstanceId::new("a\u{7}"), Err(ValidationError::InvalidCharacter { .. })));
        assert!(matches!(InstanceId::new("x".repeat(129)), Err(ValidationError::TooLong { len: 129, .. })));
        assert!(InstanceId::new("x".repeat(128)).is_ok());
    }

    #[test]
    fn keypair_names_are_checked() {
        assert!(KeyPairRef::name("kp prod").is_ok());
        assert!(matches!(KeyPairRef::name(""), Err(ValidationError::Empty { .. })));
        assert!(matches!(KeyPairRef::name("kp\n"), Err(ValidationError::InvalidCharacter { .. })));
        assert!(matches!(KeyPairRef::name(" kp"), Err(ValidationError::SurroundingWhitespace { .. })));
        assert!(matches!(KeyPairRef::name("k".repeat(256)), Err(ValidationError::TooLong { .. })));
        assert!(matches!(KeyPairRef::id("kp 1"), Err(ValidationError::InvalidCharacter { .. })));
    }
}
