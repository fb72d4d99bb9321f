//! Building a [`HuaweiBinder`](crate::HuaweiBinder): explicit settings, the
//! SDK's and Terraform's environment variables, and `~/.huaweicloud/credentials`.

use std::path::PathBuf;

use keypair_binder_core::env::{ConfigEnv, SystemEnv};
use keypair_binder_core::http::{ClientSettings, check_endpoint};
pub use keypair_binder_core::kit::Polling;
use keypair_binder_core::{Error, Secret};
use url::Url;

use crate::signer::AkSk;

pub(crate) const PROVIDER: &str = "huawei";

/// Region ids the official SDK's `KpsRegion` knows.
pub const REGIONS: &[&str] = &[
    "cn-north-4",
    "cn-north-1",
    "cn-north-2",
    "cn-north-9",
    "cn-north-11",
    "cn-north-12",
    "cn-east-2",
    "cn-east-3",
    "cn-east-4",
    "cn-east-5",
    "cn-south-1",
    "cn-south-2",
    "cn-south-4",
    "cn-southwest-2",
    "cn-southwest-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "af-south-1",
    "af-north-1",
    "la-south-2",
    "la-north-2",
    "sa-brazil-1",
    "na-mexico-1",
    "me-east-1",
    "tr-west-1",
    "my-kualalumpur-1",
    "ru-moscow-1",
];

/// How requests are authenticated.
#[derive(Clone)]
#[non_exhaustive]
pub enum HuaweiAuth {
    /// AK/SK signing (`SDK-HMAC-SHA256`), optionally temporary with a security token.
    AkSk(AkSk),
    /// An IAM token obtained elsewhere (`X-Auth-Token`).
    Token(Secret),
    /// An IAM user's password, traded for a project-scoped token and refreshed.
    Password {
        /// IAM user name.
        user: String,
        /// IAM user password.
        password: Secret,
        /// Account (domain) name.
        domain: String,
    },
}

impl HuaweiAuth {
    /// The mode's name, for messages.
    pub fn mode(&self) -> &'static str {
        match self {
            Self::AkSk(_) => "AK/SK",
            Self::Token(_) => "IAM token",
            Self::Password { .. } => "IAM password",
        }
    }
}

/// What was looked for before the metadata service, for messages.
pub(crate) const MISSING_CREDENTIALS: &str = "HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK are not set (nor HW_ACCESS_KEY/HW_SECRET_KEY, HW_AUTH_TOKEN, HW_USER_NAME/HW_USER_PASSWORD/HW_DOMAIN_NAME, nor ~/.huaweicloud/credentials)";

/// A setting, with the environment variables that supply it (first wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HuaweiConfigKey {
    /// Access key.
    AccessKey,
    /// Secret key.
    SecretKey,
    /// Security token of temporary credentials.
    SecurityToken,
    /// Project id.
    ProjectId,
    /// Region id.
    Region,
    /// IAM endpoint.
    IamEndpoint,
    /// A ready IAM token.
    AuthToken,
    /// IAM user name.
    UserName,
    /// IAM user password.
    UserPassword,
    /// Account (domain) name.
    DomainName,
    /// Profile file path.
    CredentialsFile,
    /// The identity provider of an OIDC ID token (`iam::<account>:identityprovider:<name>`).
    OidcProviderUrn,
    /// The agency the token is exchanged for (`iam::<account>:agency:<name>`).
    OidcAgencyUrn,
    /// The file holding the OIDC ID token (read again on every refresh).
    OidcTokenFile,
    /// The session name of the agency.
    OidcSessionName,
    /// The STS endpoint URL.
    StsEndpoint,
    /// The identity provider of a federated ID token (IAM).
    IdpId,
    /// The file holding that ID token (read again on every refresh).
    IdTokenFile,
    /// The pod identity endpoint (CCE), answered with an agency's keys.
    PodCredentialsUri,
    /// The file holding the pod's authorization token.
    PodTokenFile,
}

