//! Shared HTTP plumbing: one rustls client, timeouts, a bounded body read,
//! the endpoint policy, and a tracing span per API call.

use std::net::IpAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use tracing::Instrument;
use url::Url;

use crate::error::Error;
use crate::report::{Failure, FailureKind};

/// Timeouts and limits of the HTTP client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request, response body included.
    pub request_timeout: Duration,
    /// Largest response body read; a larger one is an error.
    pub max_body_bytes: usize,
    /// The `User-Agent` sent.
    pub user_agent: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            max_body_bytes: 4 * 1024 * 1024,
            user_agent: concat!("keypair-binder/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// What every provider's builder takes about talking to its cloud, beside
/// credentials and endpoints.
#[derive(Clone, Debug, Default)]
pub struct ClientSettings {
    /// Plain `http://` allowed to a non-loopback endpoint.
    pub allow_http: bool,
    /// Timeouts and limits.
    pub http: HttpOptions,
    /// Calls in flight when a request does not say.
    pub concurrency: Option<usize>,
    /// Retry policy when a request does not say.
    pub retry: Option<crate::RetryPolicy>,
    /// Client-side limit on the calls of every run.
    pub rate_limit: Option<crate::kit::RateLimit>,
}

/// The [`ClientSettings`] setters, for a builder with a `client: ClientSettings` field.
#[macro_export]
macro_rules! client_setters {
    () => {
        /// Allows plain `http://` to a non-loopback endpoint (insecure; for proxies you trust).
        pub fn allow_http(mut self, allow: bool) -> Self {
            self.client.allow_http = allow;
            self
        }

        /// HTTP timeouts and limits.
        pub fn http_options(mut self, options: $crate::http::HttpOptions) -> Self {
            self.client.http = options;
            self
        }

        /// Calls in flight when a request does not say.
        pub fn concurrency(mut self, concurrency: usize) -> Self {
            self.client.concurrency = Some(concurrency);
            self
        }

        /// Retry policy when a request does not say.
        pub fn retry_policy(mut self, policy: $crate::RetryPolicy) -> Self {
            self.client.retry = Some(policy);
            self
        }

        /// A client-side limit on every API call (binds, polls, reads), across runs.
        pub fn rate_limit(mut self, rate: $crate::kit::RateLimit) -> Self {
            self.client.rate_limit = Some(rate);
            self
        }
    };
}

/// A response read in full, within the size limit.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A response with no headers, for tests and fuzzing of response readers.
    pub fn new(status: u16, body: impl Into<Bytes>) -> Self {
        Self { status, headers: HeaderMap::new(), body: body.into() }
    }

    /// A header's value as text, if present and valid.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `Retry-After` wait, when given in seconds.
    pub fn retry_after(&self) -> Option<Duration> {
        parse_retry_after(self.header("retry-after")?)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Parses a `Retry-After` header given in (possibly fractional) seconds.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

/// Why a call got no usable response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The request never left (connection refused, DNS, TLS): safe to resend.
    #[error("could not connect: {0}")]
    NotSent(String),
    /// The request may have reached the cloud, but no answer came back.
    #[error("connection failed after the request was sent: {0}")]
    MaybeSent(String),
    /// The request timed out after it was sent.
    #[error("timed out waiting for the response")]
    Timeout,
    /// The response body was larger than allowed.
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl TransportError {
    /// Whether the cloud may have acted on the request.
    pub fn maybe_applied(&self) -> bool {
        !matches!(self, Self::NotSent(_))
    }

    /// The failure to report for it.
    pub fn to_failure(&self) -> Failure {
        let kind = match self {
            Self::Timeout => FailureKind::Timeout,
            Self::BodyTooLarge { .. } => FailureKind::ProviderError,
            _ => FailureKind::Transport,
        };
        Failure::new(kind, self.to_string()).retryable(!matches!(self, Self::BodyTooLarge { .. }))
    }
}

/// What a call is, for its tracing span.
#[derive(Clone, Copy, Debug)]
pub struct CallInfo<'a> {
    /// Provider name.
    pub provider: &'static str,
    /// The API action.
    pub action: &'a str,
    /// Instances the call carries.
    pub instances: usize,
    /// The response header holding the request id, if the cloud sends one there.
    pub request_id_header: Option<&'static str>,
}

/// The HTTP client every provider shares.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
    options: HttpOptions,
}

