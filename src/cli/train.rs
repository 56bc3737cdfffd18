//! `ptr-server train`: the trainer as a process. The fine-tuning job starts it as a child; it can
//! also be run alone. Owns what belongs to the process, not the training: SIGTERM asks for a stop
//! after the current step, a closed standard input (the parent gone) ends it, progress on stderr.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::engine::DeviceSpec;
use crate::train::{self, config::TrainConfig, report::Event, report::Reporter, Stopped};

/// `ptr-server train` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// The JSON config file (base_model_path, training_file, output_dir, hyperparameters).
    #[arg(long)]
    pub config: PathBuf,
    /// Show a progress bar on stderr even when stderr is not a terminal.
    #[arg(long)]
    pub progress: bool,
    /// Where the model trains: `cpu`, `cuda` (a CUDA build) or `metal`. Off the CPU the frozen
    /// projections use candle's own matmul and backward.
    #[arg(long, env = "PTR_DEVICE", default_value = "cpu")]
    pub device: DeviceSpec,
    /// Stop at once when standard input closes: the fine-tuning job gives the trainer a pipe it
    /// never writes to, which the kernel closes when the server dies, even by SIGKILL. (The last
    /// checkpoint stays; the restarted server resumes from it.)
    #[arg(long, hide = true)]
    pub exit_with_parent: bool,
}

/// Exits the process once standard input reaches its end (see [`TrainArgs::exit_with_parent`]).
fn exit_when_stdin_closes() {
    std::thread::spawn(|| {
        use std::io::Read;
        let mut buf = [0u8; 256];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        eprintln!("the server that started this trainer is gone; stopping");
        std::process::exit(1);
    });
}

/// The subcommand: runs [`train::run`] on a blocking thread, SIGTERM asking it to stop after a step.
/// Failures are also reported as an `error` event.
pub async fn run(args: TrainArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    static STOP: AtomicBool = AtomicBool::new(false);
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::spawn(async move {
            term.recv().await;
            STOP.store(true, Ordering::SeqCst);
        });
    }
    if args.exit_with_parent {
        exit_when_stdin_closes();
    }
    let progress = args.progress || std::io::stderr().is_terminal();
    let reporter = Reporter::new(progress);
    tokio::task::spawn_blocking(move || {
        let result = args
            .device
            .to_candle()
            .map_err(|e| anyhow::anyhow!("--device {}: {e}", args.device))
            .and_then(|device| {
                let cfg = TrainConfig::load(&args.config)?;
                train::run(&cfg, &reporter, &STOP, &device)
            });
        if let Err(e) = &result {
            if e.downcast_ref::<Stopped>().is_none() {
                reporter.emit(&Event::Error {
                    message: format!("{e:#}"),
                });
            }
        }
        result
    })
    .await?
}
