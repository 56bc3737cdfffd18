//! [`JobManager`]: the scheduler. It runs at most `max_running` jobs at once, oldest queued
//! first, each on its own task; it stops jobs on cancel or pause, and on start-up it settles the
//! jobs a crash left `running`. On shutdown it pauses every running job (a fine-tune saves a
//! checkpoint) and queues it again, so the next start resumes it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::{broadcast, watch, Notify, Semaphore};

use super::{JobContext, JobFailure, JobKind, JobRunner, Stop};
use crate::jobs::Failure;
use crate::store::{JobRow, JobStatus, NewEvent, Store, StoreResult};

/// Queues and runs jobs of every kind.
pub struct JobManager {
    store: Arc<Store>,
    runners: HashMap<&'static str, Arc<dyn JobRunner>>,
    slots: Arc<Semaphore>,
    running: Mutex<HashMap<String, watch::Sender<Option<Stop>>>>,
    notify: broadcast::Sender<String>,
    wake: Notify,
    /// Set by [`Self::shutdown`]: no job starts, and a paused one is queued again.
    closing: AtomicBool,
}

/// Statuses a job may be cancelled from without stopping a run.
const WAITING: [JobStatus; 3] = [
    JobStatus::ValidatingFiles,
    JobStatus::Queued,
    JobStatus::Paused,
];

impl JobManager {
    /// A manager over `store` running at most `max_running` jobs at once.
    pub fn new(store: Arc<Store>, max_running: usize) -> Self {
        Self {
            store,
            runners: HashMap::new(),
            slots: Arc::new(Semaphore::new(max_running.max(1))),
            running: Mutex::new(HashMap::new()),
            notify: broadcast::channel(1024).0,
            wake: Notify::new(),
            closing: AtomicBool::new(false),
        }
    }

    /// Registers the runner of one kind of job.
    pub fn register(&mut self, kind: JobKind, runner: Arc<dyn JobRunner>) {
        self.runners.insert(kind.as_str(), runner);
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Job ids whose events or state changed, as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.notify.subscribe()
    }

    /// Settles what a crash left behind, then schedules queued jobs until the process ends.
    pub fn start(self: &Arc<Self>) -> StoreResult<()> {
        for job in self.store.jobs_in(&[JobStatus::Running])? {
            let resumable = self
                .runners
                .get(job.kind.as_str())
                .is_some_and(|r| r.resumable());
            if resumable {
                let event = NewEvent::warn(
                    "The server restarted while the job ran; it is queued to resume",
                );
                self.store.transition(
                    &job.id,
                    &[JobStatus::Running],
                    JobStatus::Queued,
                    None,
                    Some(&event),
                )?;
            } else {
                let err =
                    Failure::ServerRestarted.error_json("The server restarted while the job ran");
                let event =
                    NewEvent::error("The server restarted while the job ran; it cannot resume");
                self.store.transition(
                    &job.id,
                    &[JobStatus::Running],
                    JobStatus::Failed,
                    Some(&err),
                    Some(&event),
                )?;
            }
        }
        let me = self.clone();
        tokio::spawn(async move { me.schedule().await });
        Ok(())
    }

    /// Creates a job (or returns the one its idempotency key already made) and queues it.
    pub async fn create(
        &self,
        kind: JobKind,
        spec: Value,
        idempotency_key: Option<String>,
    ) -> StoreResult<JobRow> {
        let (job, created) = self
            .store
            .call(move |s| {
                s.insert_job(
                    kind.id_prefix(),
                    kind.as_str(),
                    JobStatus::Queued,
                    &spec,
                    idempotency_key.as_deref(),
                )
            })
            .await?;
        if created {
            let id = job.id.clone();
            self.store
                .call(move |s| s.append_event(&id, &NewEvent::info("Job created and queued")))
                .await?;
            self.wake.notify_one();
        }
        Ok(job)
    }

    /// Cancels a job: at once if it waits, promptly if it runs. Ended jobs are left as they are.
    pub async fn cancel(&self, id: &str) -> StoreResult<JobRow> {
        self.stop(id, Stop::Cancel, &WAITING, JobStatus::Cancelled)
            .await
    }

    /// Pauses a queued or running job; a running one stops after saving what it has.
    pub async fn pause(&self, id: &str) -> StoreResult<JobRow> {
        self.stop(id, Stop::Pause, &[JobStatus::Queued], JobStatus::Paused)
            .await
    }

    /// Queues a paused job again.
    pub async fn resume(&self, id: &str) -> StoreResult<JobRow> {
        let job_id = id.to_string();
        let event = NewEvent::info("Job resumed and queued");
        let moved = self
            .store
            .call(move |s| {
                s.transition(
                    &job_id,
                    &[JobStatus::Paused],
                    JobStatus::Queued,
                    None,
                    Some(&event),
                )
            })
            .await?;
        if moved {
            let _ = self.notify.send(id.to_string());
            self.wake.notify_one();
        }
        self.job(id).await
    }

    pub async fn job(&self, id: &str) -> StoreResult<JobRow> {
        let id = id.to_string();
        self.store.call(move |s| s.job(&id)).await
    }

