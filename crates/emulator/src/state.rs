//! The emulated clouds' state, and what tests read from it: bindings,
//! applications per instance, calls per action, the request log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::inventory::{Cloud, InstanceSpec, Inventory, Os, VmState};

/// Most entries kept in the request log; older ones are dropped.
pub const MAX_LOG: usize = 200_000;

/// One instance as the emulator holds it.
#[derive(Clone, Debug)]
pub(crate) struct Vm {
    pub state: VmState,
    pub became_running_at: Option<Instant>,
    pub os: Os,
    pub agent: bool,
    pub image_supported: bool,
    pub keypair: Option<String>,
    pub password: String,
    /// A Huawei key-pair task runs on it now.
    pub busy: bool,
}

impl Vm {
    fn from_spec(spec: &InstanceSpec, default_password: &str, transition: Duration, now: Instant) -> Self {
        Self {
            state: spec.state,
            became_running_at: (spec.state == VmState::Transitioning).then(|| now + transition),
            os: spec.os,
            agent: spec.agent,
            image_supported: spec.image_supported,
            keypair: spec.keypair.clone(),
            password: spec.password.clone().unwrap_or_else(|| default_password.to_string()),
            busy: false,
        }
    }

    /// The state now: a transition ends by itself.
    pub fn state_at(&mut self, now: Instant) -> VmState {
        if let Some(at) = self.became_running_at
            && now >= at
        {
            self.state = VmState::Running;
            self.became_running_at = None;
        }
        self.state
    }
}

/// A Huawei key-pair task.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub server_id: String,
    pub keypair: Option<String>,
    pub op: &'static str,
    pub created: Instant,
    /// `None` succeeds; `Some((code, message))` fails.
    pub failure: Option<(String, String)>,
    pub done: bool,
}

/// A Tencent operation: the latest one of an instance, as `DescribeInstances` shows it.
#[derive(Clone, Debug)]
pub(crate) struct TencentOp {
    pub action: String,
    /// The RequestId of the call that started it.
    pub request_id: String,
    /// `OPERATING`, `SUCCESS` or `FAILED`.
    pub state: &'static str,
    pub started: Instant,
    /// Why it fails, when it will.
    pub error: Option<String>,
    /// The key pair (name) the instance holds once it succeeds.
    pub keypair: Option<String>,
    /// It was running and force-stopped: started again at the end.
    pub restart: bool,
}

/// A Volcengine `ClientToken` record.
#[derive(Clone, Debug)]
pub(crate) enum TokenRecord {
    /// Being applied now.
    InProgress { fingerprint: String },
    /// Applied; answered from `ready_at` on (before it: `IdempotentProcessing`).
    Done { fingerprint: String, status: u16, body: String, ready_at: Instant },
}

/// One request as the emulator saw it.
#[derive(Clone, Debug, Serialize)]
pub struct LogEntry {
    /// Which cloud's API.
    pub cloud: Cloud,
    /// The action (`AttachKeyPair`, `BatchAssociateKeypair`, `iam:CreateToken`…).
    pub action: String,
    /// HTTP status answered (0 when the connection was dropped).
    pub status: u16,
    /// The fault injected, if any.
    pub fault: Option<String>,
    /// Instances the call named.
    pub instances: usize,
    /// The signing time it carried (`X-Sdk-Date` or `X-Date`), if any.
    pub signed_at: Option<String>,
    /// The instances a key-pair call named (up to 100).
    pub instance_ids: Vec<String>,
    /// When the request arrived, from the emulator's start.
    #[serde(serialize_with = "millis")]
    pub received: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u128(d.as_millis())
}

