//! Huawei Cloud's `SDK-HMAC-SHA256` request signature, as a pure function of
//! the request, the credentials and the time. It never reads the clock.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
pub use keypair_binder_core::signing::percent_encode as encode;
pub use keypair_binder_core::signing::{SignableRequest, Signature};
use keypair_binder_core::signing::{compact_utc, hex_lower, hmac_sha256, percent_encode_into, sha256_hex};
use percent_encoding::percent_decode_str;

/// The algorithm name.
pub const ALGORITHM: &str = "SDK-HMAC-SHA256";
/// Payload hash used when the body is not JSON.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Access key, secret key and, for temporary credentials, the security token.
pub type AkSk = keypair_binder_core::signing::AccessKey;

/// The `X-Sdk-Date` form of a time.
pub fn format_sdk_date(time: DateTime<Utc>) -> String {
    compact_utc(time)
}

/// The canonical URI: decode, split on `/`, encode each segment, end with `/`.
pub fn canonical_uri(path: &str) -> String {
    let mut uri = String::with_capacity(path.len() + 1);
    canonical_uri_into(&mut uri, path);
    uri
}

fn canonical_uri_into(out: &mut String, path: &str) {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/');
    if path.bytes().all(plain) {
        // Nothing to decode or encode: the path is its own canonical form.
        out.push_str(path);
    } else {
        let decoded = percent_decode_str(path).decode_utf8_lossy();
        for (i, segment) in decoded.split('/').enumerate() {
            if i > 0 {
                out.push('/');
            }
            percent_encode_into(out, segment);
        }
    }
    if !out.ends_with('/') {
        out.push('/');
    }
}

/// The canonical query string: pairs sorted by decoded key then value, encoded.
/// It is also what goes on the wire, so the server sees what was signed.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut out = String::new();
    canonical_query_into(&mut out, query);
    out
}

fn canonical_query_into(out: &mut String, query: &[(String, String)]) {
    let mut pairs: Vec<&(String, String)> = query.iter().collect();
    pairs.sort();
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode_into(out, key);
        out.push('=');
        percent_encode_into(out, value);
    }
}

fn is_json_like(content_type: &str) -> bool {
    let ct = content_type.trim_start().to_ascii_lowercase();
    ct.starts_with("application/json") || ct.starts_with("application/bson")
}

fn header<'a>(headers: &[(&str, &'a str)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
}

/// Signs a request. `project_id` becomes `X-Project-Id`, as the SDK adds it.
pub fn sign(
    request: &SignableRequest<'_>,
    credentials: &AkSk,
    project_id: Option<&str>,
    time: DateTime<Utc>,
) -> Signature {
    let headers: Vec<(&str, &str)> = request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (mut signature, added) = sign_headers(
        &Unsigned {
            method: request.method,
            host: request.host,
            path: request.path,
            canonical_query: &canonical_query(request.query),
            headers: &headers,
            body: request.body,
        },
        credentials,
        project_id,
        time,
    );
    signature.headers = added.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
    signature
}

/// A request as the signature reads it, whoever holds it.
struct Unsigned<'a> {
    method: &'a str,
    host: &'a str,
    path: &'a str,
    /// Already canonical: sorted, encoded.
    canonical_query: &'a str,
    /// The request's own headers, any casing.
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
}

/// The signature, and the headers it adds (names as the SDK writes them,
/// `Authorization` last): the one implementation behind [`sign`] and [`KpsSigner`].
fn sign_headers(
    request: &Unsigned<'_>,
    credentials: &AkSk,
    project_id: Option<&str>,
    time: DateTime<Utc>,
) -> (Signature, Vec<(&'static str, String)>) {
    let mut added: Vec<(&'static str, String)> = Vec::with_capacity(6);
    if let Some(project) = project_id {
        added.push(("X-Project-Id", project.into()));
    }
    if let Some(token) = &credentials.token {
        added.push(("X-Security-Token", token.expose().into()));
    }
    let own = request.headers;
    if header(own, "Content-Type").is_some_and(|ct| !is_json_like(ct)) && header(own, "X-Sdk-Content-Sha256").is_none()
    {
        added.push(("X-Sdk-Content-Sha256", UNSIGNED_PAYLOAD.into()));
    }
    if header(own, "X-Sdk-Date").is_none() {
        added.push(("X-Sdk-Date", format_sdk_date(time)));
    }
    if header(own, "Host").is_none() {
        added.push(("Host", request.host.into()));
    }
    let mut headers: Vec<(&str, &str)> = own.to_vec();
    headers.extend(added.iter().map(|(n, v)| (*n, v.as_str())));
    let find = |name: &str| header(&headers, name);
    let payload_hash = match find("X-Sdk-Content-Sha256") {
        Some(v) => v.to_string(),
        None => sha256_hex(request.body),
    };
    let date = find("X-Sdk-Date").unwrap_or_default().to_string();
    headers.retain(|(n, _)| !n.contains('_'));
    let signature = sign_parts(
        request.method,
        request.path,
        request.canonical_query,
        &headers,
        &payload_hash,
        &credentials.access_key,
        credentials.secret_key.expose(),
        &date,
    );
    added.push(("Authorization", signature.authorization.clone()));
    (signature, added)
}

/// What the signature covers; also used to verify a received request.
#[derive(Clone)]
pub struct CanonicalRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as sent.
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// Headers to sign, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`.
    pub payload_hash: String,
}

/// Header names only: a signed `X-Security-Token` is a secret.
impl std::fmt::Debug for CanonicalRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CanonicalRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("headers", &keypair_binder_core::signing::header_names(&self.headers))
            .finish_non_exhaustive()
    }
}