impl HuaweiConfigKey {
    /// Environment variables for this key: the official SDK's first, then Terraform's.
    pub fn env_names(self) -> &'static [&'static str] {
        match self {
            Self::AccessKey => &["HUAWEICLOUD_SDK_AK", "HW_ACCESS_KEY", "OS_ACCESS_KEY"],
            Self::SecretKey => &["HUAWEICLOUD_SDK_SK", "HW_SECRET_KEY", "OS_SECRET_KEY"],
            Self::SecurityToken => &["HUAWEICLOUD_SDK_SECURITY_TOKEN", "HW_SECURITY_TOKEN"],
            Self::ProjectId => &["HUAWEICLOUD_SDK_PROJECT_ID", "HW_PROJECT_ID"],
            Self::Region => &["HW_REGION_NAME", "OS_REGION_NAME"],
            Self::IamEndpoint => &["HUAWEICLOUD_SDK_IAM_ENDPOINT"],
            Self::AuthToken => &["HW_AUTH_TOKEN"],
            Self::UserName => &["HW_USER_NAME"],
            Self::UserPassword => &["HW_USER_PASSWORD"],
            Self::DomainName => &["HW_DOMAIN_NAME"],
            Self::CredentialsFile => &["HUAWEICLOUD_SDK_CREDENTIALS_FILE"],
            Self::OidcProviderUrn => &["HUAWEICLOUD_OIDC_PROVIDER_URN"],
            Self::OidcAgencyUrn => &["HUAWEICLOUD_OIDC_AGENCY_URN"],
            Self::OidcTokenFile => &["HUAWEICLOUD_OIDC_TOKEN_FILE"],
            Self::OidcSessionName => &["HUAWEICLOUD_OIDC_SESSION_NAME"],
            Self::StsEndpoint => &["HUAWEICLOUD_SDK_STS_ENDPOINT"],
            Self::IdpId => &["HUAWEICLOUD_SDK_IDP_ID"],
            Self::IdTokenFile => &["HUAWEICLOUD_SDK_ID_TOKEN_FILE"],
            Self::PodCredentialsUri => &["HC_CONTAINER_CREDENTIALS_FULL_URI"],
            Self::PodTokenFile => &["HC_CONTAINER_AUTHORIZATION_TOKEN_FILE"],
        }
    }
}

/// Settings of a Huawei binder. Holds secrets, so no `Debug`.
#[derive(Clone, Default)]
pub struct HuaweiBuilder {
    pub(crate) region: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) iam_endpoint: Option<String>,
    pub(crate) ecs_endpoint: Option<String>,
    pub(crate) project_id: Option<String>,
    pub(crate) auth: Option<HuaweiAuth>,
    pub(crate) client: ClientSettings,
    pub(crate) polling: Polling,
    /// An OIDC agency: the identity provider, the agency, the token file.
    pub(crate) oidc: Option<(String, String, String)>,
    /// A federated ID token: the identity provider, the token file.
    pub(crate) federation: Option<(String, String)>,
    /// A pod identity: the endpoint, the token file.
    pub(crate) pod: Option<(String, String)>,
    /// A named profile was asked for but has no keys in the credentials file.
    pub(crate) missing_profile: Option<String>,
}

