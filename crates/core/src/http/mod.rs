//! Shared HTTP plumbing: one `reqwest` client (rustls, or the application's
//! own), timeouts, a bounded body read, the endpoint policy, and a tracing
//! span per API call.

mod client;
mod endpoint;
mod settings;

use std::time::Duration;

use ::http::header::HeaderMap;
use bytes::Bytes;

use crate::report::{Failure, FailureKind};

pub use client::HttpClient;
pub use endpoint::{check_endpoint, check_region, host_and_port, host_header, is_loopback};
pub use settings::{ClientSettings, HttpOptions};

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
#[non_exhaustive]
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
    /// Time for this call, when shorter than the client's.
    pub timeout: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
