//! A local emulator of the key-pair APIs of four clouds (Huawei Cloud KPS and
//! ECS, Volcengine ECS, Alibaba Cloud ECS, Tencent Cloud CVM) over real HTTP
//! on one loopback port, for tests, examples and benchmarks that must run
//! without a cloud account.
//!
//! It checks signatures with the providers' own signers, enforces each
//! cloud's rules (batch caps, the 10-VM window, `ClientToken` idempotency,
//! task states, Tencent's all-or-nothing validation and asynchronous operations), injects faults by rate or script, and lets tests read its
//! state: bindings, applications per instance, calls per action.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let emulator = keypair_binder_emulator::Emulator::builder().instances(300).seed(7).start().await?;
//! println!("{}", emulator.base_url());
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]
// Handlers return a ready HTTP answer as their error; its size does not matter here.
#![allow(clippy::result_large_err)]

mod alibaba;
mod faults;
mod huawei;
mod inventory;
mod metadata;
mod server;
mod state;
mod sts;
mod tencent;
mod volcengine;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use keypair_binder_core::sha256_hex;
use serde::Serialize;
use tokio::sync::watch;
use url::Url;

pub use faults::{Fault, FaultRates, FaultSpecError, ScriptedFault};
pub use huawei::HUAWEI_IDP_ID;
pub use inventory::{Cloud, DEFAULT_KEYPAIR, InstanceSpec, Inventory, InventoryError, KeypairSpec, Os, VmState};
pub use metadata::{CREDENTIALS_URI_PATH, INSTANCE_ROLE, POD_CREDENTIALS_PATH};
pub use state::{DEFAULT_ACCOUNT, LogEntry, private_key_for, public_key_for};

use faults::Faults;
use state::World;

/// Credentials the emulated Huawei Cloud accepts. Made up; printing them is fine.
#[derive(Clone, Debug, Serialize)]
pub struct HuaweiCredentials {
    /// Permanent access key.
    pub ak: String,
    /// Its secret key.
    pub sk: String,
    /// Temporary access key (needs `security_token`).
    pub temp_ak: String,
    /// Its secret key.
    pub temp_sk: String,
    /// The security token of the temporary key.
    pub security_token: String,
    /// The project id every KPS path carries.
    pub project_id: String,
    /// A ready IAM token.
    pub token: String,
    /// An IAM user, password and account that can obtain tokens.
    pub user: String,
    /// The IAM user's password.
    pub password: String,
    /// The account (domain) name.
    pub domain: String,
    /// The region.
    pub region: String,
    /// Root password of generated VMs.
    pub vm_password: String,
    /// The role the metadata service says is attached to every VM.
    pub instance_role: String,
    /// The agency STS v5 hands out (`assume`, `assume-with-oidc`).
    pub agency_urn: String,
    /// The identity provider whose OIDC ID tokens it takes.
    pub oidc_provider_urn: String,
}

/// Credentials the emulated Volcengine accepts. Made up; printing them is fine.
#[derive(Clone, Debug, Serialize)]
pub struct VolcengineCredentials {
    /// Permanent access key.
    pub ak: String,
    /// Its secret key.
    pub sk: String,
    /// STS access key (needs `session_token`).
    pub sts_ak: String,
    /// Its secret key.
    pub sts_sk: String,
    /// The STS session token.
    pub session_token: String,
    /// The region.
    pub region: String,
    /// The role the metadata service says is attached to every VM.
    pub instance_role: String,
    /// The role `AssumeRole` and `AssumeRoleWithOIDC` hand out.
    pub role_trn: String,
}

/// One account's access keys on every cloud, and the regions each cloud
/// serves it (Huawei: the project id of each region). Made up.
#[derive(Clone, Debug, Serialize)]
pub struct AccountCredentials {
    /// Huawei Cloud AK/SK and a project per region.
    pub huawei: HuaweiAccount,
    /// Volcengine access key.
    pub volcengine: AccessKeyPair,
    /// Alibaba Cloud AccessKey.
    pub alibaba: AccessKeyPair,
    /// Tencent Cloud SecretId and SecretKey.
    pub tencent: TencentAccount,
}

