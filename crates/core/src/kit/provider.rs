//! The pure parts a provider supplies. None of them sends, sleeps, counts
//! calls or tracks time: the engine does all of that, the same way for
//! every cloud.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::http::HttpResponse;
use crate::ids::InstanceId;
use crate::kit::credentials::Credential;
use crate::kit::net::Net;
use crate::kit::outgoing::OutgoingRequest;
use crate::kit::polling::Polling;
use crate::public_key::PublicKey;
use crate::report::{Failure, FailureKind};
use crate::retry::RetryPolicy;

/// What a provider's run is like: caps, defaults and which optional parts the
/// engine should use.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Profile {
    /// Provider name for reports and errors.
    pub provider: &'static str,
    /// Most instances in one call.
    pub max_per_call: usize,
    /// Calls in flight when the caller does not say.
    pub default_concurrency: usize,
    /// Retry policy when the caller does not say.
    pub default_retry: RetryPolicy,
    /// Whether calls carry an idempotency token: an ambiguous call is then
    /// resent with the same token instead of being reconciled.
    pub idempotency_tokens: bool,
    /// Check each instance's state before its first send.
    pub precheck_states: bool,
    /// Confirm reported successes with a state query.
    pub verify_bindings: bool,
    /// State views show each instance's key pair: instances already in the
    /// requested state are reported unchanged and not sent (unless forced).
    pub converge: bool,
    /// How asynchronous tasks are followed.
    pub polling: Polling,
    /// Least time an ambiguous call's instances are watched through state
    /// queries before they count as not applied: how long the cloud may take
    /// to show a write it accepted.
    pub settle_grace: Duration,
}

impl Profile {
    /// A profile with the engine's defaults for everything but the name and cap.
    pub fn new(provider: &'static str, max_per_call: usize) -> Self {
        Self {
            provider,
            max_per_call: max_per_call.max(1),
            default_concurrency: 4,
            default_retry: RetryPolicy::default(),
            idempotency_tokens: false,
            precheck_states: false,
            verify_bindings: false,
            converge: false,
            polling: Polling::default(),
            settle_grace: DEFAULT_SETTLE_GRACE,
        }
    }

    /// Sets the default concurrency.
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.default_concurrency = concurrency.max(1);
        self
    }

    /// Sets the default retry policy.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.default_retry = retry;
        self
    }

    /// Marks calls as carrying an idempotency token.
    pub fn idempotency_tokens(mut self, on: bool) -> Self {
        self.idempotency_tokens = on;
        self
    }

    /// Pre-checks states before the first send.
    pub fn precheck_states(mut self, on: bool) -> Self {
        self.precheck_states = on;
        self
    }

    /// Verifies successes with a state query.
    pub fn verify_bindings(mut self, on: bool) -> Self {
        self.verify_bindings = on;
        self
    }

    /// Reads each instance's key pair before its first send, so re-runs converge.
    pub fn converge(mut self, on: bool) -> Self {
        self.converge = on;
        self
    }

    /// Sets how tasks are polled.
    pub fn polling(mut self, polling: Polling) -> Self {
        self.polling = polling;
        self
    }

    /// Sets how long ambiguous instances are watched before they count as not applied.
    pub fn settle_grace(mut self, grace: Duration) -> Self {
        self.settle_grace = grace;
        self
    }
}

/// Default [`Profile::settle_grace`]: clouds that apply at once show it within a second.
const DEFAULT_SETTLE_GRACE: Duration = Duration::from_secs(1);

/// One call the engine asks a provider to build.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Call<'a> {
    /// The instances it carries, at most the provider's cap.
    pub instances: &'a [InstanceId],
    /// The idempotency token, fixed for this set of instances before its first send.
    pub token: Option<&'a str>,
    /// 1-based attempt number of this exact call.
    pub attempt: u32,
    /// Most attempts the call may take.
    pub max_attempts: u32,
    /// The kind of call its instances' last state read asked for.
    pub kind: CallKind,
}

