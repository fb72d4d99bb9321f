//! Bind and unbind requests, validated and de-duplicated when built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ValidationError};
use crate::ids::{IdSet, InstanceId, KeyPairRef};
use crate::progress::ProgressObserver;
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use tokio_util::sync::CancellationToken;

/// Default ceiling on instances in one request, against runaway input.
pub const DEFAULT_MAX_INSTANCES: usize = 100_000;
/// Longest idempotency token accepted (Volcengine's `ClientToken` limit).
pub const MAX_CLIENT_TOKEN_LEN: usize = 64;

/// The VM's current login credential, which some clouds need to change its key.
///
/// On Huawei the variant picks the mode: a root password binds a VM that has
/// none, the current private key replaces a bound key, and no credential
/// resets a stopped VM.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VmCredential {
    /// The VM's root password.
    Password(Secret),
    /// The private key currently authorised on the VM (PEM or OpenSSH text).
    PrivateKey(Secret),
}

impl VmCredential {
    /// A root password.
    pub fn password(value: impl Into<String>) -> Self {
        Self::Password(Secret::new(value))
    }

    /// The current private key.
    pub fn private_key(value: impl Into<String>) -> Self {
        Self::PrivateKey(Secret::new(value))
    }

    /// The secret itself.
    pub fn secret(&self) -> &Secret {
        match self {
            Self::Password(s) | Self::PrivateKey(s) => s,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::Password(_) => "Password([REDACTED])",
            Self::PrivateKey(_) => "PrivateKey([REDACTED])",
        }
    }
}

impl fmt::Debug for VmCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())
    }
}

/// Default run deadline when the caller sets none.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(3600);
/// Default time in-flight calls and started tasks get after a cancellation.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// Default time an instance in a transitional state is waited for (by reading) before it fails.
pub const DEFAULT_STATE_WAIT: Duration = Duration::from_secs(120);

/// How a run is carried out: concurrency, retries, deadline, cancellation, progress.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Writes in flight at once (state reads run ahead with a budget of the same size); the provider's default when `None`.
    pub concurrency: Option<usize>,
    /// Retry policy; the provider's default when `None`.
    pub retry: Option<RetryPolicy>,
    /// Total time for the run; after it nothing new is sent.
    pub deadline: Option<Duration>,
    /// Receives progress events.
    pub observer: Option<Arc<dyn ProgressObserver>>,
    /// Cancels the run: nothing more is sent, in-flight calls and started
    /// tasks get the grace period, then the partial report is returned.
    pub cancel: Option<CancellationToken>,
    /// Time in-flight calls and started tasks get after a cancellation.
    pub grace: Option<Duration>,
    /// Stops waiting at once (a second Ctrl-C): calls in flight and started
    /// tasks end `unknown`, and the report is returned.
    pub abandon: Option<CancellationToken>,
    /// Sends every instance, without first reading whether it already is in
    /// the requested state (by default such instances end `Unchanged`).
    pub force: bool,
    /// Records every step before it goes on; resumes what it says an earlier run left.
    pub journal: Option<Arc<crate::journal::Journal>>,
    /// How long an instance refused for a transitional state (starting,
    /// stopping) is waited for, by reading its state, before it fails
    /// (never past the deadline); 2 minutes when `None`.
    pub state_wait: Option<Duration>,
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("concurrency", &self.concurrency)
            .field("retry", &self.retry)
            .field("deadline", &self.deadline)
            .field("observer", &self.observer.is_some())
            .field("cancel", &self.cancel.is_some())
            .field("grace", &self.grace)
            .field("abandon", &self.abandon.is_some())
            .field("force", &self.force)
            .field("journal", &self.journal.as_ref().map(|j| j.path().to_path_buf()))
            .field("state_wait", &self.state_wait)
            .finish()
    }
}

/// The instances of a request, distinct and in input order.
#[derive(Clone, Debug, Default)]
pub struct Targets {
    instances: Vec<InstanceId>,
    requested: usize,
}

