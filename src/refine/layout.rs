//! The PTR round layout: the one place that says what the conversation of round r looks like.
//!
//! Round 1 is the user's messages. Round r ≥ 2 appends, for every earlier answer, an assistant
//! turn holding that answer in full and a user turn holding the refinement instruction. The
//! server's round loop, `bench-refine`, the dataset job (thoughts become these earlier answers),
//! the trainer (a training line is rendered through it) and the evaluation harness all build
//! rounds here, so a model is trained on exactly the prompts it is served with.

use crate::engine::{ChatMessage, Role};

/// An earlier answer as it appears in later rounds: in full, plus a newline.
///
/// Why the newline: mistral.rs 0.8.1 caches a finished sequence's KV under all its tokens, but
/// the last token (the end-of-turn it sampled) was never fed through the model, so its KV slot is
/// empty. A next prompt that repeats the answer *and* that token matches the whole key, and the
/// engine then reuses the empty slot: greedy output changes. Ending the turn with a newline makes
/// the prompt diverge at that position, so the reused prefix is exactly the computed one. It is
/// part of the layout (not hidden in the engine) so that training lines carry it too.
pub fn earlier_answer(content: &str) -> String {
    format!("{content}\n")
}

/// The messages round `earlier.len() + 1` is generated from: `base`, then each earlier answer
/// followed by the instruction.
pub fn round_messages(
    base: &[ChatMessage],
    earlier: &[&str],
    instruction: &str,
) -> Vec<ChatMessage> {
    let mut messages = base.to_vec();
    for answer in earlier {
        push_round(&mut messages, answer, instruction);
    }
    messages
}

/// Appends one finished round to a conversation: its answer, then the instruction.
pub fn push_round(messages: &mut Vec<ChatMessage>, answer: &str, instruction: &str) {
    messages.push(ChatMessage::new(Role::Assistant, earlier_answer(answer)));
    messages.push(ChatMessage::new(Role::User, instruction));
}

/// One turn of a training conversation with its loss weight (`None` on non-assistant turns).
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedTurn {
    pub message: ChatMessage,
    pub weight: Option<f32>,
}

/// A PTR record as the conversation of its final round plus the answer: `base` → thought 1
/// (weight 0) → instruction → … → thought n (weight 0) → instruction → answer (weight 1).
/// Thoughts are laid out by [`earlier_answer`], exactly as [`round_messages`] lays out answers.
pub fn record_turns(
    base: &[ChatMessage],
    thoughts: &[&str],
    answer: &str,
    instruction: &str,
) -> Vec<WeightedTurn> {
    let mut turns: Vec<WeightedTurn> = base
        .iter()
        .map(|m| WeightedTurn {
            message: m.clone(),
            weight: None,
        })
        .collect();
    for thought in thoughts {
        turns.push(WeightedTurn {
            message: ChatMessage::new(Role::Assistant, earlier_answer(thought)),
            weight: Some(0.0),
        });
        turns.push(WeightedTurn {
            message: ChatMessage::new(Role::User, instruction),
            weight: None,
        });
    }
    turns.push(WeightedTurn {
        message: ChatMessage::new(Role::Assistant, answer),
        weight: Some(1.0),
    });
    turns
}

/// Lays out a training conversation read from a file (thoughts verbatim, as the dataset job
/// writes them) as inference would see it: every assistant turn that is followed by more turns
/// is an earlier answer ([`earlier_answer`]).
pub fn as_served(turns: &[WeightedTurn]) -> Vec<WeightedTurn> {
    let last = turns.len().saturating_sub(1);
    turns
        .iter()
        .enumerate()
        .map(|(i, t)| match t.message.role {
            Role::Assistant if i < last => WeightedTurn {
                message: ChatMessage::new(Role::Assistant, earlier_answer(&t.message.content)),
                weight: t.weight,
            },
            _ => t.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(s: &str) -> ChatMessage {
        ChatMessage::new(Role::User, s)
    }

    #[test]
    fn round_messages_interleave_answers_and_instructions() {
        let m = round_messages(&[user("q")], &["a1", "a2"], "again");
        let roles: Vec<_> = m.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [
                Role::User,
                Role::Assistant,
                Role::User,
                Role::Assistant,
                Role::User
            ]
        );
        assert_eq!(m[1].content, "a1\n");
        assert_eq!(m[4].content, "again");
    }

    #[test]
    fn a_record_is_its_final_round_plus_the_answer() {
        let turns = record_turns(&[user("q")], &["t1", "t2"], "final", "again");
        let context: Vec<_> = turns[..turns.len() - 1]
            .iter()
            .map(|t| t.message.clone())
            .collect();
        assert_eq!(
            context,
            round_messages(&[user("q")], &["t1", "t2"], "again")
        );
        let weights: Vec<_> = turns.iter().map(|t| t.weight).collect();
        assert_eq!(weights, [None, Some(0.0), None, Some(0.0), None, Some(1.0)]);
    }

    #[test]
    fn as_served_leaves_the_final_answer_verbatim() {
        let raw = vec![
            WeightedTurn {
                message: user("q"),
                weight: None,
            },
            WeightedTurn {
                message: ChatMessage::new(Role::Assistant, "t"),
                weight: Some(0.0),
            },
            WeightedTurn {
                message: user("again"),
                weight: None,
            },
            WeightedTurn {
                message: ChatMessage::new(Role::Assistant, "a"),
                weight: Some(1.0),
            },
        ];
        let served = as_served(&raw);
        assert_eq!(served[1].message.content, "t\n");
        assert_eq!(served[3].message.content, "a");
    }
}
