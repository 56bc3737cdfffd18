//! Shared state of the HTTP layer: the model pool, metrics, admission control and limits.
//! Handlers get it through `State<AppState>`; everything inside is cheap to clone.

use std::sync::{Arc, RwLock};

use indexmap::IndexMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::engine::Engine;
use crate::error::{ApiError, ErrorKind};
use crate::metrics::Metrics;
use crate::registry::RefinementDefaults;

/// A model's place in the pool.
#[derive(Clone)]
pub enum ModelSlot {
    /// Being loaded: requests get 503 with `Retry-After`.
    Loading,
    Ready(Arc<dyn Engine>),
    /// Loading failed; the reason is in the log.
    Failed,
}

struct Entry {
    slot: ModelSlot,
    defaults: RefinementDefaults,
}

/// The models this server serves, by id.
pub struct ModelPool {
    default_id: String,
    entries: RwLock<IndexMap<String, Entry>>,
}

/// A model ready to serve a request.
pub struct ServingModel {
    pub engine: Arc<dyn Engine>,
    pub defaults: RefinementDefaults,
}

impl ModelPool {
    /// An empty pool whose default model is `default_id`.
    pub fn new(default_id: &str) -> Self {
        Self {
            default_id: default_id.to_string(),
            entries: RwLock::new(IndexMap::new()),
        }
    }

    /// Adds or updates a model.
    pub fn set(&self, id: &str, slot: ModelSlot, defaults: RefinementDefaults) {
        let mut entries = self
            .entries
            .write()
            .expect("model pool lock poisoned: this is a bug");
        entries.insert(id.to_string(), Entry { slot, defaults });
    }

    /// Changes the slot of a model already in the pool.
    pub fn set_slot(&self, id: &str, slot: ModelSlot) {
        let mut entries = self
            .entries
            .write()
            .expect("model pool lock poisoned: this is a bug");
        if let Some(e) = entries.get_mut(id) {
            e.slot = slot;
        }
    }

    /// Resolves the `model` of a request (the default when `None`).
    pub fn resolve(&self, id: Option<&str>) -> Result<ServingModel, ApiError> {
        let id = id.unwrap_or(&self.default_id);
        let entries = self
            .entries
            .read()
            .expect("model pool lock poisoned: this is a bug");
        let Some(entry) = entries.get(id) else {
            return Err(ApiError::new(
                ErrorKind::ModelNotFound,
                format!(
                    "The model `{id}` does not exist or is not served here; see GET /v1/models"
                ),
            )
            .with_param("model"));
        };
        match &entry.slot {
            ModelSlot::Ready(engine) => Ok(ServingModel {
                engine: engine.clone(),
                defaults: entry.defaults.clone(),
            }),
            ModelSlot::Loading => Err(ApiError::new(
                ErrorKind::ModelLoading,
                format!("The model `{id}` is still loading; retry shortly"),
            )),
            ModelSlot::Failed => Err(ApiError::new(
                ErrorKind::ModelLoading,
                format!("The model `{id}` failed to load; see the server log"),
            )),
        }
    }

    /// Whether the model is being loaded (requests for it would get 503 now, and work later).
    pub fn is_loading(&self, id: &str) -> bool {
        let entries = self
            .entries
            .read()
            .expect("model pool lock poisoned: this is a bug");
        matches!(entries.get(id).map(|e| &e.slot), Some(ModelSlot::Loading))
    }

    /// Whether the default model is loaded.
    pub fn default_ready(&self) -> bool {
        let entries = self
            .entries
            .read()
            .expect("model pool lock poisoned: this is a bug");
        matches!(
            entries.get(&self.default_id).map(|e| &e.slot),
            Some(ModelSlot::Ready(_))
        )
    }

    /// The loaded models with their defaults, in registration order.
    pub fn ready(&self) -> Vec<(Arc<dyn Engine>, RefinementDefaults)> {
        let entries = self
            .entries
            .read()
            .expect("model pool lock poisoned: this is a bug");
        entries
            .values()
            .filter_map(|e| match &e.slot {
                ModelSlot::Ready(engine) => Some((engine.clone(), e.defaults.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Server limits checked on the request path.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_rounds: u32,
    pub max_body_bytes: usize,
}

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    pub models: Arc<ModelPool>,
    pub metrics: Arc<Metrics>,
    pub limits: Limits,
    pub api_keys: Arc<Vec<String>>,
    /// The admin API, when an admin token is configured.
    pub admin: Option<Arc<crate::http::admin::Admin>>,
    admission: Arc<Semaphore>,
}

impl AppState {
    pub fn new(
        models: Arc<ModelPool>,
        limits: Limits,
        max_concurrent: usize,
        api_keys: Vec<String>,
    ) -> Self {
        Self {
            models,
            metrics: Arc::new(Metrics::new()),
            limits,
            api_keys: Arc::new(api_keys),
            admin: None,
            admission: Arc::new(Semaphore::new(max_concurrent)),
        }
    }

    /// Turns the admin API on.
    pub fn with_admin(mut self, admin: crate::http::admin::Admin) -> Self {
        self.admin = Some(Arc::new(admin));
        self
    }

    /// The admin API's parts (routes exist only when it is on, so this is a bug otherwise).
    pub fn admin(&self) -> Result<&crate::http::admin::Admin, ApiError> {
        self.admin
            .as_deref()
            .ok_or_else(|| ApiError::new(ErrorKind::NotFound, "No such route; see /docs"))
    }

    /// Takes a generation slot, or answers 429 at once. The permit is held until the response
    /// (stream) ends or is dropped.
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
