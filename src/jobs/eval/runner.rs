//! [`EvalRunner`]: runs an evaluation job — the harness on a thread of its own, its progress and
//! notes recorded in the job, its report files stored with the job.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::json;

use super::{EvalJobSpec, EvalState};
use crate::client::LocalApi;
use crate::eval::{Decoding, EvalSpec, Progress, ProgressSink, RoundsMode, SystemSpec, TaskInput};
use crate::jobs::Failure;
use crate::jobs::{JobContext, JobFailure, JobRunner};
use crate::store::NewEvent;

/// Runs evaluation jobs.
pub struct EvalRunner {
    /// This server's own `/v1` API, in process (systems without an endpoint), and a key it
    /// accepts.
    pub local: LocalApi,
    pub local_key: Option<String>,
    /// `<data-dir>/evals`: one output folder per job.
    pub dir: PathBuf,
}

/// What the harness reports, in order.
enum Report {
    Progress(Progress),
    Note(String),
}

/// The harness's progress sink: reports go, in order, to one task that records them in the
/// job (the harness runs on a thread of its own and must not wait on the store).
struct Events(tokio::sync::mpsc::UnboundedSender<Report>);

impl ProgressSink for Events {
    fn progress(&self, p: Progress) {
        let _ = self.0.send(Report::Progress(p));
    }

    fn note(&self, message: &str) {
        let _ = self.0.send(Report::Note(message.to_string()));
    }
}

/// Records the harness's reports in the job until the sink is dropped.
async fn record_reports(ctx: JobContext, mut rx: tokio::sync::mpsc::UnboundedReceiver<Report>) {
    while let Some(report) = rx.recv().await {
        let _ = match report {
            Report::Progress(p) => {
                let data = json!({"done": p.done, "total": p.total});
                let state = EvalState {
                    progress: Some(p),
                    ..EvalState::default()
                };
                let _ = ctx.update(&state).await;
                ctx.event(NewEvent::metrics(
                    format!("{}/{} items", p.done, p.total),
                    data,
                ))
                .await
            }
            Report::Note(message) => ctx.event(NewEvent::info(message)).await,
        };
    }
}

impl EvalRunner {
    /// One system of the job: `endpoint` if it names one, else this server's own API.
    fn system(
        &self,
        label: &str,
        model: &str,
        endpoint: &Option<String>,
        key_env: &Option<String>,
        mode: RoundsMode,
    ) -> SystemSpec {
        let (endpoint, api_key, local) = match endpoint {
            Some(url) => (
                url.trim_end_matches('/')
                    .trim_end_matches("/v1")
                    .to_string(),
                key_env.as_ref().and_then(|v| std::env::var(v).ok()),
                None,
            ),
            None => (
                "this server (in process)".to_string(),
                self.local_key.clone(),
                Some(self.local.clone()),
            ),
        };
        SystemSpec {
            label: label.to_string(),
            endpoint,
            model: model.to_string(),
            api_key,
            rounds_mode: mode,
            local,
        }
    }

    /// The harness's spec for this job: its systems (this server's models in process, others by
    /// URL) and its items, read from the job's stored files.
    fn eval_spec(&self, spec: &EvalJobSpec, ctx: &JobContext) -> Result<EvalSpec, JobFailure> {
        let mode = spec.check()?;
        let mut systems = vec![self.system(
            &spec.model,
            &spec.model,
            &spec.endpoint,
            &spec.api_key_env,
            mode,
        )];
        for c in spec.compare.iter().chain(&spec.more_systems) {
            let label = if systems.iter().any(|s| s.label == c.model) {
                format!("{} (compare)", c.model)
            } else {
                c.model.clone()
            };
            systems.push(self.system(&label, &c.model, &c.endpoint, &c.api_key_env, mode));
        }
        if systems.iter().any(|s| s.local.is_some()) && !self.local.is_bound() {
            return Err(Failure::NotReady.with("this server's API is not up yet"));
        }
        Ok(EvalSpec {
            tasks: spec
                .tasks
                .iter()
                .map(|t| TaskInput {
                    kind: t.task,
                    data: ctx.store.blob_path(&t.file),
                })
                .collect(),
            systems,
            decoding: Decoding {
                rounds: spec.rounds,
                max_tokens: spec.max_tokens,
                temperature: spec.temperature,
                instruction: spec
                    .instruction
                    .clone()
                    .unwrap_or_else(|| crate::refine::DEFAULT_INSTRUCTION.to_string()),
            },
            limit: spec.limit,
            concurrency: spec.concurrency,
            time_limit: spec
                .time_limit_minutes
                .map(|m| std::time::Duration::from_secs_f64(m * 60.0)),
            out: self.dir.join(&ctx.job.id),
        })
    }
}

#[async_trait::async_trait]
impl JobRunner for EvalRunner {
    async fn run(&self, ctx: JobContext) -> Result<(), JobFailure> {
        let spec: EvalJobSpec = ctx.spec()?;
        let eval = self.eval_spec(&spec, &ctx)?;
        let out = eval.out.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        let (reports, received) = tokio::sync::mpsc::unbounded_channel();
        let sink = Events(reports);
        let recorder = tokio::spawn(record_reports(ctx.clone(), received));
        let flag = cancel.clone();
        let watcher = ctx.clone();
        let stop = tokio::spawn(async move {
            watcher.stopped().await;
            flag.store(true, Ordering::SeqCst);
        });
        // The harness's future is not `Send` (its item stream borrows across awaits), so it runs
        // on a thread of its own with a single-threaded runtime.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let flag = cancel.clone();
        std::thread::spawn(move || {
            let result = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(crate::eval::run(&eval, &sink, &flag)),
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(result);
        });
        let result = rx
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the evaluation thread died")));
        stop.abort();
        // The sink went with the thread: every report is recorded before the job ends.
        let _ = recorder.await;
        let report = match result {
            Ok(r) => r,
            Err(e) if cancel.load(Ordering::SeqCst) => {
                tracing::info!(error = %e, "evaluation stopped");
                return ctx.check();
            }
            Err(e) => return Err(Failure::Eval.with(e.to_string())),
        };
        if report.failed_items > 0 && report.tables.iter().all(|t| t.items == 0) {
            return Err(Failure::Eval.with(format!(
                "all {} items failed; see the job's events",
                report.failed_items
            )));
        }
        store_report(&ctx, &out, &report).await
    }
}

/// Stores the report's files as the job's result files and its tables in the job's state.
async fn store_report(
    ctx: &JobContext,
    out: &std::path::Path,
    report: &crate::eval::EvalReport,
) -> Result<(), JobFailure> {
    let mut files = std::collections::BTreeMap::new();
    for name in ["report.md", "summary.json", "accuracy.svg", "items.jsonl"] {
        let path = out.join(name);
        let Ok(content) = std::fs::read(&path) else {
            continue;
        };
        let file_name = format!("{}-{name}", ctx.job.id);
        let row = ctx.store_file(file_name, "evals", content).await?;
        files.insert(name.to_string(), row.id);
    }
    ctx.update(&EvalState {
        result_files: Some(files),
        summary: Some(report.tables.clone()),
        failed_items: Some(report.failed_items),
        ..EvalState::default()
    })
    .await?;
    ctx.event(NewEvent::info(format!(
        "Report written ({} tables)",
        report.tables.len()
    )))
    .await?;
    Ok(())
}
