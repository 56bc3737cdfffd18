//! `POST /datasets/jobs` (create a PTR dataset job) and `GET /datasets/jobs` (list them).
//! Every reference in the request is checked before the job is accepted.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

use super::jobs::{list_kind, Page};
use super::views::job_view;
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::http::state::AppState;
use crate::jobs::dataset::DatasetSpec;
use crate::jobs::JobKind;

/// The `Idempotency-Key` header, if any.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key") {
        None => Ok(None),
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= 256 => Ok(Some(k.trim().to_string())),
            _ => Err(ApiError::invalid(
                "Idempotency-Key",
                "`Idempotency-Key` must be 1 to 256 visible characters",
            )),
        },
    }
}

/// Creates a dataset job (200 with the job, `queued`).
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<DatasetSpec>,
) -> Result<Json<Value>, ApiError> {
    let admin = state.admin()?;
    let key = idempotency_key(&headers)?;
    admin
        .datasets
        .resolve(&spec, &admin.store, false)
        .await
        .map_err(|e| ApiError::invalid(e.param, e.message))?;
    let spec = serde_json::to_value(&spec).expect("a dataset spec serialises: this is a bug");
    let job = admin.jobs.create(JobKind::Dataset, spec, key).await?;
    Ok(Json(job_view(&job)))
}

/// Lists the jobs of this kind, newest first.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    list_kind(&state, JobKind::Dataset, query, job_view).await
}
