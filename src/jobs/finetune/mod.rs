//! PTR phase 2 as an OpenAI fine-tuning job: the job runs the thought-mask trainer
//! (`ptr-server train --config …`) as a child process — so a crash or out-of-memory there
//! cannot take the server down — turns its JSON-line reports into job events, lists its
//! checkpoints, and registers the merged model as `fine_tuned_model` when it succeeds.

pub mod checkpoint;
mod child;
mod models;
mod relay;
mod runner;
pub mod spec;
mod state;

pub use checkpoint::Checkpoint;
pub use models::ManagedModels;
pub use runner::FineTuneRunner;
pub use spec::FineTuneSpec;
pub use state::FineTuneState;

use std::path::PathBuf;

/// What a fine-tuning job needs from the model registry.
#[async_trait::async_trait]
pub trait TunedModels: Send + Sync {
    /// Whether `model` can be fine-tuned here (known, and of an architecture the trainer has).
    async fn check_base(&self, model: &str) -> Result<(), String>;

    /// The GGUF file of a base model (fetched if needed); `Err` says why there is none.
    async fn base_gguf(&self, model: &str) -> Result<PathBuf, String>;

    /// Registers a tuned model (persisted), with the refinement rounds it serves by default.
    async fn register(
        &self,
        id: &str,
        gguf: PathBuf,
        parent: &str,
        job_id: &str,
        rounds: u32,
    ) -> Result<(), String>;

    /// Loads a registered model so it serves requests.
    async fn load(&self, id: &str) -> Result<(), String>;
}

/// `ft:<base>:<suffix>:<short id>`, OpenAI's naming, with `:` kept legal in model ids.
pub fn tuned_model_id(base: &str, suffix: Option<&str>, job_id: &str) -> String {
    let short: String = job_id
        .rsplit('-')
        .next()
        .unwrap_or(job_id)
        .chars()
        .take(8)
        .collect();
    format!("ft:{base}:{}:{short}", suffix.unwrap_or("ptr"))
}
