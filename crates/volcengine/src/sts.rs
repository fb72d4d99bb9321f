//! STS (2018-01-01) as the SDK calls it: `AssumeRole` signed with the
//! caller's keys in the `sts` scope (`GET`), and `AssumeRoleWithOIDC` sent
//! without a signature (`POST`, form body).

use chrono::{DateTime, Utc};
use http::Method;
use http::header::{CONTENT_TYPE, HeaderValue};
use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::kit::{Credential, Issued, OutgoingRequest, RoleExchange, Signer, sdk_query_uri};
use keypair_binder_core::{Failure, FailureKind};
use serde::Deserialize;
use url::Url;

use crate::request::StsSigner;

/// STS API version.
pub const STS_VERSION: &str = "2018-01-01";
/// The region STS signs in.
const STS_REGION: &str = "cn-beijing";
/// Lifetime asked of a role's keys (the SDK's default).
const DURATION_SECONDS: &str = "3600";

/// The STS host.
pub fn default_sts_endpoint() -> Url {
    Url::parse("https://sts.volcengineapi.com/").expect("static URL")
}

/// How the role is obtained.
#[derive(Clone, Debug)]
pub enum Exchange {
    /// `AssumeRole`, signed with the caller's keys.
    AssumeRole,
    /// `AssumeRoleWithOIDC` for a web identity token.
    Oidc,
}

/// One role's exchange at one STS endpoint.
#[derive(Clone, Debug)]
pub struct Sts {
    /// The STS endpoint.
    pub endpoint: Url,
    /// `trn:iam::<account>:role/<name>`.
    pub role_trn: String,
    /// The session name.
    pub session_name: String,
    /// Which action.
    pub exchange: Exchange,
}

impl RoleExchange for Sts {
    fn source(&self) -> &'static str {
        match self.exchange {
            Exchange::AssumeRole => "assume_role",
            Exchange::Oidc => "oidc_role_trn",
        }
    }

    fn request(
        &self,
        caller: Option<&Credential>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<OutgoingRequest, Failure> {
        let params = [
            ("DurationSeconds", DURATION_SECONDS),
            ("RoleSessionName", self.session_name.as_str()),
            ("RoleTrn", self.role_trn.as_str()),
        ];
        match self.exchange {
            Exchange::AssumeRole => {
                let key = caller
                    .ok_or_else(|| Failure::new(FailureKind::Auth, "AssumeRole needs the caller's credentials"))?
                    .access_key()?;
                let mut query: Vec<(&str, &str)> = vec![("Action", "AssumeRole"), ("Version", STS_VERSION)];
                query.extend(params);
                query.sort();
                let uri = sdk_query_uri(&self.endpoint, "/", query)?;
                let mut request = OutgoingRequest::new(Method::GET, uri, "sts:AssumeRole");
                StsSigner { region: STS_REGION.into() }.sign(&mut request, key, now);
                Ok(request)
            }
            Exchange::Oidc => {
                let token = token.ok_or_else(|| Failure::new(FailureKind::Auth, "no OIDC token"))?;
                let body: String = url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params)
                    .append_pair("OIDCToken", token.trim())
                    .finish();
                let uri =
                    sdk_query_uri(&self.endpoint, "/", [("Action", "AssumeRoleWithOIDC"), ("Version", STS_VERSION)])?;
                let mut request = OutgoingRequest::new(Method::POST, uri, "sts:AssumeRoleWithOIDC").with_body(body);
                request.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
                Ok(request)
            }
        }
    }

    fn read(&self, response: &HttpResponse) -> Result<Issued, String> {
        read_credentials(&response.body)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    result: Option<StsResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsResult {
    credentials: Option<StsCredentials>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    expired_time: Option<String>,
    expiration: Option<String>,
}

/// `Result.Credentials`, the expiry in `ExpiredTime` (AssumeRole) or
/// `Expiration` (what the SDK reads for OIDC), RFC 3339 with an offset.
fn read_credentials(body: &[u8]) -> Result<Issued, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| format!("unreadable STS answer: {e}"))?;
    let c = answer.result.and_then(|r| r.credentials).ok_or("the STS answer has no Result.Credentials")?;
    let expiry = c.expiration.or(c.expired_time).unwrap_or_default();
    let expires_at = DateTime::parse_from_rfc3339(&expiry).map_err(|_| format!("unreadable expiry {expiry:?}"))?;
    Issued::temporary_keys(
        (c.access_key_id, c.secret_access_key, c.session_token),
        expires_at.to_utc(),
        "AccessKeyId, SecretAccessKey or SessionToken",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Credentials;
    use keypair_binder_core::Secret;

    #[test]
    fn assume_role_is_signed_in_the_sts_scope_and_oidc_is_not_signed() {
        let sts = |exchange| Sts {
            endpoint: default_sts_endpoint(),
            role_trn: "trn:iam::1:role/ops".into(),
            session_name: "kpbind-t".into(),
            exchange,
        };
        let key = Credentials { access_key: "AKLTcaller".into(), secret_key: Secret::new("s"), token: None };
        let now = Utc::now();
        let request = sts(Exchange::AssumeRole).request(Some(&Credential::AccessKey(key)), None, now).unwrap();
        let authorization = request.headers["authorization"].to_str().unwrap();
        assert!(authorization.contains("/cn-beijing/sts/request"), "{authorization}");
        assert!(request.uri.query().unwrap().contains("RoleTrn=trn%3Aiam%3A%3A1%3Arole%2Fops"), "{}", request.uri);
        let oidc = sts(Exchange::Oidc).request(None, Some("eyJ.t\n"), now).unwrap();
        assert!(!oidc.headers.contains_key("authorization"));
        assert_eq!(oidc.method, Method::POST);
        assert!(
            String::from_utf8_lossy(&oidc.body).contains("OIDCToken=eyJ.t&")
                || String::from_utf8_lossy(&oidc.body).ends_with("OIDCToken=eyJ.t")
        );
    }

    #[test]
    fn the_answer_gives_the_keys_and_their_expiry() {
        let body = br#"{"ResponseMetadata":{"RequestId":"r"},"Result":{"Credentials":{"AccessKeyId":"AKTPx","SecretAccessKey":"s","SessionToken":"STSx","ExpiredTime":"2022-06-26T19:21:27+08:00","CurrentTime":"2022-06-26T18:21:27+08:00"}}}"#;
        assert_eq!(read_credentials(body).unwrap().expires_at.unwrap().to_rfc3339(), "2022-06-26T11:21:27+00:00");
        assert!(read_credentials(br#"{"Result":{}}"#).is_err());
    }
}