/// An access key and its secret.
#[derive(Clone, Debug, Serialize)]
pub struct AccessKeyPair {
    /// Access key id.
    pub ak: String,
    /// Its secret.
    pub sk: String,
    /// Regions served to this account.
    pub regions: Vec<String>,
}

/// A Huawei account: AK/SK and its projects.
#[derive(Clone, Debug, Serialize)]
pub struct HuaweiAccount {
    /// Permanent access key.
    pub ak: String,
    /// Its secret key.
    pub sk: String,
    /// Project id by region.
    pub projects: std::collections::BTreeMap<String, String>,
}

/// A Tencent account's keys.
#[derive(Clone, Debug, Serialize)]
pub struct TencentAccount {
    /// SecretId.
    pub secret_id: String,
    /// SecretKey.
    pub secret_key: String,
    /// Regions served to this account.
    pub regions: Vec<String>,
}

/// Everything a client needs to talk to the emulator.
#[derive(Clone, Debug, Serialize)]
pub struct Credentials {
    /// Every account's keys, `default` (the keys above) first in name order.
    pub accounts: std::collections::BTreeMap<String, AccountCredentials>,
    /// Huawei Cloud.
    pub huawei: HuaweiCredentials,
    /// Volcengine.
    pub volcengine: VolcengineCredentials,
    /// Alibaba Cloud.
    pub alibaba: AlibabaCredentials,
    /// Tencent Cloud.
    pub tencent: TencentCredentials,
}

/// Credentials the emulated Tencent Cloud accepts. Made up; printing them is fine.
#[derive(Clone, Debug, Serialize)]
pub struct TencentCredentials {
    /// SecretId.
    pub secret_id: String,
    /// SecretKey.
    pub secret_key: String,
    /// Temporary SecretId (needs `token`).
    pub sts_secret_id: String,
    /// Its SecretKey.
    pub sts_secret_key: String,
    /// The STS token.
    pub token: String,
    /// The region.
    pub region: String,
    /// The role the metadata service says is attached to every VM.
    pub instance_role: String,
    /// The role `AssumeRole` and `AssumeRoleWithWebIdentity` hand out.
    pub role_arn: String,
    /// The OIDC provider id of the emulated TKE cluster.
    pub oidc_provider_id: String,
}

