//! Rows as the objects clients see: OpenAI's file, list, deletion and event objects, typed (their
//! schemas are in the OpenAPI document), and the job views of every kind (common fields, then the
//! kind's own from its spec and state), built as JSON because a job's state is; their common
//! fields ([`JobObject`]) and a fine-tuning job's OpenAI fields ([`FineTuningOutput`]) are typed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::jobs::finetune::spec::Hyperparameters;
use crate::jobs::finetune::{FineTuneSpec, FineTuneState};
use crate::jobs::{JobKind, JobState};
use crate::store::{EventRow, FileRow, JobRow};

/// OpenAI's file object.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileObject {
    pub id: String,
    /// Always `file`.
    pub object: &'static str,
    pub bytes: i64,
    pub created_at: i64,
    pub filename: String,
    /// `fine-tune`, `batch`, `user_data` or `evals` (uploads); `fine-tune-results` and
    /// `ptr-dataset` (written by jobs).
    pub purpose: String,
    /// `processed`, or `error` for a training file that does not validate.
    pub status: &'static str,
    /// Why the file is in `error` (the first bad line).
    pub status_details: Option<String>,
    /// Always `null`: files do not expire.
    pub expires_at: Option<i64>,
}

impl From<&FileRow> for FileObject {
    fn from(f: &FileRow) -> Self {
        Self {
            id: f.id.clone(),
            object: "file",
            bytes: f.bytes,
            created_at: f.created_at,
            filename: f.filename.clone(),
            purpose: f.purpose.clone(),
            status: f.status.as_str(),
            status_details: f.status_details.clone(),
            expires_at: None,
        }
    }
}

/// OpenAI's answer to a deletion.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    /// `file` or `model`.
    pub object: &'static str,
    /// Always `true`.
    pub deleted: bool,
}

/// OpenAI's list object (cursor pagination: pass `last_id` as `after` for the next page).
#[derive(Debug, Serialize, ToSchema)]
pub struct List<T> {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<T>,
    pub has_more: bool,
    pub first_id: Option<String>,
    pub last_id: Option<String>,
}

/// What a list names as its `first_id` and `last_id`.
pub trait Listed {
    fn list_id(&self) -> Option<&str>;
}

impl<T: Listed> List<T> {
    pub fn new(data: Vec<T>, has_more: bool) -> Self {
        let id = |item: Option<&T>| item.and_then(Listed::list_id).map(str::to_string);
        Self {
            object: "list",
            first_id: id(data.first()),
            last_id: id(data.last()),
            data,
            has_more,
        }
    }
}

impl Listed for Value {
    fn list_id(&self) -> Option<&str> {
        self.get("id").and_then(Value::as_str)
    }
}

impl Listed for FileObject {
    fn list_id(&self) -> Option<&str> {
        Some(&self.id)
    }
}

impl Listed for JobEvent {
    fn list_id(&self) -> Option<&str> {
        Some(&self.id)
    }
}

impl Listed for crate::jobs::finetune::Checkpoint {
    fn list_id(&self) -> Option<&str> {
        Some(&self.id)
    }
}

/// An event's id: stable, ordered, and what SSE's `Last-Event-ID` carries back.
pub fn event_id(seq: i64) -> String {
    format!("ev-{seq}")
}

/// Parses [`event_id`] (a bare number is accepted too).
pub fn parse_event_id(s: &str) -> Option<i64> {
    s.trim()
        .strip_prefix("ev-")
        .unwrap_or(s.trim())
        .parse()
        .ok()
}

/// OpenAI's job event object.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobEvent {
    /// `ev-<n>`: ordered, and what `after` and SSE's `Last-Event-ID` take.
    pub id: String,
    /// `fine_tuning.job.event`, `ptr.dataset.job.event`, `ptr.eval.job.event` or `ptr.pipeline.job.event`.
    pub object: &'static str,
    pub created_at: i64,
    /// `info`, `warn` or `error`.
    pub level: String,
    pub message: String,
    /// `message`, or `metrics` for a training step or validation (`data` holds the numbers).
    #[serde(rename = "type")]
    pub kind: String,
    pub data: Option<Value>,
}

