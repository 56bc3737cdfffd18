//! The benchmark tasks: how a record of each data file becomes an [`Item`] (a zero-shot prompt
//! and a gold answer), and how an answer is scored against it.
//!
//! Each task is one small module with its prompt and its answer extraction documented there:
//! [`gsm8k`] (a number), and the multiple-choice tasks [`arc`], [`commonsenseqa`], [`mmlu`] and
//! [`winogrande`], which all lay their options out as letters and share [`choice`]'s prompt and
//! letter extraction. The harness takes any file of these shapes, not only the reference files.

pub mod arc;
pub mod choice;
pub mod commonsenseqa;
pub mod gsm8k;
pub mod mmlu;
pub mod winogrande;

use std::fmt;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// A task id, as given to `--task`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// GSM8K-style JSONL: `question`, `answer` with the gold number after `####`.
    Gsm8k,
    /// ARC-style JSONL: `question.stem`, `question.choices[{label,text}]`, `answerKey`.
    Arc,
    /// CommonsenseQA JSONL, the same shape as ARC.
    Commonsenseqa,
    /// MMLU-style CSV without a header: question, four options, answer letter.
    Mmlu,
    /// Winogrande JSONL: `sentence` with `_`, `option1`, `option2`, `answer` ("1"/"2").
    Winogrande,
}

/// One question, ready to ask.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Stable within its file: the record's own id where it has one, else its 1-based position.
    pub id: String,
    /// The user turn of round 1.
    pub prompt: String,
    /// The normalised gold answer: a number for GSM8K, an option letter otherwise.
    pub gold: String,
    /// Multiple choice: the option texts, in letter order (A, B, …). Empty for GSM8K.
    pub options: Vec<String>,
}

impl TaskKind {
    /// The id used on the command line and in the outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gsm8k => "gsm8k",
            Self::Arc => "arc",
            Self::Commonsenseqa => "commonsenseqa",
            Self::Mmlu => "mmlu",
            Self::Winogrande => "winogrande",
        }
    }

    /// What ends the user turn of round 1: how the answer is asked for.
    pub fn answer_instruction(self) -> &'static str {
        match self {
            Self::Gsm8k => gsm8k::INSTRUCTION,
            _ => choice::INSTRUCTION,
        }
    }

    /// Parses a whole data file into items, in file order.
    pub fn load(self, text: &str) -> anyhow::Result<Vec<Item>> {
        let items = match self {
            Self::Mmlu => mmlu::load(text)?,
            _ => {
                let mut items = Vec::new();
                for (index, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let record: Value = serde_json::from_str(line)
                        .with_context(|| format!("line {}: not JSON", index + 1))?;
                    let position = items.len() + 1;
                    let item = match self {
                        Self::Gsm8k => gsm8k::item(&record, position),
                        Self::Arc => arc::item(&record, position),
                        Self::Commonsenseqa => commonsenseqa::item(&record, position),
                        Self::Winogrande => winogrande::item(&record, position),
                        Self::Mmlu => unreachable!("MMLU files are CSV, handled above"),
                    };
                    items.push(item.with_context(|| {
                        format!("line {}: not a {} record", index + 1, self.as_str())
                    })?);
                }
                items
            }
        };
        anyhow::ensure!(
            !items.is_empty(),
            "the file holds no {} records",
            self.as_str()
        );
        Ok(items)
    }

    /// The answer this task reads out of a model's reply, normalised like [`Item::gold`];
    /// `None` when the reply names none (or, for multiple choice, names several).
    pub fn extract(self, item: &Item, reply: &str) -> Option<String> {
        match self {
            Self::Gsm8k => gsm8k::extract(reply),
            _ => choice::extract(reply, &item.options).map(String::from),
        }
    }
}

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string field of a JSON record, named in the error when missing.
fn text_field<'a>(record: &'a Value, pointer: &str) -> anyhow::Result<&'a str> {
    record
        .pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("no string at `{pointer}`"))
}

/// The record's `id` field when it has one, else its position.
fn record_id(record: &Value, field: &str, position: usize) -> String {
    match record.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => position.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod testdata {
    //! Real records copied from the reference data files (`../shared/data/eval/`) into
    //! `tests/data/eval/`, so the tests need nothing outside the repository.

    pub const GSM8K: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eval/gsm8k_test.jsonl"
    ));
    pub const ARC: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eval/arc_challenge_test.jsonl"
    ));
    pub const CSQA: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eval/commonsenseqa_dev.jsonl"
    ));
    pub const WINOGRANDE: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eval/winogrande_dev.jsonl"
    ));
}
