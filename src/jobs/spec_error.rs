//! [`SpecError`]: the one error a job spec check gives, for every kind — the field it names
//! (`param`, dotted: `filter.k`, `tasks[0].file`) and a message that says the limit. The admin
//! routes answer it as a 400 with that `param`; a job that finds its spec bad only when it runs
//! fails with it (code `invalid_request`).

use super::JobFailure;

/// A job spec that does not pass its checks, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct SpecError {
    pub param: String,
    pub message: String,
}

impl SpecError {
    pub fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

impl From<SpecError> for JobFailure {
    fn from(e: SpecError) -> Self {
        Self::Failed {
            code: "invalid_request".into(),
            message: e.message,
            param: Some(e.param),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spec_error_names_its_field_as_a_job_failure_and_as_text() {
        let e = SpecError::new("filter.k", "`filter.k` must be between 1 and 16");
        assert_eq!(
            e.to_string(),
            "filter.k: `filter.k` must be between 1 and 16"
        );
        let failure = JobFailure::from(e);
        let error = failure.error_json().unwrap();
        assert_eq!(error["code"], "invalid_request");
        assert_eq!(error["param"], "filter.k");
    }
}