impl<'a> Call<'a> {
    /// A call, for providers' tests and benches.
    pub fn new(instances: &'a [InstanceId], token: Option<&'a str>, attempt: u32, max_attempts: u32) -> Self {
        Self { instances, token, attempt, max_attempts, kind: CallKind::SAME }
    }

    /// The same call, of this kind.
    pub fn of_kind(mut self, kind: CallKind) -> Self {
        self.kind = kind;
        self
    }

    /// The id an answer names, for [`CallAnswer::Instances`]: this call's
    /// own, shared ([`shared_id`]).
    pub fn answered_id(&self, id: &str, at: usize) -> Option<InstanceId> {
        shared_id(self.instances, id, at)
    }
}

/// The id an answer names, as one of `sent` (shared, not copied): found at
/// `at` when the answer keeps the order sent, else by search; an id not
/// sent is the named text checked anew (the engine ignores it).
pub fn shared_id(sent: &[InstanceId], id: &str, at: usize) -> Option<InstanceId> {
    match sent.get(at) {
        Some(own) if own.as_str() == id => Some(own.clone()),
        _ => sent.iter().find(|own| own.as_str() == id).cloned().or_else(|| InstanceId::new(id).ok()),
    }
}

/// What an answer says about one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Answer {
    /// Applied and confirmed.
    Bound,
    /// Not applied; final.
    Failed(Failure),
    /// Not applied, and worth re-issuing (throttled, transient).
    Retry(Failure),
    /// Not applied because of the instance's state: re-issue only if a state
    /// query shows it changing (Volcengine `InvalidInstanceStatus`).
    CheckState(Failure),
    /// Accepted as an asynchronous task with this id: follow it.
    Task(String),
    /// May or may not have been applied.
    Ambiguous(Failure),
    /// Not applied only because another instance of the same call was
    /// refused (clouds that validate a call all-or-nothing): send it again at
    /// once without that instance. Costs no retry; valid only beside a
    /// `Failed` or `CheckState` answer for the instance at fault.
    Resend(Failure),
    /// The whole call was refused for an instance it does not name: send
    /// this instance again in a call half the size, until the one at fault
    /// is alone (then this failure is its own). Costs no retry; bounded to
    /// about two extra calls per instance of the chunk.
    Split(Failure),
}

/// What an error answer means for the call, as a provider's error map
/// decides it from the cloud's code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// Not applied; send it again after a wait.
    Retry,
    /// May have been applied (a write's server error).
    Ambiguous,
    /// Not applied; final.
    Fail,
    /// The credentials were refused: stop the run.
    Credentials,
}

/// A provider's reading of a call's response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallAnswer {
    /// One answer per instance; an instance the list leaves out is ambiguous.
    /// [`Call::answered_id`] turns the id an answer names into the call's own.
    Instances(Vec<(InstanceId, Answer)>),
    /// The same answer for every instance of the call.
    All(Answer),
}

/// A response that says the credentials are the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CredentialProblem {
    /// Refused (wrong key, no permission): stop the whole run at once.
    Refused(Failure),
    /// Expired: worth one fresh credential and one more try, when the
    /// credential source can give a different one; refused otherwise.
    Expired(Failure),
}

/// A provider's name for a kind of call, where the call an instance needs
/// depends on its state (Huawei: a batch bind, or a reset of a stopped VM):
/// a state read says it ([`InstanceView::call_kind`]), the engine remembers
/// it, and one call carries instances of one kind ([`Call::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CallKind(pub &'static str);

impl CallKind {
    /// Every instance takes the same call (the default).
    pub const SAME: CallKind = CallKind("same");
}

/// A key pair as a cloud holds it: what tells whether it is the key asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredKeypair {
    /// Its id, where the cloud has one.
    pub id: Option<String>,
    /// Its public key, where the cloud shows it.
    pub public_key: Option<String>,
    /// Its MD5 fingerprint, where the cloud shows only that.
    pub fingerprint: Option<String>,
}

impl StoredKeypair {
    /// A key pair with this id, public key and fingerprint (each where known).
    pub fn new(id: Option<String>, public_key: Option<String>, fingerprint: Option<String>) -> Self {
        Self { id, public_key, fingerprint }
    }

