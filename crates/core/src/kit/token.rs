//! Idempotency tokens: fixed per set of instances before its first send.

use sha2::{Digest, Sha256};

use crate::ids::{InstanceId, KeyPairRef};
use crate::report::Operation;
use crate::request::MAX_CLIENT_TOKEN_LEN;

/// A token derived from the caller's base token and the call's contents, so
/// re-running the same request reuses the same tokens while a different set
/// of instances never does. At most 64 ASCII characters.
pub fn derive_token(
    base: &str,
    operation: Operation,
    keypair: Option<&KeyPairRef>,
    instances: &[InstanceId],
    generation: u32,
) -> String {
    let mut hash = Sha256::new();
    for part in [base, &operation.to_string(), keypair.map(KeyPairRef::as_str).unwrap_or("")] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for id in instances {
        hash.update(id.as_str().as_bytes());
        hash.update([0]);
    }
    hash.update(generation.to_be_bytes());
    let digest = hex::encode(&hash.finalize()[..12]);
    let prefix_len = MAX_CLIENT_TOKEN_LEN - digest.len() - 1;
    let prefix: String = base.chars().take(prefix_len).collect();
    format!("{prefix}-{digest}")
}
