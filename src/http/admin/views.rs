//! Rows as the JSON objects clients see: OpenAI's file, list and event objects, and the job
//! views of every kind (common fields, then the kind's own from its state).

use serde_json::{json, Map, Value};

use crate::jobs::JobKind;
use crate::store::{EventRow, FileRow, JobRow};

/// OpenAI's file object.
pub fn file_view(f: &FileRow) -> Value {
    json!({
        "id": f.id, "object": "file", "bytes": f.bytes, "created_at": f.created_at,
        "filename": f.filename, "purpose": f.purpose, "status": f.status.as_str(),
        "status_details": f.status_details, "expires_at": null,
    })
}

/// OpenAI's list object (cursor pagination).
pub fn list_view(data: Vec<Value>, has_more: bool) -> Value {
    let first = data.first().and_then(|v| v.get("id")).cloned();
    let last = data.last().and_then(|v| v.get("id")).cloned();
    json!({"object": "list", "data": data, "has_more": has_more, "first_id": first, "last_id": last})
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

/// OpenAI's job event object (`object` by kind).
pub fn event_view(kind: JobKind, e: &EventRow) -> Value {
    let object = match kind {
        JobKind::FineTune => "fine_tuning.job.event",
        JobKind::Dataset => "ptr.dataset.job.event",
        JobKind::Eval => "ptr.eval.job.event",
    };
    json!({
        "id": event_id(e.seq), "object": object, "created_at": e.created_at,
        "level": e.level, "message": e.message, "type": e.kind, "data": e.data,
    })
}

/// A job as clients see it: `id`, `object`, `status`, timestamps and `error`, the request's
/// fields (`spec`), then what the job produced (`state`) — state wins over spec.
pub fn job_view(job: &JobRow) -> Value {
    let kind = JobKind::parse(&job.kind);
    let mut out = Map::new();
    if let Value::Object(spec) = &job.spec {
        out.extend(spec.clone());
    }
    if let Value::Object(state) = &job.state {
        out.extend(state.clone());
    }
    out.insert("id".into(), json!(job.id));
    out.insert(
        "object".into(),
        json!(kind.map(JobKind::object).unwrap_or("job")),
    );
    out.insert("kind".into(), json!(job.kind));
    out.insert("status".into(), json!(job.status.as_str()));
    out.insert("created_at".into(), json!(job.created_at));
    out.insert("started_at".into(), json!(job.started_at));
    out.insert("finished_at".into(), json!(job.finished_at));
    out.insert("error".into(), job.error.clone().unwrap_or(Value::Null));
    Value::Object(out)
}