/// Credentials the emulated Alibaba Cloud accepts. Made up; printing them is fine.
#[derive(Clone, Debug, Serialize)]
pub struct AlibabaCredentials {
    /// AccessKey id.
    pub ak: String,
    /// AccessKey secret.
    pub sk: String,
    /// STS AccessKey id (needs `security_token`).
    pub sts_ak: String,
    /// Its secret.
    pub sts_sk: String,
    /// The STS security token.
    pub security_token: String,
    /// The region.
    pub region: String,
    /// The role the metadata service says is attached to every VM.
    pub instance_role: String,
    /// The RAM role `AssumeRole` and `AssumeRoleWithOIDC` hand out.
    pub role_arn: String,
    /// The OIDC provider whose tokens `AssumeRoleWithOIDC` takes.
    pub oidc_provider_arn: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            accounts: std::collections::BTreeMap::new(),
            huawei: HuaweiCredentials {
                ak: "HPUAEMULATORAK000001".into(),
                sk: "EmulatorSecretKey000000000000000000000001".into(),
                temp_ak: "HSTAEMULATORTEMPAK01".into(),
                temp_sk: "EmulatorTemporarySecretKey0000000000000002".into(),
                security_token: "EMULATOR-SECURITY-TOKEN-0001".into(),
                project_id: "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e".into(),
                token: "EMULATOR-IAM-TOKEN-STATIC".into(),
                user: "emulator-user".into(),
                password: "emulator-iam-password".into(),
                domain: "emulator-account".into(),
                region: "cn-north-4".into(),
                vm_password: "Emulator#VmRootPw1".into(),
                instance_role: INSTANCE_ROLE.into(),
                agency_urn: sts::HUAWEI_AGENCY_URN.into(),
                oidc_provider_urn: sts::HUAWEI_PROVIDER_URN.into(),
            },
            volcengine: VolcengineCredentials {
                ak: "AKLTemulatoraccesskey000001".into(),
                sk: "ZW11bGF0b3Itc2VjcmV0LWtleS0wMDAwMDE=".into(),
                sts_ak: "AKTPemulatorstsaccesskey01".into(),
                sts_sk: "ZW11bGF0b3Itc3RzLXNlY3JldC0wMDAwMDI=".into(),
                session_token: "EMULATOR-STS-SESSION-TOKEN-0001".into(),
                region: "cn-beijing".into(),
                instance_role: INSTANCE_ROLE.into(),
                role_trn: sts::VOLCENGINE_ROLE_TRN.into(),
            },
            alibaba: AlibabaCredentials {
                ak: "LTAI5tEmulatorAccessKey01".into(),
                sk: "EmulatorAlibabaSecret000000000001".into(),
                sts_ak: "STS.EmulatorTemporaryAccessKey1".into(),
                sts_sk: "EmulatorAlibabaStsSecret00000002".into(),
                security_token: "EMULATOR-ALIBABA-STS-TOKEN-0001".into(),
                region: "cn-hangzhou".into(),
                instance_role: INSTANCE_ROLE.into(),
                role_arn: sts::ALIBABA_ROLE_ARN.into(),
                oidc_provider_arn: sts::ALIBABA_OIDC_PROVIDER_ARN.into(),
            },
            tencent: TencentCredentials {
                secret_id: "AKIDEmulatorSecretId0000000000000001".into(),
                secret_key: "EmulatorTencentSecretKey00000001".into(),
                sts_secret_id: "AKIDEmulatorStsSecretId000000000002".into(),
                sts_secret_key: "EmulatorTencentStsSecretKey00002".into(),
                token: "EMULATOR-TENCENT-STS-TOKEN-0001".into(),
                region: "ap-guangzhou".into(),
                instance_role: INSTANCE_ROLE.into(),
                role_arn: sts::TENCENT_ROLE_ARN.into(),
                oidc_provider_id: sts::TENCENT_PROVIDER_ID.into(),
            },
        }
    }
}

impl Credentials {
    /// The accounts `names` (besides `default`), serving `regions` on every cloud:
    /// keys derived from the account's name, `default`'s the fixed ones above.
    fn with_accounts(mut self, names: &[String], regions: &dyn Fn(Cloud) -> Vec<String>) -> Self {
        let derive = |account: &str, what: &str, len: usize| {
            sha256_hex(format!("{account}/{what}").as_bytes())[..len].to_string()
        };
        let mut all = vec![state::DEFAULT_ACCOUNT.to_string()];
        all.extend(names.iter().filter(|n| n.as_str() != state::DEFAULT_ACCOUNT).cloned());
        for account in all {
            let default = account == state::DEFAULT_ACCOUNT;
            let pick = |fixed: &str, prefix: &str, what: &str, len: usize| {
                if default { fixed.to_string() } else { format!("{prefix}{}", derive(&account, what, len)) }
            };
            let projects = regions(Cloud::Huawei)
                .into_iter()
                .map(|region| {
                    let fixed = default && region == self.huawei.region;
                    let id = if fixed {
                        self.huawei.project_id.clone()
                    } else {
                        derive(&account, &format!("project/{region}"), 32)
                    };
                    (region, id)
                })
                .collect();
            let entry = AccountCredentials {
                huawei: HuaweiAccount {
                    ak: pick(&self.huawei.ak, "HPUA", "huawei-ak", 16).to_uppercase(),
                    sk: pick(&self.huawei.sk, "", "huawei-sk", 40),
                    projects,
                },
                volcengine: AccessKeyPair {
                    ak: pick(&self.volcengine.ak, "AKLT", "volcengine-ak", 24),
                    sk: pick(&self.volcengine.sk, "", "volcengine-sk", 40),
                    regions: regions(Cloud::Volcengine),
                },
                alibaba: AccessKeyPair {
                    ak: pick(&self.alibaba.ak, "LTAI5t", "alibaba-ak", 18),
                    sk: pick(&self.alibaba.sk, "", "alibaba-sk", 30),
                    regions: regions(Cloud::Alibaba),
                },
                tencent: TencentAccount {
                    secret_id: pick(&self.tencent.secret_id, "AKID", "tencent-id", 32),
                    secret_key: pick(&self.tencent.secret_key, "", "tencent-key", 32),
                    regions: regions(Cloud::Tencent),
                },
            };
            self.accounts.insert(account, entry);
        }
        self
    }

