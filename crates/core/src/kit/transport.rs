//! Where the engine's requests go: the shared HTTP client, or any other
//! [`Transport`] (an in-process cloud in tests).

use std::fmt;

use async_trait::async_trait;

use crate::http::{CallInfo, HttpClient, HttpResponse, TransportError};
use crate::kit::outgoing::OutgoingRequest;

/// Sends one request and reads its answer, within the transport's limits.
#[async_trait]
pub trait Transport: fmt::Debug + Send + Sync {
    /// Sends `request`; the error says whether it may have reached the cloud.
    async fn send(&self, request: OutgoingRequest, provider: &'static str) -> Result<HttpResponse, TransportError>;
}

#[async_trait]
impl Transport for HttpClient {
    async fn send(&self, request: OutgoingRequest, provider: &'static str) -> Result<HttpResponse, TransportError> {
        let info = CallInfo {
            provider,
            action: request.action,
            instances: request.instances,
            request_id_header: request.request_id_header,
            timeout: request.timeout,
        };
        let mut built = http::Request::new(request.body);
        *built.method_mut() = request.method;
        *built.uri_mut() = request.uri;
        *built.headers_mut() = request.headers;
        HttpClient::send(self, built, info).await
    }
}
