//! [`MistralStream`]: one generation read off mistral.rs's response channel as engine events.
//!
//! The channel is sized so the engine never waits on a slow client (it would stall every
//! sequence in the batch). Cancellation: when the stream is dropped early, the receiver is
//! closed, the engine's next send fails and it cancels the sequence; a reaper task drains what
//! was already in flight and releases the sequence in [`EngineStats`] only once the engine has
//! dropped its sender. A greedy
//! generation also collects its token ids, and its `Finished` event carries them as a
//! [`crate::engine::Continuation`] so that the next round can continue the answer token-exactly
//! (see [`super::continuation`]).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use mistralrs::core::ResponseLogprob;
use mistralrs::{Model, Response};
use tokio::sync::mpsc;

use super::continuation::{continue_later, Finished};
use super::recycle::Recycler;
use super::{ChatMessage, EngineError, EngineEvent, EngineStats, Finish, FinishReason};

/// How long a cancelled sequence may take to be released before we give up waiting.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(60);

/// What a greedy generation needs to be continued token-exactly.
pub struct Recorder {
    pub messages: Vec<ChatMessage>,
    pub prompt_ids: Arc<Vec<u32>>,
    /// The template's own ids of `messages` (see [`Finished::canonical_ids`]).
    pub canonical_ids: Arc<Vec<u32>>,
    pub ids: Vec<u32>,
    /// The extra token sampled after a cut-off answer (not part of it).
    pub next_id: Option<u32>,
    pub text: String,
}

/// The generation stream over the engine's response channel.
pub struct MistralStream {
    pub rx: Option<mpsc::Receiver<Response>>,
    pub pending: VecDeque<Result<EngineEvent, EngineError>>,
    /// Keeps the engine this sequence runs on alive even if a fresh one was swapped in.
    pub model: Arc<Model>,
    pub engine: Arc<Recycler>,
    pub stats: Arc<EngineStats>,
    /// Prompt length when the engine does not report usage (token-id prompts).
    pub prompt_tokens: u32,
    pub steps: u32,
    pub done: bool,
    pub recorder: Option<Recorder>,
    /// `Some(max_tokens)` when the engine was asked for one token more than the caller wants.
    pub extra_token: Option<u32>,
}

impl MistralStream {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.rx = None;
            self.stats.sequence_released();
            self.engine.sequence_done();
        }
    }

    fn record(&mut self, text: &str, logprobs: Option<&ResponseLogprob>) {
        let Some(rec) = self.recorder.as_mut() else {
            return;
        };
        rec.text.push_str(text);
        match logprobs.and_then(|l| l.top_logprobs.first()) {
            Some(top) => rec.ids.push(top.token),
            // Without the id the answer cannot be continued token-exactly.
            None => self.recorder = None,
        }
    }

    /// One step of output: text, its logprobs, and maybe the end.
    fn step(
        &mut self,
        text: Option<String>,
        logprobs: Option<&ResponseLogprob>,
        finish: Option<String>,
        usage: Option<(u32, u32)>,
    ) -> bool {
        self.steps += 1;
        let text = text.unwrap_or_default();
        // The token past `max_tokens`, asked for only so that the last real token is fed through
        // the model (see `extra_token`): it is not part of the answer, whatever ended the
        // sequence there (the length, or an end-of-turn or stop string the caller's limit would
        // never have reached), and the answer counts as cut off at `max_tokens`.
        let generated = usage.map_or(self.steps, |(_, completion)| completion);
        let extra = is_extra_token(finish.is_some(), self.extra_token, generated);
        if extra {
            let next = logprobs
                .and_then(|l| l.top_logprobs.first())
                .map(|t| t.token);
            if let Some(rec) = self.recorder.as_mut() {
                rec.next_id = next;
            }
        } else {
            self.record(&text, logprobs);
            if !text.is_empty() {
                self.pending.push_back(Ok(EngineEvent::Delta(text)));
            }
        }
        let Some(reason) = finish else { return false };
        let reason = if extra || reason == "length" {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let (prompt_tokens, mut completion_tokens) =
            usage.unwrap_or((self.prompt_tokens, self.steps));
        if let Some(max) = self.extra_token {
            completion_tokens = completion_tokens.min(max);
        }
        // Only an answer whose every token was fed through the model can be continued: one that
        // ended on its own (its end-of-turn is replaced by the next turn's text) or one cut after
        // an extra token. Otherwise the cached sequence ends in a token with no KV, and a prompt
        // repeating it would reuse that empty slot.
        let continuation = self.recorder.take().and_then(|rec| {
            let complete = reason == FinishReason::Stop || extra;
            (complete && rec.prompt_ids.len() as u32 == prompt_tokens).then(|| {
                let finished = Finished {
                    messages: rec.messages,
                    prompt_ids: rec.prompt_ids,
                    canonical_ids: rec.canonical_ids,
                    answer_ids: rec.ids,
                    next_id: rec.next_id,
                    text: rec.text,
                };
                continue_later(self.model.clone(), finished)
            })
        });
        self.pending.push_back(Ok(EngineEvent::Finished(Finish {
            reason,
            prompt_tokens,
            completion_tokens,
            continuation,
        })));
        true
    }

    /// Turns one engine response into events; returns true when it ends the generation.
    fn absorb(&mut self, response: Response) -> bool {
        let fail = |this: &mut Self, e: EngineError| {
            this.pending.push_back(Err(e));
            true
        };
        match response {
            Response::Chunk(chunk) => {
                let usage = chunk
                    .usage
                    .map(|u| (u.prompt_tokens as u32, u.completion_tokens as u32));
                let Some(c) = chunk.choices.into_iter().next() else {
                    return false;
                };
                self.step(c.delta.content, c.logprobs.as_ref(), c.finish_reason, usage)
            }
            Response::CompletionChunk(chunk) => {
                let Some(c) = chunk.choices.into_iter().next() else {
                    return false;
                };
                self.step(Some(c.text), c.logprobs.as_ref(), c.finish_reason, None)
            }
            Response::ValidationError(e) => fail(self, EngineError::InvalidRequest(e.to_string())),
            Response::ModelError(msg, _) | Response::CompletionModelError(msg, _) => {
                fail(self, EngineError::Internal(msg))
            }
            Response::InternalError(e) => fail(self, EngineError::Internal(e.to_string())),
            _ => false,
        }
    }
}

