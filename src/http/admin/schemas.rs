//! Schemas of the admin objects that have no Rust type of their own: a job as clients see it is
//! built at run time from its spec and state ([`super::views::job_view`]), so each kind's job
//! schema is merged from the schemas of its common fields ([`JobObject`]), its request type and
//! its state type (a test
//! checks them against real views); plus the multipart upload form and one SSE event of a job's
//! event stream.

use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use super::views::{FineTuningOutput, JobObject};
use crate::jobs::dataset::{DatasetSpec, DatasetState};
use crate::jobs::eval::{EvalJobSpec, EvalState};
use crate::jobs::finetune::FineTuneSpec;
use crate::jobs::pipeline::{PipelineSpec, PipelineState};
use crate::jobs::JobKind;
use crate::wire::{component, exactly, json_text};

/// `POST /files`: a `multipart/form-data` body.
#[derive(ToSchema)]
pub struct FileUpload {
    /// The file's content.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// `fine-tune` (validated as chat lines on upload), `batch`, `user_data` or `evals`.
    #[schema(example = "fine-tune")]
    pub purpose: String,
}

/// A `kind` job view's schema: one object with the properties of `parts` in turn (a later part's
/// property replaces an earlier one's of the same name), required where a part requires it, its
/// `object` and `kind` the kind's. A job view is its common fields, its request's and its state's
/// ([`super::views::job_view`]), so its schema is made of theirs.
fn merged(kind: JobKind, description: &str, parts: [RefOr<Schema>; 3]) -> RefOr<Schema> {
    let mut out = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .build();
    for part in parts {
        let RefOr::T(Schema::Object(part)) = part else {
            panic!("a job view's parts are object schemas: this is a bug")
        };
        out.properties.extend(part.properties);
        for name in part.required {
            if !out.required.contains(&name) {
                out.required.push(name);
            }
        }
    }
    for (name, value) in [("object", kind.object()), ("kind", kind.as_str())] {
        out.properties.insert(name.into(), exactly(value).into());
    }
    RefOr::T(Schema::Object(out))
}

/// A kind's job view: [`JobObject`], the kind's request and its state (or output) type, merged.
macro_rules! job_view_schema {
    ($name:ident = $kind:expr, $request:ty, $state:ty, $description:literal) => {
        #[doc = $description]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                merged(
                    $kind,
                    $description,
                    [
                        JobObject::schema(),
                        <$request>::schema(),
                        <$state>::schema(),
                    ],
                )
            }
        }

        impl ToSchema for $name {
            fn schemas(out: &mut Vec<(String, RefOr<Schema>)>) {
                <JobObject as ToSchema>::schemas(out);
                <$request as ToSchema>::schemas(out);
                <$state as ToSchema>::schemas(out);
            }
        }
    };
}

job_view_schema!(
    FineTuningJob = JobKind::FineTune,
    FineTuneSpec,
    FineTuningOutput,
    "OpenAI's `fine_tuning.job`: the common job fields, the request's fields, and what the job \
     produced."
);
job_view_schema!(
    DatasetJob = JobKind::Dataset,
    DatasetSpec,
    DatasetState,
    "`ptr.dataset.job`: the common job fields, the request's fields, and what the job produced."
);
job_view_schema!(
    EvalJob = JobKind::Eval,
    EvalJobSpec,
    EvalState,
    "`ptr.eval.job`: the common job fields, the request's fields, and what the job produced."
);
job_view_schema!(
    PipelineJob = JobKind::Pipeline,
    PipelineSpec,
    PipelineState,
    "`ptr.pipeline.job`: the common job fields, the request's fields, and its stages."
);

/// One SSE event of `GET …/events?stream=true`, as an event-stream parser reads it.
pub struct JobEventStreamEvent;

impl PartialSchema for JobEventStreamEvent {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "One event: `data` is a job event (its `id` is the SSE id, for `Last-Event-ID`), \
                 or `[DONE]` once the job has ended and every event was sent.",
            ))
            .property("id", ObjectBuilder::new().schema_type(Type::String))
            .property(
                "data",
                OneOfBuilder::new()
                    .item(exactly("[DONE]"))
                    .item(json_text(component("JobEvent"))),
            )
            .required("data")
            .into()
    }
}

impl ToSchema for JobEventStreamEvent {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::admin::views::ft_view;
    use crate::http::admin::views::job_view;
    use crate::store::{JobRow, JobStatus};
    use serde_json::{json, Value};
    use std::collections::BTreeSet;

    /// The schema's (required, all) property names.
    fn properties<T: PartialSchema>() -> (BTreeSet<String>, BTreeSet<String>) {
        let RefOr::T(Schema::Object(o)) = T::schema() else {
            panic!("an object schema")
        };
        (
            o.required.into_iter().collect(),
            o.properties.into_keys().collect(),
        )
    }

