//! Building an [`AlibabaBinder`](crate::AlibabaBinder): explicit settings,
//! the environment, the aliyun CLI's `~/.aliyun/config.json` and the INI
//! file `~/.alibabacloud/credentials` (or `.ini`).

use std::path::PathBuf;

use keypair_binder_core::env::{ConfigEnv, ProfileEnv, SystemEnv, ini_section};
use keypair_binder_core::http::{ClientSettings, check_endpoint, check_region};
use std::sync::Arc;

use keypair_binder_core::kit::{Credential, Credentials, RoleSource, credentials_or_role};
use keypair_binder_core::{Error, Secret};
use serde::Deserialize;
use url::Url;

use crate::instance_role;
use crate::signer::AccessKey;
use crate::sts::{Exchange, Sts, default_sts_endpoint};

pub(crate) const PROVIDER: &str = "alibaba";

/// A setting, with the environment variables that supply it (first wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlibabaConfigKey {
    /// AccessKey id.
    AccessKeyId,
    /// AccessKey secret.
    AccessKeySecret,
    /// STS security token.
    SecurityToken,
    /// Region id (`cn-hangzhou`).
    Region,
    /// Profile name in the CLI and INI files.
    Profile,
    /// Endpoint URL override.
    Endpoint,
    /// INI credentials file path.
    CredentialsFile,
    /// The role an OIDC token is exchanged for (RRSA).
    RoleArn,
    /// The OIDC provider of that token.
    OidcProviderArn,
    /// The file holding the OIDC token (read again on every refresh).
    OidcTokenFile,
    /// The session name of an assumed role.
    RoleSessionName,
    /// The region whose STS endpoint is used.
    StsRegion,
    /// `true`: the STS endpoint inside the VPC.
    VpcEndpointEnabled,
    /// A URI that answers with keys, the chain's last source.
    CredentialsUri,
    /// The ECS RAM role to ask the metadata service for.
    EcsMetadata,
    /// `true`: never ask the metadata service.
    EcsMetadataDisabled,
}

impl AlibabaConfigKey {
    /// Environment variables read for this key, in order of precedence.
    pub fn env_names(self) -> &'static [&'static str] {
        match self {
            Self::AccessKeyId => &[
                "ALIBABA_CLOUD_ACCESS_KEY_ID",
                "ALIBABACLOUD_ACCESS_KEY_ID",
                "ALICLOUD_ACCESS_KEY_ID",
                "ALICLOUD_ACCESS_KEY",
            ],
            Self::AccessKeySecret => &[
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                "ALIBABACLOUD_ACCESS_KEY_SECRET",
                "ALICLOUD_ACCESS_KEY_SECRET",
                "ALICLOUD_SECRET_KEY",
            ],
            Self::SecurityToken => {
                &["ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABACLOUD_SECURITY_TOKEN", "ALICLOUD_SECURITY_TOKEN"]
            }
            Self::Region => &["ALIBABA_CLOUD_REGION_ID", "ALICLOUD_REGION", "ALIBABA_CLOUD_REGION"],
            Self::Profile => &["ALIBABA_CLOUD_PROFILE", "ALIBABACLOUD_PROFILE", "ALICLOUD_PROFILE"],
            Self::Endpoint => &["ALIBABA_CLOUD_ENDPOINT"],
            Self::CredentialsFile => &["ALIBABA_CLOUD_CREDENTIALS_FILE"],
            Self::EcsMetadata => &["ALIBABA_CLOUD_ECS_METADATA"],
            Self::RoleArn => &["ALIBABA_CLOUD_ROLE_ARN"],
            Self::OidcProviderArn => &["ALIBABA_CLOUD_OIDC_PROVIDER_ARN"],
            Self::OidcTokenFile => &["ALIBABA_CLOUD_OIDC_TOKEN_FILE"],
            Self::RoleSessionName => &["ALIBABA_CLOUD_ROLE_SESSION_NAME"],
            Self::StsRegion => &["ALIBABA_CLOUD_STS_REGION"],
            Self::VpcEndpointEnabled => &["ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED"],
            Self::CredentialsUri => &["ALIBABA_CLOUD_CREDENTIALS_URI"],
            Self::EcsMetadataDisabled => &["ALIBABA_CLOUD_ECS_METADATA_DISABLED"],
        }
    }
}

