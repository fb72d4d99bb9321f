//! `--fleet FILE`: one run across clouds, regions and accounts. The rows are
//! read and every target resolved (its credentials, region, endpoint and
//! request) before anything is sent: a bad row stops the run with no call
//! made anywhere. Then the targets run at once, each with its own binder,
//! and end in one report.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use keypair_binder::{
    BindReport, Error, Failure, FailureKind, Fleet, FleetHeader, FleetTarget, InstanceId, Journal, ProgressEvent,
    ProgressObserver,
};

use crate::args::{Output, Provider, RunArgs};
use crate::output::{self, FleetDoc, TargetEnd};
use crate::run::{
    CliError, INTERRUPTED, Interrupt, MAX_FILE_BYTES, MAX_INSTANCES, Mode, Request, RequestParts, TargetSpec, binder,
    build_request, check_options, plan, progress_bar, vm_credential,
};

/// One row of a fleet file: a target and an instance.
pub struct Row {
    /// Its line in the file (the header is line 1 of a CSV).
    pub line: usize,
    pub target: TargetSpec,
    pub instance: String,
}

/// The rows that share a provider, region, profile and endpoint.
pub struct Target {
    pub spec: TargetSpec,
    /// File lines of its rows, for messages.
    pub lines: Vec<usize>,
    /// Its instances, in row order (duplicates are the request's to remove).
    pub instances: Vec<String>,
}

impl Target {
    /// How people and messages name it.
    pub fn label(&self) -> String {
        label(&self.spec)
    }

    fn rows(&self) -> String {
        let shown: Vec<String> = self.lines.iter().take(5).map(usize::to_string).collect();
        let more = if self.lines.len() > 5 { format!(" and {} more", self.lines.len() - 5) } else { String::new() };
        let noun = if self.lines.len() == 1 { "row" } else { "rows" };
        format!("{noun} {}{more}", shown.join(", "))
    }
}

/// `huawei cn-north-4`, with the profile and endpoint when given.
pub fn label(spec: &TargetSpec) -> String {
    let mut text = format!("{} {}", spec.provider.name(), spec.region.as_deref().unwrap_or("(default region)"));
    if let Some(p) = &spec.profile {
        text.push_str(&format!(" profile {p}"));
    }
    if let Some(e) = &spec.endpoint {
        text.push_str(&format!(" at {e}"));
    }
    text
}

/// The columns a fleet file may have.
const COLUMNS: [&str; 5] = ["provider", "region", "instance", "profile", "endpoint"];

/// Reads a fleet file: CSV (RFC 4180, a header row) or, for `*.jsonl`, JSON
/// Lines, within the size and count ceilings of an instances file.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, CliError> {
    let name = path.display().to_string();
    let usage = |message: String| CliError::Usage(message);
    let file = std::fs::File::open(path).map_err(|e| usage(format!("cannot read {name}: {e}")))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_FILE_BYTES + 1), &mut text)
        .map_err(|e| usage(format!("cannot read {name}: {e}")))?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(usage(format!("{name} is larger than {} MiB", MAX_FILE_BYTES / (1024 * 1024))));
    }
    let fields = if path.extension().is_some_and(|e| e == "jsonl") { jsonl(&text, &name)? } else { csv(&text, &name)? };
    if fields.len() > MAX_INSTANCES {
        return Err(usage(format!("{name} has more than {MAX_INSTANCES} rows, the ceiling of one run")));
    }
    if fields.is_empty() {
        return Err(usage(format!("{name} has no rows")));
    }
    let mut rows = Vec::with_capacity(fields.len());
    let mut bad = Vec::new();
    for (line, values) in fields {
        match row(line, &values) {
            Ok(row) => rows.push(row),
            Err(message) if bad.len() < 5 => bad.push(format!("{name} row {line}: {message}")),
            Err(_) => {}
        }
    }
    if !bad.is_empty() {
        return Err(usage(format!("malformed fleet rows:\n  {}", bad.join("\n  "))));
    }
    Ok(rows)
}

