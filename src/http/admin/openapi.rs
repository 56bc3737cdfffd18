//! The admin API's part of the OpenAPI document: [`AdminDoc`] lists every admin handler (each
//! annotated next to its code, with paths relative to `/admin/v1`, where `http::docs` nests it),
//! the admin token's security scheme, and the error responses the routes share.

use std::collections::BTreeMap;

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi};

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
        schemas::FileUpload, schemas::JobObject, schemas::FineTuningJob, schemas::DatasetJob,
        schemas::EvalJob, schemas::PipelineJob, schemas::JobError, schemas::JobEventStreamEvent,
        crate::jobs::finetune::Checkpoint, crate::train::report::CheckpointMetrics,
        crate::jobs::finetune::FineTuneSpec, crate::jobs::dataset::DatasetSpec,
        crate::jobs::eval::EvalJobSpec, crate::jobs::pipeline::PipelineSpec,
    )),
    modifiers(&AdminToken),
    tags(
        (name = "admin: files", description = "OpenAI's Files API: training, query and evaluation data, and what jobs write"),
        (name = "admin: models", description = "Every model with its state; load, unload, delete at run time"),
        (name = "admin: jobs", description = "Every job of every kind: index, retrieve, cancel, events"),
        (name = "admin: fine-tuning", description = "OpenAI's fine-tuning jobs, running PTR's thought-mask trainer"),
        (name = "admin: evaluations", description = "Multi-round evaluations as jobs"),
        (name = "admin: datasets", description = "PTR thought-data construction (weak/strong collaboration, consistency filter) as jobs"),
        (name = "admin: pipelines", description = "A PTR model in one job: records, fine-tuning (with ablations), evaluation against the base model, report"),
    )
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

/// One error response with the OpenAI envelope.
fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorEnvelope"))),
        )
        .into()
}

fn responses(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| (status.to_string(), error(description)))
        .collect()
}

/// 401: the admin token is missing or wrong (every admin route).
pub struct Unauthorized;

impl IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("401", "Missing or wrong admin token")])
    }
}

/// 404: no object with the id in the path.
pub struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("404", "No object with this id")])
    }
}

/// 400: a query parameter is invalid (`param` names it).
pub struct BadQuery;

impl IntoResponses for BadQuery {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[("400", "A query parameter is invalid (`param` names it)")])
    }
}

/// 400, 413, 415: a request body that cannot be accepted.
pub struct BadBody;

impl IntoResponses for BadBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        responses(&[
            ("400", "The request is invalid (`param` names the field)"),
            ("413", "The body is larger than the server's limit"),
            ("415", "The body is not JSON"),
        ])
    }
}
