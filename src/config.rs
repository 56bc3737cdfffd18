//! Command-line and environment configuration, typed and validated once at start-up. Nothing on
//! the request path reads the environment.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

use crate::bench::{BenchArgs, BenchRefineArgs};

/// ptr-server: an OpenAI-compatible server for Progressive Thought Refinement on mistral.rs.
#[derive(Debug, Parser)]
#[command(name = "ptr-server", version, about)]
pub struct Cli {
    /// Log lines on stderr: `text` for people, `json` (one object a line) for log collectors.
    #[arg(long, global = true, env = "PTR_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The subcommands of the one binary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the models over HTTP.
    Serve(ServeConfig),
    /// Download models and sentence embedders named in models.toml into the model cache.
    FetchModel(FetchArgs),
    /// Print the OpenAPI spec.
    Openapi,
    /// Load-test any OpenAI-compatible server and print a latency/throughput table.
    Bench(BenchArgs),
    /// Measure refinement on running ptr-servers: time per round, prefix reuse, loop overhead.
    BenchRefine(BenchRefineArgs),
    /// Build a PTR refinement dataset (weak thoughts, strong answers, consistency filter).
    BuildDataset(crate::jobs::dataset::cli::BuildDatasetArgs),
    /// Score refinement round by round on a benchmark (GSM8K, ARC, …) against any endpoint.
    Eval(Box<crate::eval::EvalArgs>),
    /// Fine-tune a GGUF model with PTR's thought-masked loss (LoRA); JSON lines on stdout.
    Train(crate::train::TrainArgs),
}

/// Where models come from: shared by `serve` and `fetch-model`.
#[derive(Debug, Clone, Args)]
pub struct ModelSource {
    /// The model registry file.
    #[arg(long, env = "PTR_MODELS", default_value = "models.toml")]
    pub models: PathBuf,
    /// Model cache folder [default: ~/.cache/ptr-server/models].
    #[arg(long, env = "PTR_MODEL_CACHE")]
    pub model_cache: Option<PathBuf>,
    /// Python interpreter used to run `pip download`.
    #[arg(long, env = "PTR_PYTHON", default_value = "python3")]
    pub python: String,
}

impl ModelSource {
    /// The model cache these settings name.
    pub fn cache(&self) -> crate::fetch::ModelCache {
        crate::fetch::ModelCache::new(
            self.model_cache
                .clone()
                .unwrap_or_else(crate::fetch::ModelCache::default_dir),
            self.python.clone(),
        )
    }
}

/// `fetch-model` arguments.
#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// Model or embedder ids to fetch [default: the default model].
    pub ids: Vec<String>,
    /// Fetch every model and embedder in models.toml.
    #[arg(long, conflicts_with = "ids")]
    pub all: bool,
    #[command(flatten)]
    pub source: ModelSource,
}

/// `serve` configuration.
#[derive(Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on.
    #[arg(long, env = "PTR_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PTR_PORT", default_value_t = 8080)]
    pub port: u16,
    #[command(flatten)]
    pub source: ModelSource,
    /// Also load these models (ids from models.toml, comma separated).
    #[arg(long, env = "PTR_LOAD", value_delimiter = ',')]
    pub load: Vec<String>,
    /// Fetch a model that is not in the cache before loading it.
    #[arg(long, env = "PTR_FETCH")]
    pub fetch: bool,
    /// Device: cpu, cuda, cuda:N or metal.
    #[arg(long, env = "PTR_DEVICE", default_value = "cpu")]
    pub device: DeviceSpec,
    /// API keys accepted on /v1 (repeat the flag, or comma-separate in the env var). None: open.
    #[arg(long = "api-key", env = "PTR_API_KEYS", value_delimiter = ',')]
    pub api_keys: Vec<String>,
    /// Folder for the server's own state: models registered at run time (`models.json`), and
    /// the admin store.
    #[arg(long, env = "PTR_DATA_DIR", default_value_os_t = crate::models::default_data_dir())]
    pub data_dir: PathBuf,
    /// Generations (requests) running at once on the whole server; more get 429.
    #[arg(long, env = "PTR_MAX_CONCURRENT", default_value_t = 8)]
    pub max_concurrent: usize,
    /// Generations running at once on one model, unless its spec sets `max_concurrent`
    /// [default: --max-concurrent].
    #[arg(long, env = "PTR_MAX_CONCURRENT_PER_MODEL")]
    pub max_concurrent_per_model: Option<usize>,
    /// Per-round `max_tokens` for requests that set none (still capped by the context).
    #[arg(long, env = "PTR_DEFAULT_MAX_TOKENS", default_value_t = 1024)]
    pub default_max_tokens: u32,
    /// Longest a generation request may run, all rounds included, before it is ended (a
    /// stream then gets a final `request_timeout` error event).
    #[arg(long, env = "PTR_REQUEST_TIMEOUT_SECS", default_value_t = 600)]
    pub request_timeout_secs: u64,
    /// Longest a stream waits for a client that stopped reading before it is ended and its
    /// slot released.
    #[arg(long, env = "PTR_STREAM_WRITE_TIMEOUT_SECS", default_value_t = 30)]
    pub stream_write_timeout_secs: u64,
    /// Largest request body in bytes; larger gets 413.
    #[arg(long, env = "PTR_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Cap on `refinement.rounds`.
    #[arg(long, env = "PTR_MAX_ROUNDS", default_value_t = 8)]
    pub max_rounds: u32,
    /// Seconds running streams may take to finish after SIGINT/SIGTERM.
    #[arg(long, env = "PTR_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Sequences the engine batches together.
    #[arg(long, env = "PTR_MAX_NUM_SEQS", default_value_t = 16)]
    pub max_num_seqs: usize,
    /// Finished sequences whose KV cache is kept for prefix reuse (0 disables).
    #[arg(long, env = "PTR_PREFIX_CACHE", default_value_t = 16)]
    pub prefix_cache: usize,
    /// On CPU, swap in a fresh engine after this many finished sequences, freeing the prefix
    /// cache that mistral.rs never evicts there (0 = never).
    #[arg(long, env = "PTR_RECYCLE_AFTER", default_value_t = 32)]
    pub recycle_after: u64,
    #[command(flatten)]
    pub admin: AdminConfig,
}

