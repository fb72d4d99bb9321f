//! Credentials of the role attached to the VM this runs on, from the cloud's
//! instance metadata service: the optional session token (IMDSv2), the role
//! name, then the role's temporary keys. Each cloud describes its service in
//! a [`MetadataService`]; the flow is written once.

use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use http::header::{HeaderName, HeaderValue};
use url::Url;

use std::sync::Arc;

use crate::error::Error;
use crate::http::{ClientSettings, HttpResponse};
use crate::kit::credentials::{Credential, CredentialSource, Credentials, Issued};
use crate::kit::net::Net;
use crate::kit::outgoing::{OutgoingRequest, endpoint_uri};
use crate::report::{Failure, FailureKind};

/// Time for one metadata call: the service is on the host's own network,
/// so anything slower means there is none (the SDKs wait about a second).
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(2);
/// Lifetime asked of a metadata session token (the SDKs ask six hours).
const TOKEN_TTL_SECONDS: &str = "21600";

/// A metadata service's session-token flow (IMDSv2).
#[derive(Clone, Copy, Debug)]
pub struct MetadataToken {
    /// Path the token is `PUT` to.
    pub path: &'static str,
    /// Header asking for the token's lifetime, in seconds.
    pub ttl_header: &'static str,
    /// Header every later call carries the token in.
    pub header: &'static str,
}

/// How one cloud's metadata service hands a VM its role's credentials.
#[derive(Clone, Copy, Debug)]
pub struct MetadataService {
    /// The source's name in reports (`ecs_ram_role`, `cvm_role`).
    pub source: &'static str,
    /// Where the service is on the cloud's VMs (`http://100.100.100.200`).
    pub endpoint: &'static str,
    /// The session-token flow, where the cloud has one.
    pub token: Option<MetadataToken>,
    /// Path that names the attached role, where credentials are per role.
    pub roles: Option<&'static str>,
    /// Path of the credentials; the role name is appended when `roles` is set.
    pub credentials: &'static str,
    /// The role name in the `roles` answer.
    pub read_role: fn(&str) -> Option<String>,
    /// The credentials in their answer, or why they are not there.
    pub read_credentials: fn(&[u8]) -> Result<Issued, String>,
}

/// The VM's role credentials, asked of its metadata service when needed.
pub struct InstanceRole {
    service: &'static MetadataService,
    endpoint: Url,
    role: Option<String>,
    tried: Option<String>,
}

impl InstanceRole {
    /// The role of the VM this runs on, through `service` at its own
    /// address or at `endpoint`; `role` names it instead of asking.
    pub fn new(service: &'static MetadataService, endpoint: Option<Url>, role: Option<String>) -> Result<Self, String> {
        let endpoint = match endpoint {
            Some(url) => url,
            None => Url::parse(service.endpoint).map_err(|e| format!("bad metadata endpoint: {e}"))?,
        };
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            return Err(format!("the metadata endpoint {endpoint} is not an http(s) URL"));
        }
        let role = role.filter(|r| !r.is_empty());
        if let Some(name) = role.as_deref().filter(|r| !is_role_name(r)) {
            // It goes into the path: letters, digits and `-_.@` only.
            return Err(format!("the role name {name:?} is not a role name"));
        }
        Ok(Self { service, endpoint, role, tried: None })
    }

    /// Names the sources of the chain tried before this one, for the message
    /// when this one has no credentials either.
    pub fn after(mut self, tried: impl Into<String>) -> Self {
        self.tried = Some(tried.into());
        self
    }

    /// Where the service is asked.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn request(&self, method: Method, path: &str, action: &'static str) -> Result<OutgoingRequest, Failure> {
        let uri = endpoint_uri(&self.endpoint, path, "")?;
        Ok(OutgoingRequest::new(method, uri, action).with_timeout(METADATA_TIMEOUT))
    }

    /// A failure of the service: not there (no cloud VM, or no role) stops the
    /// run as missing credentials; a server error may pass.
    fn failure(&self, what: &str, detail: impl std::fmt::Display, retryable: bool) -> Failure {
        let kind = if retryable { FailureKind::Transport } else { FailureKind::Auth };
        let tried = self.tried.as_deref().map(|t| format!("{t}; ")).unwrap_or_default();
        let source = self.service.source;
        let message =
            format!("no credentials: {tried}the {source} metadata service at {} {what}: {detail}", self.endpoint);
        Failure::new(kind, message).retryable(retryable)
    }

    async fn get(
        &self,
        net: &dyn Net,
        path: &str,
        action: &'static str,
        token: Option<&HeaderValue>,
    ) -> Result<HttpResponse, Failure> {
        let mut request = self.request(Method::GET, path, action)?;
        if let (Some(flow), Some(token)) = (self.service.token, token) {
            request.headers.insert(HeaderName::from_static(flow.header), token.clone());
        }
        let response = net.send(request).await.map_err(|f| self.failure("was unreachable", f.message, false))?;
        if response.is_success() {
            return Ok(response);
        }
        let retryable = response.status >= 500 || response.status == 429;
        Err(self.failure(&format!("answered {} ({action})", response.status), snippet(&response.body), retryable))
    }

    /// The session token, or none where the service has no flow or does not
    /// offer one (404, 405: an older service that answers without).
    async fn session_token(&self, net: &dyn Net) -> Result<Option<HeaderValue>, Failure> {
        let Some(flow) = self.service.token else { return Ok(None) };
        let mut request = self.request(Method::PUT, flow.path, "metadata:token")?;
        request.headers.insert(HeaderName::from_static(flow.ttl_header), HeaderValue::from_static(TOKEN_TTL_SECONDS));
        let response = net.send(request).await.map_err(|f| self.failure("was unreachable", f.message, false))?;
        match response.status {
            200 => {
                let text = String::from_utf8_lossy(&response.body);
                let mut value = HeaderValue::from_str(text.trim())
                    .map_err(|_| self.failure("gave a session token", "not a header value", false))?;
                value.set_sensitive(true);
                Ok(Some(value))
            }
            404 | 405 => Ok(None),
            status => Err(self.failure(
                &format!("answered {status} for a session token"),
                snippet(&response.body),
                status >= 500,
            )),
        }
    }
}

