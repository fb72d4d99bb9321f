//! Building blocks the clouds' request signatures share: strict percent
//! encoding, SHA-256, HMAC-SHA256 and the compact UTC timestamp.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// An access key: its id, its secret and, for temporary credentials, the
/// token that goes with them (Huawei `X-Security-Token`, Volcengine STS).
#[derive(Clone)]
pub struct AccessKey {
    /// Access key id; not secret: it appears in the `Authorization` header.
    pub access_key: String,
    /// Secret access key.
    pub secret_key: Secret,
    /// Token of temporary credentials.
    pub token: Option<Secret>,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key", &self.access_key)
            .field("secret_key", &self.secret_key)
            .field("token", &self.token)
            .finish()
    }
}

/// A request about to be signed.
#[derive(Clone, Copy)]
pub struct SignableRequest<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// `host[:port]` as in the URL.
    pub host: &'a str,
    /// The path as sent.
    pub path: &'a str,
    /// Query parameters, decoded.
    pub query: &'a [(String, String)],
    /// Headers already on the request, with their own casing.
    pub headers: &'a [(String, String)],
    /// The exact body bytes (empty for none).
    pub body: &'a [u8],
}

/// Header names and the body's length only: a body may hold a VM password,
/// a header a session token.
impl fmt::Debug for SignableRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignableRequest")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("headers", &header_names(self.headers))
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A signature, the headers to add, and the intermediate strings (for tests and debugging).
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// The canonical request.
    pub canonical_request: String,
    /// The string to sign.
    pub string_to_sign: String,
    /// Lower-case hex signature.
    pub signature: String,
    /// `;`-joined signed header names.
    pub signed_headers: String,
    /// The `Authorization` header value.
    pub authorization: String,
    /// Headers to add to the request, `Authorization` last.
    pub headers: Vec<(String, String)>,
}

/// Header names only: the canonical request, the string to sign and the
/// added headers may hold a session token.
impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signature")
            .field("signed_headers", &self.signed_headers)
            .field("authorization", &self.authorization)
            .field("added_headers", &header_names(&self.headers))
            .finish_non_exhaustive()
    }
}

/// The names of headers whose values may be secret, for a `Debug` that shows no value.
pub fn header_names(headers: &[(String, String)]) -> Vec<&str> {
    headers.iter().map(|(name, _)| name.as_str()).collect()
}

/// The `Debug` of a provider's canonical request: method, path and header
/// names only, since a signed `X-Security-Token` is a secret.
pub fn fmt_canonical_request(
    f: &mut fmt::Formatter<'_>,
    method: &str,
    path: &str,
    headers: &[(String, String)],
) -> fmt::Result {
    f.debug_struct("CanonicalRequest")
        .field("method", &method)
        .field("path", &path)
        .field("headers", &header_names(headers))
        .finish_non_exhaustive()
}

/// Everything but `A-Z a-z 0-9 - _ . ~` is escaped.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// RFC 3986 unreserved, as comparisons without branches: what the table
/// is built from, and what the block check folds.
const fn is_unreserved(b: u8) -> bool {
    // `| 0x20` folds `A-Z` onto `a-z` and nothing else onto it.
    ((b | 0x20).wrapping_sub(b'a') < 26)
        | (b.wrapping_sub(b'0') < 10)
        | (b == b'-')
        | (b == b'.')
        | (b == b'_')
        | (b == b'~')
}

/// One lookup per byte instead of six tests, for the byte loop.
const UNRESERVED_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_unreserved(b as u8);
        b += 1;
    }
    table
};

fn unreserved(b: u8) -> bool {
    UNRESERVED_BYTES[usize::from(b)]
}

/// How many leading bytes are unreserved, counted in whole 16-byte blocks:
/// [`is_unreserved`] folded without an early exit, so the compiler checks a
/// block at a time. The bytes after it are left to the byte loop.
fn unreserved_blocks(bytes: &[u8]) -> usize {
    let mut prefix = 0;
    for block in bytes.chunks_exact(16) {
        if !block.iter().fold(true, |all, &b| all & is_unreserved(b)) {
            break;
        }
        prefix += 16;
    }
    prefix
}

/// [`percent_encode`] into a buffer, allocating nothing of its own: runs of
/// unreserved characters are copied whole, each other byte becomes `%XX`.
/// The hot path of every canonical query (a JSON array of 100 ids escapes
/// a few hundred bytes), so it is a plain byte loop.
pub fn percent_encode_into(out: &mut String, value: &str) {
    encode_into(out, value, false);
}

