//! The binder shell every cloud shares: a cloud's binder implements
//! [`CloudBinder`] (its engine, its capabilities, the options it refuses, and
//! the provider of one run) and gets [`KeypairBinder`] from the kit, with the
//! option checks, the run's spec and the engine call written once.

use std::fmt;

use async_trait::async_trait;

use crate::binder::{Capabilities, KeypairBinder};
use crate::error::Error;
use crate::ids::KeyPairRef;
use crate::kit::engine::{Engine, RunSpec};
use crate::kit::provider::Provider;
use crate::plan::Plan;
use crate::public_key::{KeypairEnsured, PublicKey};
use crate::report::{BindReport, Operation, PostCondition};
use crate::request::{BindRequest, RequestCommon, RunOptions, UnbindRequest};

/// Options of a request a cloud does not take, each with the reason the
/// caller is told (`None`: taken).
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct Refusals {
    /// The VM's root password or current private key.
    pub credential: Option<&'static str>,
    /// An SSH port.
    pub ssh_port: Option<&'static str>,
    /// An idempotency token.
    pub client_token: Option<&'static str>,
    /// Consent to stop running instances.
    pub force_stop: Option<&'static str>,
    /// Whether to disable password login (bind).
    pub disable_password: Option<&'static str>,
    /// A key pair named by id.
    pub keypair_id: Option<&'static str>,
    /// An unbind must name its key pair (the cloud cannot remove whatever is bound).
    pub unbind_needs_keypair: bool,
}

impl Refusals {
    /// Every option taken.
    pub const NONE: Refusals = Refusals {
        credential: None,
        ssh_port: None,
        client_token: None,
        force_stop: None,
        disable_password: None,
        keypair_id: None,
        unbind_needs_keypair: false,
    };

    /// Refuses the VM's credential, saying why.
    pub const fn credential(mut self, reason: &'static str) -> Self {
        self.credential = Some(reason);
        self
    }

    /// Refuses an SSH port, saying why.
    pub const fn ssh_port(mut self, reason: &'static str) -> Self {
        self.ssh_port = Some(reason);
        self
    }

    /// Refuses an idempotency token, saying why.
    pub const fn client_token(mut self, reason: &'static str) -> Self {
        self.client_token = Some(reason);
        self
    }

    /// Refuses consent to stop instances, saying why.
    pub const fn force_stop(mut self, reason: &'static str) -> Self {
        self.force_stop = Some(reason);
        self
    }

    /// Refuses the password-login setting, saying why.
    pub const fn disable_password(mut self, reason: &'static str) -> Self {
        self.disable_password = Some(reason);
        self
    }

    /// Refuses key pairs named by id, saying why.
    pub const fn keypair_id(mut self, reason: &'static str) -> Self {
        self.keypair_id = Some(reason);
        self
    }

    /// Requires an unbind to name its key pair.
    pub const fn unbind_needs_keypair(mut self) -> Self {
        self.unbind_needs_keypair = true;
        self
    }

    /// Checks what a bind and an unbind share.
    fn check_common(&self, provider: &'static str, common: &RequestCommon) -> Result<(), Error> {
        let refused = [
            ("credential", common.credential.is_some(), self.credential),
            ("ssh_port", common.ssh_port.is_some(), self.ssh_port),
            ("client_token", common.client_token.is_some(), self.client_token),
            ("force_stop", common.force_stop, self.force_stop),
        ];
        for (option, set, reason) in refused {
            if let (true, Some(reason)) = (set, reason) {
                return Err(Error::unsupported(provider, option, reason));
            }
        }
        Ok(())
    }

    fn check_keypair(&self, provider: &'static str, keypair: Option<&KeyPairRef>) -> Result<(), Error> {
        match (keypair, self.keypair_id) {
            (Some(KeyPairRef::Id(_)), Some(reason)) => Err(Error::unsupported(provider, "keypair_id", reason)),
            _ => Ok(()),
        }
    }

    /// Refuses a bind that asks for what the cloud does not take, before anything is sent.
    pub fn check_bind(&self, provider: &'static str, request: &BindRequest) -> Result<(), Error> {
        self.check_common(provider, request.common())?;
        if let (Some(_), Some(reason)) = (request.disable_password(), self.disable_password) {
            return Err(Error::unsupported(provider, "disable_password", reason));
        }
        self.check_keypair(provider, Some(request.keypair()))
    }

