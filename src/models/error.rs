//! [`ModelError`]: what the model manager reports. It knows nothing of HTTP; `crate::error`
//! maps each variant to a status in its one table.

/// Why a model operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    /// The id breaks the id rules (see [`super::check_id`]).
    #[error("{0}")]
    InvalidId(String),
    /// The spec is malformed (no weight source, bad hash, …).
    #[error("{0}")]
    InvalidSpec(String),
    /// No model has this id.
    #[error("The model `{0}` does not exist or is not served here; see GET /v1/models")]
    NotFound(String),
    /// A model with this id is already registered.
    #[error("A model with id `{0}` already exists")]
    AlreadyExists(String),
    /// The model is registered but not loaded.
    #[error("The model `{0}` is not loaded")]
    NotLoaded(String),
    /// A `path` model whose file is not there (yet): nothing to load.
    #[error("The model `{id}` has no weights yet: its file {path} does not exist (a `path` model of models.toml, made by another command such as `make ptr-model`)")]
    NoFile { id: String, path: String },
    /// The model is being loaded.
    #[error("The model `{0}` is still loading; retry shortly")]
    Loading(String),
    /// Loading failed, or the loaded engine stopped; the reason is in the log.
    #[error("The model `{id}` is unavailable: {reason}")]
    Failed { id: String, reason: String },
    /// The model's own concurrency limit is reached.
    #[error("The model `{0}` is at its limit of concurrent generations; retry shortly")]
    Busy(String),
    /// The operation is not allowed on this model (the default model, or one `models.toml`
    /// declares).
    #[error("{0}")]
    Protected(String),
    /// The run-time registry could not be read or written.
    #[error("model registry storage failed: {0}")]
    Storage(String),
}
