//! Serving an SSE stream without letting it stall the server.
//!
//! A generation's events are produced by a task of their own and handed to the response body
//! through a small channel. The task holds the request's generation slots ([`Admission`]) and
//! ends — releasing them and cancelling the generation — when the client disconnects, when the
//! client stops reading for longer than the write timeout (the channel stays full), when the
//! request deadline passes, or when the server's shutdown grace period is over (in the last two
//! cases a final error event is still offered to the client). Responses
//! carry `X-Accel-Buffering: no` so that proxies such as nginx pass every event on at once.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use tokio::sync::mpsc::error::SendTimeoutError;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument;

use super::state::{Admission, AppState};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Seconds between keep-alive comments on an idle stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events buffered between the generation and a slow client.
const BUFFER: usize = 16;

/// The request id the request-id layer gave this request.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

/// What keeps one generation request bounded: its slots, its deadline and write timeout.
pub struct StreamGuard {
    pub admission: Admission,
    pub deadline: Instant,
    /// The limit the deadline came from, for messages.
    pub request_timeout: Duration,
    pub write_timeout: Duration,
    pub request_id: String,
    metrics: Arc<Metrics>,
    /// The server's closing signal (see [`AppState::closing`]).
    closing: watch::Receiver<Option<Duration>>,
}

impl StreamGuard {
    /// A guard whose deadline starts now.
    pub fn new(state: &AppState, admission: Admission, request_id: String) -> Self {
        Self {
            admission,
            deadline: Instant::now() + state.limits.request_timeout,
            request_timeout: state.limits.request_timeout,
            write_timeout: state.limits.stream_write_timeout,
            request_id,
            metrics: state.metrics.clone(),
            closing: state.closing.subscribe(),
        }
    }
}

/// Resolves with the grace period once the server is closing; never if it no longer can close.
async fn closing_after(closing: &mut watch::Receiver<Option<Duration>>) -> Duration {
    let grace = closing.wait_for(Option::is_some).await.map(|g| *g);
    match grace {
        Ok(grace) => grace.unwrap_or_default(),
        Err(_) => std::future::pending().await,
    }
}

/// Streams `events` as SSE under `guard`. `on_cut` gives the events that end a stream the server
/// ends early, from the error that says why (the deadline passed, or the server is closing): the
/// error, and `[DONE]` where the protocol has one.
pub fn respond(
    events: impl Stream<Item = Event> + Send + 'static,
    guard: StreamGuard,
    on_cut: impl FnOnce(ApiError) -> Vec<Event> + Send + 'static,
) -> Response {
    let (tx, rx) = mpsc::channel::<Event>(BUFFER);
    let pump = async move {
        let StreamGuard {
            admission,
            deadline,
            request_timeout,
            write_timeout,
            request_id,
            metrics,
            mut closing,
        } = guard;
        let mut events = std::pin::pin!(events);
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return,
                grace = closing_after(&mut closing) => Err(ApiError::shutting_down(grace)),
                next = tokio::time::timeout_at(deadline, events.next()) => next.map_err(|_| {
                    metrics.timed_out.inc();
                    ApiError::timeout(request_timeout)
                }),
            };
            let event = match next {
                Ok(Some(event)) => event,
                Ok(None) => return,
                Err(why) => {
                    tracing::warn!(reason = %why.message, "ending the stream early");
                    drop(events);
                    drop(admission);
                    for event in on_cut(why.with_request_id(&request_id)) {
                        if tx.send_timeout(event, write_timeout).await.is_err() {
                            break;
                        }
                    }
                    return;
                }
            };
            match tx.send_timeout(event, write_timeout).await {
                Ok(()) => {}
                Err(SendTimeoutError::Timeout(_)) => {
                    tracing::warn!(
                        ?write_timeout,
                        "the client stopped reading; ending the stream"
                    );
                    metrics.timed_out.inc();
                    return;
                }
                Err(SendTimeoutError::Closed(_)) => return,
            }
        }
    };
    tokio::spawn(pump.instrument(tracing::Span::current()));
    let body = tokio_stream::wrappers::ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    let mut response = Sse::new(body)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}
