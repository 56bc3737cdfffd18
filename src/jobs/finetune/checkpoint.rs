//! OpenAI's `fine_tuning.job.checkpoint`: one entry per checkpoint the trainer saved, with the
//! metrics of its step. The job's state ([`super::FineTuneState`]) keeps the list, oldest first,
//! together with each checkpoint's path on disk, which the API never shows.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::train::report::CheckpointMetrics;

/// One checkpoint of a fine-tuning job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Checkpoint {
    /// Always `fine_tuning.job.checkpoint`.
    pub object: String,
    pub id: String,
    pub created_at: i64,
    pub step_number: usize,
    pub fine_tuning_job_id: String,
    /// The step's metrics (`null` only for a checkpoint saved before the first step).
    pub metrics: Option<CheckpointMetrics>,
    /// The checkpoint as a model id: `<fine-tuned model>:ckpt-step-<step>`.
    pub fine_tuned_model_checkpoint: String,
    /// Where the trainer wrote it: kept in the job's state, never shown by the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(ignore)]
    pub path: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_checkpoints_read_back_with_or_without_metrics() {
        let state = json!({"checkpoints": [
            {"object": "fine_tuning.job.checkpoint", "id": "ftckpt-a-4", "created_at": 1,
             "step_number": 4, "fine_tuning_job_id": "ftjob-a", "metrics": null,
             "fine_tuned_model_checkpoint": "ft:m:ptr:a:ckpt-step-4", "path": "/x/step-4"},
            {"object": "fine_tuning.job.checkpoint", "id": "ftckpt-a-8", "created_at": 2,
             "step_number": 8, "fine_tuning_job_id": "ftjob-a",
             "metrics": {"step": 8, "train_loss": null, "train_mean_token_accuracy": 0.5,
                         "valid_loss": 1.25},
             "fine_tuned_model_checkpoint": "ft:m:ptr:a:ckpt-step-8", "path": "/x/step-8"},
        ]});
        let all = serde_json::from_value::<super::super::FineTuneState>(state)
            .unwrap()
            .checkpoints
            .unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].metrics, None);
        assert_eq!(all[0].path, Some(PathBuf::from("/x/step-4")));
        let m = all[1].metrics.as_ref().unwrap();
        assert!(m.train_loss.is_nan(), "a NaN loss was written as null");
        assert_eq!((m.step, m.valid_loss), (8, Some(1.25)));
        let none = serde_json::from_value::<super::super::FineTuneState>(json!({})).unwrap();
        assert!(none.checkpoints.is_none());
    }
}
