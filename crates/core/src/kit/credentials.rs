//! Credentials as the engine sees them: a source that can produce them, and
//! one cache per binder that the engine asks before each signature. The
//! cache refreshes ahead of expiry, shares one refresh among concurrent
//! callers, and drops a credential the cloud called expired.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::kit::net::Net;
use crate::report::{Failure, FailureKind};
use crate::secret::Secret;
use crate::signing::AccessKey;

/// Refresh no later than this before expiry…
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// …or a fifth of the lifetime, whichever is shorter.
const REFRESH_FRACTION: u32 = 5;

/// What signs a request: an access key (with its token, when temporary),
/// or a bearer token (Huawei IAM `X-Auth-Token`).
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// Access key id, secret and optional security token.
    AccessKey(AccessKey),
    /// A token sent as is.
    Token(Secret),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AccessKey(key) => f.debug_tuple("AccessKey").field(key).finish(),
            Self::Token(_) => f.write_str("Token([REDACTED])"),
        }
    }
}

impl Credential {
    /// The access key, or an `Auth` failure naming what was given instead.
    pub fn access_key(&self) -> Result<&AccessKey, Failure> {
        match self {
            Self::AccessKey(key) => Ok(key),
            Self::Token(_) => Err(Failure::new(FailureKind::Auth, "this cloud signs with an access key, not a token")),
        }
    }
}

/// A credential and how long it lasts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Issued {
    /// The credential.
    pub credential: Credential,
    /// When it stops working; `None` for long-lived keys.
    pub expires_at: Option<DateTime<Utc>>,
}

impl Issued {
    /// A credential that does not expire.
    pub fn lasting(credential: Credential) -> Self {
        Self { credential, expires_at: None }
    }

    /// A credential that stops working at `expires_at`.
    pub fn until(credential: Credential, expires_at: DateTime<Utc>) -> Self {
        Self { credential, expires_at: Some(expires_at) }
    }

    /// Temporary keys as a metadata service or STS answers them: all three
    /// parts present (else the error names `fields`), valid until `expires_at`.
    pub fn temporary_keys(
        parts: (Option<String>, Option<String>, Option<String>),
        expires_at: DateTime<Utc>,
        fields: &str,
    ) -> Result<Self, String> {
        let (Some(access_key), Some(secret), Some(token)) = parts else {
            return Err(format!("the answer lacks {fields}"));
        };
        let key = AccessKey { access_key, secret_key: Secret::new(secret), token: Some(Secret::new(token)) };
        Ok(Self::until(Credential::AccessKey(key), expires_at))
    }

    /// A credential that lasts `lifetime` from now (for answers that give
    /// a lifetime, or none and the cloud's documented one is assumed).
    pub fn lasting_for(credential: Credential, lifetime: Duration) -> Self {
        let lifetime = chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
        Self { credential, expires_at: Utc::now().checked_add_signed(lifetime) }
    }
}

/// Where credentials come from (the environment, a profile, a metadata
/// service, a token exchange). Asked only when the cache needs a credential.
#[async_trait]
pub trait CredentialSource: Send + Sync {
    /// Its name for reports and errors (`"static"`, `"iam_password"`).
    fn name(&self) -> &'static str;

    /// Produces a credential; `net` sends unsigned setup calls through the
    /// run's send path (counted, bounded, stopped with the run). A failure
    /// of kind `Auth` or `Permission` stops the run.
    async fn load(&self, net: &dyn Net) -> Result<Issued, Failure>;

    /// Whether asking again can give a different credential: only then is
    /// a call refused as expired refreshed and sent again.
    fn refreshes(&self) -> bool {
        true
    }
}

/// Credentials given as they are (keys from the environment or a profile,
/// a token pasted in): never refreshed.
pub struct FixedCredential {
    issued: Issued,
}

impl FixedCredential {
    /// A source that always yields `credential`.
    pub fn new(credential: Credential) -> Self {
        Self { issued: Issued::lasting(credential) }
    }
}

#[async_trait]
impl CredentialSource for FixedCredential {
    fn name(&self) -> &'static str {
        "static"
    }

    async fn load(&self, _net: &dyn Net) -> Result<Issued, Failure> {
        Ok(self.issued.clone())
    }

    fn refreshes(&self) -> bool {
        false
    }
}

/// A credential in the cache, with the moment to replace it.
pub(crate) struct Current {
    pub(crate) issued: Issued,
    refresh_at: Option<Instant>,
}

/// One binder's credentials: its source and the credential it last gave.
pub struct Credentials {
    source: Arc<dyn CredentialSource>,
    cached: Mutex<Option<Arc<Current>>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("source", &self.source.name()).finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials from `source`, loaded when first needed.
    pub fn new(source: Arc<dyn CredentialSource>) -> Self {
        Self { source, cached: Mutex::new(None) }
    }

    /// Credentials that never change.
    pub fn fixed(credential: Credential) -> Self {
        Self::new(Arc::new(FixedCredential::new(credential)))
    }

