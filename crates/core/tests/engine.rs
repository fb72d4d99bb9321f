//! The shared engine, through the in-memory binder: exactly-once outcomes,
//! caps, retry budgets, concurrency, timing on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keypair_binder_core::engine::CallError;
use keypair_binder_core::testing::{Behavior, InMemoryBinder};
use keypair_binder_core::{
    BindRequest, Error, Failure, FailureKind, InstanceId, InstanceOutcome, KeypairBinder, ProgressEvent, RetryPolicy,
    UnbindRequest,
};
use proptest::prelude::*;

fn throttled() -> Failure {
    Failure::new(FailureKind::Throttled, "slow down").with_code("FlowLimitExceeded").retryable(true)
}

fn id(s: &str) -> InstanceId {
    InstanceId::new(s).unwrap()
}

/// The same allowance for throttling and for other errors.
fn policy(max_retries: u32) -> RetryPolicy {
    RetryPolicy {
        max_retries,
        max_throttled_retries: max_retries,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(2),
    }
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

#[derive(Clone, Debug)]
enum Script {
    Apply,
    Fail,
    RetryThenApply(u32),
    Unknown,
    Omit,
}

fn script() -> impl Strategy<Value = Script> {
    prop_oneof![
        4 => Just(Script::Apply),
        1 => Just(Script::Fail),
        2 => (0u32..5).prop_map(Script::RetryThenApply),
        1 => Just(Script::Unknown),
        1 => Just(Script::Omit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn one_outcome_per_distinct_instance(
        picks in proptest::collection::vec(0usize..40, 1..120),
        scripts in proptest::collection::vec(script(), 40),
        cap in 1usize..15,
        concurrency in 1usize..6,
        max_retries in 0u32..4,
        faults in proptest::collection::vec((any::<bool>(), any::<bool>()), 0..4),
    ) {
        let mut builder = InMemoryBinder::builder().max_per_call(cap).latency(Duration::from_millis(5));
        for (i, s) in scripts.iter().enumerate() {
            let b = match s {
                Script::Apply => Behavior::Apply,
                Script::Fail => Behavior::Fail(Failure::new(FailureKind::InstanceNotFound, "gone")),
                Script::RetryThenApply(k) => Behavior::RetryThenApply(*k, throttled()),
                Script::Unknown => Behavior::ApplyButUnknown(Failure::new(FailureKind::Timeout, "lost")),
                Script::Omit => Behavior::ApplyButOmit,
            };
            builder = builder.behavior(&format!("i-{i}"), b);
        }
        for (retryable, maybe) in &faults {
            let f = Failure::new(FailureKind::ProviderError, "boom").retryable(*retryable);
            builder = builder.fault(if *maybe { CallError::maybe_applied(f) } else { CallError::not_applied(f) });
        }
        let binder = builder.build();
        let raw: Vec<String> = picks.iter().map(|p| format!("i-{p}")).collect();
        let mut distinct: Vec<String> = Vec::new();
        for r in &raw { if !distinct.contains(r) { distinct.push(r.clone()); } }

        let request = BindRequest::builder().keypair_name("kp").instances(raw.clone())
            .concurrency(concurrency).retry_policy(policy(max_retries)).build().unwrap();
        let report = paused_runtime().block_on(binder.bind(request));
        let report = match report {
            Ok(r) => r,
            // Every instance failed in transport terms: an Error, by contract.
            Err(Error::Unreachable { .. }) => return Ok(()),
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        };

        // Exactly one outcome per distinct instance, in input order.
        let got: Vec<&str> = report.outcomes.iter().map(|(i, _)| i.as_str()).collect();
        prop_assert_eq!(got, distinct.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(report.stats.requested, raw.len());
        prop_assert_eq!(report.stats.duplicates, raw.len() - distinct.len());

        let calls = binder.calls();
        prop_assert!(calls.iter().all(|c| !c.instances.is_empty() && c.instances.len() <= cap));
        prop_assert!(calls.iter().all(|c| c.attempt <= 2 * max_retries), "attempts within the policy");
        prop_assert!(binder.max_in_flight() <= concurrency);
        prop_assert_eq!(report.stats.api_calls, calls.len() as u64);
        for d in &distinct {
            prop_assert!(binder.applications(&id(d)) <= 1, "{} applied twice", d);
            let outcome = report.outcome(&id(d)).unwrap();
            // Nothing reported bound that is not bound.
            if outcome.is_bound() {
                prop_assert_eq!(binder.bound_keypair(&id(d)), Some("kp".to_string()));
            }
            if let InstanceOutcome::Failed(_) = outcome {
                prop_assert_eq!(binder.applications(&id(d)), 0);
            }
        }

        if faults.is_empty() {
            for d in &distinct {
                let n: usize = d[2..].parse().unwrap();
                let outcome = report.outcome(&id(d)).unwrap();
                match &scripts[n] {
                    Script::Apply => prop_assert!(outcome.is_bound()),
                    Script::Fail => prop_assert!(matches!(outcome, InstanceOutcome::Failed(f) if f.kind == FailureKind::InstanceNotFound)),
                    Script::RetryThenApply(k) if *k <= max_retries => prop_assert!(outcome.is_bound()),
                    Script::RetryThenApply(_) => prop_assert!(matches!(outcome, InstanceOutcome::Failed(f) if f.retryable)),
                    Script::Unknown | Script::Omit => prop_assert!(matches!(outcome, InstanceOutcome::Unknown(_))),
                }
            }
        }
    }
}

#[test]
fn retry_after_is_honoured_on_the_paused_clock() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder()
            .fault(CallError::not_applied(throttled().with_retry_after(Some(Duration::from_secs(30)))))
            .build();
        let start = tokio::time::Instant::now();
        let request =
            BindRequest::builder().keypair_name("kp").instance("i-1").retry_policy(policy(3)).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(report.all_bound());
        assert_eq!(report.stats.retries, 1);
        assert_eq!(report.stats.api_calls, 2);
        let waited = start.elapsed();
        assert!(waited >= Duration::from_secs(30), "waited only {waited:?}");
        assert!(waited < Duration::from_secs(31), "waited {waited:?}");
        // The retry of the whole chunk kept its idempotency token.
        let calls = binder.calls();
        assert_eq!(calls[0].token, calls[1].token);
        assert!(calls[0].token.is_some());
    });
}

#[test]
fn backoff_grows_and_stops_at_the_retry_budget() {
    paused_runtime().block_on(async {
        let mut builder = InMemoryBinder::builder();
        for _ in 0..10 {
            builder = builder.fault(CallError::not_applied(throttled()));
        }
        let binder = builder.build();
        let request =
            BindRequest::builder().keypair_name("kp").instance("i-1").retry_policy(policy(3)).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert_eq!(binder.calls().len(), 4, "1 try + 3 retries");
        let (_, outcome) = &report.outcomes[0];
        assert!(matches!(outcome, InstanceOutcome::Failed(f) if f.kind == FailureKind::Throttled && f.retryable));
    });
}

#[test]
fn deadline_stops_retries_and_reports_timeouts() {
    paused_runtime().block_on(async {
        let mut builder = InMemoryBinder::builder().max_per_call(1).concurrency(1);
        for _ in 0..100 {
            builder = builder.fault(CallError::not_applied(throttled().with_retry_after(Some(Duration::from_secs(4)))));
        }
        let binder = builder.build();
        let start = tokio::time::Instant::now();
        let request = BindRequest::builder()
            .keypair_name("kp")
            .instances(["a", "b"])
            .retry_policy(policy(50))
            .deadline(Duration::from_secs(10))
            .build()
            .unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(start.elapsed() <= Duration::from_secs(10));
        for (_, outcome) in &report.outcomes {
            assert!(
                matches!(outcome, InstanceOutcome::Failed(f) if f.kind == FailureKind::Timeout && f.retryable),
                "{outcome:?}"
            );
        }
        // a: t=0, 4, 8 (the next retry would pass the deadline); b: t=8 once.
        assert_eq!(binder.calls().len(), 4);
    });
}

#[test]
fn deadline_during_a_call_is_unknown() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder().latency(Duration::from_secs(60)).build();
        let request =
            BindRequest::builder().keypair_name("kp").instance("i-1").deadline(Duration::from_secs(5)).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(matches!(&report.outcomes[0].1, InstanceOutcome::Unknown(f) if f.kind == FailureKind::Timeout));
    });
}