    /// Whether it holds `key`: by public key where shown, else by fingerprint.
    pub fn holds(&self, key: &PublicKey) -> bool {
        match (&self.public_key, &self.fingerprint) {
            (Some(line), _) => key.same_as(line),
            (None, Some(fingerprint)) => key.has_fingerprint(fingerprint),
            (None, None) => false,
        }
    }

    /// How it is told apart, for a message: its fingerprint, or its key's.
    pub fn describe(&self) -> String {
        match (&self.fingerprint, &self.public_key) {
            (Some(f), _) => format!("fingerprint {f}"),
            (None, Some(line)) => match PublicKey::parse(line) {
                Ok(key) => format!("fingerprint {}", key.md5_fingerprint()),
                Err(_) => "an unreadable public key".to_string(),
            },
            (None, None) => "an unknown key".to_string(),
        }
    }
}

/// A provider's pure parts for one run (bind or unbind, one key pair).
///
/// Only `prepare` sends, through the engine's [`Net`]; everything else is a
/// pure function of its arguments. What a run learns is held by the engine
/// (per instance: [`InstanceView`], [`TaskRef::before`]) or by the provider
/// value `prepare` returns, which is immutable: no provider keeps locks.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Caps, defaults and the optional parts to use.
    fn profile(&self) -> &Profile;

    /// Runs once before the first call: setup reads whose answers every call
    /// of the run needs (a key id, a project id). Returns the provider the
    /// run continues with, holding what they found; `None` to keep this one.
    async fn prepare<'s>(&'s self, _net: &dyn Net) -> Result<Option<Box<dyn Provider + 's>>, Failure> {
        Ok(None)
    }

    /// Runs once before key-pair import calls (Huawei: the project id); as
    /// [`prepare`](Self::prepare).
    async fn prepare_import<'s>(&'s self, _net: &dyn Net) -> Result<Option<Box<dyn Provider + 's>>, Failure> {
        Ok(None)
    }

    /// The read of the key pair `name` in the region (import: is it there?).
    fn keypair_read(&self, _name: &str) -> Result<OutgoingRequest, Failure> {
        Err(Failure::new(FailureKind::InvalidRequest, "this cloud cannot import key pairs"))
    }

    /// What that read found: the key pair, or `None` when there is none of that name.
    fn keypair_found(&self, _response: &HttpResponse, _name: &str) -> Result<Option<StoredKeypair>, Failure> {
        Ok(None)
    }

    /// The import of `key` as the key pair `name`.
    fn keypair_import(&self, _name: &str, _key: &PublicKey) -> Result<OutgoingRequest, Failure> {
        Err(Failure::new(FailureKind::InvalidRequest, "this cloud cannot import key pairs"))
    }

    /// What the import answered: the key pair it made (its id, where the cloud gives one).
    fn keypair_imported(&self, _response: &HttpResponse, _name: &str) -> Result<StoredKeypair, Failure> {
        Err(Failure::new(FailureKind::InvalidRequest, "this cloud cannot import key pairs"))
    }

    /// Authenticates a request with `credential` at `now`, right before each
    /// send (a fresh signature every attempt). A failure of kind `Auth` or
    /// `Permission` stops the run; any other is a retryable not-sent failure.
    fn authorize(
        &self,
        request: &mut OutgoingRequest,
        credential: &Credential,
        now: DateTime<Utc>,
    ) -> Result<(), Failure>;

    /// Whether a response is a refusal of the credentials.
    fn credential_problem(&self, response: &HttpResponse) -> Option<CredentialProblem>;

    /// Builds the call that binds (or unbinds) these instances.
    fn build_call(&self, call: &Call<'_>) -> Result<OutgoingRequest, Failure>;

    /// Reads a call's response, per instance.
    fn classify(&self, call: &Call<'_>, response: &HttpResponse) -> CallAnswer;

    /// Most instances one call of `kind` carries (at most the profile's cap).
    fn kind_cap(&self, _kind: CallKind) -> usize {
        usize::MAX
    }

    /// Task status queries, for providers whose calls start tasks.
    fn tasks(&self) -> Option<&dyn TaskQueries> {
        None
    }

    /// "What is running for these instances", to settle ambiguous calls
    /// of providers without idempotency tokens.
    fn reconciler(&self) -> Option<&dyn Reconciler> {
        None
    }

    /// Instance state queries (pre-checks, `CheckState`, verification).
    fn states(&self) -> Option<&dyn StateQueries> {
        None
    }
}

/// What a task status query said.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskAnswer {
    /// Still running.
    Running,
    /// Ended and applied.
    Succeeded,
    /// Ended, not applied; `None` when the reason must come from [`TaskQueries::failure_query`].
    Failed(Option<Failure>),
    /// No answer this time (throttled, 5xx, unreadable): ask again later.
    Transient(Failure),
    /// The task cannot be seen any more: its instance ends `unknown`.
    Lost(Failure),
}

