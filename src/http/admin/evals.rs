//! The evaluation job routes: create a multi-round evaluation as a job (its task files and models
//! are checked first), list them, and retrieve and cancel one (the job index's own).

use super::jobs::{create_route, kind_routes, Page};
use super::responses::{BadBody, BadQuery, NotFound, Unauthorized};
use super::schemas::EvalJob;
use super::views::{job_view, List};
use super::Admin;
use crate::error::ApiError;
use crate::jobs::eval::EvalJobSpec;
use crate::jobs::JobKind;

create_route!(JobKind::Eval, EvalJobSpec -> EvalJob, "admin: evaluations", "/evals/jobs",
    "create_eval_job", "Create an evaluation job (`queued`).",
    "Its task files and models are checked first. The same `Idempotency-Key` returns the job it\nmade.",
    check: check, view: job_view);

/// Checks `spec`, its task files and every local model it names (a 400 naming the field).
async fn check(admin: &Admin, spec: &EvalJobSpec) -> Result<(), ApiError> {
    spec.check()
        .map_err(|e| ApiError::invalid(e.param, e.message))?;
    check_tasks(admin, &spec.tasks, "tasks").await?;
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
    Ok(())
}

/// Checks that every task's file exists and holds data of its task (400 naming
/// `<prefix>[i].file` otherwise).
pub(super) async fn check_tasks(
    admin: &Admin,
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

kind_routes!(JobKind::Eval, EvalJob, "admin: evaluations", "/evals/jobs", "eval_job",
    "an evaluation job", "evaluation jobs",
    cancel: "Cancel an evaluation job: it stops promptly; the items it scored are kept for a resume.");
