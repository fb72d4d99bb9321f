//! The in-memory cloud: instances, tasks, faults and the record of calls,
//! behind an in-process transport.

use super::*;

/// The key the in-memory cloud accepts unless told otherwise.
pub const MEMORY_KEY: &str = "memory-key";

/// What the in-memory cloud does with one instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behavior {
    /// Applies the operation.
    Apply,
    /// Refuses it with this failure every time.
    Fail(Failure),
    /// Answers "retry" this many times (with this failure), then applies.
    RetryThenApply(u32, Failure),
    /// Applies it, but reports the outcome as ambiguous.
    ApplyButUnknown(Failure),
    /// Applies it, but leaves it out of the response.
    ApplyButOmit,
    /// Refuses it as changing state this many times, then applies.
    ChangingThenApply(u32),
}

/// A fault of one whole call, taken in arrival order by key-pair calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallFault {
    /// 429 with this `Retry-After`; nothing applied.
    Throttle(Duration),
    /// 503; nothing applied.
    Unavailable,
    /// The connection fails before the request is read; nothing applied.
    NotSent,
    /// Applied, then the connection drops without an answer.
    DropAfterApply,
    /// Applied, then a 502 answer.
    BadGatewayAfterApply,
    /// Not applied, and the connection drops after the request was sent.
    LostBeforeApply,
}

/// One call the in-memory cloud received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// Bind or unbind.
    pub operation: Operation,
    /// Instances in the call.
    pub instances: Vec<InstanceId>,
    /// Idempotency token, if any.
    pub token: Option<String>,
    /// When it arrived.
    pub at: Instant,
}

#[derive(Debug)]
pub(super) struct Task {
    pub(super) instance: InstanceId,
    pub(super) keypair: String,
    pub(super) operation: Operation,
    pub(super) ends: Instant,
    pub(super) ok: bool,
}

#[derive(Debug, Default)]
pub(super) struct State {
    pub(super) bound: HashMap<InstanceId, String>,
    pub(super) applications: HashMap<InstanceId, u32>,
    pub(super) retries_left: HashMap<InstanceId, u32>,
    pub(super) calls: Vec<CallRecord>,
    pub(super) faults: VecDeque<CallFault>,
    pub(super) replies: HashMap<String, Value>,
    pub(super) tasks: HashMap<String, Task>,
    pub(super) next_task: u64,
    pub(super) in_flight: usize,
    pub(super) max_in_flight: usize,
    pub(super) writes_in_flight: usize,
    pub(super) max_writes_in_flight: usize,
    pub(super) max_in_operation: usize,
    pub(super) refused: u32,
    pub(super) window_refusals: u32,
    pub(super) started: HashMap<InstanceId, u32>,
    pub(super) total_calls: u64,
    pub(super) task_queries: u64,
}

/// The in-memory cloud: the other end of the transport.
#[derive(Debug)]
pub(super) struct Cloud {
    pub(super) behaviors: HashMap<InstanceId, Behavior>,
    pub(super) latency: Duration,
    pub(super) task_duration: Option<Duration>,
    pub(super) window: Option<usize>,
    pub(super) key: String,
    pub(super) state: Mutex<State>,
}

impl Cloud {
    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn advance(&self, state: &mut State, now: Instant) {
        let due: Vec<String> = state.tasks.iter().filter(|(_, t)| t.ends <= now).map(|(id, _)| id.clone()).collect();
        for id in due {
            if let Some(task) = state.tasks.get(&id)
                && task.ok
                && !state
                    .bound
                    .get(&task.instance)
                    .is_some_and(|k| *k == task.keypair && task.operation == Operation::Bind)
            {
                let (instance, keypair, operation) = (task.instance.clone(), task.keypair.clone(), task.operation);
                apply(state, &instance, &keypair, operation);
            }
            if let Some(task) = state.tasks.get_mut(&id) {
                task.ends = far_future();
            }
        }
    }

    pub(super) fn running(state: &State) -> usize {
        state.tasks.values().filter(|t| t.ends != far_future()).count()
    }