impl HuaweiBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the process environment and `~/.huaweicloud/credentials`.
    pub fn from_env() -> Self {
        Self::from_env_with(&SystemEnv)
    }

    /// Reads an injected environment.
    pub fn from_env_with(env: &dyn ConfigEnv) -> Self {
        let var = |key: HuaweiConfigKey| env.first_var(key.env_names());
        let profile = profile(env);
        let from_profile = |name: &str| profile.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());

        let mut builder = Self::new();
        builder.region = var(HuaweiConfigKey::Region);
        builder.project_id = var(HuaweiConfigKey::ProjectId).or_else(|| from_profile("project_id"));
        builder.iam_endpoint = var(HuaweiConfigKey::IamEndpoint).or_else(|| from_profile("iam_endpoint"));
        if let Some(region) = &builder.region {
            let name = format!("HUAWEICLOUD_SDK_REGION_KPS_{}", region.to_ascii_uppercase().replace('-', "_"));
            builder.endpoint = env.var(&name).and_then(|v| v.split(',').next().map(|s| s.trim().to_string()));
        }
        let aksk = |ak: Option<String>, sk: Option<String>, token: Option<String>| {
            Some(HuaweiAuth::AkSk(AkSk {
                access_key: ak?,
                secret_key: Secret::new(sk?),
                token: token.map(Secret::new),
            }))
        };
        builder.auth =
            aksk(var(HuaweiConfigKey::AccessKey), var(HuaweiConfigKey::SecretKey), var(HuaweiConfigKey::SecurityToken))
                .or_else(|| var(HuaweiConfigKey::AuthToken).map(|t| HuaweiAuth::Token(Secret::new(t))))
                .or_else(|| {
                    Some(HuaweiAuth::Password {
                        user: var(HuaweiConfigKey::UserName)?,
                        password: Secret::new(var(HuaweiConfigKey::UserPassword)?),
                        domain: var(HuaweiConfigKey::DomainName)?,
                    })
                })
                .or_else(|| aksk(from_profile("ak"), from_profile("sk"), from_profile("security_token")));
        // The default chain ends with the ECS agency, from the metadata service.
        builder.client = builder.client.with_instance_role(true, None);
        builder.client.sts_endpoint = var(HuaweiConfigKey::StsEndpoint);
        builder.client.role_session_name = var(HuaweiConfigKey::OidcSessionName);
        // In the environment, a federated ID token comes before the AK/SK; in the profile, after.
        let federation = |idp: Option<String>, file: Option<String>| Some((idp?, file?));
        let env_federation = federation(var(HuaweiConfigKey::IdpId), var(HuaweiConfigKey::IdTokenFile));
        if env_federation.is_some() {
            builder.auth = None;
            builder.federation = env_federation;
        } else if builder.auth.is_none() {
            builder.federation = federation(from_profile("idp_id"), from_profile("id_token_file"));
        }
        builder.pod = match (var(HuaweiConfigKey::PodCredentialsUri), var(HuaweiConfigKey::PodTokenFile)) {
            (Some(uri), Some(file)) => Some((uri, file)),
            _ => None,
        };
        // The SDK's chain starts with an OIDC agency (STS v5), before any key.
        if let (Some(provider), Some(agency), Some(file)) = (
            var(HuaweiConfigKey::OidcProviderUrn),
            var(HuaweiConfigKey::OidcAgencyUrn),
            var(HuaweiConfigKey::OidcTokenFile),
        ) {
            builder.oidc = Some((provider, agency, file));
            builder.auth = None;
            builder.federation = None;
        }
        builder
    }

    /// Keys and the project id (and the IAM endpoint, unless set) from the
    /// section `[name]` of `~/.huaweicloud/credentials` (or
    /// `HUAWEICLOUD_SDK_CREDENTIALS_FILE`), with the SDK's keys (`ak`, `sk`,
    /// `security_token`, `project_id`, `iam_endpoint`), instead of the
    /// default chain. The official SDKs read only `[basic]` and `[global]`,
    /// and KooCLI keeps its profiles encrypted, so a named section of the
    /// SDK's own file is where several Huawei accounts live side by side. A
    /// section without keys is an error at `build`. Call it before
    /// `project_id`: the profile's project (or none, to look it up) replaces
    /// the one read from the environment.
    pub fn profile(self, name: impl Into<String>) -> Self {
        self.profile_with(name, &SystemEnv)
    }

    /// [`profile`](Self::profile) from an injected environment.
    pub fn profile_with(mut self, name: impl Into<String>, env: &dyn ConfigEnv) -> Self {
        let name = name.into();
        let pairs = profile_section(env, &name);
        let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        self.auth = match (value("ak"), value("sk")) {
            (Some(access_key), Some(sk)) => Some(HuaweiAuth::AkSk(AkSk {
                access_key,
                secret_key: Secret::new(sk),
                token: value("security_token").map(Secret::new),
            })),
            _ => None,
        };
        self.oidc = None;
        self.federation = None;
        self.pod = None;
        // The profile's keys, or nothing: never the VM's agency instead.
        self.client.instance_role = false;
        // A project belongs to an account: the profile's, else looked up with its keys.
        self.project_id = value("project_id");
        self.iam_endpoint = self.iam_endpoint.or(value("iam_endpoint"));
        self.missing_profile = self.auth.is_none().then_some(name);
        self
    }

    /// An OIDC agency (STS v5): the ID token in `token_file` (read again on
    /// every refresh) is exchanged for the agency's keys.
    pub fn oidc_agency(
        mut self,
        provider_urn: impl Into<String>,
        agency_urn: impl Into<String>,
        token_file: impl Into<String>,
    ) -> Self {
        self.oidc = Some((provider_urn.into(), agency_urn.into(), token_file.into()));
        self
    }

    /// Region id (`cn-north-4`).
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// KPS endpoint URL, instead of the region's.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// ECS endpoint URL, for reading each VM's key pair and state before a
    /// run (default: the region's, or the KPS endpoint when that was given).
    pub fn ecs_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.ecs_endpoint = Some(endpoint.into());
        self
    }

    /// IAM endpoint URL, for tokens and project lookup.
    pub fn iam_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.iam_endpoint = Some(endpoint.into());
        self
    }

    /// Project id; looked up from IAM when not given.
    pub fn project_id(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = Some(project_id.into());
        self
    }

    /// AK/SK signing (named as on the other clouds' builders).
    pub fn credentials(mut self, access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        self.auth = Some(HuaweiAuth::AkSk(AkSk {
            access_key: access_key.into(),
            secret_key: Secret::new(secret_key),
            token: None,
        }));
        self
    }

    /// AK/SK signing; the earlier name of [`credentials`](Self::credentials).
    #[deprecated(since = "0.1.0", note = "use `credentials`, as on every other cloud's builder")]
    pub fn access_key(self, access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        self.credentials(access_key, secret_key)
    }

    /// Temporary AK/SK with their security token.
    pub fn temporary_access_key(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
        security_token: impl Into<String>,
    ) -> Self {
        self.auth = Some(HuaweiAuth::AkSk(AkSk {
            access_key: access_key.into(),
            secret_key: Secret::new(secret_key),
            token: Some(Secret::new(security_token)),
        }));
        self
    }

    /// A ready IAM token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some(HuaweiAuth::Token(Secret::new(token)));
        self
    }

    /// IAM user name, password and account name, traded for tokens.
    pub fn password(mut self, user: impl Into<String>, password: impl Into<String>, domain: impl Into<String>) -> Self {
        self.auth =
            Some(HuaweiAuth::Password { user: user.into(), password: Secret::new(password), domain: domain.into() });
        self
    }

    keypair_binder_core::client_setters!();

    /// Task polling.
    pub fn polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    pub(crate) fn resolve(&self) -> Result<Resolved, Error> {
        if let Some(name) = &self.missing_profile {
            return Err(Error::config(
                PROVIDER,
                format!("profile {name:?}: no section [{name}] with ak and sk in ~/.huaweicloud/credentials"),
            ));
        }
        let auth = self.auth.clone();
        let chained = self.oidc.is_some() || self.federation.is_some() || self.pod.is_some();
        if auth.is_none() && !chained && !self.client.instance_role {
            return Err(Error::config(PROVIDER, format!("no credentials: {MISSING_CREDENTIALS}")));
        }
        let known = |r: &String| REGIONS.contains(&r.as_str());
        let endpoint = match (&self.endpoint, &self.region) {
            (Some(e), _) => parse_url(e)?,
            (None, Some(region)) if known(region) => parse_url(&format!("https://kms.{region}.myhuaweicloud.com"))?,
            (None, Some(region)) => {
                return Err(Error::config(
                    PROVIDER,
                    format!("unknown region {region:?}: give the KPS endpoint explicitly"),
                ));
            }
            (None, None) => return Err(Error::config(PROVIDER, "missing region: set HW_REGION_NAME")),
        };
        check_endpoint(PROVIDER, &endpoint, self.client.allow_http)?;
        let ecs_endpoint = match (&self.ecs_endpoint, &self.endpoint, &self.region) {
            (Some(e), _, _) => parse_url(e)?,
            // An explicit KPS endpoint (a proxy, the emulator) serves the reads too.
            (None, Some(_), _) => endpoint.clone(),
            (None, None, Some(region)) => parse_url(&format!("https://ecs.{region}.myhuaweicloud.com"))?,
            (None, None, None) => endpoint.clone(),
        };
        check_endpoint(PROVIDER, &ecs_endpoint, self.client.allow_http)?;
        let iam_endpoint = match (&self.iam_endpoint, &self.region) {
            (Some(e), _) => Some(parse_url(e)?),
            (None, Some(region)) if known(region) => {
                Some(parse_url(&format!("https://iam.{region}.myhuaweicloud.com"))?)
            }
            (None, _) => None,
        };
        if let Some(iam) = &iam_endpoint {
            check_endpoint(PROVIDER, iam, self.client.allow_http)?;
        }
        let needs_iam = matches!(auth, Some(HuaweiAuth::Password { .. })) || self.project_id.is_none();
        if needs_iam && iam_endpoint.is_none() {
            return Err(Error::config(
                PROVIDER,
                "no IAM endpoint to obtain a token or the project id from: set HUAWEICLOUD_SDK_PROJECT_ID, a known region, or HUAWEICLOUD_SDK_IAM_ENDPOINT",
            ));
        }
        if matches!(auth, Some(HuaweiAuth::Token(_))) && self.project_id.is_none() {
            return Err(Error::config(PROVIDER, "token auth needs the project id: set HUAWEICLOUD_SDK_PROJECT_ID"));
        }
        Ok(Resolved {
            auth,
            endpoint,
            ecs_endpoint,
            iam_endpoint,
            region: self.region.clone(),
            project_id: self.project_id.clone(),
        })
    }
}

