//! The evaluation job routes: create a multi-round evaluation as a job (its task files and models
//! are checked first), list them, and retrieve and cancel one (the job index's own).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;

use super::datasets::idempotency_key;
use super::jobs::{self, list_kind, Page};
use super::responses::{BadBody, BadQuery, NotFound, Unauthorized};
use super::schemas::EvalJob;
use super::views::{job_view, List};
use super::Shared;
use crate::error::ApiError;
use crate::http::extract::ApiJson;
use crate::jobs::eval::EvalJobSpec;
use crate::jobs::JobKind;

/// Create an evaluation job (`queued`).
///
/// Its task files and models are checked first. The same `Idempotency-Key` returns the job it
/// made.
#[utoipa::path(post, path = "/evals/jobs", tag = "admin: evaluations",
    operation_id = "create_eval_job",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first job")),
    request_body = EvalJobSpec,
    responses((status = 200, description = "The job", body = EvalJob), BadBody, Unauthorized),
    security(("admin_token" = [])))]
pub async fn create(
    State(admin): State<Shared>,
    headers: HeaderMap,
    ApiJson(spec): ApiJson<EvalJobSpec>,
) -> Result<Json<Value>, ApiError> {
    let key = idempotency_key(&headers)?;
    spec.check()
        .map_err(|e| ApiError::invalid(e.param, e.message))?;
    check_tasks(&admin, &spec.tasks, "tasks").await?;
    let systems = std::iter::once(("model".to_string(), &spec.model, &spec.endpoint))
        .chain(
            spec.compare
                .iter()
                .map(|c| ("compare.model".to_string(), &c.model, &c.endpoint)),
        )
        .chain(
            spec.more_systems
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("more_systems[{i}].model"), &c.model, &c.endpoint)),
        );
    for (param, m, endpoint) in systems {
        if endpoint.is_none() {
            admin
                .models
                .resolve(Some(m))
                .map_err(|e| ApiError::invalid(param, e.to_string()))?;
        }
    }
    let spec = serde_json::to_value(&spec).expect("an eval spec serialises: this is a bug");
    let job = admin.jobs.create(JobKind::Eval, spec, key).await?;
    Ok(Json(job_view(&job)))
}

/// Checks that every task's file exists and holds data of its task (400 naming
/// `<prefix>[i].file` otherwise).
pub(super) async fn check_tasks(
    admin: &super::Admin,
    tasks: &[crate::jobs::eval::EvalTask],
    prefix: &str,
) -> Result<(), ApiError> {
    for (i, t) in tasks.iter().enumerate() {
        let id = t.file.clone();
        let param = format!("{prefix}[{i}].file");
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
    Ok(())
}

/// List evaluation jobs, newest first.
#[utoipa::path(get, path = "/evals/jobs", tag = "admin: evaluations",
    operation_id = "list_eval_jobs",
    params(Page),
    responses((status = 200, body = List<EvalJob>), BadQuery, Unauthorized),
    security(("admin_token" = [])))]
pub async fn list(
    State(admin): State<Shared>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<Value>>, ApiError> {
    list_kind(&admin, JobKind::Eval, query, job_view).await
}

/// Retrieve an evaluation job (any job id is answered, as by `GET /jobs/{id}`).
#[utoipa::path(get, path = "/evals/jobs/{id}", tag = "admin: evaluations",
    operation_id = "retrieve_eval_job",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = EvalJob), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn retrieve(admin: State<Shared>, id: Path<String>) -> Result<Json<Value>, ApiError> {
    jobs::retrieve(admin, id).await
}

/// Cancel an evaluation job: it stops promptly; the items it scored are kept for a resume.
#[utoipa::path(post, path = "/evals/jobs/{id}/cancel", tag = "admin: evaluations",
    operation_id = "cancel_eval_job",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = EvalJob), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn cancel(admin: State<Shared>, id: Path<String>) -> Result<Json<Value>, ApiError> {
    jobs::cancel(admin, id).await
}