fn encode_into(out: &mut String, value: &str, space_as_plus: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = value.as_bytes();
    // Most values (ids, names) are unreserved throughout: whole blocks are
    // checked at once, and only the bytes after them one at a time.
    let checked = unreserved_blocks(bytes);
    if bytes[checked..].iter().all(|&b| unreserved(b)) {
        out.push_str(value);
        return;
    }
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate().skip(checked) {
        if unreserved(b) {
            continue;
        }
        // A non-empty `run..i` is unreserved ASCII, so both ends are character boundaries.
        if run < i {
            out.push_str(&value[run..i]);
        }
        if space_as_plus && b == b' ' {
            out.push('+');
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        run = i + 1;
    }
    if run < bytes.len() {
        out.push_str(&value[run..]);
    }
}

/// Writes `pairs` as a query, in the order given, encoded as the official
/// Python SDKs send a query (`urllib`'s `quote_plus`: RFC 3986 unreserved
/// characters kept, space as `+`, every other byte `%XX`). Sign such a
/// query with [`canonical_of_form_encoded`].
pub fn push_sdk_query<'p>(out: &mut String, pairs: impl IntoIterator<Item = (&'p str, &'p str)>) {
    for (i, (key, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode_into(out, key, true);
        out.push('=');
        encode_into(out, value, true);
    }
}

/// Whether a form-encoded query holds a raw `*` or a `%7E` (`~`), which
/// the canonical encoding writes `%2A` and `~`. Most queries hold no `%` at
/// all (one scan); the rest are searched with the vectorised finders, not
/// stopped at every escape (an Alibaba query has hundreds).
fn has_star_or_tilde(bytes: &[u8]) -> bool {
    match memchr::memchr2(b'*', b'%', bytes) {
        None => false,
        Some(at) if bytes[at] == b'*' => true,
        Some(at) => {
            let rest = &bytes[at..];
            memchr::memchr(b'*', rest).is_some() || memchr::memmem::find(rest, b"%7E").is_some()
        }
    }
}

/// Percent-encodes UTF-8 text keeping only RFC 3986 unreserved characters,
/// with upper-case hex: space is `%20`, never `+`.
pub fn percent_encode(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// The canonical query (pairs sorted by encoded key then encoded value,
/// each encoded by [`percent_encode`]) of decoded pairs: the rule Volcengine
/// and Alibaba's ACS3 share.
pub fn canonical_query_of(pairs: &[(String, String)]) -> String {
    // [`canonical_order`], each name encoded once rather than at every comparison.
    let mut sorted: Vec<(String, &str)> = pairs.iter().map(|(k, v)| (percent_encode(k), v.as_str())).collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| percent_encode(a.1).cmp(&percent_encode(b.1))));
    let mut out = String::with_capacity(sorted.iter().map(|(k, v)| k.len() + 3 * v.len() + 2).sum());
    for (i, (key, value)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        percent_encode_into(&mut out, value);
    }
    out
}

/// The order of a canonical query: by encoded name, then by encoded value
/// (encoded only when two names tie).
pub fn canonical_order(a: (&str, &str), b: (&str, &str)) -> std::cmp::Ordering {
    percent_encode(a.0).cmp(&percent_encode(b.0)).then_with(|| percent_encode(a.1).cmp(&percent_encode(b.1)))
}

/// The canonical form ([`canonical_query_of`]) of a form-encoded query, as
/// [`push_sdk_query`] writes it (or `url`'s `query_pairs_mut`). Written in
/// canonical order, such a query differs from its canonical form only where
/// it holds a space (`+`, canonical `%20`), a raw `*` or `%7E`: spaces alone
/// (Alibaba's `InstanceIds` list has one after each comma) are rewritten in
/// place; the other two are decoded and encoded again.
pub fn canonical_of_form_encoded(query: &str) -> Cow<'_, str> {
    let bytes = query.as_bytes();
    if !has_star_or_tilde(bytes) {
        // A literal `+` is `%2B` here, so every `+` is a space.
        return match memchr::memchr(b'+', bytes) {
            None => Cow::Borrowed(query),
            Some(_) => Cow::Owned(query.replace('+', "%20")),
        };
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(bytes).into_owned().collect();
    Cow::Owned(canonical_query_of(&pairs))
}

/// Where a signature's canonical request or string to sign goes: a
/// `String` to show it (vectors, tests), or straight into SHA-256 or the
/// HMAC, so the binder's signers write each byte once and keep no copy.
pub trait CanonicalSink {
    /// Appends `text`.
    fn put(&mut self, text: &str);
}

impl CanonicalSink for String {
    #[inline]
    fn put(&mut self, text: &str) {
        self.push_str(text);
    }
}