/// The aliyun CLI's `config.json`.
#[derive(Deserialize, Default)]
struct CliConfig {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: Vec<CliProfile>,
}

#[derive(Deserialize, Default, Clone)]
struct CliProfile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
    #[serde(default)]
    region_id: String,
    #[serde(default)]
    ram_role_name: String,
    #[serde(default)]
    ram_role_arn: String,
    #[serde(default)]
    ram_session_name: String,
    #[serde(default)]
    oidc_provider_arn: String,
    #[serde(default)]
    oidc_token_file: String,
    #[serde(default)]
    role_session_name: String,
    #[serde(default)]
    source_profile: String,
}

/// Settings of an Alibaba Cloud binder. Holds secrets, so no `Debug`.
#[derive(Clone, Default)]
pub struct AlibabaBuilder {
    pub(crate) access_key_id: Option<String>,
    pub(crate) access_key_secret: Option<Secret>,
    pub(crate) security_token: Option<Secret>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) oidc: Option<Oidc>,
    pub(crate) sts_region: Option<String>,
    pub(crate) sts_vpc: bool,
    pub(crate) credentials_uri: Option<String>,
    pub(crate) client: ClientSettings,
    /// A named profile was asked for but is in neither file.
    pub(crate) missing_profile: Option<String>,
}

/// An OIDC role (RRSA on ACK): the role, its OIDC provider, the token file.
#[derive(Clone)]
pub(crate) struct Oidc {
    role_arn: String,
    provider_arn: String,
    token_file: String,
}

