//! Why a job failed: every `error.code` a job can end with, in one table. Messages say the
//! details; a client branches on the code.

use serde_json::{json, Value};

use super::JobFailure;

/// A job's failure codes, of every kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `invalid_spec`: the stored spec does not read back (a job written by another version).
    InvalidSpec,
    /// `invalid_model`: the base model has no GGUF file here.
    InvalidModel,
    /// `model_unavailable`: a model the job needs could not be loaded.
    ModelUnavailable,
    /// `embedder_unavailable`: the dataset filter's sentence embedder could not be loaded.
    EmbedderUnavailable,
    /// `io_error`: the job's folder or a result file could not be written or read.
    Io,
    /// `store_error`: the job store failed.
    Store,
    /// `trainer_failed`: the trainer did not start, reported an error, exited with a failure
    /// or ended without a result.
    Trainer,
    /// `register_failed`: the tuned model could not be added to the registry.
    Register,
    /// `generation_failed`: every record of a dataset job failed.
    Generation,
    /// `eval_failed`: the evaluation could not run, or every item failed.
    Eval,
    /// `no_training_records`: a pipeline's record stages accepted no record.
    NoTrainingRecords,
    /// `stage_failed`: a pipeline's stage job did not succeed.
    StageFailed,
    /// `not_ready`: the server is not listening yet (an eval job asks it).
    NotReady,
    /// `shutting_down`: the server stopped before the job could create its next stage.
    ShuttingDown,
    /// `server_restarted`: the server restarted while a job of a kind that cannot resume ran.
    ServerRestarted,
    /// `unknown_kind`: no runner for the job's kind (a job written by another version).
    UnknownKind,
    /// `internal_error`: the job's runner panicked; the server log says where.
    Internal,
}

impl Failure {
    /// Every code, for the table's test and the docs.
    pub const ALL: [Failure; 17] = [
        Self::InvalidSpec,
        Self::InvalidModel,
        Self::ModelUnavailable,
        Self::EmbedderUnavailable,
        Self::Io,
        Self::Store,
        Self::Trainer,
        Self::Register,
        Self::Generation,
        Self::Eval,
        Self::NoTrainingRecords,
        Self::StageFailed,
        Self::NotReady,
        Self::ShuttingDown,
        Self::ServerRestarted,
        Self::UnknownKind,
        Self::Internal,
    ];

    /// The `error.code` clients see.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidSpec => "invalid_spec",
            Self::InvalidModel => "invalid_model",
            Self::ModelUnavailable => "model_unavailable",
            Self::EmbedderUnavailable => "embedder_unavailable",
            Self::Io => "io_error",
            Self::Store => "store_error",
            Self::Trainer => "trainer_failed",
            Self::Register => "register_failed",
            Self::Generation => "generation_failed",
            Self::Eval => "eval_failed",
            Self::NoTrainingRecords => "no_training_records",
            Self::StageFailed => "stage_failed",
            Self::NotReady => "not_ready",
            Self::ShuttingDown => "shutting_down",
            Self::ServerRestarted => "server_restarted",
            Self::UnknownKind => "unknown_kind",
            Self::Internal => "internal_error",
        }
    }

    /// The job failure with this code and `message`.
    pub fn with(self, message: impl Into<String>) -> JobFailure {
        JobFailure::Failed {
            code: self.code().to_string(),
            message: message.into(),
            param: None,
        }
    }

    /// The job `error` object, for a failure written straight to the store.
    pub fn error_json(self, message: &str) -> Value {
        json!({"code": self.code(), "message": message, "param": null})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_and_reaches_the_jobs_error() {
        let codes: std::collections::BTreeSet<_> = Failure::ALL.map(Failure::code).into();
        assert_eq!(codes.len(), Failure::ALL.len());
        let error = Failure::Trainer.with("boom").error_json().unwrap();
        assert_eq!(
            (&error["code"], &error["message"]),
            (&"trainer_failed".into(), &"boom".into())
        );
    }
}
