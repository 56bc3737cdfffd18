//! [`DatasetState`]: what a dataset job has produced so far — its record counts while it runs,
//! then its three output files and its [`Summary`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::summary::Summary;
use crate::jobs::JobState;

/// A dataset job's state (its fields are the job view's last ones).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct DatasetState {
    pub request_counts: Option<RequestCounts>,
    /// The accepted records, a `fine-tune` file in chat format.
    pub output_file_id: Option<String>,
    /// The rejected records, each with its reason.
    pub error_file_id: Option<String>,
    /// Every record's provenance (models, samples, scores, timings).
    pub provenance_file_id: Option<String>,
    /// Acceptance, scores and token counts, once the job succeeded.
    #[schema(value_type = Option<Object>)]
    pub summary: Option<Summary>,
}

impl JobState for DatasetState {}

/// The job's queries and what became of them (OpenAI batch's `request_counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestCounts {
    pub total: usize,
    /// Accepted plus rejected.
    pub completed: usize,
    pub accepted: usize,
    pub rejected: usize,
    /// Queries that produced no record (a model error); retried when the job resumes.
    pub failed: usize,
}
