//! What the emulated clouds hold: instances and key pairs, loaded from a JSON
//! inventory or generated from a seed.
//!
//! The format (every field but `provider` and `id`/`name` is optional):
//!
//! ```json
//! {"instances": [
//!    {"provider": "huawei", "id": "…", "state": "running", "os": "linux", "password": "…"},
//!    {"provider": "volcengine", "id": "i-…", "state": "stopped", "os": "windows", "agent": false},
//!    {"provider": "alibaba", "id": "i-bp1…", "state": "running", "os": "linux"},
//!    {"provider": "tencent", "id": "ins-…", "state": "stopped", "os": "linux"}],
//!  "keypairs": [
//!    {"provider": "volcengine", "name": "…", "id": "kp-…"},
//!    {"provider": "huawei", "name": "…"},
//!    {"provider": "alibaba", "name": "…"},
//!    {"provider": "tencent", "name": "…", "id": "skey-…"}]}
//! ```
//!
//! Instance fields: `state` (`running`, `stopped`, `transitioning`, `error`; default
//! `running`), `os` (`linux`, `windows`; default `linux`), `agent` (the
//! credential agent is installed; default true), `image_supported` (default
//! true), `keypair` (name of the key pair bound now), `password` (root
//! password; default the emulator's shared VM password). Key pair fields:
//! `id` (Volcengine and Tencent; generated when absent), `private_key`
//! (Huawei; what a replace must present; generated when absent).
//!
//! On Tencent, `agent: false` makes the operation end `FAILED`, and
//! `image_supported: false` makes a call refuse the instance as a whole
//! (Windows: named in the message; Linux: not named); a Windows instance
//! with a supported image shows Windows in its `OsName`. Generated Tencent
//! instances are stopped.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Which emulated cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// Huawei Cloud KPS.
    Huawei,
    /// Volcengine ECS.
    Volcengine,
    /// Alibaba Cloud ECS.
    Alibaba,
    /// Tencent Cloud CVM.
    Tencent,
}

impl Cloud {
    /// The cloud of a lower-case name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Huawei, Self::Volcengine, Self::Alibaba, Self::Tencent].into_iter().find(|c| c.as_str() == name)
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Huawei => "huawei",
            Self::Volcengine => "volcengine",
            Self::Alibaba => "alibaba",
            Self::Tencent => "tencent",
        }
    }
}

/// Power state of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum VmState {
    /// Running.
    #[default]
    Running,
    /// Stopped.
    Stopped,
    /// Starting; becomes running after the emulator's transition time.
    Transitioning,
    /// In error (Huawei `ERROR`): every key-pair call is refused, and it stays so.
    Error,
}

/// Operating system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// Linux.
    #[default]
    Linux,
    /// Windows (key pairs cannot be bound).
    Windows,
}

fn yes() -> bool {
    true
}

/// One instance of the inventory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// Which cloud.
    pub provider: Cloud,
    /// Instance id.
    pub id: String,
    /// Power state.
    #[serde(default)]
    pub state: VmState,
    /// OS.
    #[serde(default)]
    pub os: Os,
    /// Credential agent installed.
    #[serde(default = "yes")]
    pub agent: bool,
    /// Image supports key pair operations.
    #[serde(default = "yes")]
    pub image_supported: bool,
    /// Key pair bound now.
    #[serde(default)]
    pub keypair: Option<String>,
    /// Root password.
    #[serde(default)]
    pub password: Option<String>,
    /// Region (default: the cloud's region of the first output line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Account (default: `default`, whose credentials the first output line gives first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// One key pair of the inventory.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeypairSpec {
    /// Which cloud.
    pub provider: Cloud,
    /// Name.
    pub name: String,
    /// Volcengine id (`kp-…`).
    #[serde(default)]
    pub id: Option<String>,
    /// Private key text a Huawei replace must present.
    #[serde(default)]
    pub private_key: Option<String>,
    /// OpenSSH public key (generated from the name when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Region (default: the cloud's region of the first output line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Account (default: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

