//! The `ptr-server` binary: parse the command line, set up logging, run the subcommand.

use clap::Parser;

/// mimalloc returns freed memory to the OS far better than glibc's malloc under mistral.rs's
/// allocation pattern (large KV caches freed when a recycled engine is dropped).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = ptr_server::cli::Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,mistralrs_core=warn".into()),
        )
        .with_writer(std::io::stderr);
    match cli.log_format {
        ptr_server::cli::LogFormat::Text => logs.init(),
        ptr_server::cli::LogFormat::Json => logs.json().init(),
    }
    #[cfg(unix)]
    if matches!(cli.command, ptr_server::cli::Command::Train(_)) {
        tune_allocator_for_training()?;
    }
    ptr_server::cli::run(cli).await
}

/// A training step allocates and frees weight-sized tensors; with mimalloc's default purge delay
/// each is returned to the OS and faulted in again (SmolLM2, 512 tokens: over a third of a step
/// was kernel time). mimalloc reads `MIMALLOC_PURGE_DELAY` only at process start, so the trainer
/// re-executes itself (same pid: the parent's signals still reach it) with purging off.
#[cfg(unix)]
fn tune_allocator_for_training() -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MIMALLOC_PURGE_DELAY";
    if std::env::var_os(VAR).is_some() {
        return Ok(());
    }
    let err = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args_os().skip(1))
        .env(VAR, "-1")
        .exec();
    Err(anyhow::anyhow!("cannot re-execute the trainer: {err}"))
}
