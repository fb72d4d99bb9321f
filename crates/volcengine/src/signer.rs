//! Volcengine's `HMAC-SHA256` request signature, as a pure function of the
//! request, the credentials and the time. It never reads the clock.

use chrono::{DateTime, Utc};
pub use keypair_binder_core::signing::percent_encode as encode;
use keypair_binder_core::signing::{
    CanonicalSink, SignedHeaders, compact_utc, hex_digest, hex_lower, hmac_sha256, sha256_hex, write_canonical_request,
};
pub use keypair_binder_core::signing::{SignableRequest, Signature};
use sha2::{Digest, Sha256};

/// The algorithm name in the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "HMAC-SHA256";
/// The service name in the credential scope.
pub const SERVICE: &str = "ecs";

/// Access key, secret key and, for STS credentials, the session token.
pub type Credentials = keypair_binder_core::signing::AccessKey;

/// The `X-Date` form of a time: `YYYYMMDDTHHMMSSZ`.
pub fn format_x_date(time: DateTime<Utc>) -> String {
    compact_utc(time)
}

/// The canonical query string: encoded pairs sorted by key then value, in byte order.
pub fn canonical_query(query: &[(String, String)]) -> String {
    keypair_binder_core::signing::canonical_query_of(query)
}

/// Whether the SDK signs a header: exactly `Content-Type`, `Content-Md5`,
/// `Host`, or any name starting with upper-case `X-`.
fn is_signed(name: &str) -> bool {
    matches!(name, "Content-Type" | "Content-Md5" | "Host") || name.starts_with("X-")
}

fn signed_host(host: &str) -> &str {
    host.strip_suffix(":80").or_else(|| host.strip_suffix(":443")).unwrap_or(host)
}

fn hmac(key: &[u8], msg: &str) -> Vec<u8> {
    hmac_sha256(key, msg.as_bytes())
}

/// The signing key: HMAC chain over date, region, service and `request`.
pub fn signing_key(secret_key: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(secret_key.as_bytes(), date);
    let k_region = hmac(&k_date, region);
    let k_service = hmac(&k_region, service);
    hmac(&k_service, "request")
}

/// Signs a request for `region` at `time`.
pub fn sign(request: &SignableRequest<'_>, credentials: &Credentials, region: &str, time: DateTime<Utc>) -> Signature {
    let x_date = format_x_date(time);
    let payload_hash = sha256_hex(request.body);

    let mut added = vec![
        ("Host".to_string(), request.host.to_string()),
        ("X-Date".to_string(), x_date.clone()),
        ("X-Content-Sha256".to_string(), payload_hash.clone()),
    ];
    if let Some(token) = &credentials.token {
        added.push(("X-Security-Token".to_string(), token.expose().to_string()));
    }
    let signed: Vec<(String, String)> = request
        .headers
        .iter()
        .chain(added.iter())
        .filter(|(name, _)| is_signed(name))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect();
    let canonical = CanonicalRequest {
        method: request.method,
        path: request.path,
        query: request.query,
        headers: signed,
        payload_hash: &payload_hash,
    };
    let mut signature = canonical.sign(&credentials.access_key, credentials.secret_key.expose(), region, &x_date);
    added.push(("Authorization".to_string(), signature.authorization.clone()));
    signature.headers = added;
    signature
}

/// SHA-256 of an empty body, the payload hash of every GET.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The `Authorization` value of a request whose query is already canonical,
/// hashing the canonical request as it goes (no copy of the query).
/// `headers` are the signed headers, the host already without a default
/// port (of a repeated name, the first is signed).
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    access_key: &str,
    signing_key: &[u8],
    region: &str,
    service: &str,
    x_date: &str,
) -> String {
    let canonical =
        Canonical { method, path, query: canonical_query, headers: SignedHeaders::new(headers.iter().copied()) };
    let mut hash = Sha256::new();
    canonical.write(&mut hash, payload_hash);
    let scope = Scope::new(x_date, region, service);
    let (signature, _) = scope.sign(signing_key, x_date, hex_digest(&hash.finalize().into()).as_str());
    scope.authorization(access_key, canonical.headers.names(), &signature)
}

/// A canonical request's parts, the query already canonical: one writer
/// for the text the vectors check and for the hash the binder signs. The
/// headers are the kit's canonical form, values trimmed as the gateway's
/// Go signer does (the Python SDK's does not; no value sent is padded).
struct Canonical<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: SignedHeaders<'a>,
}

