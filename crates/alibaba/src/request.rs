//! One ECS call, built without I/O (ACS3 style: `POST /`, the parameters in
//! the query, the action in `x-acs-action`), and its signature.

use chrono::{DateTime, Utc};
use http::Method;
use http::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use keypair_binder_core::kit::{OutgoingRequest, Signer, sdk_query_uri, uri_host};
use keypair_binder_core::report::Failure;
use keypair_binder_core::signing::{canonical_of_form_encoded, canonical_order};
use url::Url;

use crate::signer::{API_VERSION, AccessKey, acs3_authorization, format_date};
use crate::wire::Action;

const X_ACS_ACTION: HeaderName = HeaderName::from_static("x-acs-action");
const X_ACS_VERSION: HeaderName = HeaderName::from_static("x-acs-version");
const X_ACS_DATE: HeaderName = HeaderName::from_static("x-acs-date");
const X_ACS_NONCE: HeaderName = HeaderName::from_static("x-acs-signature-nonce");
const X_ACS_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-acs-content-sha256");
const X_ACS_ACCESSKEY_ID: HeaderName = HeaderName::from_static("x-acs-accesskey-id");
const X_ACS_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-acs-security-token");

/// The unsigned call: the parameters on the URL in canonical order, each
/// pair encoded byte for byte as the official Python SDK sends it and
/// written straight into it ([`sdk_query_uri`]); `x-acs-action`,
/// `x-acs-version`, `accept`. The signer signs the query's canonical form.
pub fn unsigned(endpoint: &Url, action: Action, query: &[(String, String)]) -> Result<OutgoingRequest, Failure> {
    let mut sorted: Vec<&(String, String)> = query.iter().collect();
    sorted.sort_by(|a, b| canonical_order((&a.0, &a.1), (&b.0, &b.1)));
    let uri = sdk_query_uri(endpoint, "/", sorted.iter().map(|(key, value)| (key.as_str(), value.as_str())))?;
    // Room for the signer's headers too.
    let mut headers = HeaderMap::with_capacity(12);
    headers.insert(X_ACS_ACTION, HeaderValue::from_static(action.as_str()));
    headers.insert(X_ACS_VERSION, HeaderValue::from_static(API_VERSION));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    Ok(OutgoingRequest::new(Method::POST, uri, action.as_str()).with_headers(headers))
}

/// ACS3-HMAC-SHA256 as the kit's [`Signer`]: a fresh `x-acs-date` and nonce
/// for every request that has none, then every header signed, over the
/// canonical form of the query on the URL.
#[derive(Clone, Copy, Debug)]
pub struct AcsSigner;

impl Signer for AcsSigner {
    fn sign(&self, request: &mut OutgoingRequest, key: &AccessKey, time: DateTime<Utc>) {
        if !request.headers.contains_key(&X_ACS_DATE)
            && let Ok(date) = HeaderValue::from_str(&format_date(time))
        {
            request.headers.insert(X_ACS_DATE, date);
        }
        if !request.headers.contains_key(&X_ACS_NONCE) {
            let mut nonce = [0u8; uuid::fmt::Simple::LENGTH];
            let nonce = uuid::Uuid::new_v4().simple().encode_lower(&mut nonce);
            if let Ok(nonce) = HeaderValue::from_str(nonce) {
                request.headers.insert(X_ACS_NONCE, nonce);
            }
        }
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(request.headers.len() + 1);
        headers.extend(request.headers.iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))));
        headers.push(("host", uri_host(&request.uri)));
        let query = canonical_of_form_encoded(request.uri.query().unwrap_or(""));
        let (authorization, added) =
            acs3_authorization(request.method.as_str(), request.uri.path(), &query, &headers, &request.body, key);
        let mut values: Vec<(HeaderName, HeaderValue)> = Vec::with_capacity(added.len() + 1);
        for (name, value) in added {
            let name = match name {
                "x-acs-content-sha256" => X_ACS_CONTENT_SHA256,
                "x-acs-accesskey-id" => X_ACS_ACCESSKEY_ID,
                "x-acs-security-token" => X_ACS_SECURITY_TOKEN,
                _ => continue,
            };
            if let Ok(mut value) = HeaderValue::from_str(&value) {
                value.set_sensitive(name == X_ACS_SECURITY_TOKEN);
                values.push((name, value));
            }
        }
        if let Ok(value) = HeaderValue::try_from(authorization) {
            values.push((AUTHORIZATION, value));
        }
        for (name, value) in values {
            request.headers.insert(name, value);
        }
    }

    fn added_headers(&self) -> &'static [&'static str] {
        &["x-acs-content-sha256", "x-acs-accesskey-id", "x-acs-security-token", "authorization"]
    }
}
