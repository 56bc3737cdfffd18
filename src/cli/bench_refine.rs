//! `ptr-server bench-refine`: what refinement costs on running ptr-servers (time per round,
//! prefix reuse, loop overhead). The measuring is [`crate::bench`]'s.

use crate::bench::{self, BenchRefineSpec};

/// Options of `ptr-server bench-refine`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchRefineArgs {
    /// ptr-server to measure (prefix cache on, the default)
    #[arg(long)]
    pub url: String,
    /// ptr-server started with `--prefix-cache 0`, for cold prefills and the loop overhead
    #[arg(long)]
    pub cold_url: String,
    #[arg(long)]
    pub model: String,
    /// Rounds of the refinement
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// `max_tokens` of each round
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// The question
    #[arg(long, default_value = "Explain why the sky is blue, step by step.")]
    pub prompt: String,
    /// The refinement instruction (must match the server's default unless set there too)
    #[arg(long, default_value = crate::refine::DEFAULT_INSTRUCTION)]
    pub instruction: String,
}

/// Runs the three measurements and prints them.
pub async fn run(args: BenchRefineArgs) -> anyhow::Result<()> {
    bench::run_refine(BenchRefineSpec {
        url: args.url,
        cold_url: args.cold_url,
        model: args.model,
        rounds: args.rounds,
        max_tokens: args.max_tokens,
        prompt: args.prompt,
        instruction: args.instruction,
    })
    .await
}