/// One task the engine follows, with what the run knew of its instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TaskRef<'a> {
    /// The task (or operation) id.
    pub task: &'a str,
    /// Its instance.
    pub instance: &'a InstanceId,
    /// The instance's latest operation when its state was last read before
    /// the task started, on clouds that show one: while the instance still
    /// shows this one, the task has not shown yet.
    pub before: Option<&'a str>,
}

impl<'a> TaskRef<'a> {
    /// A task of `instance`, for providers' tests.
    pub fn new(task: &'a str, instance: &'a InstanceId) -> Self {
        Self { task, instance, before: None }
    }

    /// The same task, with the instance's operation read before it started.
    pub fn with_before(mut self, before: Option<&'a str>) -> Self {
        self.before = before;
        self
    }
}

/// A provider's task status queries.
pub trait TaskQueries: Send + Sync {
    /// The status query of one task.
    fn query(&self, task: &TaskRef<'_>) -> Result<OutgoingRequest, Failure>;

    /// Reads a status answer.
    fn read(&self, task: &TaskRef<'_>, response: &HttpResponse) -> TaskAnswer;

    /// Most tasks one status query can ask about; above 1, the engine asks
    /// about the rest of a submission with [`query_many`](Self::query_many).
    fn max_per_query(&self) -> usize {
        1
    }

    /// One status query for several tasks.
    fn query_many(&self, tasks: &[TaskRef<'_>]) -> Result<OutgoingRequest, Failure> {
        match tasks {
            [task] => self.query(task),
            _ => Err(Failure::new(FailureKind::ProviderError, "one task per status query")),
        }
    }

    /// Reads a several-task answer: one answer per task, in order.
    fn read_many(&self, tasks: &[TaskRef<'_>], response: &HttpResponse) -> Vec<TaskAnswer> {
        tasks.iter().map(|task| self.read(task, response)).collect()
    }

    /// Page `page` of the failed-task list, when failure reasons live there.
    fn failure_query(&self, _page: u32) -> Option<OutgoingRequest> {
        None
    }

    /// Reasons for `tasks` found on a failed-task page, and whether more pages follow.
    fn read_failures(&self, _tasks: &[&str], _response: &HttpResponse) -> (Vec<(String, Failure)>, bool) {
        (Vec::new(), false)
    }
}

/// A provider's listing of running operations.
pub trait Reconciler: Send + Sync {
    /// Page `page` of what is running.
    fn query(&self, page: u32) -> Result<OutgoingRequest, Failure>;

    /// For `instances`, the running task of this run's key pair and
    /// operation found on a page (as [`Answer::Task`]), and whether more
    /// pages follow. A non-success answer is `Err` with its failure.
    fn read(
        &self,
        instances: &[InstanceId],
        response: &HttpResponse,
    ) -> Result<(Vec<(InstanceId, Answer)>, bool), Failure>;
}

/// Whether an instance can take the operation now.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Readiness {
    /// Send it.
    Ready,
    /// Changing state: wait (the failure's `retry_after`) and check again.
    Wait(Failure),
    /// Cannot take it: fail without sending.
    Refuse(Failure),
}

/// Least wait before an instance that is changing state is read again, on every cloud.
pub const STATE_CHANGE_WAIT: Duration = Duration::from_secs(5);

impl Readiness {
    /// Changing state (starting, stopping, an operation running): read it
    /// again after `wait` ([`STATE_CHANGE_WAIT`] unless the binder says).
    pub fn changing(message: impl Into<String>, wait: Duration) -> Self {
        Self::Wait(Failure::new(FailureKind::InvalidState, message).retryable(true).with_retry_after(Some(wait)))
    }

    /// In a state the operation cannot take: fail without sending.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::Refuse(Failure::new(FailureKind::InvalidState, message))
    }

    /// A Windows image: no cloud binds SSH key pairs to one.
    pub fn windows() -> Self {
        Self::Refuse(Failure::new(FailureKind::UnsupportedImage, "key pairs cannot be used with Windows"))
    }
}

/// What a state query shows of one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstanceView {
    /// The instance.
    pub id: InstanceId,
    /// The cloud's status word.
    pub status: String,
    /// Name of the key pair it holds, if any.
    pub keypair_name: Option<String>,
    /// Id of the key pair it holds, if any.
    pub keypair_id: Option<String>,
    /// Whether it can take the operation now.
    pub readiness: Readiness,
    /// Id of the last operation started on it, on clouds that show one: an
    /// ambiguous call started an operation exactly when this moved.
    pub latest_operation: Option<String>,
    /// The kind of call this state needs (Huawei: a reset for a stopped VM);
    /// the engine remembers it for the instance's next send.
    pub call_kind: CallKind,
}

impl InstanceView {
    /// A view of one instance.
    pub fn new(id: InstanceId, status: impl Into<String>, readiness: Readiness) -> Self {
        Self {
            id,
            status: status.into(),
            keypair_name: None,
            keypair_id: None,
            readiness,
            latest_operation: None,
            call_kind: CallKind::SAME,
        }
    }

