//! Authentication of KPS calls: AK/SK signatures, or IAM tokens that are
//! obtained, cached and refreshed before they expire. Also resolves the
//! project id when it was not configured.

use std::time::Duration;

use chrono::{DateTime, Utc};
use keypair_binder_core::engine::RunContext;
use keypair_binder_core::http::{CallInfo, HttpClient, HttpResponse, host_header};
use keypair_binder_core::{Failure, FailureKind, Secret};
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::config::{HuaweiAuth, PROVIDER};
use crate::errors::{failure_of, snippet};
use crate::signer::{self, SignableRequest};
use crate::wire::{self, ProjectScope, Projects, TokenResponse};

/// Refresh a token this long before it expires.
const REFRESH_MARGIN: Duration = Duration::from_secs(3600);
/// Assumed lifetime of a token whose answer gives none (IAM tokens last 24 h).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(23 * 3600);

struct CachedToken {
    value: Secret,
    refresh_at: Instant,
}

/// Signs or authorises requests; holds the token cache.
pub(crate) struct Authenticator {
    auth: HuaweiAuth,
    iam: Option<Url>,
    region: Option<String>,
    project: Mutex<Option<String>>,
    token: Mutex<Option<CachedToken>>,
}

impl Authenticator {
    pub fn new(auth: HuaweiAuth, iam: Option<Url>, region: Option<String>, project: Option<String>) -> Self {
        let token = match &auth {
            HuaweiAuth::Token(t) => Some(CachedToken { value: t.clone(), refresh_at: far_future() }),
            _ => None,
        };
        Self { auth, iam, region, project: Mutex::new(project), token: Mutex::new(token) }
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

    /// The project id: configured, from the token's scope, or looked up in IAM.
    pub async fn project_id(&self, http: &HttpClient, ctx: &RunContext) -> Result<String, Failure> {
        if let Some(p) = self.project.lock().await.clone() {
            return Ok(p);
        }
        if self.can_refresh() {
            self.token(http, ctx).await?;
            if let Some(p) = self.project.lock().await.clone() {
                return Ok(p);
            }
        }
        let project = self.lookup_project(http, ctx).await?;
        *self.project.lock().await = Some(project.clone());
        Ok(project)
    }

    /// Headers that authenticate a request with this body.
    pub async fn headers(
        &self,
        http: &HttpClient,
        ctx: &RunContext,
        request: &SignableRequest<'_>,
        project: Option<&str>,
    ) -> Result<Vec<(String, String)>, Failure> {
        match &self.auth {
            HuaweiAuth::AkSk(aksk) => Ok(signer::sign(request, aksk, project, Utc::now()).headers),
            HuaweiAuth::Token(_) | HuaweiAuth::Password { .. } => {
                let token = self.token(http, ctx).await?;
                Ok(vec![("X-Auth-Token".to_string(), token.expose().to_string())])
            }
        }
    }

    async fn token(&self, http: &HttpClient, ctx: &RunContext) -> Result<Secret, Failure> {
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
        let project = self.project.lock().await.clone();
        let scope = match (&project, &self.region) {
            (Some(id), _) => ProjectScope::Id(id),
            (None, Some(region)) => ProjectScope::Name(region),
            (None, None) => return Err(auth_failure("neither a project id nor a region to scope the token to")),
        };
        let body = wire::token_request_body(user, password, domain, scope);
        let mut url = iam.join("/v3/auth/tokens").map_err(|e| auth_failure(&e.to_string()))?;
        url.set_query(Some("nocatalog=true"));
        let request = http
            .inner()
            .post(url)
            .header("Content-Type", "application/json;charset=utf8")
            .body(body)
            .build()
            .map_err(|e| auth_failure(&e.without_url().to_string()))?;
        ctx.record_call();
        let info = CallInfo {
            provider: PROVIDER,
            action: "iam:CreateToken",
            instances: 0,
            request_id_header: Some("x-request-id"),
        };
        let response = http.send(request, info).await.map_err(|e| e.to_failure())?;
        if !response.is_success() {
            return Err(token_refused(&response));
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
            self.project.lock().await.get_or_insert(id);
        }
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN.min(lifetime / 2));
        tracing::debug!(?lifetime, "obtained IAM token");
        *cached = Some(CachedToken { value: value.clone(), refresh_at });
        Ok(value)
    }

    async fn lookup_project(&self, http: &HttpClient, ctx: &RunContext) -> Result<String, Failure> {
        let region =
            self.region.as_deref().ok_or_else(|| config_failure("no project id and no region to look it up by"))?;
        let iam = self.iam.as_ref().ok_or_else(|| config_failure("no project id and no IAM endpoint"))?;
        let query = vec![("name".to_string(), region.to_string())];
        let mut url = iam.join("/v3/projects").map_err(|e| config_failure(&e.to_string()))?;
        url.set_query(Some(&signer::canonical_query(&query)));
        let host = host_header(&url);
        let headers = vec![("Content-Type".to_string(), wire::CONTENT_TYPE_JSON.to_string())];
        let signable = SignableRequest {
            method: "GET",
            host: &host,
            path: "/v3/projects",
            query: &query,
            headers: &headers,
            body: b"",
        };
        let auth = self.headers(http, ctx, &signable, None).await?;
        let mut request = http.inner().get(url);
        for (name, value) in headers.iter().chain(auth.iter()).filter(|(n, _)| n != "Host") {
            request = request.header(name, value);
        }
        let request = request.build().map_err(|e| config_failure(&e.without_url().to_string()))?;
        ctx.record_call();
        let info = CallInfo {
            provider: PROVIDER,
            action: "iam:KeystoneListProjects",
            instances: 0,
            request_id_header: Some("x-request-id"),
        };
        let response: HttpResponse = http.send(request, info).await.map_err(|e| e.to_failure())?;
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
    }
    failure.message = format!("IAM refused the token request: {}", failure.message);
    failure
}
