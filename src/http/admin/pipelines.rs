//! The pipeline routes: make a PTR model in one job (every file and model the request names, and
//! every stage's request, is checked before the job is accepted), list them, retrieve and cancel
//! one (cancel stops the running stage).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

use super::datasets::idempotency_key;
use super::jobs::{self, list_kind, Page};
use super::responses::{BadBody, BadQuery, NotFound, Unauthorized};
use super::schemas::PipelineJob;
use super::views::{job_view, List};
use super::Admin;
use super::Shared;
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::jobs::dataset::DatasetSpec;
use crate::jobs::pipeline::PipelineSpec;
use crate::jobs::JobKind;

/// Create a pipeline (`queued`): records → fine-tuning per variant → evaluation → report.
///
/// The same `Idempotency-Key` returns the pipeline it made.
#[utoipa::path(post, path = "/pipelines", tag = "admin: pipelines",
    operation_id = "create_pipeline",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first job")),
    request_body = PipelineSpec,
    responses((status = 200, description = "The job", body = PipelineJob), BadBody, Unauthorized),
    security(("admin_token" = [])))]
pub async fn create(
    State(admin): State<Shared>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<PipelineSpec>,
) -> Result<Json<Value>, ApiError> {
    let key = idempotency_key(&headers)?;
    let job = accept(&admin, spec, key).await?;
    Ok(Json(job_view(&job)))
}

/// Checks `spec` against this server's models and files, then queues it.
pub async fn accept(
    admin: &Admin,
    spec: PipelineSpec,
    key: Option<String>,
) -> Result<crate::store::JobRow, ApiError> {
    spec.check()
        .map_err(|e| ApiError::invalid(e.param, e.message))?;
    admin
        .tuned
        .check_base(&spec.model)
        .await
        .map_err(|e| ApiError::invalid("model", e))?;
    for (i, file) in spec.import_files.iter().enumerate() {
        let import: DatasetSpec = serde_json::from_value(
            serde_json::json!({"input_file": file, "input_format": "ptr_sample", "import": true}),
        )
        .expect("an import request deserialises: this is a bug");
        admin
            .datasets
            .resolve(&import, &admin.store, false)
            .await
            .map_err(|e| ApiError::invalid(format!("import_files[{i}]"), e.message))?;
    }
    if let Some(d) = &spec.dataset {
        admin
            .datasets
            .resolve(d, &admin.store, false)
            .await
            .map_err(|e| ApiError::invalid(format!("dataset.{}", e.param), e.message))?;
    }
    super::evals::check_tasks(admin, &spec.eval.tasks, "eval.tasks").await?;
    let spec = serde_json::to_value(&spec).expect("a pipeline spec serialises: this is a bug");
    Ok(admin.jobs.create(JobKind::Pipeline, spec, key).await?)
}

/// List pipelines, newest first.
#[utoipa::path(get, path = "/pipelines", tag = "admin: pipelines",
    operation_id = "list_pipelines",
    params(Page),
    responses((status = 200, body = List<PipelineJob>), BadQuery, Unauthorized),
    security(("admin_token" = [])))]
pub async fn list(
    State(admin): State<Shared>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<Value>>, ApiError> {
    list_kind(&admin, JobKind::Pipeline, query, job_view).await
}

/// Retrieve a pipeline (any job id is answered, as by `GET /jobs/{id}`).
#[utoipa::path(get, path = "/pipelines/{id}", tag = "admin: pipelines",
    operation_id = "retrieve_pipeline",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = PipelineJob), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn retrieve(admin: State<Shared>, id: Path<String>) -> Result<Json<Value>, ApiError> {
    jobs::retrieve(admin, id).await
}

/// Cancel a pipeline: its running stage is cancelled; finished stages keep what they made.
#[utoipa::path(post, path = "/pipelines/{id}/cancel", tag = "admin: pipelines",
    operation_id = "cancel_pipeline",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = PipelineJob), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn cancel(admin: State<Shared>, id: Path<String>) -> Result<Json<Value>, ApiError> {
    jobs::cancel(admin, id).await
}
