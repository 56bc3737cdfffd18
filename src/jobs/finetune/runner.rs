//! [`FineTuneRunner`]: runs one fine-tuning job — writes the trainer's config, starts the
//! trainer, relays its reports (steps become `metrics` events, checkpoints are listed, phases are
//! messages), stops it on cancel or pause, and on success stores the result files and registers
//! (and optionally loads) the tuned model. A resumed job starts the trainer again; it continues
//! from its last checkpoint.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};

use super::child::{log_tail, Trainer};
use super::spec::FineTuneSpec;
use super::{tuned_model_id, TunedModels};
use crate::jobs::{JobContext, JobFailure, JobRunner};
use crate::store::{now, FileStatus, NewEvent, NewFile};

/// Runs fine-tuning jobs.
pub struct FineTuneRunner {
    pub models: Arc<dyn TunedModels>,
    /// The `ptr-server` binary that runs `train`.
    pub exe: PathBuf,
    /// The device the trainer runs on: the server's own `--device`.
    pub device: crate::config::DeviceSpec,
    /// Where each job's trainer output lives (`<dir>/<job id>/`).
    pub jobs_dir: PathBuf,
}

fn failed(code: &str, message: impl Into<String>) -> JobFailure {
    JobFailure::failed(code, message)
}

#[async_trait::async_trait]
impl JobRunner for FineTuneRunner {
    fn resumable(&self) -> bool {
        true
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobFailure> {
        let spec: FineTuneSpec = serde_json::from_value(ctx.job.spec.clone())
            .map_err(|e| failed("invalid_spec", e.to_string()))?;
        let dir = self.jobs_dir.join(&ctx.job.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| failed("io_error", format!("cannot create {}: {e}", dir.display())))?;
        let base = self
            .models
            .base_gguf(&spec.model)
            .await
            .map_err(|e| failed("invalid_model", e))?;
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
        .map_err(|e| failed("io_error", e.to_string()))?;
        ctx.patch(
            json!({"hyperparameters": spec.resolved_hyperparameters(), "trained_tokens": null}),
        )
        .await?;
        let log = dir.join("trainer.log");
        let mut trainer = Trainer::spawn(&self.exe, &config_path, &log, self.device)
            .map_err(|e| failed("trainer_failed", format!("cannot start the trainer: {e}")))?;
        let mut checkpoints: Vec<Value> = ctx.job.state["checkpoints"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut done: Option<Value> = None;
        let mut trained_tokens = ctx.job.state["trained_tokens"].as_u64().unwrap_or(0);
        let mut total_steps = Value::Null;
        loop {
            let report = tokio::select! {
                stop = ctx.stopped() => {
                    trainer.kill().await;
                    ctx.event(NewEvent::info(format!("Trainer stopped ({stop:?}); checkpoints are kept"))).await?;
                    return ctx.check();
                }
                r = trainer.next() => r.map_err(|e| failed("trainer_failed", e.to_string()))?,
            };
            let Some(r) = report else { break };
            match r["type"].as_str().unwrap_or("") {
                "step" => {
                    let tps = r["tokens_per_second"].as_f64().unwrap_or(0.0);
                    trained_tokens += r["tokens"].as_u64().unwrap_or(0);
                    let msg = format!(
                        "Step {}: training loss={:.4}",
                        r["step"].as_u64().unwrap_or(0),
                        r["train_loss"].as_f64().unwrap_or(f64::NAN)
                    );
                    ctx.event(NewEvent::metrics(msg, json!({
                        "step": r["step"], "total_steps": total_steps, "train_loss": r["train_loss"],
                        "learning_rate": r["learning_rate"], "tokens_per_second": tps, "grad_norm": r["grad_norm"],
                        "epoch": r["epoch"],
                    })))
                    .await?;
                }
                "checkpoint" => {
                    let step = r["step"].as_u64().unwrap_or(0);
                    checkpoints.retain(|c| c["step_number"].as_u64() != Some(step));
                    checkpoints.push(json!({
                        "object": "fine_tuning.job.checkpoint",
                        "id": format!("ftckpt-{}-{step}", ctx.job.id.trim_start_matches("ftjob-")),
                        "created_at": now(), "step_number": step, "path": r["path"],
                        "fine_tuning_job_id": ctx.job.id, "metrics": r["metrics"].clone(),
                        "fine_tuned_model_checkpoint": format!("{}:ckpt-step-{step}", tuned_model_id(&spec.model, spec.suffix.as_deref(), &ctx.job.id)),
                    }));
                    ctx.patch(json!({"checkpoints": checkpoints})).await?;
                    ctx.event(NewEvent::info(format!("Checkpoint saved at step {step}")))
                        .await?;
                }
                "skipped" => {
                    ctx.event(NewEvent::warn(format!(
                        "{} training lines skipped: {}",
                        r["lines"],
                        r["reason"].as_str().unwrap_or("")
                    )))
                    .await?
                }
                "started" => {
                    total_steps = r["total_steps"].clone();
                    let msg = format!("Training from step {} of {}", r["step"], r["total_steps"]);
                    ctx.event(NewEvent::info(msg).with_data(r.clone())).await?;
                }
                "validation" => {
                    let msg = format!(
                        "Step {}: validation loss={:.4}",
                        r["step"],
                        r["valid_loss"].as_f64().unwrap_or(f64::NAN)
                    );
                    ctx.event(NewEvent::metrics(msg, r.clone())).await?;
                }
                "phase" => {
                    ctx.event(
                        NewEvent::info(
                            r["message"]
                                .as_str()
                                .unwrap_or("trainer started")
                                .to_string(),
                        )
                        .with_data(r.clone()),
                    )
                    .await?
                }
                "error" => {
                    trainer.kill().await;
                    return Err(failed(
                        "trainer_failed",
                        r["message"]
                            .as_str()
                            .unwrap_or("the trainer failed")
                            .to_string(),
                    ));
                }
                "done" => done = Some(r),
                _ => {}
            }
        }
        if let Err(e) = trainer.wait().await {
            return Err(failed(
                "trainer_failed",
                format!("{e}: {}", log_tail(&log, 5)),
            ));
        }
        let Some(done) = done else {
            return Err(failed(
                "trainer_failed",
                format!("the trainer ended without a result: {}", log_tail(&log, 5)),
            ));
        };
        self.finish(&ctx, &spec, &done, trained_tokens).await
    }
}

impl FineTuneRunner {
    /// Stores the result files and registers the tuned model.
    async fn finish(
        &self,
        ctx: &JobContext,
        spec: &FineTuneSpec,
        done: &Value,
        trained_tokens: u64,
    ) -> Result<(), JobFailure> {
        let mut result_files = Vec::new();
        for key in ["metrics_csv", "loss_curve"] {
            let Some(path) = done[key].as_str().map(PathBuf::from) else {
                continue;
            };
            let content = std::fs::read(&path)
                .map_err(|e| failed("io_error", format!("{}: {e}", path.display())))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let row = ctx
                .store
                .call(move |s| {
                    s.insert_file(NewFile {
                        filename: &name,
                        purpose: "fine-tune-results",
                        content: &content,
                        status: FileStatus::Processed,
                        status_details: None,
                    })
                })
                .await?;
            result_files.push(row.id);
        }
        let merged = done["merged_gguf"]
            .as_str()
            .map(PathBuf::from)
            .ok_or_else(|| failed("trainer_failed", "the trainer wrote no merged model"))?;
        let id = tuned_model_id(&spec.model, spec.suffix.as_deref(), &ctx.job.id);
        self.models
            .register(&id, merged, &spec.model, &ctx.job.id, spec.ptr.rounds)
            .await
            .map_err(|e| failed("register_failed", e))?;
        ctx.patch(json!({"fine_tuned_model": id, "result_files": result_files, "trained_tokens": trained_tokens, "adapter_dir": done["adapter_dir"]})).await?;
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
