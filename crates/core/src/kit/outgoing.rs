//! A request a provider built and the engine will authorise and send.

use std::fmt;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderMap;
use url::Url;

/// One HTTP request, built without I/O by a provider's pure parts.
///
/// The body may carry a VM password or private key, and headers may carry a
/// token, so `Debug` shows the method, URL, action and body length only.
#[derive(Clone)]
#[non_exhaustive]
pub struct OutgoingRequest {
    /// HTTP method.
    pub method: Method,
    /// Full URL, query included, exactly as signed.
    pub url: Url,
    /// Headers to send; the provider's `authorize` adds its own.
    pub headers: HeaderMap,
    /// Body bytes (empty for none).
    pub body: Bytes,
    /// The API's name, for logs and counters (`AttachKeyPair`, `ListKeypairTask`).
    pub action: &'static str,
    /// Instances the request concerns, for logs.
    pub instances: usize,
    /// Response header holding the cloud's request id, if it sends one there.
    pub request_id_header: Option<&'static str>,
}

impl OutgoingRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: Url, action: &'static str) -> Self {
        Self {
            method,
            url,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            action,
            instances: 0,
            request_id_header: None,
        }
    }

    /// Sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets the headers.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.headers = headers;
        self
    }

    /// Sets how many instances the request concerns.
    pub fn with_instances(mut self, instances: usize) -> Self {
        self.instances = instances;
        self
    }

    /// Names the response header that carries the request id.
    pub fn with_request_id_header(mut self, header: &'static str) -> Self {
        self.request_id_header = Some(header);
        self
    }
}

impl fmt::Debug for OutgoingRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutgoingRequest")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("action", &self.action)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}
