//! One KPS call, built without I/O: method, path, query, body and the
//! headers the official SDK sends. The binder signs and sends exactly this.

use std::fmt;

use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use http::{Method, Uri};
use keypair_binder_core::http::host_header;
use keypair_binder_core::kit::{OutgoingRequest, endpoint_uri};
use keypair_binder_core::report::Failure;
use url::Url;

use crate::signer::{SignableRequest, canonical_query};
use crate::wire::{self, AssociateBody, BatchAssociateBody, DisassociateBody};

/// A KPS call. The body may hold a VM password or private key, so `Debug`
/// shows its length only.
#[derive(Clone)]
pub struct KpsRequest {
    /// HTTP method.
    pub method: Method,
    /// Path (never with a trailing `/`: the gateway treats that as another API).
    pub path: String,
    /// Query parameters, decoded.
    pub query: Vec<(String, String)>,
    /// JSON body, for POSTs.
    pub body: Option<Vec<u8>>,
    /// The API's name, for logs.
    pub action: &'static str,
    /// VMs the call concerns, for logs.
    pub instances: usize,
}

impl fmt::Debug for KpsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KpsRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .field("action", &self.action)
            .finish()
    }
}

fn limit_offset(limit: u32, offset: u32) -> Vec<(String, String)> {
    vec![("limit".into(), limit.to_string()), ("offset".into(), offset.to_string())]
}

impl KpsRequest {
    fn post(path: String, body: Vec<u8>, action: &'static str, instances: usize) -> Self {
        Self { method: Method::POST, path, query: Vec::new(), body: Some(body), action, instances }
    }

    fn get(path: String, query: Vec<(String, String)>, action: &'static str) -> Self {
        Self { method: Method::GET, path, query, body: None, action, instances: 0 }
    }

    /// Bind one VM.
    pub fn associate(project: &str, body: &AssociateBody) -> Self {
        Self::post(wire::associate_path(project), wire::to_body(body), "AssociateKeypair", 1)
    }

    /// Bind up to 10 VMs to one key pair.
    pub fn batch_associate(project: &str, body: &BatchAssociateBody) -> Self {
        let n = body.batch_keypairs.len();
        Self::post(wire::batch_associate_path(project), wire::to_body(body), "BatchAssociateKeypair", n)
    }

    /// Unbind one VM.
    pub fn disassociate(project: &str, body: &DisassociateBody) -> Self {
        Self::post(wire::disassociate_path(project), wire::to_body(body), "DisassociateKeypair", 1)
    }

    /// A task's status.
    pub fn task(project: &str, task_id: &str) -> Self {
        Self::get(wire::task_path(project, task_id), Vec::new(), "ListKeypairTask")
    }

    /// A page of failed tasks.
    pub fn failed_tasks(project: &str, limit: u32, offset: u32) -> Self {
        Self::get(wire::failed_tasks_path(project), limit_offset(limit, offset), "ListFailedTask")
    }

    /// One key pair (ListKeypairDetail), to know whether it exists and holds the key.
    pub fn keypair(project: &str, name: &str) -> Self {
        Self::get(wire::keypair_path(project, name), Vec::new(), "ListKeypairDetail")
    }

    /// Imports a public key as a key pair (CreateKeypair with `public_key`).
    pub fn import_keypair(project: &str, name: &str, public_key: &str) -> Result<Self, Failure> {
        let body = wire::ImportKeypairBody { keypair: wire::ImportKeypair { name, public_key } };
        let body = serde_json::to_vec(&body)
            .map_err(|e| Failure::new(keypair_binder_core::FailureKind::InvalidRequest, e.to_string()))?;
        Ok(Self::post(wire::keypairs_path(project), body, "CreateKeypair", 0))
    }

    /// One ECS server (ShowServer), for its key pair and state.
    pub fn server(project: &str, server_id: &str) -> Self {
        Self::get(wire::server_path(project, server_id), Vec::new(), "ShowServer")
    }

    /// A page of running tasks.
    pub fn running_tasks(project: &str, limit: u32, offset: u32) -> Self {
        Self::get(wire::running_tasks_path(project), limit_offset(limit, offset), "ListRunningTask")
    }

    /// The URI: endpoint, path, and the canonical query (what is signed is what is sent).
    pub fn uri(&self, endpoint: &Url) -> Result<Uri, Failure> {
        endpoint_uri(endpoint, &self.path, &canonical_query(&self.query))
    }

    /// The `Content-Type` the SDK sends: with a charset when there is a body.
    fn content_type(&self) -> &'static str {
        if self.body.is_some() { wire::CONTENT_TYPE_JSON_UTF8 } else { wire::CONTENT_TYPE_JSON }
    }

    /// `Content-Type` and `User-Agent`, as the SDK sends (and signs) them.
    pub fn headers(&self, user_agent: &str) -> Vec<(String, String)> {
        vec![("Content-Type".into(), self.content_type().into()), ("User-Agent".into(), user_agent.into())]
    }

    /// What the signer covers, for this request sent to `url` with `headers`.
    pub fn signable<'a>(&'a self, host: &'a str, headers: &'a [(String, String)]) -> SignableRequest<'a> {
        SignableRequest {
            method: self.method.as_str(),
            host,
            path: &self.path,
            query: &self.query,
            headers,
            body: self.body.as_deref().unwrap_or_default(),
        }
    }

    /// The unsigned request to `endpoint`: URL, `Content-Type` and
    /// `User-Agent` as the SDK sends them, and the body.
    pub fn outgoing(self, endpoint: &Url, user_agent: &str) -> Result<OutgoingRequest, Failure> {
        // Room for the signer's headers too.
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(self.content_type()));
        if let Ok(agent) = HeaderValue::from_str(user_agent) {
            headers.insert(USER_AGENT, agent);
        }
        let mut request = OutgoingRequest::new(self.method.clone(), self.uri(endpoint)?, self.action)
            .with_headers(headers)
            .with_instances(self.instances)
            .with_request_id_header("x-request-id");
        if let Some(body) = self.body {
            request = request.with_body(body);
        }
        Ok(request)
    }

    /// `host[:port]` of the endpoint.
    pub fn host(endpoint: &Url) -> String {
        host_header(endpoint)
    }
}
