//! [`PipelineState`]: where a pipeline is — its current stage and every stage job it made — and
//! what it produced: the training files and, at the end, the report.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::jobs::JobState;

/// A pipeline job's state (its fields are the job view's last ones).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct PipelineState {
    /// The stage running now (`import-1`, `dataset`, `fine_tune-ptr`, `eval`, `report`).
    pub stage: Option<String>,
    /// Every stage so far by name, with its job.
    pub stages: Option<BTreeMap<String, StageJob>>,
    /// The training files it made, by kind (`all`, `answers_only`): a resumed pipeline trains on
    /// the same files.
    pub training_files: Option<BTreeMap<String, String>>,
    /// The report's files by name (`report.md`, the charts, `settings.json`).
    pub result_files: Option<BTreeMap<String, String>>,
    /// The report folder on the server.
    #[schema(value_type = Option<String>)]
    pub report_dir: Option<PathBuf>,
}

impl JobState for PipelineState {}

/// One stage's job, as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StageJob {
    pub job_id: String,
    /// The job's kind (`dataset`, `fine_tune`, `eval`).
    pub kind: String,
    /// Its status when the pipeline last looked.
    pub status: String,
}
