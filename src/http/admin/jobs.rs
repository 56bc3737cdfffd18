//! The job index over every kind (`GET /jobs?kinds=&statuses=&after=&limit=`), and retrieve and
//! cancel, shared by every kind's routes.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::responses::{BadQuery, NotFound, Unauthorized};
use super::schemas::JobObject;
use super::views::{job_view, List};
use super::Shared;
use crate::error::ApiError;
use crate::jobs::JobKind;
use crate::store::{JobRow, JobStatus};

/// Query of the job index.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListJobs {
    /// Comma-separated kinds (`dataset`, `fine_tune`, `eval`) [default: all].
    kinds: Option<String>,
    /// Comma-separated statuses [default: all].
    statuses: Option<String>,
    /// The id of the last job of the previous page.
    after: Option<String>,
    /// 1 to 100 [default: 20].
    limit: Option<usize>,
}

fn split(s: &Option<String>) -> Vec<&str> {
    s.as_deref()
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// Checks a list's `limit` (OpenAI's default 20, at most 100).
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit.unwrap_or(20) {
        n @ 1..=100 => Ok(n),
        _ => Err(ApiError::invalid(
            "limit",
            "`limit` must be between 1 and 100",
        )),
    }
}

/// Lists jobs newest first, with OpenAI's cursor pagination.
pub async fn list_jobs(
    admin: &super::Admin,
    kinds: Vec<JobKind>,
    statuses: Vec<JobStatus>,
    after: Option<String>,
    limit: Option<usize>,
    view: fn(&JobRow) -> Value,
) -> Result<Json<List<Value>>, ApiError> {
    let limit = page_limit(limit)?;
    let kinds: Vec<&'static str> = kinds.iter().map(|k| k.as_str()).collect();
    let mut rows = admin
        .store
        .call(move |s| s.list_jobs(&kinds, &statuses, after.as_deref(), limit + 1))
        .await?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Json(List::new(rows.iter().map(view).collect(), has_more)))
}

/// The query of a kind's job list: OpenAI's cursor pagination.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// The id of the last object of the previous page.
    after: Option<String>,
    /// 1 to 100 [default: 20].
    limit: Option<usize>,
}

impl Page {
    pub fn after(&self) -> Option<&str> {
        self.after.as_deref()
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
    }
}

/// `GET /<kind>/jobs`: one kind's jobs, newest first, each shown by `view`.
pub async fn list_kind(
    admin: &super::Admin,
    kind: JobKind,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
    view: fn(&JobRow) -> Value,
) -> Result<Json<List<Value>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    list_jobs(admin, vec![kind], vec![], q.after, q.limit, view).await
}

/// List jobs of every kind, newest first.
#[utoipa::path(get, path = "/jobs", tag = "admin: jobs", operation_id = "list_jobs",
    params(ListJobs),
    responses((status = 200, body = List<JobObject>), BadQuery, Unauthorized),
    security(("admin_token" = [])))]
pub async fn index(
    State(admin): State<Shared>,
    query: Result<Query<ListJobs>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<Value>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let kinds = split(&q.kinds)
        .into_iter()
        .map(|k| {
            JobKind::parse(k).ok_or_else(|| {
                ApiError::invalid(
                    "kinds",
                    format!("unknown job kind `{k}`; kinds are dataset, fine_tune, eval"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let statuses = split(&q.statuses)
        .into_iter()
        .map(|s| {
            JobStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("statuses", format!("unknown status `{s}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    list_jobs(&admin, kinds, statuses, q.after, q.limit, job_view).await
}

/// A job by id, of `kind` when given (another kind's id is a 404 there).
pub async fn find(
    admin: &super::Admin,
    id: String,
    kind: Option<JobKind>,
) -> Result<JobRow, ApiError> {
    let job = admin.jobs.job(&id).await?;
    match kind {
        Some(k) if k.as_str() != job.kind => {
            Err(crate::store::StoreError::NotFound { what: "job", id }.into())
        }
        _ => Ok(job),
    }
}

/// Retrieve a job of any kind.
#[utoipa::path(get, path = "/jobs/{id}", tag = "admin: jobs", operation_id = "retrieve_job",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = JobObject), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn retrieve(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(job_view(&find(&admin, id, None).await?)))
}

/// Cancel a job of any kind.
///
/// It stops promptly; what it wrote is kept. An ended job is left as it is.
#[utoipa::path(post, path = "/jobs/{id}/cancel", tag = "admin: jobs", operation_id = "cancel_job",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = JobObject), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn cancel(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    find(&admin, id.clone(), None).await?;
    let job = admin.jobs.cancel(&id).await?;
    Ok(Json(job_view(&job)))
}
