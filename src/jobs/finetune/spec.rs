//! What a fine-tuning job is asked to do: OpenAI's request (`model`, `training_file`,
//! `hyperparameters` or `method.supervised.hyperparameters`, …) plus PTR's `ptr` extension, and
//! the trainer configuration it becomes (`ptr-server train --config`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::jobs::SpecError;

/// `POST /fine_tuning/jobs`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FineTuneSpec {
    pub model: String,
    pub training_file: String,
    pub validation_file: Option<String>,
    pub suffix: Option<String>,
    pub seed: Option<u64>,
    pub metadata: Option<Value>,
    pub hyperparameters: Option<Hyper>,
    pub method: Option<Method>,
    #[serde(default)]
    pub ptr: PtrSettings,
    /// OpenAI accepts integrations; none are supported here, so only an empty list is.
    pub integrations: Option<Vec<Value>>,
}

/// OpenAI's hyper-parameters (`"auto"` or a number each).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Hyper {
    pub n_epochs: Option<Value>,
    pub batch_size: Option<Value>,
    pub learning_rate_multiplier: Option<Value>,
}

/// OpenAI's `method` object; only `supervised` is offered.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Method {
    #[serde(rename = "type")]
    pub kind: String,
    pub supervised: Option<Supervised>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Supervised {
    pub hyperparameters: Option<Hyper>,
}

/// PTR's settings (SDK: `extra_body={"ptr": {...}}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PtrSettings {
    pub answer_weight: f32,
    pub thought_weight: f32,
    pub lora: Option<Value>,
    pub max_seq_len: u32,
    pub checkpoint_every: u32,
    pub max_steps: Option<u32>,
    pub learning_rate: Option<f64>,
    pub warmup_steps: Option<u32>,
    pub grad_accum: Option<u32>,
    /// Load the tuned model when the job succeeds.
    pub load_on_success: bool,
    /// Refinement rounds the tuned model serves by default.
    pub rounds: u32,
}

impl Default for PtrSettings {
    fn default() -> Self {
        Self {
            answer_weight: 1.0,
            thought_weight: 0.0,
            lora: None,
            max_seq_len: 512,
            checkpoint_every: 10,
            max_steps: None,
            learning_rate: None,
            warmup_steps: None,
            grad_accum: None,
            load_on_success: false,
            rounds: 3,
        }
    }
}

fn err(param: &str, message: impl Into<String>) -> SpecError {
    SpecError::new(param, message)
}

/// A number, or `"auto"` (→ `None`).
fn number(v: &Option<Value>, param: &str, lo: f64, hi: f64) -> Result<Option<f64>, SpecError> {
    match v {
        None => Ok(None),
        Some(Value::String(s)) if s == "auto" => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(x) if x >= lo && x <= hi => Ok(Some(x)),
            _ => Err(err(
                param,
                format!("`{param}` must be between {lo} and {hi}, or \"auto\""),
            )),
        },
        Some(_) => Err(err(
            param,
            format!("`{param}` must be a number or \"auto\""),
        )),
    }
}

/// The base learning rate a multiplier of 1 means (LoRA on small models).
pub const BASE_LEARNING_RATE: f64 = 2e-4;

impl FineTuneSpec {
    /// The effective hyper-parameters (`method` wins over the legacy field).
    fn hyper(&self) -> (Hyper, &'static str) {
        if let Some(h) = self
            .method
            .as_ref()
            .and_then(|m| m.supervised.as_ref())
            .and_then(|s| s.hyperparameters.clone())
        {
            return (h, "method.supervised.hyperparameters");
        }
        (
            self.hyperparameters.clone().unwrap_or_default(),
            "hyperparameters",
        )
    }

