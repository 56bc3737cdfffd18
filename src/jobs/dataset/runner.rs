//! The dataset job: reads the queries, skips those a previous run already recorded, builds the
//! rest (a few at once), records each as it finishes, and at the end (or on cancel) writes the
//! output files — the training lines as a `fine-tune` file, the rejected records, and the
//! provenance — plus the job's `summary`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use serde_json::{json, Value};

use super::build::{self, Builder, Built};
use super::filter::TextEmbedder;
use super::input::Query;
use super::resolve::{self, Resolved};
use super::spec::{DatasetSpec, FilterSpec};
use super::summary;
use super::{DatasetState, RequestCounts};
use crate::jobs::Failure;
use crate::jobs::{JobContext, JobFailure, JobRunner};
use crate::store::{FileStatus, NewEvent, NewFile, RecordRow, Store};

/// Loads the sentence embedder on first use (it is only needed by generating jobs).
pub type EmbedderLoader = Arc<dyn Fn() -> Result<Arc<dyn TextEmbedder>, String> + Send + Sync>;

/// Runs dataset jobs.
pub struct DatasetRunner {
    pub resolver: resolve::Resolver,
    pub embedder: EmbedderLoader,
    loaded: tokio::sync::OnceCell<Arc<dyn TextEmbedder>>,
}

impl DatasetRunner {
    pub fn new(resolver: resolve::Resolver, embedder: EmbedderLoader) -> Self {
        Self {
            resolver,
            embedder,
            loaded: tokio::sync::OnceCell::new(),
        }
    }

    async fn embedder(&self) -> Result<Arc<dyn TextEmbedder>, JobFailure> {
        let load = self.embedder.clone();
        self.loaded
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || load())
                    .await
                    .map_err(|e| e.to_string())?
            })
            .await
            .cloned()
            .map_err(|e| {
                Failure::EmbedderUnavailable.with(format!("cannot load the sentence embedder: {e}"))
            })
    }
}

/// Counts shown as the job's `request_counts`.
#[derive(Default)]
struct Counts {
    total: usize,
    accepted: usize,
    rejected: usize,
    failed: usize,
}

impl Counts {
    fn completed(&self) -> usize {
        self.accepted + self.rejected
    }

    /// The job's state with these counts.
    fn state(&self) -> DatasetState {
        DatasetState {
            request_counts: Some(RequestCounts {
                total: self.total,
                completed: self.completed(),
                accepted: self.accepted,
                rejected: self.rejected,
                failed: self.failed,
            }),
            ..DatasetState::default()
        }
    }
}

#[async_trait::async_trait]
impl JobRunner for DatasetRunner {
    async fn run(&self, ctx: JobContext) -> Result<(), JobFailure> {
        let started = Instant::now();
        let spec: DatasetSpec = ctx.spec()?;
        // Waits for local models still loading (a job resumed at start-up), unless stopped.
        let resolved = tokio::select! {
            r = self.resolver.resolve(&spec, &ctx.store, true) => r,
            _ = ctx.stopped() => return ctx.check(),
        };
        let Resolved { queries, roles } = resolved?;
        let job_id = ctx.job.id.clone();
        let existing = ctx.store.call(move |s| s.records(&job_id)).await?;
        let done: HashSet<&str> = existing.iter().map(|r| r.custom_id.as_str()).collect();
        let mut counts = Counts {
            total: queries.len(),
            ..Counts::default()
        };
        counts.accepted = existing.iter().filter(|r| r.accepted).count();
        counts.rejected = existing.len() - counts.accepted;
        let todo: Vec<Query> = queries
            .into_iter()
            .filter(|q| !done.contains(q.custom_id.as_str()))
            .collect();
        ctx.event(NewEvent::info(format!(
            "{} queries, {} already recorded, {} to build",
            counts.total,
            done.len(),
            todo.len()
        )))
        .await?;
        ctx.update(&counts.state()).await?;
        let builder = match roles {
            Some(r) => Some(Builder {
                weak: r.weak,
                strong: r.strong,
                n_thoughts: spec.n_thoughts,
                instruction: spec.instruction().to_string(),
                examples: r.examples,
                filter: spec.filter.clone(),
                embedder: self.embedder().await?,
                extract: self.resolver.extract,
            }),
            None => None,
        };
        let outcome = self
            .build_all(&ctx, &spec, builder, todo, &mut counts, started)
            .await;
        if matches!(outcome, Ok(()) | Err(JobFailure::Cancelled)) {
            write_outputs(&ctx, &spec.filter, counts.failed, started).await?;
        }
        outcome
    }
}

