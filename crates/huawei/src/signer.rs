//! Huawei Cloud's `SDK-HMAC-SHA256` request signature, as a pure function of
//! the request, the credentials and the time. It never reads the clock.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
pub use keypair_binder_core::signing::percent_encode as encode;
use keypair_binder_core::signing::{
    CanonicalSink, SignedHeaders, compact_utc, hex_digest, hex_lower, hmac_sha256, percent_encode_into, sha256_hex,
    upper_case_method,
};
pub use keypair_binder_core::signing::{SignableRequest, Signature};
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

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

fn canonical_uri_into(out: &mut impl CanonicalSink, path: &str) {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/');
    if path.bytes().all(plain) {
        // Nothing to decode or encode: the path is its own canonical form.
        out.put(path);
        if !path.ends_with('/') {
            out.put("/");
        }
        return;
    }
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    let mut uri = String::with_capacity(path.len() * 3 + 1);
    for (i, segment) in decoded.split('/').enumerate() {
        if i > 0 {
            uri.push('/');
        }
        percent_encode_into(&mut uri, segment);
    }
    if !uri.ends_with('/') {
        uri.push('/');
    }
    out.put(&uri);
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
    let ct = content_type.trim_start().as_bytes();
    let starts = |prefix: &str| ct.get(..prefix.len()).is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()));
    starts("application/json") || starts("application/bson")
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
    let query = canonical_query(request.query);
    let unsigned = Unsigned {
        method: request.method,
        host: request.host,
        path: request.path,
        canonical_query: &query,
        headers: &headers,
        body: request.body,
    };
    let date = format_sdk_date(time);
    let additions = Additions::new(&unsigned, credentials, project_id, &date);
    let mut signature = additions.plan(&unsigned, &credentials.access_key).signature(credentials.secret_key.expose());
    signature.headers = additions.added.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    signature.headers.push(("Authorization".into(), signature.authorization.clone()));
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

/// What the SDK adds to a request before signing it: headers (names as it
/// writes them, `Authorization` aside) and the payload hash. The one
/// implementation behind [`sign`] and [`KpsSigner`].
struct Additions<'a> {
    added: Vec<(&'static str, &'a str)>,
    date: &'a str,
    payload_hash: Cow<'a, str>,
}

impl<'a> Additions<'a> {
    /// `date` is the `X-Sdk-Date` to add unless the request has one.
    fn new(request: &Unsigned<'a>, credentials: &'a AkSk, project_id: Option<&'a str>, date: &'a str) -> Self {
        let own = request.headers;
        let mut added: Vec<(&'static str, &'a str)> = Vec::with_capacity(5);
        if let Some(project) = project_id {
            added.push(("X-Project-Id", project));
        }
        if let Some(token) = &credentials.token {
            added.push(("X-Security-Token", token.expose()));
        }
        let own_hash = header(own, "X-Sdk-Content-Sha256");
        if own_hash.is_none() && header(own, "Content-Type").is_some_and(|ct| !is_json_like(ct)) {
            added.push(("X-Sdk-Content-Sha256", UNSIGNED_PAYLOAD));
        }
        let date = match header(own, "X-Sdk-Date") {
            Some(own_date) => own_date,
            None => {
                added.push(("X-Sdk-Date", date));
                date
            }
        };
        if header(own, "Host").is_none() {
            added.push(("Host", request.host));
        }
        let payload_hash = match own_hash.or_else(|| header(&added, "X-Sdk-Content-Sha256")) {
            Some(hash) => Cow::Borrowed(hash),
            None => Cow::Owned(sha256_hex(request.body)),
        };
        Self { added, date, payload_hash }
    }

    /// The signature's plan: the request's own headers and the added ones,
    /// less any name with `_` (the SDK never signs those).
    fn plan<'p>(&'p self, request: &'p Unsigned<'p>, access_key: &'p str) -> SigningPlan<'p> {
        let headers = request.headers.iter().chain(self.added.iter()).copied().filter(|(name, _)| !name.contains('_'));
        SigningPlan::new(
            request.method,
            request.path,
            request.canonical_query,
            headers,
            &self.payload_hash,
            access_key,
            self.date,
        )
    }
}

/// Everything a signature covers, written once in canonical order: to a
/// `String` for [`Signature`] (vectors, tests, verifying), or into the hash
/// for the binder's calls.
struct SigningPlan<'a> {
    method: &'a str,
    path: &'a str,
    canonical_query: &'a str,
    headers: SignedHeaders<'a>,
    payload_hash: &'a str,
    access_key: &'a str,
    date: &'a str,
}

impl<'a> SigningPlan<'a> {
    fn new(
        method: &'a str,
        path: &'a str,
        canonical_query: &'a str,
        headers: impl Iterator<Item = (&'a str, &'a str)>,
        payload_hash: &'a str,
        access_key: &'a str,
        date: &'a str,
    ) -> Self {
        Self { method, path, canonical_query, headers: SignedHeaders::new(headers), payload_hash, access_key, date }
    }

    fn write_canonical(&self, out: &mut impl CanonicalSink) {
        out.put(&upper_case_method(self.method));
        out.put("\n");
        canonical_uri_into(out, self.path);
        out.put("\n");
        out.put(self.canonical_query);
        out.put("\n");
        self.headers.write(out);
        out.put("\n");
        out.put(self.payload_hash);
    }