impl KeypairSpec {
    /// A key pair named `name` in the default account and region, its id,
    /// private and public keys generated.
    pub fn new(provider: Cloud, name: impl Into<String>) -> Self {
        Self { provider, name: name.into(), id: None, private_key: None, public_key: None, region: None, account: None }
    }
}

/// Instances and key pairs of every cloud.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Inventory {
    /// Instances.
    #[serde(default)]
    pub instances: Vec<InstanceSpec>,
    /// Key pairs.
    #[serde(default)]
    pub keypairs: Vec<KeypairSpec>,
}

/// Why an inventory could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// Not JSON of the documented shape.
    #[error("invalid inventory: {0}")]
    Parse(#[from] serde_json::Error),
    /// Two instances or key pairs share an id or name.
    #[error("duplicate {what} {value:?} in the inventory")]
    Duplicate {
        /// Instance or key pair.
        what: &'static str,
        /// The repeated id or name.
        value: String,
    },
}

/// The key pair every generated inventory holds on every cloud.
pub const DEFAULT_KEYPAIR: &str = "kp-emulator";

impl Inventory {
    /// Parses and checks a JSON inventory.
    pub fn from_json(text: &str) -> Result<Self, InventoryError> {
        let inventory: Inventory = serde_json::from_str(text)?;
        let mut seen = std::collections::HashSet::new();
        for i in &inventory.instances {
            if !seen.insert((i.provider, "instance", i.id.clone(), i.region.clone(), i.account.clone())) {
                return Err(InventoryError::Duplicate { what: "instance", value: i.id.clone() });
            }
        }
        for k in &inventory.keypairs {
            if !seen.insert((k.provider, "keypair", k.name.clone(), k.region.clone(), k.account.clone())) {
                return Err(InventoryError::Duplicate { what: "key pair", value: k.name.clone() });
            }
        }
        Ok(inventory)
    }

    /// `per_cloud` running Linux instances on each cloud, ids in each cloud's
    /// format and the same for the same seed, plus [`DEFAULT_KEYPAIR`] on every cloud.
    pub fn generate(per_cloud: usize, seed: u64) -> Self {
        Self::generate_spread(per_cloud, seed, &|_| vec![None], &[None])
    }

    /// As [`generate`](Self::generate), each cloud's instances dealt in turn
    /// over its regions (`regions(cloud)`; `None` is the cloud's default) and
    /// the accounts, with [`DEFAULT_KEYPAIR`] in every account and region.
    pub fn generate_spread(
        per_cloud: usize,
        seed: u64,
        regions: &dyn Fn(Cloud) -> Vec<Option<String>>,
        accounts: &[Option<String>],
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut instances = Vec::with_capacity(per_cloud * 4);
        let mut keypairs = Vec::new();
        let clouds = [Cloud::Huawei, Cloud::Volcengine, Cloud::Alibaba, Cloud::Tencent];
        let places_of = |cloud: Cloud| -> Vec<(Option<String>, Option<String>)> {
            let places: Vec<_> =
                accounts.iter().flat_map(|a| regions(cloud).into_iter().map(move |r| (a.clone(), r))).collect();
            if places.is_empty() { vec![(None, None)] } else { places }
        };
        for cloud in clouds {
            let places = places_of(cloud);
            for n in 0..per_cloud {
                let id = match cloud {
                    Cloud::Huawei => huawei_id(&mut rng),
                    Cloud::Volcengine => volcengine_id(&mut rng, "i-"),
                    Cloud::Alibaba => volcengine_id(&mut rng, "i-bp1"),
                    Cloud::Tencent => tencent_id(&mut rng, "ins-"),
                };
                let mut spec = InstanceSpec::new(cloud, id);
                // CVM binds key pairs to stopped instances (running ones only with consent to a forced stop).
                if cloud == Cloud::Tencent {
                    spec.state = VmState::Stopped;
                }
                (spec.account, spec.region) = places[n % places.len()].clone();
                instances.push(spec);
            }
        }
        // Key pair ids after every instance id, as generated inventories always drew them.
        for cloud in clouds {
            for (account, region) in places_of(cloud) {
                let mut keypair = KeypairSpec::new(cloud, DEFAULT_KEYPAIR);
                keypair.id = match cloud {
                    Cloud::Volcengine => Some(volcengine_id(&mut rng, "kp-")),
                    Cloud::Tencent => Some(tencent_id(&mut rng, "skey-")),
                    _ => None,
                };
                (keypair.account, keypair.region) = (account, region);
                keypairs.push(keypair);
            }
        }
        Self { instances, keypairs }
    }

