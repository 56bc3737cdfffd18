//! Operational endpoints: `/health`, `/ready`, `/metrics` and `/v1/models`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::state::AppState;
use super::wire::{ModelCard, ModelList};
use crate::error::{ApiError, ErrorEnvelope, ErrorKind};

/// Liveness: 200 while the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", example = json!({"status": "ok"}))))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 503 until the default model is loaded, then 200.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "The default model is loaded", example = json!({"status": "ready"})),
    (status = 503, description = "Still loading", body = ErrorEnvelope)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.models.default_ready() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        ApiError::new(
            ErrorKind::ModelLoading,
            "The default model is still loading",
        )
        .into_response()
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let engines: Vec<_> = state
        .models
        .ready()
        .into_iter()
        .map(|(e, _)| (e.model_id().to_string(), e.stats()))
        .collect();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&engines),
    )
        .into_response()
}

/// The models loaded now.
#[utoipa::path(get, path = "/v1/models", tag = "models",
    responses((status = 200, body = ModelList), (status = 401, body = ErrorEnvelope)),
    security((), ("api_key" = [])))]
pub async fn list_models(State(state): State<AppState>) -> Json<ModelList> {
    let data = state
        .models
        .ready()
        .into_iter()
        .map(|(engine, defaults)| ModelCard {
            id: engine.model_id().to_string(),
            object: "model",
            created: 0,
            owned_by: "ptr-server".to_string(),
            context_length: engine.context_length(),
            default_rounds: defaults.rounds,
        })
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}
