//! The application core: everything a server is made of before it listens — the model pool
//! (registry, cache, engine options), and, with an admin token, the back office (job store, job
//! manager, one runner per job kind). [`App::build`] is the only place these are wired together;
//! `serve` and the commands that run a server for themselves (`eval`, `ptr-model`) and the
//! dataset command (`build-dataset`) all go through it. The HTTP layer is an adapter over the
//! parts it hands out.

pub mod admin;

use std::sync::Arc;

use anyhow::Context;

pub use admin::Admin;

use crate::config::ServeConfig;
use crate::engine::mistral::LoadOptions;
use crate::engine::DeviceSpec;
use crate::fetch::ModelCache;
use crate::models::{MistralLoader, ModelManager, ModelState, RuntimeStore};
use crate::registry::ModelRegistry;

/// The assembled application.
pub struct App {
    /// Every model of the registry, as a run-time resource.
    pub models: Arc<ModelManager>,
    /// The back office, when an admin token is configured.
    pub admin: Option<Arc<Admin>>,
    /// The models to load at start: the default one first, then each `--load` once.
    to_load: Vec<String>,
}

impl App {
    /// Validates `config` and assembles the application. Nothing listens, no model loads and no
    /// job runs yet ([`App::start`] starts them).
    pub fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let registry = ModelRegistry::load(&config.source.models)?;
        let cache = config.source.cache.clone();
        if !config.fetch {
            let spec = registry.default_model();
            if !cache.path_of(spec).is_file() {
                // Fail before binding: a server that can never become ready helps nobody.
                cache.verify(spec)?;
            }
        }
        let loader = Arc::new(MistralLoader {
            cache: cache.clone(),
            fetch: config.fetch,
            options: load_options(config),
        });
        let models = Arc::new(ModelManager::new(
            &registry,
            RuntimeStore::in_dir(&config.data_dir),
            loader,
            config
                .max_concurrent_per_model
                .unwrap_or(config.max_concurrent),
        )?);
        let to_load = models_to_load(config, &models)?;
        let admin = Admin::open(
            &config.admin,
            &config.data_dir,
            models.clone(),
            cache.clone(),
            embedder_loader(registry, cache),
            config.api_keys.first().cloned(),
            config.device,
        )?
        .map(Arc::new);
        Ok(Self {
            models,
            admin,
            to_load,
        })
    }

    /// Starts the application: the start-up models are queued (each shows `loading` from now on)
    /// and load in the background, one after the other, and then the job scheduler starts, so a
    /// job resumed from before a restart finds its models loading, never unloaded. A failed load
    /// is logged and shown in the model's status; the others still load.
    pub fn start(&self) -> anyhow::Result<()> {
        for id in &self.to_load {
            self.models.queue(id)?;
        }
        let (models, ids) = (self.models.clone(), self.to_load.clone());
        tokio::spawn(async move {
            for id in ids {
                // Skipped if unloaded through the admin API while it waited.
                if models
                    .status(&id)
                    .is_ok_and(|s| s.status == ModelState::Loading)
                {
                    let _ = models.load(&id).await;
                }
            }
        });
        if let Some(admin) = &self.admin {
            admin.start_jobs()?;
        }
        Ok(())
    }
}

/// The engine's settings, from the server's: the one place they are derived.
pub fn load_options(config: &ServeConfig) -> LoadOptions {
    LoadOptions {
        device: config.device,
        max_num_seqs: config.max_num_seqs,
        prefix_cache_n: config.prefix_cache,
        // Only a CPU prefix cache grows without bound; nothing to free without one.
        recycle_after: if config.device == DeviceSpec::Cpu && config.prefix_cache > 0 {
            config.recycle_after
        } else {
            0
        },
    }
}

/// The default model first, then each `--load` model once.
fn models_to_load(config: &ServeConfig, models: &ModelManager) -> anyhow::Result<Vec<String>> {
    let mut ids = vec![models.default_id().to_string()];
    for id in &config.load {
        models
            .spec(id)
            .with_context(|| format!("--load names `{id}`, which no registry declares"))?;
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    Ok(ids)
}

/// The sentence embedder of the dataset job's consistency filter, fetched (hash-pinned) and
/// loaded on first use.
pub fn embedder_loader(
    registry: ModelRegistry,
    cache: ModelCache,
) -> crate::jobs::dataset::EmbedderLoader {
    Arc::new(move || {
        let id = crate::embed::DEFAULT_EMBEDDER;
        let spec = registry
            .embedder(id)
            .ok_or_else(|| format!("models.toml declares no embedder `{id}`"))?;
        cache.ensure(spec).map_err(|e| e.to_string())?;
        let embedder = crate::embed::Embedder::from_cache(&cache, spec, &mistralrs::Device::Cpu)
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(embedder) as Arc<dyn crate::jobs::dataset::filter::TextEmbedder>)
    })
}
