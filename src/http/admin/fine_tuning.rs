//! OpenAI's fine-tuning routes, self-hosted: create, list, retrieve, cancel, pause, resume,
//! events and checkpoints, with PTR's settings in the `ptr` extension object.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::Value;

use super::jobs::{create_route, find, list_kind, page_limit, Page};
use super::responses::{BadBody, BadQuery, NotFound, Unauthorized};
use super::schemas::FineTuningJob;
use super::views::{ft_view, List};
use super::Shared;
use crate::error::{ApiError, ErrorEnvelope};
use crate::jobs::finetune::{Checkpoint, FineTuneSpec, FineTuneState};
use crate::jobs::{JobKind, JobState};
use crate::store::{FileStatus, StoreError};

async fn check_file(admin: &super::Admin, id: &str, param: &str) -> Result<(), ApiError> {
    let owned = id.to_string();
    let row = match admin.store.call(move |s| s.file(&owned)).await {
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

create_route!(JobKind::FineTune, FineTuneSpec -> FineTuningJob, "admin: fine-tuning",
    "/fine_tuning/jobs", "create_fine_tuning_job", "Create a fine-tuning job (`queued`).",
    "OpenAI's request, with PTR's settings in `ptr`. The same `Idempotency-Key` returns the job it\nmade.",
    check: check, view: ft_view);

/// Checks `spec`, its files and its base model (a 400 naming the field otherwise).
async fn check(admin: &super::Admin, spec: &FineTuneSpec) -> Result<(), ApiError> {
    spec.check()
        .map_err(|e| ApiError::invalid(e.param, e.message))?;
    check_file(admin, &spec.training_file, "training_file").await?;
    if let Some(v) = &spec.validation_file {
        check_file(admin, v, "validation_file").await?;
    }
    admin
        .tuned
        .check_base(&spec.model)
        .await
        .map_err(|e| ApiError::invalid("model", e))
}

/// List fine-tuning jobs, newest first.
#[utoipa::path(get, path = "/fine_tuning/jobs", tag = "admin: fine-tuning",
    operation_id = "list_fine_tuning_jobs",
    params(Page),
    responses((status = 200, body = List<FineTuningJob>), BadQuery, Unauthorized),
    security(("admin_token" = [])))]
pub async fn list(
    State(admin): State<Shared>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<Value>>, ApiError> {
    list_kind(&admin, JobKind::FineTune, query, ft_view).await
}

/// Retrieve a fine-tuning job.
#[utoipa::path(get, path = "/fine_tuning/jobs/{id}", tag = "admin: fine-tuning",
    operation_id = "retrieve_fine_tuning_job",
    params(("id" = String, Path, description = "The job id")),
    responses((status = 200, body = FineTuningJob), NotFound, Unauthorized),
    security(("admin_token" = [])))]
pub async fn retrieve(
    State(admin): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(ft_view(
        &find(&admin, id, Some(JobKind::FineTune)).await?,
    )))
}

/// A fine-tuning job's action route: the job manager's action of the same name on a fine-tuning
/// job (another kind's id is a 404 here), answered with the job's view after it.
macro_rules! action_route {
    ($action:ident, $path:literal, $op:literal, $summary:literal $(, $description:literal)?) => {
        #[utoipa::path(post, path = $path, tag = "admin: fine-tuning", operation_id = $op,
            summary = $summary, $(description = $description,)?
            params(("id" = String, Path, description = "The job id")),
            responses((status = 200, body = FineTuningJob), NotFound, Unauthorized),
            security(("admin_token" = [])))]
        pub async fn $action(
            State(admin): State<Shared>,
            Path(id): Path<String>,
        ) -> Result<Json<Value>, ApiError> {
            find(&admin, id.clone(), Some(JobKind::FineTune)).await?;
            Ok(Json(ft_view(&admin.jobs.$action(&id).await?)))
        }
    };
}

action_route!(
    cancel,
    "/fine_tuning/jobs/{id}/cancel",
    "cancel_fine_tuning_job",
    "Cancel a fine-tuning job.",
    "The trainer stops at once; its checkpoints are kept. An ended job is left as it is."
);
action_route!(
    pause,
    "/fine_tuning/jobs/{id}/pause",
    "pause_fine_tuning_job",
    "Pause a queued or running fine-tuning job; a running one stops, keeping its checkpoints."
);
action_route!(
    resume,
    "/fine_tuning/jobs/{id}/resume",
    "resume_fine_tuning_job",
    "Queue a paused fine-tuning job again; it continues from its last checkpoint."
);

/// List a fine-tuning job's checkpoints, newest first, each with its step's metrics.
#[utoipa::path(get, path = "/fine_tuning/jobs/{id}/checkpoints", tag = "admin: fine-tuning",
    operation_id = "list_fine_tuning_checkpoints",
    params(("id" = String, Path, description = "The job id"), Page),
    responses(
        (status = 200, body = List<Checkpoint>),
        (status = 400, description = "A query parameter is invalid, or `after` names no checkpoint", body = ErrorEnvelope),
        NotFound, Unauthorized,
    ),
    security(("admin_token" = [])))]
pub async fn checkpoints(
    State(admin): State<Shared>,
    Path(id): Path<String>,
    query: Result<Query<Page>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<List<Checkpoint>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let limit = page_limit(q.limit())?;
    let job = find(&admin, id, Some(JobKind::FineTune)).await?;
    let mut all = FineTuneState::of(&job).checkpoints.unwrap_or_default();
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
    for c in &mut all {
        c.path = None;
    }
    Ok(Json(List::new(all, has_more)))
}