    fn write_string_to_sign(&self, out: &mut impl CanonicalSink, canonical_hash_hex: &str) {
        out.put(ALGORITHM);
        out.put("\n");
        out.put(self.date);
        out.put("\n");
        out.put(canonical_hash_hex);
    }

    fn authorization(&self, signature_hex: &str) -> String {
        format!(
            "{ALGORITHM} Access={}, SignedHeaders={}, Signature={signature_hex}",
            self.access_key,
            self.headers.names()
        )
    }

    /// The signature with its intermediate strings written out.
    fn signature(self, secret_key: &str) -> Signature {
        let mut canonical_request = String::with_capacity(256 + self.path.len() + self.canonical_query.len());
        self.write_canonical(&mut canonical_request);
        let mut string_to_sign = String::with_capacity(128);
        self.write_string_to_sign(&mut string_to_sign, &sha256_hex(canonical_request.as_bytes()));
        let signature = hex_lower(&hmac_sha256(secret_key.as_bytes(), string_to_sign.as_bytes()));
        let authorization = self.authorization(&signature);
        Signature {
            canonical_request,
            string_to_sign,
            signature,
            signed_headers: self.headers.names().to_string(),
            authorization,
            headers: Vec::new(),
        }
    }

    /// The `Authorization` value alone, hashing as it writes: neither the
    /// canonical request nor the string to sign is ever held in memory.
    fn authorization_streaming(&self, secret_key: &str) -> String {
        let mut canonical = Sha256::new();
        self.write_canonical(&mut canonical);
        let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes a key of any length");
        self.write_string_to_sign(&mut mac, hex_digest(&canonical.finalize().into()).as_str());
        self.authorization(hex_digest(&mac.finalize().into_bytes().into()).as_str())
    }
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
        keypair_binder_core::signing::fmt_canonical_request(f, self.method, self.path, &self.headers)
    }
}

impl CanonicalRequest<'_> {
    /// Signs with the secret key; `sdk_date` is the `X-Sdk-Date` value.
    pub fn sign(&self, access_key: &str, secret_key: &str, sdk_date: &str) -> Signature {
        let query = canonical_query(self.query);
        let headers = self.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        SigningPlan::new(self.method, self.path, &query, headers, &self.payload_hash, access_key, sdk_date)
            .signature(secret_key)
    }
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
/// [`Signer`](keypair_binder_core::kit::Signer) with the project id the
/// SDK adds as `X-Project-Id`.
#[derive(Clone, Debug)]
pub struct KpsSigner {
    /// Project id, when the call is project-scoped.
    pub project: Option<String>,
}

/// [`KpsSigner`]'s signature with borrowed credentials: the headers the SDK
/// adds and `Authorization`, set on `request`, the canonical request hashed
/// as it is written.
pub fn sign_outgoing(
    request: &mut keypair_binder_core::kit::OutgoingRequest,
    key: &AkSk,
    project: Option<&str>,
    time: DateTime<Utc>,
) {
    use http::header::{AUTHORIZATION, HeaderName, HeaderValue};
    const X_PROJECT_ID: HeaderName = HeaderName::from_static("x-project-id");
    const X_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-security-token");
    const X_SDK_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-sdk-content-sha256");
    const X_SDK_DATE: HeaderName = HeaderName::from_static("x-sdk-date");

    let query = match request.uri.query() {
        Some(query) => {
            Cow::Owned(canonical_query(&url::form_urlencoded::parse(query.as_bytes()).into_owned().collect::<Vec<_>>()))
        }
        None => Cow::Borrowed(""),
    };
    let mut own: Vec<(&str, &str)> = Vec::with_capacity(request.headers.len());
    own.extend(request.headers.iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))));
    let unsigned = Unsigned {
        method: request.method.as_str(),
        host: keypair_binder_core::kit::uri_host(&request.uri),
        path: request.uri.path(),
        canonical_query: &query,
        headers: &own,
        body: &request.body,
    };
    let date = format_sdk_date(time);
    let additions = Additions::new(&unsigned, key, project, &date);
    let authorization = additions.plan(&unsigned, &key.access_key).authorization_streaming(key.secret_key.expose());
    let mut headers = Vec::with_capacity(additions.added.len() + 1);
    for (name, value) in &additions.added {
        let name = match *name {
            "X-Project-Id" => X_PROJECT_ID,
            "X-Security-Token" => X_SECURITY_TOKEN,
            "X-Sdk-Content-Sha256" => X_SDK_CONTENT_SHA256,
            "X-Sdk-Date" => X_SDK_DATE,
            // `Host` comes from the URL.
            _ => continue,
        };
        if let Ok(mut value) = HeaderValue::from_str(value) {
            value.set_sensitive(name == X_SECURITY_TOKEN);
            headers.push((name, value));
        }
    }
    if let Ok(value) = HeaderValue::try_from(authorization) {
        headers.push((AUTHORIZATION, value));
    }
    request.headers.reserve(headers.len());
    for (name, value) in headers {
        request.headers.insert(name, value);
    }
}

impl keypair_binder_core::kit::Signer for KpsSigner {
    fn sign(&self, request: &mut keypair_binder_core::kit::OutgoingRequest, key: &AkSk, time: DateTime<Utc>) {
        sign_outgoing(request, key, self.project.as_deref(), time);
    }

    fn added_headers(&self) -> &'static [&'static str] {
        &["x-project-id", "x-security-token", "authorization"]
    }
}
