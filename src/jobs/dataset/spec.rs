//! What a dataset job is asked to do (`POST /admin/v1/datasets/jobs`, or `build-dataset`), with
//! its defaults and the checks made before the job is accepted.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::input::InputFormat;
pub use crate::jobs::SpecError;

/// The dataset job's request body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// The file id of the queries.
    pub input_file: String,
    /// The records' shape [default: `auto`, detected record by record].
    #[serde(default)]
    pub input_format: InputFormat,
    /// Use at most this many queries (the first ones).
    pub limit: Option<usize>,
    /// The model writing the thoughts. Not needed with `import`.
    pub weak: Option<RoleSpec>,
    /// The model writing the final answers. Not needed with `import`.
    pub strong: Option<RoleSpec>,
    /// Thoughts per query (the weak model's rounds).
    #[serde(default = "default_thoughts")]
    pub n_thoughts: u32,
    /// The refinement instruction between rounds [default: the PTR authors'].
    pub instruction: Option<String>,
    #[serde(default)]
    pub filter: FilterSpec,
    /// Queries worked on at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Turn an existing file of `ptr_sample` records (or `wizardlm`, whose output becomes the
    /// answer with no thoughts — rejected) into a dataset without generating anything.
    #[serde(default)]
    pub import: bool,
    pub suffix: Option<String>,
    pub metadata: Option<serde_json::Value>,
}

/// One role's model: served here (`model` only) or remote (`base_url` + `model`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub model: String,
    /// An OpenAI-compatible endpoint, e.g. `http://vllm:8000/v1`.
    pub base_url: Option<String>,
    /// The environment variable holding the endpoint's API key (read by the server).
    pub api_key_env: Option<String>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u32>,
    /// A file id of in-context examples (strong role only) replacing the built-in set.
    pub icl_examples_file: Option<String>,
    /// How many in-context examples to show (strong role only).
    pub icl_examples: Option<usize>,
}

/// The thought–answer consistency filter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct FilterSpec {
    /// Samples of the strong answer compared with each other.
    pub k: u32,
    /// Keep a record when the samples' mean pairwise cosine similarity is at least this.
    pub threshold: f32,
    /// With gold answers (GSM8K): the answer's number must equal the gold number.
    pub gold_check: bool,
    /// Reject an answer whose embedding cosine to the last thought is at least this (a copy).
    pub copy_threshold: f32,
    /// … or whose text overlap with it (character bigrams) is at least this.
    pub copy_text_threshold: f32,
}

/// The default similarity threshold; see README "Building a PTR dataset" for the measured
/// distribution it was chosen from.
pub const DEFAULT_THRESHOLD: f32 = 0.8;

impl Default for FilterSpec {
    fn default() -> Self {
        Self {
            k: 3,
            threshold: DEFAULT_THRESHOLD,
            gold_check: true,
            copy_threshold: crate::embed::score::CopyLimits::default().cosine,
            copy_text_threshold: crate::embed::score::CopyLimits::default().text,
        }
    }
}

fn default_thoughts() -> u32 {
    2
}

fn default_concurrency() -> usize {
    2
}

fn err(param: &str, message: impl Into<String>) -> SpecError {
    SpecError::new(param, message)
}

impl FilterSpec {
    /// The near-copy limits.
    pub fn copy_limits(&self) -> crate::embed::score::CopyLimits {
        crate::embed::score::CopyLimits {
            cosine: self.copy_threshold,
            text: self.copy_text_threshold,
        }
    }
}

impl DatasetSpec {
    /// Checks what needs no lookup (numbers, required roles, URLs).
    pub fn check(&self) -> Result<(), SpecError> {
        if !(1..=16).contains(&self.n_thoughts) {
            return Err(err("n_thoughts", "`n_thoughts` must be between 1 and 16"));
        }
        if !(1..=64).contains(&self.concurrency) {
            return Err(err("concurrency", "`concurrency` must be between 1 and 64"));
        }
        if self.limit == Some(0) {
            return Err(err("limit", "`limit` must be at least 1"));
        }
        let f = &self.filter;
        if !(1..=16).contains(&f.k) {
            return Err(err("filter.k", "`filter.k` must be between 1 and 16"));
        }
        if !(-1.0..=1.0).contains(&f.threshold) {
            return Err(err(
                "filter.threshold",
                "`filter.threshold` is a cosine similarity in [-1, 1]",
            ));
        }
        if !(0.0..=1.0).contains(&f.copy_text_threshold) {
            return Err(err(
                "filter.copy_text_threshold",
                "`filter.copy_text_threshold` is a text overlap in [0, 1]",
            ));
        }
        if !(-1.0..=1.0).contains(&f.copy_threshold) {
            return Err(err(
                "filter.copy_threshold",
                "`filter.copy_threshold` is a cosine similarity in [-1, 1]",
            ));
        }
        if self
            .instruction
            .as_deref()
            .is_some_and(|i| i.trim().is_empty())
        {
            return Err(err("instruction", "`instruction` must not be empty"));
        }
        if self.import {
            return Ok(());
        }
        for (name, role) in [("weak", &self.weak), ("strong", &self.strong)] {
            let Some(role) = role else {
                return Err(err(
                    name,
                    format!(
                        "`{name}` is required (a model served here, or `base_url` and `model`)"
                    ),
                ));
            };
            role.check(name)?;
        }
        Ok(())
    }

    /// The instruction, defaulted.
    pub fn instruction(&self) -> &str {
        self.instruction
            .as_deref()
            .unwrap_or(crate::refine::DEFAULT_INSTRUCTION)
    }
}

impl RoleSpec {
    fn check(&self, name: &str) -> Result<(), SpecError> {
        if self.model.trim().is_empty() {
            return Err(err(&format!("{name}.model"), "`model` must not be empty"));
        }
        if let Some(t) = self.temperature {
            if !(0.0..=2.0).contains(&t) {
                return Err(err(
                    &format!("{name}.temperature"),
                    "`temperature` must be between 0 and 2",
                ));
            }
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(err(
                    &format!("{name}.top_p"),
                    "`top_p` must be > 0 and <= 1",
                ));
            }
        }
        if self.max_tokens == Some(0) || self.max_tokens.is_some_and(|m| m > 32_768) {
            return Err(err(
                &format!("{name}.max_tokens"),
                "`max_tokens` must be between 1 and 32768",
            ));
        }
        if let Some(url) = &self.base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(err(
                    &format!("{name}.base_url"),
                    "`base_url` must be an http(s) URL",
                ));
            }
        } else if self.api_key_env.is_some() {
            return Err(err(
                &format!("{name}.api_key_env"),
                "`api_key_env` needs `base_url`",
            ));
        }
        if let Some(var) = &self.api_key_env {
            if std::env::var(var).is_err() {
                return Err(err(
                    &format!("{name}.api_key_env"),
                    format!("the server has no environment variable `{var}`"),
                ));
            }
        }
        if name == "weak" && (self.icl_examples_file.is_some() || self.icl_examples.is_some()) {
            return Err(err(
                "weak.icl_examples_file",
                "in-context examples are for the strong role",
            ));
        }
        Ok(())
    }
}
