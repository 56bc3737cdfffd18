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

use super::jobs::{find, page_limit};
use super::views::{event_id, event_view, list_view, parse_event_id};
use crate::error::ApiError;
use crate::http::state::AppState;
use crate::jobs::JobKind;
use crate::store::{EventCursor, Store};

/// Query of the events routes.
#[derive(Debug, Deserialize)]
pub struct EventsQuery {
    after: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    stream: bool,
}

/// `GET /…/jobs/{id}/events`.
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    let job = find(&state, id.clone(), None).await?;
    let kind = JobKind::parse(&job.kind).unwrap_or(JobKind::Dataset);
    let after = match q.after.as_deref() {
        Some(a) => Some(
            parse_event_id(a)
                .ok_or_else(|| ApiError::invalid("after", format!("`{a}` is not an event id")))?,
        ),
        None => None,
    };
    let admin = state.admin()?;
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
    Ok(Json(list_view(
        rows.iter().map(|e| event_view(kind, e)).collect(),
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
                let data = event_view(kind, &e).to_string();
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