impl Targets {
    /// Validates and de-duplicates raw ids, keeping the first occurrence.
    pub fn new<I, S>(raw: I, max: usize) -> Result<Self, ValidationError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let raw = raw.into_iter();
        let expected = raw.size_hint().0.min(max);
        let mut seen = IdSet::with_capacity_and_hasher(expected, Default::default());
        let mut instances = Vec::with_capacity(expected);
        let mut requested = 0;
        for (index, id) in raw.enumerate() {
            requested += 1;
            let id =
                InstanceId::new(id.into()).map_err(|e| ValidationError::Instance { index, source: Box::new(e) })?;
            if seen.insert(id.clone()) {
                instances.push(id);
            }
        }
        if requested == 0 {
            return Err(ValidationError::NoInstances);
        }
        if instances.len() > max {
            return Err(ValidationError::TooManyInstances { count: instances.len(), max });
        }
        Ok(Self { instances, requested })
    }

    /// Distinct instances, in input order.
    pub fn instances(&self) -> &[InstanceId] {
        &self.instances
    }

    /// Instances passed in, duplicates included.
    pub fn requested(&self) -> usize {
        self.requested
    }

    /// Duplicates removed.
    pub fn duplicates(&self) -> usize {
        self.requested - self.instances.len()
    }
}

/// What every request carries besides its key pair.
#[derive(Clone)]
#[non_exhaustive]
pub struct RequestCommon {
    /// The instances.
    pub targets: Targets,
    /// The VM's current credential, where the provider needs it.
    pub credential: Option<VmCredential>,
    /// SSH port the cloud's agent should use.
    pub ssh_port: Option<u16>,
    /// Idempotency token base for providers that support one.
    pub client_token: Option<String>,
    /// Consent to power-cycle running instances where the cloud must stop
    /// them for the change (Tencent `ForceStop`); without it they fail unsent.
    pub force_stop: bool,
    /// Run options.
    pub options: RunOptions,
}

impl fmt::Debug for RequestCommon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The credential prints as its kind only; the instance list as its size.
        f.debug_struct("RequestCommon")
            .field("instances", &self.targets.instances().len())
            .field("requested", &self.targets.requested())
            .field("credential", &self.credential)
            .field("ssh_port", &self.ssh_port)
            .field("client_token", &self.client_token)
            .field("force_stop", &self.force_stop)
            .field("options", &self.options)
            .finish()
    }
}

/// A validated request to bind one key pair to many instances.
#[derive(Clone, Debug)]
pub struct BindRequest {
    keypair: KeyPairRef,
    disable_password: Option<bool>,
    common: RequestCommon,
}

impl BindRequest {
    /// Starts a bind request.
    pub fn builder() -> BindRequestBuilder {
        BindRequestBuilder::default()
    }

    /// The key pair to bind.
    pub fn keypair(&self) -> &KeyPairRef {
        &self.keypair
    }

    /// Whether to disable SSH password login, when asked.
    pub fn disable_password(&self) -> Option<bool> {
        self.disable_password
    }

    /// The same, to change (a fleet's deadline).
    pub(crate) fn common_mut(&mut self) -> &mut RequestCommon {
        &mut self.common
    }

    /// Everything else.
    pub fn common(&self) -> &RequestCommon {
        &self.common
    }

    /// Distinct instances, in input order.
    pub fn instances(&self) -> &[InstanceId] {
        self.common.targets.instances()
    }
}

/// A validated request to remove a key pair from many instances.
#[derive(Clone, Debug)]
pub struct UnbindRequest {
    keypair: Option<KeyPairRef>,
    common: RequestCommon,
}

impl UnbindRequest {
    /// Starts an unbind request.
    pub fn builder() -> UnbindRequestBuilder {
        UnbindRequestBuilder::default()
    }

    /// The key pair to remove, where the provider needs it named.
    pub fn keypair(&self) -> Option<&KeyPairRef> {
        self.keypair.as_ref()
    }