    /// Checks what needs no lookup.
    pub fn check(&self) -> Result<(), SpecError> {
        if let Some(m) = &self.method {
            if m.kind != "supervised" {
                return Err(err(
                    "method.type",
                    format!("only `supervised` fine-tuning is offered, not `{}`", m.kind),
                ));
            }
        }
        if self.integrations.as_ref().is_some_and(|i| !i.is_empty()) {
            return Err(err(
                "integrations",
                "integrations are not supported by this server",
            ));
        }
        if let Some(s) = &self.suffix {
            if s.is_empty()
                || s.len() > 64
                || !s
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(err(
                    "suffix",
                    "`suffix` must be 1 to 64 characters of [A-Za-z0-9._-]",
                ));
            }
        }
        let (h, at) = self.hyper();
        number(&h.n_epochs, &format!("{at}.n_epochs"), 1.0, 50.0)?;
        number(&h.batch_size, &format!("{at}.batch_size"), 1.0, 256.0)?;
        number(
            &h.learning_rate_multiplier,
            &format!("{at}.learning_rate_multiplier"),
            1e-6,
            100.0,
        )?;
        let p = &self.ptr;
        if !(0.0..=10.0).contains(&p.answer_weight) || p.answer_weight == 0.0 {
            return Err(err(
                "ptr.answer_weight",
                "`ptr.answer_weight` must be > 0 and <= 10",
            ));
        }
        if !(0.0..=10.0).contains(&p.thought_weight) {
            return Err(err(
                "ptr.thought_weight",
                "`ptr.thought_weight` must be between 0 and 10",
            ));
        }
        if !(16..=32_768).contains(&p.max_seq_len) {
            return Err(err(
                "ptr.max_seq_len",
                "`ptr.max_seq_len` must be between 16 and 32768",
            ));
        }
        if p.checkpoint_every == 0 {
            return Err(err(
                "ptr.checkpoint_every",
                "`ptr.checkpoint_every` must be at least 1",
            ));
        }
        if p.max_steps == Some(0) {
            return Err(err("ptr.max_steps", "`ptr.max_steps` must be at least 1"));
        }
        if !(1..=16).contains(&p.rounds) {
            return Err(err("ptr.rounds", "`ptr.rounds` must be between 1 and 16"));
        }
        Ok(())
    }

    /// OpenAI's `hyperparameters` as the job reports them (`auto` resolved).
    pub fn resolved_hyperparameters(&self) -> Hyperparameters {
        let (h, _) = self.hyper();
        let n = |v: &Option<Value>, d: f64| {
            number(v, "", f64::MIN, f64::MAX)
                .ok()
                .flatten()
                .unwrap_or(d)
        };
        Hyperparameters {
            n_epochs: n(&h.n_epochs, 3.0) as u32,
            batch_size: n(&h.batch_size, 1.0) as u32,
            learning_rate_multiplier: n(&h.learning_rate_multiplier, 1.0),
        }
    }

    /// The trainer's configuration for this job.
    pub fn trainer_config(
        &self,
        base_gguf: &std::path::Path,
        training: &std::path::Path,
        validation: Option<&std::path::Path>,
        output_dir: &std::path::Path,
    ) -> Value {
        let h = self.resolved_hyperparameters();
        let p = &self.ptr;
        let lr = p
            .learning_rate
            .unwrap_or(BASE_LEARNING_RATE * h.learning_rate_multiplier);
        let mut hyper = json!({
            "learning_rate": lr,
            "batch_size": h.batch_size,
            "n_epochs": h.n_epochs,
            "max_seq_len": p.max_seq_len,
            "checkpoint_every": p.checkpoint_every,
            "answer_weight": p.answer_weight,
            "thought_weight": p.thought_weight,
            "seed": self.seed.unwrap_or(42),
        });
        for (k, v) in [
            ("max_steps", p.max_steps.map(Value::from)),
            ("warmup_steps", p.warmup_steps.map(Value::from)),
            ("grad_accum", p.grad_accum.map(Value::from)),
            ("lora", p.lora.clone()),
        ] {
            if let Some(v) = v {
                hyper[k] = v;
            }
        }
        json!({
            "base_model_path": base_gguf,
            "training_file": training,
            "validation_file": validation,
            "output_dir": output_dir,
            "hyperparameters": hyper,
        })
    }
}

/// A job's hyperparameters as it reports them, `auto` resolved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Hyperparameters {
    pub n_epochs: u32,
    pub batch_size: u32,
    pub learning_rate_multiplier: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> FineTuneSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn method_hyperparameters_win_and_auto_resolves() {
        let s = spec(
            json!({"model": "m", "training_file": "f", "hyperparameters": {"n_epochs": 9},
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2, "batch_size": "auto"}}}}),
        );
        assert!(s.check().is_ok());
        assert_eq!(s.resolved_hyperparameters().n_epochs, 2);
        assert_eq!(s.resolved_hyperparameters().batch_size, 1);
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                json!({"model": "m", "training_file": "f", "hyperparameters": {"n_epochs": 0}}),
                "hyperparameters.n_epochs",
            ),
            (
                json!({"model": "m", "training_file": "f", "method": {"type": "dpo"}}),
                "method.type",
            ),
            (
                json!({"model": "m", "training_file": "f", "suffix": "a b"}),
                "suffix",
            ),
            (
                json!({"model": "m", "training_file": "f", "ptr": {"answer_weight": 0}}),
                "ptr.answer_weight",
            ),
            (
                json!({"model": "m", "training_file": "f", "ptr": {"max_seq_len": 4}}),
                "ptr.max_seq_len",
            ),
        ];
        for (v, param) in cases {
            assert_eq!(spec(v).check().unwrap_err().param, param);
        }
    }
}
