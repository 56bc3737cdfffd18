//! [`MistralEngine`]: the [`Engine`] trait on mistral.rs (GGUF models, CPU/CUDA/Metal).
//!
//! Requests go to the engine as `Request::Normal` through the model's sender with a response
//! channel of our own, so a generation is an owned `'static` stream ([`MistralStream`]). Greedy
//! requests that continue an answer this engine wrote are sent as exact token ids
//! (the previous round's [`super::Continuation`], see [`super::continuation`]) so the prefix cache
//! reuses the whole earlier answer.
//!
//! Concurrent generations are batched by the engine on every device. On CPU that relies on
//! this project's patch of mistralrs-core (`patches/mistralrs-core/`): 0.8.1's CPU decode
//! attention (`flash_attn_cpu_single_q`) kept one scratch row per KV tile and head but none per
//! batch row, so every sequence of a batch got the last one's attention and concurrent prompts
//! came back with one shared answer.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use mistralrs::core::RequestMessage;
use mistralrs::{Constraint, NormalRequest, Request, RequestLike, SamplingParams, StopTokens};
use tokio::sync::mpsc;

use super::continuation::{prompt_ids, text_messages, tokenize};
use super::mistral_stream::{MistralStream, Recorder};
pub use super::recycle::LoadOptions;
use super::recycle::Recycler;
use super::{
    ChatMessage, Engine, EngineError, EngineStats, EventStream, GenerationRequest, Sampling,
    StatsSnapshot,
};

/// One model loaded in mistral.rs. Exactly one owner; handlers hold it behind `Arc<dyn Engine>`.
pub struct MistralEngine {
    id: String,
    engine: Arc<Recycler>,
    context: u32,
    stats: Arc<EngineStats>,
    /// Greedy rounds are continued token-exactly. Only with the prefix cache on: without it
    /// nothing is reused, and a round sent as text is then exactly what a client sending the
    /// same conversation gets.
    continuations: bool,
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
            continuations: opts.prefix_cache_n > 0,
        })
    }
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

    fn is_alive(&self) -> bool {
        // mistral.rs reboots a dead engine thread when a sender is asked for; a closed sender
        // or a failed reboot means no request can reach the engine any more.
        self.engine
            .model()
            .inner()
            .get_sender(None)
            .is_ok_and(|sender| !sender.is_closed())
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
        let messages = messages.to_vec();
        let task = tokio::spawn(async move { tokenize(&model, &messages).await });
        let toks = task
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?
            .map_err(EngineError::InvalidRequest)?;
        Ok(toks.len() as u32)
    }

    async fn generate(&self, request: GenerationRequest) -> Result<EventStream, EngineError> {
        let model = self.engine.model();
        // Greedy rounds may be continued token-exactly (see `continuations`).
        let exact = request.sampling.temperature == 0.0 && self.continuations;
        // Token-exact prompts need tokenize calls, which must not be abandoned midway (see
        // count_prompt_tokens): they run in their own task.
        let (continues, m, messages) = (
            request.continues.clone(),
            model.clone(),
            request.messages.clone(),
        );
        // For such a request: the ids to send when they continue an answer, and the prompt's
        // ids with the template's own ids of the same conversation, for the next round.
        let prepared = tokio::spawn(async move {
            if !exact {
                return (None, None);
            }
            if let Some(c) = prompt_ids(&m, &messages, continues.as_ref()).await {
                let ids = Arc::new(c.ids);
                return (Some(ids.clone()), Some((ids, Arc::new(c.canonical))));
            }
            let canonical = tokenize(&m, &messages).await.ok().map(Arc::new);
            (None, canonical.map(|ids| (ids.clone(), ids)))
        });
        let (token_prompt, prompt_token_ids) = prepared
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        // For an answer the caller will continue, one token more is generated and dropped, so
        // that the answer's last token is fed through the model and its KV is there to reuse.
        let max_tokens = request.sampling.max_tokens;
        let extra_token = (exact && request.will_continue)
            .then_some(max_tokens)
            .filter(|_| {
                prompt_token_ids.as_ref().is_some_and(|(p, _)| {
                    p.len() as u64 + (max_tokens as u64) < self.context as u64
                })
            });
        // One slot per possible token plus the final chunks: the engine never blocks on us.
        let (tx, rx) = mpsc::channel(max_tokens as usize + 9);
        let mut sampling = sampling_params(&request.sampling);
        if extra_token.is_some() {
            sampling.max_len = Some(max_tokens as usize + 1);
        }
        // Greedy decoding samples the top-1 token, so its id comes with the top-1 logprob.
        sampling.top_n_logprobs = usize::from(exact);
        let prompt_tokens = token_prompt.as_ref().map_or(0, |ids| ids.len() as u32);
        let messages = match &token_prompt {
            Some(ids) => {
                self.stats.continued();
                RequestMessage::CompletionTokens(ids.to_vec())
            }
            None => text_messages(&request.messages).take_messages(),
        };
        let normal = NormalRequest {
            messages,
            sampling_params: sampling,
            response: tx,
            return_logprobs: exact,
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
        let sender = model
            .inner()
            .get_sender(None)
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        sender
            .send(Request::Normal(Box::new(normal)))
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))?;
        self.stats.sequence_started();
        let recorder = prompt_token_ids.map(|(prompt_ids, canonical_ids)| Recorder {
            messages: request.messages,
            prompt_ids,
            canonical_ids,
            ids: Vec::new(),
            next_id: None,
            text: String::new(),
        });
        Ok(Box::pin(MistralStream {
            rx: Some(rx),
            pending: VecDeque::new(),
            model,
            engine: self.engine.clone(),
            stats: self.stats.clone(),
            prompt_tokens,
            steps: 0,
            done: false,
            recorder,
            extra_token,
        }))
    }
}
