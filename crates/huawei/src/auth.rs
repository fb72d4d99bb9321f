//! Authentication of KPS calls: AK/SK signatures, or IAM tokens that are
//! obtained, cached and refreshed before they expire. Also resolves the
//! project id when it was not configured. Setup calls go through the
//! engine's [`Net`], so they are counted and stopped with the run.

use std::sync::Mutex as SyncMutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use http::Method;
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use keypair_binder_core::http::HttpResponse;
use keypair_binder_core::kit::{Net, OutgoingRequest, endpoint_uri};
use keypair_binder_core::{Failure, FailureKind, Secret};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::config::HuaweiAuth;
use crate::errors::{failure_of, snippet};
use crate::signer;
use crate::wire::{self, ProjectScope, Projects, TokenResponse};

/// Refresh a token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(3600);
/// Assumed lifetime of a token whose answer gives none (IAM tokens last 24 h).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(23 * 3600);

const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");

struct CachedToken {
    value: Secret,
    refresh_at: Instant,
}

/// Signs or authorises requests; holds the token cache and the project id.
pub(crate) struct Authenticator {
    auth: HuaweiAuth,
    iam: Option<Url>,
    region: Option<String>,
    project: SyncMutex<Option<String>>,
    token: Mutex<Option<CachedToken>>,
    /// IAM refused the password: never ask again with it.
    refused: SyncMutex<Option<Failure>>,
}

impl Authenticator {
    pub fn new(auth: HuaweiAuth, iam: Option<Url>, region: Option<String>, project: Option<String>) -> Self {
        let token = match &auth {
            HuaweiAuth::Token(t) => Some(CachedToken { value: t.clone(), refresh_at: far_future() }),
            _ => None,
        };
        Self {
            auth,
            iam,
            region,
            project: SyncMutex::new(project),
            token: Mutex::new(token),
            refused: SyncMutex::new(None),
        }
    }

    pub fn mode(&self) -> &'static str {
        self.auth.mode()
    }

    /// Whether a 401 may be cured by a fresh token (password mode only).
    pub fn can_refresh(&self) -> bool {
        matches!(self.auth, HuaweiAuth::Password { .. })
    }

    /// Forgets the cached token, so the next call obtains a new one.
    pub async fn invalidate(&self) {
        if self.can_refresh() {
            *self.token.lock().await = None;
        }
    }

    /// The project id, once resolved.
    pub fn project(&self) -> Option<String> {
        self.project.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_project(&self, id: String) {
        self.project.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(id);
    }

    /// Resolves the project id: configured, from the token's scope, or looked up in IAM.
    pub async fn resolve_project(&self, net: &dyn Net) -> Result<String, Failure> {
        if let Some(p) = self.project() {
            return Ok(p);
        }
        if self.can_refresh() {
            self.token(net).await?;
            if let Some(p) = self.project() {
                return Ok(p);
            }
        }
        let project = self.lookup_project(net).await?;
        self.set_project(project.clone());
        Ok(project)
    }

    /// Adds the headers that authenticate `request` at `now`.
    pub async fn authorize(
        &self,
        request: &mut OutgoingRequest,
        project: Option<&str>,
        now: DateTime<Utc>,
        net: &dyn Net,
    ) -> Result<(), Failure> {
        match &self.auth {
            HuaweiAuth::AkSk(aksk) => {
                signer::sign_outgoing(request, aksk, project, now);
                Ok(())
            }
            HuaweiAuth::Token(_) | HuaweiAuth::Password { .. } => {
                let token = self.token(net).await?;
                let mut value =
                    HeaderValue::from_str(token.expose()).map_err(|_| auth_failure("token is not valid HTTP"))?;
                value.set_sensitive(true);
                request.headers.insert(X_AUTH_TOKEN, value);
                Ok(())
            }
        }
    }

    async fn token(&self, net: &dyn Net) -> Result<Secret, Failure> {
        if let Some(f) = self.refused.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(f);
        }
        let mut cached = self.token.lock().await;
        if let Some(t) = cached.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let HuaweiAuth::Password { user, password, domain } = &self.auth else {
            return cached.as_ref().map(|t| t.value.clone()).ok_or_else(|| auth_failure("no token"));
        };
        let iam = self.iam.as_ref().ok_or_else(|| auth_failure("no IAM endpoint"))?;
        let project = self.project();
        let scope = match (&project, &self.region) {
            (Some(id), _) => ProjectScope::Id(id),
            (None, Some(region)) => ProjectScope::Name(region),
            (None, None) => return Err(auth_failure("neither a project id nor a region to scope the token to")),
        };
        let body = wire::token_request_body(user, password, domain, scope);
        let uri = endpoint_uri(iam, "/v3/auth/tokens", "nocatalog=true")?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json;charset=utf8"));
        let request = OutgoingRequest::new(Method::POST, uri, "iam:CreateToken")
            .with_headers(headers)
            .with_body(body)
            .with_request_id_header("x-request-id");
        // A transport error is transient: the engine retries the call that needed the token.
        let response = net.send(request).await.map_err(|e| e.to_failure().retryable(true))?;
        if !response.is_success() {
            let failure = token_refused(&response);
            if failure.kind == FailureKind::Auth {
                *self.refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure.clone());
            }
            return Err(failure);
        }
        let value = response
            .header("x-subject-token")
            .map(Secret::new)
            .ok_or_else(|| auth_failure("IAM answered without X-Subject-Token"))?;
        let parsed: TokenResponse = serde_json::from_slice(&response.body).unwrap_or_default();
        let token = parsed.token.unwrap_or_default();
        let lifetime = token
            .expires_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .and_then(|at| (at.with_timezone(&Utc) - Utc::now()).to_std().ok())
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        if let Some(id) = token.project.and_then(|p| p.id) {
            self.set_project(id);
        }
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN.min(lifetime / 2));
        tracing::debug!(?lifetime, "obtained IAM token");
        *cached = Some(CachedToken { value: value.clone(), refresh_at });
        Ok(value)
    }

    async fn lookup_project(&self, net: &dyn Net) -> Result<String, Failure> {
        let region =
            self.region.as_deref().ok_or_else(|| config_failure("no project id and no region to look it up by"))?;
        let iam = self.iam.as_ref().ok_or_else(|| config_failure("no project id and no IAM endpoint"))?;
        let query = vec![("name".to_string(), region.to_string())];
        let uri = endpoint_uri(iam, "/v3/projects", &signer::canonical_query(&query))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(wire::CONTENT_TYPE_JSON));
        let mut request = OutgoingRequest::new(Method::GET, uri, "iam:KeystoneListProjects")
            .with_headers(headers)
            .with_request_id_header("x-request-id");
        self.authorize(&mut request, None, Utc::now(), net).await?;
        let response: HttpResponse = net.send(request).await.map_err(|e| e.to_failure())?;
        if !response.is_success() {
            return Err(failure_of(&response).0);
        }
        let projects: Projects = serde_json::from_slice(&response.body)
            .map_err(|_| config_failure(&format!("unreadable project list: {}", snippet(&response.body))))?;
        match projects.projects.as_slice() {
            [one] => one.id.clone().ok_or_else(|| config_failure("project without an id")),
            list => {
                Err(config_failure(&format!("{} projects named {region}; set HUAWEICLOUD_SDK_PROJECT_ID", list.len())))
            }
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
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