    /// The account an access key of `cloud` belongs to, and its secret.
    pub(crate) fn account_of(&self, cloud: Cloud, access_key: &str) -> Option<(&str, &str)> {
        self.accounts.iter().find_map(|(name, a)| {
            let (ak, sk) = match cloud {
                Cloud::Huawei => (&a.huawei.ak, &a.huawei.sk),
                Cloud::Volcengine => (&a.volcengine.ak, &a.volcengine.sk),
                Cloud::Alibaba => (&a.alibaba.ak, &a.alibaba.sk),
                Cloud::Tencent => (&a.tencent.secret_id, &a.tencent.secret_key),
            };
            (ak == access_key).then_some((name.as_str(), sk.as_str()))
        })
    }

    /// Whether `cloud` serves `region` to `account`.
    pub(crate) fn serves(&self, cloud: Cloud, account: &str, region: &str) -> bool {
        self.accounts.get(account).is_some_and(|a| match cloud {
            Cloud::Huawei => a.huawei.projects.contains_key(region),
            Cloud::Volcengine => a.volcengine.regions.iter().any(|r| r == region),
            Cloud::Alibaba => a.alibaba.regions.iter().any(|r| r == region),
            Cloud::Tencent => a.tencent.regions.iter().any(|r| r == region),
        })
    }

    /// The Huawei (account, region) a project id belongs to.
    pub(crate) fn huawei_project(&self, project_id: &str) -> Option<(&str, &str)> {
        self.accounts.iter().find_map(|(name, a)| {
            a.huawei.projects.iter().find(|(_, id)| *id == project_id).map(|(r, _)| (name.as_str(), r.as_str()))
        })
    }

    /// The region a cloud's instances live in when the inventory does not say.
    pub fn region_of(&self, cloud: Cloud) -> &str {
        self.default_region(cloud)
    }

    pub(crate) fn default_region(&self, cloud: Cloud) -> &str {
        match cloud {
            Cloud::Huawei => &self.huawei.region,
            Cloud::Volcengine => &self.volcengine.region,
            Cloud::Alibaba => &self.alibaba.region,
            Cloud::Tencent => &self.tencent.region,
        }
    }
}

/// Timing of the emulated clouds.
#[derive(Clone, Debug)]
pub(crate) struct Timing {
    pub latency: Duration,
    pub task_duration: Duration,
    pub transition: Duration,
    pub token_lifetime: Duration,
    /// Lifetime of the temporary keys the metadata services issue.
    pub credential_ttl: Duration,
    pub max_skew: Duration,
    pub processing: Duration,
}

pub(crate) struct Shared {
    pub world: Mutex<World>,
    pub faults: Faults,
    pub timing: Timing,
    pub credentials: Credentials,
}

impl Shared {
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Configures an [`Emulator`].
#[derive(Clone, Debug)]
pub struct EmulatorBuilder {
    listen: SocketAddr,
    inventory: Option<Inventory>,
    instances: usize,
    seed: u64,
    timing: Timing,
    rates: FaultRates,
    script: Vec<ScriptedFault>,
    credentials: Credentials,
    regions: Vec<(Option<Cloud>, String)>,
    accounts: Vec<String>,
}

impl Default for EmulatorBuilder {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            inventory: None,
            instances: 100,
            seed: 1,
            timing: Timing {
                latency: Duration::ZERO,
                task_duration: Duration::from_millis(200),
                transition: Duration::from_secs(2),
                token_lifetime: Duration::from_secs(24 * 3600),
                credential_ttl: Duration::from_secs(15 * 60),
                max_skew: Duration::from_secs(15 * 60),
                processing: Duration::ZERO,
            },
            rates: FaultRates::default(),
            script: Vec::new(),
            credentials: Credentials::default(),
            regions: Vec::new(),
            accounts: Vec::new(),
        }
    }
}

