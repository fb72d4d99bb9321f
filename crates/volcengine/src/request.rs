//! A signed ECS call, built without any I/O: an unsigned request from the
//! query, and its signature at a given time.

use chrono::{DateTime, Utc};
use keypair_binder_core::http::host_header;
use keypair_binder_core::kit::{OutgoingRequest, Signer};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE as CONTENT_TYPE_HEADER, HeaderMap, HeaderName, HeaderValue};
use url::Url;

use crate::signer::{self, Credentials, SignableRequest};

/// The `Content-Type` the official SDK sends (and signs) on ECS calls.
pub const CONTENT_TYPE: &str = "text/plain";

/// Identifies one logical call across its retries, as the SDK's `X-Sdk-*` headers do.
#[derive(Clone, Copy, Debug)]
pub struct Invocation<'a> {
    /// Constant across the retries of one call.
    pub id: &'a str,
    /// 1-based attempt number.
    pub attempt: u32,
    /// Most attempts the call may take.
    pub max_attempts: u32,
}

/// A request ready to send, for tests and tools that send it themselves.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    /// Endpoint with the canonical query string.
    pub url: Url,
    /// Headers to send, `Host` included (HTTP stacks set it from the URL).
    pub headers: Vec<(String, String)>,
}

const INVOCATION_ID: HeaderName = HeaderName::from_static("x-sdk-invocation-id");
const SDK_REQUEST: HeaderName = HeaderName::from_static("x-sdk-request");

/// The unsigned `GET /?…` call: canonical query, `Content-Type`, and the
/// invocation headers when the call carries a token.
pub fn unsigned(
    endpoint: &Url,
    query: &[(String, String)],
    invocation: Option<Invocation<'_>>,
    action: &'static str,
) -> OutgoingRequest {
    let mut url = endpoint.clone();
    url.set_path("/");
    url.set_query(Some(&signer::canonical_query(query)));
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(CONTENT_TYPE));
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if let Some(inv) = invocation {
        if let Ok(v) = HeaderValue::from_str(inv.id) {
            headers.insert(INVOCATION_ID, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("attempt={}; max={}", inv.attempt, inv.max_attempts)) {
            headers.insert(SDK_REQUEST, v);
        }
    }
    OutgoingRequest::new(Method::GET, url, action).with_headers(headers)
}

/// A header name as the SDK writes it (`X-Sdk-Request`): the signer signs
/// `Content-Type`, `Host` and names starting with upper-case `X-`.
fn sdk_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Signs a request at `time`, adding the signature headers; returns every
/// header as sent (with `Host`), in the SDK's casing.
pub fn sign(
    request: &mut OutgoingRequest,
    region: &str,
    credentials: &Credentials,
    time: DateTime<Utc>,
) -> Vec<(String, String)> {
    let host = host_header(&request.url);
    let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .filter_map(|(n, v)| Some((sdk_case(n.as_str()), v.to_str().ok()?.to_string())))
        .collect();
    let signature = signer::sign(
        &SignableRequest {
            method: request.method.as_str(),
            host: &host,
            path: request.url.path(),
            query: &query,
            headers: &headers,
            body: &request.body,
        },
        credentials,
        region,
        time,
    );
    for (name, value) in &signature.headers {
        if name == "Host" {
            continue;
        }
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            request.headers.insert(n, v);
        }
    }
    headers.extend(signature.headers);
    headers
}

/// The ECS signature as the kit's [`Signer`]: credentials and region.
#[derive(Clone, Debug)]
pub struct EcsSigner {
    /// Access key, secret key, session token.
    pub credentials: Credentials,
    /// Region of the credential scope.
    pub region: String,
}

impl Signer for EcsSigner {
    fn sign(&self, request: &mut OutgoingRequest, time: DateTime<Utc>) {
        sign(request, &self.region, &self.credentials, time);
    }

    fn added_headers(&self) -> &'static [&'static str] {
        &["x-date", "x-content-sha256", "x-security-token", "authorization"]
    }
}

/// Builds and signs a `GET /?…` call at `time`.
pub fn prepare(
    endpoint: &Url,
    region: &str,
    credentials: &Credentials,
    query: &[(String, String)],
    invocation: Option<Invocation<'_>>,
    time: DateTime<Utc>,
) -> PreparedRequest {
    let mut request = unsigned(endpoint, query, invocation, "call");
    let headers = sign(&mut request, region, credentials, time);
    PreparedRequest { url: request.url, headers }
}
