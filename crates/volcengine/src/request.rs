//! A signed ECS call, built without any I/O: the URL and the headers to send.

use chrono::{DateTime, Utc};
use keypair_binder_core::http::host_header;
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

/// A request ready to send.
#[derive(Clone, Debug)]
pub struct PreparedRequest {
    /// Endpoint with the canonical query string.
    pub url: Url,
    /// Headers to send, `Host` included (HTTP stacks set it from the URL).
    pub headers: Vec<(String, String)>,
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
    let host = host_header(endpoint);
    let mut headers = vec![("Content-Type".to_string(), CONTENT_TYPE.to_string())];
    if let Some(inv) = invocation {
        headers.push(("X-Sdk-Invocation-Id".to_string(), inv.id.to_string()));
        headers.push(("X-Sdk-Request".to_string(), format!("attempt={}; max={}", inv.attempt, inv.max_attempts)));
    }
    let signature = signer::sign(
        &SignableRequest { method: "GET", host: &host, path: "/", query, headers: &headers, body: b"" },
        credentials,
        region,
        time,
    );
    headers.extend(signature.headers);
    let mut url = endpoint.clone();
    url.set_path("/");
    url.set_query(Some(&signer::canonical_query(query)));
    PreparedRequest { url, headers }
}
