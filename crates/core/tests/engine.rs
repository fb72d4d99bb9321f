//! The shared engine, through the in-memory cloud: exactly-once outcomes,
//! sticky ambiguity, fixed tokens, the window, the credential gate,
//! deadlines and cancellation, timing on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keypair_binder_core::kit::Polling;
use keypair_binder_core::testing::{Behavior, CallFault, InMemoryBinder};
use keypair_binder_core::{
    BindRequest, CancellationToken, Error, Failure, FailureKind, InstanceId, InstanceOutcome, KeypairBinder,
    ProgressEvent, RetryPolicy, UnbindRequest,
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
    RetryPolicy::default()
        .with_max_retries(max_retries)
        .with_max_throttled_retries(max_retries)
        .with_backoff(Duration::from_millis(50), Duration::from_secs(2))
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap()
}

#[derive(Clone, Debug)]
enum Script {
    Apply,
    Fail,
    RetryThenApply(u32),
    Changing(u32),
    Unknown,
    Omit,
}

fn script() -> impl Strategy<Value = Script> {
    prop_oneof![
        5 => Just(Script::Apply),
        1 => Just(Script::Fail),
        2 => (0u32..5).prop_map(Script::RetryThenApply),
        1 => (0u32..3).prop_map(Script::Changing),
        1 => Just(Script::Unknown),
        1 => Just(Script::Omit),
    ]
}

fn fault() -> impl Strategy<Value = CallFault> {
    prop_oneof![
        (0u64..3000).prop_map(|ms| CallFault::Throttle(Duration::from_millis(ms))),
        Just(CallFault::Unavailable),
        Just(CallFault::NotSent),
        Just(CallFault::DropAfterApply),
        Just(CallFault::BadGatewayAfterApply),
        Just(CallFault::LostBeforeApply),
    ]
}

/// How the fake cloud works in one case.
#[derive(Clone, Debug)]
enum Cloud {
    /// Synchronous calls with idempotency tokens (Volcengine-like).
    Tokens { precheck: bool },
    /// Asynchronous tasks, no tokens, an in-operation window (Huawei-like).
    Tasks { task_ms: u64, window: usize },
    /// Synchronous calls, no tokens: ambiguity settled by the key-pair read (Alibaba-like).
    Plain,
}