impl CanonicalSink for Sha256 {
    #[inline]
    fn put(&mut self, text: &str) {
        self.update(text.as_bytes());
    }
}

impl CanonicalSink for Hmac<Sha256> {
    #[inline]
    fn put(&mut self, text: &str) {
        self.update(text.as_bytes());
    }
}

/// The headers a signature covers, in canonical form: names lower-case
/// (borrowed when they already are, as a `HeaderMap`'s), values trimmed,
/// sorted by name, the first of each name kept. No `Debug`: a value may be
/// a session token.
pub struct SignedHeaders<'a> {
    headers: Vec<(Cow<'a, str>, &'a str)>,
    names: String,
}

impl<'a> SignedHeaders<'a> {
    /// The canonical form of these headers.
    pub fn new(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        fn lower(name: &str) -> Cow<'_, str> {
            if name.bytes().any(|b| b.is_ascii_uppercase()) { name.to_ascii_lowercase().into() } else { name.into() }
        }
        // Sized once from the upper bound: a filtered iterator's lower bound is 0.
        let (low, high) = headers.size_hint();
        let mut canonical: Vec<(Cow<'a, str>, &'a str)> = Vec::with_capacity(high.unwrap_or(low));
        canonical.extend(headers.map(|(n, v)| (lower(n), v.trim())));
        // Stable: of two equal names, the first given is kept.
        canonical.sort_by(|a, b| a.0.cmp(&b.0));
        canonical.dedup_by(|a, b| a.0 == b.0);
        let mut names = String::with_capacity(canonical.iter().map(|(n, _)| n.len() + 1).sum());
        for (i, (name, _)) in canonical.iter().enumerate() {
            if i > 0 {
                names.push(';');
            }
            names.push_str(name);
        }
        Self { headers: canonical, names }
    }

    /// The `;`-joined names, the `SignedHeaders` of an `Authorization`.
    pub fn names(&self) -> &str {
        &self.names
    }

    /// The value of a header (name in lower case).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    /// The canonical headers block: `name:value` lines, a blank line, the names.
    pub fn write(&self, out: &mut impl CanonicalSink) {
        for (name, value) in &self.headers {
            out.put(name);
            out.put(":");
            out.put(value);
            out.put("\n");
        }
        out.put("\n");
        out.put(&self.names);
    }
}

/// The method in upper case, as the Huawei and Alibaba signers write it
/// (borrowed unless it has a lower-case letter).
pub fn upper_case_method(method: &str) -> Cow<'_, str> {
    if method.bytes().any(|b| b.is_ascii_lowercase()) { method.to_ascii_uppercase().into() } else { method.into() }
}

/// The canonical request Volcengine's and Alibaba's ACS3 signatures share:
/// method, path (`/` when empty), canonical query, the headers block and
/// the payload hash, a line each. Each writes `method` as it signs it.
pub fn write_canonical_request(
    out: &mut impl CanonicalSink,
    method: &str,
    path: &str,
    canonical_query: &str,
    headers: &SignedHeaders<'_>,
    payload_hash: &str,
) {
    out.put(method);
    out.put("\n");
    out.put(if path.is_empty() { "/" } else { path });
    out.put("\n");
    out.put(canonical_query);
    out.put("\n");
    headers.write(out);
    out.put("\n");
    out.put(payload_hash);
}

/// Lower-case hex of a SHA-256 digest into a stack buffer: the hashes a
/// signature writes into its string to sign, with no allocation.
#[inline]
pub fn hex_digest(digest: &[u8; 32]) -> HexDigest {
    let mut out = [0u8; 64];
    // 32 bytes into 64 hex digits: cannot fail.
    let _ = hex::encode_to_slice(digest, &mut out);
    HexDigest(out)
}

/// 64 lower-case hex digits.
#[derive(Clone, Copy)]
pub struct HexDigest([u8; 64]);