impl DatasetRunner {
    async fn build_all(
        &self,
        ctx: &JobContext,
        spec: &DatasetSpec,
        builder: Option<Builder>,
        todo: Vec<Query>,
        counts: &mut Counts,
        started: Instant,
    ) -> Result<(), JobFailure> {
        let instruction = spec.instruction().to_string();
        let work = futures::stream::iter(todo.into_iter().map(|q| {
            let builder = builder.clone();
            let instruction = instruction.clone();
            async move {
                let built = match &builder {
                    Some(b) => b.build(&q).await,
                    None => Ok(build::import(&q, &instruction)),
                };
                (q, built)
            }
        }))
        .buffer_unordered(spec.concurrency);
        tokio::pin!(work);
        let fresh = counts.completed();
        loop {
            let next = tokio::select! {
                stop = ctx.stopped() => {
                    ctx.event(NewEvent::info(format!("Stopping ({stop:?}); records written so far are kept"))).await?;
                    return ctx.check();
                }
                n = work.next() => n,
            };
            let Some((q, built)) = next else { break };
            match built {
                Ok(b) => record(ctx, &q, &b, counts).await?,
                Err(e) => {
                    counts.failed += 1;
                    ctx.event(NewEvent::warn(format!(
                        "record {} failed: {e}",
                        q.custom_id
                    )))
                    .await?;
                }
            }
            let minutes = started.elapsed().as_secs_f64() / 60.0;
            let rate = (counts.completed() - fresh) as f64 / minutes.max(1e-9);
            let acceptance = counts.accepted as f64 / counts.completed().max(1) as f64;
            ctx.update(&counts.state()).await?;
            ctx.event(NewEvent::metrics(
                format!("{}/{} records, {:.1}/min, {:.0}% accepted", counts.completed(), counts.total, rate, acceptance * 100.0),
                json!({"completed": counts.completed(), "total": counts.total, "records_per_minute": rate, "acceptance_rate": acceptance}),
            ))
            .await?;
        }
        if counts.failed > 0 && counts.completed() == 0 {
            return Err(Failure::Generation.with("every record failed; see the job's events"));
        }
        Ok(())
    }
}

async fn record(
    ctx: &JobContext,
    q: &Query,
    b: &Built,
    counts: &mut Counts,
) -> Result<(), JobFailure> {
    let row = RecordRow {
        custom_id: q.custom_id.clone(),
        accepted: b.accepted,
        line: b.line.clone(),
        provenance: b.provenance.clone(),
        seq: q.index as i64,
    };
    let id = ctx.job.id.clone();
    if ctx.store.call(move |s| s.put_record(&id, &row)).await? {
        if b.accepted {
            counts.accepted += 1;
        } else {
            counts.rejected += 1;
        }
    }
    let verdict = if b.accepted {
        "accepted".to_string()
    } else {
        format!("rejected ({})", b.line["reason"].as_str().unwrap_or("?"))
    };
    let data = b
        .scores
        .as_ref()
        .map(|s| json!({"custom_id": q.custom_id, "scores": s}));
    let mut event = NewEvent::info(format!("record {} {verdict}", q.custom_id));
    if let Some(d) = data {
        event = event.with_data(d);
    }
    ctx.event(event).await?;
    Ok(())
}

fn jsonl<'a>(lines: impl Iterator<Item = &'a Value>) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// Writes the output, rejected and provenance files from the recorded rows, and the summary
/// ([`summary::summarize`], over every row, this run's and earlier ones').
async fn write_outputs(
    ctx: &JobContext,
    filter: &FilterSpec,
    failed: usize,
    started: Instant,
) -> Result<(), JobFailure> {
    let id = ctx.job.id.clone();
    let (filter, seconds) = (filter.clone(), started.elapsed().as_secs_f64());
    let written = ctx
        .store
        .call(move |s: &Store| {
            let rows = s.records(&id)?;
            let accepted = jsonl(rows.iter().filter(|r| r.accepted).map(|r| &r.line));
            let rejected = jsonl(rows.iter().filter(|r| !r.accepted).map(|r| &r.line));
            let provenance = jsonl(rows.iter().map(|r| &r.provenance));
            let put = |name: String, purpose: &str, content: &[u8]| {
                // An empty training file is not a valid one: say so in its status.
                let (status, details) = if purpose == "fine-tune" && content.is_empty() {
                    (
                        FileStatus::Error,
                        Some("no record was accepted".to_string()),
                    )
                } else {
                    (FileStatus::Processed, None)
                };
                s.insert_file(NewFile {
                    filename: &name,
                    purpose,
                    content,
                    status,
                    status_details: details,
                })
            };
            let out = put(format!("{id}-train.jsonl"), "fine-tune", &accepted)?;
            let err = put(format!("{id}-rejected.jsonl"), "user_data", &rejected)?;
            let prov = put(format!("{id}-provenance.jsonl"), "user_data", &provenance)?;
            let summary = summary::summarize(&rows, &filter, failed, seconds);
            Ok((out.id, err.id, prov.id, summary))
        })
        .await?;
    let (output, error, provenance, summary) = written;
    let accepted_total = summary.accepted;
    ctx.update(&DatasetState {
        output_file_id: Some(output.clone()),
        error_file_id: Some(error),
        provenance_file_id: Some(provenance),
        summary: Some(summary),
        ..DatasetState::default()
    })
    .await?;
    ctx.event(NewEvent::info(format!(
        "Wrote {accepted_total} training lines to {output}"
    )))
    .await?;
    Ok(())
}