/// The admin API and its durable store.
#[derive(Clone, Args)]
pub struct AdminConfig {
    /// Token for /admin/v1 (Bearer). Without it the admin API is off (404).
    #[arg(long, env = "PTR_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// Largest file upload in bytes.
    #[arg(long, env = "PTR_MAX_FILE_BYTES", default_value_t = 512 << 20)]
    pub max_file_bytes: usize,
    /// Jobs running at once; more wait in the queue.
    #[arg(long, env = "PTR_MAX_RUNNING_JOBS", default_value_t = 1)]
    pub max_running_jobs: usize,
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field(
                "admin_token",
                &self.admin_token.as_ref().map(|_| "[redacted]"),
            )
            .field("max_file_bytes", &self.max_file_bytes)
            .field("max_running_jobs", &self.max_running_jobs)
            .finish()
    }
}

impl fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("source", &self.source)
            .field("load", &self.load)
            .field("device", &self.device)
            .field(
                "api_keys",
                &format_args!("[{} redacted]", self.api_keys.len()),
            )
            .field("data_dir", &self.data_dir)
            .field("max_concurrent", &self.max_concurrent)
            .field("max_concurrent_per_model", &self.max_concurrent_per_model)
            .field("default_max_tokens", &self.default_max_tokens)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("stream_write_timeout_secs", &self.stream_write_timeout_secs)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_rounds", &self.max_rounds)
            .field("shutdown_grace_secs", &self.shutdown_grace_secs)
            .field("max_num_seqs", &self.max_num_seqs)
            .field("prefix_cache", &self.prefix_cache)
            .field("recycle_after", &self.recycle_after)
            .field("admin", &self.admin)
            .finish()
    }
}

impl ServeConfig {
    /// Checks the settings that clap's types cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_concurrent == 0 {
            return Err("--max-concurrent must be at least 1".into());
        }
        if self.max_concurrent_per_model == Some(0) {
            return Err("--max-concurrent-per-model must be at least 1".into());
        }
        if self.default_max_tokens == 0 {
            return Err("--default-max-tokens must be at least 1".into());
        }
        if self.request_timeout_secs == 0 || self.stream_write_timeout_secs == 0 {
            return Err(
                "--request-timeout-secs and --stream-write-timeout-secs must be at least 1".into(),
            );
        }
        if let Some(id) = self
            .load
            .iter()
            .find_map(|id| crate::models::check_id(id).err())
        {
            return Err(format!("--load: {id}"));
        }
        if self.max_rounds == 0 {
            return Err("--max-rounds must be at least 1".into());
        }
        if self.max_body_bytes < 1024 {
            return Err("--max-body-bytes must be at least 1024".into());
        }
        if self.max_num_seqs == 0 {
            return Err("--max-num-seqs must be at least 1".into());
        }
        if self.api_keys.iter().any(|k| k.trim().is_empty()) {
            return Err("an --api-key is empty".into());
        }
        if let Some(t) = &self.admin.admin_token {
            if t.trim().len() < 8 {
                return Err("--admin-token must have at least 8 characters".into());
            }
            if self.api_keys.iter().any(|k| k.trim() == t.trim()) {
                return Err("--admin-token must differ from every --api-key".into());
            }
        }
        if self.admin.max_running_jobs == 0 {
            return Err("--max-running-jobs must be at least 1".into());
        }
        crate::engine::placement::placement(self.device)?;
        Ok(())
    }
}

/// The device a model runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    Metal,
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "metal" => Ok(Self::Metal),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device `{s}`: use cpu, cuda, cuda:N or metal")),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal => f.write_str("metal"),
        }
    }
}

impl DeviceSpec {
    /// The candle device; fails when the binary was built without that backend.
    pub fn to_candle(self) -> mistralrs::Result<mistralrs::Device> {
        match self {
            Self::Cpu => Ok(mistralrs::Device::Cpu),
            Self::Cuda(n) => mistralrs::Device::new_cuda(n),
            Self::Metal => mistralrs::Device::new_metal(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda:2".parse(), Ok(DeviceSpec::Cuda(2)));
        assert!("gpu".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn debug_redacts_api_keys() {
        let cli = Cli::parse_from([
            "ptr-server",
            "serve",
            "--api-key",
            "sekrit",
            "--admin-token",
            "admin-sekrit",
        ]);
        let Command::Serve(cfg) = cli.command else {
            panic!("not serve")
        };
        assert!(cfg.validate().is_ok());
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("sekrit")
                && shown.contains("1 redacted")
                && shown.contains("[redacted]"),
            "{shown}"
        );
    }
}
