//! STS (2018-08-13) as the SDK calls it: `AssumeRole` signed with TC3 in
//! the `sts` scope, and `AssumeRoleWithWebIdentity` (TKE OIDC) sent with the
//! literal `Authorization: SKIP`.

use chrono::{DateTime, Utc};
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::kit::{Credential, Issued, OutgoingRequest, RoleExchange, Signer, endpoint_uri};
use keypair_binder_core::{Failure, FailureKind};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::request::{CONTENT_TYPE_JSON, StsSigner};

/// STS API version.
pub const STS_VERSION: &str = "2018-08-13";
/// Lifetime asked of a role's keys (the SDK's default).
const DURATION_SECONDS: u32 = 7200;

/// The STS host.
pub fn default_sts_endpoint() -> Url {
    Url::parse("https://sts.tencentcloudapi.com/").expect("static URL")
}

/// How the role is obtained.
#[derive(Clone, Debug)]
pub enum Exchange {
    /// `AssumeRole`, signed with the caller's keys.
    AssumeRole,
    /// `AssumeRoleWithWebIdentity` for a token of this OIDC provider (TKE).
    WebIdentity {
        /// The OIDC provider id.
        provider_id: String,
    },
}

/// One role's exchange at one STS endpoint.
#[derive(Clone, Debug)]
pub struct Sts {
    /// The STS endpoint.
    pub endpoint: Url,
    /// The region the call names (`ap-guangzhou` unless TKE says).
    pub region: String,
    /// `qcs::cam::uin/<account>:roleName/<name>`.
    pub role_arn: String,
    /// The session name.
    pub session_name: String,
    /// Which action.
    pub exchange: Exchange,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    role_arn: &'a str,
    role_session_name: &'a str,
    duration_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    web_identity_token: Option<&'a str>,
}

impl RoleExchange for Sts {
    fn source(&self) -> &'static str {
        match self.exchange {
            Exchange::AssumeRole => "assume_role",
            Exchange::WebIdentity { .. } => "tke_oidc",
        }
    }

    fn request(
        &self,
        caller: Option<&Credential>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<OutgoingRequest, Failure> {
        let (action, provider_id, token) = match &self.exchange {
            Exchange::AssumeRole => ("AssumeRole", None, None),
            Exchange::WebIdentity { provider_id } => {
                let token = token.ok_or_else(|| Failure::new(FailureKind::Auth, "no web identity token"))?;
                ("AssumeRoleWithWebIdentity", Some(provider_id.as_str()), Some(token))
            }
        };
        let body = Body {
            role_arn: &self.role_arn,
            role_session_name: &self.session_name,
            duration_seconds: DURATION_SECONDS,
            provider_id,
            web_identity_token: token,
        };
        let body = serde_json::to_vec(&body)
            .map_err(|e| Failure::new(FailureKind::InvalidRequest, format!("cannot encode the call: {e}")))?;
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
        headers.insert(HeaderName::from_static("x-tc-action"), HeaderValue::from_static(action));
        headers.insert(HeaderName::from_static("x-tc-version"), HeaderValue::from_static(STS_VERSION));
        if let Ok(region) = HeaderValue::from_str(&self.region) {
            headers.insert(HeaderName::from_static("x-tc-region"), region);
        }
        let label = if provider_id.is_some() { "sts:AssumeRoleWithWebIdentity" } else { "sts:AssumeRole" };
        let mut request = OutgoingRequest::new(Method::POST, endpoint_uri(&self.endpoint, "/", "")?, label)
            .with_headers(headers)
            .with_body(body);
        match self.exchange {
            Exchange::AssumeRole => {
                let key = caller
                    .ok_or_else(|| Failure::new(FailureKind::Auth, "AssumeRole needs the caller's credentials"))?
                    .access_key()?;
                StsSigner.sign(&mut request, key, now);
            }
            Exchange::WebIdentity { .. } => {
                request.headers.insert(HeaderName::from_static("x-tc-timestamp"), HeaderValue::from(now.timestamp()));
                request.headers.insert(AUTHORIZATION, HeaderValue::from_static("SKIP"));
            }
        }
        Ok(request)
    }

    fn read(&self, response: &HttpResponse) -> Result<Issued, String> {
        read_credentials(&response.body)
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Option<Answer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    credentials: Option<StsCredentials>,
    expired_time: Option<i64>,
    error: Option<StsError>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    token: Option<String>,
    tmp_secret_id: Option<String>,
    tmp_secret_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsError {
    code: Option<String>,
    message: Option<String>,
}

/// `Response.Credentials{Token, TmpSecretId, TmpSecretKey}` and
/// `Response.ExpiredTime` (epoch seconds); errors come with status 200.
fn read_credentials(body: &[u8]) -> Result<Issued, String> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| format!("unreadable STS answer: {e}"))?;
    let answer = envelope.response.ok_or("the STS answer has no Response")?;
    if let Some(error) = answer.error {
        return Err(format!(
            "the STS refused: {}: {}",
            error.code.unwrap_or_default(),
            error.message.unwrap_or_default()
        ));
    }
    let c = answer.credentials.ok_or("the STS answer has no Credentials")?;
    let expires_at =
        answer.expired_time.and_then(|t| DateTime::from_timestamp(t, 0)).ok_or("the STS answer has no ExpiredTime")?;
    Issued::temporary_keys(
        (c.tmp_secret_id, c.tmp_secret_key, c.token),
        expires_at,
        "TmpSecretId, TmpSecretKey or Token",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Credentials;
    use keypair_binder_core::Secret;

    #[test]
    fn web_identity_is_sent_with_skip_and_assume_role_signed_in_the_sts_scope() {
        let sts = |exchange| Sts {
            endpoint: default_sts_endpoint(),
            region: "ap-guangzhou".into(),
            role_arn: "qcs::cam::uin/1:roleName/ops".into(),
            session_name: "kpbind-t".into(),
            exchange,
        };
        let now = Utc::now();
        let tke = sts(Exchange::WebIdentity { provider_id: "cls-1".into() }).request(None, Some("eyJ.t"), now).unwrap();
        assert_eq!(tke.headers["authorization"], "SKIP");
        assert_eq!(tke.headers["x-tc-action"], "AssumeRoleWithWebIdentity");
        let body: serde_json::Value = serde_json::from_slice(&tke.body).unwrap();
        assert_eq!((body["ProviderId"].as_str(), body["WebIdentityToken"].as_str()), (Some("cls-1"), Some("eyJ.t")));
        let key = Credentials { access_key: "AKIDcaller".into(), secret_key: Secret::new("s"), token: None };
        let signed = sts(Exchange::AssumeRole).request(Some(&Credential::AccessKey(key)), None, now).unwrap();
        let authorization = signed.headers["authorization"].to_str().unwrap();
        assert!(authorization.contains("/sts/tc3_request") && authorization.contains("AKIDcaller"), "{authorization}");
    }

    #[test]
    fn the_answer_gives_the_keys_or_the_refusal() {
        let ok = br#"{"Response":{"Credentials":{"Token":"t","TmpSecretId":"AKIDtmp","TmpSecretKey":"k"},"ExpiredTime":1796666400,"Expiration":"2026-12-07T18:00:00Z","RequestId":"r"}}"#;
        assert_eq!(read_credentials(ok).unwrap().expires_at.unwrap().timestamp(), 1_796_666_400);
        let refused = br#"{"Response":{"Error":{"Code":"InvalidParameter.WebIdentityTokenError","Message":"bad"},"RequestId":"r"}}"#;
        assert!(read_credentials(refused).unwrap_err().contains("WebIdentityTokenError"));
    }
}
