//! The `ptr-server` binary: parse the command line, set up logging, run the subcommand.

use clap::Parser;

/// mimalloc returns freed memory to the OS far better than glibc's malloc under mistral.rs's
/// allocation pattern (large KV caches freed when a recycled engine is dropped).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,mistralrs_core=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    ptr_server::commands::run(ptr_server::config::Cli::parse()).await
}
