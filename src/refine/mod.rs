//! Progressive Thought Refinement at inference time: the round loop.
//!
//! Round 1 answers the user's messages. Round r ≥ 2 is generated from the same messages, every
//! earlier answer in full as an assistant turn, each followed by a user turn holding the
//! refinement instruction. So round r's prompt starts with round r−1's prompt and answer, which
//! lets the engine's prefix cache reuse that work.
//!
//! The loop is engine-agnostic (it sees only [`crate::engine::Engine`]) and emits
//! [`RefineEvent`]s; the HTTP layer maps them to OpenAI chunks or named SSE events. Dropping the
//! event stream stops the loop and the engine work at once.

use serde::{Deserialize, Serialize};

mod converge;
pub mod layout;
pub mod observe;
mod run;

pub use converge::same_answer;
pub use observe::{Observer, RequestObserver};
pub use run::Refiner;

use crate::engine::{EngineError, FinishReason};

/// The PTR authors' refinement instruction, used every round.
pub const DEFAULT_INSTRUCTION: &str =
    "Please further think about and give me a more precise and professional answer.";

/// Refinement settings a request inherits when its `refinement` object leaves them out.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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

/// What a request sets of its refinement; `None` takes the model's default.
#[derive(Debug, Clone, Default)]
pub struct PlanAsk {
    pub rounds: Option<u32>,
    pub instruction: Option<String>,
    pub early_stop: Option<bool>,
    pub max_total_tokens: Option<u32>,
}

/// How a request is refined, after defaults and validation.
#[derive(Debug, Clone, PartialEq)]
pub struct RefinePlan {
    /// The settings in force: what the request set, else the model's defaults.
    pub settings: RefinementDefaults,
    /// Round 1's prompt tokens, as counted by the validation step.
    pub first_prompt_tokens: u32,
}

impl RefinePlan {
    /// The plan of a request: what it sets wins, else the model's `defaults`, whose round count
    /// is capped at `cap` (the server's limit; a requested count was checked against it).
    pub fn resolve(
        asked: PlanAsk,
        defaults: RefinementDefaults,
        cap: u32,
        first_prompt_tokens: u32,
    ) -> Self {
        let settings = RefinementDefaults {
            rounds: asked.rounds.unwrap_or(defaults.rounds.min(cap)),
            instruction: asked.instruction.unwrap_or(defaults.instruction),
            early_stop: asked.early_stop.unwrap_or(defaults.early_stop),
            max_total_tokens: asked.max_total_tokens.or(defaults.max_total_tokens),
        };
        Self {
            settings,
            first_prompt_tokens,
        }
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Every requested round ran.
    RoundsDone,
    /// A round repeated the previous one (early stop).
    Converged,
    /// The token budget would be exceeded by another round.
    Budget,
    /// The next round's prompt no longer fits the context.
    Length,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundsDone => "rounds_done",
            Self::Converged => "converged",
            Self::Budget => "budget",
            Self::Length => "length",
        }
    }
}

/// One finished round.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundRecord {
    pub round: u32,
    pub content: String,
    pub finish_reason: FinishReason,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub elapsed_ms: u64,
    /// Time from the round's start to its first token.
    pub ttft_ms: Option<u64>,
    /// Whether the answer differs from the previous round's (after normalisation).
    pub changed: bool,
}

/// The whole refinement, once it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct RefineSummary {
    pub rounds: Vec<RoundRecord>,
    pub stop_reason: StopReason,
}

impl RefineSummary {
    /// The answer: the last round's.
    pub fn final_round(&self) -> &RoundRecord {
        self.rounds
            .last()
            .expect("a refinement has at least one round: this is a bug")
    }

    pub fn prompt_tokens(&self) -> u32 {
        self.rounds.iter().map(|r| r.prompt_tokens).sum()
    }

    pub fn completion_tokens(&self) -> u32 {
        self.rounds.iter().map(|r| r.completion_tokens).sum()
    }
}

/// What the loop reports as it runs.
#[derive(Debug, Clone)]
pub enum RefineEvent {
    /// A round begins. `last` is true when it is certainly the final round (round N of N);
    /// a round with `last == false` may still end the loop through an early stop.
    RoundStarted {
        round: u32,
        last: bool,
    },
    /// New text of the current round.
    Delta {
        round: u32,
        text: String,
    },
    RoundCompleted(RoundRecord),
    Completed(RefineSummary),
    /// The engine failed; nothing follows.
    Failed(EngineError),
}

#[cfg(test)]
mod tests;
