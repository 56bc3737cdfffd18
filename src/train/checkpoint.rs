//! Checkpoints: `output_dir/checkpoints/step-N/` holding the adapter (`adapter.safetensors`), the
//! AdamW moments (`optimizer.safetensors`) and `state.json` (step, settings that must match on
//! resume). A checkpoint is written into a temporary folder that is renamed into place only when
//! complete, so a `kill -9` at any moment leaves the previous checkpoints usable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::config::LoraConfig;

/// What must agree between a run and the checkpoint it resumes from, plus the step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub step: usize,
    pub adam_t: usize,
    pub lora: LoraConfig,
    pub seed: u64,
    pub batch_size: usize,
    pub grad_accum: usize,
}

/// A checkpoint's tensors and state, in memory.
pub struct Loaded {
    pub state: State,
    pub adapter: HashMap<String, Tensor>,
    pub optimizer: HashMap<String, Tensor>,
}

/// The checkpoints folder of an output folder.
pub fn dir(output_dir: &Path) -> PathBuf {
    output_dir.join("checkpoints")
}

/// Writes checkpoint `state.step` atomically; returns its folder.
pub fn save(
    output_dir: &Path,
    state: &State,
    adapter: &HashMap<String, Tensor>,
    optimizer: &HashMap<String, Tensor>,
) -> anyhow::Result<PathBuf> {
    let root = dir(output_dir);
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let tmp = root.join(format!(".tmp-step-{}", state.step));
    let done = root.join(format!("step-{}", state.step));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    candle_core::safetensors::save(adapter, tmp.join("adapter.safetensors"))?;
    candle_core::safetensors::save(optimizer, tmp.join("optimizer.safetensors"))?;
    std::fs::write(tmp.join("state.json"), serde_json::to_vec_pretty(state)?)?;
    if done.exists() {
        std::fs::remove_dir_all(&done)?;
    }
    std::fs::rename(&tmp, &done)?;
    Ok(done)
}

/// The newest complete checkpoint folder, if any; stale temporary folders are removed.
pub fn latest(output_dir: &Path) -> anyhow::Result<Option<PathBuf>> {
    let root = dir(output_dir);
    let Ok(entries) = std::fs::read_dir(&root) else {
        return Ok(None);
    };
    let mut best: Option<(usize, PathBuf)> = None;
    for e in entries {
        let path = e?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with(".tmp-") {
            let _ = std::fs::remove_dir_all(&path);
            continue;
        }
        let Some(n) = name
            .strip_prefix("step-")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if path.join("state.json").exists() && best.as_ref().is_none_or(|(b, _)| n > *b) {
            best = Some((n, path));
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// Reads a checkpoint folder.
pub fn load(path: &Path, device: &Device) -> anyhow::Result<Loaded> {
    let state: State = serde_json::from_slice(&std::fs::read(path.join("state.json"))?)
        .with_context(|| format!("{}: bad state.json", path.display()))?;
    Ok(Loaded {
        state,
        adapter: candle_core::safetensors::load(path.join("adapter.safetensors"), device)?,
        optimizer: candle_core::safetensors::load(path.join("optimizer.safetensors"), device)?,
    })
}
