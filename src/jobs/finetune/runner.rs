//! [`FineTuneRunner`]: runs one fine-tuning job — writes the trainer's config, starts the
//! trainer, hands its reports to a [`Relay`], stops it on cancel or pause, and on success stores
//! the result files and registers (and optionally loads) the tuned model. A resumed job starts the
//! trainer again; it continues from its last checkpoint.

use std::path::PathBuf;
use std::sync::Arc;

use super::child::{log_tail, Trainer};
use super::relay::Relay;
use super::spec::FineTuneSpec;
use super::{tuned_model_id, FineTuneState, TunedModels};
use crate::jobs::Failure;
use crate::jobs::{JobContext, JobFailure, JobRunner, Stop};
use crate::store::NewEvent;
use crate::train::report::Outputs;

/// Runs fine-tuning jobs.
pub struct FineTuneRunner {
    pub models: Arc<dyn TunedModels>,
    /// The `ptr-server` binary that runs `train`.
    pub exe: PathBuf,
    /// The device the trainer runs on: the server's own `--device`.
    pub device: crate::engine::DeviceSpec,
    /// Where each job's trainer output lives (`<dir>/<job id>/`).
    pub jobs_dir: PathBuf,
}

/// Longest a paused trainer may take to end its step and save a checkpoint.
const PAUSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(120);

#[async_trait::async_trait]
impl JobRunner for FineTuneRunner {
    async fn run(&self, ctx: JobContext) -> Result<(), JobFailure> {
        let spec: FineTuneSpec = ctx.spec()?;
        let dir = self.jobs_dir.join(&ctx.job.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Failure::Io.with(format!("cannot create {}: {e}", dir.display())))?;
        let base = self
            .models
            .base_gguf(&spec.model)
            .await
            .map_err(|e| Failure::InvalidModel.with(e))?;
        let training = ctx.store.blob_path(&spec.training_file);
        let validation = spec
            .validation_file
            .as_ref()
            .map(|f| ctx.store.blob_path(f));
        let config = spec.trainer_config(
            &base,
            &training,
            validation.as_deref(),
            &dir.join("trainer"),
        );
        let config_path = dir.join("config.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("JSON serialises"),
        )
        .map_err(|e| Failure::Io.with(e.to_string()))?;
        ctx.update(&FineTuneState {
            hyperparameters: Some(spec.resolved_hyperparameters()),
            ..FineTuneState::default()
        })
        .await?;
        let log = dir.join("trainer.log");
        let mut trainer = Trainer::spawn(&self.exe, &config_path, &log, self.device)
            .map_err(|e| Failure::Trainer.with(format!("cannot start the trainer: {e}")))?;
        let mut relay = Relay::new(&ctx, &spec);
        loop {
            let report = tokio::select! {
                stop = ctx.stopped() => {
                    if stop == Stop::Pause {
                        // A pause (a server shutdown too) lets the trainer end its step and save
                        // a checkpoint, so the resumed run loses nothing.
                        trainer.terminate();
                        let saved = tokio::time::timeout(PAUSE_LIMIT, async {
                            while let Ok(Some(event)) = trainer.next().await {
                                let _ = relay.take(event).await;
                            }
                        })
                        .await;
                        if saved.is_err() {
                            tracing::warn!(job = %ctx.job.id, "the trainer did not stop in time; killed");
                        }
                    }
                    trainer.kill().await;
                    ctx.event(NewEvent::info(format!("Trainer stopped ({stop:?}); checkpoints are kept"))).await?;
                    return ctx.check();
                }
                r = trainer.next() => r.map_err(|e| Failure::Trainer.with(e.to_string()))?,
            };
            let Some(event) = report else { break };
            if let Err(e) = relay.take(event).await {
                trainer.kill().await;
                return Err(e);
            }
        }
        if let Err(e) = trainer.wait().await {
            return Err(Failure::Trainer.with(format!("{e}: {}", log_tail(&log, 5))));
        }
        let Some(done) = &relay.done else {
            return Err(Failure::Trainer.with(format!(
                "the trainer ended without a result: {}",
                log_tail(&log, 5)
            )));
        };
        self.finish(&ctx, &spec, done, relay.trained_tokens).await
    }
}

impl FineTuneRunner {
    /// Stores the result files and registers the tuned model.
    async fn finish(
        &self,
        ctx: &JobContext,
        spec: &FineTuneSpec,
        done: &Outputs,
        trained_tokens: u64,
    ) -> Result<(), JobFailure> {
        let mut result_files = Vec::new();
        for path in [&done.metrics_csv, &done.loss_curve] {
            let content = std::fs::read(path)
                .map_err(|e| Failure::Io.with(format!("{}: {e}", path.display())))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let row = ctx.store_file(name, "fine-tune-results", content).await?;
            result_files.push(row.id);
        }
        let merged = done.merged_gguf.clone();
        let id = tuned_model_id(&spec.model, spec.suffix.as_deref(), &ctx.job.id);
        self.models
            .register(&id, merged, &spec.model, &ctx.job.id, spec.ptr.rounds)
            .await
            .map_err(|e| Failure::Register.with(e))?;
        ctx.update(&FineTuneState {
            fine_tuned_model: Some(id.clone()),
            result_files: Some(result_files),
            trained_tokens: Some(trained_tokens),
            adapter_dir: Some(done.adapter_dir.clone()),
            ..FineTuneState::default()
        })
        .await?;
        ctx.event(NewEvent::info(format!(
            "New fine-tuned model created: {id}"
        )))
        .await?;
        if spec.ptr.load_on_success {
            match self.models.load(&id).await {
                Ok(()) => {
                    ctx.event(NewEvent::info(format!(
                        "Loaded {id}; it serves /v1 requests"
                    )))
                    .await?
                }
                Err(e) => {
                    ctx.event(NewEvent::warn(format!("Could not load {id}: {e}")))
                        .await?
                }
            }
        }
        Ok(())
    }
}