    /// The key pair to remove, for providers that must be told which: its
    /// absence is a validation error.
    pub fn required_keypair(&self) -> Result<&KeyPairRef, crate::Error> {
        self.keypair.as_ref().ok_or(crate::Error::Validation(crate::ValidationError::NoKeyPair))
    }

    /// The same, to change (a fleet's deadline).
    pub(crate) fn common_mut(&mut self) -> &mut RequestCommon {
        &mut self.common
    }

    /// Everything else.
    pub fn common(&self) -> &RequestCommon {
        &self.common
    }

    /// Distinct instances, in input order.
    pub fn instances(&self) -> &[InstanceId] {
        self.common.targets.instances()
    }
}

/// The builder fields both requests share.
#[derive(Default)]
struct CommonBuilder {
    keypair: Option<(bool, String)>,
    instances: Vec<String>,
    credential: Option<VmCredential>,
    ssh_port: Option<u16>,
    client_token: Option<String>,
    force_stop: bool,
    options: RunOptions,
    max_instances: Option<usize>,
}

impl CommonBuilder {
    fn keypair(&self) -> Result<Option<KeyPairRef>, ValidationError> {
        match &self.keypair {
            None => Ok(None),
            Some((true, id)) => KeyPairRef::id(id.clone()).map(Some),
            Some((false, name)) => KeyPairRef::name(name.clone()).map(Some),
        }
    }

    fn build(self) -> Result<RequestCommon, ValidationError> {
        let max = self.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES);
        let targets = Targets::new(self.instances, max)?;
        if let Some(token) = &self.client_token {
            validate_client_token(token)?;
        }
        if self.ssh_port == Some(0) {
            return Err(ValidationError::OutOfRange { what: "ssh port", reason: "must be 1-65535".into() });
        }
        if let Some(c) = &self.credential
            && c.secret().is_empty()
        {
            return Err(ValidationError::Empty { what: "VM credential" });
        }
        if self.options.concurrency == Some(0) {
            return Err(ValidationError::OutOfRange { what: "concurrency", reason: "must be at least 1".into() });
        }
        Ok(RequestCommon {
            targets,
            credential: self.credential,
            ssh_port: self.ssh_port,
            client_token: self.client_token,
            force_stop: self.force_stop,
            options: self.options,
        })
    }
}

/// Checks an idempotency token: 1 to 64 printable ASCII characters (space allowed).
pub fn validate_client_token(token: &str) -> Result<(), ValidationError> {
    if token.is_empty() {
        return Err(ValidationError::Empty { what: "client token" });
    }
    if token.len() > MAX_CLIENT_TOKEN_LEN {
        return Err(ValidationError::TooLong { what: "client token", len: token.len(), max: MAX_CLIENT_TOKEN_LEN });
    }
    if let Some(c) = token.chars().find(|c| !c.is_ascii() || c.is_ascii_control()) {
        return Err(ValidationError::InvalidCharacter { what: "client token", character: c });
    }
    Ok(())
}

