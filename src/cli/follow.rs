//! Following a job from the shell, for the commands that run one in-process (`build-dataset`,
//! `ptr-model`): the job an earlier run of the same command left to resume, and a progress bar
//! redrawn from the job's row whenever the job manager reports a change (and at least every half
//! second), until the job ends.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use serde_json::json;

use crate::jobs::JobManager;
use crate::store::{JobRow, Store};

/// The job of `kind` that an earlier run of the same command made (its `metadata.cli_key` is
/// `key`), to resume; `None` on a first run.
pub fn earlier_job(store: &Store, kind: &str, key: &str) -> anyhow::Result<Option<JobRow>> {
    let job = store
        .list_jobs(&[kind], &[], None, 1000)?
        .into_iter()
        .find(|j| j.spec["metadata"]["cli_key"] == json!(key));
    if let Some(job) = &job {
        eprintln!("resuming {} ({})", job.id, job.status.as_str());
    }
    Ok(job)
}

/// Draws `draw(job, bar)` on a bar of `template` (indicatif's syntax) until job `id` ends, and
/// returns its last row.
pub async fn follow(
    jobs: &JobManager,
    id: &str,
    template: &str,
    mut draw: impl FnMut(&JobRow, &ProgressBar) -> anyhow::Result<()>,
) -> anyhow::Result<JobRow> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid progress template: this is a bug")
            .progress_chars("=> "),
    );
    let mut changes = jobs.subscribe();
    loop {
        let job = jobs.job(id).await?;
        if job.status.is_terminal() {
            bar.finish();
            return Ok(job);
        }
        draw(&job, &bar)?;
        let _ = tokio::time::timeout(Duration::from_millis(500), changes.recv()).await;
    }
}

/// Prints `line` above the bar (or alone when the bar is hidden, e.g. not a terminal).
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}
