//! Fleet benchmark: binds key pairs to thousands of instances on the
//! in-process emulator (seeded) and prints, per case, the calls made against
//! the minimum, wall time against the floor the cloud's rules allow, and the
//! client's peak heap. Figures are printed, never asserted.
//!
//! Run: `cargo bench --bench fleet` (add `-- --quick` for the small cases only).
//!
//! The heap column counts what the client allocates on its threads, the
//! input ids included; bytes per instance compare the fleet sizes. The
//! "task queries" column is per VM for Huawei (one query per task) and per
//! call for Tencent (one `DescribeInstances` reads a call's 100 operations);
//! "state reads/VM" counts Huawei's ECS reads apart (the converging read is
//! one per VM).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keypair_binder::alibaba::AlibabaBinder;
use keypair_binder::huawei::HuaweiBinder;
use keypair_binder::tencent::TencentBinder;
use keypair_binder::volcengine::VolcengineBinder;
use keypair_binder::{BindRequest, Fleet, FleetTarget, KeypairBinder, VmCredential};
use keypair_binder_emulator::{Cloud, DEFAULT_KEYPAIR, Emulator};

/// Counts the heap of the threads that run the client, not the emulator's.
struct ClientHeap;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTED.try_with(Cell::get).unwrap_or(false)
}

unsafe impl GlobalAlloc for ClientHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() && counted() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        if counted() {
            let _ = LIVE.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| Some(v.saturating_sub(layout.size())));
        }
    }
}

#[global_allocator]
static ALLOCATOR: ClientHeap = ClientHeap;

/// One benchmark case; `concurrency` is the provider's default, stated for the floor.
struct Case {
    cloud: Cloud,
    n: usize,
    latency: Duration,
    task: Duration,
    concurrency: usize,
    /// `force(true)`: writes only, no converging reads.
    force: bool,
}

struct Row {
    case: Case,
    calls: u64,
    minimum: u64,
    queries_per_vm: Option<f64>,
    /// State reads per VM (Huawei's ECS ShowServer: the converging read is one per VM).
    reads_per_vm: Option<f64>,
    /// Volcengine: `DescribeInstances` calls (the converging reads).
    reads: u64,
    wall: Duration,
    floor: Duration,
    heap: usize,
    bound: usize,
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn peak_rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<usize>().ok().map(|kb| kb * 1024)
}

fn run(case: Case) -> Row {
    let server = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let emulator = server
        .block_on(Emulator::builder().instances(case.n).latency(case.latency).task_duration(case.task).seed(7).start())
        .unwrap();
    let client = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .on_thread_start(|| COUNTED.with(|c| c.set(true)))
        .build()
        .unwrap();

    // The input ids are the client's too: allocated on a counted thread.
    COUNTED.with(|c| c.set(true));
    let baseline = LIVE.load(Ordering::Relaxed);
    PEAK.store(baseline, Ordering::Relaxed);
    let ids = emulator.inventory().ids(case.cloud);
    let (report, wall) = client.block_on(async {
        let creds = emulator.credentials();
        let hw = &creds.huawei;
        let mut request = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids).force(case.force);
        if case.cloud == Cloud::Huawei {
            // Default polling: the client is not told how long tasks take.
            request = request.credential(VmCredential::password(&hw.vm_password));
        }
        let binder = binder_at(&emulator, case.cloud, creds.region_of(case.cloud));
        let request = request.build().unwrap();
        let start = Instant::now();
        let report = binder.bind(request).await.unwrap();
        (report, start.elapsed())
    });
    let heap = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    COUNTED.with(|c| c.set(false));

    let n = case.n as u64;
    let reads = emulator.calls("DescribeInstances");
    let reads_per_vm =
        (case.cloud == Cloud::Huawei).then(|| emulator.calls("ShowServer") as f64 / case.n.max(1) as f64);
    let (calls, minimum, queries_per_vm, floor) = match case.cloud {
        Cloud::Huawei => {
            let batches = n.div_ceil(10);
            let queries = emulator.calls("ListKeypairTask") as f64 / case.n as f64;
            // Each round of 10 VMs: their key pairs read (ECS, at once), the submission, then the task.
            let round = case.task + case.latency * 2;
            (emulator.calls("BatchAssociateKeypair"), batches, Some(queries), round * batches as u32)
        }
        Cloud::Volcengine => {
            let calls = n.div_ceil(100);
            // `concurrency` AttachKeyPair calls in flight; the converging read of each 100
            // instances runs ahead of them (one round of reads before the first write), and
            // the run's first call goes alone until it proves the credentials (one round).
            let rounds = 1 + calls.div_ceil(case.concurrency as u64) + u64::from(!case.force);
            (emulator.calls("AttachKeyPair"), calls, None, case.latency * rounds as u32)
        }
        Cloud::Alibaba => {
            // As Volcengine, 50 instances a call: the credential round, the reads running
            // one round ahead of the writes.
            let calls = n.div_ceil(50);
            let rounds = 1 + calls.div_ceil(case.concurrency as u64) + u64::from(!case.force);
            (emulator.calls("AttachKeyPair"), calls, None, case.latency * rounds as u32)
        }
        Cloud::Tencent => {
            // Each 100 instances: the key lookup once, then the pre-check (DescribeInstances),
            // AssociateInstancesKeyPairs, the operation, and one status read after it.
            let calls = n.div_ceil(100);
            let queries = (emulator.calls("DescribeInstances") as f64 - calls as f64) / calls as f64;
            let rounds = calls.div_ceil(case.concurrency as u64);
            let floor = case.latency + (case.latency * 3 + case.task) * rounds as u32;
            (emulator.calls("AssociateInstancesKeyPairs"), calls, Some(queries), floor)
        }
    };
    let bound = report.counts().0;
    drop(report);
    server.block_on(emulator.shutdown());
    Row { case, calls, minimum, queries_per_vm, reads_per_vm, reads, wall, floor, heap, bound }
}

