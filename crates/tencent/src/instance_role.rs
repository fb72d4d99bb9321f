//! The CAM role of the CVM this runs on, from the instance metadata service
//! at `metadata.tencentyun.com` (no session token, as the SDK asks it).

use chrono::DateTime;
use keypair_binder_core::kit::{Issued, MetadataService, first_line_role};
use serde::Deserialize;

/// The CVM metadata service as the SDK asks it.
pub(crate) static METADATA: MetadataService = MetadataService {
    source: "cvm_role",
    endpoint: "http://metadata.tencentyun.com",
    token: None,
    roles: Some("/latest/meta-data/cam/security-credentials/"),
    credentials: "/latest/meta-data/cam/security-credentials/",
    read_role: first_line_role,
    read_credentials,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleCredentials {
    code: Option<String>,
    tmp_secret_id: Option<String>,
    tmp_secret_key: Option<String>,
    token: Option<String>,
    expired_time: Option<i64>,
}

/// `Code` must be `Success`; the expiry is `ExpiredTime`, epoch seconds (what the SDK reads).
fn read_credentials(body: &[u8]) -> Result<Issued, String> {
    let answer: RoleCredentials = serde_json::from_slice(body).map_err(|e| format!("unreadable answer: {e}"))?;
    if answer.code.as_deref() != Some("Success") {
        return Err(format!("Code is {:?}, not Success", answer.code.unwrap_or_default()));
    }
    let expires_at = answer
        .expired_time
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or("the answer lacks a readable ExpiredTime")?;
    Issued::temporary_keys(
        (answer.tmp_secret_id, answer.tmp_secret_key, answer.token),
        expires_at,
        "TmpSecretId, TmpSecretKey or Token",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keypair_binder_core::kit::Credential;

    #[test]
    fn role_credentials_are_read_as_the_sdk_reads_them() {
        let body = br#"{"Code":"Success","TmpSecretId":"AKIDtmp","TmpSecretKey":"s3cr3t","Token":"tok","ExpiredTime":1796666400,"Expiration":"2026-12-07T18:00:00Z"}"#;
        let issued = read_credentials(body).unwrap();
        assert_eq!(issued.expires_at.unwrap().timestamp(), 1_796_666_400);
        let Credential::AccessKey(key) = &issued.credential else { panic!("an access key") };
        assert_eq!(key.access_key, "AKIDtmp");
        assert!(read_credentials(br#"{"Code":"Fail"}"#).is_err());
        assert!(read_credentials(br#"{"Code":"Success","TmpSecretId":"a","TmpSecretKey":"b","Token":"c"}"#).is_err());
    }
}
