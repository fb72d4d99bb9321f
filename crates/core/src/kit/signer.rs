//! A provider's request signature behind one interface: clients sign with
//! it, and a server (the emulator) checks a received request by signing it
//! again the same way.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::header::{AUTHORIZATION, HeaderMap, HeaderName};
use http::{Method, Uri};

use crate::kit::outgoing::OutgoingRequest;
use crate::signing::AccessKey;

/// Signs requests: a pure function of the request, the key, the settings
/// the signer holds (a region, a project) and the time.
pub trait Signer: Send + Sync {
    /// Adds the headers that authenticate `request` with `key` at `time`.
    fn sign(&self, request: &mut OutgoingRequest, key: &AccessKey, time: DateTime<Utc>);

    /// Headers (lower case) the signer adds itself, from its credentials or
    /// the time; they are left out when a received request is signed again.
    fn added_headers(&self) -> &'static [&'static str];
}

/// Whether a received request carries the `Authorization` that `signer`
/// makes with `key` at `time`: the request is rebuilt from the headers its
/// `Authorization` names as signed, and signed again.
pub fn signed_by(
    signer: &dyn Signer,
    key: &AccessKey,
    method: Method,
    uri: Uri,
    headers: &HeaderMap,
    body: Bytes,
    time: DateTime<Utc>,
) -> bool {
    let Some(received) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some(names) = received.split("SignedHeaders=").nth(1).and_then(|s| s.split([',', ' ']).next()) else {
        return false;
    };
    let mut kept = HeaderMap::new();
    for name in names.split(';') {
        if name == "host" || signer.added_headers().contains(&name) {
            continue;
        }
        if let (Ok(n), Some(value)) = (HeaderName::try_from(name), headers.get(name)) {
            kept.insert(n, value.clone());
        }
    }
    let mut rebuilt = OutgoingRequest::new(method, uri, "verify").with_headers(kept).with_body(body);
    signer.sign(&mut rebuilt, key, time);
    rebuilt.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(received)
}
