//! The agency of the ECS this runs on, from the OpenStack metadata service
//! at `169.254.169.254` (with its session token, as the SDK asks it).

use chrono::NaiveDateTime;
use keypair_binder_core::kit::{Issued, MetadataService, MetadataToken, first_line_role};
use serde::Deserialize;

/// The ECS metadata service as the SDK asks it.
pub(crate) static METADATA: MetadataService = MetadataService {
    source: "ecs_agency",
    endpoint: "http://169.254.169.254",
    token: Some(MetadataToken {
        path: "/meta-data/latest/api/token",
        ttl_header: "x-metadata-token-ttl-seconds",
        header: "x-metadata-token",
    }),
    roles: None,
    credentials: "/openstack/latest/securitykey",
    read_role: first_line_role,
    read_credentials: read_security_key,
};

#[derive(Deserialize)]
struct Answer {
    #[serde(alias = "credentials")]
    credential: Option<SecurityKey>,
}

#[derive(Deserialize)]
struct SecurityKey {
    #[serde(alias = "accessKeyId", alias = "access_key_id")]
    access: Option<String>,
    #[serde(alias = "secretAccessKey", alias = "secret_access_key")]
    secret: Option<String>,
    #[serde(alias = "securityToken", alias = "security_token")]
    securitytoken: Option<String>,
    #[serde(alias = "expiration")]
    expires_at: Option<String>,
}

/// `{"credential": {access, secret, securitytoken, expires_at}}`, the expiry
/// UTC with microseconds (`2024-05-20T08:30:00.000000Z`).
pub(crate) fn read_security_key(body: &[u8]) -> Result<Issued, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| format!("unreadable answer: {e}"))?;
    let key = answer.credential.ok_or("the answer has no credential")?;
    let expires = key.expires_at.unwrap_or_default();
    let expires_at = NaiveDateTime::parse_from_str(&expires, "%Y-%m-%dT%H:%M:%S%.fZ")
        .map_err(|_| format!("unreadable expires_at {expires:?}"))?
        .and_utc();
    Issued::temporary_keys((key.access, key.secret, key.securitytoken), expires_at, "access, secret or securitytoken")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_security_key_is_read_as_the_sdk_reads_it() {
        let body = br#"{"credential":{"access":"HSTtmp","secret":"s3cr3t","securitytoken":"tok","expires_at":"2026-12-07T18:00:00.000000Z"}}"#;
        let issued = read_security_key(body).unwrap();
        assert_eq!(issued.expires_at.unwrap().to_rfc3339(), "2026-12-07T18:00:00+00:00");
        let other = br#"{"credentials":{"accessKeyId":"a","secretAccessKey":"b","securityToken":"c","expiration":"2026-12-07T18:00:00Z"}}"#;
        assert!(read_security_key(other).is_ok());
        assert!(read_security_key(br#"{"credential":{"access":"a"}}"#).is_err());
        assert!(read_security_key(b"{}").is_err());
    }
}