impl CanonicalRequest<'_> {
    /// Signs with the secret key; `sdk_date` is the `X-Sdk-Date` value.
    pub fn sign(&self, access_key: &str, secret_key: &str, sdk_date: &str) -> Signature {
        let headers: Vec<(&str, &str)> = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let query = canonical_query(self.query);
        sign_parts(self.method, self.path, &query, &headers, &self.payload_hash, access_key, secret_key, sdk_date)
    }
}

/// The canonical request built in one buffer, then signed.
#[allow(clippy::too_many_arguments)]
fn sign_parts(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    access_key: &str,
    secret_key: &str,
    sdk_date: &str,
) -> Signature {
    // Names already in lower case (a `HeaderMap`'s) are borrowed, not copied.
    fn lower(name: &str) -> Cow<'_, str> {
        if name.bytes().any(|b| b.is_ascii_uppercase()) { name.to_ascii_lowercase().into() } else { name.into() }
    }
    let mut headers: Vec<(Cow<'_, str>, &str)> = headers.iter().map(|(n, v)| (lower(n), v.trim())).collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers.dedup_by(|a, b| a.0 == b.0);
    let mut signed_headers = String::with_capacity(headers.iter().map(|(n, _)| n.len() + 1).sum());
    for (i, (name, _)) in headers.iter().enumerate() {
        if i > 0 {
            signed_headers.push(';');
        }
        signed_headers.push_str(name);
    }
    let mut canonical_request = String::with_capacity(
        256 + path.len() + canonical_query.len() + headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum::<usize>(),
    );
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        canonical_request.push_str(&method.to_ascii_uppercase());
    } else {
        canonical_request.push_str(method);
    }
    canonical_request.push('\n');
    canonical_uri_into(&mut canonical_request, path);
    canonical_request.push('\n');
    canonical_request.push_str(canonical_query);
    canonical_request.push('\n');
    for (name, value) in &headers {
        canonical_request.push_str(name);
        canonical_request.push(':');
        canonical_request.push_str(value);
        canonical_request.push('\n');
    }
    canonical_request.push('\n');
    canonical_request.push_str(&signed_headers);
    canonical_request.push('\n');
    canonical_request.push_str(payload_hash);
    let string_to_sign = format!("{ALGORITHM}\n{sdk_date}\n{}", sha256_hex(canonical_request.as_bytes()));
    let signature = hex_lower(&hmac_sha256(secret_key.as_bytes(), string_to_sign.as_bytes()));
    let authorization =
        format!("{ALGORITHM} Access={access_key}, SignedHeaders={signed_headers}, Signature={signature}");
    Signature { canonical_request, string_to_sign, signature, signed_headers, authorization, headers: Vec::new() }
}

/// The parts of an `Authorization` header, for verifying a received request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// Access key id.
    pub access_key: String,
    /// Signed header names.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parses `SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let (mut access, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (key, val) = part.trim().split_once('=')?;
        match key {
            "Access" => access = Some(val),
            "SignedHeaders" => signed = Some(val),
            "Signature" => signature = Some(val),
            _ => {}
        }
    }
    Some(ParsedAuthorization {
        access_key: access?.to_string(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: signature?.to_string(),
    })
}

/// The `SDK-HMAC-SHA256` signature as the kit's
/// [`Signer`](keypair_binder_core::kit::Signer): an access key
/// and the project id the SDK adds as `X-Project-Id`.
#[derive(Clone, Debug)]
pub struct KpsSigner {
    /// Access key, secret key, security token.
    pub key: AkSk,
    /// Project id, when the call is project-scoped.
    pub project: Option<String>,
}

impl keypair_binder_core::kit::Signer for KpsSigner {
    fn sign(&self, request: &mut keypair_binder_core::kit::OutgoingRequest, time: DateTime<Utc>) {
        use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
        const X_PROJECT_ID: HeaderName = HeaderName::from_static("x-project-id");
        const X_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-security-token");
        const X_SDK_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-sdk-content-sha256");
        const X_SDK_DATE: HeaderName = HeaderName::from_static("x-sdk-date");

        let host = keypair_binder_core::http::host_header(&request.url);
        let query = match request.url.query() {
            Some(_) => canonical_query(&request.url.query_pairs().into_owned().collect::<Vec<_>>()),
            None => String::new(),
        };
        let own: Vec<(&str, &str)> =
            request.headers.iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))).collect();
        let unsigned = Unsigned {
            method: request.method.as_str(),
            host: &host,
            path: request.url.path(),
            canonical_query: &query,
            headers: &own,
            body: &request.body,
        };
        let (_, added) = sign_headers(&unsigned, &self.key, self.project.as_deref(), time);
        for (name, value) in added {
            let name = match name {
                "X-Project-Id" => X_PROJECT_ID,
                "X-Security-Token" => X_SECURITY_TOKEN,
                "X-Sdk-Content-Sha256" => X_SDK_CONTENT_SHA256,
                "X-Sdk-Date" => X_SDK_DATE,
                "Authorization" => AUTHORIZATION,
                // `Host` comes from the URL.
                _ => continue,
            };
            if let Ok(mut value) = HeaderValue::from_str(&value) {
                value.set_sensitive(name == X_SECURITY_TOKEN);
                request.headers.insert(name, value);
            }
        }
    }

    fn added_headers(&self) -> &'static [&'static str] {
        &["x-project-id", "x-security-token", "authorization"]
    }
}