pub(crate) struct Resolved {
    /// `None`: the ECS agency, from the metadata service.
    pub auth: Option<HuaweiAuth>,
    pub endpoint: Url,
    pub ecs_endpoint: Url,
    pub iam_endpoint: Option<Url>,
    pub region: Option<String>,
    pub project_id: Option<String>,
}

fn parse_url(text: &str) -> Result<Url, Error> {
    Url::parse(text).map_err(|e| Error::config(PROVIDER, format!("invalid endpoint {text:?}: {e}")))
}

/// The `[basic]` section of the SDK's profile file, as key/value pairs.
fn profile(env: &dyn ConfigEnv) -> Vec<(String, String)> {
    profile_section(env, "basic")
}

/// The pairs of one section of the SDK's credentials file.
fn profile_section(env: &dyn ConfigEnv, wanted: &str) -> Vec<(String, String)> {
    let path = match env.first_var(HuaweiConfigKey::CredentialsFile.env_names()) {
        Some(p) => PathBuf::from(p),
        None => match env.home_dir() {
            Some(home) => home.join(".huaweicloud").join("credentials"),
            None => return Vec::new(),
        },
    };
    let Some(text) = env.read_file(&path) else { return Vec::new() };
    let mut section = String::new();
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
        } else if section == wanted
            && let Some((k, v)) = line.split_once('=')
            && !v.trim().is_empty()
        {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use keypair_binder_core::env::StaticEnv;

    #[test]
    fn official_names_win_over_terraform_and_profile() {
        let env = StaticEnv::new()
            .with_var("HUAWEICLOUD_SDK_AK", "AK1")
            .with_var("HUAWEICLOUD_SDK_SK", "SK1")
            .with_var("HW_ACCESS_KEY", "AK2")
            .with_var("HW_SECRET_KEY", "SK2")
            .with_var("HW_REGION_NAME", "cn-north-4")
            .with_var("HW_PROJECT_ID", "p1");
        let resolved = HuaweiBuilder::from_env_with(&env).resolve().unwrap();
        assert!(
            matches!(&resolved.auth, Some(HuaweiAuth::AkSk(a)) if a.access_key == "AK1" && a.secret_key.expose() == "SK1")
        );
        assert_eq!(resolved.endpoint.as_str(), "https://kms.cn-north-4.myhuaweicloud.com/");
        assert_eq!(resolved.project_id.as_deref(), Some("p1"));
    }

    #[test]
    fn terraform_token_and_password_modes() {
        let env = StaticEnv::new()
            .with_var("HW_AUTH_TOKEN", "tok")
            .with_var("HW_REGION_NAME", "cn-east-3")
            .with_var("HW_PROJECT_ID", "p");
        assert!(matches!(HuaweiBuilder::from_env_with(&env).resolve().unwrap().auth, Some(HuaweiAuth::Token(_))));
        let env = StaticEnv::new()
            .with_var("HW_USER_NAME", "u")
            .with_var("HW_USER_PASSWORD", "pw")
            .with_var("HW_DOMAIN_NAME", "acct")
            .with_var("HW_REGION_NAME", "cn-east-3");
        let resolved = HuaweiBuilder::from_env_with(&env).resolve().unwrap();
        assert!(matches!(resolved.auth, Some(HuaweiAuth::Password { ref user, .. }) if user == "u"));
        assert_eq!(resolved.iam_endpoint.unwrap().as_str(), "https://iam.cn-east-3.myhuaweicloud.com/");
    }

    #[test]
    fn profile_file_and_region_endpoint_override() {
        let env = StaticEnv::new()
            .with_home("/h")
            .with_var("HW_REGION_NAME", "cn-north-4")
            .with_var("HUAWEICLOUD_SDK_REGION_KPS_CN_NORTH_4", "https://kms.internal.example:8443, https://b")
            .with_file(
                "/h/.huaweicloud/credentials",
                "[global]\nak = G\n\n[basic]\nak = PAK\nsk = PSK\nproject_id = pp\n",
            );
        let resolved = HuaweiBuilder::from_env_with(&env).resolve().unwrap();
        assert!(matches!(&resolved.auth, Some(HuaweiAuth::AkSk(a)) if a.access_key == "PAK"));
        assert_eq!(resolved.project_id.as_deref(), Some("pp"));
        assert_eq!(resolved.endpoint.as_str(), "https://kms.internal.example:8443/");
    }

    #[test]
    fn unknown_region_and_missing_credentials_are_typed_errors() {
        let err = HuaweiBuilder::new().credentials("a", "s").region("mars-1").project_id("p").resolve().err().unwrap();
        assert!(err.to_string().contains("unknown region"), "{err}");
        assert!(
            HuaweiBuilder::new()
                .credentials("a", "s")
                .region("mars-1")
                .endpoint("https://kms.mars")
                .project_id("p")
                .resolve()
                .is_ok()
        );
        // No keys anywhere: the default chain ends with the ECS agency; without it, a typed error.
        let chain = HuaweiBuilder::from_env_with(&StaticEnv::new()).region("cn-north-4").resolve().unwrap();
        assert!(chain.auth.is_none());
        let err = HuaweiBuilder::from_env_with(&StaticEnv::new()).instance_role(false).resolve().err().unwrap();
        assert!(err.to_string().contains("HUAWEICLOUD_SDK_AK"), "{err}");
        let err = HuaweiBuilder::new()
            .credentials("a", "s")
            .endpoint("http://kms.example.com")
            .project_id("p")
            .resolve()
            .err()
            .unwrap();
        assert!(err.to_string().contains("plain http"), "{err}");
    }

    #[test]
    fn the_chain_starts_with_an_oidc_agency_then_a_federated_token_then_keys() {
        let keys = StaticEnv::new()
            .with_var("HUAWEICLOUD_SDK_AK", "AK1")
            .with_var("HUAWEICLOUD_SDK_SK", "SK1")
            .with_var("HW_REGION_NAME", "cn-north-4")
            .with_var("HUAWEICLOUD_SDK_PROJECT_ID", "p");
        let federated =
            keys.clone().with_var("HUAWEICLOUD_SDK_IDP_ID", "idp").with_var("HUAWEICLOUD_SDK_ID_TOKEN_FILE", "/t");
        let b = HuaweiBuilder::from_env_with(&federated);
        assert!(b.auth.is_none() && b.federation.is_some(), "a federated token comes before the AK/SK");
        let oidc = federated
            .with_var("HUAWEICLOUD_OIDC_PROVIDER_URN", "iam::1:identityprovider:k")
            .with_var("HUAWEICLOUD_OIDC_AGENCY_URN", "iam::1:agency:a")
            .with_var("HUAWEICLOUD_OIDC_TOKEN_FILE", "/t");
        let b = HuaweiBuilder::from_env_with(&oidc);
        assert!(b.oidc.is_some() && b.auth.is_none() && b.federation.is_none(), "OIDC comes first");
        assert!(HuaweiBuilder::from_env_with(&keys).auth.is_some());
    }

    #[test]
    fn a_named_section_wins_over_the_environment_and_a_missing_one_fails_at_build() {
        let env = StaticEnv::new()
            .with_home("/home/u")
            .with_var("HUAWEICLOUD_SDK_AK", "ENVAK")
            .with_var("HUAWEICLOUD_SDK_SK", "envsk")
            .with_var("HUAWEICLOUD_SDK_PROJECT_ID", "penv")
            .with_file(
                "/home/u/.huaweicloud/credentials",
                "[basic]\nak = B\nsk = b\n\n[staging]\nak = S\nsk = s\nproject_id = ps\n\n[other]\nak = O\nsk = o\n",
            );
        let b = HuaweiBuilder::from_env_with(&env).profile_with("staging", &env);
        assert!(matches!(&b.auth, Some(HuaweiAuth::AkSk(k)) if k.access_key == "S"));
        assert_eq!(b.project_id.as_deref(), Some("ps"));
        // The environment's project belongs to the environment's keys: looked up instead.
        assert_eq!(HuaweiBuilder::from_env_with(&env).profile_with("other", &env).project_id, None);
        assert!(!b.client.instance_role);
        let err = HuaweiBuilder::new().region("cn-north-4").profile_with("nope", &env).resolve().err().unwrap();
        assert!(err.to_string().contains("\"nope\""), "{err}");
    }
}
