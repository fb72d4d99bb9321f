//! The one trait provisioning tools program against.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Error;
use crate::plan::Plan;
use crate::public_key::{KeypairEnsured, PublicKey};
use crate::report::BindReport;
pub use crate::report::PostCondition;
use crate::request::{BindRequest, RunOptions, UnbindRequest};

/// Binds SSH key pairs to cloud VMs.
///
/// Object safe, so a tool can hold an `Arc<dyn KeypairBinder>` chosen at run
/// time. `bind` and `unbind` return `Err` only when the whole request failed;
/// per-instance failures are outcomes in the [`BindReport`].
#[async_trait]
pub trait KeypairBinder: fmt::Debug + Send + Sync {
    /// What this provider can do and what it leaves behind.
    fn capabilities(&self) -> Capabilities;

    /// Binds the request's key pair to every instance in it.
    async fn bind(&self, request: BindRequest) -> Result<BindReport, Error>;

    /// Removes a key pair from every instance in the request.
    async fn unbind(&self, request: UnbindRequest) -> Result<BindReport, Error>;

    /// Validates a bind request and lists the calls it would make; no network.
    fn plan(&self, request: &BindRequest) -> Result<Plan, Error>;

    /// Makes sure the key pair `name` holds `key` in this binder's region
    /// (key pairs are regional): one read; imported when missing (an
    /// interrupted import is settled by reading before importing again); an
    /// `Error::KeyPair` when the name holds another key. `options` gives the
    /// deadline and cancellation. Clouds without import answer `Unsupported`.
    async fn ensure_keypair(&self, name: &str, key: &PublicKey, options: &RunOptions) -> Result<KeypairEnsured, Error> {
        let _ = (name, key, options);
        Err(Error::unsupported(self.capabilities().provider, "public_key", "this cloud cannot import key pairs"))
    }
}

/// The facts about a provider a caller needs to plan a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Provider name (`huawei`, `volcengine`).
    pub provider: &'static str,
    /// Most instances one API call takes.
    pub max_instances_per_call: usize,
    /// Whether binding runs as asynchronous provider tasks that must be polled.
    pub async_tasks: bool,
    /// Whether calls carry an idempotency token, making retries safe.
    pub idempotency_token: bool,
    /// Whether the key pair may be named by id as well as by name.
    pub keypair_by_id: bool,
    /// What the caller must still do or know after a bind.
    pub post_conditions: Vec<PostCondition>,
}

impl Capabilities {
    /// A provider's capabilities: synchronous calls, no token, key pairs by name.
    pub fn new(provider: &'static str, max_instances_per_call: usize) -> Self {
        Self {
            provider,
            max_instances_per_call,
            async_tasks: false,
            idempotency_token: false,
            keypair_by_id: false,
            post_conditions: Vec::new(),
        }
    }

    /// Calls start tasks that must be polled.
    pub fn async_tasks(mut self, on: bool) -> Self {
        self.async_tasks = on;
        self
    }

    /// Calls carry an idempotency token.
    pub fn idempotency_token(mut self, on: bool) -> Self {
        self.idempotency_token = on;
        self
    }

    /// Key pairs may be named by id.
    pub fn keypair_by_id(mut self, on: bool) -> Self {
        self.keypair_by_id = on;
        self
    }

    /// What a bind leaves the caller to do or know.
    pub fn post_conditions(mut self, post_conditions: Vec<PostCondition>) -> Self {
        self.post_conditions = post_conditions;
        self
    }
}