    /// Ids of one cloud's instances in `region` (named in the inventory), in inventory order.
    pub fn ids_in(&self, cloud: Cloud, region: &str) -> Vec<String> {
        let here = |i: &&InstanceSpec| i.provider == cloud && i.region.as_deref() == Some(region);
        self.instances.iter().filter(here).map(|i| i.id.clone()).collect()
    }

    /// Ids of one cloud's instances, in inventory order.
    pub fn ids(&self, cloud: Cloud) -> Vec<String> {
        self.instances.iter().filter(|i| i.provider == cloud).map(|i| i.id.clone()).collect()
    }
}

impl InstanceSpec {
    /// A running Linux instance with the agent, a supported image and no key pair.
    pub fn new(provider: Cloud, id: impl Into<String>) -> Self {
        Self {
            provider,
            id: id.into(),
            state: VmState::Running,
            os: Os::Linux,
            agent: true,
            image_supported: true,
            keypair: None,
            password: None,
            region: None,
            account: None,
        }
    }
}

/// A UUID-shaped ECS server id.
pub(crate) fn huawei_id(rng: &mut StdRng) -> String {
    let bytes: [u8; 16] = rng.random();
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// `i-` or `kp-` and 20 lower-case letters and digits.
pub(crate) fn volcengine_id(rng: &mut StdRng, prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..20).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}{tail}")
}

/// A CVM id: the prefix and 8 lowercase alphanumerics.
pub(crate) fn tencent_id(rng: &mut StdRng, prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..8).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
    format!("{prefix}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_minimal_form_loads() {
        let text = r#"{"instances": [{"provider": "huawei", "id": "a1", "state": "running", "os": "linux", "password": "pw"},
            {"provider": "volcengine", "id": "i-x", "state": "stopped", "os": "windows", "agent": false}],
            "keypairs": [{"provider": "volcengine", "name": "k", "id": "kp-1"}, {"provider": "huawei", "name": "k"}]}"#;
        let inv = Inventory::from_json(text).unwrap();
        assert_eq!(inv.instances.len(), 2);
        assert!(inv.instances[0].agent && inv.instances[0].image_supported);
        assert_eq!(inv.instances[1].state, VmState::Stopped);
        assert!(!inv.instances[1].agent);
        assert_eq!(inv.keypairs[0].id.as_deref(), Some("kp-1"));
    }

    #[test]
    fn duplicates_and_bad_json_are_refused() {
        let dup = r#"{"instances": [{"provider": "huawei", "id": "a"}, {"provider": "huawei", "id": "a"}]}"#;
        assert!(matches!(Inventory::from_json(dup), Err(InventoryError::Duplicate { .. })));
        assert!(Inventory::from_json(r#"{"instances": [{"provider": "aws", "id": "a"}]}"#).is_err());
    }

    #[test]
    fn generation_is_seeded_and_shaped() {
        let a = Inventory::generate(5, 42);
        let b = Inventory::generate(5, 42);
        assert_eq!(a.ids(Cloud::Huawei), b.ids(Cloud::Huawei));
        assert_ne!(a.ids(Cloud::Huawei), Inventory::generate(5, 43).ids(Cloud::Huawei));
        assert!(a.ids(Cloud::Huawei).iter().all(|id| uuid::Uuid::parse_str(id).is_ok()));
        assert!(a.ids(Cloud::Volcengine).iter().all(|id| id.starts_with("i-") && id.len() == 22));
    }
}