impl AlibabaBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the process environment and the profile files.
    pub fn from_env() -> Self {
        Self::from_env_with(&SystemEnv)
    }

    /// Reads an injected environment: variables first, then the CLI profile,
    /// then the INI profile.
    pub fn from_env_with(env: &dyn ConfigEnv) -> Self {
        let profile_name = env.first_var(AlibabaConfigKey::Profile.env_names());
        // `ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true` skips the CLI's config.json, as the SDK does.
        let cli_disabled = env.var("ALIBABA_CLOUD_CLI_PROFILE_DISABLED").is_some_and(|v| v == "true");
        let cli = if cli_disabled { None } else { cli_profile(env, profile_name.as_deref()) };
        let ini = ini_profile(env, profile_name.as_deref());
        let from_files = |cli: &str, ini: &str| [cli, ini].into_iter().find(|v| !v.is_empty()).map(str::to_string);
        let var = |key: AlibabaConfigKey| env.first_var(key.env_names());
        let cli = cli.unwrap_or_default();
        let ini = ini.unwrap_or_default();
        // The SDK's order: keys in the environment, an OIDC role (RRSA), then the profiles' keys.
        let env_keys = var(AlibabaConfigKey::AccessKeyId).is_some();
        let oidc = match (
            var(AlibabaConfigKey::RoleArn),
            var(AlibabaConfigKey::OidcProviderArn),
            var(AlibabaConfigKey::OidcTokenFile),
        ) {
            (Some(role_arn), Some(provider_arn), Some(token_file)) if !env_keys => {
                Some(Oidc { role_arn, provider_arn, token_file })
            }
            _ => None,
        };
        let mut client = ClientSettings::default().with_instance_role(
            var(AlibabaConfigKey::EcsMetadataDisabled).is_none_or(|v| v != "true"),
            var(AlibabaConfigKey::EcsMetadata).or_else(|| from_files(&cli.ram_role_name, &ini.role_name)),
        );
        client.role_session_name = var(AlibabaConfigKey::RoleSessionName);
        // A profile in a role mode (CLI `RamRoleArn`, `ChainableRamRoleArn`, `OIDC`; INI
        // `ram_role_arn`, `oidc_role_arn`), when the profiles are what the chain uses.
        let env_oidc = oidc.is_some();
        let mut oidc = oidc;
        if !env_keys && !env_oidc {
            let role = from_files(&cli.ram_role_arn, &ini.role_arn);
            let session = from_files(&cli.ram_session_name, &ini.role_session_name)
                .or_else(|| from_files(&cli.role_session_name, ""));
            let provider = from_files(&cli.oidc_provider_arn, &ini.oidc_provider_arn);
            let token_file = from_files(&cli.oidc_token_file, &ini.oidc_token_file);
            match (role, provider, token_file) {
                (Some(role_arn), Some(provider_arn), Some(token_file)) => {
                    oidc = Some(Oidc { role_arn, provider_arn, token_file });
                }
                (Some(role_arn), _, _) => client.assume_role = Some(role_arn),
                _ => {}
            }
            client.role_session_name = client.role_session_name.or(session);
        }
        // An OIDC role replaces the profiles' keys.
        let keys_from_files = |cli: &str, ini: &str| if oidc.is_some() { None } else { from_files(cli, ini) };
        Self {
            access_key_id: var(AlibabaConfigKey::AccessKeyId)
                .or_else(|| keys_from_files(&cli.access_key_id, &ini.access_key_id)),
            access_key_secret: var(AlibabaConfigKey::AccessKeySecret)
                .or_else(|| keys_from_files(&cli.access_key_secret, &ini.access_key_secret))
                .map(Secret::new),
            security_token: var(AlibabaConfigKey::SecurityToken)
                .or_else(|| keys_from_files(&cli.sts_token, &ini.security_token))
                .map(Secret::new),
            region: var(AlibabaConfigKey::Region).or_else(|| from_files(&cli.region_id, &ini.region_id)),
            endpoint: var(AlibabaConfigKey::Endpoint),
            oidc,
            sts_region: var(AlibabaConfigKey::StsRegion),
            sts_vpc: var(AlibabaConfigKey::VpcEndpointEnabled).is_some_and(|v| v == "true"),
            credentials_uri: var(AlibabaConfigKey::CredentialsUri),
            // The default chain ends with the VM's RAM role, unless told not to ask.
            client,
            missing_profile: None,
        }
    }

    /// Credentials from the named profile of `~/.aliyun/config.json` (the
    /// CLI's) or `~/.alibabacloud/credentials`, instead of the default
    /// chain: no variable of the environment is read but the files'
    /// locations. A profile in neither file is an error at `build`.
    pub fn profile(self, name: impl Into<String>) -> Self {
        self.profile_with(name, &SystemEnv)
    }

    /// [`profile`](Self::profile) from an injected environment.
    pub fn profile_with(mut self, name: impl Into<String>, env: &dyn ConfigEnv) -> Self {
        let name = name.into();
        let locations = AlibabaConfigKey::CredentialsFile.env_names();
        let seen = ProfileEnv::new(env, &name, AlibabaConfigKey::Profile.env_names(), locations);
        let from = Self::from_env_with(&seen);
        // A section the INI file lacks reads as an empty profile.
        let ini_found = ini_profile(&seen, Some(&name))
            .is_some_and(|p| [&p.access_key_id, &p.role_arn, &p.role_name].iter().any(|v| !v.is_empty()));
        let found = cli_profile(&seen, Some(&name)).is_some() || ini_found;
        self.access_key_id = from.access_key_id;
        self.access_key_secret = from.access_key_secret;
        self.security_token = from.security_token;
        self.oidc = from.oidc;
        self.credentials_uri = None;
        self.client.adopt_credential_chain(&from.client);
        self.region = self.region.or(from.region);
        self.missing_profile = (!found).then_some(name);
        self
    }

    /// Sets one setting by key.
    pub fn with_config(mut self, key: AlibabaConfigKey, value: impl Into<String>) -> Self {
        let value = value.into();
        match key {
            AlibabaConfigKey::AccessKeyId => self.access_key_id = Some(value),
            AlibabaConfigKey::AccessKeySecret => self.access_key_secret = Some(Secret::new(value)),
            AlibabaConfigKey::SecurityToken => self.security_token = Some(Secret::new(value)),
            AlibabaConfigKey::Region => self.region = Some(value),
            AlibabaConfigKey::Endpoint => self.endpoint = Some(value),
            AlibabaConfigKey::EcsMetadata => self.client.instance_role_name = Some(value),
            AlibabaConfigKey::EcsMetadataDisabled => self.client.instance_role = value != "true",
            AlibabaConfigKey::RoleSessionName => self.client.role_session_name = Some(value),
            AlibabaConfigKey::StsRegion => self.sts_region = Some(value),
            AlibabaConfigKey::VpcEndpointEnabled => self.sts_vpc = value == "true",
            AlibabaConfigKey::CredentialsUri => self.credentials_uri = Some(value),
            _ => {}
        }
        self
    }

    /// AccessKey id and secret.
    pub fn credentials(mut self, access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        self.access_key_id = Some(access_key_id.into());
        self.access_key_secret = Some(Secret::new(access_key_secret));
        self
    }

    /// STS security token, for temporary credentials.
    pub fn security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(Secret::new(token));
        self
    }

    /// An OIDC role (RRSA): the token in `token_file` (read again on every
    /// refresh) is exchanged for the role's keys with `AssumeRoleWithOIDC`.
    pub fn oidc_role(
        mut self,
        role_arn: impl Into<String>,
        provider_arn: impl Into<String>,
        token_file: impl Into<String>,
    ) -> Self {
        self.oidc =
            Some(Oidc { role_arn: role_arn.into(), provider_arn: provider_arn.into(), token_file: token_file.into() });
        self
    }

    /// Region id.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Endpoint URL, instead of the region's.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    keypair_binder_core::client_setters!();

    pub(crate) fn resolve(&self) -> Result<(Credentials, String, Url), Error> {
        if let Some(name) = &self.missing_profile {
            return Err(Error::config(
                PROVIDER,
                format!("profile {name:?} is in neither ~/.aliyun/config.json nor ~/.alibabacloud/credentials"),
            ));
        }
        let given = match (&self.access_key_id, &self.access_key_secret) {
            (Some(id), Some(secret)) => Some(Credential::AccessKey(AccessKey {
                access_key: id.clone(),
                secret_key: secret.clone(),
                token: self.security_token.clone(),
            })),
            _ => None,
        };
        let sts = |exchange: Exchange, role_arn: &str| -> Result<Box<Sts>, Error> {
            let endpoint = self
                .client
                .sts_endpoint_or(PROVIDER, || default_sts_endpoint(self.sts_region.as_deref(), self.sts_vpc))?;
            let session_name = self.client.session_name();
            Ok(Box::new(Sts { endpoint, role_arn: role_arn.to_string(), session_name, exchange }))
        };
        let credentials = match (&given, &self.oidc, &self.credentials_uri) {
            (None, Some(oidc), _) => {
                let exchange = Exchange::Oidc { provider_arn: oidc.provider_arn.clone() };
                let source = RoleSource::web_identity(sts(exchange, &oidc.role_arn)?, &oidc.token_file);
                Credentials::new(Arc::new(source))
            }
            // A credentials URI was asked for: used instead of probing the metadata service first.
            (None, None, Some(uri)) => {
                let uri = Url::parse(uri)
                    .map_err(|e| Error::config(PROVIDER, format!("invalid ALIBABA_CLOUD_CREDENTIALS_URI: {e}")))?;
                Credentials::new(Arc::new(instance_role::CredentialsUri { uri }))
            }
            _ => credentials_or_role(
                PROVIDER,
                &self.client,
                given,
                &instance_role::METADATA,
                "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET are not set (nor an OIDC role, nor a profile in ~/.aliyun/config.json or ~/.alibabacloud/credentials)",
            )?,
        };
        // A role in another account, assumed with whatever the chain found.
        let credentials = match &self.client.assume_role {
            Some(role_arn) => {
                Credentials::new(Arc::new(RoleSource::assumed(sts(Exchange::AssumeRole, role_arn)?, credentials)))
            }
            None => credentials,
        };
        let region = self
            .region
            .clone()
            .ok_or_else(|| Error::config(PROVIDER, "missing region: set ALIBABA_CLOUD_REGION_ID"))?;
        // A malformed region would otherwise fall back to the central endpoint silently.
        check_region(PROVIDER, &region)?;
        let endpoint = match &self.endpoint {
            Some(e) => Url::parse(e).map_err(|e| Error::config(PROVIDER, format!("invalid endpoint: {e}")))?,
            None => default_endpoint(&region),
        };
        check_endpoint(PROVIDER, &endpoint, self.client.allow_http)?;
        Ok((credentials, region, endpoint))
    }
}