    /// Sets the kind of call this state needs.
    pub fn with_call_kind(mut self, kind: CallKind) -> Self {
        self.call_kind = kind;
        self
    }

    /// Sets the id of the last operation started on it.
    pub fn with_latest_operation(mut self, operation: Option<String>) -> Self {
        self.latest_operation = operation.filter(|s| !s.is_empty());
        self
    }

    /// Sets the key pair it holds.
    pub fn with_keypair(mut self, name: Option<String>, id: Option<String>) -> Self {
        self.keypair_name = name.filter(|s| !s.is_empty());
        self.keypair_id = id.filter(|s| !s.is_empty());
        self
    }
}

/// A provider's instance state queries.
pub trait StateQueries: Send + Sync {
    /// Most instances one query takes.
    fn max_per_query(&self) -> usize;

    /// The query for these instances.
    fn query(&self, instances: &[InstanceId]) -> Result<OutgoingRequest, Failure>;

    /// Reads the answer to the query for `instances`; instances it does not
    /// list do not exist. Views name their instance with [`shared_id`] of
    /// `instances`, so a run holds each id once. A non-success answer is
    /// `Err` with its failure.
    fn read(&self, instances: &[InstanceId], response: &HttpResponse) -> Result<Vec<InstanceView>, Failure>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answered_id_is_the_calls_own_in_any_order_and_checked_otherwise() {
        let ids: Vec<InstanceId> = ["i-1", "i-2"].iter().map(|i| InstanceId::new(i).unwrap()).collect();
        let call = Call::new(&ids, None, 1, 1);
        let own = call.answered_id("i-2", 1).unwrap();
        assert!(std::ptr::eq(own.as_str(), ids[1].as_str()), "shared, not copied");
        let moved = call.answered_id("i-1", 1).unwrap();
        assert!(std::ptr::eq(moved.as_str(), ids[0].as_str()), "out of order: found and shared");
        assert_eq!(call.answered_id("i-9", 5).unwrap().as_str(), "i-9", "not in the call: the engine ignores it");
        assert!(call.answered_id("bad id", 0).is_none());
    }
}
