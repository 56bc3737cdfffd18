//! The admin model routes: every model with its state (OpenAI's list shape plus `status`,
//! `parent`, `created_by_job`), load and unload without a restart, delete a run-time model.

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use super::views::list_view;
use crate::error::ApiError;
use crate::http::state::AppState;
use crate::models::ModelStatus;

fn model_view(m: &ModelStatus) -> Value {
    json!({
        "id": m.id, "object": "model", "created": m.created, "owned_by": "ptr-server",
        "status": m.status, "parent": m.parent, "created_by_job": m.created_by_job,
        "declared": m.declared, "error": m.error,
    })
}

/// `GET /models`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.admin()?;
    let data = state.models.list().iter().map(model_view).collect();
    Ok(Json(list_view(data, false)))
}

/// `GET /models/{id}`.
pub async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.admin()?;
    Ok(Json(model_view(&state.models.status(&id)?)))
}

/// `POST /models/{id}/load`: loads and waits; a model loaded already is left as it is.
pub async fn load(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.admin()?;
    state.models.load(&id).await?;
    Ok(Json(model_view(&state.models.status(&id)?)))
}

/// `POST /models/{id}/unload`: running requests finish on the old engine.
pub async fn unload(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.admin()?;
    state.models.unload(&id)?;
    Ok(Json(model_view(&state.models.status(&id)?)))
}

/// `DELETE /models/{id}`: removes a model registered at run time (a tuned model).
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.admin()?;
    state.models.remove(&id)?;
    Ok(Json(json!({"id": id, "object": "model", "deleted": true})))
}