fn cloud() -> impl Strategy<Value = Cloud> {
    prop_oneof![
        any::<bool>().prop_map(|precheck| Cloud::Tokens { precheck }),
        (50u64..3000, 1usize..12).prop_map(|(task_ms, window)| Cloud::Tasks { task_ms, window }),
        Just(Cloud::Plain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]

    #[test]
    fn the_report_tells_the_truth(
        picks in proptest::collection::vec(0usize..40, 1..100),
        scripts in proptest::collection::vec(script(), 40),
        cloud in cloud(),
        cap in 1usize..15,
        concurrency in 1usize..6,
        max_retries in 0u32..4,
        faults in proptest::collection::vec(fault(), 0..8),
        deadline_ms in proptest::option::of(100u64..20_000),
        cancel_ms in proptest::option::of(0u64..10_000),
        wrong_key in proptest::bool::weighted(0.05),
    ) {
        let mut builder = InMemoryBinder::builder().max_per_call(cap).latency(Duration::from_millis(5));
        builder = match &cloud {
            Cloud::Tokens { precheck } => builder.precheck_states(*precheck),
            Cloud::Tasks { task_ms, window } => builder
                .idempotency_tokens(false)
                .tasks(Duration::from_millis(*task_ms), Polling::default())
                .window(*window),
            Cloud::Plain => builder.idempotency_tokens(false).reconciler(false),
        };
        for (i, s) in scripts.iter().enumerate() {
            let b = match s {
                Script::Apply => Behavior::Apply,
                Script::Fail => Behavior::Fail(Failure::new(FailureKind::InstanceNotFound, "gone")),
                Script::RetryThenApply(k) => Behavior::RetryThenApply(*k, throttled()),
                Script::Changing(k) => Behavior::ChangingThenApply(*k),
                Script::Unknown => Behavior::ApplyButUnknown(Failure::new(FailureKind::Timeout, "lost")),
                Script::Omit => Behavior::ApplyButOmit,
            };
            builder = builder.behavior(&format!("i-{i}"), b);
        }
        for f in &faults {
            builder = builder.fault(f.clone());
        }
        if wrong_key {
            builder = builder.wrong_key();
        }
        let binder = builder.build();
        let raw: Vec<String> = picks.iter().map(|p| format!("i-{p}")).collect();
        let mut distinct: Vec<String> = Vec::new();
        for r in &raw { if !distinct.contains(r) { distinct.push(r.clone()); } }

        let cancel = CancellationToken::new();
        let mut request = BindRequest::builder().keypair_name("kp").instances(raw.clone())
            .concurrency(concurrency).retry_policy(policy(max_retries)).cancel(cancel.clone())
            .grace(Duration::from_secs(2));
        if let Some(ms) = deadline_ms {
            request = request.deadline(Duration::from_millis(ms));
        }
        let request = request.build().unwrap();
        let report = paused_runtime().block_on(async {
            if let Some(ms) = cancel_ms {
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    cancel.cancel();
                });
            }
            binder.bind(request).await
        });

        prop_assert!(binder.refused_calls() <= 2, "{} refused calls", binder.refused_calls());
        prop_assert_eq!(binder.window_refusals(), 0, "the window was exceeded");
        let calls = binder.calls();
        prop_assert!(calls.iter().all(|c| !c.instances.is_empty() && c.instances.len() <= cap));
        prop_assert!(binder.max_in_flight() <= concurrency + 1 + concurrency * cap, "bounded in flight");
        let report = match report {
            Ok(r) => r,
            Err(Error::Authentication { .. }) => {
                prop_assert!(wrong_key);
                prop_assert!(distinct.iter().all(|d| binder.started(&id(d)) == 0));
                return Ok(());
            }
            Err(Error::Unreachable { .. }) => {
                prop_assert!(distinct.iter().all(|d| binder.started(&id(d)) == 0));
                return Ok(());
            }
            Err(e) => return Err(TestCaseError::fail(format!("unexpected error {e}"))),
        };
        prop_assert!(!wrong_key, "refused credentials end the run with an error");

        // Exactly one outcome per distinct instance, in input order.
        let got: Vec<&str> = report.outcomes.iter().map(|(i, _)| i.as_str()).collect();
        prop_assert_eq!(got, distinct.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(report.stats.requested, raw.len());
        prop_assert_eq!(report.stats.api_calls, binder.total_calls());

        for d in &distinct {
            let d = id(d);
            let outcome = report.outcome(&d).unwrap();
            let sent = calls.iter().any(|c| c.instances.contains(&d));
            if matches!(cloud, Cloud::Tokens { .. } | Cloud::Plain) {
                prop_assert!(binder.applications(&d) <= 1, "{} applied twice", d);
            }
            prop_assert!(binder.started(&d) <= 1, "{} started twice", d);
            match outcome {
                InstanceOutcome::Bound => prop_assert_eq!(binder.bound_keypair(&d), Some("kp".to_string())),
                InstanceOutcome::Unchanged => prop_assert!(false, "{} unchanged in a first run", d),
                // Never failed for an instance any attempt may have applied.
                InstanceOutcome::Failed(f) => {
                    prop_assert_eq!(binder.started(&d), 0, "{} reported failed but applied: {}", d, f);
                }
                InstanceOutcome::Unknown(_) => prop_assert!(sent, "{} unknown but never sent", d),
                other => prop_assert!(false, "{}: an outcome this test does not know: {:?}", d, other),
            }
            if !sent {
                prop_assert!(matches!(outcome, InstanceOutcome::Failed(_)), "{} never sent: {:?}", d, outcome);
            }
        }

        // With nothing in the way, every scripted outcome comes out as scripted.
        if faults.is_empty() && deadline_ms.is_none() && cancel_ms.is_none() {
            for d in &distinct {
                let n: usize = d[2..].parse().unwrap();
                let outcome = report.outcome(&id(d)).unwrap();
                match &scripts[n] {
                    Script::Apply => prop_assert!(outcome.is_bound(), "{d}: {outcome:?}"),
                    Script::Changing(_) if max_retries > 2 => prop_assert!(outcome.is_bound(), "{d}: {outcome:?}"),
                    Script::Changing(_) => prop_assert!(outcome.is_bound() || matches!(outcome, InstanceOutcome::Failed(f) if f.retryable)),
                    Script::Fail => prop_assert!(matches!(outcome, InstanceOutcome::Failed(f) if f.kind == FailureKind::InstanceNotFound)),
                    Script::RetryThenApply(k) if *k <= max_retries => prop_assert!(outcome.is_bound()),
                    Script::RetryThenApply(_) => prop_assert!(matches!(outcome, InstanceOutcome::Failed(f) if f.retryable)),
                    Script::Unknown | Script::Omit if matches!(cloud, Cloud::Plain) => {
                        // The key-pair read shows them applied.
                        prop_assert!(outcome.is_bound(), "{d}: {outcome:?}");
                    }
                    Script::Unknown | Script::Omit if matches!(cloud, Cloud::Tokens { .. }) => {
                        // What the answer did not say is read, not resent: the read shows it applied.
                        prop_assert!(outcome.is_bound(), "{d}: {outcome:?}");
                    }
                    Script::Unknown | Script::Omit => {
                        prop_assert!(matches!(outcome, InstanceOutcome::Unknown(_)) || outcome.is_bound(), "{d}: {outcome:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn retry_after_is_honoured_on_the_paused_clock() {
    paused_runtime().block_on(async {
        let binder =
            InMemoryBinder::builder().converge(false).fault(CallFault::Throttle(Duration::from_secs(30))).build();
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
        // The retry of the whole call kept its idempotency token.
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
            builder = builder.fault(CallFault::Throttle(Duration::ZERO));
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
            builder = builder.fault(CallFault::Throttle(Duration::from_secs(4)));
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
        // a and b, one write in flight at a time: each at t=0, 4, 8 (the next retry would pass the deadline).
        assert_eq!(binder.calls().len(), 6);
        assert_eq!(binder.max_writes_in_flight(), 1);
    });
}

#[test]
fn deadline_during_a_call_is_unknown() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder().converge(false).latency(Duration::from_secs(60)).build();
        let request =
            BindRequest::builder().keypair_name("kp").instance("i-1").deadline(Duration::from_secs(5)).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(matches!(&report.outcomes[0].1, InstanceOutcome::Unknown(_)), "{:?}", report.outcomes[0].1);
    });
}

/// Problem 1: an attempt that may have applied the call is never forgotten
/// because a later attempt fails cleanly.
#[test]
fn applied_then_throttled_until_the_deadline_is_never_failed() {
    paused_runtime().block_on(async {
        let mut builder = InMemoryBinder::builder().fault(CallFault::DropAfterApply);
        for _ in 0..200 {
            builder = builder.fault(CallFault::Throttle(Duration::from_secs(1)));
        }
        let binder = builder.build();
        let request = BindRequest::builder()
            .keypair_name("kp")
            .instances(["a", "b"])
            .retry_policy(policy(100))
            .deadline(Duration::from_secs(10))
            .build()
            .unwrap();
        let report = binder.bind(request).await.unwrap();
        assert_eq!(binder.applications(&id("a")), 1);
        for (vm, outcome) in &report.outcomes {
            assert!(matches!(outcome, InstanceOutcome::Unknown(_)), "{vm}: {outcome:?}");
        }
        // Every resend carried the first call's token.
        let calls = binder.calls();
        assert!(calls.len() > 2);
        assert!(calls.iter().all(|c| c.token == calls[0].token));
    });
}

/// Problem 1, with the retries used up instead of the deadline.
#[test]
fn applied_then_refused_with_retries_used_up_is_unknown_not_failed() {
    paused_runtime().block_on(async {
        let mut builder = InMemoryBinder::builder().fault(CallFault::BadGatewayAfterApply);
        for _ in 0..10 {
            builder = builder.fault(CallFault::Unavailable);
        }
        let binder = builder.build();
        let request = BindRequest::builder().keypair_name("kp").instance("a").retry_policy(policy(2)).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(matches!(&report.outcomes[0].1, InstanceOutcome::Unknown(_)), "{:?}", report.outcomes[0].1);
    });
}

/// A resend with the same token gets the stored answer: bound, applied once.
#[test]
fn dropped_after_apply_then_replayed_is_bound_once() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder().fault(CallFault::DropAfterApply).build();
        let request = BindRequest::builder().keypair_name("kp").instances(["a", "b", "c"]).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(report.all_bound());
        for vm in ["a", "b", "c"] {
            assert_eq!(binder.applications(&id(vm)), 1);
        }
        let calls = binder.calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].token, calls[1].token);
    });
}

