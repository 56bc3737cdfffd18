//! Why a fine-tuning job failed: the codes of its `error.code`, in one table (before, free text
//! at each call). Messages say the details; a client branches on the code.

use crate::jobs::JobFailure;

/// A fine-tuning job's failure codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `invalid_spec`: the stored spec does not read back (a job written by another version).
    InvalidSpec,
    /// `invalid_model`: the base model has no GGUF file here.
    InvalidModel,
    /// `io_error`: the job's folder or a result file could not be written or read.
    Io,
    /// `trainer_failed`: the trainer did not start, reported an error, exited with a failure
    /// or ended without a result.
    Trainer,
    /// `register_failed`: the tuned model could not be added to the registry.
    Register,
}

impl Failure {
    /// The `error.code` clients see.
    pub fn code(self) -> &'static str {
        match self {
            Self::InvalidSpec => "invalid_spec",
            Self::InvalidModel => "invalid_model",
            Self::Io => "io_error",
            Self::Trainer => "trainer_failed",
            Self::Register => "register_failed",
        }
    }

    /// The job failure with this code and `message`.
    pub fn with(self, message: impl Into<String>) -> JobFailure {
        JobFailure::failed(self.code(), message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_distinct_and_reaches_the_jobs_error() {
        let all = [
            Failure::InvalidSpec,
            Failure::InvalidModel,
            Failure::Io,
            Failure::Trainer,
            Failure::Register,
        ];
        let codes: std::collections::BTreeSet<_> = all.map(Failure::code).into();
        assert_eq!(codes.len(), all.len());
        let error = Failure::Trainer.with("boom").error_json().unwrap();
        assert_eq!(
            (&error["code"], &error["message"]),
            (&"trainer_failed".into(), &"boom".into())
        );
    }
}
