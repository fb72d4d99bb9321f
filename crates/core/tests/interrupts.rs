//! Interrupts never hang: a cancellation, then an abandonment at any point of
//! a run (while calls are in flight, while tasks are followed, while the
//! chunk settles), ends the run with a report on both runtime flavours.

use std::sync::mpsc;
use std::time::Duration;

use keypair_binder_core::kit::Polling;
use keypair_binder_core::testing::{CallFault, InMemoryBinder};
use keypair_binder_core::{BindRequest, CancellationToken, InstanceOutcome, KeypairBinder};
use proptest::prelude::*;

/// Real time a run gets to end after its abandonment before the test calls it hung.
const WATCHDOG: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Flavor {
    /// `current_thread` on the paused clock.
    Paused,
    /// `current_thread` on the real clock (as `kpbind` runs): the clock moves
    /// between two readings, and timers fire only when the task yields.
    Current,
    /// `multi_thread` on the real clock.
    Multi,
}

#[derive(Clone, Debug)]
struct Case {
    flavor: Flavor,
    /// Task duration and polling interval (Huawei-like), or synchronous calls.
    tasks: Option<(u64, u64)>,
    instances: usize,
    cap: usize,
    concurrency: usize,
    latency_ms: u64,
    cancel_ms: u64,
    /// After the cancellation; `None`: the cancellation's grace runs out alone.
    abandon_after_ms: Option<u64>,
    faults: Vec<CallFault>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![Just(Flavor::Paused), Just(Flavor::Current), Just(Flavor::Multi)],
        proptest::option::of((20u64..400, 1u64..30)),
        1usize..60,
        1usize..12,
        1usize..5,
        1u64..40,
        0u64..300,
        proptest::option::weighted(0.9, 0u64..40),
        proptest::collection::vec(
            prop_oneof![
                Just(CallFault::DropAfterApply),
                Just(CallFault::Unavailable),
                Just(CallFault::NotSent),
                (0u64..200).prop_map(|ms| CallFault::Throttle(Duration::from_millis(ms))),
            ],
            0..4,
        ),
    )
        .prop_map(
            |(flavor, tasks, instances, cap, concurrency, latency_ms, cancel_ms, abandon_after_ms, faults)| Case {
                flavor,
                tasks,
                instances,
                cap,
                concurrency,
                latency_ms,
                cancel_ms,
                abandon_after_ms,
                faults,
            },
        )
}

/// Runs one case on its own thread; `None` if it did not end within the watchdog.
fn run(case: &Case) -> Option<keypair_binder_core::BindReport> {
    let case = case.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = match case.flavor {
            Flavor::Paused => {
                tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap()
            }
            Flavor::Current => tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap(),
            Flavor::Multi => {
                tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
            }
        };
        let mut builder =
            InMemoryBinder::builder().max_per_call(case.cap).latency(Duration::from_millis(case.latency_ms));
        if let Some((task_ms, poll_ms)) = case.tasks {
            builder = builder
                .idempotency_tokens(false)
                .tasks(Duration::from_millis(task_ms), Polling::fixed(Duration::from_millis(poll_ms)))
                .window(10);
        }
        for f in &case.faults {
            builder = builder.fault(f.clone());
        }
        let binder = builder.build();
        let ids: Vec<String> = (0..case.instances).map(|i| format!("i-{i}")).collect();
        let (cancel, abandon) = (CancellationToken::new(), CancellationToken::new());
        let request = BindRequest::builder()
            .keypair_name("kp")
            .instances(ids)
            .concurrency(case.concurrency)
            .cancel(cancel.clone())
            .abandon(abandon.clone())
            // Long enough that only the abandonment can end a run in time.
            .grace(Duration::from_secs(600))
            .build()
            .unwrap();
        let report = runtime.block_on(async {
            let stopper = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(case.cancel_ms)).await;
                cancel.cancel();
                if let Some(ms) = case.abandon_after_ms {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    abandon.cancel();
                }
            });
            let report = binder.bind(request).await;
            stopper.abort();
            report
        });
        let _ = tx.send(report.ok());
    });
    rx.recv_timeout(WATCHDOG).ok().flatten()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cancel_then_abandon_always_ends_with_a_report(case in case()) {
        // Only the abandoned cases are bound by the watchdog; the others must
        // end by themselves on the paused clock (the grace is skipped there).
        if case.abandon_after_ms.is_none() && !matches!(case.flavor, Flavor::Paused) {
            return Ok(());
        }
        let report = run(&case);
        prop_assert!(report.is_some(), "the run did not end: {case:?}");
        let report = report.unwrap();
        prop_assert_eq!(report.outcomes.len(), case.instances, "one outcome per instance");
        for (_, outcome) in &report.outcomes {
            if let InstanceOutcome::Failed(f) = outcome {
                prop_assert!(f.retryable || f.kind != keypair_binder_core::FailureKind::Cancelled);
            }
        }
    }
}