/// The mutable world behind every cloud's API.
pub(crate) struct World {
    pub started: Instant,
    pub vms: HashMap<(Cloud, String), Vm>,
    pub order: HashMap<Cloud, Vec<String>>,
    pub hw_keypairs: BTreeMap<String, String>,
    pub volc_keypairs: Vec<(String, String)>,
    /// Alibaba key pair names.
    pub ali_keypairs: std::collections::BTreeSet<String>,
    /// Alibaba signature nonces seen (a replay is refused).
    pub ali_nonces: std::collections::HashSet<String>,
    /// Tencent key pairs, (name, `skey-…` id).
    pub tc_keypairs: Vec<(String, String)>,
    /// Each Tencent instance's latest operation.
    pub tc_ops: HashMap<String, TencentOp>,
    pub tasks: HashMap<String, Task>,
    pub active_tasks: Vec<String>,
    pub failed_tasks: Vec<(String, Instant)>,
    pub max_in_operation: usize,
    pub tokens: HashMap<String, TokenRecord>,
    pub iam_tokens: HashMap<String, Instant>,
    pub revoked_static_token: bool,
    /// Temporary keys the metadata services issued, by access key.
    pub issued_keys: HashMap<String, crate::metadata::IssuedKey>,
    /// Metadata session tokens handed out.
    pub metadata_tokens: std::collections::HashSet<String>,
    /// The web identity token STS accepts now.
    pub oidc_token: String,
    pub applications: HashMap<(Cloud, String), u32>,
    pub calls: BTreeMap<String, u64>,
    pub log: VecDeque<LogEntry>,
}

impl World {
    pub fn new(inventory: &Inventory, vm_password: &str, transition: Duration) -> Self {
        let now = Instant::now();
        let mut vms = HashMap::with_capacity(inventory.instances.len());
        let mut order: HashMap<Cloud, Vec<String>> = HashMap::new();
        for spec in &inventory.instances {
            vms.insert((spec.provider, spec.id.clone()), Vm::from_spec(spec, vm_password, transition, now));
            order.entry(spec.provider).or_default().push(spec.id.clone());
        }
        let mut hw_keypairs = BTreeMap::new();
        let mut volc_keypairs = Vec::new();
        let mut ali_keypairs = std::collections::BTreeSet::new();
        let mut tc_keypairs = Vec::new();
        for (n, kp) in inventory.keypairs.iter().enumerate() {
            match kp.provider {
                Cloud::Huawei => {
                    let key = kp.private_key.clone().unwrap_or_else(|| private_key_for(&kp.name));
                    hw_keypairs.insert(kp.name.clone(), key);
                }
                Cloud::Volcengine => {
                    let id = kp.id.clone().unwrap_or_else(|| format!("kp-emu{n:017}"));
                    volc_keypairs.push((kp.name.clone(), id));
                }
                Cloud::Alibaba => {
                    ali_keypairs.insert(kp.name.clone());
                }
                Cloud::Tencent => {
                    let id = kp.id.clone().unwrap_or_else(|| format!("skey-{n:08}"));
                    tc_keypairs.push((kp.name.clone(), id));
                }
            }
        }
        Self {
            started: now,
            vms,
            order,
            hw_keypairs,
            volc_keypairs,
            ali_keypairs,
            ali_nonces: std::collections::HashSet::new(),
            tc_keypairs,
            tc_ops: HashMap::new(),
            tasks: HashMap::new(),
            active_tasks: Vec::new(),
            failed_tasks: Vec::new(),
            max_in_operation: 0,
            tokens: HashMap::new(),
            iam_tokens: HashMap::new(),
            revoked_static_token: false,
            issued_keys: HashMap::new(),
            metadata_tokens: std::collections::HashSet::new(),
            oidc_token: crate::sts::new_oidc_token(),
            applications: HashMap::new(),
            calls: BTreeMap::new(),
            log: VecDeque::new(),
        }
    }

    pub fn record(&mut self, entry: LogEntry) {
        *self.calls.entry(entry.action.clone()).or_default() += 1;
        if self.log.len() >= MAX_LOG {
            self.log.pop_front();
        }
        self.log.push_back(entry);
    }

    pub fn applied(&mut self, cloud: Cloud, id: &str) {
        *self.applications.entry((cloud, id.to_string())).or_default() += 1;
    }

    pub fn in_operation(&self) -> usize {
        self.active_tasks.len()
    }
}

/// The private key text the emulator holds for a Huawei key pair without one.
pub fn private_key_for(keypair: &str) -> String {
    format!("-----BEGIN OPENSSH PRIVATE KEY-----\nemulator-key-of-{keypair}\n-----END OPENSSH PRIVATE KEY-----\n")
}
