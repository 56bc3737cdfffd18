//! [`RuntimeStore`]: the models registered while the server runs (fine-tuned outputs, local
//! GGUF files), persisted as `models.json` in the data directory so that they survive a restart.
//! The file is rewritten whole on every change (write to a temporary file, then rename), so a
//! crash leaves either the old or the new list, never half of one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ModelError;
use crate::registry::ModelSpec;

/// File name of the run-time registry inside the data directory.
const FILE: &str = "models.json";

/// A model added at run time, with where it came from.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisteredModel {
    #[serde(flatten)]
    pub spec: ModelSpec,
    /// The model it was derived from (a fine-tune's base), if any.
    pub parent: Option<String>,
    /// The job that produced it, if any.
    pub created_by_job: Option<String>,
    /// Unix seconds when it was registered.
    #[serde(default)]
    pub created: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct StoreFile {
    models: Vec<RegisteredModel>,
}

/// Where run-time registrations are kept: a `models.json` file, or nowhere (tests, embedding).
#[derive(Debug, Clone)]
pub struct RuntimeStore {
    file: Option<PathBuf>,
}

fn storage(path: &Path, e: impl std::fmt::Display) -> ModelError {
    ModelError::Storage(format!("{}: {e}", path.display()))
}

impl RuntimeStore {
    /// The store in `data_dir` (created when first written).
    pub fn in_dir(data_dir: &Path) -> Self {
        Self {
            file: Some(data_dir.join(FILE)),
        }
    }

    /// A store that keeps nothing across restarts.
    pub fn memory() -> Self {
        Self { file: None }
    }

    /// The registered models; none when the file does not exist yet. Every entry is validated.
    pub fn read(&self) -> Result<Vec<RegisteredModel>, ModelError> {
        let Some(path) = &self.file else {
            return Ok(Vec::new());
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(storage(path, e)),
        };
        let file: StoreFile = serde_json::from_str(&text).map_err(|e| storage(path, e))?;
        for m in &file.models {
            m.spec
                .validate()
                .map_err(|e| storage(path, format!("invalid entry: {e}")))?;
        }
        Ok(file.models)
    }

    /// Replaces the stored list.
    pub fn write(&self, models: &[RegisteredModel]) -> Result<(), ModelError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| storage(dir, e))?;
        let text = serde_json::to_string_pretty(&StoreFile {
            models: models.to_vec(),
        })
        .expect("registered models serialise: this is a bug");
        let tmp = path.with_extension(format!("json.{}.tmp", uuid::Uuid::new_v4().simple()));
        std::fs::write(&tmp, text).map_err(|e| storage(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            storage(path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(id: &str) -> RegisteredModel {
        RegisteredModel {
            spec: ModelSpec {
                id: id.into(),
                description: None,
                file: String::new(),
                sha256: String::new(),
                refinement: Default::default(),
                wheels: vec![],
                path: Some("/tmp/x.gguf".into()),
                max_concurrent: None,
                requantize: None,
            },
            parent: Some("base".into()),
            created_by_job: Some("ftjob-1".into()),
            created: 7,
        }
    }

    #[test]
    fn a_written_list_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = RuntimeStore::in_dir(&dir.path().join("data"));
        assert!(store.read().unwrap().is_empty());
        store.write(&[local("ft:base:x:1")]).unwrap();
        let back = store.read().unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].spec.id, "ft:base:x:1");
        assert_eq!(back[0].created_by_job.as_deref(), Some("ftjob-1"));
        assert_eq!(
            std::fs::read_dir(dir.path().join("data")).unwrap().count(),
            1
        );
    }

    #[test]
    fn a_tampered_entry_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = RuntimeStore::in_dir(dir.path());
        store.write(&[local("ok")]).unwrap();
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        std::fs::write(dir.path().join(FILE), text.replace("\"ok\"", "\"../up\"")).unwrap();
        assert!(matches!(store.read(), Err(ModelError::Storage(_))));
    }
}