impl JobEvent {
    pub fn new(kind: JobKind, e: &EventRow) -> Self {
        let object = match kind {
            JobKind::FineTune => "fine_tuning.job.event",
            JobKind::Dataset => "ptr.dataset.job.event",
            JobKind::Eval => "ptr.eval.job.event",
            JobKind::Pipeline => "ptr.pipeline.job.event",
        };
        Self {
            id: event_id(e.seq),
            object,
            created_at: e.created_at,
            level: e.level.clone(),
            message: e.message.clone(),
            kind: e.kind.clone(),
            data: e.data.clone(),
        }
    }
}

/// Any job, as the job index shows it: the common fields below, then the fields of the kind's
/// own object (`fine_tuning.job`, `ptr.dataset.job`, `ptr.eval.job` or `ptr.pipeline.job`).
#[derive(Serialize, ToSchema)]
pub struct JobObject<'a> {
    pub id: &'a str,
    /// `fine_tuning.job`, `ptr.dataset.job`, `ptr.eval.job` or `ptr.pipeline.job`.
    pub object: &'static str,
    /// `fine_tune`, `dataset`, `eval` or `pipeline`.
    pub kind: &'a str,
    /// `validating_files`, `queued`, `running`, `paused`, `succeeded`, `failed` or `cancelled`.
    pub status: &'static str,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<JobError>,
}

/// A job as clients see it: the request's fields (`spec`), then what the job produced (`state`)
/// — state wins over spec —, then the common fields ([`JobObject`]).
pub fn job_view(job: &JobRow) -> Value {
    let mut out = Map::new();
    for part in [&job.spec, &job.state] {
        if let Value::Object(fields) = part {
            out.extend(fields.clone());
        }
    }
    let head = JobObject {
        id: &job.id,
        object: JobKind::parse(&job.kind).map_or("job", JobKind::object),
        kind: &job.kind,
        status: job.status.as_str(),
        created_at: job.created_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        error: job
            .error
            .as_ref()
            .and_then(|e| JobError::deserialize(e).ok()),
    };
    if let Ok(Value::Object(head)) = serde_json::to_value(head) {
        out.extend(head);
    }
    Value::Object(out)
}

/// Why a job failed: a code from the runner (`trainer_failed`, `server_restarted`, …).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    pub code: String,
    pub message: String,
    pub param: Option<String>,
}

/// What a fine-tuning job's view adds to its request, as OpenAI shows it ([`ft_view`]):
/// defaults filled in, `auto` resolved.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FineTuningOutput {
    /// The seed asked for (42 when none was).
    pub seed: u64,
    /// The effective `n_epochs`, `batch_size` and `learning_rate_multiplier` (`auto` resolved).
    #[schema(value_type = Value)]
    pub hyperparameters: Hyperparameters,
    /// The tuned model's id once the job succeeded.
    pub fine_tuned_model: Option<String>,
    /// The metrics CSV and the loss-curve SVG, once the job succeeded.
    pub result_files: Vec<String>,
    pub trained_tokens: Option<u64>,
    /// Always `ptr-server`.
    pub organization_id: &'static str,
    /// Where the trainer wrote the PEFT adapter, once the job succeeded.
    #[schema(value_type = Option<String>)]
    pub adapter_dir: Option<std::path::PathBuf>,
}

/// A fine-tuning job as OpenAI shows it: the job view ([`job_view`]) with the
/// [`FineTuningOutput`] fields, and without the checkpoints (they have their own route).
pub fn ft_view(job: &JobRow) -> Value {
    let mut v = job_view(job);
    let Ok(spec) = serde_json::from_value::<FineTuneSpec>(job.spec.clone()) else {
        return v; // not a stored job's spec (each was checked when the job was created)
    };
    let state = FineTuneState::of(job);
    let output = FineTuningOutput {
        seed: spec.seed.unwrap_or(42),
        hyperparameters: state
            .hyperparameters
            .unwrap_or_else(|| spec.resolved_hyperparameters()),
        fine_tuned_model: state.fine_tuned_model,
        result_files: state.result_files.unwrap_or_default(),
        trained_tokens: state.trained_tokens,
        organization_id: "ptr-server",
        adapter_dir: state.adapter_dir,
    };
    if let (Some(view), Ok(Value::Object(output))) =
        (v.as_object_mut(), serde_json::to_value(output))
    {
        view.extend(output);
        view.remove("checkpoints");
    }
    v
}