/// Problem 2: a state change between attempts never makes an ambiguous set
/// go out again under another token.
#[test]
fn precheck_runs_once_and_ambiguous_sets_are_resent_unchanged() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder()
            .precheck_states(true)
            .behavior("b", Behavior::ChangingThenApply(1))
            .fault(CallFault::DropAfterApply)
            .build();
        let request = BindRequest::builder().keypair_name("kp").instances(["a", "b", "c"]).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(report.all_bound(), "{:?}", report.outcomes);
        for vm in ["a", "b", "c"] {
            assert_eq!(binder.applications(&id(vm)), 1, "{vm}");
        }
        let calls = binder.calls();
        // a and c (b was changing state): dropped, resent with the same token; then b alone.
        assert_eq!(calls[0].instances, calls[1].instances);
        assert_eq!(calls[0].token, calls[1].token);
        assert_eq!(calls.last().unwrap().instances, vec![id("b")]);
        assert_ne!(calls.last().unwrap().token, calls[0].token);
    });
}

/// Without a token or a running-task list, an ambiguous call is settled by
/// reading the key pair: applied instances are bound, the others re-issued once.
#[test]
fn without_tokens_the_key_pair_read_settles_ambiguous_calls() {
    paused_runtime().block_on(async {
        for fault in [CallFault::DropAfterApply, CallFault::LostBeforeApply] {
            let binder =
                InMemoryBinder::builder().idempotency_tokens(false).reconciler(false).fault(fault.clone()).build();
            let request = BindRequest::builder().keypair_name("kp").instances(["a", "b"]).build().unwrap();
            let report = binder.bind(request).await.unwrap();
            assert!(report.all_bound(), "{fault:?}: {:?}", report.outcomes);
            for vm in ["a", "b"] {
                assert_eq!(binder.applications(&id(vm)), 1, "{fault:?} {vm}");
            }
            let calls = binder.calls().len();
            assert_eq!(calls, if fault == CallFault::DropAfterApply { 1 } else { 2 }, "{fault:?}");
        }
    });
}

