//! The command line, exactly as documented: a contract scripts depend on.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Bind SSH key pairs to cloud VMs, many at a time.
#[derive(Debug, Parser)]
#[command(name = "kpbind", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Bind a key pair to instances.
    Bind(RunArgs),
    /// Remove a key pair from instances.
    Unbind(RunArgs),
    /// Validate a bind and print the calls it would make; no network.
    Plan(RunArgs),
    /// Serve the local emulator of every supported cloud until interrupted.
    Emulator(EmulatorArgs),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, ValueEnum)]
pub enum Provider {
    Huawei,
    Volcengine,
    Alibaba,
    Tencent,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Self::Huawei => "huawei",
            Self::Volcengine => "volcengine",
            Self::Alibaba => "alibaba",
            Self::Tencent => "tencent",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Json,
}

fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write durations like 500ms, 30s, 2m)"))
}

/// A duration that must be more than zero (a zero timeout would end every run before its first call).
fn positive_duration(text: &str) -> Result<Duration, String> {
    let d = duration(text)?;
    if d.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(d)
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["instance", "instances_file", "fleet"]))]
pub struct RunArgs {
    /// The cloud.
    #[arg(long, value_enum, required_unless_present = "fleet", conflicts_with = "fleet")]
    pub provider: Option<Provider>,
    /// A fleet file: CSV with a header naming provider, region, instance and
    /// optionally profile and endpoint (JSON Lines with those keys when the
    /// name ends in .jsonl). Rows with the same provider, region, profile and
    /// endpoint form one target; the targets run at once.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["region", "endpoint"])]
    pub fleet: Option<PathBuf>,
    /// Fleet: most targets running at once (default: all, up to 16).
    #[arg(long, value_name = "N", requires = "fleet", value_parser = clap::value_parser!(u16).range(1..))]
    pub targets: Option<u16>,
    /// Key pair name.
    #[arg(long, conflicts_with = "keypair_id")]
    pub keypair: Option<String>,
    /// An OpenSSH public key file (ed25519, RSA, ECDSA): before binding, the
    /// key pair --keypair is checked in each region (one read) and imported
    /// where it is missing; where the name holds another key, nothing is
    /// bound there.
    #[arg(long, value_name = "PATH", requires = "keypair")]
    pub public_key: Option<PathBuf>,
    /// Key pair id (Volcengine `kp-…`, Tencent `skey-…`).
    #[arg(long)]
    pub keypair_id: Option<String>,
    /// An instance id; repeat for more.
    #[arg(long = "instance", value_name = "ID")]
    pub instance: Vec<String>,
    /// A file of instance ids, one per line (`#` comments); `-` reads standard input.
    #[arg(long, value_name = "PATH|-")]
    pub instances_file: Option<PathBuf>,

    /// Region id.
    #[arg(long)]
    pub region: Option<String>,
    /// Endpoint URL (for example the emulator's).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Result format on standard output.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    /// Writes (bind or unbind calls) in flight at once. The state reads that serve them run
    /// ahead, as many chunks reading at once as this, so a chunk's read overlaps another's write.
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Retries of a retryable failure.
    #[arg(long)]
    pub max_retries: Option<u32>,
    /// Time for the whole run, like 30s or 10m.
    #[arg(long, value_parser = positive_duration)]
    pub timeout: Option<Duration>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Plan: list every call's instance ids in text output (JSON always has them).
    #[arg(long)]
    pub verbose: bool,
    /// After Ctrl-C (or SIGTERM): time calls in flight and started tasks get, like 30s.
    #[arg(long, value_parser = duration)]
    pub grace: Option<Duration>,
    /// Append-only record of the run; running the same command with it again resumes.
    #[arg(long, value_name = "PATH")]
    pub journal: Option<PathBuf>,
    /// Send every instance without first reading whether it already is in the requested state.
    /// Huawei: without the ECS read, each VM is sent blind by the credential given (the root password
    /// batches it, a private key replaces, none resets), and KPS refuses what does not fit its state.
    #[arg(long)]
    pub force: bool,
    /// Client-side limit on every API call, like 5/s or 200/m.
    #[arg(long, value_name = "N/s|N/m")]
    pub rate: Option<keypair_binder::RateLimit>,

