//! [`JobContext`]: what a running job sees — its row, its event log, its state, whether it has
//! been asked to stop — and the jobs it runs as its stages (a pipeline's).

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::{JobFailure, JobKind, JobManager, JobState};
use crate::jobs::Failure;
use crate::store::{FileRow, FileStatus, JobRow, JobStatus, NewEvent, NewFile, Store, StoreResult};

/// A request to stop a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Cancel,
    Pause,
}

/// Handed to a [`super::JobRunner`] for one run.
#[derive(Clone)]
pub struct JobContext {
    /// The job as it was when this run began.
    pub job: JobRow,
    pub store: Arc<Store>,
    pub(super) notify: broadcast::Sender<String>,
    pub(super) stop: watch::Receiver<Option<Stop>>,
    /// The manager running this job, for the jobs it runs as stages.
    pub(super) jobs: Weak<JobManager>,
}

impl JobContext {
    /// The job's request body, as its kind's typed spec (checked when the job was created).
    pub fn spec<T: serde::de::DeserializeOwned>(&self) -> Result<T, super::JobFailure> {
        serde_json::from_value(self.job.spec.clone())
            .map_err(|e| super::Failure::InvalidSpec.with(e.to_string()))
    }

    /// Appends an event and wakes its followers.
    pub async fn event(&self, event: NewEvent) -> StoreResult<()> {
        let id = self.job.id.clone();
        self.store
            .call(move |s| s.append_event(&id, &event))
            .await?;
        let _ = self.notify.send(self.job.id.clone());
        Ok(())
    }

    /// Merges the fields `patch` sets into the job's state (its kind's [`JobState`]).
    pub async fn update<S: JobState>(&self, patch: &S) -> StoreResult<()> {
        let patch = serde_json::to_value(patch).expect("job states serialise: this is a bug");
        let id = self.job.id.clone();
        self.store.call(move |s| s.patch_state(&id, &patch)).await?;
        let _ = self.notify.send(self.job.id.clone());
        Ok(())
    }

    /// Stores `content` as a processed file of `purpose` (a job's result), named `filename`.
    pub async fn store_file(
        &self,
        filename: String,
        purpose: &'static str,
        content: Vec<u8>,
    ) -> StoreResult<FileRow> {
        self.store
            .call(move |s| {
                s.insert_file(NewFile {
                    filename: &filename,
                    purpose,
                    content: &content,
                    status: FileStatus::Processed,
                    status_details: None,
                })
            })
            .await
    }

    /// The stop asked for, if any.
    pub fn stop_requested(&self) -> Option<Stop> {
        *self.stop.borrow()
    }

    /// `Err` (cancelled or paused) once a stop was asked for: call it between units of work.
    pub fn check(&self) -> Result<(), JobFailure> {
        match self.stop_requested() {
            None => Ok(()),
            Some(Stop::Cancel) => Err(JobFailure::Cancelled),
            Some(Stop::Pause) => Err(JobFailure::Paused),
        }
    }

    /// Resolves when a stop is asked for.
    pub async fn stopped(&self) -> Stop {
        let mut rx = self.stop.clone();
        loop {
            if let Some(s) = *rx.borrow_and_update() {
                return s;
            }
            if rx.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }

    fn manager(&self) -> Result<Arc<JobManager>, JobFailure> {
        self.jobs
            .upgrade()
            .ok_or_else(|| Failure::ShuttingDown.with("the server is shutting down"))
    }

    /// Creates job `stage` of this one, or returns the one an earlier run of this job created
    /// (the idempotency key is this job's id and `stage`): a resumed pipeline finds its stages
    /// and repeats none that finished.
    pub async fn child(
        &self,
        kind: JobKind,
        stage: &str,
        spec: serde_json::Value,
    ) -> Result<JobRow, JobFailure> {
        let key = format!("{}/{stage}", self.job.id);
        Ok(self.manager()?.create(kind, spec, Some(key)).await?)
    }

    /// Waits until job `id` (a stage of this one) ends, and returns it. A stop asked of this
    /// job is passed on to the stage (cancel cancels it, pause pauses it); a stage found paused
    /// while this job runs is resumed.
    pub async fn wait_child(&self, id: &str) -> Result<JobRow, JobFailure> {
        let manager = self.manager()?;
        let mut changes = manager.subscribe();
        loop {
            let job = manager.job(id).await?;
            if job.status.is_terminal() {
                return Ok(job);
            }
            if job.status == JobStatus::Paused && self.stop_requested().is_none() {
                manager.resume(id).await?;
                continue;
            }
            tokio::select! {
                stop = self.stopped() => {
                    return Err(match stop {
                        Stop::Cancel => {
                            manager.cancel(id).await?;
                            JobFailure::Cancelled
                        }
                        Stop::Pause => {
                            manager.pause(id).await?;
                            JobFailure::Paused
                        }
                    });
                }
                _ = tokio::time::timeout(Duration::from_secs(2), changes.recv()) => {}
            }
        }
    }
}