/// Problem 3: at the deadline, confirmed outcomes are kept and never-sent
/// instances fail (not applied) instead of ending unknown.
#[test]
fn deadline_keeps_confirmed_outcomes_and_fails_never_sent() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder()
            .idempotency_tokens(false)
            .tasks(Duration::from_secs(3), Polling::default())
            .window(2)
            .max_per_call(10)
            .build();
        let ids: Vec<String> = (0..10).map(|i| format!("vm-{i}")).collect();
        let request = BindRequest::builder()
            .keypair_name("kp")
            .instances(ids.clone())
            .deadline(Duration::from_secs(8))
            .build()
            .unwrap();
        let report = binder.bind(request).await.unwrap();
        let (bound, failed, unknown) = report.counts();
        assert!(bound >= 2, "{:?}", report.outcomes);
        assert!(failed >= 4, "{:?}", report.outcomes);
        assert!(unknown <= 2, "{:?}", report.outcomes);
        for (vm, outcome) in &report.outcomes {
            if let InstanceOutcome::Failed(f) = outcome {
                assert_eq!(f.kind, FailureKind::Timeout);
                assert!(f.retryable);
                assert_eq!(binder.started(vm), 0);
            }
        }
        assert_eq!(binder.window_refusals(), 0);
    });
}

/// Problem 5: with refused credentials, one call reaches the cloud whatever the concurrency.
#[test]
fn refused_credentials_stop_the_run_after_one_call() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder().max_per_call(1).concurrency(8).wrong_key().build();
        let ids: Vec<String> = (0..40).map(|i| format!("vm-{i}")).collect();
        let request = BindRequest::builder().keypair_name("kp").instances(ids).build().unwrap();
        let err = binder.bind(request).await.unwrap_err();
        assert!(matches!(err, Error::Authentication { .. }), "{err}");
        assert_eq!(binder.refused_calls(), 1);
        assert_eq!(binder.total_calls(), 1);
    });
}

/// A re-run of a completed bind converges: every instance unchanged, no bind call sent.
#[test]
fn re_runs_converge_and_send_only_what_is_left() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder().build();
        let first = BindRequest::builder().keypair_name("kp").instances(["a", "b"]).build().unwrap();
        assert!(binder.bind(first).await.unwrap().all_bound());
        let calls = binder.calls().len();
        let again = BindRequest::builder().keypair_name("kp").instances(["a", "b", "c"]).build().unwrap();
        let report = binder.bind(again).await.unwrap();
        assert_eq!(report.unchanged(), 2);
        assert_eq!(report.outcome(&id("c")), Some(&InstanceOutcome::Bound));
        let sent: Vec<Vec<InstanceId>> = binder.calls()[calls..].iter().map(|c| c.instances.clone()).collect();
        assert_eq!(sent, vec![vec![id("c")]], "only the instance left was sent");
        let forced = BindRequest::builder().keypair_name("kp").instances(["a"]).force(true).build().unwrap();
        assert_eq!(binder.bind(forced).await.unwrap().outcomes[0].1, InstanceOutcome::Bound);
        let unbind = UnbindRequest::builder().keypair_name("kp").instances(["a", "zz"]).build().unwrap();
        let report = binder.unbind(unbind).await.unwrap();
        assert_eq!(report.outcome(&id("zz")), Some(&InstanceOutcome::Unchanged), "holds no key pair already");
        assert_eq!(report.outcome(&id("a")), Some(&InstanceOutcome::Bound));
    });
}

