//! `ptr-server bench`: a load generator for any OpenAI-compatible server.
//!
//! It sends `--requests` identical chat completions from `--concurrency` workers
//! that share one connection pool and pull request numbers from a shared counter,
//! then reports TTFT, inter-token latency, decode rate, end-to-end latency and
//! output-token throughput. With `--unique-prompts` every prompt opens with its own
//! short prefix, so that no server can answer from a cached prompt (the TTFT of a
//! fresh prompt). The request body is plain OpenAI (plus the `refinement` extension
//! only when `--rounds` is given), so the same command measures this server,
//! llama.cpp's server or vLLM, and the tables can be set side by side.
//!
//! - `target` sends and times one request (through [`crate::client`]),
//! - `response` times stream chunks,
//! - `stats` turns timings into percentiles,
//! - `report` aggregates a run and prints it.

mod refine;
mod report;
mod response;
mod stats;
mod target;

#[cfg(test)]
mod tests;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

use crate::client::{Client, ClientOptions, Endpoint};
use crate::engine::{ChatMessage, Role};
use crate::wire::{ChatCompletionRequest, RefinementParams, StreamOptions};
pub use refine::{run as run_refine, BenchRefineSpec};
pub use report::BenchReport;
use response::RequestSample;
pub use stats::Summary;
use target::Target;

/// The prompt used when `--prompt` is not given: it asks for a long answer so
/// that every request runs to `--max-tokens`.
const DEFAULT_PROMPT: &str = "Write a long, detailed essay on the history of the printing press: \
its inventors, how the technology spread across Europe, and its effects on science, religion \
and politics. Use many paragraphs and do not stop early.";

/// What to measure and how: one benchmark run.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// Base URL of the server, e.g. http://127.0.0.1:8080 (the path /v1/chat/completions is appended)
    pub url: String,
    /// Model name to put in each request
    pub model: String,
    /// Total number of requests to send
    pub requests: usize,
    /// Number of requests in flight at once
    pub concurrency: usize,
    /// `max_tokens` of each request
    pub max_tokens: u32,
    /// Stream responses (needed for TTFT and inter-token latency)
    pub stream: bool,
    /// Prompt text; default: a fixed prompt asking for a long answer
    pub prompt: Option<String>,
    /// Open every request's prompt with its own prefix ("Request 3 of 10 (run 5f0c2a). "), the
    /// run tag new on each run, so that no server can reuse a cached prompt: TTFT then measures
    /// the prefill of a fresh prompt (only the chat template's head, before the user's words, is
    /// shared)
    pub unique_prompts: bool,
    /// Refinement rounds to request through the `refinement` extension (omit for plain requests)
    pub rounds: Option<u32>,
    /// Sampling temperature (default 0 = greedy)
    pub temperature: f64,
    /// Bearer API key, if the server needs one
    pub api_key: Option<String>,
}

/// Runs the benchmark and returns the report. Failed requests are counted in
/// the report; only invalid arguments or an unusable HTTP client are errors.
pub async fn measure(spec: &BenchSpec) -> anyhow::Result<BenchReport> {
    if spec.concurrency == 0 {
        bail!("`--concurrency` must be at least 1");
    }
    let client = Client::new(ClientOptions {
        connect_timeout: Some(Duration::from_secs(10)),
        idle_per_host: Some(spec.concurrency),
        ..ClientOptions::default()
    })?;
    let target = Arc::new(Target {
        client,
        endpoint: Endpoint::server(&spec.url, spec.api_key.clone()),
        stream: spec.stream,
    });
    let requests = Arc::new(Requests {
        spec: spec.clone(),
        run: run_tag(),
    });
    let next = Arc::new(AtomicUsize::new(0));

    let start = Instant::now();
    let workers: Vec<_> = (0..spec.concurrency.min(spec.requests))
        .map(|_| tokio::spawn(worker(target.clone(), requests.clone(), next.clone())))
        .collect();
    let mut outcomes = Vec::with_capacity(spec.requests);
    for worker in workers {
        outcomes.extend(
            worker
                .await
                .context("a benchmark worker panicked; this is a bug")?,
        );
    }
    let wall_seconds = start.elapsed().as_secs_f64();

    outcomes.sort_by_key(|(index, _)| *index);
    let outcomes: Vec<_> = outcomes.into_iter().map(|(_, outcome)| outcome).collect();
    Ok(BenchReport::new(&outcomes, spec.concurrency, wall_seconds))
}

/// Sends requests until all have been claimed; returns `(request number, outcome)`.
async fn worker(
    target: Arc<Target>,
    requests: Arc<Requests>,
    next: Arc<AtomicUsize>,
) -> Vec<(usize, anyhow::Result<RequestSample>)> {
    let mut outcomes = Vec::new();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= requests.spec.requests {
            return outcomes;
        }
        // Built before `send` starts its clock.
        let body = requests.body(index);
        outcomes.push((index, target.send(&body).await));
    }
}

/// What the requests of one run are made from.
struct Requests {
    spec: BenchSpec,
    /// Tells this run's unique prompts from those of earlier runs on the same server.
    run: String,
}

impl Requests {
    /// The body of request number `index` (from 0).
    fn body(&self, index: usize) -> ChatCompletionRequest {
        let prompt = self.spec.prompt.as_deref().unwrap_or(DEFAULT_PROMPT);
        if self.spec.unique_prompts {
            let prompt = unique_prompt(prompt, index, self.spec.requests, &self.run);
            request_body(&self.spec, &prompt)
        } else {
            request_body(&self.spec, prompt)
        }
    }
}

/// `prompt` behind a prefix of its own: its number in the run, and the run's random tag.
fn unique_prompt(prompt: &str, index: usize, total: usize, run: &str) -> String {
    format!("Request {} of {total} (run {run}). {prompt}", index + 1)
}

/// Six random hex digits: a new tag for every run.
fn run_tag() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // RandomState's keys are random per process; the clock separates runs within one.
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(nanos);
    format!("{:06x}", hasher.finish() & 0xff_ffff)
}

/// The OpenAI chat-completions body of a request with this prompt: plain OpenAI, plus the
/// `refinement` extension only when rounds are asked for.
fn request_body(spec: &BenchSpec, prompt: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        max_tokens: Some(spec.max_tokens.into()),
        temperature: Some(spec.temperature),
        stream: Some(spec.stream),
        stream_options: spec.stream.then_some(StreamOptions {
            include_usage: Some(true),
        }),
        refinement: spec.rounds.map(|rounds| RefinementParams {
            rounds: Some(rounds.into()),
            ..RefinementParams::default()
        }),
        ..crate::client::request(&spec.model, &[ChatMessage::new(Role::User, prompt)])
    }
}
