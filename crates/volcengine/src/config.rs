//! Building a [`VolcengineBinder`](crate::VolcengineBinder): explicit settings,
//! the environment, and the `ve` CLI's profile file.

use std::path::PathBuf;
use std::time::Duration;

use keypair_binder_core::env::{ConfigEnv, ProfileEnv, SystemEnv};
use keypair_binder_core::http::{ClientSettings, check_endpoint, check_region};
use keypair_binder_core::kit;
use keypair_binder_core::{Error, Secret};
use serde::Deserialize;
use url::Url;

use std::sync::Arc;

use crate::instance_role;
use crate::signer::Credentials;
use crate::sts::{Exchange, Sts, default_sts_endpoint};

pub(crate) const PROVIDER: &str = "volcengine";

/// The global OpenAPI host.
pub const GLOBAL_HOST: &str = "open.volcengineapi.com";
/// Regions the official SDKs reach through `ecs.<region>.volcengineapi.com`.
pub const BOOTSTRAP_REGIONS: &[&str] =
    &["cn-beijing-autodriving", "ap-southeast-2", "ap-southeast-3", "cn-shanghai-autodriving", "cn-beijing-selfdrive"];

/// A setting, with the environment variables that supply it (first wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VolcengineConfigKey {
    /// Access key id.
    AccessKey,
    /// Secret access key.
    SecretKey,
    /// STS session token.
    SessionToken,
    /// Region id (`cn-beijing`).
    Region,
    /// Endpoint URL override.
    Endpoint,
    /// The ECS role to ask the metadata service for.
    EcsMetadata,
    /// `true`: never ask the metadata service.
    EcsMetadataDisabled,
    /// The role an OIDC token is exchanged for (`trn:iam::<account>:role/<name>`).
    OidcRoleTrn,
    /// The file holding the OIDC token (read again on every refresh).
    OidcTokenFile,
    /// The session name of the role.
    OidcRoleSessionName,
}

impl VolcengineConfigKey {
    /// Environment variables read for this key, in order of precedence.
    pub fn env_names(self) -> &'static [&'static str] {
        match self {
            Self::AccessKey => &["VOLCENGINE_ACCESS_KEY", "VOLCSTACK_ACCESS_KEY_ID", "VOLCSTACK_ACCESS_KEY"],
            Self::SecretKey => &["VOLCENGINE_SECRET_KEY", "VOLCSTACK_SECRET_ACCESS_KEY", "VOLCSTACK_SECRET_KEY"],
            Self::SessionToken => &["VOLCENGINE_SESSION_TOKEN", "VOLCSTACK_SESSION_TOKEN"],
            Self::Region => &["VOLCENGINE_REGION"],
            Self::Endpoint => &["VOLCENGINE_ENDPOINT"],
            Self::EcsMetadata => &["VOLCENGINE_ECS_METADATA"],
            Self::EcsMetadataDisabled => &["VOLCENGINE_ECS_METADATA_DISABLED"],
            Self::OidcRoleTrn => &["VOLCENGINE_OIDC_ROLE_TRN"],
            Self::OidcTokenFile => &["VOLCENGINE_OIDC_TOKEN_FILE"],
            Self::OidcRoleSessionName => &["VOLCENGINE_OIDC_ROLE_SESSION_NAME"],
        }
    }
}

/// The profile of the `ve` CLI's `config.json` the chain reads.
const PROFILE_VAR: &str = "VOLCENGINE_PROFILE";
/// Where the `ve` CLI's `config.json` is, instead of `~/.volcengine/config.json`.
const CONFIG_FILE_VAR: &str = "VOLCENGINE_CLI_CONFIG_FILE";

/// The `ve` CLI's `config.json`.
#[derive(Deserialize)]
struct CliConfig {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: std::collections::HashMap<String, CliProfile>,
}

#[derive(Deserialize, Default)]
struct CliProfile {
    #[serde(rename = "access-key", default)]
    access_key: String,
    #[serde(rename = "secret-key", default)]
    secret_key: String,
    #[serde(rename = "session-token", default)]
    session_token: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    mode: String,
    #[serde(rename = "role-name", default)]
    role_name: String,
    #[serde(rename = "account-id", default)]
    account_id: String,
    #[serde(rename = "role-trn", default)]
    role_trn: String,
    #[serde(rename = "oidc-token-file", default)]
    oidc_token_file: String,
}

