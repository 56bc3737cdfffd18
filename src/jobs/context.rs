//! [`JobContext`]: what a running job sees — its row, its event log, its state, and whether it
//! has been asked to stop.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::{broadcast, watch};

use super::JobFailure;
use crate::store::{JobRow, NewEvent, Store, StoreResult};

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
}

impl JobContext {
    /// Appends an event and wakes its followers.
    pub async fn event(&self, event: NewEvent) -> StoreResult<()> {
        let id = self.job.id.clone();
        self.store
            .call(move |s| s.append_event(&id, &event))
            .await?;
        let _ = self.notify.send(self.job.id.clone());
        Ok(())
    }

    /// Merges `patch` into the job's state (counts, output ids, …).
    pub async fn patch(&self, patch: Value) -> StoreResult<()> {
        let id = self.job.id.clone();
        self.store.call(move |s| s.patch_state(&id, &patch)).await?;
        let _ = self.notify.send(self.job.id.clone());
        Ok(())
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
}
