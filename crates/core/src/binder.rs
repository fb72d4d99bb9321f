//! The one trait provisioning tools program against.

use std::fmt;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Error;
use crate::plan::Plan;
use crate::report::BindReport;
use crate::request::{BindRequest, UnbindRequest};

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

/// Something true after a successful bind that the caller must act on or know.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PostCondition {
    /// The key takes effect only after the VM reboots (or starts).
    RebootRequired,
    /// SSH password login no longer works.
    PasswordLoginDisabled,
    /// The VM's security group must allow SSH from this range for the agent.
    SecurityGroupMustAllowSsh {
        /// The agent's address range.
        source_cidr: String,
    },
    /// Running VMs were forcibly stopped for the change and started again:
    /// what they had not written to disk is lost.
    RunningInstancesRestarted,
    /// Stopped VMs stay stopped: the key works once they are started.
    StartRequired,
    /// A key pair a VM held before is replaced, not kept beside this one.
    ExistingKeyPairReplaced,
}

impl fmt::Display for PostCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::RebootRequired => f.write_str("reboot (or start) each VM for the key to take effect"),
            Self::PasswordLoginDisabled => f.write_str("SSH password login is disabled on bound VMs"),
            Self::SecurityGroupMustAllowSsh { source_cidr } => {
                write!(f, "the VM's security group must allow SSH (TCP 22) from {source_cidr}")
            }
            Self::RunningInstancesRestarted => {
                f.write_str("running VMs were forcibly stopped and started again; unsaved data on them is lost")
            }
            Self::StartRequired => f.write_str("stopped VMs stay stopped; start them to log in with the key"),
            Self::ExistingKeyPairReplaced => {
                f.write_str("a key pair a VM held before is replaced by this one; its old key no longer logs in")
            }
        }
    }
}
