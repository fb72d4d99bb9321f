//! Following the tasks of one submission: one probe task is queried until it
//! ends, then the rest at once, so a batch costs little more than one query
//! per instance; every probe teaches the run's task-duration estimate.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::ids::InstanceId;
use crate::kit::provider::{Provider, TaskAnswer, TaskQueries, TaskRef};
use crate::kit::run::{Exchange, Halt, Purpose, RunState};
use crate::report::{Failure, FailureKind, InstanceOutcome};

/// Wait before asking again after a query got no answer and no `Retry-After`.
const TRANSIENT_WAIT: Duration = Duration::from_millis(500);
/// Most pages of the failed-task list read for reasons.
const MAX_FAILURE_PAGES: u32 = 10;

/// One task being followed.
#[derive(Clone, Debug)]
pub(crate) struct Followed {
    /// Index of the instance in its chunk.
    pub member: usize,
    pub id: InstanceId,
    pub task: String,
    /// The instance's latest operation as read before the task started.
    pub before: Option<String>,
}

impl Followed {
    fn task_ref(&self) -> TaskRef<'_> {
        TaskRef::new(&self.task, &self.id).with_before(self.before.as_deref())
    }
}

/// The tasks of one submission, answered at the same moment.
#[derive(Debug)]
pub(crate) struct Group {
    pub tasks: Vec<Followed>,
    answered_at: Instant,
    last_age: Option<Duration>,
    /// A query saw a task of the group running.
    queried: bool,
    /// A query got no answer: ask again then, whatever the estimate says.
    retry_at: Option<Instant>,
    last_error: HashMap<String, Failure>,
}

impl Group {
    pub fn new(tasks: Vec<Followed>, answered_at: Instant) -> Self {
        Self { tasks, answered_at, last_age: None, queried: false, retry_at: None, last_error: HashMap::new() }
    }

    /// Ends every task left as `unknown`, saying why.
    fn give_up(&mut self, why: &str) -> Vec<(usize, InstanceOutcome)> {
        self.tasks
            .drain(..)
            .map(|t| {
                let failure = self.last_error.remove(&t.task).map_or_else(
                    || Failure::new(FailureKind::Timeout, format!("task {} had not ended when {why}", t.task)),
                    |f| Failure {
                        message: format!("task {} had not ended when {why}; last error: {}", t.task, f.message),
                        ..f
                    },
                );
                (t.member, InstanceOutcome::unknown(failure.retryable(true)))
            })
            .collect()
    }
}

/// What one status query said, from the engine's side.
enum Step {
    Answer(TaskAnswer),
    Stop(Option<Failure>),
}

async fn query(run: &RunState<'_>, provider: &dyn Provider, tasks: &dyn TaskQueries, t: &Followed) -> Step {
    let mut steps = query_part(run, provider, tasks, std::slice::from_ref(t)).await;
    steps.pop().unwrap_or(Step::Stop(None))
}

/// One status query for `part` (a single task unless the provider reads several at once).
async fn query_part(
    run: &RunState<'_>,
    provider: &dyn Provider,
    tasks: &dyn TaskQueries,
    part: &[Followed],
) -> Vec<Step> {
    let asked: Vec<TaskRef<'_>> = part.iter().map(Followed::task_ref).collect();
    let each = |step: &dyn Fn() -> Step| part.iter().map(|_| step()).collect();
    match run.exchange(provider, Purpose::Read, &|| tasks.query_many(&asked)).await {
        Exchange::Answered(response) => {
            let mut answers = tasks.read_many(&asked, &response);
            answers.resize_with(part.len(), || {
                TaskAnswer::Transient(Failure::new(FailureKind::ProviderError, "the status answer left this task out"))
            });
            answers.into_iter().map(Step::Answer).collect()
        }
        Exchange::NotSent(f) | Exchange::NoAnswer(f) => each(&|| Step::Answer(TaskAnswer::Transient(f.clone()))),
        Exchange::Refused(f) | Exchange::Held(Halt::Aborted(f)) => each(&|| Step::Stop(Some(f.clone()))),
        Exchange::Held(_) => each(&|| Step::Stop(None)),
    }
}

/// Status of each of `rest`, several tasks a query where the provider can.
async fn query_rest(
    run: &RunState<'_>,
    provider: &dyn Provider,
    tasks: &dyn TaskQueries,
    rest: &[Followed],
) -> Vec<Step> {
    let parts = rest.chunks(tasks.max_per_query().max(1)).map(|part| query_part(run, provider, tasks, part));
    futures::future::join_all(parts).await.into_iter().flatten().collect()
}

