//! Settings of a Tencent Cloud binder: explicit values, the environment,
//! the tccli profile (`~/.tccli/<profile>.credential` and `.configure`) and
//! the SDKs' INI file (`~/.tencentcloud/credentials`), read through an
//! injectable [`ConfigEnv`] so tests never touch the real environment.

use std::path::PathBuf;
use std::time::Duration;

use keypair_binder_core::env::{ConfigEnv, SystemEnv, ini_section};
use keypair_binder_core::http::{ClientSettings, check_endpoint, check_region};
use keypair_binder_core::kit;
use keypair_binder_core::{Error, Secret};
use serde::Deserialize;
use url::Url;

use std::sync::Arc;

use crate::instance_role;
use crate::signer::Credentials;
use crate::sts::{Exchange, Sts, default_sts_endpoint};

pub(crate) const PROVIDER: &str = "tencent";

/// A setting, with the environment variables that supply it (first wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TencentConfigKey {
    /// SecretId.
    SecretId,
    /// SecretKey.
    SecretKey,
    /// STS token, for temporary credentials (tccli, Terraform and third-party names).
    Token,
    /// Region (`ap-guangzhou`).
    Region,
    /// tccli profile name (`default`).
    Profile,
    /// Endpoint URL override.
    Endpoint,
    /// INI credentials file path.
    CredentialsFile,
    /// The role a TKE pod's web identity is exchanged for.
    TkeRoleArn,
    /// The TKE cluster's OIDC provider id.
    TkeProviderId,
    /// The file holding the pod's web identity token (read again on every refresh).
    TkeWebIdentityTokenFile,
    /// The region of the STS call.
    TkeRegion,
}

impl TencentConfigKey {
    /// Environment variables read for this key, in order of precedence.
    pub fn env_names(self) -> &'static [&'static str] {
        match self {
            Self::SecretId => &["TENCENTCLOUD_SECRET_ID"],
            Self::SecretKey => &["TENCENTCLOUD_SECRET_KEY"],
            Self::Token => &["TENCENTCLOUD_TOKEN", "TENCENTCLOUD_SECURITY_TOKEN", "TENCENTCLOUD_SESSION_TOKEN"],
            Self::Region => &["TENCENTCLOUD_REGION"],
            Self::Profile => &["TCCLI_PROFILE", "TENCENTCLOUD_PROFILE"],
            Self::Endpoint => &["TENCENTCLOUD_ENDPOINT"],
            Self::CredentialsFile => &["TENCENTCLOUD_CREDENTIALS_FILE"],
            Self::TkeRoleArn => &["TKE_ROLE_ARN"],
            Self::TkeProviderId => &["TKE_PROVIDER_ID"],
            Self::TkeWebIdentityTokenFile => &["TKE_WEB_IDENTITY_TOKEN_FILE"],
            Self::TkeRegion => &["TKE_REGION"],
        }
    }
}

/// `~/.tccli/<profile>.credential`.
#[derive(Deserialize, Default)]
struct TccliCredential {
    #[serde(rename = "secretId", default)]
    secret_id: String,
    #[serde(rename = "secretKey", default)]
    secret_key: String,
    #[serde(default)]
    token: String,
}

/// `~/.tccli/<profile>.configure`: only the region is used.
#[derive(Deserialize, Default)]
struct TccliConfigure {
    #[serde(rename = "_sys_param", default)]
    sys: TccliSysParam,
}

#[derive(Deserialize, Default)]
struct TccliSysParam {
    #[serde(default)]
    region: String,
}

/// Settings of a Tencent Cloud binder. Holds secrets, so no `Debug`.
#[derive(Clone, Default)]
pub struct TencentBuilder {
    pub(crate) secret_id: Option<String>,
    pub(crate) secret_key: Option<Secret>,
    pub(crate) token: Option<Secret>,
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) settle_grace: Option<Duration>,
    pub(crate) client: ClientSettings,
    /// A TKE OIDC role: its ARN, the OIDC provider id, the token file, the region.
    pub(crate) oidc: Option<TkeOidc>,
    /// A named profile was asked for but has no keys in tccli's files.
    pub(crate) missing_profile: Option<String>,
}

