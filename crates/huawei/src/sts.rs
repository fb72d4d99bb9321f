//! STS v5 as the SDKs call it: `POST /v5/agencies/assume` signed with the
//! caller's AK/SK (an agency in another account), and
//! `POST /v5/agencies/assume-with-oidc` sent without a signature.

use chrono::{DateTime, NaiveDateTime, Utc};
use http::Method;
use http::header::{CONTENT_TYPE, HeaderValue};
use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::kit::{Credential, Issued, OutgoingRequest, RoleExchange, endpoint_uri};
use keypair_binder_core::{Failure, FailureKind};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::signer::{AkSk, sign_outgoing};

/// Lifetime asked of an agency's keys (the SDK's default).
const DURATION_SECONDS: u32 = 3600;

/// The STS endpoint of `region` (`cn-north-4` when none is known).
pub fn default_sts_endpoint(region: Option<&str>) -> Url {
    let region = region.unwrap_or("cn-north-4");
    Url::parse(&format!("https://sts.{region}.myhuaweicloud.com/"))
        .unwrap_or_else(|_| Url::parse("https://sts.cn-north-4.myhuaweicloud.com/").expect("static URL"))
}

/// How the agency is obtained.
#[derive(Clone, Debug)]
pub enum Exchange {
    /// `assume`, signed with the caller's AK/SK.
    Assume,
    /// `assume-with-oidc` for an ID token of this identity provider.
    Oidc {
        /// `iam::<account>:identityprovider:<name>`.
        provider_urn: String,
    },
}

/// One agency's exchange at one STS endpoint.
#[derive(Clone, Debug)]
pub struct Sts {
    /// The STS endpoint.
    pub endpoint: Url,
    /// `iam::<account>:agency:<name>`.
    pub agency_urn: String,
    /// The session name.
    pub session_name: String,
    /// Which action.
    pub exchange: Exchange,
}

#[derive(Serialize)]
struct Body<'a> {
    agency_urn: &'a str,
    agency_session_name: &'a str,
    duration_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_urn: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<&'a str>,
}

impl RoleExchange for Sts {
    fn source(&self) -> &'static str {
        match self.exchange {
            Exchange::Assume => "assume_role",
            Exchange::Oidc { .. } => "oidc_agency",
        }
    }

    fn request(
        &self,
        caller: Option<&Credential>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<OutgoingRequest, Failure> {
        let (path, action, provider_urn, id_token) = match &self.exchange {
            Exchange::Assume => ("/v5/agencies/assume", "sts:AssumeAgency", None, None),
            Exchange::Oidc { provider_urn } => {
                let token = token.ok_or_else(|| Failure::new(FailureKind::Auth, "no OIDC ID token"))?;
                (
                    "/v5/agencies/assume-with-oidc",
                    "sts:AssumeAgencyWithOidc",
                    Some(provider_urn.as_str()),
                    Some(token.trim()),
                )
            }
        };
        let body = Body {
            agency_urn: &self.agency_urn,
            agency_session_name: &self.session_name,
            duration_seconds: DURATION_SECONDS,
            provider_urn,
            id_token,
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| Failure::new(FailureKind::InvalidRequest, format!("cannot encode the call: {e}")))?;
        let mut request = OutgoingRequest::new(Method::POST, endpoint_uri(&self.endpoint, path, "")?, action)
            .with_body(body)
            .with_request_id_header("x-request-id");
        request.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
        if let Exchange::Assume = self.exchange {
            let key: &AkSk = caller
                .ok_or_else(|| Failure::new(FailureKind::Auth, "assuming an agency needs the caller's AK/SK"))?
                .access_key()?;
            sign_outgoing(&mut request, key, None, now);
        }
        Ok(request)
    }

    fn read(&self, response: &HttpResponse) -> Result<Issued, String> {
        read_credentials(&response.body)
    }
}

#[derive(Deserialize)]
struct Answer {
    credentials: Option<StsCredentials>,
}

#[derive(Deserialize)]
struct StsCredentials {
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

/// `credentials{access_key_id, secret_access_key, security_token, expiration}`,
/// the expiry UTC, with or without fractional seconds.
fn read_credentials(body: &[u8]) -> Result<Issued, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| format!("unreadable STS answer: {e}"))?;
    let c = answer.credentials.ok_or("the STS answer has no credentials")?;
    let expiration = c.expiration.unwrap_or_default();
    let expires_at = NaiveDateTime::parse_from_str(&expiration, "%Y-%m-%dT%H:%M:%S%.fZ")
        .map_err(|_| format!("unreadable expiration {expiration:?}"))?
        .and_utc();
    Issued::temporary_keys(
        (c.access_key_id, c.secret_access_key, c.security_token),
        expires_at,
        "access_key_id, secret_access_key or security_token",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keypair_binder_core::Secret;

    #[test]
    fn assume_is_signed_and_oidc_is_not() {
        let sts = |exchange| Sts {
            endpoint: default_sts_endpoint(Some("cn-north-4")),
            agency_urn: "iam::1:agency:ops".into(),
            session_name: "kpbind-t".into(),
            exchange,
        };
        let now = Utc::now();
        let key = AkSk { access_key: "HPUAcaller".into(), secret_key: Secret::new("s"), token: None };
        let assume = sts(Exchange::Assume).request(Some(&Credential::AccessKey(key)), None, now).unwrap();
        assert!(assume.headers["authorization"].to_str().unwrap().contains("Access=HPUAcaller"));
        assert_eq!(assume.uri.path(), "/v5/agencies/assume");
        let oidc = sts(Exchange::Oidc { provider_urn: "iam::1:identityprovider:k8s".into() })
            .request(None, Some("eyJ.t\n"), now)
            .unwrap();
        assert!(!oidc.headers.contains_key("authorization"));
        let body: serde_json::Value = serde_json::from_slice(&oidc.body).unwrap();
        assert_eq!(
            (body["id_token"].as_str(), body["agency_urn"].as_str()),
            (Some("eyJ.t"), Some("iam::1:agency:ops"))
        );
    }

    #[test]
    fn the_answer_gives_the_keys_and_their_expiry() {
        let body = br#"{"credentials":{"access_key_id":"HST","secret_access_key":"s","security_token":"t","expiration":"2026-12-07T18:00:00.000000Z"}}"#;
        assert_eq!(read_credentials(body).unwrap().expires_at.unwrap().to_rfc3339(), "2026-12-07T18:00:00+00:00");
        let plain = br#"{"credentials":{"access_key_id":"HST","secret_access_key":"s","security_token":"t","expiration":"2026-12-07T18:00:00Z"}}"#;
        assert!(read_credentials(plain).is_ok());
        assert!(read_credentials(br#"{"credentials":{}}"#).is_err());
    }
}