impl HexDigest {
    /// The digits as text.
    #[inline]
    pub fn as_str(&self) -> &str {
        // Hex digits are ASCII.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// Lower-case hex of SHA-256, the payload hash both signatures use.
pub fn sha256_hex(data: &[u8]) -> String {
    hex_lower(&Sha256::digest(data))
}

/// Lower-case hex of a digest or MAC: the form every signature writes them
/// in (through `hex`'s slice encoder, not a `char` at a time).
pub fn hex_lower(bytes: &[u8]) -> String {
    let mut buf = vec![0u8; bytes.len() * 2];
    // The buffer is exactly twice the input: encoding cannot fail.
    let _ = hex::encode_to_slice(bytes, &mut buf);
    String::from_utf8(buf).unwrap_or_default()
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ`, the form of `X-Sdk-Date` and `X-Date`.
pub fn compact_utc(time: DateTime<Utc>) -> String {
    use chrono::{Datelike, Timelike};
    // Digit by digit: chrono's format string parser, or even `write!`, costs
    // more than the rest of the header.
    fn digits(out: &mut String, value: u32, width: u32) {
        for place in (0..width).rev() {
            out.push(char::from(b'0' + (value / 10u32.pow(place) % 10) as u8));
        }
    }
    let mut out = String::with_capacity(16);
    digits(&mut out, u32::try_from(time.year()).unwrap_or(0), 4);
    digits(&mut out, time.month(), 2);
    digits(&mut out, time.day(), 2);
    out.push('T');
    digits(&mut out, time.hour(), 2);
    digits(&mut out, time.minute(), 2);
    digits(&mut out, time.second(), 2);
    out.push('Z');
    out
}

/// Reads a `YYYYMMDDTHHMMSSZ` timestamp.
pub fn parse_compact_utc(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ").ok().map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(percent_encode("a b+c/~*"), "a%20b%2Bc%2F~%2A");
        assert_eq!(hex_lower(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex_lower(&[]), "");
        let t = parse_compact_utc("20240102T030405Z").unwrap();
        assert_eq!(compact_utc(t), "20240102T030405Z");
        assert!(parse_compact_utc("2024-01-02").is_none());
    }

    #[test]
    fn the_block_check_stops_at_the_block_of_any_other_byte() {
        let run = b"i-3tiegs1y963vj0ab0001-AZ_az.09~x".to_vec();
        assert_eq!(unreserved_blocks(&run), 32);
        for at in 0..run.len() {
            for byte in 0..=255u8 {
                let mut text = run.clone();
                text[at] = byte;
                let expected = if unreserved(byte) || at >= 32 { 32 } else { at / 16 * 16 };
                assert_eq!(unreserved_blocks(&text), expected, "byte {byte:#04x} at {at}");
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn compact_utc_is_chronos_format(secs in 0i64..253_402_300_799) {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            proptest::prop_assert_eq!(compact_utc(t), t.format("%Y%m%dT%H%M%SZ").to_string());
        }

        /// The query is written as Python's `urlencode` writes it
        /// (`quote_plus`), decodes to the pairs, and its canonical form is
        /// the pairs' canonical query (as is that of `url`'s form encoding).
        #[test]
        fn the_sdk_query_is_quote_plus_and_signs_canonically(
            pairs in proptest::collection::vec(("[a-zA-Z0-9 *~+%&=._-]{1,6}", "\\PC{0,8}"), 0..6),
        ) {
            let mut pairs: Vec<(String, String)> = pairs;
            pairs.sort_by(|a, b| canonical_order((&a.0, &a.1), (&b.0, &b.1)));
            let mut sent = String::new();
            push_sdk_query(&mut sent, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            let quote_plus = |text: &str| percent_encode(text).replace("%20", "+");
            let expected: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", quote_plus(k), quote_plus(v))).collect();
            proptest::prop_assert_eq!(&sent, &expected.join("&"));
            // `url`'s form encoder writes the same but for `*` (raw) and `~` (`%7E`).
            let by_url: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(&pairs).finish();
            proptest::prop_assert_eq!(canonical_of_form_encoded(&by_url), canonical_of_form_encoded(&sent));
            let decoded: Vec<(String, String)> = url::form_urlencoded::parse(sent.as_bytes()).into_owned().collect();
            proptest::prop_assert_eq!(&decoded, &pairs);
            proptest::prop_assert_eq!(canonical_of_form_encoded(&sent).into_owned(), canonical_query_of(&pairs));
        }

        /// The block check agrees with the table on every byte, wherever it sits.
        #[test]
        fn the_block_check_agrees_with_the_table(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let first_other = bytes.iter().position(|&b| !unreserved(b)).unwrap_or(bytes.len());
            proptest::prop_assert_eq!(unreserved_blocks(&bytes), first_other / 16 * 16);
        }

        /// The byte loop encodes exactly as the `percent-encoding` crate does.
        #[test]
        fn the_fast_encoder_matches_the_crate(text in "\\PC*|[ -~]{0,64}|[a-zA-Z0-9._~-]{0,40}[ -~]{0,4}[a-z0-9]{0,20}") {
            let mut fast = String::from("x=");
            percent_encode_into(&mut fast, &text);
            proptest::prop_assert_eq!(fast, format!("x={}", percent_encode(&text)));
        }
    }
}