#[async_trait]
impl CredentialSource for InstanceRole {
    fn name(&self) -> &'static str {
        self.service.source
    }

    async fn load(&self, net: &dyn Net) -> Result<Issued, Failure> {
        let token = self.session_token(net).await?;
        let path = match (self.service.roles, &self.role) {
            (None, _) => self.service.credentials.to_string(),
            (Some(_), Some(role)) => format!("{}{}", self.service.credentials, role),
            (Some(roles), None) => {
                let answer = self.get(net, roles, "metadata:role", token.as_ref()).await?;
                let text = String::from_utf8_lossy(&answer.body);
                let role = (self.service.read_role)(&text)
                    .filter(|r| is_role_name(r))
                    .ok_or_else(|| self.failure("named no role", "no role is attached to this instance", false))?;
                format!("{}{}", self.service.credentials, role)
            }
        };
        let answer = self.get(net, &path, "metadata:credentials", token.as_ref()).await?;
        (self.service.read_credentials)(&answer.body)
            .map_err(|why| self.failure("gave no usable credentials", why, false))
    }
}

/// A binder's credentials: `given` when there are some, else the role of
/// the VM from `service` when the settings allow it, else a configuration
/// error saying what was `missing`.
pub fn credentials_or_role(
    provider: &'static str,
    settings: &ClientSettings,
    given: Option<Credential>,
    service: &'static MetadataService,
    missing: &str,
) -> Result<Credentials, Error> {
    if let Some(credential) = given {
        return Ok(Credentials::fixed(credential));
    }
    if !settings.instance_role {
        return Err(Error::config(provider, format!("no credentials: {missing}")));
    }
    let endpoint = match &settings.metadata_endpoint {
        Some(text) => Some(
            Url::parse(text)
                .map_err(|e| Error::config(provider, format!("invalid metadata endpoint {text:?}: {e}")))?,
        ),
        None => None,
    };
    let role = InstanceRole::new(service, endpoint, settings.instance_role_name.clone())
        .map_err(|e| Error::config(provider, e))?
        .after(missing);
    Ok(Credentials::new(Arc::new(role)))
}

/// Whether `name` can be a role name in a metadata path.
fn is_role_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
}

/// The start of a body, for messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.trim().to_string()
}

/// The first role of a plain-text list (one name a line).
pub fn first_line_role(text: &str) -> Option<String> {
    text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    static SERVICE: MetadataService = MetadataService {
        source: "test_role",
        endpoint: "http://169.254.0.1",
        token: None,
        roles: Some("/roles/"),
        credentials: "/roles/",
        read_role: first_line_role,
        read_credentials: |_| Err("unused".into()),
    };

    #[test]
    fn a_configured_role_name_cannot_leave_its_path() {
        assert!(InstanceRole::new(&SERVICE, None, Some("ops-role.v2@acct".into())).is_ok());
        for bad in ["../admin", "ops?x=1", "ops/other", "a b"] {
            assert!(InstanceRole::new(&SERVICE, None, Some(bad.into())).is_err(), "{bad}");
        }
        let ftp = Url::parse("ftp://127.0.0.1/").unwrap();
        assert!(InstanceRole::new(&SERVICE, Some(ftp), None).is_err());
        assert_eq!(first_line_role("\n  ops \nother"), Some("ops".to_string()));
    }
}
