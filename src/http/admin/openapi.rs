//! The admin API's part of the OpenAPI document: [`AdminDoc`] lists every admin handler (each
//! annotated next to its code, with paths relative to `/admin/v1`, where `http::docs` nests it),
//! and the admin token's security scheme. The error responses the routes share are in
//! [`super::responses`].

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{datasets, evals, events, files, fine_tuning, jobs, models, pipelines, schemas, views};

/// The admin API: every route under `/admin/v1`.
#[derive(OpenApi)]
#[openapi(
    paths(
        files::upload, files::list, files::retrieve, files::delete, files::content,
        models::list, models::retrieve, models::delete, models::load, models::unload,
        jobs::index, jobs::retrieve, jobs::cancel, events::any,
        fine_tuning::create, fine_tuning::list, fine_tuning::retrieve, fine_tuning::cancel,
        fine_tuning::pause, fine_tuning::resume, events::fine_tuning, fine_tuning::checkpoints,
        evals::create, evals::list, evals::retrieve, evals::cancel, events::evals,
        datasets::create, datasets::list, datasets::retrieve, datasets::cancel, events::datasets,
        pipelines::create, pipelines::list, pipelines::retrieve, pipelines::cancel,
        events::pipelines,
    ),
    components(schemas(
        views::FileObject, views::Deleted, views::JobEvent, models::AdminModel,
        schemas::FileUpload, views::JobObject, schemas::FineTuningJob, schemas::DatasetJob,
        schemas::EvalJob, schemas::PipelineJob, views::JobError, schemas::JobEventStreamEvent,
        crate::jobs::finetune::Checkpoint, crate::train::report::CheckpointMetrics,
        crate::jobs::finetune::FineTuneSpec, crate::jobs::dataset::DatasetSpec,
        crate::jobs::eval::EvalJobSpec, crate::jobs::pipeline::PipelineSpec,
    )),
    modifiers(&AdminToken),
)]
pub struct AdminDoc;

/// The `admin_token` scheme every admin operation requires (`--admin-token`; a public API key
/// is not enough).
struct AdminToken;

impl Modify for AdminToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("The admin token (`--admin-token`)".into());
        components.add_security_scheme("admin_token", SecurityScheme::Http(scheme));
    }
}
