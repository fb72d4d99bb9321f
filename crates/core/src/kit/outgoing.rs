//! A request a provider built and the engine will authorise and send.

use std::fmt;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Uri};
use url::Url;

use crate::report::{Failure, FailureKind};
use crate::signing::push_sdk_query;

/// One HTTP request, built without I/O by a provider's pure parts.
///
/// The body may carry a VM password or private key, and headers may carry a
/// token, so `Debug` shows the method, URI, action and body length only.
#[derive(Clone)]
#[non_exhaustive]
pub struct OutgoingRequest {
    /// HTTP method.
    pub method: Method,
    /// Full URI, query included, exactly as signed and sent.
    pub uri: Uri,
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
    /// Time for this call, when shorter than the client's (metadata services).
    pub timeout: Option<std::time::Duration>,
}

impl OutgoingRequest {
    /// A request with no headers and no body.
    pub fn new(method: Method, uri: Uri, action: &'static str) -> Self {
        Self {
            method,
            uri,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            action,
            instances: 0,
            request_id_header: None,
            timeout: None,
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

    /// Bounds this call's time below the client's.
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
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
            .field("uri", &self.uri)
            .field("action", &self.action)
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The URI of a call to `endpoint`: its origin (`https://host[:port]`, the
/// port only when not the scheme's default), `path`, and `?` and `query`
/// when there is one, written into one buffer that becomes the request's
/// URI without another copy.
///
/// Path and query must be percent-encoded already; text the URI grammar
/// refuses is an [`FailureKind::InvalidRequest`], never sent.
pub fn endpoint_uri(endpoint: &Url, path: &str, query: &str) -> Result<Uri, Failure> {
    uri_written(endpoint, path, path.len() + 1 + query.len(), |out| out.push_str(query), query.is_empty())
}

/// [`endpoint_uri`] with `pairs` as the query, each written as the official
/// Python SDKs encode it ([`push_sdk_query`]) straight into the URI.
pub fn sdk_query_uri<'p, I>(endpoint: &Url, path: &str, pairs: I) -> Result<Uri, Failure>
where
    I: IntoIterator<Item = (&'p str, &'p str)>,
    I::IntoIter: Clone,
{
    let pairs = pairs.into_iter();
    let none = pairs.clone().next().is_none();
    // Exact when nothing needs escaping (every real call).
    let capacity = path.len() + 1 + pairs.clone().map(|(key, value)| key.len() + value.len() + 2).sum::<usize>();
    uri_written(endpoint, path, capacity, |out| push_sdk_query(out, pairs), none)
}

/// The one buffer both write: origin, path, then `?` and the query.
fn uri_written(
    endpoint: &Url,
    path: &str,
    capacity: usize,
    write_query: impl FnOnce(&mut String),
    no_query: bool,
) -> Result<Uri, Failure> {
    let origin = &endpoint[..url::Position::BeforePath];
    let mut text = String::with_capacity(origin.len() + capacity);
    text.push_str(origin);
    text.push_str(path);
    if !no_query {
        text.push('?');
        write_query(&mut text);
    }
    Uri::from_maybe_shared(Bytes::from(text))
        .map_err(|e| Failure::new(FailureKind::InvalidRequest, format!("the request URI is malformed: {e}")))
}

/// The `Host` a request goes to: the URI's host, and its port when given
/// (the form [`endpoint_uri`] writes: none when it is the scheme's default).
pub fn uri_host(uri: &Uri) -> &str {
    uri.authority().map_or("", |a| a.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(endpoint: &str, path: &str, query: &str) -> Result<Uri, Failure> {
        endpoint_uri(&Url::parse(endpoint).unwrap(), path, query)
    }

    #[test]
    fn the_origin_drops_default_ports_paths_and_queries_of_the_endpoint() {
        let u = uri("https://ecs.example.com:443/base?x=1", "/", "Action=A&Ids.1=i-1").unwrap();
        assert_eq!(u.to_string(), "https://ecs.example.com/?Action=A&Ids.1=i-1");
        assert_eq!(uri_host(&u), "ecs.example.com");
        assert_eq!((u.path(), u.query()), ("/", Some("Action=A&Ids.1=i-1")));
        let u = uri("http://[::1]:8080", "/v3/p/keypairs/associate", "").unwrap();
        assert_eq!(uri_host(&u), "[::1]:8080");
        assert_eq!((u.path(), u.query()), ("/v3/p/keypairs/associate", None));
        let endpoint = Url::parse("https://ecs.example.com").unwrap();
        let u = sdk_query_uri(&endpoint, "/", [("Action", "A"), ("Name", "a b*")]).unwrap();
        assert_eq!(u.to_string(), "https://ecs.example.com/?Action=A&Name=a+b%2A");
        assert_eq!(sdk_query_uri(&endpoint, "/", []).unwrap().to_string(), "https://ecs.example.com/");
    }

    #[test]
    fn text_the_uri_grammar_refuses_is_an_invalid_request() {
        let failure = uri("https://a.example", "/", "k=a b").unwrap_err();
        assert_eq!(failure.kind, FailureKind::InvalidRequest);
        assert!(!failure.retryable);
    }
}
