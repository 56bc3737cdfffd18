//! The pipeline routes: make a PTR model in one job (every file and model the request names, and
//! every stage's request, is checked before the job is accepted), list them, retrieve and cancel
//! one (cancel stops the running stage).

use super::jobs::{create_route, kind_routes, Page};
use super::responses::{BadBody, BadQuery, NotFound, Unauthorized};
use super::schemas::PipelineJob;
use super::views::{job_view, List};
use super::Admin;
use crate::error::ApiError;
use crate::jobs::dataset::DatasetSpec;
use crate::jobs::pipeline::PipelineSpec;
use crate::jobs::JobKind;

create_route!(JobKind::Pipeline, PipelineSpec -> PipelineJob, "admin: pipelines", "/pipelines",
    "create_pipeline",
    "Create a pipeline (`queued`): records → fine-tuning per variant → evaluation → report.",
    "The same `Idempotency-Key` returns the pipeline it made.",
    check: check, view: job_view);

/// Checks `spec` against this server's models and files, then queues it.
pub async fn accept(
    admin: &Admin,
    spec: PipelineSpec,
    key: Option<String>,
) -> Result<crate::store::JobRow, ApiError> {
    check(admin, &spec).await?;
    super::jobs::queue(admin, JobKind::Pipeline, &spec, key).await
}

/// Checks `spec` against this server's models and files (a 400 naming the field otherwise).
async fn check(admin: &Admin, spec: &PipelineSpec) -> Result<(), ApiError> {
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
    super::evals::check_tasks(admin, &spec.eval.tasks, "eval.tasks").await
}

kind_routes!(JobKind::Pipeline, PipelineJob, "admin: pipelines", "/pipelines", "pipeline",
    "a pipeline", "pipelines",
    cancel: "Cancel a pipeline: its running stage is cancelled; finished stages keep what they made.");
