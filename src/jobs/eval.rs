//! The evaluation as an admin job (`POST /admin/v1/evals/jobs`): the same [`crate::eval::run`]
//! as `ptr-server eval`, on this server's models (through its own HTTP address) or any
//! OpenAI-compatible endpoint, with a progress count and events, cancel, and resume (the output
//! folder's `items.jsonl` is the resume point). The report, summary, chart and items become
//! files of the job.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{JobContext, JobFailure, JobRunner, SpecError};
use crate::eval::{EvalSpec, Progress, ProgressSink, RoundsMode, SystemSpec, TaskInput, TaskKind};
use crate::jobs::Failure;
use crate::store::NewEvent;

/// `POST /evals/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalJobSpec {
    /// One data file (a file id, purpose `evals` or `user_data`) per task.
    pub tasks: Vec<EvalTask>,
    pub model: String,
    /// An OpenAI-compatible endpoint (`…/v1` or its base); default: this server.
    pub endpoint: Option<String>,
    /// The environment variable holding the endpoint's API key.
    pub api_key_env: Option<String>,
    /// A second system on the same items (e.g. the base model vs a PTR-tuned one).
    pub compare: Option<CompareSystem>,
    /// Further systems on the same items, after `compare` (e.g. a pipeline's ablations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub more_systems: Vec<CompareSystem>,
    #[serde(default = "three")]
    pub rounds: u32,
    pub limit: Option<usize>,
    #[serde(default = "max_tokens")]
    pub max_tokens: u32,
    #[serde(default)]
    pub temperature: f64,
    pub instruction: Option<String>,
    /// `client` (rounds laid out by the harness; any server) or `server` (ptr-server rounds).
    #[serde(default = "server_rounds")]
    pub rounds_mode: String,
    /// Items asked at once (greedy answers do not depend on it on a ptr-server).
    #[serde(default = "one")]
    pub concurrency: usize,
    /// Start no new item after this many minutes of a run; the report covers the items done
    /// (items are asked item-major, so every task and system gets about as many).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_minutes: Option<f64>,
    pub metadata: Option<serde_json::Value>,
}

/// One task of an evaluation job.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvalTask {
    pub task: TaskKind,
    pub file: String,
}

/// The second system of a comparison.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareSystem {
    pub model: String,
    pub endpoint: Option<String>,
    pub api_key_env: Option<String>,
}

fn three() -> u32 {
    3
}
fn one() -> usize {
    1
}
fn max_tokens() -> u32 {
    256
}
fn server_rounds() -> String {
    "server".into()
}

impl EvalJobSpec {
    /// Checks what needs no lookup.
    pub fn check(&self) -> Result<RoundsMode, SpecError> {
        let e = |p: &str, m: &str| Err(SpecError::new(p, m));
        if self.tasks.is_empty() {
            return e("tasks", "`tasks` needs at least one {task, file}");
        }
        if !(1..=16).contains(&self.rounds) {
            return e("rounds", "`rounds` must be between 1 and 16");
        }
        if !(1..=32_768).contains(&self.max_tokens) {
            return e("max_tokens", "`max_tokens` must be between 1 and 32768");
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return e("temperature", "`temperature` must be between 0 and 2");
        }
        if self.limit == Some(0) {
            return e("limit", "`limit` must be at least 1");
        }
        if !(1..=64).contains(&self.concurrency) {
            return e("concurrency", "`concurrency` must be between 1 and 64");
        }
        if self
            .time_limit_minutes
            .is_some_and(|m| !(m.is_finite() && m > 0.0))
        {
            return e(
                "time_limit_minutes",
                "`time_limit_minutes` must be a positive number of minutes",
            );
        }
        for (p, url) in [
            ("endpoint", &self.endpoint),
            (
                "compare.endpoint",
                &self.compare.as_ref().and_then(|c| c.endpoint.clone()),
            ),
        ] {
            if url
                .as_ref()
                .is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://")))
            {
                return e(p, "an endpoint must be an http(s) URL");
            }
        }
        for (p, var) in [
            ("api_key_env", &self.api_key_env),
            (
                "compare.api_key_env",
                &self.compare.as_ref().and_then(|c| c.api_key_env.clone()),
            ),
        ] {
            if let Some(v) = var {
                if std::env::var(v).is_err() {
                    let message = format!("the server has no environment variable `{v}`");
                    return Err(SpecError::new(p, message));
                }
            }
        }
        for (i, c) in self.more_systems.iter().enumerate() {
            if c.model.trim().is_empty() {
                return Err(SpecError::new(
                    format!("more_systems[{i}].model"),
                    "`model` must not be empty",
                ));
            }
            if c.endpoint.is_some() || c.api_key_env.is_some() {
                return Err(SpecError::new(
                    format!("more_systems[{i}].endpoint"),
                    "`more_systems` are models of this server",
                ));
            }
        }
        match self.rounds_mode.as_str() {
            "server" => Ok(RoundsMode::Server),
            "client" => Ok(RoundsMode::Client),
            _ => e("rounds_mode", "`rounds_mode` must be `server` or `client`"),
        }
    }
}