/// Each row's line and its values by column.
type Fields = Vec<(usize, HashMap<String, String>)>;

fn csv(text: &str, name: &str) -> Result<Fields, CliError> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| CliError::Usage(format!("{name}: {e}")))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    check_columns(header.iter().map(String::as_str), name)?;
    let mut fields = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| CliError::Usage(format!("{name}: {e}")))?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        let values = header.iter().cloned().zip(record.iter().map(str::to_string)).collect();
        fields.push((line, values));
    }
    Ok(fields)
}

fn jsonl(text: &str, name: &str) -> Result<Fields, CliError> {
    let mut fields = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line)
            .map_err(|e| CliError::Usage(format!("{name} line {}: not a JSON object: {e}", n + 1)))?;
        check_columns(object.keys().map(String::as_str), name)?;
        let mut values = HashMap::new();
        for (key, value) in object {
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Null => String::new(),
                other => {
                    return Err(CliError::Usage(format!("{name} line {}: {key} is {other}, not a string", n + 1)));
                }
            };
            values.insert(key, text.trim().to_string());
        }
        fields.push((n + 1, values));
    }
    Ok(fields)
}

fn check_columns<'a>(columns: impl Iterator<Item = &'a str>, name: &str) -> Result<(), CliError> {
    let columns: Vec<&str> = columns.collect();
    if let Some(unknown) = columns.iter().find(|c| !COLUMNS.contains(c)) {
        return Err(CliError::Usage(format!(
            "{name}: unknown column {unknown:?} (a fleet file has provider, region, instance, and optionally profile and endpoint)"
        )));
    }
    if let Some(missing) = COLUMNS[..3].iter().find(|c| !columns.contains(c)) {
        return Err(CliError::Usage(format!("{name}: no {missing} column")));
    }
    Ok(())
}

fn row(line: usize, values: &HashMap<String, String>) -> Result<Row, String> {
    let value = |key: &str| values.get(key).map(String::as_str).filter(|v| !v.is_empty());
    let provider = match value("provider") {
        Some("huawei") => Provider::Huawei,
        Some("volcengine") => Provider::Volcengine,
        Some("alibaba") => Provider::Alibaba,
        Some("tencent") => Provider::Tencent,
        Some(other) => return Err(format!("unknown provider {other:?} (huawei, volcengine, alibaba or tencent)")),
        None => return Err("no provider".into()),
    };
    let region = value("region").ok_or("no region")?;
    if !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(format!("malformed region {region:?} (lower-case letters, digits and dashes)"));
    }
    let instance = value("instance").ok_or("no instance")?;
    InstanceId::new(instance).map_err(|e| format!("{e}: {instance:?}"))?;
    let target = TargetSpec {
        provider,
        region: Some(region.to_string()),
        endpoint: value("endpoint").map(str::to_string),
        profile: value("profile").map(str::to_string),
    };
    Ok(Row { line, target, instance: instance.to_string() })
}

/// Rows grouped into targets, in the order each target first appears.
pub fn targets(rows: &[Row]) -> Vec<Target> {
    let mut index: HashMap<&TargetSpec, usize> = HashMap::new();
    let mut targets: Vec<Target> = Vec::new();
    for row in rows {
        let n = *index.entry(&row.target).or_insert_with(|| {
            targets.push(Target { spec: row.target.clone(), lines: Vec::new(), instances: Vec::new() });
            targets.len() - 1
        });
        targets[n].lines.push(row.line);
        targets[n].instances.push(row.instance.clone());
    }
    targets
}

/// What names the rows in a journal: a digest of every row, in order.
fn rows_digest(rows: &[Row]) -> String {
    let mut text = String::new();
    for r in rows {
        let t = &r.target;
        let field = |v: &Option<String>| v.clone().unwrap_or_default();
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            t.provider.name(),
            field(&t.region),
            field(&t.profile),
            field(&t.endpoint),
            r.instance
        ));
    }
    hex_digest(text.as_bytes())
}

