//! Shared state of the HTTP layer: the model manager, metrics, admission control, API keys and
//! limits. Handlers get it through `State<AppState>`; everything inside is cheap to clone.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use super::auth::ApiKeys;
use crate::error::{ApiError, ErrorKind};
use crate::metrics::Metrics;
use crate::models::ModelManager;

/// Server limits checked on the request path.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_rounds: u32,
    pub max_body_bytes: usize,
    /// Per-round `max_tokens` when a request sets none.
    pub default_max_tokens: u32,
    /// Longest a generation request may run, all rounds, before it is ended.
    pub request_timeout: Duration,
    /// Longest a stream may wait for the client to take the next event before it is ended.
    pub stream_write_timeout: Duration,
}

impl Default for Limits {
    /// The `serve` defaults.
    fn default() -> Self {
        Self {
            max_rounds: 8,
            max_body_bytes: 1 << 20,
            default_max_tokens: 1024,
            request_timeout: Duration::from_secs(600),
            stream_write_timeout: Duration::from_secs(30),
        }
    }
}

/// The generation slots a request holds (server-wide and its model's), released on drop.
pub struct Admission {
    _server: OwnedSemaphorePermit,
    _model: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(server: OwnedSemaphorePermit, model: OwnedSemaphorePermit) -> Self {
        Self {
            _server: server,
            _model: model,
        }
    }
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub models: Arc<ModelManager>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub api_keys: Arc<ApiKeys>,
    /// The back office behind the admin API, when an admin token is configured.
    pub admin: Option<Arc<crate::app::Admin>>,
    /// Set to the grace period when shutdown's grace period is over: running streams then end
    /// with an error event (and `[DONE]`) instead of being cut mid-event.
    pub closing: Arc<watch::Sender<Option<Duration>>>,
    admission: Arc<Semaphore>,
}

impl AppState {
    /// State for a server of `max_concurrent` generations at once. API keys are trimmed; an
    /// empty list leaves `/v1` open.
    pub fn new(
        models: Arc<ModelManager>,
        limits: Limits,
        max_concurrent: usize,
        api_keys: &[String],
    ) -> Self {
        let metrics = Arc::new(Metrics::new());
        let engines = models.clone();
        metrics.watch_engines(move || {
            engines
                .loaded()
                .into_iter()
                .map(|m| (m.engine.model_id().to_string(), m.engine.stats()))
                .collect()
        });
        Self {
            models,
            metrics,
            limits,
            api_keys: Arc::new(ApiKeys::new(api_keys)),
            admin: None,
            closing: Arc::new(watch::Sender::new(None)),
            admission: Arc::new(Semaphore::new(max_concurrent)),
        }
    }

    /// Turns the admin API on.
    pub fn with_admin(mut self, admin: Arc<crate::app::Admin>) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Takes a server-wide generation slot, or answers 429 at once. The permit is held until the
    /// response (stream) ends or is dropped. Each model also has its own gate: see
    /// [`crate::models::ServingModel::admit`].
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.admission.clone().try_acquire_owned().map_err(|_| {
            self.metrics.rejected.inc();
            ApiError::new(
                ErrorKind::Overloaded,
                "The server is at its limit of concurrent generations; retry shortly",
            )
        })
    }
}
