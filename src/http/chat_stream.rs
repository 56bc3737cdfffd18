//! The streaming form of `/v1/chat/completions`.
//!
//! How rounds map onto an OpenAI stream: a round that is certainly the last (round N of N) streams
//! live as `delta.content`. Any other round streams as `delta.reasoning_content` (and
//! `delta.reasoning`) under a `[Round k]` header, because it may or may not be followed by another
//! round. If the loop stops early (converged, budget, length), the final answer — the last round's
//! text — is then sent as `content` in one delta. So text sent as `content` is never taken back,
//! and a stock client that ignores the extra fields sees exactly the refined answer.

use axum::response::sse::Event;
use axum::response::Response;
use futures::{Stream, StreamExt};
use serde::Serialize;

use super::completion::{fingerprint, round_header, CompletionMeta, ROUND_END};
use super::sse::StreamGuard;
use crate::error::ApiError;
use crate::refine::RefineEvent;
use crate::wire::{ChatCompletionChunk, ChunkChoice, ChunkDelta, RoundTag, Usage};

fn data<T: Serialize>(value: &T) -> Event {
    Event::default()
        .data(serde_json::to_string(value).expect("wire types serialise: this is a bug"))
}

struct Chunker {
    meta: CompletionMeta,
    fingerprint: String,
}

impl Chunker {
    fn chunk(
        &self,
        round: u32,
        delta: ChunkDelta,
        finish: Option<&str>,
        usage: Option<Usage>,
    ) -> Event {
        let choices = if usage.is_some() {
            vec![]
        } else {
            vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish.map(str::to_string),
                logprobs: None,
            }]
        };
        data(&ChatCompletionChunk {
            id: self.meta.id.clone(),
            object: "chat.completion.chunk",
            created: self.meta.created,
            model: self.meta.model.clone(),
            system_fingerprint: self.fingerprint.clone(),
            choices,
            usage,
            refinement: RoundTag { round },
        })
    }

    fn content(&self, round: u32, text: String) -> Event {
        self.chunk(
            round,
            ChunkDelta {
                content: Some(text),
                ..Default::default()
            },
            None,
            None,
        )
    }

    fn reasoning(&self, round: u32, text: String) -> Event {
        let delta = ChunkDelta {
            reasoning_content: Some(text.clone()),
            reasoning: Some(text),
            ..Default::default()
        };
        self.chunk(round, delta, None, None)
    }
}

/// The SSE response for a streamed chat completion, bounded by `guard` (see [`super::sse`]).
pub fn respond(
    events: impl Stream<Item = RefineEvent> + Send + 'static,
    meta: CompletionMeta,
    include_usage: bool,
    guard: StreamGuard,
) -> Response {
    let c = Chunker {
        meta,
        fingerprint: fingerprint(),
    };
    let request_id = guard.request_id.clone();
    let on_cut = |e: ApiError| vec![data(&e.envelope()), Event::default().data("[DONE]")];
    let stream = async_stream::stream! {
        let mut events = std::pin::pin!(events);
        let role = ChunkDelta { role: Some("assistant"), content: Some(String::new()), ..Default::default() };
        yield c.chunk(1, role, None, None);
        let mut live_content = false;
        while let Some(event) = events.next().await {
            match event {
                RefineEvent::RoundStarted { round, last } => {
                    live_content = last;
                    if !last {
                        yield c.reasoning(round, round_header(round));
                    }
                }
                RefineEvent::Delta { round, text } if live_content => yield c.content(round, text),
                RefineEvent::Delta { round, text } => yield c.reasoning(round, text),
                RefineEvent::RoundCompleted(r) if !live_content => {
                    yield c.reasoning(r.round, ROUND_END.to_string());
                }
                RefineEvent::RoundCompleted(_) => {}
                RefineEvent::Completed(summary) => {
                    let last = summary.final_round();
                    if !live_content {
                        yield c.content(last.round, last.content.clone());
                    }
                    yield c.chunk(last.round, ChunkDelta::default(), Some(last.finish_reason.as_str()), None);
                    if include_usage {
                        let usage = Usage::new(summary.prompt_tokens(), summary.completion_tokens());
                        yield c.chunk(last.round, ChunkDelta::default(), None, Some(usage));
                    }
                    yield Event::default().data("[DONE]");
                    return;
                }
                RefineEvent::Failed(e) => {
                    yield data(&ApiError::from(e).with_request_id(&request_id).envelope());
                    yield Event::default().data("[DONE]");
                    return;
                }
            }
        }
    };
    super::sse::respond(stream, guard, on_cut)
}
