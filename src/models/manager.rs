//! [`ModelManager`]: the models this server serves, as a run-time resource.
//!
//! Every model `models.toml` declares or that was registered at run time has one entry with a
//! state: `unloaded`, `loading`, `loaded` or `failed`. A model queued to load at start-up
//! ([`ModelManager::queue`]) is `loading` from that moment, before its turn comes. Loading happens through an
//! [`EngineLoader`] without blocking anyone; a failed load marks only that model `failed`.
//! Unloading drops the manager's handle on the engine: requests already running hold their own
//! `Arc` and finish on it, and the engine is freed when the last of them ends. A reload under the
//! same id builds a brand-new engine, so no cached prefix of the old weights is ever reused.
//!
//! Admission is two-level: the HTTP layer's global semaphore bounds generations on the whole
//! server (`--max-concurrent`), and each model has its own semaphore (`max_concurrent` in its
//! spec, else `--max-concurrent-per-model`) so that one busy model cannot take every slot.
//!
//! An engine whose thread died is noticed through [`Engine::is_alive`] whenever the model is
//! resolved or readiness is asked: the model turns `failed` and requests get 503, not 500.

use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use utoipa::ToSchema;

use super::{check_id, EngineLoader, ModelError, RegisteredModel, RuntimeStore};
use crate::engine::Engine;
use crate::registry::{ModelRegistry, ModelSpec, RefinementDefaults};

/// Where a model is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ModelState {
    Loaded,
    Loading,
    Unloaded,
    Failed,
}

/// One model as the admin API and jobs see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ModelStatus {
    pub id: String,
    pub status: ModelState,
    /// The model it was derived from, if any.
    pub parent: Option<String>,
    /// The job that produced it, if any.
    pub created_by_job: Option<String>,
    /// Unix seconds when it was registered (0 for `models.toml` models).
    pub created: u64,
    /// Declared in `models.toml` (cannot be removed at run time).
    pub declared: bool,
    /// Why the last load failed (or the engine stopped), when `failed`.
    pub error: Option<String>,
}

/// A model ready to serve: its engine, its refinement defaults and its admission gate.
#[derive(Clone)]
pub struct ServingModel {
    pub engine: Arc<dyn Engine>,
    pub defaults: RefinementDefaults,
    id: String,
    admission: Arc<Semaphore>,
}

impl ServingModel {
    /// Takes one of this model's generation slots, or fails at once with
    /// [`ModelError::Busy`]. The slot is held until the permit is dropped.
    pub fn admit(&self) -> Result<OwnedSemaphorePermit, ModelError> {
        self.admission
            .clone()
            .try_acquire_owned()
            .map_err(|_| ModelError::Busy(self.id.clone()))
    }
}

enum Slot {
    Unloaded,
    /// Waiting for its turn to load ([`ModelManager::queue`]); shown as `loading`.
    Queued,
    Loading,
    Loaded(Arc<dyn Engine>),
    Failed(String),
}

struct Entry {
    spec: ModelSpec,
    /// `None` for `models.toml` models.
    registered: Option<RegisteredModel>,
    slot: Slot,
    /// Bumped by every load and unload, so a load that finishes late cannot overwrite them.
    epoch: u64,
    admission: Arc<Semaphore>,
}

/// The model pool. Cheap to share behind an `Arc`; every method is safe to call concurrently.
pub struct ModelManager {
    default_id: String,
    entries: RwLock<IndexMap<String, Entry>>,
    loader: Arc<dyn EngineLoader>,
    store: RuntimeStore,
    /// Serialises writes of the run-time registry.
    persist: Mutex<()>,
    per_model_cap: usize,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ModelManager {
    /// The declared models plus those in `store`, all unloaded. `per_model_cap` is the
    /// concurrency of models whose spec sets none.
    pub fn new(
        registry: &ModelRegistry,
        store: RuntimeStore,
        loader: Arc<dyn EngineLoader>,
        per_model_cap: usize,
    ) -> Result<Self, ModelError> {
        let mut entries = IndexMap::new();
        let entry = |spec: ModelSpec, registered| Entry {
            admission: Arc::new(Semaphore::new(
                spec.max_concurrent.unwrap_or(per_model_cap).max(1),
            )),
            spec,
            registered,
            slot: Slot::Unloaded,
            epoch: 0,
        };
        for spec in registry.models() {
            entries.insert(spec.id.clone(), entry(spec.clone(), None));
        }
        for m in store.read()? {
            if entries.contains_key(&m.spec.id) {
                tracing::warn!(model = %m.spec.id, "a registered model shadows a models.toml one; ignored");
                continue;
            }
            entries.insert(m.spec.id.clone(), entry(m.spec.clone(), Some(m)));
        }
        Ok(Self {
            default_id: registry.default_model().id.clone(),
            entries: RwLock::new(entries),
            loader,
            store,
            persist: Mutex::new(()),
            per_model_cap,
        })
    }

    fn read(&self) -> RwLockReadGuard<'_, IndexMap<String, Entry>> {
        self.entries
            .read()
            .expect("model manager lock poisoned: this is a bug")
    }