#[test]
fn per_instance_retry_reissues_only_those_with_a_new_token() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder().behavior("b", Behavior::RetryThenApply(1, throttled())).build();
        let request = BindRequest::builder().keypair_name("kp").instances(["a", "b", "c"]).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(report.all_bound());
        let calls = binder.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1].instances, vec![id("b")]);
        assert_ne!(calls[0].token, calls[1].token);
        assert_eq!(binder.applications(&id("b")), 1);
    });
}

#[test]
fn derived_tokens_are_stable_short_and_distinct() {
    paused_runtime().block_on(async {
        let run = || async {
            let binder = InMemoryBinder::builder().max_per_call(2).build();
            let request = BindRequest::builder()
                .keypair_name("kp")
                .instances(["a", "b", "c"])
                .client_token("t".repeat(64))
                .concurrency(1)
                .build()
                .unwrap();
            binder.bind(request).await.unwrap();
            binder.calls().into_iter().map(|c| c.token.unwrap()).collect::<Vec<_>>()
        };
        let (first, second) = (run().await, run().await);
        assert_eq!(first, second, "the same request derives the same tokens");
        assert_ne!(first[0], first[1], "different chunks get different tokens");
        assert!(first.iter().all(|t| t.len() <= 64 && t.is_ascii()));
    });
}

