//! Models as a run-time resource, shared by the HTTP layer, jobs, evaluation and the trainer.
//!
//! - [`crate::registry`] reads `models.toml` (the declared models) and [`crate::fetch`] keeps
//!   their weights in the model cache; a model may instead name a local GGUF `path`.
//! - [`RuntimeStore`] persists the models registered while the server runs, as `models.json`
//!   in the data directory (`--data-dir`).
//! - [`ModelManager`] is the pool: register, load, unload, remove, list and resolve models by
//!   id, each with its own state and admission gate; [`EngineLoader`] builds their engines.
//! - [`check_id`] (from [`crate::model_id`]) is the one rule for model ids, applied wherever an
//!   id enters.
//! - `fake::FakeLoader` loads scripted engines, for tests (feature `fake-engine`).
//!
//! Errors are [`ModelError`], which knows nothing of HTTP; `crate::error` maps it.

mod error;
#[cfg(any(test, feature = "fake-engine"))]
pub mod fake;
mod loader;
mod manager;
mod store;

use std::path::PathBuf;

pub use crate::model_id::check_id;
pub use error::ModelError;
pub use loader::{EngineLoader, MistralLoader};
pub use manager::{ModelManager, ModelState, ModelStatus, ServingModel};
pub use store::{RegisteredModel, RuntimeStore};

/// The default data directory: `$XDG_DATA_HOME/ptr-server` (`~/.local/share/ptr-server`), or
/// `./data` where the platform has no data directory.
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("ptr-server"))
        .unwrap_or_else(|| PathBuf::from("data"))
}
