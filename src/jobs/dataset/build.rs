//! [`Builder`]: one query in, one record out — the weak model's thoughts (each round laid out by
//! [`crate::refine::layout`], exactly as the server's refinement loop does), the strong model's
//! k answer samples, the filter's scores and verdict, the training line and its provenance.

use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use super::filter::{self, Scores, TextEmbedder};
use super::generate::Generator;
use super::icl::{self, IclExample};
use super::input::Query;
use super::spec::FilterSpec;
use crate::chatfile;
use crate::engine::{ChatMessage, Role, Sampling};
use crate::refine::layout;

/// One role: its generator, its sampling, and a name for provenance.
#[derive(Clone)]
pub struct RoleSetup {
    pub generator: Generator,
    pub sampling: Sampling,
    /// `model` or `model@base_url`.
    pub name: String,
}

/// Everything that turns queries into records.
#[derive(Clone)]
pub struct Builder {
    pub weak: RoleSetup,
    pub strong: RoleSetup,
    pub n_thoughts: u32,
    pub instruction: String,
    pub examples: Vec<IclExample>,
    pub filter: FilterSpec,
    pub embedder: Arc<dyn TextEmbedder>,
    /// Pulls a final number out of an answer (for gold checks).
    pub extract: fn(&str) -> Option<String>,
}

/// A finished record.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    pub accepted: bool,
    /// The training line (accepted) or the rejected record with its reason.
    pub line: Value,
    pub provenance: Value,
    pub scores: Option<Scores>,
}

impl Builder {
    /// Generates and judges one record.
    pub async fn build(&self, q: &Query) -> Result<Built, String> {
        let started = Instant::now();
        let base = [ChatMessage::new(Role::User, q.question.clone())];
        let mut thoughts: Vec<String> = Vec::new();
        let mut tokens = 0u64;
        for _ in 0..self.n_thoughts {
            let earlier: Vec<&str> = thoughts.iter().map(String::as_str).collect();
            let messages = layout::round_messages(&base, &earlier, &self.instruction);
            let g = self
                .weak
                .generator
                .generate(&messages, &self.weak.sampling)
                .await
                .map_err(|e| format!("weak model: {e}"))?;
            tokens += (g.prompt_tokens + g.completion_tokens) as u64;
            thoughts.push(g.text.trim().to_string());
        }
        let thought_refs: Vec<&str> = thoughts.iter().map(String::as_str).collect();
        let strong_messages = icl::strong_messages(&self.examples, &q.question, &thought_refs);
        let mut samples = Vec::with_capacity(self.filter.k as usize);
        for _ in 0..self.filter.k {
            let g = self
                .strong
                .generator
                .generate(&strong_messages, &self.strong.sampling)
                .await
                .map_err(|e| format!("strong model: {e}"))?;
            tokens += (g.prompt_tokens + g.completion_tokens) as u64;
            samples.push(g.text.trim().to_string());
        }
        let embedder = self.embedder.clone();
        let (last, gold, extract) = (
            thoughts.last().cloned().unwrap_or_default(),
            q.gold.clone(),
            self.extract,
        );
        let scored_samples = samples.clone();
        let limits = self.filter.copy_limits();
        let scores = tokio::task::spawn_blocking(move || {
            filter::score(
                embedder.as_ref(),
                &scored_samples,
                &last,
                gold.as_deref(),
                extract,
                limits,
            )
        })
        .await
        .map_err(|e| format!("scoring failed: {e}"))??;
        let verdict = filter::judge(&self.filter, &scores);
        let answer = &samples[0];
        let provenance = json!({
            "custom_id": q.custom_id,
            "weak": {"model": self.weak.name, "temperature": self.weak.sampling.temperature, "top_p": self.weak.sampling.top_p, "max_tokens": self.weak.sampling.max_tokens},
            "strong": {"model": self.strong.name, "temperature": self.strong.sampling.temperature, "top_p": self.strong.sampling.top_p, "max_tokens": self.strong.sampling.max_tokens, "icl_examples": self.examples.len()},
            "instruction": self.instruction,
            "scores": scores,
            "samples": samples,
            "gold": q.gold,
            "tokens": tokens,
            "elapsed_ms": started.elapsed().as_millis() as u64,
        });
        let turns = layout::record_turns(&base, &thought_refs, answer, &self.instruction);
        let line = match verdict {
            None => chatfile::to_line(&turns),
            Some(r) => {
                json!({"custom_id": q.custom_id, "reason": r.as_str(), "scores": scores, "messages": chatfile::to_line(&turns)["messages"]})
            }
        };
        Ok(Built {
            accepted: verdict.is_none(),
            line,
            provenance,
            scores: Some(scores),
        })
    }
}

/// An existing record turned into a training line without generating (`import`): the PTR
/// sample's `output1` is the thought and `output2` the answer.
pub fn import(q: &Query, instruction: &str) -> Built {
    let base = [ChatMessage::new(Role::User, q.question.clone())];
    let provenance =
        json!({"custom_id": q.custom_id, "imported": true, "instruction": instruction});
    match (&q.thought, &q.reference) {
        (Some(thought), Some(answer)) => Built {
            accepted: true,
            line: chatfile::to_line(&layout::record_turns(
                &base,
                &[thought.as_str()],
                answer,
                instruction,
            )),
            provenance,
            scores: None,
        },
        _ => Built {
            accepted: false,
            line: json!({"custom_id": q.custom_id, "reason": "no_thought_to_import"}),
            provenance,
            scores: None,
        },
    }
}
