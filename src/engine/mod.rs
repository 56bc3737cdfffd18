//! The engine seam: everything above this module (the refinement loop, the HTTP layer) talks to a
//! model only through the object-safe [`Engine`] trait. [`mistral::MistralEngine`] is the real
//! implementation on mistral.rs; `fake::FakeEngine` is a scripted one for HTTP-layer tests (compiled
//! for tests only: feature `fake-engine`);
//! [`device`] says which `--device` a model runs on and how mistral.rs is told.
//!
//! A generation is a stream of [`EngineEvent`]s. Dropping the stream cancels the generation: the
//! engine must stop producing tokens for it within a token or two.

mod continuation;
pub mod device;
#[cfg(any(test, feature = "fake-engine"))]
pub mod fake;
pub mod mistral;
mod mistral_stream;
mod recycle;
mod stats;

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;

pub use device::DeviceSpec;
pub use stats::{EngineStats, StatsSnapshot};

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The OpenAI wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One chat turn, text only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// Decoding settings for one generation, already validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 means greedy (deterministic) decoding.
    pub temperature: f64,
    /// Nucleus sampling mass in (0, 1]; `None` = no top-p filter.
    pub top_p: Option<f64>,
    /// Most tokens to generate.
    pub max_tokens: u32,
    /// Strings that end the generation (not included in the output).
    pub stop: Vec<String>,
}

/// What an engine hands back with a finished generation so that the next round of the same
/// conversation can continue it exactly. Opaque outside the engine that made it: the caller only
/// passes it on, in [`GenerationRequest::continues`], with the request that repeats the answer.
#[derive(Clone)]
pub struct Continuation(Arc<dyn Any + Send + Sync>);

impl Continuation {
    /// Wraps an engine's own continuation state.
    pub fn new<T: Any + Send + Sync>(state: T) -> Self {
        Self(Arc::new(state))
    }

    /// The engine's state, if this continuation is of type `T`.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for Continuation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Continuation")
    }
}

impl PartialEq for Continuation {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Continuation {}

/// What to generate from.
#[derive(Debug, Clone)]
pub struct GenerationRequest {
    pub messages: Vec<ChatMessage>,
    pub sampling: Sampling,
    /// The caller will send this conversation again with the answer in it (an earlier
    /// refinement round); the engine may prepare to reuse the work.
    pub will_continue: bool,
    /// The continuation the previous round's generation handed back, when `messages` repeat
    /// that round's conversation and answer.
    pub continues: Option<Continuation>,
}

impl GenerationRequest {
    /// A greedy generation of at most `max_tokens`, with no stop strings.
    pub fn greedy(messages: Vec<ChatMessage>, max_tokens: u32) -> Self {
        Self {
            messages,
            sampling: Sampling {
                temperature: 0.0,
                top_p: None,
                max_tokens,
                stop: vec![],
            },
            will_continue: false,
            continues: None,
        }
    }
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// End of sequence or a stop string.
    Stop,
    /// `max_tokens` (or the context) was reached.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// The end of a generation, with its token counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub reason: FinishReason,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// How a later request that repeats this conversation and answer can continue it.
    pub continuation: Option<Continuation>,
}

/// One item of a generation stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineEvent {
    /// New text (usually one token's worth).
    Delta(String),
    /// The generation ended; nothing follows.
    Finished(Finish),
}

/// Failures the engine reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The engine refused the request's input.
    #[error("{0}")]
    InvalidRequest(String),
    /// The prompt does not fit the model's context.
    #[error("the prompt has {prompt_tokens} tokens but the model's context is {context} tokens")]
    ContextLength { prompt_tokens: u32, context: u32 },
    /// The engine failed (a bug or a broken model); details go to the log.
    #[error("engine failure: {0}")]
    Internal(String),
}

/// A generation in progress. Dropping it cancels the generation.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<EngineEvent, EngineError>> + Send>>;

/// A loaded model that can generate chat completions.
#[async_trait::async_trait]
pub trait Engine: Send + Sync {
    /// The model id clients use.
    fn model_id(&self) -> &str;

    /// Context length in tokens (prompt plus completion).
    fn context_length(&self) -> u32;

    /// Counters of the engine's own work (sequences running, cancelled).
    fn stats(&self) -> StatsSnapshot;

    /// Whether the engine can still take work (false once its thread has died). Cheap: readiness
    /// checks and request routing call it.
    fn is_alive(&self) -> bool;

    /// Tokens the chat template makes of these messages, generation prompt included.
    async fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError>;

    /// Starts a generation.
    async fn generate(&self, request: GenerationRequest) -> Result<EventStream, EngineError>;
}