/// Whether the step that ends a generation is the extra token past the caller's `max_tokens`
/// (`extra_token`), given the tokens generated so far, that step included.
fn is_extra_token(ends: bool, extra_token: Option<u32>, generated: u32) -> bool {
    ends && extra_token.is_some_and(|max| generated > max)
}

impl Stream for MistralStream {
    type Item = Result<EngineEvent, EngineError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Poll::Ready(Some(item));
            }
            if self.done {
                return Poll::Ready(None);
            }
            let Some(rx) = self.rx.as_mut() else {
                return Poll::Ready(None);
            };
            match rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(response)) => {
                    if self.absorb(response) {
                        self.finish();
                    }
                }
                Poll::Ready(None) => {
                    // The engine ended the stream without a final chunk (seen when it stops inside
                    // a multi-byte character): finish it ourselves, and remember nothing.
                    self.recorder = None;
                    let finish = Finish {
                        reason: FinishReason::Stop,
                        prompt_tokens: self.prompt_tokens,
                        completion_tokens: self.steps,
                        continuation: None,
                    };
                    self.pending.push_back(Ok(EngineEvent::Finished(finish)));
                    self.finish();
                }
            }
        }
    }
}

impl Drop for MistralStream {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let Some(mut rx) = self.rx.take() else {
            return;
        };
        rx.close();
        let stats = self.stats.clone();
        let engine = self.engine.clone();
        let model = self.model.clone();
        let reap = async move {
            // Buffered chunks are drained; `None` means the engine dropped the sequence's sender.
            let drained = tokio::time::timeout(RELEASE_TIMEOUT, async {
                while rx.recv().await.is_some() {}
            })
            .await;
            if drained.is_err() {
                tracing::warn!("a cancelled sequence was not released by the engine in time");
            }
            stats.sequence_cancelled();
            stats.sequence_released();
            engine.sequence_done();
            drop(model);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(reap);
            }
            Err(_) => {
                self.stats.sequence_cancelled();
                self.stats.sequence_released();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_extra_token;

    #[test]
    fn only_the_step_past_max_tokens_is_the_extra_token() {
        // max_tokens 8: the engine was asked for 9.
        // Whatever ended the sequence at token 9 (the length, an end-of-turn, a stop string),
        // it is past the caller's limit: the answer was cut off at 8.
        assert!(is_extra_token(true, Some(8), 9));
        assert!(
            !is_extra_token(true, Some(8), 8),
            "ended on its own within the limit"
        );
        assert!(!is_extra_token(false, Some(8), 9), "not the end");
        assert!(
            !is_extra_token(true, None, 9),
            "no extra token was asked for"
        );
    }
}
