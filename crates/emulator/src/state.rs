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

/// The account every credential of the first output line belongs to.
pub const DEFAULT_ACCOUNT: &str = "default";

/// One account's resources in one region: what a cloud's regional API sees.
#[derive(Default)]
pub(crate) struct Place {
    pub vms: HashMap<(Cloud, String), Vm>,
    pub order: HashMap<Cloud, Vec<String>>,
    pub hw_keypairs: BTreeMap<String, String>,
    pub volc_keypairs: Vec<(String, String)>,
    /// Alibaba key pair names.
    pub ali_keypairs: std::collections::BTreeSet<String>,
    /// Tencent key pairs, (name, `skey-…` id).
    pub tc_keypairs: Vec<(String, String)>,
    /// The OpenSSH public key of every key pair, by cloud and name.
    pub public_keys: HashMap<(Cloud, String), String>,
    /// Each Tencent instance's latest operation.
    pub tc_ops: HashMap<String, TencentOp>,
    pub tasks: HashMap<String, Task>,
    pub active_tasks: Vec<String>,
    pub failed_tasks: Vec<(String, Instant)>,
    pub max_in_operation: usize,
    /// Volcengine `ClientToken` records.
    pub tokens: HashMap<String, TokenRecord>,
    pub applications: HashMap<(Cloud, String), u32>,
}

impl Place {
    pub fn applied(&mut self, cloud: Cloud, id: &str) {
        *self.applications.entry((cloud, id.to_string())).or_default() += 1;
    }

    pub fn in_operation(&self) -> usize {
        self.active_tasks.len()
    }
}

/// Where a place is: (account, region).
pub(crate) type PlaceKey = (String, String);

/// The mutable world behind every cloud's API.
pub(crate) struct World {
    pub started: Instant,
    /// Every account's regions.
    pub places: BTreeMap<PlaceKey, Place>,
    /// Alibaba signature nonces seen (a replay is refused).
    pub ali_nonces: std::collections::HashSet<String>,
    pub iam_tokens: HashMap<String, Instant>,
    pub revoked_static_token: bool,
    /// Temporary keys the metadata services issued, by access key.
    pub issued_keys: HashMap<String, crate::metadata::IssuedKey>,
    /// Metadata session tokens handed out.
    pub metadata_tokens: std::collections::HashSet<String>,
    /// The web identity token STS accepts now.
    pub oidc_token: String,
    pub calls: BTreeMap<String, u64>,
    pub log: VecDeque<LogEntry>,
}

impl World {
    /// `default_region` is where an instance or key pair without a region lives.
    pub fn new(
        inventory: &Inventory,
        vm_password: &str,
        transition: Duration,
        default_region: impl Fn(Cloud) -> String,
    ) -> Self {
        let now = Instant::now();
        let mut places: BTreeMap<PlaceKey, Place> = BTreeMap::new();
        let key_of = |cloud: Cloud, account: &Option<String>, region: &Option<String>| {
            let account = account.clone().unwrap_or_else(|| DEFAULT_ACCOUNT.to_string());
            (account, region.clone().unwrap_or_else(|| default_region(cloud)))
        };
        for spec in &inventory.instances {
            let place = places.entry(key_of(spec.provider, &spec.account, &spec.region)).or_default();
            place.vms.insert((spec.provider, spec.id.clone()), Vm::from_spec(spec, vm_password, transition, now));
            place.order.entry(spec.provider).or_default().push(spec.id.clone());
        }
        for (n, kp) in inventory.keypairs.iter().enumerate() {
            let place = places.entry(key_of(kp.provider, &kp.account, &kp.region)).or_default();
            let public_key = kp.public_key.clone().unwrap_or_else(|| public_key_for(&kp.name));
            place.public_keys.insert((kp.provider, kp.name.clone()), public_key);
            match kp.provider {
                Cloud::Huawei => {
                    let key = kp.private_key.clone().unwrap_or_else(|| private_key_for(&kp.name));
                    place.hw_keypairs.insert(kp.name.clone(), key);
                }
                Cloud::Volcengine => {
                    let id = kp.id.clone().unwrap_or_else(|| format!("kp-emu{n:017}"));
                    place.volc_keypairs.push((kp.name.clone(), id));
                }
                Cloud::Alibaba => {
                    place.ali_keypairs.insert(kp.name.clone());
                }
                Cloud::Tencent => {
                    let id = kp.id.clone().unwrap_or_else(|| format!("skey-{n:08}"));
                    place.tc_keypairs.push((kp.name.clone(), id));
                }
            }
        }
        Self {
            started: now,
            places,
            ali_nonces: std::collections::HashSet::new(),
            iam_tokens: HashMap::new(),
            revoked_static_token: false,
            issued_keys: HashMap::new(),
            metadata_tokens: std::collections::HashSet::new(),
            oidc_token: crate::sts::new_oidc_token(),
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

    /// An account's resources in a region (empty until something is put there).
    pub fn place(&mut self, account: &str, region: &str) -> &mut Place {
        self.places.entry((account.to_string(), region.to_string())).or_default()
    }
}

/// A public key's MD5 fingerprint, colon-separated hex (RFC 4716); empty
/// for text that is not a key.
pub(crate) fn md5_fingerprint(public_key: &str) -> String {
    keypair_binder_core::PublicKey::parse(public_key).map(|k| k.md5_fingerprint()).unwrap_or_default()
}

/// The OpenSSH public key the emulator holds for a key pair it was given without one.
pub fn public_key_for(keypair: &str) -> String {
    let digest = keypair_binder_core::sha256_hex(keypair.as_bytes());
    // An ed25519 key's wire form: the type name, then 32 bytes of key.
    let mut blob = Vec::with_capacity(51);
    blob.extend_from_slice(&11u32.to_be_bytes());
    blob.extend_from_slice(b"ssh-ed25519");
    blob.extend_from_slice(&32u32.to_be_bytes());
    blob.extend((0..32).map(|i| u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or(0)));
    use base64::Engine;
    format!("ssh-ed25519 {} {keypair}", base64::engine::general_purpose::STANDARD.encode(blob))
}

/// The private key text the emulator holds for a Huawei key pair without one.
pub fn private_key_for(keypair: &str) -> String {
    format!("-----BEGIN OPENSSH PRIVATE KEY-----\nemulator-key-of-{keypair}\n-----END OPENSSH PRIVATE KEY-----\n")
}