    /// Refuses an unbind that asks for what the cloud does not take; the key pair it names.
    pub fn check_unbind<'r>(
        &self,
        provider: &'static str,
        request: &'r UnbindRequest,
    ) -> Result<Option<&'r KeyPairRef>, Error> {
        self.check_common(provider, request.common())?;
        let keypair = if self.unbind_needs_keypair { Some(request.required_keypair()?) } else { request.keypair() };
        self.check_keypair(provider, keypair)?;
        Ok(keypair)
    }
}

/// One run a cloud's binder asks the engine for.
pub struct RunOf<P> {
    /// The run's pure parts.
    pub provider: P,
    /// What the report tells the caller to do or know afterwards.
    pub post_conditions: Vec<PostCondition>,
}

impl<P> RunOf<P> {
    /// A run of `provider`, its report listing `post_conditions`.
    pub fn new(provider: P, post_conditions: Vec<PostCondition>) -> Self {
        Self { provider, post_conditions }
    }
}

/// What a cloud's binder supplies; the kit implements [`KeypairBinder`] for
/// it: the option checks ([`Refusals`]), the run's spec and the engine call.
pub trait CloudBinder: fmt::Debug + Send + Sync {
    /// The pure parts of one run.
    type Run<'a>: Provider + 'a
    where
        Self: 'a;

    /// The provider's name.
    const PROVIDER: &'static str;

    /// Options this cloud does not take.
    const REFUSALS: Refusals;

    /// The binder's engine (its transport, credentials, window and rate limit).
    fn engine(&self) -> &Engine;

    /// What the cloud can do and what a bind leaves behind.
    fn cloud_capabilities(&self) -> Capabilities;

    /// The run of a bind whose options passed the checks.
    fn bind_run<'a>(&'a self, request: &'a BindRequest) -> Result<RunOf<Self::Run<'a>>, Error>;

    /// The run of an unbind of `keypair` (all bound when `None`) whose options passed the checks.
    fn unbind_run<'a>(
        &'a self,
        request: &'a UnbindRequest,
        keypair: Option<&'a KeyPairRef>,
    ) -> Result<RunOf<Self::Run<'a>>, Error>;

    /// The calls a checked bind would make.
    fn bind_plan(&self, request: &BindRequest) -> Result<Plan, Error>;

    /// The run whose import parts check and import `keypair` in the binder's
    /// region; `None` where the cloud cannot import.
    fn import_run<'a>(&'a self, keypair: &'a KeyPairRef) -> Option<Self::Run<'a>> {
        let _ = keypair;
        None
    }
}

#[async_trait]
impl<B: CloudBinder> KeypairBinder for B {
    fn capabilities(&self) -> Capabilities {
        self.cloud_capabilities()
    }

    async fn bind(&self, request: BindRequest) -> Result<BindReport, Error> {
        B::REFUSALS.check_bind(B::PROVIDER, &request)?;
        let run = self.bind_run(&request)?;
        let spec = RunSpec::new(Operation::Bind, Some(request.keypair()), request.common())
            .post_conditions(run.post_conditions);
        self.engine().run(&run.provider, spec).await
    }

    async fn unbind(&self, request: UnbindRequest) -> Result<BindReport, Error> {
        let keypair = B::REFUSALS.check_unbind(B::PROVIDER, &request)?;
        let run = self.unbind_run(&request, keypair)?;
        let spec = RunSpec::new(Operation::Unbind, keypair, request.common()).post_conditions(run.post_conditions);
        self.engine().run(&run.provider, spec).await
    }

    fn plan(&self, request: &BindRequest) -> Result<Plan, Error> {
        B::REFUSALS.check_bind(B::PROVIDER, request)?;
        self.bind_plan(request)
    }

    async fn ensure_keypair(&self, name: &str, key: &PublicKey, options: &RunOptions) -> Result<KeypairEnsured, Error> {
        let keypair = KeyPairRef::name(name)?;
        let Some(run) = self.import_run(&keypair) else {
            return Err(Error::unsupported(B::PROVIDER, "public_key", "this cloud cannot import key pairs"));
        };
        self.engine().ensure_keypair(&run, name, key, options).await
    }
}