impl HttpClient {
    /// Builds a client with rustls and the given limits.
    ///
    /// TLS trusts the bundled roots and the platform's store (which honours
    /// `SSL_CERT_FILE`); `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` are
    /// honoured, and loopback is never proxied.
    pub fn new(options: HttpOptions) -> Result<Self, reqwest::Error> {
        Self::with_roots(options, true)
    }

    fn with_roots(options: HttpOptions, tls_roots: bool) -> Result<Self, reqwest::Error> {
        let proxies = env_proxies(&|name| std::env::var(name).ok())?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(false)
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .user_agent(options.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // Reading the platform's store takes milliseconds: only a client
            // that may speak TLS (an https endpoint or proxy) loads it.
            .tls_built_in_root_certs(tls_roots || !proxies.is_empty());
        for proxy in proxies {
            builder = builder.proxy(proxy);
        }
        Ok(Self { client: builder.build()?, options })
    }

    /// Builds the client of one provider for the endpoints it will call; a
    /// failure is that provider's configuration error.
    pub fn for_provider(provider: &'static str, options: HttpOptions, endpoints: &[&Url]) -> Result<Self, Error> {
        let tls = endpoints.iter().any(|e| e.scheme() != "http");
        Self::with_roots(options, tls)
            .map_err(|e| Error::config(provider, format!("cannot build the HTTP client: {e}")))
    }

    /// The underlying client, to build requests with.
    pub fn inner(&self) -> &reqwest::Client {
        &self.client
    }

    /// The limits in force.
    pub fn options(&self) -> &HttpOptions {
        &self.options
    }

    /// Sends a request and reads the body within the size limit.
    pub async fn send(&self, request: reqwest::Request, info: CallInfo<'_>) -> Result<HttpResponse, TransportError> {
        let span = tracing::debug_span!(
            "api_call",
            provider = info.provider,
            action = info.action,
            instances = info.instances,
            status = tracing::field::Empty,
            request_id = tracing::field::Empty,
        );
        async {
            let result = self.send_inner(request).await;
            let span = tracing::Span::current();
            match &result {
                Ok(response) => {
                    span.record("status", response.status);
                    if let Some(id) = info.request_id_header.and_then(|h| response.header(h)) {
                        span.record("request_id", id);
                    }
                    tracing::debug!(bytes = response.body.len(), "response");
                }
                Err(error) => tracing::debug!(%error, "no response"),
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn send_inner(&self, request: reqwest::Request) -> Result<HttpResponse, TransportError> {
        let mut response = self.client.execute(request).await.map_err(classify)?;
        let limit = self.options.max_body_bytes;
        let announced = response.content_length();
        if announced.is_some_and(|len| len > limit as u64) {
            return Err(TransportError::BodyTooLarge { limit });
        }
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        // Sized once when the length is announced (never past the limit).
        let mut body = BytesMut::with_capacity(announced.map_or(0, |len| len as usize));
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > limit {
                return Err(TransportError::BodyTooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse { status, headers, body: body.freeze() })
    }
}

/// Proxies from `HTTPS_PROXY` and `HTTP_PROXY` (upper or lower case), each
/// skipping `NO_PROXY` and loopback.
fn env_proxies(var: &dyn Fn(&str) -> Option<String>) -> Result<Vec<reqwest::Proxy>, reqwest::Error> {
    let var = |name: &str| var(name).or_else(|| var(&name.to_ascii_lowercase())).filter(|v| !v.trim().is_empty());
    let bypass = match var("NO_PROXY") {
        Some(list) => format!("{list},localhost,127.0.0.0/8,::1"),
        None => "localhost,127.0.0.0/8,::1".to_string(),
    };
    let mut proxies = Vec::new();
    if let Some(url) = var("HTTPS_PROXY") {
        proxies.push(reqwest::Proxy::https(url)?.no_proxy(reqwest::NoProxy::from_string(&bypass)));
    }
    if let Some(url) = var("HTTP_PROXY") {
        proxies.push(reqwest::Proxy::http(url)?.no_proxy(reqwest::NoProxy::from_string(&bypass)));
    }
    Ok(proxies)
}

fn classify(error: reqwest::Error) -> TransportError {
    // Messages come from reqwest/hyper and hold no request data beyond the URL.
    let (connect, timeout, builder) = (error.is_connect(), error.is_timeout(), error.is_builder());
    let message = error.without_url().to_string();
    if connect {
        TransportError::NotSent(message)
    } else if timeout {
        TransportError::Timeout
    } else if builder {
        TransportError::NotSent(message)
    } else {
        TransportError::MaybeSent(message)
    }
}

/// Checks a region id before it goes into a host name or a header: letters,
/// digits and `-`, nothing else.
pub fn check_region(provider: &'static str, region: &str) -> Result<(), Error> {
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(Error::config(provider, format!("malformed region {region:?}")));
    }
    Ok(())
}

/// Checks an endpoint against the transport policy: HTTPS always; plain HTTP
/// only for an explicitly given endpoint on loopback, or with an explicit
/// opt-in (`allow_http`).
pub fn check_endpoint(provider: &'static str, endpoint: &Url, allow_http: bool) -> Result<(), Error> {
    match endpoint.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(endpoint) => {}
        "http" => {
            return Err(Error::config(
                provider,
                format!(
                    "refusing plain http to non-loopback endpoint {endpoint}; use https, or opt in to insecure http explicitly"
                ),
            ));
        }
        other => return Err(Error::config(provider, format!("unsupported endpoint scheme `{other}` in {endpoint}"))),
    }
    if endpoint.host_str().is_none_or(str::is_empty) {
        return Err(Error::config(provider, format!("endpoint {endpoint} has no host")));
    }
    if !endpoint.username().is_empty() || endpoint.password().is_some() {
        return Err(Error::config(provider, "endpoint must not carry credentials in its URL"));
    }
    Ok(())
}

/// Whether a URL's host is a loopback address or `localhost`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The `Host` header value of a URL: host, plus the port when not the default.
pub fn host_header(url: &Url) -> String {
    host_and_port(url).to_owned()
}

/// [`host_header`] borrowed from the URL: the `url` crate already writes
/// the host (IPv6 in brackets) and a non-default port side by side.
pub fn host_and_port(url: &Url) -> &str {
    &url[url::Position::BeforeHost..url::Position::AfterPort]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_policy() {
        let ok = |u: &str, allow| check_endpoint("t", &Url::parse(u).unwrap(), allow).is_ok();
        assert!(ok("https://kms.cn-north-4.myhuaweicloud.com", false));
        assert!(ok("http://127.0.0.1:8080", false));
        assert!(ok("http://[::1]:8080", false));
        assert!(ok("http://localhost:1", false));
        assert!(!ok("http://10.0.0.1", false));
        assert!(!ok("http://example.com", false));
        assert!(ok("http://example.com", true));
        assert!(!ok("ftp://example.com", true));
        assert!(!ok("https://user:pw@example.com", false));
    }

    #[test]
    fn host_header_keeps_non_default_ports() {
        assert_eq!(host_header(&Url::parse("https://a.b").unwrap()), "a.b");
        assert_eq!(host_header(&Url::parse("https://a.b:443").unwrap()), "a.b");
        assert_eq!(host_header(&Url::parse("http://127.0.0.1:8080/x").unwrap()), "127.0.0.1:8080");
        assert_eq!(host_header(&Url::parse("http://[::1]:8080/x?q").unwrap()), "[::1]:8080");
        assert_eq!(host_header(&Url::parse("https://[::1]:443").unwrap()), "[::1]");
        assert_eq!(host_header(&Url::parse("https://user:pw@A.b:8443/").unwrap()), "a.b:8443");
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("NaN"), None);
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("1e300"), Some(Duration::from_secs(86_400)));
    }
}
