//! `POST /v1/chat/completions`: OpenAI chat completions, refined over the request's rounds.
//! Non-streaming answers are assembled here, within the request deadline; streaming goes
//! through [`super::chat_stream`].

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;

use super::chat_stream;
use super::completion::{fingerprint, reasoning_of, CompletionMeta};
use super::extract::ApiJson;
use super::sse::{request_id, StreamGuard};
use super::state::AppState;
use super::validate::validate;
use crate::error::{ApiError, ErrorEnvelope, ErrorKind};
use crate::refine::{RefineEvent, RefineSummary, Refiner, RoundRecord};
use crate::wire::{
    AssistantMessage, ChatCompletion, ChatCompletionRequest, ChatStreamEvent, Choice,
    RefinementReport, RoundReport, Usage,
};

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
    request_body(content = ChatCompletionRequest, examples(
        ("refined" = (summary = "Up to three rounds, stopping when the answer stops changing", value = json!({
            "model": "smollm2-135m-instruct",
            "messages": [{"role": "user", "content": "What is the capital of France?"}],
            "temperature": 0, "max_tokens": 64,
            "refinement": {"rounds": 3, "early_stop": true}
        }))),
        ("streamed" = (summary = "Two rounds, streamed: round 1 as `reasoning_content`, round 2 as `content`", value = json!({
            "messages": [{"role": "user", "content": "Name three primary colors."}],
            "temperature": 0, "max_tokens": 64, "stream": true,
            "stream_options": {"include_usage": true},
            "refinement": {"rounds": 2}
        }))),
    )),
    responses(
        (status = 200, description = "The completion; with `stream: true`, an SSE stream of `chat.completion.chunk`s ending in `data: [DONE]`", content(
            (ChatCompletion = "application/json"),
            (ChatStreamEvent = "text/event-stream"),
        )),
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
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let valid = validate(req, &state).await?;
    let meta = CompletionMeta::new(&valid.model);
    let events =
        Refiner::new(valid.engine, state.metrics.clone()).run(valid.generation, valid.plan);
    let guard = StreamGuard::new(&state, valid.admission, request_id(&headers));
    if valid.stream {
        return Ok(chat_stream::respond(
            events,
            meta,
            valid.include_usage,
            guard,
        ));
    }
    let deadline = guard.deadline;
    let result = tokio::time::timeout_at(deadline, async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                RefineEvent::Completed(summary) => return Ok(summary),
                RefineEvent::Failed(e) => return Err(ApiError::from(e)),
                _ => {}
            }
        }
        Err(ApiError::new(
            ErrorKind::Internal,
            "the refinement ended without a result",
        ))
    })
    .await;
    drop(guard);
    match result {
        Ok(summary) => Ok(Json(completion(meta, &summary?)).into_response()),
        Err(_) => {
            state.metrics.timed_out.inc();
            Err(ApiError::timeout(state.limits.request_timeout))
        }
    }
}
