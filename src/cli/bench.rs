//! `ptr-server bench`: load-test any OpenAI-compatible server and print a latency/throughput
//! table (or the report as JSON). The measuring is [`crate::bench`]'s.

use crate::bench::{self, BenchSpec};

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

impl BenchArgs {
    /// The run these arguments describe (`--json` is how it is printed, not what is measured).
    pub fn spec(self) -> BenchSpec {
        BenchSpec {
            url: self.url,
            model: self.model,
            requests: self.requests,
            concurrency: self.concurrency,
            max_tokens: self.max_tokens,
            stream: self.stream,
            prompt: self.prompt,
            unique_prompts: self.unique_prompts,
            rounds: self.rounds,
            temperature: self.temperature,
            api_key: self.api_key,
        }
    }
}

/// Runs the benchmark and prints the report to stdout, as a table or as JSON.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let json = args.json;
    let spec = args.spec();
    let report = bench::measure(&spec).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table(&spec));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::{Cli, Command};

    #[test]
    fn defaults() {
        let cli = Cli::parse_from(["ptr-server", "bench", "--url", "http://x", "--model", "m"]);
        let Command::Bench(args) = cli.command else {
            panic!("not bench")
        };
        assert!(!args.json);
        let spec = args.spec();
        assert_eq!(
            (
                spec.requests,
                spec.concurrency,
                spec.max_tokens,
                spec.stream
            ),
            (10, 1, 128, false)
        );
        assert_eq!((spec.rounds, spec.temperature), (None, 0.0));
        assert!(spec.prompt.is_none() && !spec.unique_prompts);
    }
}
