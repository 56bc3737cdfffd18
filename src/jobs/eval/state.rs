//! [`EvalState`]: what an evaluation job has produced so far — its progress while it runs, then
//! its report files and per-task tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::eval::{Progress, TaskTable};
use crate::jobs::JobState;

/// An evaluation job's state (its fields are the job view's last ones).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct EvalState {
    /// Items done (all rounds of one item on one system) of those planned.
    #[schema(value_type = Option<Object>)]
    pub progress: Option<Progress>,
    /// File ids by name: `report.md`, `summary.json`, `accuracy.svg`, `items.jsonl`.
    pub result_files: Option<BTreeMap<String, String>>,
    /// One table per task and system: accuracy by round, flips, p-values.
    #[schema(value_type = Option<Vec<Object>>)]
    pub summary: Option<Vec<TaskTable>>,
    /// Items that failed on some system (a request error), left out of the tables.
    pub failed_items: Option<usize>,
}

impl JobState for EvalState {}
