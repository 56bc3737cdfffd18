//! `POST /v1/refinements`: the native refinement stream, for clients that want to watch every
//! round as it is written. Same body as chat completions; always answers with named SSE events:
//! `round.started`, `round.delta`, `round.completed`, then `refinement.completed` (or `error`).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::Event;
use axum::response::Response;
use futures::StreamExt;
use serde::Serialize;

use super::extract::ApiJson;
use super::sse::{request_id, StreamGuard};
use super::state::AppState;
use super::validate::validate;
use crate::error::{ApiError, ErrorEnvelope};
use crate::refine::{RefineEvent, Refiner};
use crate::wire::{
    ChatCompletionRequest, RefinementCompletedEvent, RefinementStreamEvent, RoundCompletedEvent,
    RoundDeltaEvent, RoundStartedEvent, Usage,
};

fn named<T: Serialize>(name: &str, value: &T) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(value).expect("wire types serialise: this is a bug"))
}

/// Run a refinement and stream every round as named SSE events.
#[utoipa::path(
    post,
    path = "/v1/refinements",
    tag = "refinement",
    request_body = ChatCompletionRequest,
    responses(
        (status = 200, content_type = "text/event-stream", description = "Named SSE events, in order: per round `round.started` {round}, `round.delta` {round, text}…, `round.completed` {round, content, finish_reason, usage, elapsed_ms, changed}; then `refinement.completed` {rounds, stop_reason, content, usage}. A failure mid-stream sends `error` with the error envelope.", body = RefinementStreamEvent),
        (status = 400, description = "Invalid request", body = ErrorEnvelope),
        (status = 401, description = "Missing or wrong API key", body = ErrorEnvelope),
        (status = 404, description = "Unknown model", body = ErrorEnvelope),
        (status = 429, description = "At the concurrency limit", body = ErrorEnvelope),
        (status = 503, description = "The model is loading", body = ErrorEnvelope),
    ),
    security((), ("api_key" = []))
)]
pub async fn refinements(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let valid = validate(req, &state).await?;
    let events =
        Refiner::new(valid.engine, state.metrics.clone()).run(valid.generation, valid.plan);
    let guard = StreamGuard::new(&state, valid.admission, request_id(&headers));
    let request_id = guard.request_id.clone();
    let on_cut = |e: ApiError| vec![named("error", &e.envelope())];
    let stream = async_stream::stream! {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let out: Event = match event {
                RefineEvent::RoundStarted { round, .. } => named("round.started", &RoundStartedEvent { round }),
                RefineEvent::Delta { round, text } => named("round.delta", &RoundDeltaEvent { round, text }),
                RefineEvent::RoundCompleted(r) => named("round.completed", &RoundCompletedEvent {
                    round: r.round,
                    finish_reason: r.finish_reason.as_str().to_string(),
                    usage: Usage::new(r.prompt_tokens, r.completion_tokens),
                    elapsed_ms: r.elapsed_ms,
                    ttft_ms: r.ttft_ms,
                    changed: r.changed,
                    content: r.content,
                }),
                RefineEvent::Completed(s) => named("refinement.completed", &RefinementCompletedEvent {
                    rounds: s.rounds.len() as u32,
                    stop_reason: s.stop_reason.as_str().to_string(),
                    content: s.final_round().content.clone(),
                    usage: Usage::new(s.prompt_tokens(), s.completion_tokens()),
                }),
                RefineEvent::Failed(e) => {
                    named("error", &ApiError::from(e).with_request_id(&request_id).envelope())
                }
            };
            yield out;
        }
    };
    Ok(super::sse::respond(stream, guard, on_cut))
}
