//! Tencent Cloud's request signatures, as pure functions of the request,
//! the credentials and the time. They never read the clock.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::DateTime;
use hmac::{Hmac, Mac};
use keypair_binder_core::signing::{hex_lower, hmac_sha256, sha256_hex};
use sha1::Sha1;
use sha2::Sha256;

/// The default algorithm's name.
pub const TC3: &str = "TC3-HMAC-SHA256";
/// The service in the credential scope.
pub const SERVICE: &str = "cvm";
/// The API version of every CVM call.
pub const API_VERSION: &str = "2017-03-12";
/// The payload marker of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// SecretId, SecretKey and, for temporary credentials, the token (`X-TC-Token`).
pub type Credentials = keypair_binder_core::signing::AccessKey;

/// What a TC3 signature covers: only `content-type` and `host` are signed.
#[derive(Clone, Copy, Debug)]
pub struct Tc3Request<'a> {
    /// `POST` (JSON body) or `GET` (parameters in the query).
    pub method: &'a str,
    /// `host[:port]`.
    pub host: &'a str,
    /// The query exactly as sent (GET); empty for POST.
    pub query: &'a str,
    /// The `Content-Type` sent.
    pub content_type: &'a str,
    /// The exact body bytes (empty for GET).
    pub payload: &'a [u8],
    /// Sign `UNSIGNED-PAYLOAD` instead of the body.
    pub unsigned_payload: bool,
    /// `X-TC-Timestamp`: UNIX seconds.
    pub timestamp: i64,
}

/// A TC3 signature with its intermediate strings (for tests and debugging).
#[derive(Clone, PartialEq, Eq)]
pub struct Tc3Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// `<date>/cvm/tc3_request`.
    pub credential_scope: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// The derived signing key, hex.
    pub signing_key_hex: String,
    /// Lower-case hex signature.
    pub signature: String,
    /// The `Authorization` value.
    pub authorization: String,
}

/// No signing key (it signs as the secret does) and no canonical request.
impl std::fmt::Debug for Tc3Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tc3Signature")
            .field("credential_scope", &self.credential_scope)
            .field("authorization", &self.authorization)
            .finish_non_exhaustive()
    }
}

/// Signs with TC3-HMAC-SHA256: scope `<UTC date>/cvm/tc3_request`, key
/// derived from `"TC3" + SecretKey`.
pub fn sign_tc3(request: &Tc3Request<'_>, credentials: &Credentials) -> Tc3Signature {
    sign_tc3_for(request, credentials, SERVICE)
}

/// [`sign_tc3`] in another service's scope (`sts`).
pub fn sign_tc3_for(request: &Tc3Request<'_>, credentials: &Credentials, service: &str) -> Tc3Signature {
    let payload_hash =
        if request.unsigned_payload { sha256_hex(UNSIGNED_PAYLOAD.as_bytes()) } else { sha256_hex(request.payload) };
    let canonical_request = format!(
        "{}\n/\n{}\ncontent-type:{}\nhost:{}\n\ncontent-type;host\n{payload_hash}",
        request.method.to_ascii_uppercase(),
        request.query,
        request.content_type,
        request.host,
    );
    // `YYYY-MM-DD` of the timestamp, in UTC (chrono's format string parser costs more than the rest).
    let date = DateTime::from_timestamp(request.timestamp, 0)
        .map(|t| {
            use chrono::Datelike;
            format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day())
        })
        .unwrap_or_default();
    let credential_scope = format!("{date}/{service}/tc3_request");
    let string_to_sign =
        format!("{TC3}\n{}\n{credential_scope}\n{}", request.timestamp, sha256_hex(canonical_request.as_bytes()));
    // The HMAC key holds the secret key: sized once (no copy left behind by
    // a reallocation) and zeroized when dropped.
    let secret_key = credentials.secret_key.expose();
    let mut secret = zeroize::Zeroizing::new(String::with_capacity(3 + secret_key.len()));
    secret.push_str("TC3");
    secret.push_str(secret_key);
    let k_date = hmac_sha256(secret.as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    let signature = hex_lower(&hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    let authorization = format!(
        "{TC3} Credential={}/{credential_scope}, SignedHeaders=content-type;host, Signature={signature}",
        credentials.access_key
    );
    Tc3Signature {
        canonical_request,
        credential_scope,
        string_to_sign,
        signing_key_hex: hex_lower(&k_signing),
        signature,
        authorization,
    }
}

/// The hash of the legacy signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegacyMethod {
    /// `HmacSHA1`.
    HmacSha1,
    /// `HmacSHA256`.
    HmacSha256,
}

/// The legacy signature: `METHOD + host + path + "?" + k=v&…` over the
/// parameters sorted by name (values not encoded), HMAC with the SecretKey,
/// base64. Returns (string to sign, signature).
pub fn sign_legacy(
    method: &str,
    host: &str,
    path: &str,
    params: &[(String, String)],
    secret_key: &str,
    algorithm: LegacyMethod,
) -> (String, String) {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort();
    let joined = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let string_to_sign = format!("{}{host}{path}?{joined}", method.to_ascii_uppercase());
    let digest = match algorithm {
        LegacyMethod::HmacSha1 => {
            let mut mac = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key");
            mac.update(string_to_sign.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        LegacyMethod::HmacSha256 => {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key");
            mac.update(string_to_sign.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
    };
    (string_to_sign, BASE64.encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scope's date is chrono's `%Y-%m-%d` of the timestamp in UTC, for
    /// every 37th day from 1970 to 2200 (every day of the month and leap
    /// day comes round) and the seconds either side of its midnight.
    #[test]
    fn the_scope_date_is_the_utc_day_of_the_timestamp() {
        let credentials =
            Credentials { access_key: "AKID".into(), secret_key: keypair_binder_core::Secret::new("SK"), token: None };
        let days = (0..(230 * 366)).step_by(37);
        for timestamp in days.flat_map(|day: i64| [day * 86_400 - 1, day * 86_400, day * 86_400 + 43_210]) {
            let Some(time) = DateTime::from_timestamp(timestamp, 0) else { continue };
            let request = Tc3Request {
                method: "POST",
                host: "cvm.tencentcloudapi.com",
                query: "",
                content_type: "application/json",
                payload: b"{}",
                unsigned_payload: false,
                timestamp,
            };
            let scope = sign_tc3(&request, &credentials).credential_scope;
            assert_eq!(scope, format!("{}/cvm/tc3_request", time.format("%Y-%m-%d")), "{timestamp}");
        }
    }
}