/// A binder of the emulator's default account in `region` of `cloud`, at the defaults a user gets.
fn binder_at(emulator: &Emulator, cloud: Cloud, region: &str) -> Arc<dyn KeypairBinder> {
    let endpoint = emulator.base_url().to_string();
    let creds = emulator.credentials();
    let (hw, vc, ali, tc) = (&creds.huawei, &creds.volcengine, &creds.alibaba, &creds.tencent);
    let projects = &creds.accounts[keypair_binder_emulator::DEFAULT_ACCOUNT].huawei.projects;
    match cloud {
        Cloud::Huawei => Arc::new(
            HuaweiBinder::builder()
                .endpoint(&endpoint)
                .region(region)
                .project_id(&projects[region])
                .credentials(&hw.ak, &hw.sk)
                .build()
                .unwrap(),
        ),
        Cloud::Volcengine => Arc::new(
            VolcengineBinder::builder().endpoint(&endpoint).region(region).credentials(&vc.ak, &vc.sk).build().unwrap(),
        ),
        Cloud::Alibaba => Arc::new(
            AlibabaBinder::builder().endpoint(&endpoint).region(region).credentials(&ali.ak, &ali.sk).build().unwrap(),
        ),
        Cloud::Tencent => Arc::new(
            TencentBinder::builder()
                .endpoint(&endpoint)
                .region(region)
                .credentials(&tc.secret_id, &tc.secret_key)
                .build()
                .unwrap(),
        ),
    }
}

