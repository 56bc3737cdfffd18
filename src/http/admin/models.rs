//! The admin model routes: every model with its state (OpenAI's list shape plus `status`,
//! `parent`, `created_by_job`), load and unload without a restart, delete a run-time model.

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::responses::Unauthorized;
use super::views::{Deleted, List, Listed};
use super::Shared;
use crate::error::{ApiError, ErrorEnvelope};
use crate::models::{ModelState, ModelStatus};

/// A model as the admin API shows it: OpenAI's model object plus its state and lineage.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminModel {
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds when it was registered (0 for `models.toml` models).
    pub created: u64,
    /// Always `ptr-server`.
    pub owned_by: &'static str,
    pub status: ModelState,
    /// The model it was derived from, if any.
    pub parent: Option<String>,
    /// The job that produced it, if any.
    pub created_by_job: Option<String>,
    /// Declared in `models.toml` (cannot be deleted at run time).
    pub declared: bool,
    /// Why the last load failed (or the engine stopped), when `failed`.
    pub error: Option<String>,
}

impl From<ModelStatus> for AdminModel {
    fn from(m: ModelStatus) -> Self {
        Self {
            id: m.id,
            object: "model",
            created: m.created,
            owned_by: "ptr-server",
            status: m.status,
            parent: m.parent,
            created_by_job: m.created_by_job,
            declared: m.declared,
            error: m.error,
        }
    }
}

impl Listed for AdminModel {
    fn list_id(&self) -> Option<&str> {
        Some(&self.id)
    }
}

/// List every model, loaded or not.
#[utoipa::path(get, path = "/models", tag = "admin: models", operation_id = "list_all_models",
    responses((status = 200, body = List<AdminModel>), Unauthorized),
    security(("admin_token" = [])))]
pub async fn list(State(admin): State<Shared>) -> Result<Json<List<AdminModel>>, ApiError> {
    let data = admin
        .models
        .list()
        .into_iter()
        .map(AdminModel::from)
        .collect();
    Ok(Json(List::new(data, false)))
}

/// Retrieve a model with its state.
#[utoipa::path(get, path = "/models/{id}", tag = "admin: models", operation_id = "retrieve_model",
    params(("id" = String, Path, description = "The model id")),
    responses(
        (status = 200, body = AdminModel),
        (status = 404, description = "No model with this id", body = ErrorEnvelope),
        Unauthorized,
    ),
    security(("admin_token" = [])))]
pub async fn retrieve(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AdminModel>, ApiError> {
    Ok(Json(admin.models.status(&id)?.into()))
}

/// Load a model and wait until it serves; a model loaded already is left as it is.
#[utoipa::path(post, path = "/models/{id}/load", tag = "admin: models", operation_id = "load_model",
    params(("id" = String, Path, description = "The model id")),
    responses(
        (status = 200, description = "The model, `loaded`", body = AdminModel),
        (status = 404, description = "No model with this id", body = ErrorEnvelope),
        (status = 409, description = "A `path` model whose file does not exist (yet)", body = ErrorEnvelope),
        (status = 503, description = "The model failed to load", body = ErrorEnvelope),
        Unauthorized,
    ),
    security(("admin_token" = [])))]
pub async fn load(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AdminModel>, ApiError> {
    admin.models.load(&id).await?;
    Ok(Json(admin.models.status(&id)?.into()))
}

/// Unload a model: running requests finish on the old engine.
#[utoipa::path(post, path = "/models/{id}/unload", tag = "admin: models",
    operation_id = "unload_model",
    params(("id" = String, Path, description = "The model id")),
    responses(
        (status = 200, description = "The model, `unloaded`", body = AdminModel),
        (status = 404, description = "No model with this id", body = ErrorEnvelope),
        Unauthorized,
    ),
    security(("admin_token" = [])))]
pub async fn unload(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<AdminModel>, ApiError> {
    admin.models.unload(&id)?;
    Ok(Json(admin.models.status(&id)?.into()))
}

/// Delete a model registered at run time (a tuned model); `models.toml` models are protected.
#[utoipa::path(delete, path = "/models/{id}", tag = "admin: models", operation_id = "delete_model",
    params(("id" = String, Path, description = "The model id")),
    responses(
        (status = 200, body = Deleted),
        (status = 404, description = "No model with this id", body = ErrorEnvelope),
        (status = 409, description = "A `models.toml` model, which cannot be deleted", body = ErrorEnvelope),
        Unauthorized,
    ),
    security(("admin_token" = [])))]
pub async fn delete(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    admin.models.remove(&id)?;
    Ok(Json(Deleted {
        id,
        object: "model",
        deleted: true,
    }))
}
