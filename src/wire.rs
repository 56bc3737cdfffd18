//! OpenAI wire types (requests, responses, stream chunks) plus the `refinement` extension and
//! the payloads of the native `/v1/refinements` events, and the shape of one SSE event of each
//! stream for the OpenAPI document. Numbers a client may get wrong are parsed wide (`i64`) so
//! validation, not the JSON parser, names the field and the limit; the schema states the limits.
//!
//! The server ([`crate::http`]) reads requests and writes responses in these types; the client
//! ([`crate::client`]) writes the same requests (fields left `None` are not sent) and reads the
//! rounds of a refinement back in them.

use serde::{Deserialize, Serialize};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

/// `POST /v1/chat/completions` and `POST /v1/refinements` body. Unknown fields are ignored.
#[serde_with::skip_serializing_none]
#[derive(Default, Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "model": "smollm2-135m-instruct",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "temperature": 0, "max_tokens": 64,
    "refinement": {"rounds": 3, "early_stop": true}
}))]
pub struct ChatCompletionRequest {
    /// Model id from `/v1/models`; the server's default model when left out.
    pub model: Option<String>,
    #[schema(min_items = 1)]
    pub messages: Vec<InputMessage>,
    /// 0 (greedy, deterministic) to 2. Default 1.
    #[schema(minimum = 0.0, maximum = 2.0)]
    pub temperature: Option<f64>,
    /// In (0, 1]. Default 1.
    #[schema(exclusive_minimum = 0.0, maximum = 1.0)]
    pub top_p: Option<f64>,
    /// Most tokens per round (legacy name).
    #[schema(minimum = 1)]
    pub max_tokens: Option<i64>,
    /// Most tokens per round; wins over `max_tokens`.
    #[schema(minimum = 1)]
    pub max_completion_tokens: Option<i64>,
    /// Up to 4 stop strings.
    pub stop: Option<StopField>,
    /// Accepted for compatibility. mistral.rs 0.8.1 has no per-request seed: greedy requests
    /// (temperature 0) are deterministic whatever the seed; sampled ones are not reproducible.
    pub seed: Option<i64>,
    /// Only 1 is supported.
    #[schema(minimum = 1, maximum = 1)]
    pub n: Option<i64>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    /// Progressive refinement settings (ptr-server extension).
    pub refinement: Option<RefinementParams>,
}

/// One input message.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InputMessage {
    /// `system`, `developer`, `user` or `assistant`.
    #[schema(pattern = "^(system|developer|user|assistant)$")]
    pub role: String,
    pub content: Option<InputContent>,
}

/// Message content: a string or an array of text parts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum InputContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

