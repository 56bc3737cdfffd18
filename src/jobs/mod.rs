//! Long-running work as resources: the [`JobManager`] queues, runs, cancels and recovers jobs
//! kept in the [`crate::store::Store`]; each kind of job is a [`JobRunner`]. A job's life:
//! `queued → running → succeeded | failed | cancelled` (and `paused`), every step an event in its
//! append-only log. After a crash, a `running` job is re-queued when its runner can resume
//! (it skips what it already wrote) and is otherwise failed with `server_restarted`; no job is
//! ever left `running`; a failed job's `error.code` is one of [`Failure`]'s. A pipeline job runs other jobs as its stages ([`JobContext::child`]).

mod context;
pub mod dataset;
pub mod eval;
mod failure;
pub mod finetune;
mod manager;
pub mod pipeline;
mod spec_error;
mod state;

pub use context::{JobContext, Stop};
pub use failure::Failure;
pub use manager::JobManager;
pub use spec_error::SpecError;
pub use state::JobState;

use serde_json::{json, Value};

/// The kinds of job, with their id prefix and OpenAI-style object name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    Dataset,
    FineTune,
    Eval,
    Pipeline,
}

impl JobKind {
    pub const ALL: [JobKind; 4] = [Self::Dataset, Self::FineTune, Self::Eval, Self::Pipeline];

    /// The kind's name in the store and in `?kinds=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dataset => "dataset",
            Self::FineTune => "fine_tune",
            Self::Eval => "eval",
            Self::Pipeline => "pipeline",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    pub fn id_prefix(self) -> &'static str {
        match self {
            Self::Dataset => "dsjob",
            Self::FineTune => "ftjob",
            Self::Eval => "evaljob",
            Self::Pipeline => "pipejob",
        }
    }

    /// The `object` of the job's JSON view.
    pub fn object(self) -> &'static str {
        match self {
            Self::Dataset => "ptr.dataset.job",
            Self::FineTune => "fine_tuning.job",
            Self::Eval => "ptr.eval.job",
            Self::Pipeline => "ptr.pipeline.job",
        }
    }
}

/// How a run ended other than by succeeding.
#[derive(Debug, Clone, PartialEq)]
pub enum JobFailure {
    /// Stopped on request; what was written is kept.
    Cancelled,
    /// Paused on request; resumable.
    Paused,
    /// Failed: an error the client sees in the job's `error`.
    Failed {
        code: String,
        message: String,
        param: Option<String>,
    },
}

impl JobFailure {
    /// OpenAI's job `error` object.
    pub fn error_json(&self) -> Option<Value> {
        match self {
            Self::Failed {
                code,
                message,
                param,
            } => Some(json!({"code": code, "message": message, "param": param})),
            _ => None,
        }
    }
}

impl From<crate::store::StoreError> for JobFailure {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "job store failure");
        Failure::Store.with(format!("the job store failed: {e}"))
    }
}

/// One kind of job's work.
#[async_trait::async_trait]
pub trait JobRunner: Send + Sync {
    /// Whether a job interrupted by a restart can run again and continue (else it is failed
    /// with `server_restarted`). Every runner of today's kinds resumes.
    fn resumable(&self) -> bool {
        true
    }

    /// Whether the job only waits on jobs it creates (a pipeline). Such a job takes no run slot:
    /// holding one while its stage waits for a slot would never end.
    fn supervises(&self) -> bool {
        false
    }

    /// Runs (or resumes) the job. Must return soon after `ctx` reports a stop.
    async fn run(&self, ctx: JobContext) -> Result<(), JobFailure>;
}