    /// The source's name.
    pub fn source_name(&self) -> &'static str {
        self.source.name()
    }

    /// The credential to sign with now: the cached one while it has time
    /// left, else a fresh one. Callers that arrive during a load wait for it.
    pub(crate) async fn current(&self, net: &dyn Net) -> Result<Arc<Current>, Failure> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref()
            && current.refresh_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(current.clone());
        }
        let issued = self.source.load(net).await?;
        let refresh_at = issued.expires_at.map(|at| {
            let left = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            Instant::now() + left.saturating_sub(REFRESH_MARGIN.min(left / REFRESH_FRACTION))
        });
        tracing::debug!(source = self.source.name(), expires_at = ?issued.expires_at, "loaded credentials");
        let current = Arc::new(Current { issued, refresh_at });
        *cached = Some(current.clone());
        Ok(current)
    }

    /// Drops `seen` after the cloud called it expired (unless a newer one
    /// already replaced it); `true` when a fresh load may help.
    pub(crate) async fn expire(&self, seen: &Arc<Current>) -> bool {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| Arc::ptr_eq(c, seen)) {
            *cached = None;
        }
        self.source.refreshes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::http::HttpResponse;
    use crate::kit::outgoing::OutgoingRequest;

    struct NoNet;

    #[async_trait]
    impl Net for NoNet {
        async fn send(&self, _request: OutgoingRequest) -> Result<HttpResponse, Failure> {
            Err(Failure::new(FailureKind::Transport, "no network in this test"))
        }
    }

    /// Issues numbered tokens that live `ttl`, counting loads.
    struct Counting {
        loads: AtomicU32,
        ttl: chrono::Duration,
    }

    #[async_trait]
    impl CredentialSource for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }

        async fn load(&self, _net: &dyn Net) -> Result<Issued, Failure> {
            let n = self.loads.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(Issued::until(Credential::Token(Secret::new(format!("token-{n}"))), Utc::now() + self.ttl))
        }
    }

    fn token(current: &Current) -> String {
        match &current.issued.credential {
            Credential::Token(t) => t.expose().to_string(),
            Credential::AccessKey(k) => k.access_key.clone(),
        }
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_load_and_an_expired_one_is_replaced_once() {
        let source = Arc::new(Counting { loads: AtomicU32::new(0), ttl: chrono::Duration::hours(1) });
        let credentials = Credentials::new(source.clone());
        let all = futures::future::join_all((0..20).map(|_| credentials.current(&NoNet))).await;
        assert_eq!(source.loads.load(Ordering::SeqCst), 1, "one load for twenty callers");
        let first = all[0].as_ref().unwrap().clone();
        assert!(all.iter().all(|c| token(c.as_ref().unwrap()) == "token-1"));
        // Twenty calls answered "expired" with the same credential: one reload.
        for _ in 0..20 {
            assert!(credentials.expire(&first).await);
        }
        let second = credentials.current(&NoNet).await.unwrap();
        assert_eq!(token(&second), "token-2");
        // A late "expired" about the old one leaves the new one in place.
        credentials.expire(&first).await;
        assert!(Arc::ptr_eq(&second, &credentials.current(&NoNet).await.unwrap()));
        assert_eq!(source.loads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_short_lived_credential_is_refreshed_a_fifth_of_its_life_before_expiry() {
        // 10 s of life: refreshed after about 8 s, not before.
        let source = Arc::new(Counting { loads: AtomicU32::new(0), ttl: chrono::Duration::seconds(10) });
        let credentials = Credentials::new(source.clone());
        let first = credentials.current(&NoNet).await.unwrap();
        let refresh_at = first.refresh_at.unwrap();
        let after = refresh_at.saturating_duration_since(Instant::now());
        assert!(after > Duration::from_millis(7_500) && after <= Duration::from_secs(8), "{after:?}");
        assert_eq!(token(&credentials.current(&NoNet).await.unwrap()), "token-1");
        // An hour of life: five minutes' margin.
        let long = Arc::new(Counting { loads: AtomicU32::new(0), ttl: chrono::Duration::hours(1) });
        let current = Credentials::new(long).current(&NoNet).await.unwrap();
        let after = current.refresh_at.unwrap().saturating_duration_since(Instant::now());
        assert!(after > Duration::from_secs(54 * 60) && after <= Duration::from_secs(55 * 60), "{after:?}");
    }

    #[tokio::test]
    async fn fixed_credentials_never_refresh_and_never_print_their_secrets() {
        let key = AccessKey { access_key: "AKID".into(), secret_key: Secret::new("s3cr3t"), token: None };
        let credentials = Credentials::fixed(Credential::AccessKey(key));
        let current = credentials.current(&NoNet).await.unwrap();
        assert!(!credentials.expire(&current).await);
        let shown = format!("{:?} {:?}", current.issued, Credential::Token(Secret::new("t0k3n")));
        assert!(!shown.contains("s3cr3t") && !shown.contains("t0k3n"), "{shown}");
        assert_eq!(credentials.source_name(), "static");
    }
}