/// Settings of a Volcengine binder. Holds secrets, so no `Debug`.
#[derive(Clone, Default)]
pub struct VolcengineBuilder {
    pub(crate) access_key: Option<String>,
    pub(crate) secret_key: Option<Secret>,
    pub(crate) session_token: Option<Secret>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) client: ClientSettings,
    pub(crate) throttle_wait: Option<Duration>,
    pub(crate) state_change_wait: Option<Duration>,
    pub(crate) verify_bindings: bool,
    pub(crate) precheck_states: bool,
    /// An OIDC role: its TRN and the token file.
    pub(crate) oidc: Option<(String, String)>,
    /// A named profile was asked for but is not in the CLI's file.
    pub(crate) missing_profile: Option<String>,
}

impl VolcengineBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the process environment and `~/.volcengine/config.json`.
    pub fn from_env() -> Self {
        Self::from_env_with(&SystemEnv)
    }

    /// Reads an injected environment: variables first, then the CLI profile.
    pub fn from_env_with(env: &dyn ConfigEnv) -> Self {
        let mut builder = Self::new();
        let var = |key: VolcengineConfigKey| env.first_var(key.env_names());
        // The SDK's order: keys in the environment, an OIDC role, then the CLI profile's keys.
        let oidc = match (var(VolcengineConfigKey::OidcRoleTrn), var(VolcengineConfigKey::OidcTokenFile)) {
            (Some(trn), Some(file)) if var(VolcengineConfigKey::AccessKey).is_none() => Some((trn, file)),
            _ => None,
        };
        let mut profile = cli_profile(env).unwrap_or_default();
        if oidc.is_some() {
            (profile.access_key, profile.secret_key, profile.session_token) = Default::default();
        }
        // A profile in a role mode, when the profile is what the chain uses.
        let mut oidc = oidc;
        let mut profile_role = None;
        let mut ecs_role = None;
        if oidc.is_none() && var(VolcengineConfigKey::AccessKey).is_none() {
            match profile.mode.as_str() {
                "RamRoleArn" if !profile.role_name.is_empty() && !profile.account_id.is_empty() => {
                    profile_role = Some(format!("trn:iam::{}:role/{}", profile.account_id, profile.role_name));
                }
                "OIDC" if !profile.role_trn.is_empty() && !profile.oidc_token_file.is_empty() => {
                    oidc = Some((profile.role_trn.clone(), profile.oidc_token_file.clone()));
                }
                "EcsRole" if !profile.role_name.is_empty() => ecs_role = Some(profile.role_name.clone()),
                _ => {}
            }
        }
        builder.oidc = oidc;
        let pick = |key: VolcengineConfigKey, from_file: &str| {
            env.first_var(key.env_names()).or_else(|| (!from_file.is_empty()).then(|| from_file.to_string()))
        };
        builder.access_key = pick(VolcengineConfigKey::AccessKey, &profile.access_key);
        builder.secret_key = pick(VolcengineConfigKey::SecretKey, &profile.secret_key).map(Secret::new);
        builder.session_token = pick(VolcengineConfigKey::SessionToken, &profile.session_token).map(Secret::new);
        builder.region = pick(VolcengineConfigKey::Region, &profile.region);
        builder.endpoint = pick(VolcengineConfigKey::Endpoint, &profile.endpoint);
        builder.client.role_session_name = var(VolcengineConfigKey::OidcRoleSessionName);
        // The default chain ends with the instance's role, unless told not to ask.
        builder.client = builder.client.with_instance_role(
            var(VolcengineConfigKey::EcsMetadataDisabled).is_none_or(|v| v != "true"),
            var(VolcengineConfigKey::EcsMetadata).or(ecs_role),
        );
        builder.client.assume_role = profile_role;
        builder
    }

    /// Credentials (and the region, unless set) from the named profile of
    /// the `ve` CLI's `~/.volcengine/config.json`, instead of the default
    /// chain: no variable of the environment is read but the file's
    /// location. A profile not in the file is an error at `build`.
    pub fn profile(self, name: impl Into<String>) -> Self {
        self.profile_with(name, &SystemEnv)
    }

    /// [`profile`](Self::profile) from an injected environment.
    pub fn profile_with(mut self, name: impl Into<String>, env: &dyn ConfigEnv) -> Self {
        let name = name.into();
        let seen = ProfileEnv::new(env, &name, &[PROFILE_VAR], &[CONFIG_FILE_VAR]);
        let from = Self::from_env_with(&seen);
        self.access_key = from.access_key;
        self.secret_key = from.secret_key;
        self.session_token = from.session_token;
        self.oidc = from.oidc;
        self.client.adopt_credential_chain(&from.client);
        self.region = self.region.or(from.region);
        self.missing_profile = cli_profile(&seen).is_none().then_some(name);
        self
    }

    /// Sets one setting by key.
    pub fn with_config(mut self, key: VolcengineConfigKey, value: impl Into<String>) -> Self {
        let value = value.into();
        match key {
            VolcengineConfigKey::AccessKey => self.access_key = Some(value),
            VolcengineConfigKey::SecretKey => self.secret_key = Some(Secret::new(value)),
            VolcengineConfigKey::SessionToken => self.session_token = Some(Secret::new(value)),
            VolcengineConfigKey::Region => self.region = Some(value),
            VolcengineConfigKey::Endpoint => self.endpoint = Some(value),
            VolcengineConfigKey::EcsMetadata => self.client.instance_role_name = Some(value),
            VolcengineConfigKey::EcsMetadataDisabled => self.client.instance_role = value != "true",
            VolcengineConfigKey::OidcRoleSessionName => self.client.role_session_name = Some(value),
            VolcengineConfigKey::OidcRoleTrn | VolcengineConfigKey::OidcTokenFile => {}
        }
        self
    }

    /// Access key and secret key.
    pub fn credentials(mut self, access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        self.access_key = Some(access_key.into());
        self.secret_key = Some(Secret::new(secret_key));
        self
    }

    /// STS session token, for temporary credentials.
    pub fn session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(Secret::new(token));
        self
    }

    /// An OIDC role: the token in `token_file` (read again on every refresh)
    /// is exchanged for the role's keys with `AssumeRoleWithOIDC`.
    pub fn oidc_role(mut self, role_trn: impl Into<String>, token_file: impl Into<String>) -> Self {
        self.oidc = Some((role_trn.into(), token_file.into()));
        self
    }

    /// Region id.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Endpoint URL, instead of the one the region implies.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    keypair_binder_core::client_setters!();

    /// Least wait before re-issuing instances throttled one by one (default 500 ms).
    pub fn throttle_wait(mut self, wait: Duration) -> Self {
        self.throttle_wait = Some(wait);
        self
    }

    /// Least wait before re-issuing an instance that is changing state (default 5 s).
    pub fn state_change_wait(mut self, wait: Duration) -> Self {
        self.state_change_wait = Some(wait);
        self
    }

    /// After each call, confirm the reported successes with `DescribeInstances`
    /// (one more call per 100 instances); an unconfirmed one becomes `Unknown`.
    pub fn verify_bindings(mut self, verify: bool) -> Self {
        self.verify_bindings = verify;
        self
    }

    /// Before each attach, check states with `DescribeInstances` (one more
    /// call per 100 instances): missing, Windows or broken instances are not
    /// sent, and instances changing state wait until they can take the key.
    pub fn precheck_states(mut self, precheck: bool) -> Self {
        self.precheck_states = precheck;
        self
    }

    pub(crate) fn resolve(&self) -> Result<(kit::Credentials, String, Url), Error> {
        if let Some(name) = &self.missing_profile {
            return Err(Error::config(PROVIDER, format!("profile {name:?} is not in ~/.volcengine/config.json")));
        }
        let missing = |what: &str, key: VolcengineConfigKey| {
            Error::config(PROVIDER, format!("missing {what}: set {}", key.env_names()[0]))
        };
        let given = match (self.access_key.clone(), self.secret_key.clone()) {
            (Some(access_key), Some(secret_key)) => Some(kit::Credential::AccessKey(Credentials {
                access_key,
                secret_key,
                token: self.session_token.clone(),
            })),
            _ => None,
        };
        let sts = |exchange: Exchange, role_trn: &str| -> Result<Box<Sts>, Error> {
            let endpoint = self.client.sts_endpoint_or(PROVIDER, default_sts_endpoint)?;
            let session_name = self.client.session_name();
            Ok(Box::new(Sts { endpoint, role_trn: role_trn.to_string(), session_name, exchange }))
        };
        let credentials = match (&given, &self.oidc) {
            (None, Some((trn, file))) => {
                kit::Credentials::new(Arc::new(kit::RoleSource::web_identity(sts(Exchange::Oidc, trn)?, file)))
            }
            _ => kit::credentials_or_role(
                PROVIDER,
                &self.client,
                given,
                &instance_role::METADATA,
                "VOLCENGINE_ACCESS_KEY and VOLCENGINE_SECRET_KEY are not set (nor an OIDC role, nor a profile made with `ve configure`)",
            )?,
        };
        // A role in another account, assumed with whatever the chain found.
        let credentials = match &self.client.assume_role {
            Some(trn) => {
                kit::Credentials::new(Arc::new(kit::RoleSource::assumed(sts(Exchange::AssumeRole, trn)?, credentials)))
            }
            None => credentials,
        };
        let region = self.region.clone().ok_or_else(|| missing("region", VolcengineConfigKey::Region))?;
        check_region(PROVIDER, &region)?;
        let endpoint = match &self.endpoint {
            Some(e) => {
                Url::parse(e).map_err(|err| Error::config(PROVIDER, format!("invalid endpoint {e:?}: {err}")))?
            }
            None => default_endpoint(&region),
        };
        check_endpoint(PROVIDER, &endpoint, self.client.allow_http)?;
        Ok((credentials, region, endpoint))
    }
}