    pub(super) fn answer(&self, request: &OutgoingRequest) -> Result<HttpResponse, TransportError> {
        let now = Instant::now();
        let mut state = self.state();
        self.advance(&mut state, now);
        if request.headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("memory {}", self.key)) {
            state.refused += 1;
            return Ok(json_response(401, json!({"code": "Unauthorized", "message": "the key was refused"})));
        }
        let path = request.uri.path().to_string();
        if let Some(task) = path.strip_prefix("/task/") {
            state.task_queries += 1;
            let status = match state.tasks.get(task) {
                None => return Ok(json_response(404, json!({"code": "NoTask", "message": "no such task"}))),
                Some(t) if t.ends != far_future() => "running",
                Some(t) if t.ok => "succeeded",
                Some(_) => "failed",
            };
            return Ok(json_response(200, json!({"status": status})));
        }
        if path == "/running" {
            let tasks: Vec<Value> = state
                .tasks
                .iter()
                .filter(|(_, t)| t.ends != far_future())
                .map(|(id, t)| json!({"id": id, "instance": t.instance, "keypair": t.keypair, "op": t.operation}))
                .collect();
            return Ok(json_response(200, json!({"tasks": tasks})));
        }
        if path == "/states" {
            let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let mut views = Vec::new();
            for id in body["ids"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                let Ok(id) = InstanceId::new(id) else { continue };
                let changing = match self.behaviors.get(&id) {
                    Some(Behavior::ChangingThenApply(times)) => {
                        let left = state.retries_left.entry(id.clone()).or_insert(*times);
                        let changing = *left > 0;
                        *left = left.saturating_sub(1);
                        changing
                    }
                    _ => false,
                };
                views.push(json!({"id": id, "status": if changing { "STARTING" } else { "RUNNING" },
                    "keypair": state.bound.get(&id)}));
            }
            return Ok(json_response(200, json!({"instances": views})));
        }
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let operation = if body["op"] == "unbind" { Operation::Unbind } else { Operation::Bind };
        let keypair = body["keypair"].as_str().unwrap_or("").to_string();
        let token = body["token"].as_str().map(str::to_string);
        let ids: Vec<InstanceId> = body["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().and_then(|s| InstanceId::new(s).ok()))
            .collect();
        state.calls.push(CallRecord { operation, instances: ids.clone(), token: token.clone(), at: now });
        let fault = state.faults.pop_front();
        match fault {
            Some(CallFault::Throttle(wait)) => {
                let mut r = json_response(429, json!({"code": "Throttled", "message": "slow down"}));
                if let Ok(v) = format!("{:.3}", wait.as_secs_f64()).parse() {
                    r.headers.insert("retry-after", v);
                }
                return Ok(r);
            }
            Some(CallFault::Unavailable) => {
                return Ok(json_response(503, json!({"code": "Unavailable", "message": "try later"})));
            }
            Some(CallFault::NotSent) => return Err(TransportError::NotSent("connection refused".into())),
            Some(CallFault::LostBeforeApply) => {
                return Err(TransportError::MaybeSent("connection reset before an answer".into()));
            }
            _ => {}
        }
        if let Some(token) = &token
            && let Some(reply) = state.replies.get(token)
        {
            let reply = reply.clone();
            return Ok(json_response(200, reply));
        }
        let mut results = Vec::with_capacity(ids.len());
        for id in &ids {
            let behavior = self.behaviors.get(id).cloned().unwrap_or(Behavior::Apply);
            let entry = match behavior {
                Behavior::Fail(f) => {
                    json!({"id": id, "status": "failed", "kind": f.kind, "code": f.code, "message": f.message})
                }
                Behavior::RetryThenApply(times, _) | Behavior::ChangingThenApply(times)
                    if *state.retries_left.entry(id.clone()).or_insert(times) > 0 =>
                {
                    *state.retries_left.get_mut(id).unwrap_or(&mut 0) -= 1;
                    if matches!(behavior, Behavior::ChangingThenApply(_)) {
                        json!({"id": id, "status": "changing", "message": "instance is changing state"})
                    } else {
                        json!({"id": id, "status": "retry", "message": "throttled for this instance"})
                    }
                }
                _ if self.window.is_some_and(|w| Self::running(&state) >= w) => {
                    state.window_refusals += 1;
                    json!({"id": id, "status": "failed", "code": "WindowFull", "message": "too many in operation"})
                }
                other => {
                    *state.started.entry(id.clone()).or_default() += 1;
                    let status = if let Some(duration) = self.task_duration {
                        state.next_task += 1;
                        let task = format!("task-{}", state.next_task);
                        state.tasks.insert(
                            task.clone(),
                            Task {
                                instance: id.clone(),
                                keypair: keypair.clone(),
                                operation,
                                ends: now + duration,
                                ok: true,
                            },
                        );
                        let running = Self::running(&state);
                        state.max_in_operation = state.max_in_operation.max(running);
                        json!({"id": id, "status": "task", "task": task})
                    } else {
                        apply(&mut state, id, &keypair, operation);
                        json!({"id": id, "status": "bound"})
                    };
                    match other {
                        Behavior::ApplyButUnknown(f) => json!({"id": id, "status": "ambiguous", "message": f.message}),
                        Behavior::ApplyButOmit => continue,
                        _ => status,
                    }
                }
            };
            results.push(entry);
        }
        let reply = json!({"results": results});
        if let Some(token) = token {
            state.replies.insert(token, reply.clone());
        }
        match fault {
            Some(CallFault::DropAfterApply) => Err(TransportError::MaybeSent("connection reset".into())),
            Some(CallFault::BadGatewayAfterApply) => {
                Ok(json_response(502, json!({"code": "BadGateway", "message": "backend timeout"})))
            }
            _ => Ok(json_response(200, reply)),
        }
    }
}

pub(super) fn apply(state: &mut State, id: &InstanceId, keypair: &str, operation: Operation) {
    *state.applications.entry(id.clone()).or_default() += 1;
    match operation {
        Operation::Bind => state.bound.insert(id.clone(), keypair.to_string()),
        Operation::Unbind => state.bound.remove(id),
    };
}

pub(super) fn far_future() -> Instant {
    static FAR: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *FAR.get_or_init(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600))
}

pub(super) fn json_response(status: u16, body: Value) -> HttpResponse {
    HttpResponse::new(status, serde_json::to_vec(&body).unwrap_or_default())
}

#[derive(Debug)]
pub(super) struct MemoryTransport {
    pub(super) cloud: Arc<Cloud>,
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn send(&self, request: OutgoingRequest, _provider: &'static str) -> Result<HttpResponse, TransportError> {
        let write = request.uri.path() == "/call";
        {
            let mut state = self.cloud.state();
            state.total_calls += 1;
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
            if write {
                state.writes_in_flight += 1;
                state.max_writes_in_flight = state.max_writes_in_flight.max(state.writes_in_flight);
            }
        }
        if !self.cloud.latency.is_zero() {
            tokio::time::sleep(self.cloud.latency).await;
        }
        let answer = self.cloud.answer(&request);
        let mut state = self.cloud.state();
        state.in_flight -= 1;
        if write {
            state.writes_in_flight -= 1;
        }
        answer
    }
}
