//! `bind`, `unbind` and `plan`: from arguments and environment to a report.

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::process::ExitCode;
use std::sync::Arc;

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keypair_binder::alibaba::AlibabaBuilder;
use keypair_binder::huawei::{HuaweiBuilder, Polling};
use keypair_binder::tencent::TencentBuilder;
use keypair_binder::volcengine::VolcengineBuilder;
use keypair_binder::{
    BindReport, BindRequest, CancellationToken, Error, Journal, JournalHeader, KeypairBinder, KeypairEnsured, Plan,
    ProgressEvent, PublicKey, UnbindRequest, VmCredential,
};

/// Time calls in flight and started tasks get after an interruption, unless `--grace` says.
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

use crate::args::{Output, Provider, RunArgs};
use crate::output;

/// What was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bind,
    Unbind,
    Plan,
}

/// Why the command could not produce a report.
pub enum CliError {
    /// The arguments are wrong (exit 2).
    Usage(String),
    /// The request failed as a whole (exit 1).
    Request(Error),
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        match e {
            Error::Validation(_) | Error::Unsupported { .. } => CliError::Usage(e.to_string()),
            other => CliError::Request(other),
        }
    }
}

/// Exit code after an interruption (128 + SIGINT), with the report printed.
pub const INTERRUPTED: u8 = 130;

/// Ctrl-C and SIGTERM: the first stops sending (calls in flight and started
/// tasks get the grace period), the second stops waiting at once.
#[derive(Clone, Default)]
pub struct Interrupt {
    cancel: CancellationToken,
    abandon: CancellationToken,
}

impl Interrupt {
    fn listen(grace: Duration) -> Self {
        let interrupt = Self::default();
        let tokens = interrupt.clone();
        tokio::spawn(async move {
            if !signal().await {
                return;
            }
            eprintln!(
                "kpbind: interrupted: sending nothing more; waiting up to {} for calls in flight and started tasks (interrupt again to stop now)",
                humantime::format_duration(grace)
            );
            tokens.cancel.cancel();
            if signal().await {
                eprintln!("kpbind: interrupted again: reporting what is known now");
                tokens.abandon.cancel();
            }
        });
        interrupt
    }

