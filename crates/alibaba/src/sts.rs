//! STS (API 2015-04-01) as the credentials SDK calls it: `AssumeRole`
//! signed with the caller's keys (RPC style, HMAC-SHA1), and
//! `AssumeRoleWithOIDC` (RRSA on ACK) sent without a signature.

use chrono::{DateTime, NaiveDateTime, Utc};
use http::Method;
use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::kit::{Credential, Issued, OutgoingRequest, RoleExchange, sdk_query_uri};
use keypair_binder_core::{Failure, FailureKind};
use serde::Deserialize;
use url::Url;

use crate::signer::sign_rpc;

/// STS API version.
pub const STS_VERSION: &str = "2015-04-01";
/// Lifetime asked of a role's keys (the SDK's default; 900 is the least).
const DURATION_SECONDS: &str = "3600";

/// The STS host: `sts.aliyuncs.com`, or the region's (`sts-vpc.` inside a VPC).
pub fn default_sts_endpoint(region: Option<&str>, vpc: bool) -> Url {
    let host = match region {
        Some(r) => format!("{}.{r}.aliyuncs.com", if vpc { "sts-vpc" } else { "sts" }),
        None => "sts.aliyuncs.com".to_string(),
    };
    Url::parse(&format!("https://{host}/")).unwrap_or_else(|_| Url::parse("https://sts.aliyuncs.com/").expect("static"))
}

/// How the role is obtained.
#[derive(Clone, Debug)]
pub enum Exchange {
    /// `AssumeRole`, signed with the caller's keys.
    AssumeRole,
    /// `AssumeRoleWithOIDC` for a token of this OIDC provider.
    Oidc {
        /// `acs:ram::<account>:oidc-provider/<name>`.
        provider_arn: String,
    },
}

/// One role's exchange at one STS endpoint.
#[derive(Clone, Debug)]
pub struct Sts {
    /// The STS endpoint.
    pub endpoint: Url,
    /// `acs:ram::<account>:role/<name>`.
    pub role_arn: String,
    /// The session name.
    pub session_name: String,
    /// Which action.
    pub exchange: Exchange,
}

impl Sts {
    fn query(&self, action: &str, now: DateTime<Utc>) -> Vec<(String, String)> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let mut query = vec![
            ("Action".to_string(), action.to_string()),
            ("Format".to_string(), "JSON".to_string()),
            ("Version".to_string(), STS_VERSION.to_string()),
            ("DurationSeconds".to_string(), DURATION_SECONDS.to_string()),
            ("RoleArn".to_string(), self.role_arn.clone()),
            ("RoleSessionName".to_string(), self.session_name.clone()),
            ("Timestamp".to_string(), now.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
        ];
        if action == "AssumeRole" {
            query.push(("SignatureNonce".to_string(), nonce));
        }
        query
    }
}