/// Follows a group until some of its tasks end (or the run stops); returns
/// what is left of the group and the outcomes reached.
pub(crate) async fn follow(
    run: &RunState<'_>,
    provider: &dyn Provider,
    tasks: &dyn TaskQueries,
    mut group: Group,
) -> (Group, Vec<(usize, InstanceOutcome)>) {
    let polling = provider.profile().polling;
    loop {
        if group.tasks.is_empty() {
            return (group, Vec::new());
        }
        let estimated =
            run.estimator.lock().unwrap_or_else(|e| e.into_inner()).next_age(polling.schedule, group.last_age);
        let at = group.retry_at.take().unwrap_or(group.answered_at + estimated);
        if at.saturating_duration_since(group.answered_at) > polling.task_timeout {
            let why = format!("the task timeout of {:?} ran out", polling.task_timeout);
            let out = group.give_up(&why);
            return (group, out);
        }
        tokio::select! {
            () = tokio::time::sleep_until(at) => {}
            () = run.stopped() => {
                let out = group.give_up("the run stopped");
                return (group, out);
            }
        }
        let asked_at = Instant::now().saturating_duration_since(group.answered_at);
        group.last_age = Some(asked_at);
        let probe = group.tasks[0].clone();
        let answer = match query(run, provider, tasks, &probe).await {
            Step::Answer(a) => a,
            Step::Stop(reason) => {
                let why = reason.map_or("the run stopped".to_string(), |f| format!("the run stopped: {}", f.message));
                let out = group.give_up(&why);
                return (group, out);
            }
        };
        match answer {
            TaskAnswer::Running => {
                group.queried = true;
                run.estimator.lock().unwrap_or_else(|e| e.into_inner()).running_at(asked_at);
            }
            TaskAnswer::Transient(f) => {
                group.retry_at = Some(Instant::now() + f.retry_after.unwrap_or(TRANSIENT_WAIT));
                group.last_error.insert(probe.task.clone(), f);
            }
            ended => {
                if matches!(ended, TaskAnswer::Succeeded | TaskAnswer::Failed(_)) {
                    let first = !group.queried;
                    run.estimator.lock().unwrap_or_else(|e| e.into_inner()).ended_by(asked_at, first);
                }
                // The probe ended: the rest of its submission most likely did too.
                let rest: Vec<Followed> = group.tasks.drain(1..).collect();
                let answers = query_rest(run, provider, tasks, &rest).await;
                group.tasks.clear();
                let mut ended_now = vec![(probe, ended)];
                for (t, step) in rest.into_iter().zip(answers) {
                    match step {
                        Step::Answer(TaskAnswer::Running) => group.tasks.push(t),
                        Step::Answer(TaskAnswer::Transient(f)) => {
                            let again = Instant::now() + f.retry_after.unwrap_or(TRANSIENT_WAIT);
                            group.retry_at = Some(group.retry_at.map_or(again, |at| at.max(again)));
                            group.last_error.insert(t.task.clone(), f);
                            group.tasks.push(t);
                        }
                        Step::Answer(a) => ended_now.push((t, a)),
                        Step::Stop(_) => group.tasks.push(t),
                    }
                }
                let out = settle(run, provider, tasks, ended_now).await;
                return (group, out);
            }
        }
    }
}

/// Outcomes of ended tasks, with the reasons of failed ones fetched once for all.
async fn settle(
    run: &RunState<'_>,
    provider: &dyn Provider,
    tasks: &dyn TaskQueries,
    ended: Vec<(Followed, TaskAnswer)>,
) -> Vec<(usize, InstanceOutcome)> {
    let unexplained: Vec<&str> =
        ended.iter().filter(|(_, a)| matches!(a, TaskAnswer::Failed(None))).map(|(t, _)| t.task.as_str()).collect();
    let mut reasons =
        if unexplained.is_empty() { HashMap::new() } else { failure_reasons(run, provider, tasks, &unexplained).await };
    ended
        .into_iter()
        .map(|(t, answer)| {
            let outcome = match answer {
                TaskAnswer::Succeeded => InstanceOutcome::Bound,
                TaskAnswer::Failed(Some(f)) => InstanceOutcome::failed(f),
                TaskAnswer::Failed(None) => InstanceOutcome::failed(reasons.remove(&t.task).unwrap_or_else(|| {
                    Failure::new(
                        FailureKind::ProviderError,
                        format!("task {} failed; the cloud listed no reason", t.task),
                    )
                })),
                TaskAnswer::Lost(f) => InstanceOutcome::unknown(f),
                TaskAnswer::Running | TaskAnswer::Transient(_) => {
                    InstanceOutcome::unknown(Failure::new(FailureKind::ProviderError, "task state unclear"))
                }
            };
            (t.member, outcome)
        })
        .collect()
}

async fn failure_reasons(
    run: &RunState<'_>,
    provider: &dyn Provider,
    tasks: &dyn TaskQueries,
    wanted: &[&str],
) -> HashMap<String, Failure> {
    let mut found = HashMap::new();
    for page in 0..MAX_FAILURE_PAGES {
        let Some(_) = tasks.failure_query(page) else { break };
        let build = || tasks.failure_query(page).ok_or_else(|| Failure::new(FailureKind::ProviderError, "no query"));
        let Exchange::Answered(response) = run.exchange(provider, Purpose::Read, &build).await else { break };
        let (reasons, more) = tasks.read_failures(wanted, &response);
        found.extend(reasons);
        if found.len() >= wanted.len() || !more {
            break;
        }
    }
    found
}