    /// Where the instance metadata service is, for the role of the VM this
    /// runs on when no keys are given (default: the cloud's own address).
    #[arg(long, value_name = "URL")]
    pub metadata_endpoint: Option<String>,

    /// A role to assume with whatever credentials were found (Alibaba: its ARN).
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The session name of the assumed role (default: kpbind- and a random suffix).
    #[arg(long, value_name = "NAME", requires = "role_arn")]
    pub role_session_name: Option<String>,
    /// Where the cloud's STS is, instead of its default host.
    #[arg(long, value_name = "URL")]
    pub sts_endpoint: Option<String>,

    /// Huawei: project id.
    #[arg(long)]
    pub project_id: Option<String>,
    /// Huawei: ECS endpoint URL, for reading each VM's key pair (default: --endpoint if given, else the region's).
    #[arg(long)]
    pub ecs_endpoint: Option<String>,
    /// Huawei: IAM endpoint URL.
    #[arg(long)]
    pub iam_endpoint: Option<String>,
    /// Huawei: disable SSH password login once the key is bound.
    #[arg(long)]
    pub disable_password: bool,
    /// Huawei: SSH port the agent uses.
    #[arg(long)]
    pub ssh_port: Option<u16>,
    /// Huawei: file holding the private key now on the VMs (replaces it).
    #[arg(long, value_name = "PATH", conflicts_with = "current_password_env")]
    pub current_private_key: Option<PathBuf>,
    /// Huawei: environment variable holding the VMs' root password (batch bind).
    #[arg(long, value_name = "VAR")]
    pub current_password_env: Option<String>,
    /// Huawei: time between task status queries, like 5s.
    #[arg(long, value_parser = positive_duration)]
    pub poll_interval: Option<Duration>,

    /// Tencent: consent to forcibly stop running instances for the change
    /// and start them again (without it they fail, unsent).
    #[arg(long)]
    pub force_stop: bool,
    /// Tencent: how long instances of a call that may have started are
    /// watched before they are sent again, like 30s.
    #[arg(long, value_parser = duration)]
    pub settle_grace: Option<Duration>,

    /// Volcengine: base of the ClientToken idempotency tokens.
    #[arg(long)]
    pub client_token: Option<String>,
    /// Volcengine: check instance states with DescribeInstances before attaching.
    #[arg(long)]
    pub precheck_states: bool,
    /// Volcengine: confirm each success with DescribeInstances.
    #[arg(long)]
    pub verify_bindings: bool,
}

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: std::net::SocketAddr,
    /// JSON inventory of instances and key pairs.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Generated instances per cloud, when no inventory is given.
    #[arg(long, default_value_t = 100)]
    pub instances: usize,
    /// Latency of every call, like 50ms.
    #[arg(long, value_parser = duration)]
    pub latency: Option<Duration>,
    /// Time a Huawei task takes, like 200ms.
    #[arg(long, value_parser = duration)]
    pub task_duration: Option<Duration>,
    /// Faults, like throttle=0.3,server-error=0.05,drop-after=0.02,retry-after=1s.
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Seed of generated ids and fault draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the inventory served (instance ids included) to this file.
    #[arg(long, value_name = "FILE")]
    pub write_inventory: Option<PathBuf>,
    /// Lifetime of the temporary keys its metadata services issue, like 15m.
    #[arg(long, value_parser = positive_duration)]
    pub credential_ttl: Option<Duration>,
    /// Regions generated instances are dealt over: REGION (every cloud) or
    /// CLOUD:REGION, comma-separated, like huawei:cn-north-4,huawei:cn-south-1.
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub regions: Vec<String>,
    /// Accounts generated instances are dealt over besides the default one's
    /// keys, comma-separated, like default,staging (each gets its own keys).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub accounts: Vec<String>,
    /// Also write a fleet CSV of every instance served (provider, region,
    /// instance, profile = the account when not `default`, endpoint).
    #[arg(long, value_name = "FILE")]
    pub write_fleet: Option<PathBuf>,
}
