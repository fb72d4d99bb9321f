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
use keypair_binder_core::env::{ConfigEnv, SystemEnv};
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
    pub federation: Option<&'a (String, String)>,
    pub pod: Option<&'a (String, String)>,
    pub settings: &'a ClientSettings,
    pub iam: Option<Url>,
    pub region: Option<String>,
    pub project: Option<String>,
}

/// The binder's credentials: the mode given, else an OIDC agency, else the
/// ECS agency when the settings allow it; a role to assume wraps them.
pub(crate) fn credentials(chain: Chain<'_>) -> Result<Credentials, Error> {
    let Chain { auth, oidc, federation, pod, settings, iam, region, project } = chain;
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
        (None, None) => match (federation, pod) {
            (Some((idp_id, token_file)), _) => {
                let iam =
                    iam.clone().ok_or_else(|| Error::config(PROVIDER, "a federated ID token needs an IAM endpoint"))?;
                Credentials::new(Arc::new(Federation { iam, idp_id: idp_id.clone(), token_file: token_file.into() }))
            }
            (None, Some((uri, token_file))) => {
                let uri = Url::parse(uri)
                    .map_err(|e| Error::config(PROVIDER, format!("invalid HC_CONTAINER_CREDENTIALS_FULL_URI: {e}")))?;
                Credentials::new(Arc::new(PodIdentity { uri, token_file: token_file.into() }))
            }
            (None, None) => {
                credentials_or_role(PROVIDER, settings, None, &instance_role::METADATA, MISSING_CREDENTIALS)?
            }
        },
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

/// A token file's content, read anew (the token is rotated), trimmed.
fn read_token(path: &std::path::Path, what: &str) -> Result<String, Failure> {
    let text = SystemEnv
        .read_file(path)
        .filter(|t| t.len() <= 64 * 1024)
        .ok_or_else(|| auth_failure(&format!("cannot read the {what} file {}", path.display())))?;
    Ok(text.trim().to_string())
}

/// A federated ID token traded in IAM, unsigned: first for an unscoped token
/// (`X-Idp-Id`, `/v3.0/OS-AUTH/id-token/tokens`), then for temporary keys
/// (`/v3.0/OS-CREDENTIAL/securitytokens`).
struct Federation {
    iam: Url,
    idp_id: String,
    token_file: std::path::PathBuf,
}

#[async_trait]
impl CredentialSource for Federation {
    fn name(&self) -> &'static str {
        "federation"
    }

    async fn load(&self, net: &dyn Net) -> Result<Issued, Failure> {
        let id_token = read_token(&self.token_file, "ID token")?;
        let json = |body: serde_json::Value| serde_json::to_vec(&body).unwrap_or_default();
        let mut first = OutgoingRequest::new(
            Method::POST,
            endpoint_uri(&self.iam, "/v3.0/OS-AUTH/id-token/tokens", "")?,
            "iam:CreateTokenWithIdToken",
        )
        .with_body(json(serde_json::json!({"auth": {"id_token": {"id": id_token}}})))
        .with_request_id_header("x-request-id");
        first.headers.insert(CONTENT_TYPE, HeaderValue::from_static(wire::CONTENT_TYPE_JSON));
        let idp = HeaderValue::from_str(&self.idp_id)
            .map_err(|_| auth_failure("the identity provider id is not a header value"))?;
        first.headers.insert(http::header::HeaderName::from_static("x-idp-id"), idp);
        let answer = net.send(first).await?;
        if !answer.is_success() {
            return Err(token_refused(&answer));
        }
        let token =
            answer.header("x-subject-token").ok_or_else(|| auth_failure("IAM answered without X-Subject-Token"))?;
        let body = serde_json::json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token, "duration_seconds": 21600}}}});
        let mut second = OutgoingRequest::new(
            Method::POST,
            endpoint_uri(&self.iam, "/v3.0/OS-CREDENTIAL/securitytokens", "")?,
            "iam:CreateTemporaryAccessKeyByToken",
        )
        .with_body(json(body))
        .with_request_id_header("x-request-id");
        second.headers.insert(CONTENT_TYPE, HeaderValue::from_static(wire::CONTENT_TYPE_JSON));
        let answer = net.send(second).await?;
        if !answer.is_success() {
            return Err(token_refused(&answer));
        }
        instance_role::read_security_key(&answer.body).map_err(|why| auth_failure(&why))
    }
}

/// A CCE pod's identity: `POST` to the endpoint with the token file's content as `Authorization`.
struct PodIdentity {
    uri: Url,
    token_file: std::path::PathBuf,
}

#[async_trait]
impl CredentialSource for PodIdentity {
    fn name(&self) -> &'static str {
        "pod_identity"
    }

    async fn load(&self, net: &dyn Net) -> Result<Issued, Failure> {
        let token = read_token(&self.token_file, "pod authorization token")?;
        let uri: http::Uri =
            self.uri.as_str().parse().map_err(|_| auth_failure("the pod identity URI is not a URI"))?;
        let mut request = OutgoingRequest::new(Method::POST, uri, "pod:credentials")
            .with_body(b"{}".to_vec())
            .with_timeout(std::time::Duration::from_secs(5));
        request.headers.insert(CONTENT_TYPE, HeaderValue::from_static(wire::CONTENT_TYPE_JSON));
        let mut value =
            HeaderValue::from_str(&token).map_err(|_| auth_failure("the pod token is not a header value"))?;
        value.set_sensitive(true);
        request.headers.insert(http::header::AUTHORIZATION, value);
        let answer = net.send(request).await?;
        if !answer.is_success() {
            return Err(auth_failure(&format!("the pod identity endpoint answered {}", answer.status)));
        }
        instance_role::read_security_key(&answer.body).map_err(|why| auth_failure(&why))
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