    fn job(kind: &str, spec: Value, state: Value) -> JobRow {
        JobRow {
            id: "job-1".into(),
            kind: kind.into(),
            status: JobStatus::Succeeded,
            spec,
            state,
            error: None,
            created_at: 1,
            started_at: Some(2),
            finished_at: Some(3),
        }
    }

    /// A view has every required property, and no key the schema does not list.
    fn matches<T: PartialSchema>(view: Value) {
        let (required, all) = properties::<T>();
        let keys: BTreeSet<String> = view.as_object().unwrap().keys().cloned().collect();
        assert!(
            required.is_subset(&keys),
            "missing {:?}",
            required.difference(&keys)
        );
        assert!(
            keys.is_subset(&all),
            "undocumented {:?}",
            keys.difference(&all)
        );
    }

    #[test]
    fn job_schemas_describe_the_views() {
        let ft: crate::jobs::finetune::FineTuneSpec =
            serde_json::from_value(json!({"model": "m", "training_file": "file-1"})).unwrap();
        let done = json!({"hyperparameters": {"n_epochs": 3}, "trained_tokens": 9,
            "checkpoints": [], "fine_tuned_model": "ft:m:ptr:1", "result_files": ["file-2"],
            "adapter_dir": "/data/fine_tuning/job-1/trainer/adapter"});
        let ft = serde_json::to_value(ft).unwrap();
        matches::<FineTuningJob>(ft_view(&job("fine_tune", ft.clone(), done)));
        matches::<FineTuningJob>(ft_view(&job("fine_tune", ft, json!({}))));
        let ds: crate::jobs::dataset::DatasetSpec =
            serde_json::from_value(json!({"input_file": "file-1", "import": true})).unwrap();
        let state = json!({"request_counts": {}, "output_file_id": "a", "error_file_id": "b",
            "provenance_file_id": "c", "summary": {}});
        matches::<DatasetJob>(job_view(&job(
            "dataset",
            serde_json::to_value(ds).unwrap(),
            state,
        )));
        let ev: crate::jobs::eval::EvalJobSpec = serde_json::from_value(
            json!({"tasks": [{"task": "gsm8k", "file": "file-1"}], "model": "m"}),
        )
        .unwrap();
        let state = json!({"progress": {}, "result_files": {}, "summary": [], "failed_items": 0});
        matches::<EvalJob>(job_view(&job(
            "eval",
            serde_json::to_value(ev).unwrap(),
            state,
        )));
        let pl: crate::jobs::pipeline::PipelineSpec = serde_json::from_value(json!({
            "model": "m", "import_files": ["file-1"],
            "eval": {"tasks": [{"task": "gsm8k", "file": "file-2"}]}}))
        .unwrap();
        let state = json!({"stage": "report", "stages": {}, "training_files": {},
            "result_files": {}, "report_dir": "/x"});
        matches::<PipelineJob>(job_view(&job(
            "pipeline",
            serde_json::to_value(pl).unwrap(),
            state,
        )));
        let (required, _) = properties::<JobObject>();
        let view = job_view(&job("eval", json!({}), json!({})));
        assert!(required.iter().all(|k| view.get(k).is_some()));
    }

    /// A kind's schema is its parts': the request's and the state's own fields and docs, its
    /// `object` and `kind` as the kind's one value, a state field replacing a request field.
    #[test]
    fn a_job_schema_is_made_of_its_request_and_state() {
        let RefOr::T(Schema::Object(o)) = DatasetJob::schema() else {
            panic!("an object schema")
        };
        let doc = |name: &str| match &o.properties[name] {
            RefOr::T(Schema::Object(p)) => p.description.clone(),
            _ => None,
        };
        let json = |name: &str| serde_json::to_value(&o.properties[name]).unwrap();
        assert_eq!(json("object")["enum"], json!(["ptr.dataset.job"]));
        assert_eq!(json("kind")["enum"], json!(["dataset"]));
        assert_eq!(
            doc("input_file").as_deref(),
            Some("The file id of the queries.")
        );
        assert!(doc("output_file_id").unwrap().contains("accepted records"));
        assert!(o.required.contains(&"input_file".to_string()));
        let RefOr::T(Schema::Object(ft)) = FineTuningJob::schema() else {
            panic!("an object schema")
        };
        // The request's `seed` is optional; the view always shows one (42 by default).
        assert!(ft.required.contains(&"seed".to_string()));
        assert_eq!(
            serde_json::to_value(&ft.properties["seed"]).unwrap()["type"],
            json!("integer")
        );
    }
}
