//! The trainer's configuration file (`ptr-server train --config FILE`): JSON, every field with a
//! default except the paths, unknown fields rejected with the path of the offending field.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The base model, a GGUF file (llama or qwen2 architecture).
    pub base_model_path: PathBuf,
    /// OpenAI chat JSONL; assistant messages may carry `"weight": 0|1`.
    pub training_file: PathBuf,
    /// Optional JSONL of the same form, scored at every checkpoint and at the end.
    #[serde(default)]
    pub validation_file: Option<PathBuf>,
    /// Where checkpoints, the merged GGUF, the adapter and the reports go.
    pub output_dir: PathBuf,
    /// Accepted for the job API's sake; the thoughts and instructions are already in the file.
    #[serde(default)]
    pub instruction: Option<String>,
    #[serde(default)]
    pub hyperparameters: Hyperparameters,
}

/// The LoRA adapter's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoraConfig {
    pub r: usize,
    pub alpha: f64,
    pub dropout: f32,
    /// Projections that get an adapter, in PEFT's names.
    pub target_modules: Vec<String>,
}

impl Default for LoraConfig {
    fn default() -> Self {
        Self {
            r: 8,
            alpha: 16.0,
            dropout: 0.0,
            target_modules: ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]
                .map(String::from)
                .to_vec(),
        }
    }
}

/// How the learning rate decays after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    Linear,
    Cosine,
    Constant,
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hyperparameters {
    pub lora: LoraConfig,
    pub learning_rate: f64,
    pub warmup_steps: usize,
    pub schedule: Schedule,
    pub weight_decay: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    /// Sequences per micro-batch.
    pub batch_size: usize,
    /// Micro-batches per optimizer step.
    pub grad_accum: usize,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub max_grad_norm: f64,
    /// Passes over the training file; ignored when `max_steps` is set.
    pub n_epochs: f64,
    /// Optimizer steps to run.
    pub max_steps: Option<usize>,
    /// Tokens per sequence; longer lines lose their earliest thoughts, then are skipped.
    pub max_seq_len: usize,
    pub seed: u64,
    /// Write a checkpoint every this many steps (0 = only at the end).
    pub checkpoint_every: usize,
    /// Loss weight of weight-1 assistant turns.
    pub answer_weight: f32,
    /// Loss weight of weight-0 turns (thoughts), times β_t = t/n.
    pub thought_weight: f32,
}

impl Default for Hyperparameters {
    fn default() -> Self {
        Self {
            lora: LoraConfig::default(),
            learning_rate: 1e-4,
            warmup_steps: 10,
            schedule: Schedule::Linear,
            weight_decay: 0.0,
            betas: [0.98, 0.999],
            eps: 1e-8,
            batch_size: 1,
            grad_accum: 1,
            max_grad_norm: 1.0,
            n_epochs: 3.0,
            max_steps: None,
            max_seq_len: 512,
            seed: 42,
            checkpoint_every: 50,
            answer_weight: 1.0,
            thought_weight: 0.0,
        }
    }
}

/// The projections a LoRA may target.
pub const TARGETS: [&str; 7] = [
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
];

impl TrainConfig {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?;
        Self::parse(&text)
    }

    /// Parses and validates config JSON.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let cfg: Self = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow::anyhow!("config field `{}`: {}", e.path(), e.inner()))?;
        cfg.hyperparameters.validate()?;
        Ok(cfg)
    }
}

impl Hyperparameters {
    /// Checks the values serde's types cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        let h = self;
        let checks: [(bool, &str); 12] = [
            (h.lora.r >= 1, "`lora.r` must be at least 1"),
            (h.lora.alpha > 0.0, "`lora.alpha` must be > 0"),
            (
                (0.0..1.0).contains(&h.lora.dropout),
                "`lora.dropout` must be in [0, 1)",
            ),
            (
                !h.lora.target_modules.is_empty(),
                "`lora.target_modules` is empty",
            ),
            (h.learning_rate > 0.0, "`learning_rate` must be > 0"),
            (
                h.betas.iter().all(|b| (0.0..1.0).contains(b)),
                "`betas` must be in [0, 1)",
            ),
            (h.batch_size >= 1, "`batch_size` must be at least 1"),
            (h.grad_accum >= 1, "`grad_accum` must be at least 1"),
            (h.max_grad_norm >= 0.0, "`max_grad_norm` must be >= 0"),
            (
                h.max_steps.is_some() || h.n_epochs > 0.0,
                "`n_epochs` must be > 0",
            ),
            (h.max_seq_len >= 8, "`max_seq_len` must be at least 8"),
            (
                h.answer_weight >= 0.0 && h.thought_weight >= 0.0,
                "loss weights must be >= 0",
            ),
        ];
        if let Some((_, msg)) = checks.iter().find(|(ok, _)| !ok) {
            anyhow::bail!("hyperparameters: {msg}");
        }
        if h.max_steps == Some(0) {
            anyhow::bail!("hyperparameters: `max_steps` must be at least 1");
        }
        if let Some(bad) = h
            .lora
            .target_modules
            .iter()
            .find(|t| !TARGETS.contains(&t.as_str()))
        {
            anyhow::bail!(
                "hyperparameters: unknown `lora.target_modules` entry `{bad}`; known: {}",
                TARGETS.join(", ")
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_everything_but_the_paths() {
        let c = TrainConfig::parse(
            r#"{"base_model_path":"m.gguf","training_file":"t.jsonl","output_dir":"out"}"#,
        )
        .unwrap();
        assert_eq!(c.hyperparameters, Hyperparameters::default());
        assert_eq!(c.hyperparameters.lora.r, 8);
    }

    #[test]
    fn unknown_fields_name_their_path() {
        let err = TrainConfig::parse(
            r#"{"base_model_path":"m","training_file":"t","output_dir":"o",
                "hyperparameters":{"lora":{"rank":4}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("hyperparameters.lora") && err.contains("rank"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        let err = TrainConfig::parse(
            r#"{"base_model_path":"m","training_file":"t","output_dir":"o",
                "hyperparameters":{"lora":{"target_modules":["qkv"]}}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`qkv`"), "{err}");
    }
}
