//! [`ManagedModels`]: what a fine-tuning job needs from the server's models — the base model's
//! GGUF (fetched hash-pinned if missing) and a place to register and load the tuned model —
//! over the [`ModelManager`] and the model cache.

use std::path::PathBuf;
use std::sync::Arc;

use super::TunedModels;
use crate::fetch::ModelCache;
use crate::models::{ModelError, ModelManager, RegisteredModel};

/// The server's models, as fine-tuning jobs see them.
pub struct ManagedModels {
    pub models: Arc<ModelManager>,
    pub cache: ModelCache,
}

#[async_trait::async_trait]
impl TunedModels for ManagedModels {
    async fn check_base(&self, model: &str) -> Result<(), String> {
        self.models
            .spec(model)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn base_gguf(&self, model: &str) -> Result<PathBuf, String> {
        let spec = self.models.spec(model).map_err(|e| e.to_string())?;
        let cache = self.cache.clone();
        tokio::task::spawn_blocking(move || cache.ensure(&spec).map(|(path, _)| path))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }

    async fn register(
        &self,
        id: &str,
        gguf: PathBuf,
        parent: &str,
        job_id: &str,
        rounds: u32,
    ) -> Result<(), String> {
        let mut spec = self.models.spec(parent).map_err(|e| e.to_string())?;
        spec.id = id.to_string();
        spec.description = Some(format!("PTR fine-tune of {parent} (job {job_id})"));
        spec.use_in_place(gguf);
        spec.refinement.rounds = rounds;
        let model = RegisteredModel {
            spec,
            parent: Some(parent.to_string()),
            created_by_job: Some(job_id.to_string()),
            created: 0,
        };
        match self.models.register(model) {
            // A resumed job that had registered its model before a crash.
            Ok(_) | Err(ModelError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn load(&self, id: &str) -> Result<(), String> {
        self.models.load(id).await.map_err(|e| e.to_string())
    }
}
