//! A fleet run: many targets (each a binder for one cloud, region and
//! account, with its own caps, window, rate limit and retries) at once, each
//! ending in its own report or error, in the order given. A refused target
//! fails alone; one cancellation token shared by the targets' requests stops
//! them all.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::binder::KeypairBinder;
use crate::error::Error;
use crate::ids::KeyPairRef;
use crate::public_key::{KeypairEnsured, PublicKey};
use crate::report::BindReport;
use crate::request::{BindRequest, UnbindRequest};

/// Most targets run at once unless the caller says.
pub const DEFAULT_MAX_TARGETS: usize = 16;

/// What a target does.
enum Work {
    Bind(BindRequest),
    Unbind(UnbindRequest),
}

/// One target of a fleet: a binder and what to do with it.
pub struct FleetTarget {
    label: String,
    binder: Arc<dyn KeypairBinder>,
    work: Work,
    /// A bind's key, to import first where the key pair is missing.
    public_key: Option<PublicKey>,
}

impl std::fmt::Debug for FleetTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetTarget").field("label", &self.label).field("binder", &self.binder).finish_non_exhaustive()
    }
}

impl FleetTarget {
    /// Binds `request`'s key pair with `binder`; `label` names the target in the report.
    pub fn bind(label: impl Into<String>, binder: Arc<dyn KeypairBinder>, request: BindRequest) -> Self {
        Self { label: label.into(), binder, work: Work::Bind(request), public_key: None }
    }

    /// Before binding, makes sure the request's key pair (named) holds `key`
    /// in the target's region, importing it where it is missing
    /// ([`KeypairBinder::ensure_keypair`]); a target where the name holds
    /// another key fails as a whole, nothing bound.
    pub fn with_public_key(mut self, key: PublicKey) -> Self {
        self.public_key = Some(key);
        self
    }

    /// Removes a key pair with `binder`.
    pub fn unbind(label: impl Into<String>, binder: Arc<dyn KeypairBinder>, request: UnbindRequest) -> Self {
        Self { label: label.into(), binder, work: Work::Unbind(request), public_key: None }
    }
}

/// Targets run together.
#[derive(Debug)]
pub struct Fleet {
    targets: Vec<FleetTarget>,
    max_targets: usize,
    deadline: Option<Duration>,
}

impl Fleet {
    /// A fleet of `targets`, at most [`DEFAULT_MAX_TARGETS`] at once.
    pub fn new(targets: Vec<FleetTarget>) -> Self {
        Self { targets, max_targets: DEFAULT_MAX_TARGETS, deadline: None }
    }

    /// One deadline for the whole fleet, from `run`: a target that starts
    /// late (beyond [`max_targets`](Self::max_targets)) gets what is left of
    /// it, or less when its own request says so.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Runs at most `n` targets at once (at least one).
    pub fn max_targets(mut self, n: usize) -> Self {
        self.max_targets = n.max(1);
        self
    }

    /// Runs every target; each ends in its report or its error, in the order given.
    pub async fn run(self) -> FleetReport {
        let count = self.targets.len();
        let until = self.deadline.map(|d| Instant::now() + d);
        let runs = self.targets.into_iter().enumerate().map(move |(index, mut target)| async move {
            if let Some(until) = until {
                let left = until.saturating_duration_since(Instant::now());
                let options = match &mut target.work {
                    Work::Bind(request) => &mut request.common_mut().options,
                    Work::Unbind(request) => &mut request.common_mut().options,
                };
                options.deadline = Some(options.deadline.map_or(left, |own| own.min(left)));
            }
            let provider = target.binder.capabilities().provider;
            let mut keypair = None;
            let result = match (target.work, &target.public_key) {
                (Work::Bind(request), Some(_)) if matches!(request.keypair(), KeyPairRef::Id(_)) => {
                    Err(Error::unsupported(
                        provider,
                        "public_key",
                        "an import names its key pair: give the name, not the id",
                    ))
                }
                (Work::Bind(request), Some(key)) => {
                    let name = request.keypair().as_str().to_string();
                    match target.binder.ensure_keypair(&name, key, &request.common().options).await {
                        Ok(ensured) => {
                            keypair = Some(ensured);
                            target.binder.bind(request).await
                        }
                        Err(e) => Err(e),
                    }
                }
                (Work::Bind(request), None) => target.binder.bind(request).await,
                (Work::Unbind(request), _) => target.binder.unbind(request).await,
            };
            (index, TargetReport { label: target.label, provider, keypair, result })
        });
        let mut done: Vec<Option<TargetReport>> = (0..count).map(|_| None).collect();
        let mut stream = futures::stream::iter(runs).buffer_unordered(self.max_targets);
        while let Some((index, report)) = stream.next().await {
            done[index] = Some(report);
        }
        FleetReport { targets: done.into_iter().flatten().collect() }
    }
}

/// One target's end.
#[derive(Debug)]
#[non_exhaustive]
pub struct TargetReport {
    /// The target's label.
    pub label: String,
    /// Its provider.
    pub provider: &'static str,
    /// The key pair ensured before binding (with a public key), if it was.
    pub keypair: Option<KeypairEnsured>,
    /// Its report, or why the target as a whole failed (credentials refused
    /// or missing, configuration): nothing was applied there.
    pub result: Result<BindReport, Error>,
}

/// Every target's end, in the order given.
#[derive(Debug)]
#[non_exhaustive]
pub struct FleetReport {
    /// One entry per target.
    pub targets: Vec<TargetReport>,
}

impl FleetReport {
    /// Whether every target ran and every instance succeeded.
    pub fn all_bound(&self) -> bool {
        self.targets.iter().all(|t| t.result.as_ref().is_ok_and(BindReport::all_bound))
    }

    /// Instances (succeeded, failed, unknown) over the targets that ran, and
    /// the targets that failed as a whole.
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        self.targets.iter().fold((0, 0, 0, 0), |(s, f, u, t), target| match &target.result {
            Ok(report) => {
                let (rs, rf, ru) = report.counts();
                (s + rs, f + rf, u + ru, t)
            }
            Err(_) => (s, f, u, t + 1),
        })
    }
}