/// The web identity of a TKE pod.
#[derive(Clone)]
pub(crate) struct TkeOidc {
    role_arn: String,
    provider_id: String,
    token_file: String,
    region: Option<String>,
}

impl TencentBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the process environment and the profile files.
    pub fn from_env() -> Self {
        Self::from_env_with(&SystemEnv)
    }

    /// Reads an injected environment: variables first, then the tccli
    /// profile, then the INI file's `[default]` section.
    pub fn from_env_with(env: &dyn ConfigEnv) -> Self {
        let var = |key: TencentConfigKey| env.first_var(key.env_names());
        let profile = var(TencentConfigKey::Profile).unwrap_or_else(|| "default".into());
        let tccli_dir = env.home_dir().map(|h| h.join(".tccli"));
        let read_json = |suffix: &str| {
            let path = tccli_dir.as_ref()?.join(format!("{profile}.{suffix}"));
            env.read_file(&path)
        };
        let cli: TccliCredential =
            read_json("credential").and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let configure: TccliConfigure =
            read_json("configure").and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let ini = ini_credentials(env);
        let ini_value = |name: &str| ini.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let non_empty = |v: String| Some(v).filter(|v| !v.is_empty());
        Self {
            secret_id: var(TencentConfigKey::SecretId)
                .or_else(|| non_empty(cli.secret_id))
                .or_else(|| ini_value("secret_id")),
            secret_key: var(TencentConfigKey::SecretKey)
                .or_else(|| non_empty(cli.secret_key))
                .or_else(|| ini_value("secret_key"))
                .map(Secret::new),
            token: var(TencentConfigKey::Token).or_else(|| non_empty(cli.token)).map(Secret::new),
            region: var(TencentConfigKey::Region).or_else(|| non_empty(configure.sys.region)),
            endpoint: var(TencentConfigKey::Endpoint),
            settle_grace: None,
            // The default chain ends with the CVM's role.
            client: ClientSettings::default().with_instance_role(true, None),
            oidc: match (
                var(TencentConfigKey::TkeRoleArn),
                var(TencentConfigKey::TkeProviderId),
                var(TencentConfigKey::TkeWebIdentityTokenFile),
            ) {
                (Some(role_arn), Some(provider_id), Some(token_file)) => {
                    Some(TkeOidc { role_arn, provider_id, token_file, region: var(TencentConfigKey::TkeRegion) })
                }
                _ => None,
            },
            missing_profile: None,
        }
    }

    /// Keys (and the region, unless set) from the named tccli profile
    /// (`~/.tccli/<name>.credential` and `.configure`), instead of the
    /// default chain: no variable of the environment is read. A profile
    /// without keys there is an error at `build`.
    pub fn profile(self, name: impl Into<String>) -> Self {
        self.profile_with(name, &SystemEnv)
    }

    /// [`profile`](Self::profile) from an injected environment.
    pub fn profile_with(mut self, name: impl Into<String>, env: &dyn ConfigEnv) -> Self {
        let name = name.into();
        let tccli = |suffix: &str| env.read_file(&env.home_dir()?.join(".tccli").join(format!("{name}.{suffix}")));
        let cli: TccliCredential = tccli("credential").and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let configure: TccliConfigure =
            tccli("configure").and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let non_empty = |v: String| Some(v).filter(|v| !v.is_empty());
        let found = !cli.secret_id.is_empty() && !cli.secret_key.is_empty();
        self.secret_id = non_empty(cli.secret_id);
        self.secret_key = non_empty(cli.secret_key).map(Secret::new);
        self.token = non_empty(cli.token).map(Secret::new);
        self.oidc = None;
        // The profile's keys, or nothing: never the VM's role instead.
        self.client.instance_role = false;
        self.region = self.region.or(non_empty(configure.sys.region));
        self.missing_profile = (!found).then_some(name);
        self
    }

    /// Sets one setting by key.
    pub fn with_config(mut self, key: TencentConfigKey, value: impl Into<String>) -> Self {
        let value = value.into();
        match key {
            TencentConfigKey::SecretId => self.secret_id = Some(value),
            TencentConfigKey::SecretKey => self.secret_key = Some(Secret::new(value)),
            TencentConfigKey::Token => self.token = Some(Secret::new(value)),
            TencentConfigKey::Region => self.region = Some(value),
            TencentConfigKey::Endpoint => self.endpoint = Some(value),
            _ => {}
        }
        self
    }

    /// SecretId and SecretKey.
    pub fn credentials(mut self, secret_id: impl Into<String>, secret_key: impl Into<String>) -> Self {
        self.secret_id = Some(secret_id.into());
        self.secret_key = Some(Secret::new(secret_key));
        self
    }

    /// STS token, for temporary credentials.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token));
        self
    }

    /// A TKE pod's web identity: the token in `token_file` (read again on
    /// every refresh) is exchanged for the role's keys with
    /// `AssumeRoleWithWebIdentity`.
    pub fn oidc_role(
        mut self,
        role_arn: impl Into<String>,
        provider_id: impl Into<String>,
        token_file: impl Into<String>,
    ) -> Self {
        let (role_arn, provider_id, token_file) = (role_arn.into(), provider_id.into(), token_file.into());
        self.oidc = Some(TkeOidc { role_arn, provider_id, token_file, region: None });
        self
    }

    /// Region; always sent (`X-TC-Region`), as objects live in one region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Endpoint URL, instead of the region's.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// How long instances of a call that may have started are watched for
    /// their operation to show before they count as not started and are
    /// sent again (default 30 s: CVM may show a new operation late).
    pub fn settle_grace(mut self, grace: Duration) -> Self {
        self.settle_grace = Some(grace);
        self
    }

    keypair_binder_core::client_setters!();

    /// Checks the settings before any call: credentials present and without
    /// surrounding spaces (the SDKs refuse those too), a region, an HTTPS
    /// endpoint (plain http only on loopback or with `allow_http`).
    /// The keys given (settings, environment, profiles), if any.
    pub(crate) fn given_key(&self) -> Option<Credentials> {
        let (id, key) = (self.secret_id.as_ref()?, self.secret_key.as_ref()?);
        Some(Credentials { access_key: id.clone(), secret_key: key.clone(), token: self.token.clone() })
    }

    pub(crate) fn resolve(&self) -> Result<(kit::Credentials, String, Url), Error> {
        if let Some(name) = &self.missing_profile {
            return Err(Error::config(PROVIDER, format!("profile {name:?} has no keys in ~/.tccli/{name}.credential")));
        }
        let given = self.given_key();
        if let Some(key) = &given {
            let padded = |v: &str| v.trim() != v;
            if padded(&key.access_key) || padded(key.secret_key.expose()) {
                return Err(Error::config(PROVIDER, "the SecretId or SecretKey has leading or trailing spaces"));
            }
        }
        let sts = |exchange: Exchange, role_arn: &str, region: Option<&str>| -> Result<Box<Sts>, Error> {
            let endpoint = self.client.sts_endpoint_or(PROVIDER, default_sts_endpoint)?;
            let region = region.unwrap_or("ap-guangzhou").to_string();
            let session_name = self.client.session_name();
            Ok(Box::new(Sts { endpoint, region, role_arn: role_arn.to_string(), session_name, exchange }))
        };
        // Keys given, then a TKE pod's web identity, then the CVM's role.
        let credentials = match (&given, &self.oidc) {
            (None, Some(oidc)) => {
                let exchange = Exchange::WebIdentity { provider_id: oidc.provider_id.clone() };
                let source = kit::RoleSource::web_identity(
                    sts(exchange, &oidc.role_arn, oidc.region.as_deref())?,
                    &oidc.token_file,
                );
                kit::Credentials::new(Arc::new(source))
            }
            _ => kit::credentials_or_role(
                PROVIDER,
                &self.client,
                given.map(kit::Credential::AccessKey),
                &instance_role::METADATA,
                "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are not set (nor a TKE web identity, nor a tccli profile, nor ~/.tencentcloud/credentials)",
            )?,
        };
        // A role in another account, assumed with whatever the chain found.
        let credentials = match &self.client.assume_role {
            Some(arn) => {
                let source = kit::RoleSource::assumed(sts(Exchange::AssumeRole, arn, None)?, credentials);
                kit::Credentials::new(Arc::new(source))
            }
            None => credentials,
        };
        let region =
            self.region.clone().ok_or_else(|| Error::config(PROVIDER, "missing region: set TENCENTCLOUD_REGION"))?;
        check_region(PROVIDER, &region)?;
        let endpoint = match &self.endpoint {
            Some(e) => Url::parse(e).map_err(|e| Error::config(PROVIDER, format!("invalid endpoint: {e}")))?,
            None => default_endpoint(&region),
        };
        check_endpoint(PROVIDER, &endpoint, self.client.allow_http)?;
        Ok((credentials, region, endpoint))
    }
}