pub async fn run(mode: Mode, args: &RunArgs, interrupt: Option<&Interrupt>) -> ExitCode {
    match execute(mode, args, interrupt).await {
        Ok(code) => code,
        Err((code, message)) => {
            eprintln!("kpbind: {message}");
            if args.output == Output::Json {
                println!("{}", serde_json::json!({"error": {"message": message}}));
            }
            ExitCode::from(code)
        }
    }
}

async fn execute(mode: Mode, args: &RunArgs, interrupt: Option<&Interrupt>) -> Result<ExitCode, (u8, String)> {
    let usage = |e: CliError| match e {
        CliError::Usage(m) => (2, m),
        CliError::Request(e) => (1, e.to_string()),
    };
    let path = args.fleet.as_deref().ok_or((2, "--fleet is required".to_string()))?;
    let rows = read_rows(path).map_err(usage)?;
    let targets = targets(&rows);
    let mut providers: Vec<Provider> = targets.iter().map(|t| t.spec.provider).collect();
    providers.dedup();
    providers.sort_by_key(|p| p.name());
    providers.dedup();
    check_options(mode, args, &providers).map_err(usage)?;
    let public_key = crate::run::public_key(mode, args).map_err(usage)?;
    let credential = vm_credential(args).map_err(usage)?;
    let journals = open_journals(mode, args, &rows, targets.len()).map_err(usage)?;
    let total: usize = targets.iter().map(|t| t.instances.len()).sum();
    let progress = progress_bar(mode, args, total);
    let done_counts: Arc<Vec<AtomicU64>> = Arc::new(targets.iter().map(|_| AtomicU64::new(0)).collect());

    // Every target resolved before any call: the first problems, each naming its rows.
    let mut resolved = Vec::with_capacity(targets.len());
    let mut problems: Vec<(u8, String)> = Vec::new();
    for (n, target) in targets.iter().enumerate() {
        let provider = target.spec.provider;
        let observer = progress.clone().map(|pb| {
            let counts = done_counts.clone();
            Arc::new(move |event: &ProgressEvent| {
                if let ProgressEvent::InstancesDone { done, .. } = event {
                    counts[n].store(*done as u64, Ordering::Relaxed);
                    pb.set_position(counts.iter().map(|c| c.load(Ordering::Relaxed)).sum());
                }
            }) as Arc<dyn ProgressObserver>
        });
        let parts = RequestParts {
            instances: target.instances.clone(),
            credential: credential.clone().filter(|_| provider == Provider::Huawei),
            journal: journals.as_ref().map(|j| j[n].clone()),
            observer,
            interrupt,
        };
        let request = match build_request(mode, args, provider, parts) {
            Ok(request) => request,
            Err(e) => {
                let (code, message) = usage(e);
                problems.push((code, format!("{} ({}): {message}", target.rows(), target.label())));
                continue;
            }
        };
        let binder = if mode == Mode::Plan {
            None
        } else {
            match binder(args, &target.spec) {
                Ok(b) => Some(b),
                Err(e) => {
                    let (code, message) = usage(e);
                    problems.push((code, format!("{} ({}): {message}", target.rows(), target.label())));
                    continue;
                }
            }
        };
        resolved.push((request, binder));
    }
    if !problems.is_empty() {
        let code = if problems.iter().any(|(c, _)| *c == 2) { 2 } else { 1 };
        let lines: Vec<String> = problems.into_iter().map(|(_, m)| m).collect();
        return Err((code, format!("the fleet was not started (no call was made):\n  {}", lines.join("\n  "))));
    }

    if mode == Mode::Plan {
        let mut plans = Vec::with_capacity(targets.len());
        for (target, (request, _)) in targets.iter().zip(resolved) {
            let Request::Bind(request) = request else { continue };
            let plan = plan(target.spec.provider, &request).map_err(|e| usage(CliError::from(e)))?;
            plans.push((target.spec.clone(), plan));
        }
        output::print_fleet_plan(&plans, args.output, args.verbose);
        return Ok(ExitCode::from(0));
    }

    let started = Instant::now();
    let fleet_targets: Vec<FleetTarget> = targets
        .iter()
        .zip(resolved)
        .filter_map(|(target, (request, binder))| {
            let binder = binder?;
            Some(match (request, &public_key) {
                (Request::Bind(r), Some(key)) => {
                    FleetTarget::bind(target.label(), binder, r).with_public_key(key.clone())
                }
                (Request::Bind(r), None) => FleetTarget::bind(target.label(), binder, r),
                (Request::Unbind(r), _) => FleetTarget::unbind(target.label(), binder, r),
            })
        })
        .collect();
    let max = args.targets.map_or(keypair_binder::DEFAULT_MAX_TARGETS, usize::from);
    let mut fleet = Fleet::new(fleet_targets).max_targets(max);
    if let Some(timeout) = args.timeout {
        // One deadline for every target, whenever each starts.
        fleet = fleet.deadline(timeout);
    }
    let report = fleet.run().await;
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let ends: Vec<TargetEnd> = targets
        .into_iter()
        .zip(report.targets)
        .map(|(target, end)| TargetEnd { spec: target.spec, keypair: end.keypair, result: end.result })
        .collect();
    let doc = FleetDoc::new(mode, args.keypair.clone().or(args.keypair_id.clone()), &rows, &ends, started.elapsed());
    output::print_fleet_report(&doc, args.output);
    let interrupted = interrupt.is_some_and(Interrupt::happened);
    Ok(ExitCode::from(if interrupted {
        INTERRUPTED
    } else if doc.all_succeeded() {
        0
    } else {
        3
    }))
}

