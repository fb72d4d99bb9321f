//! A signed ECS call, built without any I/O: an unsigned request from the
//! query, and its signature at a given time.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE as CONTENT_TYPE_HEADER, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};
use keypair_binder_core::kit::{OutgoingRequest, Signer, endpoint_uri, sdk_query_uri, uri_host};
use keypair_binder_core::report::Failure;
use keypair_binder_core::sha256_hex;
use keypair_binder_core::signing::canonical_of_form_encoded;
use url::Url;

use crate::signer::{self, Credentials};
use crate::wire;

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
    pub uri: Uri,
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
) -> Result<OutgoingRequest, Failure> {
    unsigned_canonical(endpoint, &signer::canonical_query(query), invocation, action)
}

/// [`unsigned`] from a query already in canonical form, which goes on the
/// wire as it is and is signed as it is.
pub fn unsigned_canonical(
    endpoint: &Url,
    canonical_query: &str,
    invocation: Option<Invocation<'_>>,
    action: &'static str,
) -> Result<OutgoingRequest, Failure> {
    Ok(unsigned_get(endpoint_uri(endpoint, "/", canonical_query)?, invocation, action))
}

/// `GET` of `uri` with the SDK's headers.
fn unsigned_get(uri: Uri, invocation: Option<Invocation<'_>>, action: &'static str) -> OutgoingRequest {
    // Room for the signer's headers too.
    let mut headers = HeaderMap::with_capacity(8);
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
    OutgoingRequest::new(Method::GET, uri, action).with_headers(headers)
}

/// The unsigned `GET /?…` call with these parameters (in canonical order):
/// each pair goes on the URL encoded as the official Python SDK encodes it,
/// written straight into it ([`sdk_query_uri`]); the signer signs their
/// canonical form.
pub fn unsigned_params(
    endpoint: &Url,
    params: &wire::Params<'_>,
    invocation: Option<Invocation<'_>>,
    action: &'static str,
) -> Result<OutgoingRequest, Failure> {
    let uri = sdk_query_uri(endpoint, "/", params.iter().map(|(key, value)| (key.as_ref(), *value)))?;
    Ok(unsigned_get(uri, invocation, action))
}

/// A header name as the SDK writes it (`X-Sdk-Request`), for tools that
/// send a prepared request themselves.
fn sdk_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Whether the SDK signs a header it sends: `Content-Type`, `Content-Md5`,
/// `Host` and every `X-` header (names here are lower case).
fn is_signed(name: &str) -> bool {
    matches!(name, "content-type" | "content-md5" | "host") || name.starts_with("x-")
}

/// Signs a request at `time` in place: `X-Date`, `X-Content-Sha256`,
/// `X-Security-Token` and `Authorization`, over the canonical form of the
/// query on the URL (the query itself when it was built canonical).
pub fn sign(request: &mut OutgoingRequest, region: &str, credentials: &Credentials, time: DateTime<Utc>) {
    sign_as(request, region, signer::SERVICE, credentials, time);
}

/// [`sign`] for another service's scope (`sts`).
pub fn sign_as(
    request: &mut OutgoingRequest,
    region: &str,
    service: &str,
    credentials: &Credentials,
    time: DateTime<Utc>,
) {
    let x_date = signer::format_x_date(time);
    let host = uri_host(&request.uri);
    let payload_hash: Cow<'_, str> =
        if request.body.is_empty() { signer::EMPTY_SHA256.into() } else { sha256_hex(&request.body).into() };
    let token = credentials.token.as_ref().map(|t| t.expose());
    let mut signed: Vec<(&str, &str)> = request
        .headers
        .iter()
        .filter(|(n, _)| is_signed(n.as_str()))
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
        .collect();
    signed.push(("host", signer::host_for_signing(host)));
    signed.push(("x-date", &x_date));
    signed.push(("x-content-sha256", &payload_hash));
    if let Some(token) = token {
        signed.push(("x-security-token", token));
    }
    let key = signer::signing_key(credentials.secret_key.expose(), &x_date[..8], region, service);
    let authorization = signer::authorization(
        request.method.as_str(),
        request.uri.path(),
        &canonical_of_form_encoded(request.uri.query().unwrap_or("")),
        &signed,
        &payload_hash,
        &credentials.access_key,
        &key,
        region,
        service,
        &x_date,
    );
    let headers = &mut request.headers;
    let value = |text: &str| HeaderValue::from_str(text).ok();
    if let Some(v) = value(&x_date) {
        headers.insert(X_DATE, v);
    }
    if let Some(v) = value(&payload_hash) {
        headers.insert(X_CONTENT_SHA256, v);
    }
    if let Some(mut v) = token.and_then(value) {
        v.set_sensitive(true);
        headers.insert(X_SECURITY_TOKEN, v);
    }
    if let Some(v) = value(&authorization) {
        headers.insert(AUTHORIZATION, v);
    }
}

const X_DATE: HeaderName = HeaderName::from_static("x-date");
const X_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-content-sha256");
const X_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-security-token");

/// The ECS signature as the kit's [`Signer`], for one region.
#[derive(Clone, Debug)]
pub struct EcsSigner {
    /// Region of the credential scope.
    pub region: String,
}

impl Signer for EcsSigner {
    fn sign(&self, request: &mut OutgoingRequest, key: &Credentials, time: DateTime<Utc>) {
        sign(request, &self.region, key, time);
    }

    fn added_headers(&self) -> &'static [&'static str] {
        &["x-date", "x-content-sha256", "x-security-token", "authorization"]
    }
}

/// The same signature in the STS service's scope (`sts`), for `AssumeRole`.
#[derive(Clone, Debug)]
pub struct StsSigner {
    /// Region of the credential scope.
    pub region: String,
}

impl Signer for StsSigner {
    fn sign(&self, request: &mut OutgoingRequest, key: &Credentials, time: DateTime<Utc>) {
        sign_as(request, &self.region, "sts", key, time);
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
) -> Result<PreparedRequest, Failure> {
    let mut request = unsigned(endpoint, query, invocation, "call")?;
    sign(&mut request, region, credentials, time);
    let mut headers = vec![("Host".to_string(), uri_host(&request.uri).to_string())];
    headers
        .extend(request.headers.iter().filter_map(|(n, v)| Some((sdk_case(n.as_str()), v.to_str().ok()?.to_string()))));
    Ok(PreparedRequest { uri: request.uri, headers })
}