/// Eight targets (four clouds, two regions each) as one [`Fleet`] at the
/// defaults a user gets: the fleet's wall time against its slowest target's.
fn targets_at_once(per_cloud: usize) {
    let regions: [(Cloud, [&str; 2]); 4] = [
        (Cloud::Huawei, ["cn-north-4", "cn-south-1"]),
        (Cloud::Volcengine, ["cn-beijing", "cn-shanghai"]),
        (Cloud::Alibaba, ["cn-hangzhou", "cn-shanghai"]),
        (Cloud::Tencent, ["ap-guangzhou", "ap-shanghai"]),
    ];
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let emulator = Emulator::builder()
            .instances(per_cloud)
            .regions(regions.iter().flat_map(|(c, rs)| rs.map(|r| (Some(*c), r.to_string()))))
            .latency(Duration::from_millis(50))
            .task_duration(Duration::from_millis(300))
            .seed(7)
            .start()
            .await
            .unwrap();
        let hw = &emulator.credentials().huawei;
        let mut targets = Vec::new();
        for (cloud, names) in regions {
            for region in names {
                let binder = binder_at(&emulator, cloud, region);
                let ids = emulator.inventory().ids_in(cloud, region);
                // Huawei's targets are the 100-VM case's size: its 10-VM window sets its pace.
                let ids = if cloud == Cloud::Huawei { ids.into_iter().take(50).collect() } else { ids };
                let mut request = BindRequest::builder().keypair_name(DEFAULT_KEYPAIR).instances(ids);
                if cloud == Cloud::Huawei {
                    request = request.credential(VmCredential::password(&hw.vm_password));
                }
                let label = format!("{} {region}", cloud.as_str());
                targets.push(FleetTarget::bind(label, binder, request.build().unwrap()));
            }
        }
        let started = Instant::now();
        let fleet = Fleet::new(targets).run().await;
        let wall = started.elapsed();
        let slowest = fleet
            .targets
            .iter()
            .filter_map(|t| t.result.as_ref().ok().map(|r| (r.stats.elapsed, t.label.as_str())))
            .max()
            .unwrap_or_default();
        let (bound, failed, unknown, failed_targets) = fleet.counts();
        let ratio = wall.as_secs_f64() / slowest.0.as_secs_f64().max(f64::EPSILON);
        let verdict = if ratio <= 1.15 && failed + unknown + failed_targets == 0 { "met" } else { "MISSED" };
        println!(
            "\nfleet of {} targets at once (4 clouds x 2 regions, 50ms a call): {bound} bound, {failed} failed, {unknown} unknown; wall {wall:.2?}, slowest target {} {:.2?}: {ratio:.2}x (goal <= 1.15: {verdict})",
            fleet.targets.len(),
            slowest.1,
            slowest.0
        );
        emulator.shutdown().await;
    });
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let ms = Duration::from_millis;
    let mut cases = vec![
        Case { cloud: Cloud::Volcengine, n: 1_000, latency: ms(50), task: ms(0), concurrency: 8, force: false },
        Case { cloud: Cloud::Volcengine, n: 10_000, latency: ms(50), task: ms(0), concurrency: 8, force: false },
        Case { cloud: Cloud::Volcengine, n: 10_000, latency: ms(50), task: ms(0), concurrency: 8, force: true },
        Case { cloud: Cloud::Huawei, n: 100, latency: ms(5), task: ms(300), concurrency: 3, force: false },
        Case { cloud: Cloud::Alibaba, n: 1_000, latency: ms(50), task: ms(0), concurrency: 4, force: false },
        Case { cloud: Cloud::Tencent, n: 1_000, latency: ms(50), task: ms(2000), concurrency: 4, force: false },
    ];
    if !quick {
        let large =
            Case { cloud: Cloud::Volcengine, n: 100_000, latency: ms(50), task: ms(0), concurrency: 8, force: false };
        cases.insert(3, large);
        cases.push(Case { cloud: Cloud::Huawei, n: 100, latency: ms(5), task: ms(2500), concurrency: 3, force: false });
    }
    let rows: Vec<Row> = cases.into_iter().map(run).collect();

    println!(
        "| provider | N | mode | latency/call | task | concurrency | writes | minimum | DescribeInstances | task queries/VM | state reads/VM | bound | wall | floor | wall/floor | client peak heap | heap/instance | goals |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let c = &row.case;
        let ratio = row.wall.as_secs_f64() / row.floor.as_secs_f64();
        let mut missed = Vec::new();
        if row.calls != row.minimum {
            missed.push(format!("calls {} > {}", row.calls, row.minimum));
        }
        if c.cloud == Cloud::Huawei && row.queries_per_vm.is_some_and(|q| q > 1.5) {
            missed.push("task queries/VM > 1.5".to_string());
        }
        if ratio > 1.15 {
            missed.push(format!("wall/floor {ratio:.2} > 1.15"));
        }
        if c.n >= 100_000 && mib(row.heap) >= 48.0 {
            missed.push(format!("heap {:.1} MiB >= 48", mib(row.heap)));
        }
        let goals = if missed.is_empty() { "met".to_string() } else { format!("MISSED: {}", missed.join("; ")) };
        let task = if matches!(c.cloud, Cloud::Huawei | Cloud::Tencent) { format!("{:?}", c.task) } else { "-".into() };
        let queries = row.queries_per_vm.map(|q| format!("{q:.2}")).unwrap_or_else(|| "-".into());
        let reads = row.reads_per_vm.map(|q| format!("{q:.2}")).unwrap_or_else(|| "-".into());
        let mode = if c.force { "--force" } else { "default" };
        // Huawei's reads are ECS reads, one per VM: the state reads/VM column.
        let describe = if c.cloud == Cloud::Huawei { "-".to_string() } else { row.reads.to_string() };
        println!(
            "| {} | {} | {mode} | {:?} | {task} | {} | {} | {} | {describe} | {queries} | {reads} | {} | {:.2?} | {:.2?} | {ratio:.2} | {:.1} MiB | {} B | {goals} |",
            c.cloud.as_str(),
            c.n,
            c.latency,
            c.concurrency,
            row.calls,
            row.minimum,
            row.bound,
            row.wall,
            row.floor,
            mib(row.heap),
            row.heap / c.n.max(1),
        );
    }
    // The defaults (converging reads included) against writes only, in the same run.
    let volcengine_10k = |force: bool| {
        rows.iter().find(|r| r.case.cloud == Cloud::Volcengine && r.case.n == 10_000 && r.case.force == force)
    };
    if let (Some(default), Some(forced)) = (volcengine_10k(false), volcengine_10k(true)) {
        let ratio = default.wall.as_secs_f64() / forced.wall.as_secs_f64();
        let verdict = if ratio <= 1.15 { "met" } else { "MISSED" };
        println!(
            "\nvolcengine 10,000, defaults vs --force: {:.2?} ({} reads, {} writes) vs {:.2?} ({} writes): {ratio:.2}x (goal <= 1.15: {verdict})",
            default.wall, default.reads, default.calls, forced.wall, forced.calls
        );
    }
    targets_at_once(if quick { 400 } else { 4_000 });
    if let Some(rss) = peak_rss() {
        println!("\nprocess peak RSS (client and emulator together, from the OS): {:.1} MiB", mib(rss));
    }
}
