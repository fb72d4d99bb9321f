//! A role's temporary keys from the cloud's STS: assumed with the caller's
//! own credentials (`AssumeRole`), or for a web identity token read from a
//! file (OIDC: Kubernetes service accounts), read again on every load since
//! the token is rotated. Each cloud supplies the exchange's wire form; the
//! flow is written once.

use std::path::PathBuf;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::env::{ConfigEnv, SystemEnv};
use crate::http::HttpResponse;
use crate::kit::credentials::{Credential, CredentialSource, Credentials, Issued};
use crate::kit::net::Net;
use crate::kit::outgoing::OutgoingRequest;
use crate::report::{Failure, FailureKind};

/// Largest web identity token read (a JWT is a few KiB).
const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// One cloud's STS exchange: the request and the reading of its answer.
pub trait RoleExchange: Send + Sync {
    /// The source's name in reports (`assume_role`, `oidc_role_arn`).
    fn source(&self) -> &'static str;

    /// The request at `now`: signed with `caller` when the action needs
    /// one, carrying `token` (a web identity token) when it has one.
    fn request(
        &self,
        caller: Option<&Credential>,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<OutgoingRequest, Failure>;

    /// The role's keys in a successful answer, or why there are none.
    fn read(&self, response: &HttpResponse) -> Result<Issued, String>;
}

/// Where the exchange's proof comes from.
enum Proof {
    /// The caller's own credentials, from the rest of the chain.
    Caller(Credentials),
    /// A web identity token in a file.
    TokenFile(PathBuf),
}

/// A role's keys through its cloud's STS.
pub struct RoleSource {
    exchange: Box<dyn RoleExchange>,
    proof: Proof,
}

impl RoleSource {
    /// Assumes a role with the caller's `credentials`.
    pub fn assumed(exchange: Box<dyn RoleExchange>, caller: Credentials) -> Self {
        Self { exchange, proof: Proof::Caller(caller) }
    }

    /// Exchanges the web identity token in `token_file` (read anew on every load).
    pub fn web_identity(exchange: Box<dyn RoleExchange>, token_file: impl Into<PathBuf>) -> Self {
        Self { exchange, proof: Proof::TokenFile(token_file.into()) }
    }

    fn failure(&self, kind: FailureKind, detail: impl std::fmt::Display, retryable: bool) -> Failure {
        let message = format!("no credentials from {}: {detail}", self.exchange.source());
        Failure::new(kind, message).retryable(retryable)
    }
}

#[async_trait]
impl CredentialSource for RoleSource {
    fn name(&self) -> &'static str {
        self.exchange.source()
    }

    async fn load(&self, net: &dyn Net) -> Result<Issued, Failure> {
        let (caller, token) = match &self.proof {
            Proof::Caller(credentials) => {
                let current = credentials.current(net).await?;
                (Some(current.issued.credential.clone()), None)
            }
            Proof::TokenFile(path) => {
                let text = SystemEnv.read_file(path).filter(|t| t.len() <= MAX_TOKEN_BYTES).ok_or_else(|| {
                    self.failure(FailureKind::Auth, format!("cannot read the token file {}", path.display()), false)
                })?;
                (None, Some(text))
            }
        };
        let request = self.exchange.request(caller.as_ref(), token.as_deref(), Utc::now())?;
        let response = net.send(request).await?;
        if !response.is_success() {
            // Refused (bad role, token, signature) is final; the service failing may pass.
            let retryable = response.status >= 500 || response.status == 429;
            let kind = if retryable { FailureKind::Transport } else { FailureKind::Auth };
            let body = String::from_utf8_lossy(&response.body[..response.body.len().min(300)]).into_owned();
            return Err(self.failure(
                kind,
                format!("the STS answered {}: {}", response.status, body.trim()),
                retryable,
            ));
        }
        self.exchange.read(&response).map_err(|why| self.failure(FailureKind::Auth, why, false))
    }
}