/// The endpoint the official SDK uses for a region: `ecs.<region>.aliyuncs.com`,
/// `ecs-cn-hangzhou.aliyuncs.com` for `cn-hangzhou`.
pub fn default_endpoint(region: &str) -> Url {
    let host = match region {
        "cn-hangzhou" => "ecs-cn-hangzhou.aliyuncs.com".to_string(),
        other => format!("ecs.{other}.aliyuncs.com"),
    };
    Url::parse(&format!("https://{host}/"))
        .unwrap_or_else(|_| Url::parse("https://ecs.aliyuncs.com/").expect("static URL"))
}

fn cli_profile(env: &dyn ConfigEnv, name: Option<&str>) -> Option<CliProfile> {
    let path = env.home_dir()?.join(".aliyun").join("config.json");
    let config: CliConfig = serde_json::from_str(&env.read_file(&path)?).ok()?;
    let wanted = name.map(str::to_string).unwrap_or(config.current.clone());
    let find = |name: &str| config.profiles.iter().find(|p| p.name == name).cloned();
    let mut profile = find(&wanted)?;
    if profile.mode == "ChainableRamRoleArn" {
        // The caller's keys come from another profile; the role is this one's.
        let source = find(&profile.source_profile).filter(|s| matches!(s.mode.as_str(), "AK" | "StsToken" | ""))?;
        (profile.access_key_id, profile.access_key_secret, profile.sts_token) =
            (source.access_key_id, source.access_key_secret, source.sts_token);
    }
    let known = ["AK", "StsToken", "EcsRamRole", "RamRoleArn", "ChainableRamRoleArn", "OIDC", ""];
    known.contains(&profile.mode.as_str()).then_some(profile)
}