/// The endpoint the official SDKs use for a region.
pub fn default_endpoint(region: &str) -> Url {
    let host = if BOOTSTRAP_REGIONS.contains(&region) {
        format!("ecs.{region}.volcengineapi.com")
    } else {
        GLOBAL_HOST.to_string()
    };
    Url::parse(&format!("https://{host}/")).expect("static endpoint is a valid URL")
}

fn cli_profile(env: &dyn ConfigEnv) -> Option<CliProfile> {
    let path = match env.var(CONFIG_FILE_VAR) {
        Some(p) => PathBuf::from(p),
        None => env.home_dir()?.join(".volcengine").join("config.json"),
    };
    let mut config: CliConfig = serde_json::from_str(&env.read_file(&path)?).ok()?;
    let name = env.var(PROFILE_VAR).unwrap_or(config.current);
    config.profiles.remove(&name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keypair_binder_core::env::StaticEnv;

    #[test]
    fn env_wins_over_fallbacks_and_profile() {
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_var("VOLCSTACK_ACCESS_KEY_ID", "AK-old")
            .with_var("VOLCENGINE_ACCESS_KEY", "AK-new")
            .with_var("VOLCSTACK_SECRET_KEY", "SK-old")
            .with_file(
                "/home/u/.volcengine/config.json",
                r#"{"current":"p","profiles":{"p":{"access-key":"AK-file","secret-key":"SK-file","region":"cn-shanghai"}}}"#,
            );
        let b = VolcengineBuilder::from_env_with(&env);
        assert_eq!(b.access_key.as_deref(), Some("AK-new"));
        assert_eq!(b.secret_key.as_ref().map(Secret::expose), Some("SK-old"));
        assert_eq!(b.region.as_deref(), Some("cn-shanghai"));
        let (_, region, endpoint) = b.resolve().unwrap();
        assert_eq!(region, "cn-shanghai");
        assert_eq!(endpoint.as_str(), "https://open.volcengineapi.com/");
    }

    #[test]
    fn profile_selected_by_env() {
        let env = StaticEnv::new().with_var("VOLCENGINE_CLI_CONFIG_FILE", "/c.json").with_var("VOLCENGINE_PROFILE", "b").with_file(
            "/c.json",
            r#"{"current":"a","profiles":{"a":{"access-key":"A"},"b":{"access-key":"B","secret-key":"S","session-token":"T","region":"ap-southeast-3"}}}"#,
        );
        let b = VolcengineBuilder::from_env_with(&env);
        assert_eq!(b.access_key.as_deref(), Some("B"));
        assert!(b.session_token.is_some());
        let (_, _, endpoint) = b.resolve().unwrap();
        assert_eq!(endpoint.host_str(), Some("ecs.ap-southeast-3.volcengineapi.com"));
    }

    #[test]
    fn missing_settings_name_the_variable() {
        // No keys anywhere: the default chain ends with the instance's role, unless disabled.
        let chain = VolcengineBuilder::from_env_with(&StaticEnv::new().with_var("VOLCENGINE_REGION", "cn-beijing"));
        assert_eq!(chain.resolve().unwrap().0.source_name(), "ecs_role");
        let disabled = StaticEnv::new().with_var("VOLCENGINE_ECS_METADATA_DISABLED", "true");
        let err = VolcengineBuilder::from_env_with(&disabled).resolve().unwrap_err();
        assert!(err.to_string().contains("VOLCENGINE_ACCESS_KEY"), "{err}");
        let err = VolcengineBuilder::new().credentials("a", "s").resolve().unwrap_err();
        assert!(err.to_string().contains("VOLCENGINE_REGION"), "{err}");
    }

    #[test]
    fn plain_http_only_to_loopback() {
        let b = VolcengineBuilder::new().credentials("a", "s").region("cn-beijing");
        assert!(b.clone().endpoint("http://127.0.0.1:9").resolve().is_ok());
        assert!(b.clone().endpoint("http://ecs.example.com").resolve().is_err());
        assert!(b.endpoint("http://ecs.example.com").allow_http(true).resolve().is_ok());
    }

    #[test]
    fn the_chain_takes_env_keys_then_an_oidc_role_then_the_profile_then_the_vm_role() {
        let config = r#"{"current":"default","profiles":{"default":{"mode":"ak","access-key":"AKLTcli","secret-key":"cli","region":"cn-beijing"}}}"#;
        let files = StaticEnv::new().with_home("/home/u").with_file("/home/u/.volcengine/config.json", config);
        let with_oidc = files
            .clone()
            .with_var("VOLCENGINE_OIDC_ROLE_TRN", "trn:iam::1:role/r")
            .with_var("VOLCENGINE_OIDC_TOKEN_FILE", "/var/run/token");
        let source = |env: &StaticEnv| VolcengineBuilder::from_env_with(env).resolve().unwrap().0.source_name();
        assert_eq!(source(&with_oidc), "oidc_role_trn");
        let with_keys =
            with_oidc.clone().with_var("VOLCENGINE_ACCESS_KEY", "AKLTenv").with_var("VOLCENGINE_SECRET_KEY", "env");
        assert_eq!(source(&with_keys), "static");
        assert_eq!(source(&files), "static");
        assert_eq!(source(&StaticEnv::new().with_var("VOLCENGINE_REGION", "cn-beijing")), "ecs_role");
        let assumed = VolcengineBuilder::from_env_with(&files).assume_role("trn:iam::2:role/x").resolve().unwrap();
        assert_eq!(assumed.0.source_name(), "assume_role");
    }

    #[test]
    fn profiles_in_role_modes_assume_their_role_or_exchange_their_token() {
        let config = r#"{"current":"ram","profiles":{
            "ram":{"mode":"RamRoleArn","access-key":"AKLTcli","secret-key":"s","role-name":"ops","account-id":"21000","region":"cn-beijing"},
            "pod":{"mode":"OIDC","role-trn":"trn:iam::21000:role/pod","oidc-token-file":"/t","region":"cn-beijing"},
            "vm":{"mode":"EcsRole","role-name":"vm-role","region":"cn-beijing"}}}"#;
        let env = StaticEnv::new().with_home("/home/u").with_file("/home/u/.volcengine/config.json", config);
        let builder = |name: &str| VolcengineBuilder::from_env_with(&env.clone().with_var("VOLCENGINE_PROFILE", name));
        let ram = builder("ram");
        assert_eq!(ram.client.assume_role.as_deref(), Some("trn:iam::21000:role/ops"));
        assert_eq!(ram.resolve().unwrap().0.source_name(), "assume_role");
        assert_eq!(builder("pod").resolve().unwrap().0.source_name(), "oidc_role_trn");
        let vm = builder("vm");
        assert_eq!(vm.client.instance_role_name.as_deref(), Some("vm-role"));
        assert_eq!(vm.resolve().unwrap().0.source_name(), "ecs_role");
    }

    #[test]
    fn a_named_profile_wins_over_the_environment_and_a_missing_one_fails_at_build() {
        let config = r#"{"current":"a","profiles":{
            "a":{"mode":"ak","access-key":"AKLTa","secret-key":"sa","region":"cn-beijing"},
            "b":{"mode":"ak","access-key":"AKLTb","secret-key":"sb","region":"cn-shanghai"}}}"#;
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_var("VOLCENGINE_ACCESS_KEY", "AKLTenv")
            .with_var("VOLCENGINE_SECRET_KEY", "env")
            .with_file("/home/u/.volcengine/config.json", config);
        let b = VolcengineBuilder::from_env_with(&env).profile_with("b", &env);
        assert_eq!(b.access_key.as_deref(), Some("AKLTb"));
        assert_eq!(b.region.as_deref(), Some("cn-beijing"), "a region already set is kept");
        assert_eq!(VolcengineBuilder::new().profile_with("b", &env).region.as_deref(), Some("cn-shanghai"));
        let err = VolcengineBuilder::from_env_with(&env).profile_with("nope", &env).resolve().unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }
}