#[test]
fn auth_failure_stops_the_run_and_is_an_error() {
    paused_runtime().block_on(async {
        let auth =
            Failure::new(FailureKind::Auth, "signature mismatch").with_code("SignatureDoesNotMatch").with_status(401);
        let binder =
            InMemoryBinder::builder().max_per_call(1).concurrency(1).fault(CallError::not_applied(auth)).build();
        let request = BindRequest::builder().keypair_name("kp").instances(["a", "b", "c"]).build().unwrap();
        let err = binder.bind(request).await.unwrap_err();
        assert!(matches!(err, Error::Authentication { .. }), "{err}");
        assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
        assert_eq!(binder.calls().len(), 1, "no call after the credentials were refused");
    });
}

#[test]
fn progress_reports_every_instance_once() {
    paused_runtime().block_on(async {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let binder =
            InMemoryBinder::builder().max_per_call(3).behavior("d", Behavior::RetryThenApply(1, throttled())).build();
        let request = BindRequest::builder()
            .keypair_name("kp")
            .instances(["a", "b", "c", "d", "e"])
            .observer(Arc::new(move |e: &ProgressEvent| sink.lock().unwrap().push(e.clone())))
            .build()
            .unwrap();
        binder.bind(request).await.unwrap();
        let events = events.lock().unwrap();
        assert_eq!(events[0], ProgressEvent::Started { total: 5 });
        let finished = events.iter().filter(|e| matches!(e, ProgressEvent::InstanceFinished { .. })).count();
        assert_eq!(finished, 5);
        assert!(events.iter().any(|e| matches!(e, ProgressEvent::RetryScheduled { instances: 1, .. })));
        assert!(events.iter().any(|e| matches!(e, ProgressEvent::InstancesDone { done: 5, total: 5 })));
    });
}

#[test]
fn unbind_removes_bindings() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder().build();
        let bind = BindRequest::builder().keypair_name("kp").instances(["a", "b"]).build().unwrap();
        binder.bind(bind).await.unwrap();
        let unbind = UnbindRequest::builder().instances(["a"]).build().unwrap();
        let report = binder.unbind(unbind).await.unwrap();
        assert!(report.all_bound());
        assert_eq!(binder.bound_keypair(&id("a")), None);
        assert_eq!(binder.bound_keypair(&id("b")).as_deref(), Some("kp"));
    });
}

#[test]
fn plan_sends_nothing_and_chunks_to_the_cap() {
    let binder = InMemoryBinder::builder().max_per_call(10).build();
    let ids: Vec<String> = (0..25).map(|i| format!("i-{i}")).chain(["i-3".to_string()]).collect();
    let request = BindRequest::builder().keypair_name("kp").instances(ids).build().unwrap();
    let plan = binder.plan(&request).unwrap();
    assert_eq!(plan.calls.iter().map(|c| c.instances.len()).collect::<Vec<_>>(), [10, 10, 5]);
    assert_eq!(plan.duplicates, 1);
    assert!(binder.calls().is_empty());
}

#[test]
fn usable_as_a_trait_object() {
    let binder: Arc<dyn KeypairBinder> = Arc::new(InMemoryBinder::builder().build());
    assert_eq!(binder.capabilities().provider, "memory");
}
