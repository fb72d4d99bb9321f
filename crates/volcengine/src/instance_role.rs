//! The IAM role of the ECS instance this runs on, from the instance
//! metadata service at `100.96.0.96` (with its session token).

use chrono::DateTime;
use keypair_binder_core::kit::{Issued, MetadataService, MetadataToken, first_line_role};
use serde::Deserialize;

/// The ECS metadata service as the SDK asks it.
pub(crate) static METADATA: MetadataService = MetadataService {
    source: "ecs_role",
    endpoint: "http://100.96.0.96",
    token: Some(MetadataToken {
        path: "/latest/api/token",
        ttl_header: "x-volc-ecs-metadata-token-ttl-seconds",
        header: "x-volc-ecs-metadata-token",
    }),
    roles: Some("/volcstack/latest/iam/security_credentials?type=user&format=json"),
    credentials: "/volcstack/latest/iam/security_credentials/",
    read_role,
    read_credentials,
};

/// The first role of the list: a JSON array of names, else one name a line (as the SDK reads it).
fn read_role(text: &str) -> Option<String> {
    match serde_json::from_str::<Vec<String>>(text) {
        Ok(names) => names.into_iter().find(|n| !n.is_empty()),
        Err(_) => first_line_role(text),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleCredentials {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    expired_time: Option<String>,
}

/// The expiry is `ExpiredTime`, RFC 3339 with an offset.
fn read_credentials(body: &[u8]) -> Result<Issued, String> {
    let answer: RoleCredentials = serde_json::from_slice(body).map_err(|e| format!("unreadable answer: {e}"))?;
    let expired = answer.expired_time.unwrap_or_default();
    let expires_at =
        DateTime::parse_from_rfc3339(&expired).map_err(|_| format!("unreadable ExpiredTime {expired:?}"))?;
    Issued::temporary_keys(
        (answer.access_key_id, answer.secret_access_key, answer.session_token),
        expires_at.to_utc(),
        "AccessKeyId, SecretAccessKey or SessionToken",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_credentials_are_read_as_the_sdk_reads_them() {
        assert_eq!(read_role(r#"["ops","other"]"#).as_deref(), Some("ops"));
        assert_eq!(read_role("ops\nother\n").as_deref(), Some("ops"));
        assert_eq!(read_role("[]"), None);
        let body = br#"{"AccessKeyId":"AKTPtmp","SecretAccessKey":"s3cr3t","SessionToken":"tok","ExpiredTime":"2026-12-07T20:00:00+08:00"}"#;
        let issued = read_credentials(body).unwrap();
        assert_eq!(issued.expires_at.unwrap().to_rfc3339(), "2026-12-07T12:00:00+00:00");
        assert!(read_credentials(br#"{"AccessKeyId":"a","SecretAccessKey":"b","SessionToken":"c"}"#).is_err());
    }
}
