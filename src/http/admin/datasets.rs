//! The dataset job routes: create a PTR dataset job (every reference in the request is checked
//! before the job is accepted), list them, and retrieve and cancel one (the job index's own).

use super::jobs::{create_route, kind_routes, Page};
use super::responses::{BadBody, BadQuery, NotFound, Unauthorized};
use super::schemas::DatasetJob;
use super::views::{job_view, List};
use super::Admin;
use crate::error::ApiError;
use crate::jobs::dataset::DatasetSpec;
use crate::jobs::JobKind;

create_route!(JobKind::Dataset, DatasetSpec -> DatasetJob, "admin: datasets", "/datasets/jobs",
    "create_dataset_job", "Create a dataset job (`queued`).",
    "Every file and model it names is checked first. The same `Idempotency-Key` returns the job it\nmade.",
    check: check, view: job_view);

/// Checks every file and model `spec` names (a 400 naming the field otherwise).
async fn check(admin: &Admin, spec: &DatasetSpec) -> Result<(), ApiError> {
    admin
        .datasets
        .resolve(spec, &admin.store, false)
        .await
        .map(drop)
        .map_err(|e| ApiError::invalid(e.param, e.message))
}

kind_routes!(JobKind::Dataset, DatasetJob, "admin: datasets", "/datasets/jobs", "dataset_job",
    "a dataset job", "dataset jobs",
    cancel: "Cancel a dataset job: it stops promptly; the records it wrote are kept for a resume.");
