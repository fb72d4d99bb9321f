//! Alibaba Cloud's request signatures, as pure functions of the request,
//! the credentials, the time and the nonce. They never read the clock.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
pub use keypair_binder_core::signing::percent_encode as encode;
use keypair_binder_core::signing::{hex_lower, hmac_sha256, percent_encode_into, sha256_hex};
use sha1::Sha1;

/// The default algorithm's name.
pub const ACS3: &str = "ACS3-HMAC-SHA256";
/// The API version of every ECS call.
pub const API_VERSION: &str = "2014-05-26";

/// Access key, secret and, for STS credentials, the security token.
pub type AccessKey = keypair_binder_core::signing::AccessKey;

/// The `x-acs-date` and RPC `Timestamp` form of a time: `2024-05-20T08:30:00Z`.
pub fn format_date(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The canonical query: values (and names) percent-encoded keeping only
/// RFC 3986 unreserved characters, sorted by name in byte order.
pub fn canonical_query(query: &[(String, String)]) -> String {
    let mut pairs: Vec<(String, &str)> = query.iter().map(|(k, v)| (encode(k), v.as_str())).collect();
    // By encoded name, then value: the order the SDK signs.
    pairs.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| encode(a.1).cmp(&encode(b.1))));
    let mut out = String::with_capacity(pairs.iter().map(|(k, v)| k.len() + 3 * v.len() + 2).sum());
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        percent_encode_into(&mut out, value);
    }
    out
}

/// What an ACS3 signature covers.
#[derive(Clone, Copy, Debug)]
pub struct Acs3Request<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path (`/` for ECS).
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// Headers already on the request (`host`, `x-acs-action`, `x-acs-version`,
    /// `x-acs-date`, `x-acs-signature-nonce`…); every one is signed.
    pub headers: &'a [(String, String)],
    /// The exact body bytes.
    pub body: &'a [u8],
}

/// An ACS3 signature with its intermediate strings (for tests and debugging).
#[derive(Clone, PartialEq, Eq)]
pub struct Acs3Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// Lower-case hex signature.
    pub signature: String,
    /// The `Authorization` value.
    pub authorization: String,
    /// Headers to add, `Authorization` last: the body hash when missing,
    /// the STS headers, the signature.
    pub headers: Vec<(String, String)>,
}

/// Signs with ACS3-HMAC-SHA256: every header present is signed; the body
/// hash and, for STS credentials, `x-acs-accesskey-id` and
/// `x-acs-security-token` are added when missing.
pub fn sign_acs3(request: &Acs3Request<'_>, key: &AccessKey) -> Acs3Signature {
    sign_acs3_canonical(request, &canonical_query(request.query), key)
}

/// [`sign_acs3`] over a query already in canonical form (as a request
/// built by [`crate::request::unsigned`] carries it): `request.query` is not read.
pub fn sign_acs3_canonical(request: &Acs3Request<'_>, canonical_query: &str, key: &AccessKey) -> Acs3Signature {
    let has = |name: &str| request.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut added: Vec<(String, String)> = Vec::new();
    if !has("x-acs-content-sha256") {
        added.push(("x-acs-content-sha256".into(), sha256_hex(request.body)));
    }
    if let Some(token) = &key.token {
        if !has("x-acs-accesskey-id") {
            added.push(("x-acs-accesskey-id".into(), key.access_key.clone()));
        }
        if !has("x-acs-security-token") {
            added.push(("x-acs-security-token".into(), token.expose().to_string()));
        }
    }
    let mut signed: Vec<(String, String)> = request
        .headers
        .iter()
        .chain(added.iter())
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    signed.sort_by(|a, b| a.0.cmp(&b.0));
    signed.dedup_by(|a, b| a.0 == b.0);
    let payload_hash = signed
        .iter()
        .find(|(n, _)| n == "x-acs-content-sha256")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| sha256_hex(request.body));
    let names = signed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = signed.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let path = if request.path.is_empty() { "/" } else { request.path };
    let canonical_request = format!(
        "{}\n{path}\n{canonical_query}\n{canonical_headers}\n{names}\n{payload_hash}",
        request.method.to_ascii_uppercase(),
    );
    let string_to_sign = format!("{ACS3}\n{}", sha256_hex(canonical_request.as_bytes()));
    let signature = hex_lower(&hmac_sha256(key.secret_key.expose().as_bytes(), string_to_sign.as_bytes()));
    let authorization = format!("{ACS3} Credential={},SignedHeaders={names},Signature={signature}", key.access_key);
    added.push(("Authorization".into(), authorization.clone()));
    Acs3Signature { canonical_request, string_to_sign, signature, authorization, headers: added }
}

/// Header names only: the canonical request and the added headers may hold
/// an STS token.
impl std::fmt::Debug for Acs3Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acs3Signature")
            .field("authorization", &self.authorization)
            .field("added_headers", &keypair_binder_core::signing::header_names(&self.headers))
            .finish_non_exhaustive()
    }
}

/// The legacy RPC signature (`SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`).
#[derive(Clone, PartialEq, Eq)]
pub struct RpcSignature {
    /// The canonicalized query string.
    pub canonical_query: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// Base64 signature.
    pub signature: String,
    /// Parameters to append, `Signature` last: `SecurityToken` (STS),
    /// `SignatureMethod`, `SignatureVersion`, `AccessKeyId`, `Signature`.
    pub added: Vec<(String, String)>,
}

/// Parameter names only: the query and the added parameters may hold an STS token.
impl std::fmt::Debug for RpcSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcSignature")
            .field("signature", &self.signature)
            .field("added", &keypair_binder_core::signing::header_names(&self.added))
            .finish_non_exhaustive()
    }
}

/// Signs an RPC call whose query already holds `Action`, `Format`,
/// `Version`, `Timestamp`, `SignatureNonce` and the action's parameters.
pub fn sign_rpc(method: &str, query: &[(String, String)], key: &AccessKey) -> RpcSignature {
    let mut added: Vec<(String, String)> = Vec::new();
    if let Some(token) = &key.token {
        added.push(("SecurityToken".into(), token.expose().to_string()));
    }
    added.push(("SignatureMethod".into(), "HMAC-SHA1".into()));
    added.push(("SignatureVersion".into(), "1.0".into()));
    added.push(("AccessKeyId".into(), key.access_key.clone()));
    let all: Vec<(String, String)> = query.iter().chain(added.iter()).cloned().collect();
    let canonical = canonical_query(&all);
    let string_to_sign = format!("{}&{}&{}", method.to_ascii_uppercase(), encode("/"), encode(&canonical));
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{}&", key.secret_key.expose()).as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    added.push(("Signature".into(), signature.clone()));
    RpcSignature { canonical_query: canonical, string_to_sign, signature, added }
}
