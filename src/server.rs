//! Running the server: bind, start serving at once (so `/health` answers and `/ready` says 503
//! while models load), load the models in the background, and shut down gracefully — stop
//! accepting on SIGINT/SIGTERM, let running streams finish within the grace period, then return.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{DeviceSpec, ServeConfig};
use crate::engine::mistral::{LoadOptions, MistralEngine};
use crate::fetch::ModelCache;
use crate::http::{router, AppState, Limits, ModelPool, ModelSlot};
use crate::registry::{ModelRegistry, ModelSpec};

/// A running server.
pub struct Server {
    /// Where it listens (useful with port 0).
    pub addr: SocketAddr,
    pub state: AppState,
    stop: watch::Sender<bool>,
    served: JoinHandle<std::io::Result<()>>,
    /// Fires if a model fails to load: the error message.
    pub load_failure: oneshot::Receiver<String>,
}

fn models_to_load(
    config: &ServeConfig,
    registry: &ModelRegistry,
) -> anyhow::Result<Vec<ModelSpec>> {
    let mut specs = vec![registry.default_model().clone()];
    for id in &config.load {
        let spec = registry
            .get(id)
            .with_context(|| format!("--load names `{id}`, which models.toml does not declare"))?;
        if specs.iter().all(|s| s.id != spec.id) {
            specs.push(spec.clone());
        }
    }
    Ok(specs)
}

/// Binds and starts serving; models load in the background.
pub async fn start(config: ServeConfig) -> anyhow::Result<Server> {
    config.validate().map_err(anyhow::Error::msg)?;
    let registry = ModelRegistry::load(&config.source.models)?;
    let cache = ModelCache::new(
        config
            .source
            .model_cache
            .clone()
            .unwrap_or_else(ModelCache::default_dir),
        config.source.python.clone(),
    );
    let specs = models_to_load(&config, &registry)?;
    if !config.fetch {
        for spec in &specs {
            if !cache.path_of(spec).is_file() {
                // Fail before binding: a server that can never become ready helps nobody.
                cache.verify(spec)?;
            }
        }
    }
    let pool = Arc::new(ModelPool::new(&registry.default_model().id));
    for spec in &specs {
        pool.set(&spec.id, ModelSlot::Loading, spec.refinement.clone());
    }
    let limits = Limits {
        max_rounds: config.max_rounds,
        max_body_bytes: config.max_body_bytes,
    };
    let mut state = AppState::new(
        pool.clone(),
        limits,
        config.max_concurrent,
        config.api_keys.clone(),
    );
    if let Some(admin) = crate::http::admin::Admin::start(
        &config.admin,
        pool.clone(),
        embedder_loader(registry.clone(), cache.clone()),
        config.api_keys.first().cloned(),
    )? {
        state = state.with_admin(admin);
    }
    let listener = TcpListener::bind((config.host.as_str(), config.port))
        .await
        .with_context(|| format!("cannot listen on {}:{}", config.host, config.port))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "listening");
    if let Some(admin) = &state.admin {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            addr.ip().to_string()
        };
        *admin.self_url.lock().expect("lock") = Some(format!("http://{host}:{}", addr.port()));
    }

    let (fail_tx, load_failure) = oneshot::channel();
    let opts = LoadOptions {
        device: config.device,
        max_num_seqs: config.max_num_seqs,
        prefix_cache_n: config.prefix_cache,
        // Only a CPU prefix cache grows without bound; nothing to free without one.
        recycle_after: if config.device == DeviceSpec::Cpu && config.prefix_cache > 0 {
            config.recycle_after
        } else {
            0
        },
    };
    tokio::spawn(load_models(specs, cache, config.fetch, opts, pool, fail_tx));

    let (stop, stopped) = watch::channel(false);
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let served = tokio::spawn(serve(listener, state.clone(), stopped, grace));
    Ok(Server {
        addr,
        state,
        stop,
        served,
        load_failure,
    })
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

async fn load_models(
    specs: Vec<ModelSpec>,
    cache: ModelCache,
    fetch: bool,
    opts: LoadOptions,
    pool: Arc<ModelPool>,
    fail: oneshot::Sender<String>,
) {
    for spec in specs {
        let started = std::time::Instant::now();
        let cache = cache.clone();
        let s = spec.clone();
        let path = tokio::task::spawn_blocking(move || {
            if fetch {
                cache.ensure(&s).map(|(p, _)| p)
            } else {
                cache.verify(&s)
            }
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        let loaded = match path {
            Ok(path) => MistralEngine::load(&spec.id, &path, &opts)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match loaded {
            Ok(engine) => {
                tracing::info!(model = %spec.id, secs = started.elapsed().as_secs_f32(), "model loaded");
                pool.set_slot(&spec.id, ModelSlot::Ready(Arc::new(engine)));
            }
            Err(e) => {
                tracing::error!(model = %spec.id, error = %e, "model failed to load");
                pool.set_slot(&spec.id, ModelSlot::Failed);
                let _ = fail.send(format!("model `{}` failed to load: {e}", spec.id));
                return;
            }
        }
    }
}

async fn serve(
    listener: TcpListener,
    state: AppState,
    mut stopped: watch::Receiver<bool>,
    grace: Duration,
) -> std::io::Result<()> {
    let mut signal = stopped.clone();
    let app = router(state).into_make_service();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = signal.wait_for(|s| *s).await;
        })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r,
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(?grace, "grace period over; closing the remaining connections");
            Ok(())
        }
    }
}

impl Server {
    /// Stops accepting, waits for running requests up to the grace period, and returns.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.served.await??;
        Ok(())
    }

    /// Serves until `signal` fires or a model fails to load.
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> anyhow::Result<()> {
        tokio::select! {
            _ = signal => {
                tracing::info!("shutting down");
                self.shutdown().await
            }
            Ok(msg) = &mut self.load_failure => {
                let _ = self.stop.send(true);
                anyhow::bail!(msg)
            }
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
