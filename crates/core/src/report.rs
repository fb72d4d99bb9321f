//! What a bind or unbind run returns: one outcome per distinct instance.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::ids::{InstanceId, KeyPairRef};

/// Which way a run went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// Bind a key pair to instances.
    Bind,
    /// Remove a key pair from instances.
    Unbind,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Bind => "bind",
            Self::Unbind => "unbind",
        })
    }
}

/// The reason class of a failure, the same on every cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The instance does not exist (in this region/project).
    InstanceNotFound,
    /// The instance is in a state that refuses the operation.
    InvalidState,
    /// The OS or image cannot take a key pair (Windows, unsupported image, no agent).
    UnsupportedImage,
    /// The instance already has a key pair bound.
    AlreadyBound,
    /// The key pair does not exist.
    KeyPairNotFound,
    /// The cloud throttled the call.
    Throttled,
    /// The credentials were refused.
    Auth,
    /// The credentials lack permission.
    Permission,
    /// The cloud refused the request's parameters.
    InvalidRequest,
    /// Any other error reported by the cloud.
    ProviderError,
    /// The connection failed or broke.
    Transport,
    /// A time limit ran out.
    Timeout,
    /// The caller cancelled the run before this instance was sent.
    Cancelled,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::InstanceNotFound => "instance not found",
            Self::InvalidState => "invalid instance state",
            Self::UnsupportedImage => "unsupported OS or image",
            Self::AlreadyBound => "already bound",
            Self::KeyPairNotFound => "key pair not found",
            Self::Throttled => "throttled",
            Self::Auth => "authentication failed",
            Self::Permission => "permission denied",
            Self::InvalidRequest => "invalid request",
            Self::ProviderError => "provider error",
            Self::Transport => "transport error",
            Self::Timeout => "timed out",
            Self::Cancelled => "cancelled",
        };
        f.write_str(text)
    }
}

/// Why one instance did not bind, with everything the cloud said about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct Failure {
    /// The reason class.
    pub kind: FailureKind,
    /// The provider's own error code (`KPS.0002`, `InvalidInstance.NotFound`).
    pub code: Option<String>,
    /// The provider's message, or ours when the provider said nothing.
    pub message: String,
    /// The HTTP status of the call, when there was a response.
    pub http_status: Option<u16>,
    /// The provider's request id, for support tickets.
    pub request_id: Option<String>,
    /// Whether trying again later may succeed.
    pub retryable: bool,
    /// How long the cloud asked us to wait (`Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure of `kind` with a message and nothing else known.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            code: None,
            message: message.into(),
            http_status: None,
            request_id: None,
            retryable: false,
            retry_after: None,
        }
    }

    /// Sets the provider's error code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    /// Sets the provider's error code, if any.
    pub fn with_code_opt(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
    }

    /// Sets the HTTP status, if any.
    pub fn with_status_opt(mut self, status: Option<u16>) -> Self {
        self.http_status = status;
        self
    }

    /// Replaces the message, keeping everything else.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Sets the request id.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// Marks whether a later attempt may succeed.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Sets the wait the cloud asked for.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(code) = &self.code {
            write!(f, " [{code}]")?;
        }
        if let Some(status) = self.http_status {
            write!(f, " (HTTP {status})")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// The definite outcome of one instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "error", rename_all = "snake_case")]
#[non_exhaustive]
pub enum InstanceOutcome {
    /// The operation was applied and confirmed.
    Bound,
    /// The instance was already in the requested state (holding the key
    /// pair, or for an unbind not holding it): nothing was sent for it.
    Unchanged,
    /// The operation was not applied (boxed: most outcomes are successes,
    /// and a fleet's report stays small).
    Failed(Box<Failure>),
    /// The request may or may not have been applied (e.g. a timeout after sending).
    Unknown(Box<Failure>),
}

impl InstanceOutcome {
    /// The outcome in one word: `succeeded` (bound or unchanged), `failed`
    /// or `unknown`, as reports and scripts name them.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Bound | Self::Unchanged => "succeeded",
            Self::Failed(_) => "failed",
            Self::Unknown(_) => "unknown",
        }
    }

    /// Not applied, for this reason.
    pub fn failed(failure: Failure) -> Self {
        Self::Failed(Box::new(failure))
    }

    /// May or may not have been applied, for this reason.
    pub fn unknown(failure: Failure) -> Self {
        Self::Unknown(Box::new(failure))
    }

    /// Whether the instance ended in the requested state (applied now, or already).
    pub fn is_bound(&self) -> bool {
        matches!(self, Self::Bound | Self::Unchanged)
    }

    /// Whether this run changed the instance (`false` for `Unchanged` and failures).
    pub fn changed(&self) -> bool {
        matches!(self, Self::Bound)
    }

    /// The failure, for `Failed` and `Unknown`.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Self::Bound | Self::Unchanged => None,
            Self::Failed(f) | Self::Unknown(f) => Some(f),
        }
    }
}