macro_rules! common_setters {
    () => {
        /// Adds one instance id.
        pub fn instance(mut self, id: impl Into<String>) -> Self {
            self.common.instances.push(id.into());
            self
        }

        /// Adds instance ids, in order; duplicates are removed and counted.
        pub fn instances<I, S>(mut self, ids: I) -> Self
        where
            I: IntoIterator<Item = S>,
            S: Into<String>,
        {
            self.common.instances.extend(ids.into_iter().map(Into::into));
            self
        }

        /// The VM's current credential (password or private key).
        pub fn credential(mut self, credential: VmCredential) -> Self {
            self.common.credential = Some(credential);
            self
        }

        /// SSH port the cloud's agent should use.
        pub fn ssh_port(mut self, port: u16) -> Self {
            self.common.ssh_port = Some(port);
            self
        }

        /// Consents to forcibly stopping running instances for the change
        /// and starting them again (Tencent `ForceStop`).
        pub fn force_stop(mut self, consent: bool) -> Self {
            self.common.force_stop = consent;
            self
        }

        /// Base of the idempotency tokens (Volcengine `ClientToken`).
        pub fn client_token(mut self, token: impl Into<String>) -> Self {
            self.common.client_token = Some(token.into());
            self
        }

        /// Writes in flight at once; the state reads that serve them run ahead with a budget of the same size.
        pub fn concurrency(mut self, concurrency: usize) -> Self {
            self.common.options.concurrency = Some(concurrency);
            self
        }

        /// Retry policy for this run.
        pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
            self.common.options.retry = Some(policy);
            self
        }

        /// Total time for the run.
        pub fn deadline(mut self, deadline: Duration) -> Self {
            self.common.options.deadline = Some(deadline);
            self
        }

        /// Receives progress events.
        pub fn observer(mut self, observer: Arc<dyn ProgressObserver>) -> Self {
            self.common.options.observer = Some(observer);
            self
        }

        /// Lets the caller cancel the run and still get its partial report.
        pub fn cancel(mut self, token: CancellationToken) -> Self {
            self.common.options.cancel = Some(token);
            self
        }

        /// Time in-flight calls and started tasks get after a cancellation
        /// (default [`DEFAULT_GRACE`](crate::request::DEFAULT_GRACE)).
        pub fn grace(mut self, grace: Duration) -> Self {
            self.common.options.grace = Some(grace);
            self
        }

        /// Stops waiting at once when cancelled (after [`cancel`](Self::cancel)):
        /// the report is returned with what is known.
        pub fn abandon(mut self, token: CancellationToken) -> Self {
            self.common.options.abandon = Some(token);
            self
        }

        /// How long an instance refused for a transitional state is waited
        /// for, by reading its state (never by writing), before it fails;
        /// default [`DEFAULT_STATE_WAIT`](crate::request::DEFAULT_STATE_WAIT).
        pub fn state_wait(mut self, wait: Duration) -> Self {
            self.common.options.state_wait = Some(wait);
            self
        }

        /// Sends every instance without first checking whether it already is
        /// in the requested state (re-runs then re-apply).
        pub fn force(mut self, force: bool) -> Self {
            self.common.options.force = force;
            self
        }

        /// Records every step in `journal` before it goes on, and resumes
        /// what it says an earlier run left.
        pub fn journal(mut self, journal: Arc<crate::journal::Journal>) -> Self {
            self.common.options.journal = Some(journal);
            self
        }

        /// Ceiling on distinct instances (default [`DEFAULT_MAX_INSTANCES`]).
        pub fn max_instances(mut self, max: usize) -> Self {
            self.common.max_instances = Some(max);
            self
        }

        /// Names the key pair.
        pub fn keypair_name(mut self, name: impl Into<String>) -> Self {
            self.common.keypair = Some((false, name.into()));
            self
        }

        /// Names the key pair by id.
        pub fn keypair_id(mut self, id: impl Into<String>) -> Self {
            self.common.keypair = Some((true, id.into()));
            self
        }
    };
}

/// Builds a [`BindRequest`].
#[derive(Default)]
pub struct BindRequestBuilder {
    common: CommonBuilder,
    disable_password: Option<bool>,
}

impl BindRequestBuilder {
    common_setters!();

    /// Whether to disable SSH password login once the key is bound.
    pub fn disable_password(mut self, disable: bool) -> Self {
        self.disable_password = Some(disable);
        self
    }

    /// Validates and de-duplicates; nothing is sent.
    pub fn build(self) -> Result<BindRequest, Error> {
        let keypair = self.common.keypair()?.ok_or(ValidationError::NoKeyPair)?;
        Ok(BindRequest { keypair, disable_password: self.disable_password, common: self.common.build()? })
    }
}

/// Builds an [`UnbindRequest`].
#[derive(Default)]
pub struct UnbindRequestBuilder {
    common: CommonBuilder,
}