/// The fields of an INI profile section.
#[derive(Default)]
struct IniProfile {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    region_id: String,
    role_name: String,
    role_arn: String,
    role_session_name: String,
    oidc_provider_arn: String,
    oidc_token_file: String,
}

fn ini_profile(env: &dyn ConfigEnv, name: Option<&str>) -> Option<IniProfile> {
    let paths: Vec<PathBuf> = match env.first_var(AlibabaConfigKey::CredentialsFile.env_names()) {
        Some(p) => vec![PathBuf::from(p)],
        None => {
            let dir = env.home_dir()?.join(".alibabacloud");
            vec![dir.join("credentials"), dir.join("credentials.ini")]
        }
    };
    let text = paths.iter().find_map(|p| env.read_file(p))?;
    let mut profile = IniProfile::default();
    let mut kind = String::new();
    for (key, value) in ini_section(&text, name.unwrap_or("default")) {
        match key.as_str() {
            "type" => kind = value,
            "access_key_id" => profile.access_key_id = value,
            "access_key_secret" => profile.access_key_secret = value,
            "security_token" => profile.security_token = value,
            "region_id" => profile.region_id = value,
            "role_name" => profile.role_name = value,
            "role_arn" => profile.role_arn = value,
            "role_session_name" => profile.role_session_name = value,
            "oidc_provider_arn" => profile.oidc_provider_arn = value,
            "oidc_token_file_path" => profile.oidc_token_file = value,
            _ => {}
        }
    }
    let known = ["", "access_key", "sts", "ecs_ram_role", "ram_role_arn", "oidc_role_arn"];
    known.contains(&kind.as_str()).then_some(profile)
}

