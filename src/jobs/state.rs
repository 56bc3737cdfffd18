//! [`JobState`]: each kind of job keeps what it produced (counts, output ids, its stages, …) in
//! one typed struct of its own, stored as the job's JSON `state` and shown merged into the job's
//! API view. A runner writes a partial struct (only the fields it sets are serialised) that is
//! merged into the stored state ([`crate::jobs::JobContext::update`]); readers take the whole
//! struct back with [`JobState::of`].

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::store::JobRow;

/// The typed state of one kind of job. Every field is optional (skipped when `None`), so a
/// default value with a few fields set is a patch of exactly those fields.
pub trait JobState: Serialize + DeserializeOwned + Default {
    /// The state `job` holds; a field that does not parse (a store written by another version)
    /// is logged and read as absent.
    fn of(job: &JobRow) -> Self {
        serde_json::from_value(job.state.clone()).unwrap_or_else(|e| {
            tracing::warn!(job = %job.id, error = %e, "a job's stored state does not parse");
            Self::default()
        })
    }
}