/// Runs evaluation jobs.
pub struct EvalRunner {
    /// This server's own base URL (set once it listens) and an API key it accepts.
    pub self_url: Arc<Mutex<Option<String>>>,
    pub self_key: Option<String>,
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
                let _ = ctx.patch(json!({ "progress": data })).await;
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

fn system(
    label: &str,
    model: &str,
    endpoint: &Option<String>,
    key_env: &Option<String>,
    self_url: &str,
    self_key: &Option<String>,
    mode: RoundsMode,
) -> SystemSpec {
    let (endpoint, api_key) = match endpoint {
        Some(url) => (
            url.trim_end_matches('/')
                .trim_end_matches("/v1")
                .to_string(),
            key_env.as_ref().and_then(|v| std::env::var(v).ok()),
        ),
        None => (self_url.to_string(), self_key.clone()),
    };
    SystemSpec {
        label: label.to_string(),
        endpoint,
        model: model.to_string(),
        api_key,
        rounds_mode: mode,
    }
}

#[async_trait::async_trait]
impl JobRunner for EvalRunner {
    fn resumable(&self) -> bool {
        true
    }

    async fn run(&self, ctx: JobContext) -> Result<(), JobFailure> {
        let spec: EvalJobSpec = serde_json::from_value(ctx.job.spec.clone())
            .map_err(|e| Failure::InvalidSpec.with(e.to_string()))?;
        let mode = spec.check()?;
        let self_url = self
            .self_url
            .lock()
            .expect("lock")
            .clone()
            .ok_or_else(|| Failure::NotReady.with("the server is not listening yet"))?;
        let mut systems = vec![system(
            &spec.model,
            &spec.model,
            &spec.endpoint,
            &spec.api_key_env,
            &self_url,
            &self.self_key,
            mode,
        )];
        for c in spec.compare.iter().chain(&spec.more_systems) {
            let label = if systems.iter().any(|s| s.label == c.model) {
                format!("{} (compare)", c.model)
            } else {
                c.model.clone()
            };
            systems.push(system(
                &label,
                &c.model,
                &c.endpoint,
                &c.api_key_env,
                &self_url,
                &self.self_key,
                mode,
            ));
        }
        let out = self.dir.join(&ctx.job.id);
        let eval = EvalSpec {
            tasks: spec
                .tasks
                .iter()
                .map(|t| TaskInput {
                    kind: t.task,
                    data: ctx.store.blob_path(&t.file),
                })
                .collect(),
            systems,
            rounds: spec.rounds,
            limit: spec.limit,
            max_tokens: spec.max_tokens,
            temperature: spec.temperature,
            instruction: spec
                .instruction
                .clone()
                .unwrap_or_else(|| crate::refine::DEFAULT_INSTRUCTION.to_string()),
            concurrency: spec.concurrency,
            time_limit: spec
                .time_limit_minutes
                .map(|m| std::time::Duration::from_secs_f64(m * 60.0)),
            out: out.clone(),
        };
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
        let mut files = serde_json::Map::new();
        for name in ["report.md", "summary.json", "accuracy.svg", "items.jsonl"] {
            let path = out.join(name);
            let Ok(content) = std::fs::read(&path) else {
                continue;
            };
            let file_name = format!("{}-{name}", ctx.job.id);
            let row = ctx.store_file(file_name, "evals", content).await?;
            files.insert(name.to_string(), json!(row.id));
        }
        ctx.patch(json!({"result_files": files, "summary": report.tables, "failed_items": report.failed_items})).await?;
        ctx.event(NewEvent::info(format!(
            "Report written ({} tables)",
            report.tables.len()
        )))
        .await?;
        Ok(())
    }
}
