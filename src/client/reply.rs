//! What the client reads back: the server's [`crate::wire`] responses as any OpenAI-compatible
//! server sends them. Only what a caller uses is read; everything that another server may leave
//! out or send as `null` is an `Option` (which serde reads as `None` when the field is missing).
//! ptr-server's `refinement` report is read in the server's own types.

use serde::Deserialize;
use serde_json::Value;

use crate::wire::{RefinementReport, RoundTag};

/// What a chat completion and each of its streamed chunks share: the choices, `usage`, ptr-server's
/// `refinement` (`R`) and an error some servers send with a 2xx status or inside a stream.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reply<C, R> {
    #[serde(default)]
    pub choices: Vec<C>,
    pub usage: Option<TokenCounts>,
    pub refinement: Option<R>,
    pub error: Option<Value>,
}

/// A non-streaming chat completion (the server's `ChatCompletion`); `refinement` holds every round.
pub type Completion = Reply<CompletionChoice, RefinementReport>;

/// A streamed `chat.completion.chunk` (the server's `ChatCompletionChunk`); `refinement` names
/// the round the chunk belongs to.
pub type Chunk = Reply<ChunkChoice, RoundTag>;

impl Completion {
    /// `choices[0].message.content`.
    pub fn content(&self) -> Option<&str> {
        self.choices.first()?.message.as_ref()?.content.as_deref()
    }

    /// `choices[0].finish_reason`.
    pub fn finish_reason(&self) -> Option<&str> {
        self.choices.first()?.finish_reason.as_deref()
    }

    /// `usage.completion_tokens`.
    pub fn completion_tokens(&self) -> Option<u64> {
        self.usage.as_ref()?.completion_tokens
    }
}

/// One choice of a [`Completion`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CompletionChoice {
    pub message: Option<CompletionMessage>,
    pub finish_reason: Option<String>,
}

/// The assistant message of a [`CompletionChoice`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CompletionMessage {
    pub content: Option<String>,
}

/// `usage`, as far as it is given.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct TokenCounts {
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
}

impl Chunk {
    /// `choices[0].delta`, if there is a choice with one.
    pub fn delta(&self) -> Option<&Delta> {
        self.choices.first()?.delta.as_ref()
    }
}

/// One choice of a [`Chunk`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChunkChoice {
    /// Left out or `null` in some servers' last chunk.
    pub delta: Option<Delta>,
}

/// The text a chunk adds. `reasoning` is the name newer vLLM releases use for
/// `reasoning_content`; ptr-server sends both.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Delta {
    pub content: Option<String>,
    pub reasoning_content: Option<String>,
    pub reasoning: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{
        AssistantMessage, ChatCompletion, ChatCompletionChunk, Choice, ChunkChoice as WireChoice,
        ChunkDelta, RoundReport, Usage,
    };

    /// The views read what the server writes.
    #[test]
    fn reads_the_servers_own_responses() {
        let round = RoundReport {
            round: 1,
            content: "4".into(),
            finish_reason: "stop".into(),
            prompt_tokens: 9,
            completion_tokens: 2,
            elapsed_ms: 30,
            ttft_ms: Some(10),
            changed: true,
        };
        let completion = ChatCompletion {
            id: "c".into(),
            object: "chat.completion",
            created: 0,
            model: "m".into(),
            system_fingerprint: "f".into(),
            choices: vec![Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: "4".into(),
                    reasoning_content: None,
                },
                finish_reason: "stop".into(),
                logprobs: None,
            }],
            usage: Usage::new(9, 2),
            refinement: crate::wire::RefinementReport {
                rounds: vec![round],
                stop_reason: "rounds_done".into(),
            },
        };
        let read: Completion =
            serde_json::from_value(serde_json::to_value(&completion).unwrap()).unwrap();
        assert_eq!(
            (
                read.content(),
                read.finish_reason(),
                read.completion_tokens()
            ),
            (Some("4"), Some("stop"), Some(2))
        );
        let rounds = read.refinement.expect("the refinement report").rounds;
        assert_eq!((rounds[0].round, rounds[0].ttft_ms), (1, Some(10)));

        let chunk = ChatCompletionChunk {
            id: "c".into(),
            object: "chat.completion.chunk",
            created: 0,
            model: "m".into(),
            system_fingerprint: "f".into(),
            choices: vec![WireChoice {
                index: 0,
                delta: ChunkDelta {
                    reasoning_content: Some("x".into()),
                    reasoning: Some("x".into()),
                    ..ChunkDelta::default()
                },
                finish_reason: None,
                logprobs: None,
            }],
            usage: None,
            refinement: RoundTag { round: 2 },
        };
        let read: Chunk = serde_json::from_value(serde_json::to_value(&chunk).unwrap()).unwrap();
        let delta = read.delta().expect("a choice");
        assert_eq!(delta.reasoning_content.as_deref(), Some("x"));
        assert_eq!(read.refinement.map(|r| r.round), Some(2));
    }

    /// Other servers leave much out.
    #[test]
    fn reads_sparse_answers() {
        let read: Completion = serde_json::from_str(
            r#"{"choices":[{"message":{"content":"hi"},"finish_reason":null}],"usage":{"completion_tokens":7}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                read.content(),
                read.finish_reason(),
                read.completion_tokens()
            ),
            (Some("hi"), None, Some(7))
        );
        let read: Chunk = serde_json::from_str(r#"{"choices":[],"usage":null}"#).unwrap();
        assert!(read.delta().is_none() && read.usage.is_none());
        for last in [
            r#"{"choices":[{"delta":null,"finish_reason":"stop"}]}"#,
            r#"{"choices":[{"finish_reason":"stop"}],"usage":{"completion_tokens":3}}"#,
        ] {
            let read: Chunk = serde_json::from_str(last).unwrap();
            assert!(read.delta().is_none() && read.error.is_none(), "{last}");
        }
    }
}
