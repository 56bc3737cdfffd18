//! OpenAI's fine-tuning routes, self-hosted: create, list, retrieve, cancel, pause, resume,
//! events and checkpoints, with PTR's settings in the `ptr` extension object.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::{json, Value};

use super::datasets::idempotency_key;
use super::jobs::{find, list_kind, page_limit, Page};
use super::views::{job_view, list_view};
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::state::AppState;
use crate::jobs::finetune::{checkpoint, Checkpoint, FineTuneSpec};
use crate::jobs::JobKind;
use crate::store::{FileStatus, StoreError};

async fn check_file(state: &AppState, id: &str, param: &str) -> Result<(), ApiError> {
    let owned = id.to_string();
    let row = match state.admin()?.store.call(move |s| s.file(&owned)).await {
        Ok(row) => row,
        Err(StoreError::NotFound { .. }) => {
            return Err(ApiError::invalid(
                param,
                format!("no file with id `{id}`; upload it with POST /admin/v1/files"),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if row.purpose != "fine-tune" {
        return Err(ApiError::invalid(
            param,
            format!(
                "the file `{id}` has purpose `{}`, not `fine-tune`",
                row.purpose
            ),
        ));
    }
    if row.status != FileStatus::Processed {
        let why = row.status_details.unwrap_or_default();
        return Err(ApiError::invalid(
            param,
            format!("the file `{id}` is not a valid training file: {why}"),
        ));
    }
    Ok(())
}

/// `POST /fine_tuning/jobs`.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<FineTuneSpec>,
) -> Result<Json<Value>, ApiError> {
    let admin = state.admin()?;
    let key = idempotency_key(&headers)?;
    spec.check()
        .map_err(|e| ApiError::invalid(e.param, e.message))?;
    check_file(&state, &spec.training_file, "training_file").await?;
    if let Some(v) = &spec.validation_file {
        check_file(&state, v, "validation_file").await?;
    }
    let tuned = admin
        .tuned
        .as_ref()
        .ok_or_else(|| ApiError::invalid("model", "fine-tuning is not available on this server"))?;
    tuned
        .check_base(&spec.model)
        .await
        .map_err(|e| ApiError::invalid("model", e))?;
    let spec = serde_json::to_value(&spec).expect("a fine-tuning spec serialises: this is a bug");
    let job = admin.jobs.create(JobKind::FineTune, spec, key).await?;
    Ok(Json(ft_view(&job)))
}

/// A fine-tuning job as OpenAI shows it.
pub fn ft_view(job: &crate::store::JobRow) -> Value {
    let mut v = job_view(job);
    for (k, default) in [
        ("fine_tuned_model", Value::Null),
        ("result_files", json!([])),
        ("trained_tokens", Value::Null),
        ("organization_id", json!("ptr-server")),
        ("seed", json!(42)),
    ] {
        if v.get(k).is_none_or(Value::is_null) {
            v[k] = default;
        }
    }
    if v.get("hyperparameters").is_none_or(Value::is_null) {
        if let Ok(spec) = serde_json::from_value::<FineTuneSpec>(job.spec.clone()) {
            v["hyperparameters"] = spec.resolved_hyperparameters();
        }
    }
    if let Some(obj) = v.as_object_mut() {
        obj.remove("checkpoints");
    }
    v
}

/// `GET /fine_tuning/jobs`.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    list_kind(&state, JobKind::FineTune, query, ft_view).await
}

/// `GET /fine_tuning/jobs/{id}`.
pub async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(ft_view(
        &find(&state, id, Some(JobKind::FineTune)).await?,
    )))
}

/// `POST /fine_tuning/jobs/{id}/cancel`.
pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    find(&state, id.clone(), Some(JobKind::FineTune)).await?;
    Ok(Json(ft_view(&state.admin()?.jobs.cancel(&id).await?)))
}

/// `POST /fine_tuning/jobs/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    find(&state, id.clone(), Some(JobKind::FineTune)).await?;
    Ok(Json(ft_view(&state.admin()?.jobs.pause(&id).await?)))
}

/// `POST /fine_tuning/jobs/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    find(&state, id.clone(), Some(JobKind::FineTune)).await?;
    Ok(Json(ft_view(&state.admin()?.jobs.resume(&id).await?)))
}

/// `GET /fine_tuning/jobs/{id}/checkpoints`: newest first.
pub async fn checkpoints(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = page_limit(q.limit())?;
    let job = find(&state, id, Some(JobKind::FineTune)).await?;
    let mut all = checkpoint::in_state(&job.state);
    all.reverse();
    if let Some(after) = q.after() {
        let pos = all
            .iter()
            .position(|c| c.id == after)
            .ok_or_else(|| ApiError::invalid("after", format!("no checkpoint `{after}`")))?;
        all.drain(..=pos);
    }
    let has_more = all.len() > limit;
    all.truncate(limit);
    let shown = all
        .into_iter()
        .map(|c| Checkpoint { path: None, ..c })
        .map(|c| serde_json::to_value(c).expect("a checkpoint serialises: this is a bug"))
        .collect();
    Ok(Json(list_view(shown, has_more)))
}