/// Problem 6: adaptive polling closes in on the task duration without being told it.
#[test]
fn adaptive_polling_follows_unknown_task_durations() {
    for task_ms in [300u64, 3_000] {
        paused_runtime().block_on(async {
            let task = Duration::from_millis(task_ms);
            let binder = InMemoryBinder::builder()
                .idempotency_tokens(false)
                .tasks(task, Polling::default())
                .window(10)
                .max_per_call(10)
                .concurrency(3)
                .build();
            let ids: Vec<String> = (0..100).map(|i| format!("vm-{i}")).collect();
            let start = tokio::time::Instant::now();
            let request = BindRequest::builder().keypair_name("kp").instances(ids).build().unwrap();
            let report = binder.bind(request).await.unwrap();
            assert!(report.all_bound());
            let floor = task * 10;
            let ratio = start.elapsed().as_secs_f64() / floor.as_secs_f64();
            let per_vm = binder.task_queries() as f64 / 100.0;
            assert!(ratio <= 1.15, "{task_ms} ms tasks: wall/floor {ratio:.3}");
            assert!(per_vm <= 1.5, "{task_ms} ms tasks: {per_vm:.2} status queries per VM");
            assert_eq!(binder.max_in_operation(), 10);
        });
    }
}

/// Problem 7: a cancelled run returns its partial report.
#[test]
fn cancellation_returns_the_partial_report() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder()
            .idempotency_tokens(false)
            .tasks(Duration::from_secs(2), Polling::default())
            .window(10)
            .max_per_call(10)
            .build();
        let ids: Vec<String> = (0..50).map(|i| format!("vm-{i}")).collect();
        let cancel = CancellationToken::new();
        let request = BindRequest::builder()
            .keypair_name("kp")
            .instances(ids)
            .cancel(cancel.clone())
            .grace(Duration::from_secs(30))
            .build()
            .unwrap();
        let stopper = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            stopper.cancel();
        });
        let report = binder.bind(request).await.unwrap();
        let (bound, failed, unknown) = report.counts();
        assert_eq!(unknown, 0, "started tasks were followed through the grace period");
        assert!((10..=20).contains(&bound), "{bound}");
        assert_eq!(bound + failed, 50);
        for (vm, outcome) in &report.outcomes {
            if let InstanceOutcome::Failed(f) = outcome {
                assert_eq!(f.kind, FailureKind::Cancelled);
                assert!(f.retryable);
                assert_eq!(binder.started(vm), 0);
            }
        }
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

/// Writes that carried `vm`.
fn writes_of(binder: &InMemoryBinder, vm: &str) -> usize {
    binder.calls().iter().filter(|c| c.instances.contains(&id(vm))).count()
}

#[test]
fn what_an_answer_left_out_is_read_not_resent() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder()
            .behavior("i-2", Behavior::ApplyButOmit)
            .behavior("i-4", Behavior::ApplyButUnknown(Failure::new(FailureKind::ProviderError, "not said")))
            .build();
        let ids: Vec<String> = (1..=5).map(|i| format!("i-{i}")).collect();
        let request = BindRequest::builder().keypair_name("kp").instances(ids).build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(report.all_bound(), "{report:?}");
        assert_eq!(binder.calls().len(), 1, "one write: the answer arrived, so nothing is sent again");
        // The converging read before the write, the write, one read of what the answer did not say.
        assert_eq!(binder.total_calls(), 3);
        for vm in ["i-2", "i-4"] {
            assert_eq!(binder.applications(&id(vm)), 1);
        }
    });
}