/// The regional host, `cvm.<region>.tencentcloudapi.com`: it serves every
/// region, and the finance regions only through it.
pub fn default_endpoint(region: &str) -> Url {
    Url::parse(&format!("https://cvm.{region}.tencentcloudapi.com/"))
        .unwrap_or_else(|_| Url::parse("https://cvm.tencentcloudapi.com/").expect("static URL"))
}

fn ini_credentials(env: &dyn ConfigEnv) -> Vec<(String, String)> {
    let paths: Vec<PathBuf> = match env.first_var(TencentConfigKey::CredentialsFile.env_names()) {
        Some(p) => vec![PathBuf::from(p)],
        None => {
            let mut paths: Vec<PathBuf> =
                env.home_dir().map(|h| h.join(".tencentcloud").join("credentials")).into_iter().collect();
            paths.push(PathBuf::from("/etc/tencentcloud/credentials"));
            paths
        }
    };
    paths.iter().find_map(|p| env.read_file(p)).map(|text| ini_section(&text, "default")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use keypair_binder_core::env::StaticEnv;

    #[test]
    fn environment_wins_then_tccli_then_ini() {
        let credential = r#"{"secretId": "AKIDcli", "secretKey": "cli-key", "token": "cli-token"}"#;
        let configure = r#"{"_sys_param": {"region": "ap-shanghai", "output": "json"}, "cvm": {}}"#;
        let ini = "[default]\nsecret_id = AKIDini\nsecret_key = ini-key\n";
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_file("/home/u/.tccli/default.credential", credential)
            .with_file("/home/u/.tccli/default.configure", configure)
            .with_file("/home/u/.tencentcloud/credentials", ini);
        let builder = TencentBuilder::from_env_with(&env);
        let (creds, (_, region, endpoint)) = (builder.given_key().unwrap(), builder.resolve().unwrap());
        assert_eq!((creds.access_key.as_str(), creds.secret_key.expose()), ("AKIDcli", "cli-key"));
        assert_eq!(creds.token.as_ref().map(|t| t.expose()), Some("cli-token"));
        assert_eq!(
            (region.as_str(), endpoint.as_str()),
            ("ap-shanghai", "https://cvm.ap-shanghai.tencentcloudapi.com/")
        );

        let env = env.with_var("TCCLI_PROFILE", "none").with_var("TENCENTCLOUD_REGION", "ap-guangzhou");
        let builder = TencentBuilder::from_env_with(&env);
        let (creds, (_, region, _)) = (builder.given_key().unwrap(), builder.resolve().unwrap());
        assert_eq!((creds.access_key.as_str(), region.as_str()), ("AKIDini", "ap-guangzhou"));
        assert!(creds.token.is_none());

        let env = env
            .with_var("TENCENTCLOUD_SECRET_ID", "AKIDenv")
            .with_var("TENCENTCLOUD_SECRET_KEY", "env-key")
            .with_var("TENCENTCLOUD_SECURITY_TOKEN", "env-token");
        let creds = TencentBuilder::from_env_with(&env).given_key().unwrap();
        assert_eq!(creds.access_key, "AKIDenv");
        assert_eq!(creds.token.as_ref().map(|t| t.expose()), Some("env-token"));
    }

    #[test]
    fn bad_settings_are_refused_before_any_call() {
        let ok = || TencentBuilder::new().credentials("AKID", "key").region("ap-guangzhou");
        let cases = [
            ("no credentials", TencentBuilder::new().region("ap-guangzhou"), "TENCENTCLOUD_SECRET_ID"),
            ("padded key", TencentBuilder::new().credentials("AKID ", "key").region("ap-guangzhou"), "spaces"),
            ("no region", TencentBuilder::new().credentials("AKID", "key"), "TENCENTCLOUD_REGION"),
            ("bad region", ok().region("ap guangzhou"), "malformed region"),
            ("remote http", ok().endpoint("http://cvm.example.com"), "http"),
            ("not a URL", ok().endpoint("cvm example"), "invalid endpoint"),
        ];
        for (name, builder, expected) in cases {
            let err = builder.resolve().err().unwrap_or_else(|| panic!("{name}: accepted"));
            assert!(matches!(err, Error::Config { .. }), "{name}: {err}");
            assert!(err.to_string().contains(expected), "{name}: {err}");
            assert!(!err.to_string().contains("key\""), "{name}: {err}");
        }
        assert!(ok().endpoint("http://127.0.0.1:8080").resolve().is_ok(), "loopback http is fine");
    }

    #[test]
    fn keys_come_before_a_tke_identity_which_comes_before_the_cvm_role() {
        let tke = StaticEnv::new()
            .with_var("TENCENTCLOUD_REGION", "ap-guangzhou")
            .with_var("TKE_ROLE_ARN", "qcs::cam::uin/1:roleName/r")
            .with_var("TKE_PROVIDER_ID", "cls-1")
            .with_var("TKE_WEB_IDENTITY_TOKEN_FILE", "/t");
        let source = |env: &StaticEnv| TencentBuilder::from_env_with(env).resolve().unwrap().0.source_name();
        assert_eq!(source(&tke), "tke_oidc");
        let keys = tke.clone().with_var("TENCENTCLOUD_SECRET_ID", "AKID").with_var("TENCENTCLOUD_SECRET_KEY", "k");
        assert_eq!(source(&keys), "static");
        assert_eq!(source(&StaticEnv::new().with_var("TENCENTCLOUD_REGION", "ap-guangzhou")), "cvm_role");
        let assumed = TencentBuilder::from_env_with(&keys).assume_role("qcs::cam::uin/2:roleName/x").resolve().unwrap();
        assert_eq!(assumed.0.source_name(), "assume_role");
    }

    #[test]
    fn a_named_profile_wins_over_the_environment_and_a_missing_one_fails_at_build() {
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_var("TENCENTCLOUD_SECRET_ID", "AKIDenv")
            .with_var("TENCENTCLOUD_SECRET_KEY", "env")
            .with_file("/home/u/.tccli/prod.credential", r#"{"secretId":"AKIDprod","secretKey":"kp"}"#)
            .with_file("/home/u/.tccli/prod.configure", r#"{"_sys_param":{"region":"ap-shanghai"}}"#);
        let b = TencentBuilder::from_env_with(&env).profile_with("prod", &env);
        assert_eq!(b.secret_id.as_deref(), Some("AKIDprod"));
        assert_eq!(b.region.as_deref(), Some("ap-shanghai"));
        assert!(!b.client.instance_role);
        let err = TencentBuilder::new().region("ap-guangzhou").profile_with("nope", &env).resolve().unwrap_err();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }
}