/// One content part; only `text` parts are supported.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    pub text: Option<String>,
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StopField {
    One(String),
    Many(Vec<String>),
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` summed over all rounds.
    pub include_usage: Option<bool>,
}

/// The `refinement` extension. Each field defaults to the model's setting in models.toml.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"rounds": 3, "instruction": "Please further think about and give me a more precise and professional answer.", "early_stop": true, "max_total_tokens": 2048}))]
pub struct RefinementParams {
    /// Rounds to run, 1 (plain completion) up to the server's cap.
    #[schema(minimum = 1)]
    pub rounds: Option<i64>,
    /// The user turn that asks for another round.
    #[schema(min_length = 1, max_length = 4000, pattern = "\\S")]
    pub instruction: Option<String>,
    /// Stop when a round repeats the previous one (`converged`).
    pub early_stop: Option<bool>,
    /// Budget of generated tokens over all rounds (`budget`).
    #[schema(minimum = 1)]
    pub max_total_tokens: Option<i64>,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub total_tokens: u32,
}

impl Usage {
    pub fn new(prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens + completion_tokens,
        }
    }
}

/// A non-streaming chat completion.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatCompletion {
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<Choice>,
    /// Summed over all rounds.
    pub usage: Usage,
    /// Every round and why the loop stopped (ptr-server extension).
    pub refinement: RefinementReport,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    /// `stop` or `length`, from the last round.
    pub finish_reason: String,
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<()>,
}

#[serde_with::skip_serializing_none]
#[derive(Debug, Serialize, ToSchema)]
pub struct AssistantMessage {
    /// Always `assistant`.
    pub role: &'static str,
    /// The last round's answer.
    pub content: String,
    /// The earlier rounds, each under a `[Round k]` header; absent for one round.
    pub reasoning_content: Option<String>,
}

/// The rounds of one request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefinementReport {
    pub rounds: Vec<RoundReport>,
    /// `rounds_done`, `converged`, `budget` or `length`.
    pub stop_reason: String,
}

/// One round of a refinement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoundReport {
    pub round: u32,
    pub content: String,
    pub finish_reason: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub elapsed_ms: u64,
    /// Time from the round's start to its first token.
    pub ttft_ms: Option<u64>,
    /// Differs from the previous round after normalising whitespace and case.
    pub changed: bool,
}

/// A streamed chunk (`chat.completion.chunk`).
#[serde_with::skip_serializing_none]
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
    "model": "smollm2-135m-instruct", "system_fingerprint": "ptr-server-0.1.0",
    "choices": [{"index": 0, "delta": {"reasoning_content": " Paris", "reasoning": " Paris"}, "finish_reason": null, "logprobs": null}],
    "refinement": {"round": 1}}))]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub system_fingerprint: String,
    pub choices: Vec<ChunkChoice>,
    pub usage: Option<Usage>,
    /// The round this chunk belongs to (ptr-server extension).
    pub refinement: RoundTag,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: ChunkDelta,
    pub finish_reason: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub logprobs: Option<()>,
}

/// Earlier rounds arrive as `reasoning_content` (and `reasoning`), the final answer as `content`.
#[serde_with::skip_serializing_none]
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ChunkDelta {
    pub role: Option<&'static str>,
    pub content: Option<String>,
    pub reasoning_content: Option<String>,
    pub reasoning: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub struct RoundTag {
    pub round: u32,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<ModelCard>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ModelCard {
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    pub created: u64,
    pub owned_by: String,
    /// Context length in tokens.
    pub context_length: u32,
    /// Default refinement rounds for this model.
    pub default_rounds: u32,
}

/// `round.started` event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"round": 2}))]
pub struct RoundStartedEvent {
    pub round: u32,
}

/// `round.delta` event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"round": 2, "text": " Paris"}))]
pub struct RoundDeltaEvent {
    pub round: u32,
    pub text: String,
}

/// `round.completed` event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"round": 2, "content": "The capital of France is Paris.", "finish_reason": "stop",
    "usage": {"prompt_tokens": 61, "completion_tokens": 8, "total_tokens": 69}, "elapsed_ms": 950, "ttft_ms": 410, "changed": true}))]
pub struct RoundCompletedEvent {
    pub round: u32,
    pub content: String,
    pub finish_reason: String,
    pub usage: Usage,
    pub elapsed_ms: u64,
    /// Time from the round's start to its first token.
    pub ttft_ms: Option<u64>,
    pub changed: bool,
}

/// `refinement.completed` event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"rounds": 3, "stop_reason": "rounds_done", "content": "The capital of France is Paris.",
    "usage": {"prompt_tokens": 190, "completion_tokens": 24, "total_tokens": 214}}))]
pub struct RefinementCompletedEvent {
    /// Rounds run.
    pub rounds: u32,
    pub stop_reason: String,
    /// The final answer (the last round's).
    pub content: String,
    pub usage: Usage,
}

/// A string holding JSON that matches `schema`: JSON Schema's `contentMediaType` and
/// `contentSchema`, which schema-driven testers (schemathesis) check in event streams. utoipa 5
/// has no `contentSchema` field, and writes an object's extensions map flat into it, so the
/// keyword goes there.
pub(crate) fn json_text(schema: serde_json::Value) -> ObjectBuilder {
    let mut keywords = Extensions::default();
    keywords.insert("contentSchema".to_string(), schema);
    ObjectBuilder::new()
        .schema_type(Type::String)
        .content_media_type("application/json")
        .extensions(Some(keywords))
}

pub(crate) fn component(name: &str) -> serde_json::Value {
    serde_json::json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// A string property that holds exactly `value`.
pub(crate) fn exactly(value: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some([value]))
}

/// One SSE event of a `stream: true` chat completion, as an event-stream parser reads it. The
/// OpenAPI document describes the `text/event-stream` body event by event.
pub struct ChatStreamEvent;

impl PartialSchema for ChatStreamEvent {
    fn schema() -> RefOr<Schema> {
        let payload = json_text(serde_json::json!({
            "oneOf": [component("ChatCompletionChunk"), component("ErrorEnvelope")]
        }));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "One event: `data` is a `chat.completion.chunk`, an error envelope (a failure \
                 after the stream began), or `[DONE]`, the last event.",
            ))
            .property(
                "data",
                OneOfBuilder::new().item(exactly("[DONE]")).item(payload),
            )
            .required("data")
            .into()
    }
}

impl ToSchema for ChatStreamEvent {}

/// One named SSE event of `/v1/refinements`, as an event-stream parser reads it.
pub struct RefinementStreamEvent;

impl PartialSchema for RefinementStreamEvent {
    fn schema() -> RefOr<Schema> {
        let named = |event: &str, payload: &str| {
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("event", exactly(event))
                .property("data", json_text(component(payload)))
                .required("event")
                .required("data")
        };
        OneOfBuilder::new()
            .description(Some(
                "One event: its name in `event`, its JSON payload in `data`.",
            ))
            .item(named("round.started", "RoundStartedEvent"))
            .item(named("round.delta", "RoundDeltaEvent"))
            .item(named("round.completed", "RoundCompletedEvent"))
            .item(named("refinement.completed", "RefinementCompletedEvent"))
            .item(named("error", "ErrorEnvelope"))
            .into()
    }
}

impl ToSchema for RefinementStreamEvent {}
