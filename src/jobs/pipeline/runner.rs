//! [`PipelineRunner`]: runs a pipeline's stages in order, each one the existing job of its kind
//! (its own id, events and outputs): the records (imports, then the dataset job), the training
//! file(s), one fine-tuning job per variant, the evaluation of the base model and every variant,
//! and the report. A resumed pipeline (a restart, a kill -9) finds the stages it created and
//! repeats none that finished; cancelling it cancels the running stage.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Value};

use super::report::{self, Made};
use super::spec::{answers_only, PipelineSpec};
use super::{PipelineState, StageJob};
use crate::jobs::dataset::DatasetState;
use crate::jobs::finetune::{FineTuneState, TunedModels};
use crate::jobs::Failure;
use crate::jobs::{JobContext, JobFailure, JobKind, JobRunner, JobState};
use crate::store::{JobRow, JobStatus, NewEvent};

/// Runs pipeline jobs.
pub struct PipelineRunner {
    /// The server's models: the evaluation needs the base and the tuned models loaded.
    pub models: Arc<dyn TunedModels>,
    /// `<data-dir>/pipelines`: one report folder per job.
    pub dir: PathBuf,
}

#[async_trait::async_trait]
impl JobRunner for PipelineRunner {
    fn supervises(&self) -> bool {
        true
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobFailure> {
        let spec: PipelineSpec = ctx.spec()?;
        let mut records = Vec::new();
        for (i, file) in spec.import_files.iter().enumerate() {
            let body = json!({"input_file": file, "input_format": "ptr_sample", "import": true});
            let name = format!("import-{}", i + 1);
            records.push(stage(&ctx, JobKind::Dataset, &name, body).await?);
        }
        if let Some(dataset) = &spec.dataset {
            let body = serde_json::to_value(dataset).expect("a dataset spec serialises");
            records.push(stage(&ctx, JobKind::Dataset, "dataset", body).await?);
        }
        let parts: Vec<String> = records
            .iter()
            .filter_map(|j| DatasetState::of(j).output_file_id)
            .collect();
        let all = training_file(&ctx, &parts, false).await?;

        let mut tuned = Vec::new();
        for variant in &spec.variants {
            let file = if variant.answers_only {
                training_file(&ctx, &parts, true).await?
            } else {
                all.clone()
            };
            let body = spec
                .fine_tune_spec(variant, &file)
                .map_err(|e| Failure::InvalidSpec.with(e.to_string()))?;
            let body = serde_json::to_value(body).expect("a fine-tuning spec serialises");
            let name = format!("fine_tune-{}", variant.name);
            let job = stage(&ctx, JobKind::FineTune, &name, body).await?;
            let model = FineTuneState::of(&job)
                .fine_tuned_model
                .ok_or_else(|| Failure::StageFailed.with(format!("{} made no model", job.id)))?;
            tuned.push((model, job));
        }

        let ids: Vec<String> = tuned.iter().map(|(m, _)| m.clone()).collect();
        for model in std::iter::once(&spec.model).chain(&ids) {
            ctx.check()?;
            self.models
                .load(model)
                .await
                .map_err(|e| Failure::ModelUnavailable.with(format!("cannot load {model}: {e}")))?;
        }
        let body = serde_json::to_value(spec.eval_spec(&ids)).expect("an eval spec serialises");
        let eval = stage(&ctx, JobKind::Eval, "eval", body).await?;

        ctx.check()?;
        let made = Made {
            records,
            training_file: all,
            tuned,
            eval,
        };
        let dir = self.dir.join(&ctx.job.id);
        let files = report::write(&ctx, &spec, &made, &dir).await?;
        ctx.update(&PipelineState {
            stage: Some("report".into()),
            result_files: Some(files),
            report_dir: Some(dir.clone()),
            ..PipelineState::default()
        })
        .await?;
        ctx.event(NewEvent::info(format!(
            "Report written to {}",
            dir.join("report.md").display()
        )))
        .await?;
        Ok(())
    }
}

/// Runs stage `name` (a job of `kind` made from `body`), or finds the one an earlier run made,
/// and waits for it to succeed.
async fn stage(
    ctx: &JobContext,
    kind: JobKind,
    name: &str,
    body: Value,
) -> Result<JobRow, JobFailure> {
    ctx.check()?;
    let job = ctx.child(kind, name, body).await?;
    let record = |job: &JobRow| PipelineState {
        stage: Some(name.to_string()),
        stages: Some(BTreeMap::from([(
            name.to_string(),
            StageJob {
                job_id: job.id.clone(),
                kind: kind.as_str().to_string(),
                status: job.status.as_str().to_string(),
            },
        )])),
        ..PipelineState::default()
    };
    ctx.update(&record(&job)).await?;
    let message = match job.status {
        JobStatus::Succeeded => format!("Stage {name}: {} finished before; not repeated", job.id),
        _ => format!("Stage {name}: job {} ({})", job.id, job.status.as_str()),
    };
    ctx.event(NewEvent::info(message).with_data(json!({"stage": name, "job_id": job.id})))
        .await?;
    let job = ctx.wait_child(&job.id).await?;
    ctx.update(&record(&job)).await?;
    match job.status {
        JobStatus::Succeeded => Ok(job),
        status => {
            let why = job
                .error
                .as_ref()
                .and_then(|e| e["message"].as_str())
                .unwrap_or("no reason given");
            Err(Failure::StageFailed.with(format!(
                "stage `{name}` ({}) {}: {why}",
                job.id,
                status.as_str()
            )))
        }
    }
}

/// The training file made of the records' files, once: its id is kept in the job's state, so a
/// resumed pipeline trains on the same file. `answers_only` drops every record's thoughts.
async fn training_file(
    ctx: &JobContext,
    parts: &[String],
    answers: bool,
) -> Result<String, JobFailure> {
    let key = if answers { "answers_only" } else { "all" };
    let current = ctx.store.call({
        let id = ctx.job.id.clone();
        move |s| s.job(&id)
    });
    let made = PipelineState::of(&current.await?).training_files;
    if let Some(id) = made.and_then(|mut f| f.remove(key)) {
        return Ok(id);
    }
    let parts = parts.to_vec();
    let lines = ctx
        .store
        .call(move |s| {
            let mut lines = String::new();
            for id in &parts {
                let content = s.file_content(id)?;
                for line in String::from_utf8_lossy(&content).lines() {
                    let line = if answers {
                        answers_only(line)
                    } else {
                        Some(line.to_string())
                    };
                    if let Some(line) = line.filter(|l| !l.trim().is_empty()) {
                        lines.push_str(&line);
                        lines.push('\n');
                    }
                }
            }
            Ok(lines)
        })
        .await?;
    if lines.is_empty() {
        return Err(Failure::NoTrainingRecords
            .with("the records' stages accepted no record: nothing to train on"));
    }
    let name = format!("{}-{key}.jsonl", ctx.job.id);
    let row = ctx
        .store_file(name, "fine-tune", lines.into_bytes())
        .await?;
    ctx.update(&PipelineState {
        training_files: Some(BTreeMap::from([(key.to_string(), row.id.clone())])),
        ..PipelineState::default()
    })
    .await?;
    ctx.event(NewEvent::info(format!(
        "Training file {} ({} bytes{})",
        row.id,
        row.bytes,
        if answers { ", answers only" } else { "" }
    )))
    .await?;
    Ok(row.id)
}
