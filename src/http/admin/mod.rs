//! The admin API under `/admin/v1`: OpenAI's files and fine-tuning surface, self-hosted, plus
//! PTR's dataset jobs and one job index. Off (every path 404) unless an admin token is set; on,
//! every request needs `Authorization: Bearer <admin token>` — a public API key is not enough.
//! Shapes follow OpenAI's, so `OpenAI(base_url=".../admin/v1", api_key=TOKEN)` works; every
//! route is in the OpenAPI document ([`openapi::AdminDoc`]).

mod auth;
mod datasets;
mod evals;
mod events;
mod files;
mod fine_tuning;
mod jobs;
mod models;
pub mod openapi;
pub mod pipelines;
pub mod schemas;
mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use super::state::AppState;
use crate::jobs::JobManager;
use crate::store::Store;

/// What the admin routes need.
pub struct Admin {
    /// The admin token, as a digest.
    pub token: crate::http::auth::ApiKeys,
    pub store: Arc<Store>,
    pub jobs: Arc<JobManager>,
    /// Largest file upload in bytes.
    pub max_file_bytes: usize,
    /// Checks dataset jobs' requests against the models and files.
    pub datasets: crate::jobs::dataset::resolve::Resolver,
    /// The model registry as fine-tuning jobs see it (`None`: fine-tuning is off).
    pub tuned: Option<Arc<dyn crate::jobs::finetune::TunedModels>>,
    /// This server's own base URL once it listens (evaluation jobs call it).
    pub self_url: Arc<std::sync::Mutex<Option<String>>>,
}

/// Every admin route, relative to `/admin/v1`, with its handlers. The router is built from this
/// table alone, so that a test can hold each route against the OpenAPI document.
fn routes() -> Vec<(&'static str, MethodRouter<AppState>)> {
    vec![
        ("/files", post(files::upload).get(files::list)),
        ("/files/{id}", get(files::retrieve).delete(files::delete)),
        ("/files/{id}/content", get(files::content)),
        ("/models", get(models::list)),
        ("/models/{id}", get(models::retrieve).delete(models::delete)),
        ("/models/{id}/load", post(models::load)),
        ("/models/{id}/unload", post(models::unload)),
        ("/jobs", get(jobs::index)),
        ("/jobs/{id}", get(jobs::retrieve)),
        ("/jobs/{id}/cancel", post(jobs::cancel)),
        ("/jobs/{id}/events", get(events::any)),
        (
            "/fine_tuning/jobs",
            post(fine_tuning::create).get(fine_tuning::list),
        ),
        ("/fine_tuning/jobs/{id}", get(fine_tuning::retrieve)),
        ("/fine_tuning/jobs/{id}/cancel", post(fine_tuning::cancel)),
        ("/fine_tuning/jobs/{id}/pause", post(fine_tuning::pause)),
        ("/fine_tuning/jobs/{id}/resume", post(fine_tuning::resume)),
        ("/fine_tuning/jobs/{id}/events", get(events::fine_tuning)),
        (
            "/fine_tuning/jobs/{id}/checkpoints",
            get(fine_tuning::checkpoints),
        ),
        ("/evals/jobs", post(evals::create).get(evals::list)),
        ("/evals/jobs/{id}", get(evals::retrieve)),
        ("/evals/jobs/{id}/cancel", post(evals::cancel)),
        ("/evals/jobs/{id}/events", get(events::evals)),
        ("/datasets/jobs", post(datasets::create).get(datasets::list)),
        ("/datasets/jobs/{id}", get(datasets::retrieve)),
        ("/datasets/jobs/{id}/cancel", post(datasets::cancel)),
        ("/datasets/jobs/{id}/events", get(events::datasets)),
        ("/pipelines", post(pipelines::create).get(pipelines::list)),
        ("/pipelines/{id}", get(pipelines::retrieve)),
        ("/pipelines/{id}/cancel", post(pipelines::cancel)),
        ("/pipelines/{id}/events", get(events::pipelines)),
    ]
}

/// The admin routes' paths, relative to `/admin/v1`.
pub fn paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// The admin routes (to be nested under `/admin/v1`).
pub fn router(state: &AppState, admin: &Admin) -> Router<AppState> {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, handlers)| {
            router.route(path, handlers)
        })
        .layer(DefaultBodyLimit::max(admin.max_file_bytes + 64 * 1024))
        .route_layer(from_fn_with_state(state.clone(), auth::require_admin_token))
}

impl Admin {
    /// Opens the store under the data directory, settles jobs a crash interrupted, registers the
    /// job runners and starts the scheduler. `None` when no admin token is configured.
    pub fn start(
        config: &crate::config::AdminConfig,
        data_dir: &std::path::Path,
        models: Arc<crate::models::ModelManager>,
        cache: crate::fetch::ModelCache,
        embedder: crate::jobs::dataset::EmbedderLoader,
        api_key: Option<String>,
        device: crate::engine::DeviceSpec,
    ) -> anyhow::Result<Option<Self>> {
        use anyhow::Context;
        let Some(token) = &config.admin_token else {
            return Ok(None);
        };
        let dir = data_dir.to_path_buf();
        let store = Arc::new(
            Store::open(&dir)
                .with_context(|| format!("cannot open the job store in {}", dir.display()))?,
        );
        let datasets = crate::jobs::dataset::resolve::Resolver {
            models: models.clone(),
            extract: crate::eval::tasks::gsm8k::extract,
        };
        let mut jobs = JobManager::new(store.clone(), config.max_running_jobs);
        jobs.register(
            crate::jobs::JobKind::Dataset,
            Arc::new(crate::jobs::dataset::DatasetRunner::new(
                datasets.clone(),
                embedder,
            )),
        );
        let self_url = Arc::new(std::sync::Mutex::new(None));
        jobs.register(
            crate::jobs::JobKind::Eval,
            Arc::new(crate::jobs::eval::EvalRunner {
                self_url: self_url.clone(),
                self_key: api_key,
                dir: dir.join("evals"),
            }),
        );
        let tuned: Arc<dyn crate::jobs::finetune::TunedModels> =
            Arc::new(crate::jobs::finetune::ManagedModels {
                models: models.clone(),
                cache,
            });
        jobs.register(
            crate::jobs::JobKind::FineTune,
            Arc::new(crate::jobs::finetune::FineTuneRunner {
                models: tuned.clone(),
                exe: std::env::current_exe().context("cannot find this program to run `train`")?,
                device,
                jobs_dir: dir.join("fine_tuning"),
            }),
        );
        jobs.register(
            crate::jobs::JobKind::Pipeline,
            Arc::new(crate::jobs::pipeline::PipelineRunner {
                models: tuned.clone(),
                dir: dir.join("pipelines"),
            }),
        );
        let jobs = Arc::new(jobs);
        jobs.start()?;
        tracing::info!(data_dir = %dir.display(), "admin API on at /admin/v1");
        Ok(Some(Self {
            token: crate::http::auth::ApiKeys::new(std::slice::from_ref(token)),
            store,
            jobs,
            max_file_bytes: config.max_file_bytes,
            datasets,
            tuned: Some(tuned),
            self_url,
        }))
    }
}
