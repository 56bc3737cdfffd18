//! The job index over every kind (`GET /jobs?kinds=&statuses=&after=&limit=`), and retrieve and
//! cancel, shared by every kind's routes ([`kind_routes`] documents a kind's list, retrieve and
//! cancel once, for every kind whose views are the index's own).

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;

use super::responses::{BadQuery, NotFound, Unauthorized};
use super::views::JobObject;
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

/// Queues a checked request as a job of `kind` (the same `key` returns the job it made).
pub async fn queue(
    admin: &super::Admin,
    kind: JobKind,
    spec: &impl serde::Serialize,
    key: Option<String>,
) -> Result<JobRow, ApiError> {
    let spec = serde_json::to_value(spec).expect("a job request serialises: this is a bug");
    Ok(admin.jobs.create(kind, spec, key).await?)
}

/// A kind's `POST` route: the request is checked by `check` (a 400 naming the field), then queued
/// (the same `Idempotency-Key` returns the job it made) and answered with `view`. The invoking
/// module imports the names the documentation uses (`BadBody`, `Unauthorized`).
macro_rules! create_route {
    ($kind:expr, $request:ident -> $schema:ident, $tag:literal, $path:literal, $op:literal,
     $summary:literal, $description:literal, check: $check:path, view: $view:path) => {
        #[utoipa::path(post, path = $path, tag = $tag, operation_id = $op,
            summary = $summary, description = $description,
            params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried create return the first job")),
            request_body = $request,
            responses((status = 200, description = "The job", body = $schema), BadBody, Unauthorized),
            security(("admin_token" = [])))]
        pub async fn create(
            axum::extract::State(admin): axum::extract::State<$crate::http::admin::Shared>,
            headers: axum::http::HeaderMap,
            $crate::http::extract::ApiJson(spec): $crate::http::extract::ApiJson<$request>,
        ) -> Result<axum::Json<serde_json::Value>, $crate::error::ApiError> {
            let key = $crate::http::admin::jobs::idempotency_key(&headers)?;
            $check(&admin, &spec).await?;
            let job = $crate::http::admin::jobs::queue(&admin, $kind, &spec, key).await?;
            Ok(axum::Json($view(&job)))
        }
    };
}
pub(super) use create_route;

/// A kind's list, retrieve and cancel routes under `$base`, answered by the job index (the kind's
/// view is the index's own); operation ids and summaries are made of `$noun` (`dataset_job`) and
/// the kind's name in words (`$one`, `$many`). The invoking module imports the names the
/// documentation uses (`Page`, `List`, `job_view`, `BadQuery`, `NotFound`, `Unauthorized`).
macro_rules! kind_routes {
    ($kind:expr, $schema:ident, $tag:literal, $base:literal, $noun:literal, $one:literal,
     $many:literal, cancel: $cancel:literal) => {
        #[utoipa::path(get, path = $base, tag = $tag, operation_id = concat!("list_", $noun, "s"),
            summary = concat!("List ", $many, ", newest first."),
            params(Page),
            responses((status = 200, body = List<$schema>), BadQuery, Unauthorized),
            security(("admin_token" = [])))]
        pub async fn list(
            axum::extract::State(admin): axum::extract::State<$crate::http::admin::Shared>,
            query: Result<axum::extract::Query<Page>, axum::extract::rejection::QueryRejection>,
        ) -> Result<axum::Json<List<serde_json::Value>>, $crate::error::ApiError> {
            $crate::http::admin::jobs::list_kind(&admin, $kind, query, job_view).await
        }

        kind_routes!(@one get retrieve, $schema, $tag, concat!($base, "/{id}"),
            concat!("retrieve_", $noun),
            concat!("Retrieve ", $one, " (any job id is answered, as by `GET /jobs/{id}`)."));
        kind_routes!(@one post cancel, $schema, $tag, concat!($base, "/{id}/cancel"),
            concat!("cancel_", $noun), $cancel);
    };
    (@one $method:ident $name:ident, $schema:ident, $tag:literal, $path:expr, $op:expr,
     $summary:expr) => {
        #[utoipa::path($method, path = $path, tag = $tag, operation_id = $op, summary = $summary,
            params(("id" = String, Path, description = "The job id")),
            responses((status = 200, body = $schema), NotFound, Unauthorized),
            security(("admin_token" = [])))]
        pub async fn $name(
            admin: axum::extract::State<$crate::http::admin::Shared>,
            id: axum::extract::Path<String>,
        ) -> Result<axum::Json<serde_json::Value>, $crate::error::ApiError> {
            $crate::http::admin::jobs::$name(admin, id).await
        }
    };
}
pub(super) use kind_routes;
