//! How KPS calls are authenticated: the credential source of each mode
//! (AK/SK and IAM tokens given as they are; an IAM user's password traded
//! for a project-scoped token, loaded again before it expires), and the
//! project id lookup a run makes when none was configured. The engine holds
//! the credential and asks for a new one; nothing here keeps state.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::Method;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use keypair_binder_core::http::ClientSettings;
use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::kit::{
    Credential, CredentialSource, Credentials, FixedCredential, Issued, Net, OutgoingRequest, RoleSource,
    credentials_or_role, endpoint_uri,
};
use keypair_binder_core::{Error, Failure, FailureKind, Secret};
use url::Url;

use crate::config::{HuaweiAuth, MISSING_CREDENTIALS, PROVIDER};
use crate::errors::{failure_of, snippet};
use crate::instance_role;
use crate::signer;
use crate::sts::{Exchange, Sts, default_sts_endpoint};
use crate::wire::{self, ProjectScope, Projects, TokenResponse};

/// Assumed lifetime of a token whose answer gives none (IAM tokens last 24 h).
const DEFAULT_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(23 * 3600);

/// Where a binder's credentials come from: its settings.
pub(crate) struct Chain<'a> {
    pub auth: Option<HuaweiAuth>,
    pub oidc: Option<&'a (String, String, String)>,
    pub settings: &'a ClientSettings,
    pub iam: Option<Url>,
    pub region: Option<String>,
    pub project: Option<String>,
}

/// The binder's credentials: the mode given, else an OIDC agency, else the
/// ECS agency when the settings allow it; a role to assume wraps them.
pub(crate) fn credentials(chain: Chain<'_>) -> Result<Credentials, Error> {
    let Chain { auth, oidc, settings, iam, region, project } = chain;
    let sts = |exchange: Exchange, agency_urn: &str| -> Result<Box<Sts>, Error> {
        let endpoint = settings.sts_endpoint_or(PROVIDER, || default_sts_endpoint(region.as_deref()))?;
        let session_name = settings.session_name();
        Ok(Box::new(Sts { endpoint, agency_urn: agency_urn.to_string(), session_name, exchange }))
    };
    let base = match (auth, oidc) {
        (Some(HuaweiAuth::AkSk(key)), _) => Credentials::fixed(Credential::AccessKey(key)),
        (Some(HuaweiAuth::Token(token)), _) => {
            Credentials::new(Arc::new(Named("iam_token", FixedCredential::new(Credential::Token(token)))))
        }
        (Some(HuaweiAuth::Password { user, password, domain }), _) => {
            Credentials::new(Arc::new(IamPassword { user, password, domain, iam, region: region.clone(), project }))
        }
        (None, Some((provider_urn, agency_urn, token_file))) => {
            let exchange = Exchange::Oidc { provider_urn: provider_urn.clone() };
            Credentials::new(Arc::new(RoleSource::web_identity(sts(exchange, agency_urn)?, token_file)))
        }
        (None, None) => credentials_or_role(PROVIDER, settings, None, &instance_role::METADATA, MISSING_CREDENTIALS)?,
    };
    // An agency in another account, assumed with whatever the chain found (AK/SK only).
    match &settings.assume_role {
        Some(agency_urn) => {
            Ok(Credentials::new(Arc::new(RoleSource::assumed(sts(Exchange::Assume, agency_urn)?, base))))
        }
        None => Ok(base),
    }
}

/// A fixed credential under a mode's own name.
struct Named(&'static str, FixedCredential);

#[async_trait]
impl CredentialSource for Named {
    fn name(&self) -> &'static str {
        self.0
    }

    async fn load(&self, net: &dyn Net) -> Result<Issued, Failure> {
        self.1.load(net).await
    }

    fn refreshes(&self) -> bool {
        false
    }
}

/// An IAM user's password, traded for a token scoped to the project (by id,
/// or by the region's name) through IAM `POST /v3/auth/tokens`.
struct IamPassword {
    user: String,
    password: Secret,
    domain: String,
    iam: Option<Url>,
    region: Option<String>,
    project: Option<String>,
}

