//! [`MistralEngine`]: the [`Engine`] trait on mistral.rs (GGUF models, CPU/CUDA/Metal).
//!
//! Requests go to the engine as `Request::Normal` through the model's sender with a response
//! channel of our own, so a generation is an owned `'static` stream. The channel is sized so the
//! engine never waits on a slow client (it would stall every sequence in the batch). Cancellation:
//! when the stream is dropped early, the receiver is closed, the engine's next send fails and it
//! cancels the sequence; a reaper task drains what was already in flight and releases the
//! sequence in [`EngineStats`] only once the engine has dropped its sender.

use std::collections::VecDeque;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use either::Either;
use futures::Stream;
use mistralrs::{
    Constraint, Model, NormalRequest, Request, RequestLike, Response, SamplingParams, StopTokens,
    TextMessageRole, TextMessages,
};
use tokio::sync::mpsc;

use super::recycle::Recycler;
use super::{
    ChatMessage, Engine, EngineError, EngineEvent, EngineStats, EventStream, Finish, FinishReason,
    GenerationRequest, Role, Sampling, StatsSnapshot,
};
use crate::config::DeviceSpec;

/// How long a cancelled sequence may take to be released before we give up waiting.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Engine-level load settings.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: DeviceSpec,
    /// Sequences the engine batches together.
    pub max_num_seqs: usize,
    /// Finished sequences whose KV cache is kept for prefix reuse (0 disables it).
    pub prefix_cache_n: usize,
    /// Swap in a fresh engine after this many finished sequences (0 = never); see [`Recycler`].
    pub recycle_after: u64,
}

/// One model loaded in mistral.rs. Exactly one owner; handlers hold it behind `Arc<dyn Engine>`.
pub struct MistralEngine {
    id: String,
    engine: Arc<Recycler>,
    context: u32,
    stats: Arc<EngineStats>,
}

impl MistralEngine {
    /// Loads a GGUF file. The file's folder must hold no unrelated tokenizer files.
    pub async fn load(id: &str, gguf: &Path, opts: &LoadOptions) -> Result<Self, EngineError> {
        let internal = |e: String| EngineError::Internal(format!("loading `{id}`: {e}"));
        let (Some(dir), Some(file)) = (gguf.parent(), gguf.file_name()) else {
            return Err(internal(format!("{} is not a file path", gguf.display())));
        };
        let engine = Recycler::load(
            dir.to_path_buf(),
            file.to_string_lossy().into_owned(),
            opts.clone(),
        )
        .await
        .map_err(|e| internal(e.to_string()))?;
        let context = engine
            .model()
            .max_sequence_length()
            .ok()
            .flatten()
            .unwrap_or(2048)
            .min(u32::MAX as usize) as u32;
        Ok(Self {
            id: id.to_string(),
            engine,
            context,
            stats: Arc::new(EngineStats::default()),
        })
    }
}

fn text_messages(messages: &[ChatMessage]) -> TextMessages {
    messages.iter().fold(TextMessages::new(), |acc, m| {
        let role = match m.role {
            Role::System => TextMessageRole::System,
            Role::User => TextMessageRole::User,
            Role::Assistant => TextMessageRole::Assistant,
        };
        acc.add_message(role, &m.content)
    })
}

fn sampling_params(s: &Sampling) -> SamplingParams {
    let mut p = if s.temperature == 0.0 {
        SamplingParams::deterministic()
    } else {
        let mut p = SamplingParams::neutral();
        p.temperature = Some(s.temperature);
        p.top_p = s.top_p;
        p
    };
    p.max_len = Some(s.max_tokens as usize);
    if !s.stop.is_empty() {
        p.stop_toks = Some(StopTokens::Seqs(s.stop.clone()));
    }
    p
}

#[async_trait::async_trait]
impl Engine for MistralEngine {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn context_length(&self) -> u32 {
        self.context
    }

    fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            recycles: self.engine.recycles(),
            ..self.stats.snapshot()
        }
    }

    async fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError> {
        // mistral.rs panics if a tokenize reply finds its receiver gone, so the call runs in its
        // own task that always waits for the reply, even when the request is abandoned.
        let model = self.engine.model();
        let msgs = text_messages(messages);
        let task = tokio::spawn(async move {
            model
                .tokenize(Either::Left(msgs), None, true, true, None)
                .await
        });
        let toks = task
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(|e| EngineError::InvalidRequest(e.to_string()))?;
        Ok(toks.len() as u32)
    }

    async fn generate(&self, request: GenerationRequest) -> Result<EventStream, EngineError> {
        // One slot per possible token plus the final chunks: the engine never blocks on us.
        let (tx, rx) = mpsc::channel(request.sampling.max_tokens as usize + 8);
        let normal = NormalRequest {
            messages: text_messages(&request.messages).take_messages(),
            sampling_params: sampling_params(&request.sampling),
            response: tx,
            return_logprobs: false,
            is_streaming: true,
            id: 0,
            constraint: Constraint::None,
            suffix: None,
            tools: None,
            tool_choice: None,
            logits_processors: None,
            return_raw_logits: false,
            web_search_options: None,
            model_id: None,
            truncate_sequence: false,
        };
        let model = self.engine.model();
        let sender = model
            .inner()
            .get_sender(None)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        sender
            .send(Request::Normal(Box::new(normal)))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        self.stats.sequence_started();
        Ok(Box::pin(MistralStream {
            rx: Some(rx),
            pending: VecDeque::new(),
            _model: model,
            engine: self.engine.clone(),
            stats: self.stats.clone(),
            deltas: 0,
            done: false,
        }))
    }
}

/// The generation stream over the engine's response channel.
struct MistralStream {
    rx: Option<mpsc::Receiver<Response>>,
    pending: VecDeque<Result<EngineEvent, EngineError>>,
    /// Keeps the engine this sequence runs on alive even if a fresh one was swapped in.
    _model: Arc<Model>,
    engine: Arc<Recycler>,
    stats: Arc<EngineStats>,
    deltas: u32,
    done: bool,
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

    /// Turns one engine response into events; returns true when it ends the generation.
    fn absorb(&mut self, response: Response) -> bool {
        match response {
            Response::Chunk(chunk) => {
                let Some(choice) = chunk.choices.into_iter().next() else {
                    return false;
                };
                if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                    self.deltas += 1;
                    self.pending.push_back(Ok(EngineEvent::Delta(text)));
                }
                let Some(reason) = choice.finish_reason else {
                    return false;
                };
                let reason = if reason == "length" {
                    FinishReason::Length
                } else {
                    FinishReason::Stop
                };
                let (prompt, completion) = chunk
                    .usage
                    .map(|u| (u.prompt_tokens as u32, u.completion_tokens as u32))
                    .unwrap_or((0, self.deltas));
                self.pending.push_back(Ok(EngineEvent::Finished(Finish {
                    reason,
                    prompt_tokens: prompt,
                    completion_tokens: completion,
                })));
                true
            }
            Response::ValidationError(e) => {
                self.pending
                    .push_back(Err(EngineError::InvalidRequest(e.to_string())));
                true
            }
            Response::ModelError(msg, _) | Response::CompletionModelError(msg, _) => {
                self.pending.push_back(Err(EngineError::Internal(msg)));
                true
            }
            Response::InternalError(e) => {
                self.pending
                    .push_back(Err(EngineError::Internal(e.to_string())));
                true
            }
            _ => false,
        }
    }
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
                    // a multi-byte character): finish it ourselves.
                    let completion = self.deltas;
                    self.pending.push_back(Ok(EngineEvent::Finished(Finish {
                        reason: FinishReason::Stop,
                        prompt_tokens: 0,
                        completion_tokens: completion,
                    })));
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
        let model = self._model.clone();
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
