//! One CVM call, built without I/O (`POST /` with a JSON body, the action,
//! version and region in `X-TC-*` headers), and its TC3 signature.

use chrono::{DateTime, Utc};
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use keypair_binder_core::kit::{OutgoingRequest, Signer, endpoint_uri, uri_host};
use keypair_binder_core::report::Failure;
use url::Url;

use crate::signer::{Credentials, Tc3Request, sign_tc3_for};
use crate::wire::{Action, VERSION};

const X_TC_ACTION: HeaderName = HeaderName::from_static("x-tc-action");
const X_TC_VERSION: HeaderName = HeaderName::from_static("x-tc-version");
const X_TC_REGION: HeaderName = HeaderName::from_static("x-tc-region");
const X_TC_TIMESTAMP: HeaderName = HeaderName::from_static("x-tc-timestamp");
const X_TC_TOKEN: HeaderName = HeaderName::from_static("x-tc-token");
/// The content type the SDK posts, and signs.
pub const CONTENT_TYPE_JSON: &str = "application/json";

/// The unsigned call: `POST /`, the JSON body, `X-TC-Action`,
/// `X-TC-Version` and `X-TC-Region` (always sent: objects live in a region).
pub fn unsigned(endpoint: &Url, action: Action, region: &str, body: Vec<u8>) -> Result<OutgoingRequest, Failure> {
    let uri = endpoint_uri(endpoint, "/", "")?;
    // Room for the signer's headers too.
    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE_JSON));
    headers.insert(X_TC_ACTION, HeaderValue::from_static(action.as_str()));
    headers.insert(X_TC_VERSION, HeaderValue::from_static(VERSION));
    if let Ok(region) = HeaderValue::from_str(region) {
        headers.insert(X_TC_REGION, region);
    }
    Ok(OutgoingRequest::new(Method::POST, uri, action.as_str()).with_headers(headers).with_body(body))
}

/// TC3-HMAC-SHA256 as the kit's [`Signer`]: `X-TC-Timestamp` from the time
/// (unless set), `content-type` and `host` signed, the token in `X-TC-Token`.
#[derive(Clone, Copy, Debug)]
pub struct CvmSigner;

impl Signer for CvmSigner {
    fn sign(&self, request: &mut OutgoingRequest, key: &Credentials, time: DateTime<Utc>) {
        sign_in_scope(request, key, time, crate::signer::SERVICE);
    }

    fn added_headers(&self) -> &'static [&'static str] {
        &["x-tc-timestamp", "x-tc-token", "authorization"]
    }
}

/// TC3 in the STS service's scope (`sts`), for `AssumeRole`.
#[derive(Clone, Copy, Debug)]
pub struct StsSigner;

impl Signer for StsSigner {
    fn sign(&self, request: &mut OutgoingRequest, key: &Credentials, time: DateTime<Utc>) {
        sign_in_scope(request, key, time, "sts");
    }

    fn added_headers(&self) -> &'static [&'static str] {
        &["x-tc-timestamp", "x-tc-token", "authorization"]
    }
}

/// Signs `request` with TC3 in `service`'s scope: `X-TC-Timestamp` from the
/// time (unless set), `content-type` and `host` signed, the token in `X-TC-Token`.
fn sign_in_scope(request: &mut OutgoingRequest, key: &Credentials, time: DateTime<Utc>, service: &str) {
    {
        let timestamp = match request.headers.get(&X_TC_TIMESTAMP).and_then(|v| v.to_str().ok()?.parse().ok()) {
            Some(t) => t,
            None => {
                let t = time.timestamp();
                request.headers.insert(X_TC_TIMESTAMP, HeaderValue::from(t));
                t
            }
        };
        let content_type = request.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or(CONTENT_TYPE_JSON);
        let signable = Tc3Request {
            method: request.method.as_str(),
            host: uri_host(&request.uri),
            query: request.uri.query().unwrap_or(""),
            content_type,
            payload: &request.body,
            unsigned_payload: false,
            timestamp,
        };
        let signature = sign_tc3_for(&signable, key, service);
        if let Ok(value) = HeaderValue::try_from(signature.authorization) {
            request.headers.insert(AUTHORIZATION, value);
        }
        if let Some(token) = &key.token
            && let Ok(mut value) = HeaderValue::from_str(token.expose())
        {
            value.set_sensitive(true);
            request.headers.insert(X_TC_TOKEN, value);
        }
    }
}
