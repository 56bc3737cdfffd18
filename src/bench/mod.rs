//! `ptr-server bench`: a load generator for any OpenAI-compatible server.
//!
//! It sends `--requests` identical chat completions from `--concurrency` workers
//! that share one connection pool and pull request numbers from a shared counter,
//! then reports TTFT, inter-token latency, end-to-end latency and output-token
//! throughput. The request body is plain OpenAI (plus the `refinement` extension
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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        body: request_body(args),
        stream: args.stream,
    });
    let next = Arc::new(AtomicUsize::new(0));

    let start = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.min(args.requests))
        .map(|_| tokio::spawn(worker(target.clone(), next.clone(), args.requests)))
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

/// Sends requests until `total` have been claimed; returns `(request number, outcome)`.
async fn worker(
    target: Arc<Target>,
    next: Arc<AtomicUsize>,
    total: usize,
) -> Vec<(usize, anyhow::Result<RequestSample>)> {
    let mut outcomes = Vec::new();
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= total {
            return outcomes;
        }
        outcomes.push((index, target.send().await));
    }
}

/// The OpenAI chat-completions body sent by every request.
fn request_body(args: &BenchArgs) -> Value {
    let prompt = args.prompt.as_deref().unwrap_or(DEFAULT_PROMPT);
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