    async fn stop(
        &self,
        id: &str,
        stop: Stop,
        from: &[JobStatus],
        to: JobStatus,
    ) -> StoreResult<JobRow> {
        let job_id = id.to_string();
        let from = from.to_vec();
        let event = NewEvent::info(format!("Job {}", to.as_str()));
        let moved = self
            .store
            .call(move |s| s.transition(&job_id, &from, to, None, Some(&event)))
            .await?;
        if moved {
            let _ = self.notify.send(id.to_string());
        } else if let Some(tx) = self.running.lock().expect("jobs lock poisoned").get(id) {
            let _ = tx.send(Some(stop));
        }
        self.job(id).await
    }

    /// Stops every running job for a shutdown, waiting at most `within`: each is paused (a
    /// fine-tune ends its step and saves a checkpoint) and queued again, so the next start
    /// resumes it. No job starts after this.
    pub async fn shutdown(&self, within: Duration) {
        self.closing.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + within;
        for tx in self.running.lock().expect("jobs lock poisoned").values() {
            let _ = tx.send(Some(Stop::Pause));
        }
        while !self.running.lock().expect("jobs lock poisoned").is_empty() {
            if Instant::now() >= deadline {
                tracing::warn!("jobs still running at the end of the grace period");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn schedule(self: Arc<Self>) {
        loop {
            self.start_queued().await;
            let _ = tokio::time::timeout(Duration::from_secs(2), self.wake.notified()).await;
        }
    }

    /// Starts queued jobs, oldest first, while run slots are free; a job that only supervises
    /// others ([`JobRunner::supervises`]) starts without a slot.
    async fn start_queued(self: &Arc<Self>) {
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        let queued = match self.store.call(|s| s.jobs_in(&[JobStatus::Queued])).await {
            Ok(jobs) => jobs,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the job queue");
                return;
            }
        };
        for job in queued {
            let supervises = self
                .runners
                .get(job.kind.as_str())
                .is_some_and(|r| r.supervises());
            let permit = if supervises {
                None
            } else {
                match self.slots.clone().try_acquire_owned() {
                    Ok(permit) => Some(permit),
                    Err(_) => continue,
                }
            };
            let (tx, rx) = watch::channel(None);
            {
                let mut running = self.running.lock().expect("jobs lock poisoned");
                if running.contains_key(&job.id) {
                    continue;
                }
                running.insert(job.id.clone(), tx);
            }
            let me = self.clone();
            tokio::spawn(async move {
                me.run(job, rx).await;
                drop(permit);
                me.wake.notify_one();
            });
        }
    }

    /// Runs `job` (already entered in `running`) to its end.
    async fn run(self: &Arc<Self>, job: JobRow, rx: watch::Receiver<Option<Stop>>) {
        let id = job.id.clone();
        let Some(runner) = self.runners.get(job.kind.as_str()).cloned() else {
            self.running.lock().expect("jobs lock poisoned").remove(&id);
            let err = Failure::UnknownKind
                .error_json(&format!("no runner for jobs of kind `{}`", job.kind));
            let _ = self
                .store
                .call(move |s| {
                    s.transition(
                        &id,
                        &[JobStatus::Queued],
                        JobStatus::Failed,
                        Some(&err),
                        None,
                    )
                })
                .await;
            return;
        };
        let job_id = id.clone();
        let event = NewEvent::info("Job started");
        let started = self
            .store
            .call(move |s| {
                s.transition(
                    &job_id,
                    &[JobStatus::Queued],
                    JobStatus::Running,
                    None,
                    Some(&event),
                )
            })
            .await;
        if !matches!(started, Ok(true)) {
            self.running.lock().expect("jobs lock poisoned").remove(&id);
            return;
        }
        let _ = self.notify.send(id.clone());
        let ctx = JobContext {
            job,
            store: self.store.clone(),
            notify: self.notify.clone(),
            stop: rx,
            jobs: Arc::downgrade(self),
        };
        let outcome = tokio::spawn(async move { runner.run(ctx).await })
            .await
            .unwrap_or_else(|e| {
                tracing::error!(job = %id, error = %e, "job runner panicked");
                Err(Failure::Internal.with("the job failed unexpectedly; see the server log"))
            });
        let (to, message) = match &outcome {
            Ok(()) => (
                JobStatus::Succeeded,
                "The job has successfully completed".to_string(),
            ),
            Err(JobFailure::Cancelled) => (JobStatus::Cancelled, "Job cancelled".to_string()),
            Err(JobFailure::Paused) if self.closing.load(Ordering::SeqCst) => (
                JobStatus::Queued,
                "The server is shutting down: the job stopped and is queued to resume".to_string(),
            ),
            Err(JobFailure::Paused) => (JobStatus::Paused, "Job paused".to_string()),
            Err(JobFailure::Failed { message, .. }) => {
                (JobStatus::Failed, format!("Job failed: {message}"))
            }
        };
        let error = outcome.as_ref().err().and_then(JobFailure::error_json);
        let event = if to == JobStatus::Failed {
            NewEvent::error(message)
        } else {
            NewEvent::info(message)
        };
        let job_id = id.clone();
        let moved = self
            .store
            .call(move |s| {
                s.transition(
                    &job_id,
                    &[JobStatus::Running],
                    to,
                    error.as_ref(),
                    Some(&event),
                )
            })
            .await;
        if let Err(e) = &moved {
            tracing::error!(job = %id, error = %e, "cannot record the job's end");
        }
        self.running.lock().expect("jobs lock poisoned").remove(&id);
        let _ = self.notify.send(id);
    }
}