impl Canonical<'_> {
    /// The method as given: the gateway signs the one it received.
    fn write(&self, out: &mut impl CanonicalSink, payload_hash: &str) {
        write_canonical_request(out, self.method, self.path, self.query, &self.headers, payload_hash);
    }
}

/// The credential scope, `YYYYMMDD/region/ecs/request`.
struct Scope(String);

impl Scope {
    fn new(x_date: &str, region: &str, service: &str) -> Self {
        let date = x_date.get(..8).unwrap_or(x_date);
        Self(format!("{date}/{region}/{service}/request"))
    }

    /// The hex signature, and the string to sign it covers.
    fn sign(&self, signing_key: &[u8], x_date: &str, canonical_hash: &str) -> (String, String) {
        let string_to_sign = format!("{ALGORITHM}\n{x_date}\n{}\n{canonical_hash}", self.0);
        (hex_lower(&hmac(signing_key, &string_to_sign)), string_to_sign)
    }

    fn authorization(&self, access_key: &str, names: &str, signature: &str) -> String {
        format!("{ALGORITHM} Credential={access_key}/{}, SignedHeaders={names}, Signature={signature}", self.0)
    }
}

/// The host as signed: without a default port.
pub fn host_for_signing(host: &str) -> &str {
    signed_host(host)
}

/// The parts of a request the signature covers, for signing and for
/// verifying a received request (whose header names arrive lower-cased).
#[derive(Clone)]
pub struct CanonicalRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path (`/`).
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// The signed headers, names lower-case, values as sent.
    pub headers: Vec<(String, String)>,
    /// Hex SHA-256 of the body.
    pub payload_hash: &'a str,
}

/// Header names only: a signed `X-Security-Token` is a secret.
impl std::fmt::Debug for CanonicalRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        keypair_binder_core::signing::fmt_canonical_request(f, self.method, self.path, &self.headers)
    }
}

impl CanonicalRequest<'_> {
    /// Signs with a secret key for `region` at `x_date` (`YYYYMMDDTHHMMSSZ`).
    pub fn sign(&self, access_key: &str, secret_key: &str, region: &str, x_date: &str) -> Signature {
        let signed = self
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), if name == "host" { signed_host(value) } else { value.as_str() }));
        let query = canonical_query(self.query);
        let canonical =
            Canonical { method: self.method, path: self.path, query: &query, headers: SignedHeaders::new(signed) };
        let mut canonical_request = String::with_capacity(query.len() + 512);
        canonical.write(&mut canonical_request, self.payload_hash);
        let scope = Scope::new(x_date, region, SERVICE);
        let hash = hex_digest(&Sha256::digest(canonical_request.as_bytes()).into());
        let key = signing_key(secret_key, x_date.get(..8).unwrap_or(x_date), region, SERVICE);
        let (signature, string_to_sign) = scope.sign(&key, x_date, hash.as_str());
        let signed_headers = canonical.headers.names().to_string();
        let authorization = scope.authorization(access_key, &signed_headers, &signature);
        Signature { canonical_request, string_to_sign, signature, authorization, signed_headers, headers: Vec::new() }
    }
}

/// The parts of an `Authorization` header, for verifying a received request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedAuthorization {
    /// Access key id.
    pub access_key: String,
    /// `YYYYMMDD` of the scope.
    pub date: String,
    /// Region of the scope.
    pub region: String,
    /// Service of the scope.
    pub service: String,
    /// Signed header names, lower-case.
    pub signed_headers: Vec<String>,
    /// Hex signature.
    pub signature: String,
}

/// Parses `HMAC-SHA256 Credential=AK/date/region/service/request, SignedHeaders=…, Signature=…`.
pub fn parse_authorization(value: &str) -> Option<ParsedAuthorization> {
    let rest = value.strip_prefix(ALGORITHM)?.trim_start();
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (key, val) = part.trim().split_once('=')?;
        match key {
            "Credential" => credential = Some(val),
            "SignedHeaders" => signed = Some(val),
            "Signature" => signature = Some(val),
            _ => {}
        }
    }
    let mut scope = credential?.split('/');
    let (access_key, date, region, service, terminal) =
        (scope.next()?, scope.next()?, scope.next()?, scope.next()?, scope.next()?);
    if terminal != "request" || scope.next().is_some() {
        return None;
    }
    Some(ParsedAuthorization {
        access_key: access_key.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers: signed?.split(';').map(str::to_string).collect(),
        signature: signature?.to_string(),
    })
}