    pub fn happened(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// Waits for SIGINT or SIGTERM; `false` if they cannot be listened to.
async fn signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return false;
        };
        tokio::select! {
            _ = int.recv() => true,
            _ = term.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

pub async fn run(mode: Mode, args: RunArgs) -> ExitCode {
    let interrupt = (mode != Mode::Plan).then(|| Interrupt::listen(args.grace.unwrap_or(DEFAULT_GRACE)));
    if args.fleet.is_some() {
        return crate::fleet::run(mode, &args, interrupt.as_ref()).await;
    }
    let result = execute(mode, &args, interrupt.as_ref()).await;
    let interrupted = interrupt.as_ref().is_some_and(Interrupt::happened);
    match result {
        Ok(Done::Report(report, keypair)) => {
            output::print_report(&report, keypair.as_ref(), args.output);
            ExitCode::from(if interrupted {
                INTERRUPTED
            } else if report.all_bound() {
                0
            } else {
                3
            })
        }
        Ok(Done::Plan(plan)) => {
            output::print_plan(&plan, args.output, args.verbose);
            ExitCode::from(0)
        }
        Err(CliError::Usage(message)) => {
            eprintln!("kpbind: {message}");
            ExitCode::from(2)
        }
        Err(CliError::Request(error)) => {
            eprintln!("kpbind: {error}");
            if args.output == Output::Json {
                output::print_error(&error, args.provider.map_or("", Provider::name));
            }
            ExitCode::from(if interrupted { INTERRUPTED } else { 1 })
        }
    }
}

pub enum Request {
    Bind(BindRequest),
    Unbind(UnbindRequest),
}

/// Where one run goes: a provider, and the region, endpoint and profile
/// when given (else the environment's).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TargetSpec {
    pub provider: Provider,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub profile: Option<String>,
}

enum Done {
    /// A run's report, and the key pair ensured before it (with `--public-key`).
    Report(BindReport, Option<KeypairEnsured>),
    Plan(Plan),
}

async fn execute(mode: Mode, args: &RunArgs, interrupt: Option<&Interrupt>) -> Result<Done, CliError> {
    let Some(provider) = args.provider else {
        return Err(CliError::Usage("--provider or --fleet is required".into()));
    };
    let target = TargetSpec { provider, region: args.region.clone(), endpoint: args.endpoint.clone(), profile: None };
    check_options(mode, args, &[provider])?;
    let public_key = public_key(mode, args)?;
    let instances = read_instances(args)?;
    let credential = vm_credential(args)?;
    let journal = open_journal(mode, args, provider)?;
    let progress = progress_bar(mode, args, instances.len());
    let observer = progress.clone().map(|pb| {
        Arc::new(move |event: &ProgressEvent| match event {
            ProgressEvent::InstancesDone { done, .. } => pb.set_position(*done as u64),
            ProgressEvent::RetryScheduled { delay, reason, .. } => {
                pb.set_message(format!("retry in {delay:.1?}: {reason}"))
            }
            ProgressEvent::Stopping { .. } => pb.set_message("stopping: waiting for calls in flight and started tasks"),
            _ => {}
        }) as Arc<dyn keypair_binder::ProgressObserver>
    });
    let parts = RequestParts { instances, credential, journal, observer, interrupt };
    // Validate the request first: bad input is a usage error whatever the configuration.
    let request = build_request(mode, args, provider, parts)?;
    let done = match (mode, request) {
        // A plan sends nothing: it needs no binder, credentials or endpoint.
        (Mode::Plan, Request::Bind(request)) => Done::Plan(plan(provider, &request)?),
        (_, Request::Bind(request)) => {
            let binder = binder(args, &target)?;
            let ensured = match &public_key {
                Some(key) => {
                    let name = request.keypair().as_str().to_string();
                    Some(binder.ensure_keypair(&name, key, &request.common().options).await?)
                }
                None => None,
            };
            Done::Report(binder.bind(request).await?, ensured)
        }
        (_, Request::Unbind(request)) => Done::Report(binder(args, &target)?.unbind(request).await?, None),
    };
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    Ok(done)
}

/// Largest public key file read.
const MAX_PUBLIC_KEY_BYTES: u64 = 64 * 1024;

/// `--public-key`: read and checked before anything is sent (a bind's option).
pub fn public_key(mode: Mode, args: &RunArgs) -> Result<Option<PublicKey>, CliError> {
    let Some(path) = &args.public_key else { return Ok(None) };
    if mode == Mode::Unbind {
        return Err(CliError::Usage("--public-key imports a key pair to bind; unbind takes none".into()));
    }
    let file = File::open(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    let mut text = String::new();
    file.take(MAX_PUBLIC_KEY_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
    PublicKey::parse(&text).map(Some).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

/// The calls a bind would make on `provider`, without sending any.
pub fn plan(provider: Provider, request: &BindRequest) -> Result<Plan, Error> {
    match provider {
        Provider::Huawei => keypair_binder::huawei::plan(request),
        Provider::Volcengine => keypair_binder::volcengine::plan(request),
        Provider::Alibaba => keypair_binder::alibaba::plan(request),
        Provider::Tencent => keypair_binder::tencent::plan(request),
    }
}

/// What one target's request is made of besides the arguments.
pub struct RequestParts<'a> {
    pub instances: Vec<String>,
    pub credential: Option<VmCredential>,
    pub journal: Option<Arc<Journal>>,
    pub observer: Option<Arc<dyn keypair_binder::ProgressObserver>>,
    pub interrupt: Option<&'a Interrupt>,
}

/// The request of one target, validated: bad input is a usage error.
/// Provider-specific fields go only to that provider's requests (in a fleet,
/// to its targets).
pub fn build_request(
    mode: Mode,
    args: &RunArgs,
    provider: Provider,
    parts: RequestParts<'_>,
) -> Result<Request, CliError> {
    let huawei = provider == Provider::Huawei;
    let RequestParts { instances, credential, journal, observer, interrupt } = parts;
    macro_rules! common {
        ($builder:expr) => {{
            let mut b = $builder.instances(instances);
            if let Some(c) = credential {
                b = b.credential(c);
            }
            if let Some(p) = args.ssh_port.filter(|_| huawei) {
                b = b.ssh_port(p);
            }
            if let Some(t) = args.client_token.as_ref().filter(|_| provider == Provider::Volcengine) {
                b = b.client_token(t);
            }
            if let Some(n) = args.concurrency {
                b = b.concurrency(n);
            }
            if let Some(d) = args.timeout {
                b = b.deadline(d);
            }
            if let Some(o) = observer {
                b = b.observer(o);
            }
            if let Some(i) = interrupt {
                b = b.cancel(i.cancel.clone()).abandon(i.abandon.clone());
            }
            if let Some(g) = args.grace {
                b = b.grace(g);
            }
            if args.force {
                b = b.force(true);
            }
            if args.force_stop && provider == Provider::Tencent {
                b = b.force_stop(true);
            }
            if let Some(j) = journal {
                b = b.journal(j);
            }
            match (&args.keypair, &args.keypair_id) {
                (Some(name), _) => b.keypair_name(name),
                (None, Some(id)) => b.keypair_id(id),
                (None, None) => b,
            }
        }};
    }
    Ok(match mode {
        Mode::Unbind => Request::Unbind(common!(UnbindRequest::builder()).build()?),
        Mode::Bind | Mode::Plan => {
            let mut builder = common!(BindRequest::builder());
            if args.disable_password && huawei {
                builder = builder.disable_password(true);
            }
            Request::Bind(builder.build()?)
        }
    })
}

/// The run's journal, if asked for: a journal of another run is a usage error naming the difference.
fn open_journal(mode: Mode, args: &RunArgs, provider: Provider) -> Result<Option<Arc<Journal>>, CliError> {
    let Some(path) = &args.journal else { return Ok(None) };
    if mode == Mode::Plan {
        return Err(CliError::Usage("--journal records runs; plan sends nothing".into()));
    }
    let operation = if mode == Mode::Unbind { "unbind" } else { "bind" };
    let keypair = args.keypair.clone().or_else(|| args.keypair_id.clone());
    let host =
        args.endpoint.as_deref().and_then(|e| url::Url::parse(e).ok()).and_then(|u| u.host_str().map(str::to_string));
    let header = JournalHeader::new(provider.name(), operation, keypair)
        .region(args.region.clone())
        .endpoint_host(host)
        .token_base(args.client_token.clone());
    let journal = Journal::open(path, header).map_err(|e| CliError::Usage(e.to_string()))?;
    if journal.succeeded() > 0 {
        eprintln!("kpbind: resuming from {}: {} instances already succeeded", path.display(), journal.succeeded());
    }
    Ok(Some(Arc::new(journal)))
}

/// Options that belong to none of `providers`, or that this operation needs on each.
pub fn check_options(mode: Mode, args: &RunArgs, providers: &[Provider]) -> Result<(), CliError> {
    use Provider::{Huawei, Tencent, Volcengine};
    let owned: [(&str, bool, &[Provider]); 14] = [
        ("--project-id", args.project_id.is_some(), &[Huawei]),
        ("--iam-endpoint", args.iam_endpoint.is_some(), &[Huawei]),
        ("--ecs-endpoint", args.ecs_endpoint.is_some(), &[Huawei]),
        ("--disable-password", args.disable_password, &[Huawei]),
        ("--ssh-port", args.ssh_port.is_some(), &[Huawei]),
        ("--current-private-key", args.current_private_key.is_some(), &[Huawei]),
        ("--current-password-env", args.current_password_env.is_some(), &[Huawei]),
        ("--poll-interval", args.poll_interval.is_some(), &[Huawei]),
        ("--keypair-id", args.keypair_id.is_some(), &[Volcengine, Tencent]),
        ("--client-token", args.client_token.is_some(), &[Volcengine]),
        ("--precheck-states", args.precheck_states, &[Volcengine]),
        ("--verify-bindings", args.verify_bindings, &[Volcengine]),
        ("--force-stop", args.force_stop, &[Tencent]),
        ("--settle-grace", args.settle_grace.is_some(), &[Tencent]),
    ];
    // In a fleet, a provider's options apply to its targets: one of them must be there.
    if let Some((flag, _, owners)) =
        owned.iter().find(|(_, set, owners)| *set && !owners.iter().any(|o| providers.contains(o)))
    {
        let owner = owners.iter().map(|p| p.name()).collect::<Vec<_>>().join(" or ");
        let given = providers.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ");
        let which = if providers.len() == 1 { "provider {given} does" } else { "providers {given} do" };
        let which = which.replace("{given}", &given);
        return Err(CliError::Usage(format!("{flag} is a {owner} option; {which} not take it")));
    }
    for &provider in providers {
        let by_id = matches!(provider, Volcengine | Tencent);
        let named = args.keypair.is_some() || (by_id && args.keypair_id.is_some());
        // Huawei unbinds whatever key pair a VM holds; the others need to know which.
        let needs_keypair = !(provider == Huawei && mode == Mode::Unbind);
        if needs_keypair && !named {
            let needs = if by_id { "--keypair or --keypair-id" } else { "--keypair" };
            return Err(CliError::Usage(format!("provider {} needs {needs}", provider.name())));
        }
        if args.keypair_id.is_some() && !by_id {
            return Err(CliError::Usage(format!(
                "--keypair-id names a Volcengine or Tencent key pair; provider {} takes --keypair",
                provider.name()
            )));
        }
    }
    Ok(())
}

/// Most instances one run takes (the library's ceiling).
pub const MAX_INSTANCES: usize = 100_000;
/// Malformed lines of an instances file reported before giving up.
const MAX_BAD_LINES: usize = 5;
/// Largest `--instances-file` read.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Instance ids from `--instance` or `--instances-file` (`-` is standard
/// input), read line by line within the size and count ceilings.
fn read_instances(args: &RunArgs) -> Result<Vec<String>, CliError> {
    let Some(path) = &args.instances_file else { return Ok(args.instance.clone()) };
    let (name, reader): (String, Box<dyn BufRead>) = if path.as_os_str() == "-" {
        ("standard input".into(), Box::new(BufReader::new(std::io::stdin())))
    } else {
        let file = File::open(path).map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        (path.display().to_string(), Box::new(BufReader::new(file)))
    };
    // One byte past the cap tells a file at the cap from a larger one.
    let mut lines = reader.take(MAX_FILE_BYTES + 1);
    let mut ids = Vec::new();
    let mut bad = Vec::new();
    let mut line = String::new();
    let mut number = 0usize;
    loop {
        line.clear();
        number += 1;
        let read = lines.read_line(&mut line).map_err(|e| CliError::Usage(format!("cannot read {name}: {e}")))?;
        if read == 0 {
            break;
        }
        if lines.limit() == 0 {
            return Err(CliError::Usage(format!(
                "{name} is larger than {} MiB; split the fleet into runs of at most {MAX_INSTANCES} instances",
                MAX_FILE_BYTES / (1024 * 1024)
            )));
        }
        let id = line.split('#').next().unwrap_or("").trim();
        if id.is_empty() {
            continue;
        }
        if ids.len() == MAX_INSTANCES {
            return Err(CliError::Usage(format!(
                "{name} lists more than {MAX_INSTANCES} instances, the ceiling of one run; split the fleet into several runs"
            )));
        }
        match keypair_binder::InstanceId::new(id) {
            Ok(_) => ids.push(id.to_string()),
            Err(e) => {
                bad.push(format!("{name} line {number}: {e}: {id:?}"));
                if bad.len() == MAX_BAD_LINES {
                    break;
                }
            }
        }
    }
    if !bad.is_empty() {
        let more = if bad.len() == MAX_BAD_LINES {
            format!("\n  (stopped at the first {MAX_BAD_LINES}; the file may hold more)")
        } else {
            String::new()
        };
        return Err(CliError::Usage(format!("malformed instance ids:\n  {}{more}", bad.join("\n  "))));
    }
    Ok(ids)
}

/// The VMs' current credential (Huawei), read from a file or a named variable: never from the command line.
pub fn vm_credential(args: &RunArgs) -> Result<Option<VmCredential>, CliError> {
    if let Some(path) = &args.current_private_key {
        let key = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        return Ok(Some(VmCredential::private_key(key)));
    }
    if let Some(var) = &args.current_password_env {
        let password =
            std::env::var(var).map_err(|_| CliError::Usage(format!("environment variable {var} is not set")))?;
        return Ok(Some(VmCredential::password(password)));
    }
    Ok(None)
}

/// The binder of one target: the environment's chain (or the named
/// profile), then the target's region and endpoint, then the flags.
pub fn binder(args: &RunArgs, target: &TargetSpec) -> Result<Arc<dyn KeypairBinder>, CliError> {
    Ok(match target.provider {
        Provider::Huawei => {
            let mut b = HuaweiBuilder::from_env();
            if let Some(p) = &target.profile {
                b = b.profile(p);
            }
            if let Some(r) = &target.region {
                b = b.region(r);
            }
            b = credential_settings!(b, args);
            if let Some(e) = &target.endpoint {
                b = b.endpoint(e);
            }
            if let Some(e) = &args.iam_endpoint {
                b = b.iam_endpoint(e);
            }
            if let Some(e) = &args.ecs_endpoint {
                b = b.ecs_endpoint(e);
            }
            if let Some(p) = &args.project_id {
                b = b.project_id(p);
            }
            if let Some(n) = args.max_retries {
                b = b.max_retries(n);
            }
            if let Some(rate) = args.rate {
                b = b.rate_limit(rate);
            }
            if let Some(interval) = args.poll_interval {
                b = b.polling(Polling::fixed(interval));
            }
            Arc::new(b.build().map_err(CliError::from)?) as Arc<dyn KeypairBinder>
        }
        Provider::Volcengine => {
            let mut b = VolcengineBuilder::from_env();
            if let Some(p) = &target.profile {
                b = b.profile(p);
            }
            if let Some(r) = &target.region {
                b = b.region(r);
            }
            b = credential_settings!(b, args);
            if let Some(e) = &target.endpoint {
                b = b.endpoint(e);
            }
            if let Some(n) = args.max_retries {
                b = b.max_retries(n);
            }
            if let Some(rate) = args.rate {
                b = b.rate_limit(rate);
            }
            b = b.precheck_states(args.precheck_states).verify_bindings(args.verify_bindings);
            Arc::new(b.build().map_err(CliError::from)?) as Arc<dyn KeypairBinder>
        }
        Provider::Alibaba => {
            let mut b = AlibabaBuilder::from_env();
            if let Some(p) = &target.profile {
                b = b.profile(p);
            }
            if let Some(r) = &target.region {
                b = b.region(r);
            }
            b = credential_settings!(b, args);
            if let Some(e) = &target.endpoint {
                b = b.endpoint(e);
            }
            if let Some(n) = args.max_retries {
                b = b.max_retries(n);
            }
            if let Some(rate) = args.rate {
                b = b.rate_limit(rate);
            }
            Arc::new(b.build().map_err(CliError::from)?) as Arc<dyn KeypairBinder>
        }
        Provider::Tencent => {
            let mut b = TencentBuilder::from_env();
            if let Some(p) = &target.profile {
                b = b.profile(p);
            }
            if let Some(r) = &target.region {
                b = b.region(r);
            }
            b = credential_settings!(b, args);
            if let Some(e) = &target.endpoint {
                b = b.endpoint(e);
            }
            if let Some(n) = args.max_retries {
                b = b.max_retries(n);
            }
            if let Some(rate) = args.rate {
                b = b.rate_limit(rate);
            }
            if let Some(grace) = args.settle_grace {
                b = b.settle_grace(grace);
            }
            Arc::new(b.build().map_err(CliError::from)?) as Arc<dyn KeypairBinder>
        }
    })
}

/// The credential chain's settings every provider's builder takes
/// (`client_setters!`): the metadata service, a role to assume, the STS.
macro_rules! credential_settings {
    ($builder:expr, $args:expr) => {{
        let (mut b, args) = ($builder, $args);
        if let Some(m) = &args.metadata_endpoint {
            b = b.metadata_endpoint(m);
        }
        if let Some(arn) = &args.role_arn {
            b = b.assume_role(arn);
        }
        if let Some(name) = &args.role_session_name {
            b = b.role_session_name(name);
        }
        if let Some(url) = &args.sts_endpoint {
            b = b.sts_endpoint(url);
        }
        b
    }};
}
use credential_settings;

pub fn progress_bar(mode: Mode, args: &RunArgs, total: usize) -> Option<ProgressBar> {
    if mode == Mode::Plan || args.quiet || args.output != Output::Text || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}") {
        pb.set_style(style);
    }
    Some(pb)
}
