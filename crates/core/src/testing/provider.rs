//! The in-memory cloud's provider half: JSON calls and their answers.

use super::*;

/// The provider half: builds JSON calls and reads the cloud's answers.
pub(super) struct MemoryProvider {
    pub(super) profile: Profile,
    pub(super) reconcile: bool,
    pub(super) operation: Operation,
    pub(super) keypair: String,
}

pub(super) fn uri(path: &str) -> Uri {
    format!("http://memory.invalid{path}").parse().unwrap_or_else(|_| Uri::from_static("http://memory.invalid/"))
}

pub(super) fn failure_of(response: &HttpResponse) -> Failure {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let kind = match response.status {
        429 => FailureKind::Throttled,
        401 => FailureKind::Auth,
        _ => FailureKind::ProviderError,
    };
    Failure::new(kind, body["message"].as_str().unwrap_or("error"))
        .with_code_opt(body["code"].as_str().map(str::to_string))
        .with_status(response.status)
        .retryable(matches!(response.status, 429 | 502 | 503))
        .with_retry_after(response.retry_after())
}

#[async_trait]
impl Provider for MemoryProvider {
    fn profile(&self) -> &Profile {
        &self.profile
    }

    fn authorize(
        &self,
        request: &mut OutgoingRequest,
        credential: &Credential,
        _now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let Credential::Token(key) = credential else { return Err(Failure::new(FailureKind::Auth, "not a key")) };
        let value =
            format!("memory {}", key.expose()).parse().map_err(|_| Failure::new(FailureKind::Auth, "bad key"))?;
        request.headers.insert("authorization", value);
        Ok(())
    }

    fn credential_problem(&self, response: &HttpResponse) -> Option<CredentialProblem> {
        (response.status == 401).then(|| CredentialProblem::Refused(failure_of(response)))
    }

    fn build_call(&self, call: &Call<'_>) -> Result<OutgoingRequest, Failure> {
        let body = json!({"op": self.operation, "keypair": self.keypair, "ids": call.instances, "token": call.token});
        Ok(OutgoingRequest::new(Method::POST, uri("/call"), "memory:call")
            .with_body(serde_json::to_vec(&body).unwrap_or_default())
            .with_instances(call.instances.len()))
    }

    fn classify(&self, _call: &Call<'_>, response: &HttpResponse) -> CallAnswer {
        if !response.is_success() {
            let failure = failure_of(response);
            return CallAnswer::All(match response.status {
                502 | 504 => Answer::Ambiguous(failure),
                429 | 503 => Answer::Retry(failure),
                _ => Answer::Failed(failure),
            });
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let answers = body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                let id = InstanceId::new(r["id"].as_str()?).ok()?;
                let message = r["message"].as_str().unwrap_or("").to_string();
                let answer = match r["status"].as_str()? {
                    "bound" => Answer::Bound,
                    "task" => Answer::Task(r["task"].as_str()?.to_string()),
                    "retry" => Answer::Retry(Failure::new(FailureKind::Throttled, message).retryable(true)),
                    "changing" => Answer::CheckState(Failure::new(FailureKind::InvalidState, message)),
                    "ambiguous" => Answer::Ambiguous(Failure::new(FailureKind::ProviderError, message)),
                    _ => {
                        let kind = serde_json::from_value(r["kind"].clone()).unwrap_or(FailureKind::ProviderError);
                        Answer::Failed(
                            Failure::new(kind, message).with_code_opt(r["code"].as_str().map(str::to_string)),
                        )
                    }
                };
                Some((id, answer))
            })
            .collect();
        CallAnswer::Instances(answers)
    }

    fn tasks(&self) -> Option<&dyn TaskQueries> {
        Some(self)
    }

    fn reconciler(&self) -> Option<&dyn Reconciler> {
        (!self.profile.idempotency_tokens && self.reconcile).then_some(self as &dyn Reconciler)
    }

    fn states(&self) -> Option<&dyn StateQueries> {
        Some(self)
    }
}

impl TaskQueries for MemoryProvider {
    fn query(&self, task: &TaskRef<'_>) -> Result<OutgoingRequest, Failure> {
        Ok(OutgoingRequest::new(Method::GET, uri(&format!("/task/{}", task.task)), "memory:task"))
    }

    fn read(&self, _task: &TaskRef<'_>, response: &HttpResponse) -> TaskAnswer {
        if !response.is_success() {
            let failure = failure_of(response);
            return if failure.retryable { TaskAnswer::Transient(failure) } else { TaskAnswer::Lost(failure) };
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        match body["status"].as_str() {
            Some("succeeded") => TaskAnswer::Succeeded,
            Some("failed") => TaskAnswer::Failed(Some(Failure::new(FailureKind::ProviderError, "task failed"))),
            _ => TaskAnswer::Running,
        }
    }
}

impl Reconciler for MemoryProvider {
    fn query(&self, _page: u32) -> Result<OutgoingRequest, Failure> {
        Ok(OutgoingRequest::new(Method::GET, uri("/running"), "memory:running"))
    }

    fn read(
        &self,
        instances: &[InstanceId],
        response: &HttpResponse,
    ) -> Result<(Vec<(InstanceId, Answer)>, bool), Failure> {
        if !response.is_success() {
            return Err(failure_of(response));
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let op = serde_json::to_value(self.operation).unwrap_or(Value::Null);
        let found = body["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["keypair"] == self.keypair.as_str() && t["op"] == op)
            .filter_map(|t| {
                let id = InstanceId::new(t["instance"].as_str()?).ok()?;
                instances.contains(&id).then(|| (id, Answer::Task(t["id"].as_str().unwrap_or("").to_string())))
            })
            .collect();
        Ok((found, false))
    }
}

impl StateQueries for MemoryProvider {
    fn max_per_query(&self) -> usize {
        100
    }

    fn query(&self, instances: &[InstanceId]) -> Result<OutgoingRequest, Failure> {
        Ok(OutgoingRequest::new(Method::POST, uri("/states"), "memory:states")
            .with_body(serde_json::to_vec(&json!({"ids": instances})).unwrap_or_default()))
    }

    fn read(&self, instances: &[InstanceId], response: &HttpResponse) -> Result<Vec<InstanceView>, Failure> {
        if !response.is_success() {
            return Err(failure_of(response));
        }
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok(body["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(at, v)| {
                let id = shared_id(instances, v["id"].as_str()?, at)?;
                let status = v["status"].as_str().unwrap_or("").to_string();
                let readiness = if status == "STARTING" {
                    Readiness::Wait(
                        Failure::new(FailureKind::InvalidState, "instance is STARTING")
                            .retryable(true)
                            .with_retry_after(Some(Duration::from_millis(50))),
                    )
                } else {
                    Readiness::Ready
                };
                Some(
                    InstanceView::new(id, status, readiness)
                        .with_keypair(v["keypair"].as_str().map(str::to_string), None),
                )
            })
            .collect())
    }
}