impl EmulatorBuilder {
    /// Address to listen on (default `127.0.0.1:0`, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Instances and key pairs to serve, instead of generated ones.
    pub fn inventory(mut self, inventory: Inventory) -> Self {
        self.inventory = Some(inventory);
        self
    }

    /// Generated instances per cloud (default 100), when no inventory is given.
    pub fn instances(mut self, per_cloud: usize) -> Self {
        self.instances = per_cloud;
        self
    }

    /// Seed of generated ids and fault draws.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fixed latency of every call.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.timing.latency = latency;
        self
    }

    /// Time a Huawei task takes from READY to SUCCESS or FAILED, and a
    /// Tencent operation from OPERATING to SUCCESS or FAILED (default 200 ms).
    pub fn task_duration(mut self, duration: Duration) -> Self {
        self.timing.task_duration = duration;
        self
    }

    /// Time a `transitioning` instance takes to become running (default 2 s).
    pub fn transition(mut self, duration: Duration) -> Self {
        self.timing.transition = duration;
        self
    }

    /// Lifetime of IAM tokens it issues (default 24 h).
    pub fn token_lifetime(mut self, lifetime: Duration) -> Self {
        self.timing.token_lifetime = lifetime;
        self
    }

    /// Lifetime of the temporary keys the metadata services issue (default
    /// 15 min); the compute APIs refuse them after it, as expired.
    pub fn credential_ttl(mut self, ttl: Duration) -> Self {
        self.timing.credential_ttl = ttl;
        self
    }

    /// How long a Volcengine call stays "in progress" for its `ClientToken`
    /// (a repeat within it gets `IdempotentProcessing`; default 0).
    pub fn processing_time(mut self, duration: Duration) -> Self {
        self.timing.processing = duration;
        self
    }

    /// Fault rates.
    pub fn faults(mut self, rates: FaultRates) -> Self {
        self.rates = rates;
        self
    }

    /// Adds a fault for the next matching call.
    pub fn script(mut self, fault: ScriptedFault) -> Self {
        self.script.push(fault);
        self
    }

    /// Regions generated instances are dealt over: `(Some(cloud), region)`
    /// for one cloud, `(None, region)` for all (default: each cloud's one
    /// region). Every region an inventory names is served too.
    pub fn regions(mut self, regions: impl IntoIterator<Item = (Option<Cloud>, String)>) -> Self {
        self.regions = regions.into_iter().collect();
        self
    }

    /// Accounts generated instances are dealt over, each with its own keys
    /// (default: the `default` account alone). Every account an inventory
    /// names is served too.
    pub fn accounts(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.accounts = names.into_iter().map(Into::into).collect();
        self
    }

    /// Binds the port and starts serving.
    pub async fn start(self) -> std::io::Result<Emulator> {
        let named = |cloud: Cloud| -> Vec<String> {
            self.regions.iter().filter(|(c, _)| c.is_none_or(|c| c == cloud)).map(|(_, r)| r.clone()).collect()
        };
        let inventory = self.inventory.unwrap_or_else(|| {
            let regions = |cloud: Cloud| {
                let named = named(cloud);
                if named.is_empty() { vec![None] } else { named.into_iter().map(Some).collect() }
            };
            let accounts: Vec<Option<String>> =
                if self.accounts.is_empty() { vec![None] } else { self.accounts.iter().cloned().map(Some).collect() };
            Inventory::generate_spread(self.instances, self.seed, &regions, &accounts)
        });
        // Served: each cloud's default region, the regions named, and every region and account the inventory holds.
        let base = self.credentials.clone();
        let served =
            |cloud: Cloud| -> Vec<String> {
                let mut regions = vec![base.default_region(cloud).to_string()];
                let held =
                    inventory.instances.iter().filter(|i| i.provider == cloud).filter_map(|i| i.region.clone()).chain(
                        inventory.keypairs.iter().filter(|k| k.provider == cloud).filter_map(|k| k.region.clone()),
                    );
                for region in named(cloud).into_iter().chain(held) {
                    if !regions.contains(&region) {
                        regions.push(region);
                    }
                }
                regions
            };
        let mut accounts = self.accounts.clone();
        let held = inventory.instances.iter().filter_map(|i| i.account.clone());
        for account in held.chain(inventory.keypairs.iter().filter_map(|k| k.account.clone())) {
            if !accounts.contains(&account) {
                accounts.push(account);
            }
        }
        let credentials = self.credentials.with_accounts(&accounts, &served);
        let world = World::new(&inventory, &credentials.huawei.vm_password, self.timing.transition, |cloud| {
            credentials.default_region(cloud).to_string()
        });
        let shared = Arc::new(Shared {
            world: Mutex::new(world),
            faults: Faults::new(self.rates, self.script, self.seed),
            timing: self.timing,
            credentials,
        });
        let listener = tokio::net::TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        // The web identity token a pod would have, in a file of its own.
        let oidc_token_file =
            std::env::temp_dir().join(format!("kpbind-emulator-{}-{}.token", std::process::id(), addr.port()));
        let token = shared.world().oidc_token.clone();
        std::fs::write(&oidc_token_file, token)?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::serve(listener, shared.clone(), stopped));
        Ok(Emulator { addr, shared, inventory, stop, task: Mutex::new(Some(task)), oidc_token_file })
    }
}

