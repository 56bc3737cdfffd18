//! Operational endpoints: `/health`, `/ready`, `/metrics` and `/v1/models`.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::state::AppState;
use crate::error::{ApiError, ErrorEnvelope, ErrorKind};
use crate::models::ModelError;
use crate::wire::{ModelCard, ModelList};

/// Liveness: 200 while the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process is up", example = json!({"status": "ok"}))))]
pub async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: 200 while the default model is loaded and its engine alive; else 503.
#[utoipa::path(get, path = "/ready", tag = "operations", responses(
    (status = 200, description = "The default model is loaded and its engine alive", example = json!({"status": "ready"})),
    (status = 503, description = "The default model is still loading, failed to load, or its engine stopped", body = ErrorEnvelope)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    match state.models.resolve(None) {
        Ok(_) => Json(json!({"status": "ready"})).into_response(),
        Err(ModelError::Loading(_)) => ApiError::new(
            ErrorKind::ModelLoading,
            "The default model is still loading",
        )
        .into_response(),
        Err(e) => ApiError::new(
            ErrorKind::ModelUnavailable,
            format!("The default model is not serving: {e}"),
        )
        .into_response(),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
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
        .loaded()
        .into_iter()
        .map(|m| ModelCard {
            id: m.engine.model_id().to_string(),
            object: "model",
            created: 0,
            owned_by: "ptr-server".to_string(),
            context_length: m.engine.context_length(),
            default_rounds: m.defaults.rounds,
        })
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
}
