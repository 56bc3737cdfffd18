//! A job's events: OpenAI's newest-first list (`after`, `limit`), and the `?stream=true`
//! extension — SSE from the first event (or after `Last-Event-ID`), then live, ending with
//! `data: [DONE]` once the job has ended and every event was sent.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::jobs::{find, page_limit};
use super::responses::{BadQuery, NotFound, Unauthorized};
use super::schemas::JobEventStreamEvent;
use super::views::{event_id, parse_event_id, JobEvent, List};
use super::Shared;
use crate::error::ApiError;
use crate::jobs::JobKind;
use crate::store::{EventCursor, Store};

/// Query of the events routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// The id of the last event of the previous page (with `stream`: start after it).
    after: Option<String>,
    /// 1 to 100 [default: 20].
    limit: Option<usize>,
    /// Answer with an SSE stream: every event oldest first, then live until the job ends.
    #[serde(default)]
    stream: bool,
}

/// One URL of the events route: its documentation, then the shared [`list`].
macro_rules! events_route {
    ($name:ident, $path:literal, $tag:literal, $op:literal, $summary:literal) => {
        /// An events route (documented in the OpenAPI document); see [`list`].
        #[utoipa::path(get, path = $path, tag = $tag, operation_id = $op, summary = $summary,
            description = "Newest first, with OpenAI's cursor pagination; with `stream=true`, an \
SSE stream from the first event (or after `Last-Event-ID`), then live, ending with `data: [DONE]` \
once the job has ended.",
            params(
                ("id" = String, Path, description = "The job id"),
                EventsQuery,
                ("Last-Event-ID" = Option<String>, Header, description = "With `stream=true`: resume after this event id"),
            ),
            responses(
                (status = 200, description = "The events; with `stream=true`, an SSE stream of them", content(
                    (List<JobEvent> = "application/json"),
                    (JobEventStreamEvent = "text/event-stream"),
                )),
                BadQuery, NotFound, Unauthorized,
            ),
            security(("admin_token" = [])))]
        pub async fn $name(
            admin: State<Shared>,
            id: Path<String>,
            headers: HeaderMap,
            query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
        ) -> Result<Response, ApiError> {
            list(admin, id, headers, query).await
        }
    };
}

events_route!(
    any,
    "/jobs/{id}/events",
    "admin: jobs",
    "list_job_events",
    "List a job's events"
);
events_route!(
    fine_tuning,
    "/fine_tuning/jobs/{id}/events",
    "admin: fine-tuning",
    "list_fine_tuning_events",
    "List a fine-tuning job's events"
);
events_route!(
    evals,
    "/evals/jobs/{id}/events",
    "admin: evaluations",
    "list_eval_job_events",
    "List an evaluation job's events"
);
events_route!(
    datasets,
    "/datasets/jobs/{id}/events",
    "admin: datasets",
    "list_dataset_job_events",
    "List a dataset job's events"
);

events_route!(
    pipelines,
    "/pipelines/{id}/events",
    "admin: pipelines",
    "list_pipeline_events",
    "List a pipeline's events"
);

/// `GET /…/jobs/{id}/events`, for every kind.
async fn list(
    State(admin): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let job = find(&admin, id.clone(), None).await?;
    let kind = JobKind::parse(&job.kind).unwrap_or(JobKind::Dataset);
    let after = match q.after.as_deref() {
        Some(a) => Some(
            parse_event_id(a)
                .ok_or_else(|| ApiError::invalid("after", format!("`{a}` is not an event id")))?,
        ),
        None => None,
    };
    if q.stream {
        let resume = headers
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_event_id)
            .or(after)
            .unwrap_or(0);
        let stream = follow(
            admin.store.clone(),
            admin.jobs.subscribe(),
            id,
            kind,
            resume,
        );
        let mut response = Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response();
        response.headers_mut().insert(
            "x-accel-buffering",
            axum::http::HeaderValue::from_static("no"),
        );
        return Ok(response);
    }
    let limit = page_limit(q.limit)?;
    let mut rows = admin
        .store
        .call(move |s| s.events(&id, EventCursor::NewestBefore(after), limit + 1))
        .await?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Json(List::new(
        rows.iter().map(|e| JobEvent::new(kind, e)).collect(),
        has_more,
    ))
    .into_response())
}

/// Events oldest first after `seq`, then live until the job ends.
fn follow(
    store: std::sync::Arc<Store>,
    mut changes: tokio::sync::broadcast::Receiver<String>,
    job_id: String,
    kind: JobKind,
    mut seq: i64,
) -> impl Stream<Item = Result<Event, Infallible>> {
    async_stream::stream! {
        loop {
            let id = job_id.clone();
            let read = store
                .call(move |s| {
                    // Status first: an event appended with the final transition is then seen.
                    let status = s.job(&id)?.status;
                    Ok((s.events(&id, EventCursor::OldestAfter(seq), 500)?, status))
                })
                .await;
            let Ok((events, status)) = read else {
                yield Ok(Event::default().data("[DONE]"));
                return;
            };
            let caught_up = events.len() < 500;
            for e in events {
                seq = e.seq;
                let data = serde_json::to_string(&JobEvent::new(kind, &e))
                    .expect("an event serialises: this is a bug");
                yield Ok(Event::default().id(event_id(e.seq)).data(data));
            }
            if caught_up && status.is_terminal() {
                yield Ok(Event::default().data("[DONE]"));
                return;
            }
            if caught_up {
                // Woken by any job's change; a timeout covers a lagged or missed notice.
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    loop {
                        match changes.recv().await {
                            Ok(j) if j == job_id => return,
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(_) => return,
                        }
                    }
                })
                .await;
            }
        }
    }
}