#[cfg(test)]
mod tests {
    use super::*;
    use keypair_binder_core::env::StaticEnv;

    #[test]
    fn environment_wins_then_cli_profile_then_ini() {
        let cli = r#"{"current":"work","profiles":[{"name":"work","mode":"AK","access_key_id":"LTAIcli","access_key_secret":"cli-secret","region_id":"cn-beijing"}]}"#;
        let ini = "[default]\ntype = access_key\naccess_key_id = LTAIini # the id\naccess_key_secret = ini-secret\n";
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_file("/home/u/.aliyun/config.json", cli)
            .with_file("/home/u/.alibabacloud/credentials", ini);
        let b = AlibabaBuilder::from_env_with(&env);
        assert_eq!(b.access_key_id.as_deref(), Some("LTAIcli"));
        assert_eq!(b.region.as_deref(), Some("cn-beijing"));
        let env = env.with_var("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv").with_var("ALIBABA_CLOUD_PROFILE", "none");
        let b = AlibabaBuilder::from_env_with(&env);
        assert_eq!(b.access_key_id.as_deref(), Some("LTAIenv"));
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_file("/home/u/.alibabacloud/credentials.ini", ini)
            .with_var("ALIBABA_CLOUD_REGION_ID", "cn-shanghai");
        let (credentials, region, endpoint) = AlibabaBuilder::from_env_with(&env).resolve().unwrap();
        assert_eq!((credentials.source_name(), region.as_str()), ("static", "cn-shanghai"));
        assert_eq!(endpoint.as_str(), "https://ecs.cn-shanghai.aliyuncs.com/");
        assert_eq!(default_endpoint("cn-hangzhou").as_str(), "https://ecs-cn-hangzhou.aliyuncs.com/");
        let err = AlibabaBuilder::new().region("cn-hangzhou").resolve().unwrap_err();
        assert!(err.to_string().contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{err}");
    }

    #[test]
    fn the_chain_takes_env_keys_then_an_oidc_role_then_profiles_then_the_vm_role() {
        let cli = r#"{"current":"work","profiles":[{"name":"work","mode":"AK","access_key_id":"LTAIcli","access_key_secret":"cli-secret","region_id":"cn-beijing"}]}"#;
        let oidc = [
            ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/r"),
            ("ALIBABA_CLOUD_OIDC_PROVIDER_ARN", "acs:ram::1:oidc-provider/p"),
            ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/var/run/token"),
        ];
        let files = StaticEnv::new().with_home("/home/u").with_file("/home/u/.aliyun/config.json", cli);
        let with_oidc = oidc.iter().fold(files.clone(), |env, (k, v)| env.with_var(k, v));
        let source = |env: &StaticEnv| AlibabaBuilder::from_env_with(env).resolve().unwrap().0.source_name();
        // An OIDC role comes before the profile's keys.
        assert_eq!(source(&with_oidc), "oidc_role_arn");
        // Keys in the environment come before both.
        let with_keys = with_oidc
            .clone()
            .with_var("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv")
            .with_var("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret");
        assert_eq!(source(&with_keys), "static");
        assert_eq!(AlibabaBuilder::from_env_with(&with_keys).access_key_id.as_deref(), Some("LTAIenv"));
        let disabled = files.clone().with_var("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true");
        assert!(AlibabaBuilder::from_env_with(&disabled).access_key_id.is_none(), "config.json skipped");
        // The profile's keys, then (with no keys anywhere) the VM's role.
        assert_eq!(source(&files), "static");
        let bare = StaticEnv::new().with_var("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou");
        assert_eq!(source(&bare), "ecs_ram_role");
        // A role to assume wraps whatever the chain found.
        let assumed = AlibabaBuilder::from_env_with(&files).assume_role("acs:ram::2:role/x").resolve().unwrap();
        assert_eq!(assumed.0.source_name(), "assume_role");
    }

    #[test]
    fn profiles_in_role_modes_assume_their_role_or_exchange_their_token() {
        let cli = r#"{"current":"role","profiles":[
            {"name":"keys","mode":"AK","access_key_id":"LTAIsrc","access_key_secret":"src-secret","region_id":"cn-beijing"},
            {"name":"role","mode":"RamRoleArn","access_key_id":"LTAIcli","access_key_secret":"s","ram_role_arn":"acs:ram::1:role/a","ram_session_name":"rot"},
            {"name":"chain","mode":"ChainableRamRoleArn","source_profile":"keys","ram_role_arn":"acs:ram::1:role/b"},
            {"name":"pod","mode":"OIDC","ram_role_arn":"acs:ram::1:role/c","oidc_provider_arn":"acs:ram::1:oidc-provider/p","oidc_token_file":"/t"}]}"#;
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_file("/home/u/.aliyun/config.json", cli)
            .with_var("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou");
        let builder =
            |profile: &str| AlibabaBuilder::from_env_with(&env.clone().with_var("ALIBABA_CLOUD_PROFILE", profile));
        let role = builder("role");
        assert_eq!(role.client.assume_role.as_deref(), Some("acs:ram::1:role/a"));
        assert_eq!(role.client.role_session_name.as_deref(), Some("rot"));
        assert_eq!(role.resolve().unwrap().0.source_name(), "assume_role");
        let chain = builder("chain");
        assert_eq!(chain.access_key_id.as_deref(), Some("LTAIsrc"), "the source profile's keys are the caller's");
        assert_eq!(chain.client.assume_role.as_deref(), Some("acs:ram::1:role/b"));
        let pod = builder("pod");
        assert!(pod.access_key_id.is_none());
        assert_eq!(pod.resolve().unwrap().0.source_name(), "oidc_role_arn");
        // The same in the INI file.
        let ini = "[default]\ntype = ram_role_arn\naccess_key_id = LTAIini\naccess_key_secret = s\nrole_arn = acs:ram::1:role/d\n\n[pod]\ntype = oidc_role_arn\nrole_arn = acs:ram::1:role/e\noidc_provider_arn = acs:ram::1:oidc-provider/p\noidc_token_file_path = /t\n";
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_file("/home/u/.alibabacloud/credentials", ini)
            .with_var("ALIBABA_CLOUD_REGION_ID", "cn-hangzhou");
        assert_eq!(AlibabaBuilder::from_env_with(&env).client.assume_role.as_deref(), Some("acs:ram::1:role/d"));
        let pod = AlibabaBuilder::from_env_with(&env.clone().with_var("ALIBABA_CLOUD_PROFILE", "pod"));
        assert_eq!(pod.resolve().unwrap().0.source_name(), "oidc_role_arn");
    }

    #[test]
    fn a_named_profile_wins_over_the_environment_and_a_missing_one_fails_at_build() {
        let cli = r#"{"current":"a","profiles":[{"name":"a","mode":"AK","access_key_id":"LTAIa","access_key_secret":"sa","region_id":"cn-beijing"}]}"#;
        let ini = "[staging]\ntype = access_key\naccess_key_id = LTAIini\naccess_key_secret = si\n";
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_var("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIenv")
            .with_var("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env")
            .with_file("/home/u/.aliyun/config.json", cli)
            .with_file("/home/u/.alibabacloud/credentials", ini);
        let from_cli = AlibabaBuilder::from_env_with(&env).profile_with("a", &env);
        assert_eq!(from_cli.access_key_id.as_deref(), Some("LTAIa"));
        let from_ini = AlibabaBuilder::new().profile_with("staging", &env);
        assert_eq!(from_ini.access_key_id.as_deref(), Some("LTAIini"));
        let err = AlibabaBuilder::new().region("cn-hangzhou").profile_with("nope", &env).resolve().unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }
}
