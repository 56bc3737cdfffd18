//! The trainer child process: started with its config, its stdout read as JSON lines (each one
//! the trainer's own [`Event`]), its stderr kept in a log beside the job's files, killed on
//! cancel or pause (checkpoints are written atomically, so a kill never leaves a half-written
//! one).

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::train::report::Event;

/// A running trainer.
pub struct Trainer {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// Never written to: the trainer stops when it closes, which the kernel does when this
    /// process dies (`--exit-with-parent`), so a killed server leaves no trainer behind.
    _lifeline: ChildStdin,
}

impl Trainer {
    /// Starts `exe train --config config --device device` with stderr going to `log`.
    pub fn spawn(
        exe: &Path,
        config: &Path,
        log: &Path,
        device: crate::engine::DeviceSpec,
    ) -> std::io::Result<Self> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)?;
        let mut child = Command::new(exe)
            .arg("train")
            .arg("--config")
            .arg(config)
            .arg("--device")
            .arg(device.to_string())
            .arg("--exit-with-parent")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped: this is a bug");
        let lifeline = child.stdin.take().expect("stdin is piped: this is a bug");
        Ok(Self {
            child,
            lines: BufReader::new(stdout).lines(),
            _lifeline: lifeline,
        })
    }

    /// The next report; `None` when the trainer closed its output. Lines that are not events
    /// are skipped (logged).
    pub async fn next(&mut self) -> std::io::Result<Option<Event>> {
        while let Some(line) = self.lines.next_line().await? {
            match serde_json::from_str::<Event>(&line) {
                Ok(event) => return Ok(Some(event)),
                Err(e) => tracing::debug!(%line, error = %e, "trainer output that is not a report"),
            }
        }
        Ok(None)
    }

    /// Waits for the exit; `Err` with the status when it failed.
    pub async fn wait(mut self) -> Result<(), String> {
        let status = self.child.wait().await.map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("the trainer exited with {status}"))
        }
    }

    /// Asks the trainer to stop after its current step and save a checkpoint (SIGTERM); its
    /// last reports still follow on [`Self::next`].
    pub fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on a child this process spawned and has not reaped (`id` is
            // `None` once it is), so the pid cannot name another process.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
    }

    /// Kills the trainer and reaps it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The last lines of the trainer's log, for error messages.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
