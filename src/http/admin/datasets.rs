//! The dataset job routes: create a PTR dataset job (every reference in the request is checked
//! before the job is accepted), list them, and retrieve and cancel one (the job index's own).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

use super::jobs::{self, list_kind, Page};
use super::responses::{BadBody, BadQuery, NotFound, Unauthorized};
use super::schemas::DatasetJob;
use super::views::{job_view, List};
use super::Shared;
use crate::error::ApiError;
use crate::http::extract::ApiJson;
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

/// Create a dataset job (`queued`).
///
/// Every file and model it names is checked first. The same `Idempotency-Key` returns the job it
/// made.
#[utoipa::path(post, path = "/datasets/jobs", tag = "admin: datasets",
    operation_id = "create_dataset_job",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first job")),
    request_body = DatasetSpec,
    responses((status = 200, description = "The job", body = DatasetJob), BadBody, Unauthorized),
    security(("admin_token" = [])))]
pub async fn create(
    State(admin): State<Shared>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<DatasetSpec>,
) -> Result<Json<Value>, ApiError> {
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

/// List dataset jobs, newest first.
#[utoipa::path(get, path = "/datasets/jobs", tag = "admin: datasets",
    operation_id = "list_dataset_jobs",
    params(Page),
    responses((status = 200, body = List<DatasetJob>), BadQuery, Unauthorized),
    security(("admin_token" = [])))]
pub async fn list(
    State(admin): State<Shared>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<Value>>, ApiError> {
    list_kind(&admin, JobKind::Dataset, query, job_view).await
}

/// Retrieve a dataset job (any job id is answered, as by `GET /jobs/{id}`).
#[utoipa::path(get, path = "/datasets/jobs/{id}", tag = "admin: datasets",
    operation_id = "retrieve_dataset_job",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = DatasetJob), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn retrieve(admin: State<Shared>, id: Path<String>) -> Result<Json<Value>, ApiError> {
    jobs::retrieve(admin, id).await
}

/// Cancel a dataset job: it stops promptly; the records it wrote are kept for a resume.
#[utoipa::path(post, path = "/datasets/jobs/{id}/cancel", tag = "admin: datasets",
    operation_id = "cancel_dataset_job",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = DatasetJob), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn cancel(admin: State<Shared>, id: Path<String>) -> Result<Json<Value>, ApiError> {
    jobs::cancel(admin, id).await
}
