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
        // A model another load is bringing up (a start-up model, when a job resumes as the
        // server starts) is waited for, not reported as a failure: the load ends either way.
        loop {
            match self.models.load(id).await {
                Err(ModelError::Loading(_)) => {
                    self.models.settled(id).await.map_err(|e| e.to_string())?;
                }
                done => return done.map_err(|e| e.to_string()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;
    use crate::models::fake::FakeLoader;

    #[tokio::test]
    async fn a_job_waits_for_a_model_that_is_still_loading() {
        let registry = crate::registry::ModelRegistry::parse(
            "default_model = \"m\"\n[[model]]\nid = \"m\"\npath = \"/nonexistent/m.gguf\"\n",
        )
        .unwrap();
        // A closed gate: a load waits at it until a permit is added.
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let loader = FakeLoader {
            engines: vec![FakeEngine::new("m", "hi")],
            gate: gate.clone(),
        };
        let manager = Arc::new(
            ModelManager::new(
                &registry,
                crate::models::RuntimeStore::memory(),
                Arc::new(loader),
                4,
            )
            .unwrap(),
        );
        // The server's own load of the model, held at the gate: the model is `loading`.
        let first = tokio::spawn({
            let manager = manager.clone();
            async move { manager.load("m").await }
        });
        for _ in 0..200 {
            if manager.status("m").unwrap().status == crate::models::ModelState::Loading {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(matches!(
            manager.load("m").await,
            Err(ModelError::Loading(_))
        ));
        let models = ManagedModels {
            models: manager.clone(),
            cache: ModelCache::new(std::env::temp_dir(), "python3"),
        };
        let job = tokio::spawn(async move { models.load("m").await });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !job.is_finished(),
            "the job's load returned while the model was loading"
        );
        gate.add_permits(1);
        first.await.unwrap().unwrap();
        assert_eq!(job.await.unwrap(), Ok(()));
    }
}