/// One journal file for the fleet, a [`Journal`] per target.
fn open_journals(
    mode: Mode,
    args: &RunArgs,
    rows: &[Row],
    targets: usize,
) -> Result<Option<Vec<Arc<Journal>>>, CliError> {
    let Some(path) = &args.journal else { return Ok(None) };
    if mode == Mode::Plan {
        return Err(CliError::Usage("--journal records runs; plan sends nothing".into()));
    }
    let operation = if mode == Mode::Unbind { "unbind" } else { "bind" };
    let keypair = args.keypair.clone().or_else(|| args.keypair_id.clone());
    let count = u32::try_from(targets).unwrap_or(u32::MAX);
    let header = FleetHeader::new(operation, keypair, rows_digest(rows), count);
    let journals = Journal::open_fleet(path, header).map_err(|e| CliError::Usage(e.to_string()))?;
    let succeeded: usize = journals.iter().map(Journal::succeeded).sum();
    if succeeded > 0 {
        eprintln!("kpbind: resuming from {}: {succeeded} instances already succeeded", path.display());
    }
    Ok(Some(journals.into_iter().map(Arc::new).collect()))
}

/// How a target that ended as a whole leaves each of its instances: failed,
/// as nothing was applied there, with the kind of the target's error.
pub fn target_failure(error: &Error) -> Failure {
    let kind = match error {
        Error::Authentication { .. } | Error::NoCredentials { .. } => FailureKind::Auth,
        Error::PermissionDenied { .. } => FailureKind::Permission,
        Error::Unreachable { .. } => FailureKind::Transport,
        Error::Validation(_) | Error::Unsupported { .. } | Error::Config { .. } | Error::KeyPair { .. } => {
            FailureKind::InvalidRequest
        }
        _ => FailureKind::ProviderError,
    };
    Failure::new(kind, error.to_string())
}

/// A target's report, if it ran.
pub fn ran(end: &TargetEnd) -> Option<&BindReport> {
    end.result.as_ref().ok()
}

fn hex_digest(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