#[async_trait]
impl CredentialSource for IamPassword {
    fn name(&self) -> &'static str {
        "iam_password"
    }

    async fn load(&self, net: &dyn Net) -> Result<Issued, Failure> {
        let iam = self.iam.as_ref().ok_or_else(|| auth_failure("no IAM endpoint"))?;
        let scope = match (&self.project, &self.region) {
            (Some(id), _) => ProjectScope::Id(id),
            (None, Some(region)) => ProjectScope::Name(region),
            (None, None) => return Err(auth_failure("neither a project id nor a region to scope the token to")),
        };
        let body = wire::token_request_body(&self.user, &self.password, &self.domain, scope);
        let uri = endpoint_uri(iam, "/v3/auth/tokens", "nocatalog=true")?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf8"));
        let request = OutgoingRequest::new(Method::POST, uri, "iam:CreateToken")
            .with_headers(headers)
            .with_body(body)
            .with_request_id_header("x-request-id");
        // No answer is transient: the engine retries the call that needed the token.
        let response = net.send(request).await.map_err(|f| f.retryable(true))?;
        if !response.is_success() {
            return Err(token_refused(&response));
        }
        let value = response
            .header("x-subject-token")
            .map(Secret::new)
            .ok_or_else(|| auth_failure("IAM answered without X-Subject-Token"))?;
        let parsed: TokenResponse = serde_json::from_slice(&response.body).unwrap_or_default();
        let expires_at = parsed.token.and_then(|t| t.expires_at).and_then(|t| DateTime::parse_from_rfc3339(&t).ok());
        Ok(match expires_at {
            Some(at) => Issued::until(Credential::Token(value), at.with_timezone(&Utc)),
            None => Issued::lasting_for(Credential::Token(value), DEFAULT_TOKEN_LIFETIME),
        })
    }
}

/// The project id of `region`, looked up in IAM (`GET /v3/projects?name=`)
/// with the run's credentials: the one project of that name.
pub(crate) async fn lookup_project(net: &dyn Net, iam: Option<&Url>, region: Option<&str>) -> Result<String, Failure> {
    let region = region.ok_or_else(|| config_failure("no project id and no region to look it up by"))?;
    let iam = iam.ok_or_else(|| config_failure("no project id and no IAM endpoint"))?;
    let query = vec![("name".to_string(), region.to_string())];
    let uri = endpoint_uri(iam, "/v3/projects", &signer::canonical_query(&query))?;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(wire::CONTENT_TYPE_JSON));
    let request = OutgoingRequest::new(Method::GET, uri, "iam:KeystoneListProjects")
        .with_headers(headers)
        .with_request_id_header("x-request-id");
    let response: HttpResponse = net.send(request).await?;
    if !response.is_success() {
        let (failure, advice) = failure_of(&response);
        return Err(failure.retryable(advice.retryable));
    }
    let projects: Projects = serde_json::from_slice(&response.body)
        .map_err(|_| config_failure(&format!("unreadable project list: {}", snippet(&response.body))))?;
    match projects.projects.as_slice() {
        [one] => one.id.clone().ok_or_else(|| config_failure("project without an id")),
        list => Err(config_failure(&format!("{} projects named {region}; set HUAWEICLOUD_SDK_PROJECT_ID", list.len()))),
    }
}

fn auth_failure(message: &str) -> Failure {
    Failure::new(FailureKind::Auth, format!("cannot authenticate: {message}"))
}

fn config_failure(message: &str) -> Failure {
    Failure::new(FailureKind::InvalidRequest, format!("cannot resolve the project id: {message}"))
}

fn token_refused(response: &HttpResponse) -> Failure {
    let (mut failure, _) = failure_of(response);
    if matches!(response.status, 400 | 401 | 403 | 404) {
        failure.kind = FailureKind::Auth;
        failure.retryable = false;
    } else {
        // IAM throttled or failed: transient, worth trying again.
        failure.retryable = true;
    }
    failure.message = format!("IAM refused the token request: {}", failure.message);
    failure
}
