//! Fleet runs over the emulator's four clouds: every target at once, each
//! with its own binder, one report per target in the order given; a target
//! whose credentials are refused fails alone; one cancellation stops all.

mod support;

use std::sync::Arc;
use std::time::Duration;

use keypair_binder::{BindRequest, CancellationToken, Error, Fleet, FleetTarget, KeypairBinder};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR};
use support::*;

const CLOUDS: [Cloud; 4] = [Cloud::Huawei, Cloud::Volcengine, Cloud::Alibaba, Cloud::Tencent];

#[tokio::test]
async fn every_target_runs_at_once_and_reports_in_the_order_given() {
    let emu = emulator().instances(12).latency(Duration::from_millis(20)).start().await.unwrap();
    let targets = CLOUDS
        .iter()
        .map(|&cloud| {
            let ids = emu.inventory().ids(cloud);
            FleetTarget::bind(format!("{cloud:?}"), binder(cloud, &emu), bind_request(cloud, &emu, &ids))
        })
        .collect();
    let report = Fleet::new(targets).run().await;
    let labels: Vec<&str> = report.targets.iter().map(|t| t.label.as_str()).collect();
    assert_eq!(labels, ["Huawei", "Volcengine", "Alibaba", "Tencent"]);
    assert!(report.all_bound(), "{report:?}");
    assert_eq!(report.counts(), (48, 0, 0, 0));
    for (target, cloud) in report.targets.iter().zip(CLOUDS) {
        let result = target.result.as_ref().unwrap();
        assert_consistent(&emu, cloud, result, Some(DEFAULT_KEYPAIR));
        assert_eq!(target.provider, result.provider);
    }
    // The targets overlapped: the calls of the four clouds interleave in the log.
    let log = emu.request_log();
    let first_of = |c: Cloud| log.iter().position(|e| e.cloud == c).unwrap();
    let last_of = |c: Cloud| log.iter().rposition(|e| e.cloud == c).unwrap();
    let latest_start = CLOUDS.iter().map(|&c| first_of(c)).max().unwrap();
    let earliest_end = CLOUDS.iter().map(|&c| last_of(c)).min().unwrap();
    assert!(latest_start < earliest_end, "the targets ran at once");
}

#[tokio::test]
async fn a_target_whose_credentials_are_refused_fails_alone() {
    let emu = emulator().instances(4).start().await.unwrap();
    let c = emu.credentials().volcengine.clone();
    let refused: Arc<dyn KeypairBinder> =
        Arc::new(volcengine(&emu).credentials(&c.ak, "not-the-secret").build().unwrap());
    let good = [Cloud::Huawei, Cloud::Alibaba, Cloud::Tencent];
    let mut targets: Vec<FleetTarget> = good
        .iter()
        .map(|&cloud| {
            FleetTarget::bind(
                format!("{cloud:?}"),
                binder(cloud, &emu),
                bind_request(cloud, &emu, &emu.inventory().ids(cloud)),
            )
        })
        .collect();
    let vc_ids = emu.inventory().ids(Cloud::Volcengine);
    targets.insert(1, FleetTarget::bind("refused", refused, bind_request(Cloud::Volcengine, &emu, &vc_ids)));
    let report = Fleet::new(targets).max_targets(2).run().await;
    assert!(matches!(&report.targets[1].result, Err(Error::Authentication { .. })), "{report:?}");
    assert_eq!(report.counts(), (12, 0, 0, 1));
    // At most two refused calls to the refused target; nothing applied there.
    let refused_calls = emu.request_log().iter().filter(|e| e.cloud == Cloud::Volcengine).count();
    assert!(refused_calls <= 2, "{refused_calls} calls to the refused target");
    assert!(vc_ids.iter().all(|id| emu.applications(Cloud::Volcengine, id) == 0));
}

#[tokio::test]
async fn one_cancellation_stops_every_target() {
    let emu = emulator().instances(40).latency(Duration::from_millis(30)).start().await.unwrap();
    let cancel = CancellationToken::new();
    let targets = CLOUDS
        .iter()
        .map(|&cloud| {
            let ids = emu.inventory().ids(cloud);
            let mut builder = BindRequest::builder()
                .keypair_name(DEFAULT_KEYPAIR)
                .instances(ids.iter().cloned())
                .cancel(cancel.clone())
                .concurrency(1);
            if cloud == Cloud::Huawei {
                builder =
                    builder.credential(keypair_binder::VmCredential::password(&emu.credentials().huawei.vm_password));
            }
            FleetTarget::bind(format!("{cloud:?}"), binder(cloud, &emu), builder.build().unwrap())
        })
        .collect();
    let stop = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        cancel.cancel();
    };
    let (report, ()) = tokio::join!(Fleet::new(targets).run(), stop);
    let calls = emu.total_calls();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(emu.total_calls(), calls, "nothing is sent once the fleet is cancelled");
    assert_eq!(report.targets.len(), 4);
    assert!(!report.all_bound(), "cancelled before the end");
    for (target, cloud) in report.targets.iter().zip(CLOUDS) {
        if let Ok(result) = &target.result {
            assert_consistent(&emu, cloud, result, Some(DEFAULT_KEYPAIR));
        }
    }
}

#[tokio::test]
async fn one_deadline_for_the_fleet_leaves_a_late_target_only_what_is_left() {
    let emu = emulator().instances(1).latency(Duration::from_millis(400)).start().await.unwrap();
    let targets: Vec<FleetTarget> = [Cloud::Alibaba, Cloud::Volcengine]
        .iter()
        .map(|&cloud| {
            let ids = emu.inventory().ids(cloud);
            FleetTarget::bind(format!("{cloud:?}"), binder(cloud, &emu), bind_request(cloud, &emu, &ids))
        })
        .collect();
    // One target at a time: the second starts when the first is done (a read and a write, ~800 ms).
    let started = std::time::Instant::now();
    let report = Fleet::new(targets).max_targets(1).deadline(Duration::from_millis(1000)).run().await;
    assert!(started.elapsed() < Duration::from_millis(1600), "{:?}", started.elapsed());
    let first = report.targets[0].result.as_ref().unwrap();
    assert!(first.all_bound(), "{first:?}");
    let late = &report.targets[1].result;
    let not_bound = match late {
        Ok(r) => !r.all_bound(),
        Err(_) => true,
    };
    assert!(not_bound, "the late target had ~200 ms left, less than one call: {late:?}");
    let id = &emu.inventory().ids(Cloud::Volcengine)[0];
    assert_eq!(emu.applications(Cloud::Volcengine, id), 0, "nothing sent past the deadline was applied");
}
