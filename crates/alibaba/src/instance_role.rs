//! The ECS RAM role of the VM this runs on, from the instance metadata
//! service at `100.100.100.200` (with its session token, IMDSv2), and the
//! credentials URI that answers the same way.

use chrono::NaiveDateTime;
use keypair_binder_core::kit::{Issued, MetadataService, MetadataToken, first_line_role};
use serde::Deserialize;

/// The ECS metadata service as the credentials SDK asks it.
pub(crate) static METADATA: MetadataService = MetadataService {
    source: "ecs_ram_role",
    endpoint: "http://100.100.100.200",
    token: Some(MetadataToken {
        path: "/latest/api/token",
        ttl_header: "x-aliyun-ecs-metadata-token-ttl-seconds",
        header: "x-aliyun-ecs-metadata-token",
    }),
    roles: Some("/latest/meta-data/ram/security-credentials/"),
    credentials: "/latest/meta-data/ram/security-credentials/",
    read_role: first_line_role,
    read_credentials,
};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleCredentials {
    code: Option<String>,
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

/// `Code` must be `Success`; the expiry is UTC `%Y-%m-%dT%H:%M:%SZ`.
fn read_credentials(body: &[u8]) -> Result<Issued, String> {
    let answer: RoleCredentials = serde_json::from_slice(body).map_err(|e| format!("unreadable answer: {e}"))?;
    if answer.code.as_deref() != Some("Success") {
        return Err(format!("Code is {:?}, not Success", answer.code.unwrap_or_default()));
    }
    let expiration = answer.expiration.unwrap_or_default();
    let expires_at = NaiveDateTime::parse_from_str(&expiration, "%Y-%m-%dT%H:%M:%SZ")
        .map_err(|_| format!("unreadable Expiration {expiration:?}"))?
        .and_utc();
    Issued::temporary_keys(
        (answer.access_key_id, answer.access_key_secret, answer.security_token),
        expires_at,
        "AccessKeyId, AccessKeySecret or SecurityToken",
    )
}

/// Keys from `ALIBABA_CLOUD_CREDENTIALS_URI`, the chain's last source: a
/// `GET` of the URI as given, answered like the metadata service.
pub(crate) struct CredentialsUri {
    pub(crate) uri: url::Url,
}

#[keypair_binder_core::async_trait]
impl keypair_binder_core::kit::CredentialSource for CredentialsUri {
    fn name(&self) -> &'static str {
        "credentials_uri"
    }

    async fn load(&self, net: &dyn keypair_binder_core::kit::Net) -> Result<Issued, keypair_binder_core::Failure> {
        use keypair_binder_core::{Failure, FailureKind};
        let failure = |detail: String, retryable: bool| {
            let kind = if retryable { FailureKind::Transport } else { FailureKind::Auth };
            Failure::new(kind, format!("no credentials from the credentials URI {}: {detail}", self.uri))
                .retryable(retryable)
        };
        let uri: http::Uri = self.uri.as_str().parse().map_err(|_| failure("not a URI".into(), false))?;
        let request = keypair_binder_core::kit::OutgoingRequest::new(http::Method::GET, uri, "credentials:uri")
            .with_timeout(std::time::Duration::from_secs(5));
        let response = net.send(request).await.map_err(|f| failure(format!("unreachable: {}", f.message), false))?;
        if !response.is_success() {
            return Err(failure(format!("answered {}", response.status), response.status >= 500));
        }
        read_credentials(&response.body).map_err(|why| failure(why, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keypair_binder_core::kit::Credential;

    #[test]
    fn role_credentials_are_read_as_the_sdk_reads_them() {
        let body = br#"{"Code":"Success","AccessKeyId":"STS.id","AccessKeySecret":"s3cr3t","SecurityToken":"tok","Expiration":"2026-12-07T18:00:00Z","LastUpdated":"2026-12-07T12:00:00Z"}"#;
        let issued = read_credentials(body).unwrap();
        assert_eq!(issued.expires_at.unwrap().to_rfc3339(), "2026-12-07T18:00:00+00:00");
        let Credential::AccessKey(key) = &issued.credential else { panic!("an access key") };
        assert_eq!((key.access_key.as_str(), key.token.as_ref().map(|t| t.expose())), ("STS.id", Some("tok")));
        assert!(read_credentials(br#"{"Code":"Failed"}"#).unwrap_err().contains("Failed"));
        let no_token =
            br#"{"Code":"Success","AccessKeyId":"a","AccessKeySecret":"b","Expiration":"2026-12-07T18:00:00Z"}"#;
        assert!(read_credentials(no_token).is_err());
        let bad_time =
            br#"{"Code":"Success","AccessKeyId":"a","AccessKeySecret":"b","SecurityToken":"c","Expiration":"soon"}"#;
        assert!(read_credentials(bad_time).unwrap_err().contains("soon"));
    }
}
