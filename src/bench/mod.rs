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
//! - `sse` parses the event stream incrementally,
//! - `client` sends and times one request,
//! - `response` interprets response payloads and times stream chunks,
//! - `stats` turns timings into percentiles,
//! - `report` aggregates a run and prints it.

mod client;
mod refine;
mod report;
pub(crate) mod response;
mod sse;
mod stats;

#[cfg(test)]
mod tests;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use client::Target;
pub use refine::{run as run_refine, BenchRefineArgs};
pub use report::BenchReport;
use response::RequestSample;
pub use stats::Summary;

/// The prompt used when `--prompt` is not given: it asks for a long answer so
/// that every request runs to `--max-tokens`.
const DEFAULT_PROMPT: &str = "Write a long, detailed essay on the history of the printing press: \
its inventors, how the technology spread across Europe, and its effects on science, religion \
and politics. Use many paragraphs and do not stop early.";

/// Options of `ptr-server bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080 (the path /v1/chat/completions is appended)
    #[arg(long)]
    pub url: String,
    /// Model name to put in each request
    #[arg(long)]
    pub model: String,
    /// Total number of requests to send
    #[arg(long, default_value_t = 10)]
    pub requests: usize,
    /// Number of requests in flight at once
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// `max_tokens` of each request
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Stream responses (needed for TTFT and inter-token latency)
    #[arg(long)]
    pub stream: bool,
    /// Prompt text; default: a fixed prompt asking for a long answer
    #[arg(long)]
    pub prompt: Option<String>,
    /// Open every request's prompt with its own prefix ("Request 3 of 10 (run 5f0c2a). "), the
    /// run tag new on each run, so that no server can reuse a cached prompt: TTFT then measures
    /// the prefill of a fresh prompt (only the chat template's head, before the user's words, is
    /// shared)
    #[arg(long)]
    pub unique_prompts: bool,
    /// Refinement rounds to request through the `refinement` extension (omit for plain requests)
    #[arg(long)]
    pub rounds: Option<u32>,
    /// Sampling temperature (default 0 = greedy)
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Bearer API key, if the server needs one
    #[arg(long, env = "PTR_BENCH_API_KEY")]
    pub api_key: Option<String>,
    /// Print the report as JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// Runs the benchmark and prints the report to stdout, as a table or as JSON.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let report = measure(&args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table(&args));
    }
    Ok(())
}

/// Runs the benchmark and returns the report. Failed requests are counted in
/// the report; only invalid arguments or an unusable HTTP client are errors.
pub async fn measure(args: &BenchArgs) -> anyhow::Result<BenchReport> {
    if args.concurrency == 0 {
        bail!("`--concurrency` must be at least 1");
    }
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(args.concurrency)
        .build()
        .context("building the HTTP client")?;
    let target = Arc::new(Target {
        client,
        endpoint: format!("{}/v1/chat/completions", args.url.trim_end_matches('/')),
        api_key: args.api_key.clone(),
        stream: args.stream,
    });
    let requests = Arc::new(Requests {
        args: args.clone(),
        run: run_tag(),
    });
    let next = Arc::new(AtomicUsize::new(0));

    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.min(args.requests))
        .map(|_| tokio::spawn(worker(target.clone(), requests.clone(), next.clone())))
        .collect();
    let mut outcomes = Vec::with_capacity(args.requests);
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
    Ok(BenchReport::new(&outcomes, args.concurrency, wall_seconds))
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
        if index >= requests.args.requests {
            return outcomes;
        }
        // Built before `send` starts its clock.
        let body = requests.body(index);
        outcomes.push((index, target.send(&body).await));
    }
}

/// What the requests of one run are made from.
struct Requests {
    args: BenchArgs,
    /// Tells this run's unique prompts from those of earlier runs on the same server.
    run: String,
}

impl Requests {
    /// The body of request number `index` (from 0).
    fn body(&self, index: usize) -> Value {
        let prompt = self.args.prompt.as_deref().unwrap_or(DEFAULT_PROMPT);
        if self.args.unique_prompts {
            let prompt = unique_prompt(prompt, index, self.args.requests, &self.run);
            request_body(&self.args, &prompt)
        } else {
            request_body(&self.args, prompt)
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

/// The OpenAI chat-completions body of a request with this prompt.
fn request_body(args: &BenchArgs, prompt: &str) -> Value {
    let mut body = json!({
        "model": args.model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "stream": args.stream,
    });
    if args.stream {
        body["stream_options"] = json!({"include_usage": true});
    }
    if let Some(rounds) = args.rounds {
        body["refinement"] = json!({"rounds": rounds});
    }
    body
}