impl RoleExchange for Sts {
    fn source(&self) -> &'static str {
        match self.exchange {
            Exchange::AssumeRole => "assume_role",
            Exchange::Oidc { .. } => "oidc_role_arn",
        }
    }

    fn request(
        &self,
        caller: Option<&Credential>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<OutgoingRequest, Failure> {
        let mut query = match &self.exchange {
            Exchange::AssumeRole => {
                let key = caller
                    .ok_or_else(|| Failure::new(FailureKind::Auth, "AssumeRole needs the caller's credentials"))?
                    .access_key()?;
                let mut query = self.query("AssumeRole", now);
                let signature = sign_rpc("GET", &query, key);
                query.extend(signature.added);
                query
            }
            Exchange::Oidc { provider_arn } => {
                let token = token.ok_or_else(|| Failure::new(FailureKind::Auth, "no OIDC token"))?;
                let mut query = self.query("AssumeRoleWithOIDC", now);
                query.push(("OIDCProviderArn".to_string(), provider_arn.clone()));
                query.push(("OIDCToken".to_string(), token.to_string()));
                query
            }
        };
        query.sort();
        let action =
            if matches!(self.exchange, Exchange::AssumeRole) { "sts:AssumeRole" } else { "sts:AssumeRoleWithOIDC" };
        let uri = sdk_query_uri(&self.endpoint, "/", query.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        Ok(OutgoingRequest::new(Method::GET, uri, action).with_request_id_header("x-acs-request-id"))
    }

    fn read(&self, response: &HttpResponse) -> Result<Issued, String> {
        read_credentials(&response.body)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    credentials: Option<StsCredentials>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: Option<String>,
    access_key_secret: Option<String>,
    security_token: Option<String>,
    expiration: Option<String>,
}

/// `Credentials{AccessKeyId, AccessKeySecret, SecurityToken, Expiration}`, all present.
fn read_credentials(body: &[u8]) -> Result<Issued, String> {
    let answer: Answer = serde_json::from_slice(body).map_err(|e| format!("unreadable STS answer: {e}"))?;
    let c = answer.credentials.ok_or("the STS answer has no Credentials")?;
    let expiration = c.expiration.unwrap_or_default();
    let expires_at = NaiveDateTime::parse_from_str(&expiration, "%Y-%m-%dT%H:%M:%SZ")
        .map_err(|_| format!("unreadable Expiration {expiration:?}"))?
        .and_utc();
    Issued::temporary_keys(
        (c.access_key_id, c.access_key_secret, c.security_token),
        expires_at,
        "AccessKeyId, AccessKeySecret or SecurityToken",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use keypair_binder_core::Secret;
    use keypair_binder_core::signing::AccessKey;

    fn sts(exchange: Exchange) -> Sts {
        Sts {
            endpoint: default_sts_endpoint(Some("cn-hangzhou"), false),
            role_arn: "acs:ram::123:role/ops".into(),
            session_name: "kpbind-test".into(),
            exchange,
        }
    }

    #[test]
    fn assume_role_is_signed_as_the_sdk_signs_it_and_oidc_is_not() {
        let key = AccessKey { access_key: "LTAIcaller".into(), secret_key: Secret::new("secret"), token: None };
        let now = DateTime::parse_from_rfc3339("2026-12-07T10:00:00Z").unwrap().to_utc();
        let request = sts(Exchange::AssumeRole).request(Some(&Credential::AccessKey(key.clone())), None, now).unwrap();
        assert_eq!(request.uri.host(), Some("sts.cn-hangzhou.aliyuncs.com"));
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(request.uri.query().unwrap().as_bytes()).into_owned().collect();
        let param = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(param("Action"), Some("AssumeRole"));
        assert_eq!(param("RoleArn"), Some("acs:ram::123:role/ops"));
        assert_eq!(param("AccessKeyId"), Some("LTAIcaller"));
        // The server recomputes it from the other parameters.
        let unsigned: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| !["Signature", "SignatureMethod", "SignatureVersion", "AccessKeyId"].contains(&k.as_str()))
            .cloned()
            .collect();
        assert_eq!(param("Signature"), Some(sign_rpc("GET", &unsigned, &key).signature.as_str()));

        let oidc = sts(Exchange::Oidc { provider_arn: "acs:ram::123:oidc-provider/ack".into() });
        let request = oidc.request(None, Some("eyJ.token"), now).unwrap();
        let text = request.uri.query().unwrap();
        assert!(text.contains("Action=AssumeRoleWithOIDC") && text.contains("OIDCToken=eyJ.token"), "{text}");
        assert!(!text.contains("Signature") && !text.contains("AccessKeyId"), "{text}");
        assert!(oidc.request(None, None, now).is_err());
    }

    #[test]
    fn the_answer_gives_the_keys_and_their_expiry() {
        let body = br#"{"RequestId":"r","AssumedRoleUser":{"Arn":"a","AssumedRoleId":"i"},"Credentials":{"AccessKeyId":"STS.k","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2026-12-07T11:00:00Z"}}"#;
        let issued = read_credentials(body).unwrap();
        assert_eq!(issued.expires_at.unwrap().to_rfc3339(), "2026-12-07T11:00:00+00:00");
        assert!(read_credentials(br#"{"Credentials":{"AccessKeyId":"k"}}"#).is_err());
        assert!(read_credentials(b"<html>").is_err());
    }
}
