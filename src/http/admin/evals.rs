//! `POST /evals/jobs` (a multi-round evaluation as a job) and `GET /evals/jobs`.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

use super::datasets::idempotency_key;
use super::jobs::{list_kind, Page};
use super::views::job_view;
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::state::AppState;
use crate::jobs::eval::EvalJobSpec;
use crate::jobs::JobKind;

/// Creates an evaluation job.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<EvalJobSpec>,
) -> Result<Json<Value>, ApiError> {
    let admin = state.admin()?;
    let key = idempotency_key(&headers)?;
    spec.check().map_err(|(p, m)| ApiError::invalid(p, m))?;
    for (i, t) in spec.tasks.iter().enumerate() {
        let id = t.file.clone();
        let param = format!("tasks[{i}].file");
        let content = admin
            .store
            .call(move |s| s.file_content(&id))
            .await
            .map_err(|_| {
                ApiError::invalid(
                    param.clone(),
                    format!(
                        "no file with id `{}`; upload it with POST /admin/v1/files",
                        t.file
                    ),
                )
            })?;
        let text = String::from_utf8_lossy(&content);
        t.task
            .load(&text)
            .map_err(|e| ApiError::invalid(param, format!("not a {} file: {e}", t.task)))?;
    }
    for (param, model, endpoint) in [
        ("model", Some(&spec.model), &spec.endpoint),
        (
            "compare.model",
            spec.compare.as_ref().map(|c| &c.model),
            &spec.compare.as_ref().and_then(|c| c.endpoint.clone()),
        ),
    ] {
        if let (Some(m), None) = (model, endpoint) {
            state
                .models
                .resolve(Some(m))
                .map_err(|e| ApiError::invalid(param, e.to_string()))?;
        }
    }
    let spec = serde_json::to_value(&spec).expect("an eval spec serialises: this is a bug");
    let job = admin.jobs.create(JobKind::Eval, spec, key).await?;
    Ok(Json(job_view(&job)))
}

/// Lists the jobs of this kind, newest first.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    list_kind(&state, JobKind::Eval, query, job_view).await
}
