//! What a run would send, computed without any network.

use serde::Serialize;

use crate::ids::{InstanceId, KeyPairRef};
use crate::report::Operation;
use crate::request::{BindRequest, Targets};

/// The calls a request would make, for review and dry runs.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Plan {
    /// Provider name.
    pub provider: &'static str,
    /// Bind or unbind.
    pub operation: Operation,
    /// The key pair.
    pub keypair: Option<KeyPairRef>,
    /// Instances passed in, duplicates included.
    pub requested: usize,
    /// Duplicates removed.
    pub duplicates: usize,
    /// The calls, in the order they would start.
    pub calls: Vec<PlannedCall>,
}

/// One API call of a plan.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct PlannedCall {
    /// The provider's action (`AttachKeyPair`, `POST /v3/{project}/keypairs/batch-associate`).
    pub action: String,
    /// The instances it carries.
    pub instances: Vec<InstanceId>,
}

impl Plan {
    /// The plan of a run that sends `action` once per `cap` instances, in
    /// order: the chunks the engine sends.
    pub fn chunked(
        provider: &'static str,
        operation: Operation,
        keypair: Option<KeyPairRef>,
        targets: &Targets,
        cap: usize,
        action: &str,
    ) -> Self {
        let calls = chunks(targets.instances(), cap)
            .map(|ids| PlannedCall { action: action.to_string(), instances: ids.to_vec() })
            .collect();
        Self { provider, operation, keypair, requested: targets.requested(), duplicates: targets.duplicates(), calls }
    }

    /// The plan of a bind that sends `action` once per `cap` instances.
    pub fn of_bind(provider: &'static str, request: &BindRequest, cap: usize, action: &str) -> Self {
        let keypair = Some(request.keypair().clone());
        Self::chunked(provider, Operation::Bind, keypair, &request.common().targets, cap, action)
    }

    /// Distinct instances across all calls.
    pub fn distinct(&self) -> usize {
        self.calls.iter().map(|c| c.instances.len()).sum()
    }
}

/// Splits instances into calls of at most `cap`, in order: what a run sends
/// and what a plan shows.
pub fn chunks(instances: &[InstanceId], cap: usize) -> std::slice::Chunks<'_, InstanceId> {
    instances.chunks(cap.max(1))
}
