//! The command line: every subcommand's arguments (clap), one file each, and what each runs.
//! This is the top of the program: it turns arguments into the settings and specs of the modules
//! below ([`crate::config`], [`crate::bench`], [`crate::eval`], [`crate::jobs::dataset`],
//! [`crate::train`]) and calls them; nothing below imports from here.
//!
//! `openapi` has no arguments and one line of work, so it has no file of its own.

pub mod bench;
pub mod bench_refine;
pub mod build_dataset;
pub mod eval;
pub mod fetch_model;
mod follow;
pub mod ptr_model;
pub mod serve;
pub mod source;
pub mod train;

use clap::{Parser, Subcommand};

/// ptr-server: an OpenAI-compatible server for Progressive Thought Refinement on mistral.rs.
#[derive(Parser)]
#[command(name = "ptr-server", version, about)]
pub struct Cli {
    /// Log lines on stderr: `text` for people, `json` (one object a line) for log collectors.
    #[arg(long, global = true, env = "PTR_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The subcommands of the one binary.
#[derive(Subcommand)]
pub enum Command {
    /// Serve the models over HTTP.
    Serve(serve::ServeArgs),
    /// Download models and sentence embedders named in models.toml into the model cache.
    FetchModel(fetch_model::FetchArgs),
    /// Print the OpenAPI spec.
    Openapi,
    /// Load-test any OpenAI-compatible server and print a latency/throughput table.
    Bench(bench::BenchArgs),
    /// Measure refinement on running ptr-servers: time per round, prefix reuse, loop overhead.
    BenchRefine(bench_refine::BenchRefineArgs),
    /// Build a PTR refinement dataset (weak thoughts, strong answers, consistency filter).
    BuildDataset(build_dataset::BuildDatasetArgs),
    /// Score refinement round by round on a benchmark (GSM8K, ARC, …) against any endpoint.
    Eval(Box<eval::EvalArgs>),
    /// Fine-tune a GGUF model with PTR's thought-masked loss (LoRA); JSON lines on stdout.
    Train(train::TrainArgs),
    /// Make a PTR model: records → fine-tuning (and ablations) → evaluation against the base
    /// model → report, resumable (the pipeline job, run in-process).
    PtrModel(Box<ptr_model::PtrModelArgs>),
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args).await,
        Command::FetchModel(args) => fetch_model::run(args).await,
        Command::Openapi => {
            print!("{}", crate::http::docs::spec_json());
            Ok(())
        }
        Command::Bench(args) => bench::run(args).await,
        Command::BenchRefine(args) => bench_refine::run(args).await,
        Command::BuildDataset(args) => build_dataset::run(args).await,
        Command::Eval(args) => eval::run(*args).await,
        Command::Train(args) => train::run(args).await,
        Command::PtrModel(args) => ptr_model::run(*args).await,
    }
}
