//! Request middleware: API-key auth for `/v1` (the keys: [`super::auth`]), and per-route
//! request metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::state::AppState;

/// Rejects `/v1` requests without a configured Bearer key (when any are configured).
pub async fn require_api_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if state.api_keys.is_empty() {
        return next.run(req).await;
    }
    match state.api_keys.authorize(
        req.headers(),
        "Missing API key: send `Authorization: Bearer <key>`",
        "Incorrect API key provided",
    ) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

/// Counts requests by route template and status, and times them to the response head.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let start = Instant::now();
    let response = next.run(req).await;
    let m = &state.metrics;
    let status = response.status();
    let labels = [route.as_str(), status.as_str()];
    m.http_duration
        .with_label_values(&labels)
        .observe(start.elapsed().as_secs_f64());
    m.http_requests.with_label_values(&labels).inc();
    response
}
