//! Alibaba Cloud's request signatures, as pure functions of the request,
//! the credentials, the time and the nonce. They never read the clock.

use std::borrow::Cow;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
pub use keypair_binder_core::signing::percent_encode as encode;
use keypair_binder_core::signing::{
    CanonicalSink, SignedHeaders, hex_digest, hex_lower, hmac_sha256, sha256_hex, upper_case_method,
    write_canonical_request,
};
use sha1::Sha1;
use sha2::{Digest, Sha256};

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
    keypair_binder_core::signing::canonical_query_of(query)
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
    let headers: Vec<(&str, &str)> = request.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let additions = Acs3Additions::new(&headers, request.body, key);
    let plan = additions.plan(request.method, request.path, canonical_query, &headers, &key.access_key);
    let mut canonical_request = String::with_capacity(512 + canonical_query.len());
    plan.write_canonical(&mut canonical_request);
    let mut string_to_sign = String::with_capacity(96);
    plan.write_string_to_sign(&mut string_to_sign, &sha256_hex(canonical_request.as_bytes()));
    let signature = hex_lower(&hmac_sha256(key.secret_key.expose().as_bytes(), string_to_sign.as_bytes()));
    let authorization = plan.authorization(&signature);
    let mut headers: Vec<(String, String)> =
        additions.added.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    headers.push(("Authorization".into(), authorization.clone()));
    Acs3Signature { canonical_request, string_to_sign, signature, authorization, headers }
}

/// The ACS3 `Authorization` value, the canonical request and the string to
/// sign hashed as they are written (nothing copied): the binder's path.
/// `headers` are every header the request sends, `host` included; with the
/// value come the headers the signature adds, `Authorization` aside.
pub(crate) fn acs3_authorization<'a>(
    method: &'a str,
    path: &'a str,
    canonical_query: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &[u8],
    key: &'a AccessKey,
) -> (String, Vec<(&'static str, Cow<'a, str>)>) {
    let additions = Acs3Additions::new(headers, body, key);
    let authorization = {
        let plan = additions.plan(method, path, canonical_query, headers, &key.access_key);
        let mut canonical = Sha256::new();
        plan.write_canonical(&mut canonical);
        let mut mac =
            Hmac::<Sha256>::new_from_slice(key.secret_key.expose().as_bytes()).expect("HMAC takes a key of any length");
        plan.write_string_to_sign(&mut mac, hex_digest(&canonical.finalize().into()).as_str());
        plan.authorization(hex_digest(&mac.finalize().into_bytes().into()).as_str())
    };
    (authorization, additions.added)
}

/// What ACS3 adds before signing: the body hash when missing and, for STS
/// credentials, `x-acs-accesskey-id` and `x-acs-security-token`. The one
/// implementation behind [`sign_acs3_canonical`] and the kit's signer.
struct Acs3Additions<'a> {
    added: Vec<(&'static str, Cow<'a, str>)>,
}

impl<'a> Acs3Additions<'a> {
    fn new(headers: &[(&str, &str)], body: &[u8], key: &'a AccessKey) -> Self {
        let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        let mut added: Vec<(&'static str, Cow<'a, str>)> = Vec::with_capacity(3);
        if !has("x-acs-content-sha256") {
            added.push(("x-acs-content-sha256", Cow::Owned(sha256_hex(body))));
        }
        if let Some(token) = &key.token {
            if !has("x-acs-accesskey-id") {
                added.push(("x-acs-accesskey-id", Cow::Borrowed(&key.access_key)));
            }
            if !has("x-acs-security-token") {
                added.push(("x-acs-security-token", Cow::Borrowed(token.expose())));
            }
        }
        Self { added }
    }

    /// Every header signed: the request's own and the added ones.
    fn plan<'p>(
        &'p self,
        method: &'p str,
        path: &'p str,
        canonical_query: &'p str,
        headers: &'p [(&'p str, &'p str)],
        access_key: &'p str,
    ) -> Acs3Plan<'p> {
        let added = self.added.iter().map(|(n, v)| (*n, v.as_ref()));
        let signed = SignedHeaders::new(headers.iter().copied().chain(added));
        let payload_hash = signed.get("x-acs-content-sha256");
        Acs3Plan { method: upper_case_method(method), path, canonical_query, signed, payload_hash, access_key }
    }
}

/// An ACS3 canonical request, written once: to a `String` or into the hash.
struct Acs3Plan<'a> {
    method: Cow<'a, str>,
    path: &'a str,
    canonical_query: &'a str,
    signed: SignedHeaders<'a>,
    /// Always present: [`Acs3Additions`] adds it when the request has none.
    payload_hash: Option<&'a str>,
    access_key: &'a str,
}

impl Acs3Plan<'_> {
    fn write_canonical(&self, out: &mut impl CanonicalSink) {
        let payload_hash = self.payload_hash.unwrap_or_default();
        write_canonical_request(out, &self.method, self.path, self.canonical_query, &self.signed, payload_hash);
    }

    fn write_string_to_sign(&self, out: &mut impl CanonicalSink, canonical_hash_hex: &str) {
        out.put(ACS3);
        out.put("\n");
        out.put(canonical_hash_hex);
    }

    fn authorization(&self, signature_hex: &str) -> String {
        format!("{ACS3} Credential={},SignedHeaders={},Signature={signature_hex}", self.access_key, self.signed.names())
    }
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
    // The HMAC key holds the secret key: sized once (no copy left behind by
    // a reallocation) and zeroized when dropped.
    let secret_key = key.secret_key.expose();
    let mut hmac_key = zeroize::Zeroizing::new(String::with_capacity(secret_key.len() + 1));
    hmac_key.push_str(secret_key);
    hmac_key.push('&');
    let mut mac = Hmac::<Sha1>::new_from_slice(hmac_key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(string_to_sign.as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    added.push(("Signature".into(), signature.clone()));
    RpcSignature { canonical_query: canonical, string_to_sign, signature, added }
}
