//! Training lines → token ids and per-token loss weights.
//!
//! A line is OpenAI chat JSONL (`{"messages":[{"role","content","weight"?}]}`, assistant weight
//! 0 or 1, default 1). It is laid out by [`layout::as_served`] (earlier assistant turns exactly
//! as later refinement rounds show them) and rendered with the model's chat template. Weights:
//! 0 on system/user/template tokens, `answer_weight` on weight-1 assistant turns (content and
//! end-of-turn), `thought_weight`·t/n on the t-th of n weight-0 turns. A line over `max_seq_len`
//! loses its earliest thought (with the instruction after it) until it fits; then it is skipped.

use std::path::Path;

use anyhow::Context;
use tokenizers::Tokenizer;

use super::tokenizer::{encode_segments, ChatTemplate};
use crate::engine::{ChatMessage, Role};
use crate::refine::layout::{as_served, WeightedTurn};

/// One tokenised training sequence; `weights[p]` is the loss weight of token `p` as a label.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub ids: Vec<u32>,
    pub weights: Vec<f32>,
}

/// Turns lines into [`Example`]s for one model.
pub struct Encoder {
    pub tokenizer: Tokenizer,
    pub template: ChatTemplate,
    pub max_len: usize,
    pub answer_weight: f32,
    pub thought_weight: f32,
}

/// Why a line yields no example.
#[derive(Debug, Clone, PartialEq)]
pub enum Skip {
    TooLong,
    Invalid(String),
}

impl Encoder {
    /// The loss weight of each turn (see the module docs).
    fn loss_weights(&self, turns: &[WeightedTurn]) -> Vec<f32> {
        let n = turns.iter().filter(|t| t.weight == Some(0.0)).count();
        let mut t = 0;
        turns
            .iter()
            .map(|turn| match turn.weight {
                Some(w) if w > 0.0 => self.answer_weight,
                Some(_) => {
                    t += 1;
                    self.thought_weight * t as f32 / n as f32
                }
                None => 0.0,
            })
            .collect()
    }

    /// Encodes one conversation, dropping earliest thoughts to fit.
    pub fn encode(&self, turns: &[WeightedTurn]) -> Result<Example, Skip> {
        if turns.last().map(|t| t.message.role) != Some(Role::Assistant) {
            return Err(Skip::Invalid(
                "the last message is not an assistant message".into(),
            ));
        }
        let mut turns = as_served(turns);
        let mut weights = self.loss_weights(&turns);
        if !weights.iter().any(|&w| w > 0.0) {
            return Err(Skip::Invalid(
                "no assistant message carries a loss weight".into(),
            ));
        }
        loop {
            let messages: Vec<ChatMessage> = turns.iter().map(|t| t.message.clone()).collect();
            let segments = self.template.render(&messages, &weights, false);
            let (ids, w) = encode_segments(&self.tokenizer, &segments)
                .map_err(|e| Skip::Invalid(e.to_string()))?;
            if ids.len() <= self.max_len {
                return Ok(Example { ids, weights: w });
            }
            // The earliest thought followed by its instruction; never the final answer.
            let drop = (0..turns.len().saturating_sub(2))
                .find(|&i| turns[i].weight == Some(0.0) && turns[i + 1].message.role == Role::User);
            let Some(i) = drop else {
                return Err(Skip::TooLong);
            };
            turns.drain(i..i + 2);
            weights.drain(i..i + 2);
        }
    }
}

/// The examples of a JSONL file and the lines it skipped (1-based line number, reason).
pub struct Dataset {
    pub examples: Vec<Example>,
    pub skipped: Vec<(usize, Skip)>,
}

/// Reads and encodes a JSONL file; blank lines are ignored.
pub fn load(path: &Path, enc: &Encoder) -> anyhow::Result<Dataset> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut ds = Dataset {
        examples: vec![],
        skipped: vec![],
    };
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let result = crate::chatfile::parse_line(line)
            .map_err(|e| Skip::Invalid(format!("{e:#}")))
            .and_then(|turns| enc.encode(&turns));
        match result {
            Ok(ex) => ds.examples.push(ex),
            Err(skip) => ds.skipped.push((i + 1, skip)),
        }
    }
    Ok(ds)
}
