//! The back office: the durable store, the job manager with a runner per job kind, and what the
//! admin routes check requests against. Built once by [`super::App::build`] when an admin token is
//! configured; the admin routes ([`crate::http::admin`]) and the in-process commands
//! (`ptr-model`, `build-dataset`) use it.

use std::sync::Arc;

use crate::jobs::JobManager;
use crate::models::ModelManager;
use crate::store::Store;

/// What the admin routes need: the back office's services, then its two settings.
pub struct Admin {
    /// Files, jobs, their events and records, on disk.
    pub store: Arc<Store>,
    pub jobs: Arc<JobManager>,
    /// The served models (the admin model routes list, load and unload them).
    pub models: Arc<ModelManager>,
    /// The model registry as fine-tuning jobs see it.
    pub tuned: Arc<dyn crate::jobs::finetune::TunedModels>,
    /// Checks dataset jobs' requests against the models and files.
    pub datasets: crate::jobs::dataset::resolve::Resolver,
    /// This server's own `/v1` API in process, bound once its router is built (evaluation and
    /// dataset jobs reach this server's models through it).
    pub local: crate::client::LocalApi,
    /// The admin token (the admin routes keep only its digest).
    pub token: String,
    /// Largest file upload in bytes.
    pub max_file_bytes: usize,
}

impl Admin {
    /// Opens the store under the data directory and registers the job runners; the scheduler
    /// waits for [`Self::start_jobs`]. `None` when no admin token is configured.
    pub fn open(
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
        let local = crate::client::LocalApi::default();
        let datasets = crate::jobs::dataset::resolve::Resolver {
            models: models.clone(),
            extract: crate::eval::tasks::gsm8k::extract,
            local: local.clone(),
            local_key: api_key.clone(),
        };
        let mut jobs = JobManager::new(store.clone(), config.max_running_jobs);
        jobs.register(
            crate::jobs::JobKind::Dataset,
            Arc::new(crate::jobs::dataset::DatasetRunner::new(
                datasets.clone(),
                embedder,
            )),
        );
        jobs.register(
            crate::jobs::JobKind::Eval,
            Arc::new(crate::jobs::eval::EvalRunner {
                local: local.clone(),
                local_key: api_key,
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
        tracing::info!(data_dir = %dir.display(), "admin API on at /admin/v1");
        Ok(Some(Self {
            models,
            token: token.clone(),
            store,
            jobs: Arc::new(jobs),
            max_file_bytes: config.max_file_bytes,
            datasets,
            tuned,
            local,
        }))
    }

    /// Settles the jobs a crash or stop interrupted (requeued to resume, or failed) and starts
    /// the scheduler.
    pub fn start_jobs(&self) -> anyhow::Result<()> {
        Ok(self.jobs.start()?)
    }
}
