//! An OpenSSH public key to import, and what ensuring a key pair did: key
//! pairs are regional, so a fleet imports the same key into each region
//! where it is missing.

use base64::Engine as _;
use md5::Digest as _;

use crate::validation::ValidationError;

/// Key types every cloud here takes (OpenSSH names).
const KEY_TYPES: [&str; 5] =
    ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521"];

/// Longest public key line read (an RSA 16384-bit key is about 2.8 KB).
const MAX_LINE: usize = 16 * 1024;

/// An OpenSSH public key (`ssh-ed25519 AAAA… comment`), checked: its type is
/// one the clouds take and its base64 blob names that type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    key_type: String,
    blob: Vec<u8>,
    comment: Option<String>,
}

impl PublicKey {
    /// Parses one OpenSSH public key line (a `.pub` file's text).
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let bad = |why: &str| ValidationError::PublicKey { reason: why.to_string() };
        let text = text.trim();
        if text.len() > MAX_LINE {
            return Err(bad("longer than any OpenSSH public key"));
        }
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if text.lines().count() != 1 {
            return Err(bad("an OpenSSH public key is one line (a private key or a PEM block is not)"));
        }
        let mut fields = text.split_whitespace();
        let key_type = fields.next().ok_or_else(|| bad("empty"))?;
        if !KEY_TYPES.contains(&key_type) {
            return Err(bad(&format!(
                "key type {key_type:?} is not one of ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521"
            )));
        }
        let encoded = fields.next().ok_or_else(|| bad("no key after the type"))?;
        let blob =
            base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| bad("the key is not base64"))?;
        // The blob starts with its own type name, length-prefixed.
        let named = blob
            .get(..4)
            .map(|len| u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize)
            .and_then(|len| blob.get(4..4 + len));
        if named != Some(key_type.as_bytes()) {
            return Err(bad(&format!("the key's data does not hold a {key_type} key")));
        }
        let comment = fields.collect::<Vec<_>>().join(" ");
        let comment = (!comment.is_empty()).then_some(comment);
        Ok(Self { key_type: key_type.to_string(), blob, comment })
    }

    /// The key type (`ssh-ed25519`…).
    pub fn key_type(&self) -> &str {
        &self.key_type
    }

    /// The line to send: type and base64, and the comment when there is one.
    pub fn openssh(&self) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(&self.blob);
        match &self.comment {
            Some(c) => format!("{} {encoded} {c}", self.key_type),
            None => format!("{} {encoded}", self.key_type),
        }
    }

    /// The MD5 fingerprint of the key's blob, colon-separated hex (RFC 4716),
    /// as the clouds that show one compute it.
    pub fn md5_fingerprint(&self) -> String {
        let digest = md5::Md5::digest(&self.blob);
        digest.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// Whether `line` (a cloud's stored public key) is this key: the same
    /// type and blob, whatever the comment.
    pub fn same_as(&self, line: &str) -> bool {
        Self::parse(line).is_ok_and(|other| other.key_type == self.key_type && other.blob == self.blob)
    }

    /// Whether `fingerprint` (a cloud's, MD5 in any of the clouds' spellings:
    /// with or without colons, any case) is this key's.
    pub fn has_fingerprint(&self, fingerprint: &str) -> bool {
        let normal = |f: &str| f.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
        normal(fingerprint) == normal(&self.md5_fingerprint())
    }
}

/// What ensuring a key pair did in one region.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeypairEnsured {
    /// Its name.
    pub name: String,
    /// Its id, where the cloud gives one (Volcengine `kp-…`, Tencent `skey-…`).
    pub id: Option<String>,
    /// Imported now (`false`: it was there already with the same key).
    pub imported: bool,
}

impl KeypairEnsured {
    /// The key pair `name`, imported now or found.
    pub fn new(name: impl Into<String>, id: Option<String>, imported: bool) -> Self {
        Self { name: name.into(), id, imported }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `ssh-keygen -t ed25519 -C ops@example` output (a throwaway key made for this test).
    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcurPTkdniudeVIVoKJ47fksQbU+WXB9FUQgaL+HgFV ops@example";
    /// `ssh-keygen -l -E md5` of it.
    const ED25519_MD5: &str = "c4:57:a7:52:61:df:ff:41:54:39:3f:6f:96:32:84:f8";
    /// `ssh-keygen -t ecdsa`.
    const ECDSA: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBFlUOXktc3VauYMFhh9adcxZ32yml4uyGHRBrMpMDRDq9Q0i+3Lfxq3yvEspnlvEvleYZ7B5x7+3998DqIe+uc8=";

    #[test]
    fn an_openssh_line_parses_and_keeps_its_comment() {
        let key = PublicKey::parse(&format!("  {ED25519}\n")).unwrap();
        assert_eq!(key.key_type(), "ssh-ed25519");
        assert_eq!(key.openssh(), ED25519);
        assert!(key.same_as("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHcurPTkdniudeVIVoKJ47fksQbU+WXB9FUQgaL+HgFV"));
        assert_eq!(key.md5_fingerprint(), ED25519_MD5);
        assert!(key.has_fingerprint(&ED25519_MD5.replace(':', "").to_uppercase()));
        let ecdsa = PublicKey::parse(ECDSA).unwrap();
        assert_eq!(ecdsa.key_type(), "ecdsa-sha2-nistp256");
        assert!(!ecdsa.same_as(ED25519) && !key.same_as(ECDSA));
    }

    #[test]
    fn what_is_not_a_public_key_is_refused_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("ssh-dss AAAAB3NzaC1kc3M=", "not one of"),
            ("ssh-ed25519 not-base64!", "not base64"),
            // An RSA blob under the ed25519 name.
            ("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB", "does not hold"),
            ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbg==\n-----END OPENSSH PRIVATE KEY-----", "one line"),
        ];
        for (text, why) in cases {
            let err = PublicKey::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }
}