#[test]
fn a_stuck_transitional_state_is_waited_for_by_reading_until_the_bound() {
    paused_runtime().block_on(async {
        let binder = InMemoryBinder::builder().behavior("i-1", Behavior::ChangingThenApply(u32::MAX)).build();
        let ids: Vec<String> = (1..=3).map(|i| format!("i-{i}")).collect();
        let wait = Duration::from_secs(10);
        let request = BindRequest::builder().keypair_name("kp").instances(ids).state_wait(wait).build().unwrap();
        let start = tokio::time::Instant::now();
        let report = binder.bind(request).await.unwrap();
        let took = start.elapsed();
        match report.outcome(&id("i-1")).unwrap() {
            InstanceOutcome::Failed(f) => {
                assert_eq!(f.kind, FailureKind::InvalidState, "{f}");
                assert!(f.retryable, "{f}");
                assert!(f.message.contains("still STARTING"), "the last state seen: {f}");
            }
            other => panic!("{other:?}"),
        }
        assert!(report.outcome(&id("i-2")).unwrap().is_bound() && report.outcome(&id("i-3")).unwrap().is_bound());
        assert_eq!(writes_of(&binder, "i-1"), 1, "waiting is reading: the refused write is the only one");
        assert!(took <= wait + Duration::from_secs(1) && took >= wait - Duration::from_secs(3), "{took:?}");
        let reads = binder.total_calls() as usize - binder.calls().len();
        assert!((3..=60).contains(&reads), "reads back off: {reads}");
    });
}

#[test]
fn a_state_that_settles_gets_one_write_per_read_that_allowed_it() {
    paused_runtime().block_on(async {
        // Refused once by the write, then STARTING on two reads, then running.
        let binder = InMemoryBinder::builder().behavior("i-1", Behavior::ChangingThenApply(3)).converge(false).build();
        let request = BindRequest::builder().keypair_name("kp").instance("i-1").build().unwrap();
        let report = binder.bind(request).await.unwrap();
        assert!(report.all_bound(), "{report:?}");
        assert_eq!(writes_of(&binder, "i-1"), 2, "the refused write and the one after the read that allowed it");
        assert_eq!(binder.total_calls(), 2 + 3, "two writes, three reads");
    });
}

/// Reads run ahead of the writes with their own budget: with reads and
/// writes of one tick each, N chunks take about N/concurrency + 1 ticks (not
/// twice that), and the writes in flight never pass the concurrency.
#[test]
fn converging_reads_run_ahead_of_the_writes() {
    paused_runtime().block_on(async {
        let tick = Duration::from_millis(100);
        let (chunks, concurrency) = (40usize, 4usize);
        let binder = InMemoryBinder::builder().max_per_call(10).latency(tick).build();
        let ids: Vec<String> = (0..chunks * 10).map(|i| format!("i-{i}")).collect();
        let request =
            BindRequest::builder().keypair_name("kp").instances(ids).concurrency(concurrency).build().unwrap();
        let start = tokio::time::Instant::now();
        let report = binder.bind(request).await.unwrap();
        let took = start.elapsed();
        assert!(report.all_bound());
        assert_eq!(binder.calls().len(), chunks, "one write per chunk");
        assert_eq!(binder.total_calls() as usize, 2 * chunks, "one read per chunk");
        // The first call goes alone until it proves the credentials (one tick), then the pipeline.
        let pipelined = tick * (chunks / concurrency + 2) as u32;
        assert!(took <= pipelined + tick / 2, "{took:?}: reads wait for writes (pipelined floor {pipelined:?})");
        assert_eq!(binder.max_writes_in_flight(), concurrency, "the write budget is used, never exceeded");
    });
}

/// A re-run where every instance already holds the key pair sends no write
/// and takes about one round of reads per `concurrency` chunks.
#[test]
fn a_converged_re_run_is_reads_only() {
    paused_runtime().block_on(async {
        let tick = Duration::from_millis(100);
        let binder = InMemoryBinder::builder().max_per_call(10).latency(tick).build();
        let ids: Vec<String> = (0..200).map(|i| format!("i-{i}")).collect();
        let request =
            || BindRequest::builder().keypair_name("kp").instances(ids.clone()).concurrency(4).build().unwrap();
        assert!(binder.bind(request()).await.unwrap().all_bound());
        let writes = binder.calls().len();
        let start = tokio::time::Instant::now();
        let report = binder.bind(request()).await.unwrap();
        let took = start.elapsed();
        assert!(report.outcomes.iter().all(|(_, o)| matches!(o, InstanceOutcome::Unchanged)));
        assert_eq!(binder.calls().len(), writes, "no write");
        // 20 chunks read 4 at a time, after the first read alone proves the credentials.
        assert!(took <= tick * 6 + tick / 2, "{took:?}");
    });
}