impl UnbindRequestBuilder {
    common_setters!();

    /// Validates and de-duplicates; nothing is sent.
    pub fn build(self) -> Result<UnbindRequest, Error> {
        let keypair = self.common.keypair()?;
        Ok(UnbindRequest { keypair, common: self.common.build()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind() -> BindRequestBuilder {
        BindRequest::builder().keypair_name("kp")
    }

    fn validation(result: Result<BindRequest, Error>) -> ValidationError {
        match result {
            Err(Error::Validation(e)) => e,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn dedupes_in_input_order() {
        let req = bind().instances(["b", "a", "b", "c", "a"]).build().unwrap();
        let ids: Vec<_> = req.instances().iter().map(|i| i.as_str()).collect();
        assert_eq!(ids, ["b", "a", "c"]);
        assert_eq!(req.common().targets.requested(), 5);
        assert_eq!(req.common().targets.duplicates(), 2);
    }

    #[test]
    fn empty_list_is_refused() {
        assert_eq!(validation(bind().build()), ValidationError::NoInstances);
    }

    #[test]
    fn bad_ids_name_their_position() {
        let err = validation(bind().instances(["ok", "bad id"]).build());
        assert!(matches!(err, ValidationError::Instance { index: 1, .. }), "{err:?}");
        assert!(err.to_string().contains("instance #1"), "{err}");
        let err = validation(bind().instances(["", "x"]).build());
        assert!(matches!(err, ValidationError::Instance { index: 0, .. }));
        let err = validation(bind().instance("tab\there").build());
        assert!(err.to_string().contains("not allowed"), "{err}");
    }

    #[test]
    fn ceiling_is_enforced_after_dedupe() {
        let ids: Vec<String> = (0..11).map(|i| format!("i-{i}")).collect();
        let err = validation(bind().instances(ids.clone()).max_instances(10).build());
        assert_eq!(err, ValidationError::TooManyInstances { count: 11, max: 10 });
        let mut dup = ids[..10].to_vec();
        dup.push("i-0".into());
        assert!(bind().instances(dup).max_instances(10).build().is_ok());
    }

    #[test]
    fn default_ceiling_is_100k() {
        let ids = (0..100_001).map(|i| format!("i-{i}"));
        let err = validation(bind().instances(ids).build());
        assert_eq!(err, ValidationError::TooManyInstances { count: 100_001, max: 100_000 });
    }

    #[test]
    fn keypair_is_required_and_checked() {
        let err = validation(BindRequest::builder().instance("i-1").build());
        assert_eq!(err, ValidationError::NoKeyPair);
        let err = validation(BindRequest::builder().keypair_name("").instance("i-1").build());
        assert_eq!(err, ValidationError::Empty { what: "key pair name" });
        let err = validation(BindRequest::builder().keypair_name("k".repeat(300)).instance("i-1").build());
        assert!(matches!(err, ValidationError::TooLong { .. }));
        let err = validation(BindRequest::builder().keypair_name("kp\u{1b}[0m").instance("i-1").build());
        assert!(matches!(err, ValidationError::InvalidCharacter { .. }));
    }

    #[test]
    fn client_token_is_checked() {
        let err = validation(bind().instance("i").client_token("t".repeat(65)).build());
        assert!(matches!(err, ValidationError::TooLong { what: "client token", .. }));
        let err = validation(bind().instance("i").client_token("tökén").build());
        assert!(matches!(err, ValidationError::InvalidCharacter { .. }));
        assert!(bind().instance("i").client_token("t".repeat(64)).build().is_ok());
    }

    #[test]
    fn debug_hides_the_credential() {
        let req = bind().instance("i").credential(VmCredential::password("s3cret-pw")).build().unwrap();
        let text = format!("{req:?}");
        assert!(!text.contains("s3cret-pw"), "{text}");
        assert!(text.contains("Password([REDACTED])"), "{text}");
    }
}