    fn write(&self) -> RwLockWriteGuard<'_, IndexMap<String, Entry>> {
        self.entries
            .write()
            .expect("model manager lock poisoned: this is a bug")
    }

    /// The model a request that names none gets.
    pub fn default_id(&self) -> &str {
        &self.default_id
    }

    /// Adds a model at run time (unloaded) and persists it. Its id and spec are validated.
    pub fn register(&self, mut model: RegisteredModel) -> Result<ModelStatus, ModelError> {
        check_id(&model.spec.id).map_err(ModelError::InvalidId)?;
        model.spec.validate().map_err(ModelError::InvalidSpec)?;
        if model.created == 0 {
            model.created = now();
        }
        let id = model.spec.id.clone();
        let _persist = self
            .persist
            .lock()
            .expect("persist lock poisoned: this is a bug");
        {
            let mut entries = self.write();
            if entries.contains_key(&id) {
                return Err(ModelError::AlreadyExists(id));
            }
            let cap = model
                .spec
                .max_concurrent
                .unwrap_or(self.per_model_cap)
                .max(1);
            entries.insert(
                id.clone(),
                Entry {
                    spec: model.spec.clone(),
                    registered: Some(model),
                    slot: Slot::Unloaded,
                    epoch: 0,
                    admission: Arc::new(Semaphore::new(cap)),
                },
            );
        }
        if let Err(e) = self.save() {
            self.write().shift_remove(&id);
            return Err(e);
        }
        self.status(&id)
    }

    fn save(&self) -> Result<(), ModelError> {
        let registered: Vec<RegisteredModel> = self
            .read()
            .values()
            .filter_map(|e| e.registered.clone())
            .collect();
        self.store.write(&registered)
    }

    /// Marks a model as about to load (its status is `loading` from now on), so that whoever
    /// looks before [`Self::load`] begins waits for it instead of finding it unloaded. A model
    /// that is loaded or loading stays as it is.
    pub fn queue(&self, id: &str) -> Result<(), ModelError> {
        let mut entries = self.write();
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| ModelError::NotFound(id.to_string()))?;
        if matches!(entry.slot, Slot::Unloaded | Slot::Failed(_)) {
            entry.slot = Slot::Queued;
        }
        Ok(())
    }

    /// Loads a model and waits for the result. Loading a loaded model does nothing; a model that
    /// is loading already answers [`ModelError::Loading`] (a queued one loads now). On failure
    /// the model is `failed`.
    pub async fn load(&self, id: &str) -> Result<(), ModelError> {
        let (spec, epoch) = {
            let mut entries = self.write();
            let entry = entries
                .get_mut(id)
                .ok_or_else(|| ModelError::NotFound(id.to_string()))?;
            match entry.slot {
                Slot::Loaded(ref e) if e.is_alive() => return Ok(()),
                Slot::Loading => return Err(ModelError::Loading(id.to_string())),
                _ => {}
            }
            if let Some(path) = self.loader.missing_file(&entry.spec) {
                // Nothing to try: the model is failed (its status says why) and the caller is
                // told which file to make.
                let err = ModelError::NoFile {
                    id: id.to_string(),
                    path: path.display().to_string(),
                };
                entry.slot = Slot::Failed(err.to_string());
                return Err(err);
            }
            entry.epoch += 1;
            entry.slot = Slot::Loading;
            (entry.spec.clone(), entry.epoch)
        };
        let started = std::time::Instant::now();
        let loaded = self.loader.load(&spec).await;
        let mut entries = self.write();
        let Some(entry) = entries.get_mut(id).filter(|e| e.epoch == epoch) else {
            // Unloaded or removed while loading: the new engine is dropped here.
            return Err(ModelError::NotLoaded(id.to_string()));
        };
        match loaded {
            Ok(engine) => {
                tracing::info!(model = %id, secs = started.elapsed().as_secs_f32(), "model loaded");
                entry.slot = Slot::Loaded(engine);
                Ok(())
            }
            Err(reason) => {
                tracing::error!(model = %id, error = %reason, "model failed to load");
                entry.slot = Slot::Failed(reason.clone());
                Err(ModelError::Failed {
                    id: id.to_string(),
                    reason,
                })
            }
        }
    }

    /// Waits while a model is loading (queued, or its load under way) and returns its status
    /// once that has ended: what a job resumed at start-up does before using a start-up model.
    pub async fn settled(&self, id: &str) -> Result<ModelStatus, ModelError> {
        loop {
            let status = self.status(id)?;
            if status.status != ModelState::Loading {
                return Ok(status);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Stops serving a model. Running requests finish on its engine; the default model cannot
    /// be unloaded.
    pub fn unload(&self, id: &str) -> Result<(), ModelError> {
        if id == self.default_id {
            return Err(ModelError::Protected(format!(
                "`{id}` is the default model and cannot be unloaded"
            )));
        }
        let mut entries = self.write();
        let entry = entries
            .get_mut(id)
            .ok_or_else(|| ModelError::NotFound(id.to_string()))?;
        entry.epoch += 1;
        entry.slot = Slot::Unloaded;
        Ok(())
    }

    /// Unloads and forgets a model registered at run time (its weights file is left alone).
    pub fn remove(&self, id: &str) -> Result<(), ModelError> {
        let _persist = self
            .persist
            .lock()
            .expect("persist lock poisoned: this is a bug");
        let removed = {
            let mut entries = self.write();
            let entry = entries
                .get(id)
                .ok_or_else(|| ModelError::NotFound(id.to_string()))?;
            if entry.registered.is_none() || id == self.default_id {
                return Err(ModelError::Protected(format!(
                    "`{id}` is declared in models.toml and cannot be removed"
                )));
            }
            let index = entries.get_index_of(id).expect("looked up above");
            (index, entries.shift_remove(id).expect("looked up above"))
        };
        if let Err(e) = self.save() {
            let (index, entry) = removed;
            self.write().shift_insert(index, id.to_string(), entry);
            return Err(e);
        }
        Ok(())
    }

    fn status_of(id: &str, e: &Entry) -> ModelStatus {
        let (status, error) = match &e.slot {
            Slot::Unloaded => (ModelState::Unloaded, None),
            Slot::Queued | Slot::Loading => (ModelState::Loading, None),
            Slot::Loaded(_) => (ModelState::Loaded, None),
            Slot::Failed(reason) => (ModelState::Failed, Some(reason.clone())),
        };
        let r = e.registered.as_ref();
        ModelStatus {
            id: id.to_string(),
            status,
            parent: r.and_then(|r| r.parent.clone()),
            created_by_job: r.and_then(|r| r.created_by_job.clone()),
            created: r.map_or(0, |r| r.created),
            declared: r.is_none(),
            error,
        }
    }

    /// One model's status.
    pub fn status(&self, id: &str) -> Result<ModelStatus, ModelError> {
        self.mark_if_dead(id);
        let entries = self.read();
        let e = entries
            .get(id)
            .ok_or_else(|| ModelError::NotFound(id.to_string()))?;
        Ok(Self::status_of(id, e))
    }

    /// Every model, declared ones first, in registration order.
    pub fn list(&self) -> Vec<ModelStatus> {
        let ids: Vec<String> = self.read().keys().cloned().collect();
        ids.iter().for_each(|id| self.mark_if_dead(id));
        let entries = self.read();
        entries
            .iter()
            .map(|(id, e)| Self::status_of(id, e))
            .collect()
    }

    /// The spec a model was registered or declared with.
    pub fn spec(&self, id: &str) -> Result<ModelSpec, ModelError> {
        self.read()
            .get(id)
            .map(|e| e.spec.clone())
            .ok_or_else(|| ModelError::NotFound(id.to_string()))
    }

    /// Turns a loaded model whose engine died into a failed one.
    fn mark_if_dead(&self, id: &str) {
        let dead = matches!(
            self.read().get(id).map(|e| &e.slot),
            Some(Slot::Loaded(engine)) if !engine.is_alive()
        );
        if !dead {
            return;
        }
        let mut entries = self.write();
        if let Some(e) = entries.get_mut(id) {
            if matches!(&e.slot, Slot::Loaded(engine) if !engine.is_alive()) {
                tracing::error!(model = %id, "the model's engine stopped");
                e.slot = Slot::Failed("the engine stopped".into());
            }
        }
    }

    /// The model a request asked for (`None`: the default), ready to serve.
    pub fn resolve(&self, id: Option<&str>) -> Result<ServingModel, ModelError> {
        let id = id.unwrap_or(&self.default_id);
        self.mark_if_dead(id);
        let entries = self.read();
        let entry = entries
            .get(id)
            .ok_or_else(|| ModelError::NotFound(id.to_string()))?;
        match &entry.slot {
            Slot::Loaded(engine) => Ok(ServingModel {
                engine: engine.clone(),
                defaults: entry.spec.refinement.clone(),
                id: id.to_string(),
                admission: entry.admission.clone(),
            }),
            Slot::Queued | Slot::Loading => Err(ModelError::Loading(id.to_string())),
            Slot::Unloaded => Err(ModelError::NotLoaded(id.to_string())),
            Slot::Failed(reason) => Err(ModelError::Failed {
                id: id.to_string(),
                reason: reason.clone(),
            }),
        }
    }

    /// The loaded models, in registration order.
    pub fn loaded(&self) -> Vec<ServingModel> {
        let ids: Vec<String> = self.read().keys().cloned().collect();
        ids.iter()
            .filter_map(|id| self.resolve(Some(id)).ok())
            .collect()
    }
}
