//! The engine's send path as lent to setup calls and credential sources.

use async_trait::async_trait;

use crate::http::HttpResponse;
use crate::kit::outgoing::OutgoingRequest;
use crate::report::Failure;

/// Calls a provider may make for its own setup (a key id, a project id), and
/// a credential source for its credentials, through the engine's send path:
/// counted, paced, bounded and stopped with the run. A provider's setup
/// calls are authorised by the engine like every other call; a credential
/// source's go as they are.
#[async_trait]
pub trait Net: Send + Sync {
    /// Sends one request and reads its answer (any status); the failure says
    /// why there is none (not sent, no answer, credentials refused, run stopped).
    async fn send(&self, request: OutgoingRequest) -> Result<HttpResponse, Failure>;
}
