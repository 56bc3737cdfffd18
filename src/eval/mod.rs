//! Multi-round evaluation of refinement: every item of a benchmark runs through N refinement
//! rounds, each round's answer is extracted and scored on its own, and the result is a per-round
//! table (accuracy with a 95 % Wilson interval, delta vs round 1, flips between rounds, an exact
//! McNemar test of round N vs round 1), a JSONL of every item and round, a Markdown report, a
//! `summary.json` and an SVG chart (DESIGN.md §1 "Evaluation").
//!
//! - [`tasks`]: the benchmarks (GSM8K, ARC, CommonsenseQA, MMLU, Winogrande): prompt, gold,
//!   answer extraction.
//! - `client` asks one system for the N rounds of an item: rounds built client-side with
//!   [`crate::refine::layout`] against any OpenAI-compatible server, or one request with the
//!   `refinement` extension to a ptr-server.
//! - `store` owns the output folder's `items.jsonl` (the resume point) and `run.json`.
//! - [`stats`], `report` and `chart` turn the records into the table, report and chart.
//! - [`run`] is the whole evaluation as one function, usable by the command line (`ptr-server
//!   eval`, which adds a progress bar and an in-process server) and by a job runner (progress
//!   callback, cancel flag).

mod chart;
mod client;
mod report;
mod run;
pub mod stats;
mod store;
pub mod tasks;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use client::Decoding;
pub use report::{EvalReport, RoundRow, TaskTable, VsBaseline};
pub use run::run;
pub use tasks::TaskKind;

/// One benchmark file to evaluate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskInput {
    pub kind: TaskKind,
    /// A data file of the task's shape.
    pub data: PathBuf,
}

/// How a system's rounds are produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoundsMode {
    /// One plain `/v1/chat/completions` call per round, the conversation laid out by this client
    /// with [`crate::refine::layout::round_messages`]: works with any OpenAI-compatible server.
    Client,
    /// One call with the `refinement` extension (`early_stop: false`); the rounds are read from
    /// `refinement.rounds[*].content`. Needs a ptr-server.
    Server,
}

/// A model behind an endpoint: one column of a comparison.
#[derive(Clone, Serialize)]
pub struct SystemSpec {
    /// The name in tables, the chart and `items.jsonl`; unique within a run.
    pub label: String,
    /// Base URL; `/v1/chat/completions` is appended. Only shown when `local` is set.
    pub endpoint: String,
    /// The `model` of each request.
    pub model: String,
    #[serde(skip)]
    pub api_key: Option<String>,
    pub rounds_mode: RoundsMode,
    /// This server's own API, called in process instead of `endpoint` (an eval job's models).
    #[serde(skip)]
    pub local: Option<crate::client::LocalApi>,
}

impl std::fmt::Debug for SystemSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemSpec")
            .field("label", &self.label)
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("rounds_mode", &self.rounds_mode)
            .field("local", &self.local)
            .finish()
    }
}

/// Everything an evaluation needs. The same spec with the same `out` resumes.
#[derive(Debug, Clone, Serialize)]
pub struct EvalSpec {
    pub tasks: Vec<TaskInput>,
    /// One system, or several compared on the same items (the first is the baseline).
    pub systems: Vec<SystemSpec>,
    /// Rounds, `max_tokens`, temperature and instruction: the same for every item and system.
    #[serde(flatten)]
    pub decoding: Decoding,
    /// Only the first K items of each file.
    pub limit: Option<usize>,
    /// Items in flight at once (1 keeps greedy answers independent of batching).
    pub concurrency: usize,
    /// Start no new item after this long; the report covers the items done.
    pub time_limit: Option<std::time::Duration>,
    /// The output folder: `items.jsonl`, `run.json`, `report.md`, `summary.json`, `accuracy.svg`.
    pub out: PathBuf,
}

/// How far an evaluation is, counted in items (all rounds of one item on one system).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// Where a running evaluation reports: a progress bar, a job's event log.
pub trait ProgressSink: Send + Sync {
    /// Called once at the start (with the items already done by an earlier run) and after
    /// every finished item.
    fn progress(&self, progress: Progress);
    /// Something worth telling (resuming, an item that failed).
    fn note(&self, message: &str);
}

/// The evaluation stopped because its cancel flag was set; what was finished is in `items.jsonl`
/// and a rerun with the same spec resumes.
#[derive(Debug, thiserror::Error)]
#[error("the evaluation was cancelled")]
pub struct Cancelled;