/// Counters of one run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RunStats {
    /// Instances the caller passed, duplicates included.
    pub requested: usize,
    /// Duplicates removed.
    pub duplicates: usize,
    /// HTTP calls made to the cloud.
    pub api_calls: u64,
    /// Attempts made again after a retryable failure.
    pub retries: u64,
    /// Wall time of the run.
    #[serde(serialize_with = "serialize_millis")]
    pub elapsed: Duration,
}

fn serialize_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

/// The result of a run: exactly one outcome per distinct instance, in input order.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct BindReport {
    /// The provider that ran it (`huawei`, `volcengine`).
    pub provider: &'static str,
    /// Bind or unbind.
    pub operation: Operation,
    /// The key pair, when one was named.
    pub keypair: Option<KeyPairRef>,
    /// One entry per distinct instance, in input order.
    pub outcomes: Vec<(InstanceId, InstanceOutcome)>,
    /// Counters.
    pub stats: RunStats,
    /// What the caller must still do or know (reboot, SSH rule).
    pub post_conditions: Vec<PostCondition>,
    /// Where the credentials came from (`static`, `ecs_ram_role`), never what they were.
    pub credential_source: Option<&'static str>,
}

impl BindReport {
    /// Whether every instance succeeded.
    pub fn all_bound(&self) -> bool {
        self.outcomes.iter().all(|(_, o)| o.is_bound())
    }

    /// Instances that succeeded.
    pub fn bound(&self) -> impl Iterator<Item = &InstanceId> {
        self.outcomes.iter().filter(|(_, o)| o.is_bound()).map(|(id, _)| id)
    }

    /// Instances that definitely failed, with why.
    pub fn failed(&self) -> impl Iterator<Item = (&InstanceId, &Failure)> {
        self.outcomes.iter().filter_map(|(id, o)| match o {
            InstanceOutcome::Failed(f) => Some((id, &**f)),
            _ => None,
        })
    }

    /// Instances whose outcome is ambiguous.
    pub fn unknown(&self) -> impl Iterator<Item = (&InstanceId, &Failure)> {
        self.outcomes.iter().filter_map(|(id, o)| match o {
            InstanceOutcome::Unknown(f) => Some((id, &**f)),
            _ => None,
        })
    }

    /// Instances worth another run: retryable failures and unknown outcomes.
    pub fn retryable(&self) -> impl Iterator<Item = &InstanceId> {
        self.outcomes.iter().filter_map(|(id, o)| match o {
            InstanceOutcome::Failed(f) if f.retryable => Some(id),
            InstanceOutcome::Unknown(_) => Some(id),
            _ => None,
        })
    }

    /// The outcome of one instance.
    pub fn outcome(&self, id: &InstanceId) -> Option<&InstanceOutcome> {
        self.outcomes.iter().find(|(i, _)| i == id).map(|(_, o)| o)
    }

    /// Instances already in the requested state, to which nothing was sent.
    pub fn unchanged(&self) -> usize {
        self.outcomes.iter().filter(|(_, o)| matches!(o, InstanceOutcome::Unchanged)).count()
    }

    /// Counts of (succeeded, failed, unknown); succeeded includes unchanged.
    pub fn counts(&self) -> (usize, usize, usize) {
        self.outcomes.iter().fold((0, 0, 0), |(b, f, u), (_, o)| match o {
            InstanceOutcome::Bound | InstanceOutcome::Unchanged => (b + 1, f, u),
            InstanceOutcome::Failed(_) => (b, f + 1, u),
            InstanceOutcome::Unknown(_) => (b, f, u + 1),
        })
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
