//! `POST /v1/chat/completions`: OpenAI chat completions, refined over the request's rounds.
//! Non-streaming answers are assembled here; streaming goes through [`super::chat_stream`].

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;

use super::chat_stream;
use super::extract::ApiJson;
use super::state::AppState;
use super::validate::validate;
use super::wire::{
    AssistantMessage, ChatCompletion, ChatCompletionRequest, Choice, RefinementReport, RoundReport,
    Usage,
};
use crate::error::{ApiError, ErrorEnvelope, ErrorKind};
use crate::refine::{RefineEvent, RefineSummary, Refiner, RoundRecord};

/// Identity shared by every chunk of one completion.
#[derive(Debug, Clone)]
pub struct CompletionMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl CompletionMeta {
    pub fn new(model: &str) -> Self {
        Self {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: model.to_string(),
        }
    }
}

/// `system_fingerprint` of every response.
pub fn fingerprint() -> String {
    format!("ptr-server-{}", env!("CARGO_PKG_VERSION"))
}

/// The header that opens an earlier round inside `reasoning_content`.
pub fn round_header(round: u32) -> String {
    format!("[Round {round}]\n")
}

/// What closes an earlier round inside `reasoning_content`.
pub const ROUND_END: &str = "\n\n";

/// The earlier rounds, as `reasoning_content` shows them; `None` for a single round.
pub fn reasoning_of(rounds: &[RoundRecord]) -> Option<String> {
    let (_, earlier) = rounds.split_last()?;
    if earlier.is_empty() {
        return None;
    }
    Some(
        earlier
            .iter()
            .map(|r| format!("{}{}{ROUND_END}", round_header(r.round), r.content))
            .collect(),
    )
}

impl From<&RoundRecord> for RoundReport {
    fn from(r: &RoundRecord) -> Self {
        Self {
            round: r.round,
            content: r.content.clone(),
            finish_reason: r.finish_reason.as_str().to_string(),
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            elapsed_ms: r.elapsed_ms,
            ttft_ms: r.ttft_ms,
            changed: r.changed,
        }
    }
}

fn completion(meta: CompletionMeta, summary: &RefineSummary) -> ChatCompletion {
    let last = summary.final_round();
    ChatCompletion {
        id: meta.id,
        object: "chat.completion",
        created: meta.created,
        model: meta.model,
        system_fingerprint: fingerprint(),
        choices: vec![Choice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: last.content.clone(),
                reasoning_content: reasoning_of(&summary.rounds),
            },
            finish_reason: last.finish_reason.as_str().to_string(),
            logprobs: None,
        }],
        usage: Usage::new(summary.prompt_tokens(), summary.completion_tokens()),
        refinement: RefinementReport {
            rounds: summary.rounds.iter().map(RoundReport::from).collect(),
            stop_reason: summary.stop_reason.as_str().to_string(),
        },
    }
}

/// Create a chat completion, refined over `refinement.rounds` rounds.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    tag = "chat",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, description = "The completion; with `stream: true`, an SSE stream of `chat.completion.chunk`s ending in `data: [DONE]`", body = ChatCompletion),
        (status = 400, description = "Invalid request (`param` names the field) or `context_length_exceeded`", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 404, description = "Unknown model", body = ErrorEnvelope),
        (status = 413, description = "Body too large", body = ErrorEnvelope),
        (status = 415, description = "Not JSON", body = ErrorEnvelope),
        (status = 429, description = "At the concurrency limit; see `Retry-After`", body = ErrorEnvelope),
        (status = 503, description = "The model is loading; see `Retry-After`", body = ErrorEnvelope),
    ),
    security((), ("api_key" = []))
)]
pub async fn chat_completions(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let permit = state.admit()?;
    let valid = validate(req, &state).await?;
    let meta = CompletionMeta::new(&valid.model);
    let events =
        Refiner::new(valid.engine, state.metrics.clone()).run(valid.generation, valid.plan);
    if valid.stream {
        return Ok(chat_stream::respond(events, meta, valid.include_usage, permit).into_response());
    }
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        match event {
            RefineEvent::Completed(summary) => {
                return Ok(Json(completion(meta, &summary)).into_response())
            }
            RefineEvent::Failed(e) => return Err(e.into()),
            _ => {}
        }
    }
    Err(ApiError::new(
        ErrorKind::Internal,
        "the refinement ended without a result",
    ))
}
