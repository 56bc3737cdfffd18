//! [`FineTuneState`]: what a fine-tuning job has produced so far — its checkpoints while it
//! trains, then the tuned model, its result files and the adapter.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::checkpoint::Checkpoint;
use super::spec::Hyperparameters;
use crate::jobs::JobState;

/// A fine-tuning job's state.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FineTuneState {
    /// The hyperparameters the trainer runs with (`auto` resolved), set when it starts.
    pub hyperparameters: Option<Hyperparameters>,
    /// Every checkpoint, oldest first (those of earlier runs of a resumed job included).
    pub checkpoints: Option<Vec<Checkpoint>>,
    /// The tuned model's id, once registered.
    pub fine_tuned_model: Option<String>,
    /// The metrics CSV and the loss curve, as file ids.
    pub result_files: Option<Vec<String>>,
    pub trained_tokens: Option<u64>,
    /// The adapter in PEFT's format (a folder on the server).
    pub adapter_dir: Option<PathBuf>,
}

impl JobState for FineTuneState {}
