//! One ECS call, built without I/O (ACS3 style: `POST /`, the parameters in
//! the query, the action in `x-acs-action`), and its signature.

use chrono::{DateTime, Utc};
use keypair_binder_core::http::host_header;
use keypair_binder_core::kit::{OutgoingRequest, Signer};
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::signer::{API_VERSION, AccessKey, Acs3Request, canonical_query, format_date, sign_acs3_canonical};
use crate::wire::Action;

const X_ACS_ACTION: HeaderName = HeaderName::from_static("x-acs-action");
const X_ACS_VERSION: HeaderName = HeaderName::from_static("x-acs-version");
const X_ACS_DATE: &str = "x-acs-date";
const X_ACS_NONCE: &str = "x-acs-signature-nonce";

/// The unsigned call: the canonical query on the URL (what is signed is
/// what is sent), `x-acs-action`, `x-acs-version`, `accept`.
pub fn unsigned(endpoint: &Url, action: Action, query: &[(String, String)]) -> OutgoingRequest {
    let mut url = endpoint.clone();
    url.set_path("/");
    let query = canonical_query(query);
    url.set_query((!query.is_empty()).then_some(query.as_str()));
    let mut headers = HeaderMap::new();
    headers.insert(X_ACS_ACTION, HeaderValue::from_static(action.as_str()));
    headers.insert(X_ACS_VERSION, HeaderValue::from_static(API_VERSION));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    OutgoingRequest::new(Method::POST, url, action.as_str()).with_headers(headers)
}

/// ACS3-HMAC-SHA256 as the kit's [`Signer`]: a fresh `x-acs-date` and nonce
/// for every request that has none, then every header signed. The URL's
/// query must be in canonical form, as [`unsigned`] writes it.
#[derive(Clone, Debug)]
pub struct AcsSigner {
    /// The access key (and STS token).
    pub key: AccessKey,
}

impl Signer for AcsSigner {
    fn sign(&self, request: &mut OutgoingRequest, time: DateTime<Utc>) {
        let set = |headers: &mut HeaderMap, name: &'static str, value: String| {
            if !headers.contains_key(name)
                && let Ok(v) = HeaderValue::from_str(&value)
            {
                headers.insert(HeaderName::from_static(name), v);
            }
        };
        set(&mut request.headers, X_ACS_DATE, format_date(time));
        set(&mut request.headers, X_ACS_NONCE, uuid::Uuid::new_v4().simple().to_string());
        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        headers.push(("host".into(), host_header(&request.url)));
        // The query is on the URL in canonical form (`unsigned` writes it so): signed as sent.
        let signable = Acs3Request {
            method: request.method.as_str(),
            path: request.url.path(),
            query: &[],
            headers: &headers,
            body: &request.body,
        };
        let query = request.url.query().unwrap_or("");
        for (name, value) in sign_acs3_canonical(&signable, query, &self.key).headers {
            if let (Ok(n), Ok(mut v)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(&value)) {
                v.set_sensitive(n.as_str() == "x-acs-security-token");
                request.headers.insert(n, v);
            }
        }
    }

    fn added_headers(&self) -> &'static [&'static str] {
        &["x-acs-content-sha256", "x-acs-accesskey-id", "x-acs-security-token", "authorization"]
    }
}