/// A running emulator. Dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    inventory: Inventory,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    oidc_token_file: std::path::PathBuf,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts configuring an emulator.
    pub fn builder() -> EmulatorBuilder {
        EmulatorBuilder::default()
    }

    /// `http://127.0.0.1:PORT`, the endpoint of every cloud and of IAM.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}", self.addr)).expect("a socket address makes a valid URL")
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The credentials it accepts.
    pub fn credentials(&self) -> &Credentials {
        &self.shared.credentials
    }

    /// The inventory it started with.
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// Brings every place's tasks and operations up to now.
    fn advanced(&self) -> MutexGuard<'_, World> {
        let now = std::time::Instant::now();
        let mut world = self.shared.world();
        for place in world.places.values_mut() {
            huawei::advance_tasks(place, &self.shared.timing, now);
            tencent::advance(place, &self.shared.timing, now);
        }
        world
    }

    /// The key pair bound to an instance now (name), in the first account
    /// and region (by name) that holds that id.
    pub fn binding(&self, cloud: Cloud, id: &str) -> Option<String> {
        let world = self.advanced();
        let vm = world.places.values().find_map(|p| p.vms.get(&(cloud, id.to_string())))?;
        vm.keypair.clone()
    }

    /// The key pair bound to an instance of `account` in `region` now (name).
    pub fn binding_in(&self, cloud: Cloud, account: &str, region: &str, id: &str) -> Option<String> {
        let world = self.advanced();
        let place = world.places.get(&(account.to_string(), region.to_string()))?;
        place.vms.get(&(cloud, id.to_string())).and_then(|vm| vm.keypair.clone())
    }

    /// How many times a key pair operation was applied to an instance (in
    /// every account and region holding that id).
    pub fn applications(&self, cloud: Cloud, id: &str) -> u32 {
        let world = self.advanced();
        world.places.values().filter_map(|p| p.applications.get(&(cloud, id.to_string()))).sum()
    }

    /// How many times a key pair operation was applied to an instance of `account` in `region`.
    pub fn applications_in(&self, cloud: Cloud, account: &str, region: &str, id: &str) -> u32 {
        let world = self.advanced();
        let place = world.places.get(&(account.to_string(), region.to_string()));
        place.and_then(|p| p.applications.get(&(cloud, id.to_string()))).copied().unwrap_or(0)
    }

    /// The key pairs of `cloud` that `account` holds in `region`, with their public keys.
    pub fn keypairs_in(&self, cloud: Cloud, account: &str, region: &str) -> Vec<(String, String)> {
        let world = self.shared.world();
        let Some(place) = world.places.get(&(account.to_string(), region.to_string())) else { return Vec::new() };
        let mut pairs: Vec<(String, String)> = place
            .public_keys
            .iter()
            .filter(|((c, _), _)| *c == cloud)
            .map(|((_, n), k)| (n.clone(), k.clone()))
            .collect();
        pairs.sort();
        pairs
    }

    /// Calls received per action (`AttachKeyPair`, `BatchAssociateKeypair`…).
    pub fn calls(&self, action: &str) -> u64 {
        self.shared.world().calls.get(action).copied().unwrap_or(0)
    }

    /// Every call received, of every action.
    pub fn total_calls(&self) -> u64 {
        self.shared.world().calls.values().sum()
    }

    /// The most Huawei VMs that were in key-pair operations at once (in one account and region).
    pub fn max_in_operation(&self) -> usize {
        self.shared.world().places.values().map(|p| p.max_in_operation).max().unwrap_or(0)
    }

    /// The request log, oldest first (the last 200,000 requests).
    pub fn request_log(&self) -> Vec<LogEntry> {
        self.shared.world().log.iter().cloned().collect()
    }

    /// Puts an instance into a transition (as a reboot would) for the
    /// emulator's transition time: a state change in the middle of a run.
    pub fn start_transition(&self, cloud: Cloud, id: &str) {
        let now = std::time::Instant::now();
        let transition = self.shared.timing.transition;
        let mut world = self.shared.world();
        if let Some(vm) = world.places.values_mut().find_map(|p| p.vms.get_mut(&(cloud, id.to_string()))) {
            vm.state = VmState::Transitioning;
            vm.became_running_at = Some(now + transition);
        }
    }

    /// Starts a Huawei task that binds `keypair` to a VM, as another client
    /// would; returns its id, or `None` for an unknown VM.
    pub fn start_foreign_task(&self, id: &str, keypair: &str) -> Option<String> {
        let now = std::time::Instant::now();
        let mut world = self.advanced();
        let key = (Cloud::Huawei, id.to_string());
        let place = world.places.values_mut().find(|p| p.vms.contains_key(&key))?;
        let op = if place.vms[&key].keypair.is_some() { "REPLACE" } else { "BIND" };
        Some(huawei::start_task(place, id, Some(keypair), op, None, now))
    }

    /// Expires every IAM token issued so far (the static one too), as a
    /// password change would; clients must obtain new ones.
    pub fn revoke_tokens(&self) {
        let now = std::time::Instant::now();
        let mut world = self.shared.world();
        world.revoked_static_token = true;
        for expiry in world.iam_tokens.values_mut() {
            *expiry = now;
        }
    }

    /// The file holding the web identity token its STS accepts (OIDC).
    pub fn oidc_token_file(&self) -> &std::path::Path {
        &self.oidc_token_file
    }

    /// Writes a new web identity token to the file, as Kubernetes rotates
    /// projected tokens; the old one is refused from now on.
    pub fn rotate_oidc_token(&self) -> std::io::Result<()> {
        let token = sts::new_oidc_token();
        std::fs::write(&self.oidc_token_file, &token)?;
        self.shared.world().oidc_token = token;
        Ok(())
    }

    /// Expires every temporary key the metadata services issued so far, as
    /// if their time had run out: the compute APIs answer with each cloud's
    /// expired-token error until the client fetches new ones.
    pub fn expire_issued_keys(&self) {
        let now = tokio::time::Instant::now();
        for key in self.shared.world().issued_keys.values_mut() {
            key.expires = now;
        }
    }

    /// The secret keys and tokens the metadata services and STS issued so
    /// far, and the current web identity token (for tests that check nothing
    /// leaks them).
    pub fn issued_secrets(&self) -> Vec<String> {
        let world = self.shared.world();
        let keys = world.issued_keys.values().flat_map(|k| [k.secret.clone(), k.token.clone()]);
        keys.chain([world.oidc_token.clone()]).collect()
    }

    /// Stops serving and waits for the server to end.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        let _ = std::fs::remove_file(&self.oidc_token_file);
    }
}
