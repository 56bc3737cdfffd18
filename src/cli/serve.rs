//! `ptr-server serve`: the server's command line and environment, turned into the
//! [`ServeConfig`] that [`crate::server::start`] checks and runs.

use std::path::PathBuf;

use clap::Args;

use super::source::ModelSourceArgs;
use crate::config::{AdminConfig, ServeConfig};
use crate::engine::DeviceSpec;

/// `serve` arguments.
#[derive(Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PTR_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "PTR_PORT", default_value_t = 8080)]
    pub port: u16,
    #[command(flatten)]
    pub source: ModelSourceArgs,
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
    pub admin: AdminArgs,
}

/// The admin API and its durable store.
#[derive(Clone, Args)]
pub struct AdminArgs {
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

impl ServeArgs {
    /// The settings these arguments give (checked by [`ServeConfig::validate`] when the server
    /// starts).
    pub fn config(self) -> ServeConfig {
        ServeConfig {
            host: self.host,
            port: self.port,
            source: self.source.source(),
            load: self.load,
            fetch: self.fetch,
            device: self.device,
            api_keys: self.api_keys,
            data_dir: self.data_dir,
            max_concurrent: self.max_concurrent,
            max_concurrent_per_model: self.max_concurrent_per_model,
            default_max_tokens: self.default_max_tokens,
            request_timeout_secs: self.request_timeout_secs,
            stream_write_timeout_secs: self.stream_write_timeout_secs,
            max_body_bytes: self.max_body_bytes,
            max_rounds: self.max_rounds,
            shutdown_grace_secs: self.shutdown_grace_secs,
            max_num_seqs: self.max_num_seqs,
            prefix_cache: self.prefix_cache,
            recycle_after: self.recycle_after,
            admin: AdminConfig {
                admin_token: self.admin.admin_token,
                max_file_bytes: self.admin.max_file_bytes,
                max_running_jobs: self.admin.max_running_jobs,
            },
        }
    }

    /// The settings of a server this process runs for itself (`eval`, `ptr-model`): `serve`'s
    /// defaults, on a loopback port of the system's choosing, with no API keys, loading `load`.
    pub fn in_process(
        source: &super::source::ModelSourceArgs,
        device: crate::engine::DeviceSpec,
        load: Vec<String>,
        rounds: u32,
    ) -> anyhow::Result<ServeConfig> {
        let mut config = Self::defaults()?.config();
        config.host = "127.0.0.1".into();
        config.port = 0;
        config.source = source.source();
        config.device = device;
        config.api_keys.clear();
        config.load = load;
        config.max_rounds = config.max_rounds.max(rounds);
        Ok(config)
    }

    /// `serve`'s defaults (and the environment's `PTR_*` settings), as if run without flags.
    pub fn defaults() -> anyhow::Result<Self> {
        let super::Command::Serve(args) =
            <super::Cli as clap::Parser>::try_parse_from(["ptr-server", "serve"])?.command
        else {
            unreachable!("parsed `serve`")
        };
        Ok(args)
    }
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config();
    tracing::info!(cpu = %crate::cpu::report(), ?config, "starting");
    crate::server::start(config)
        .await?
        .run_until(crate::server::shutdown_signal())
        .await
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

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
        let Command::Serve(args) = cli.command else {
            panic!("not serve")
        };
        let cfg = args.config();
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
