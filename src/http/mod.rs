//! The HTTP layer: routes, extractors, validation, SSE, auth and metrics middleware, and the web
//! console, over the OpenAI wire types of [`crate::wire`]. [`router`] builds the one `Router` that
//! both `serve` and the tests use.

pub mod admin;
mod auth;
mod chat;
mod chat_stream;
mod completion;
mod console;
pub mod docs;
mod extract;
mod middleware;
mod ops;
mod refinements;
mod sse;
pub mod state;
mod validate;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorKind};
pub use state::{AppState, Limits};

/// Route paths, in one place.
pub mod routes {
    pub const CHAT_COMPLETIONS: &str = "/v1/chat/completions";
    pub const REFINEMENTS: &str = "/v1/refinements";
    pub const MODELS: &str = "/v1/models";
    pub const HEALTH: &str = "/health";
    pub const READY: &str = "/ready";
    pub const METRICS: &str = "/metrics";
    pub const OPENAPI: &str = "/openapi.json";
    pub const DOCS: &str = "/docs";
    pub const ADMIN: &str = "/admin/v1";
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorKind::NotFound, "No such route; see /docs")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        "Method not allowed on this route; see /docs",
    )
}

/// The span every log line of a request is recorded in: it names the request id.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), uri = %req.uri(), request_id = %id)
}

/// The application: every route with its middleware.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route(routes::CHAT_COMPLETIONS, post(chat::chat_completions))
        .route(routes::REFINEMENTS, post(refinements::refinements))
        .route(routes::MODELS, get(ops::list_models))
        .route_layer(from_fn_with_state(
            state.clone(),
            middleware::require_api_key,
        ));
    let header = axum::http::HeaderName::from_static("x-request-id");
    let mut app = Router::new().merge(v1);
    if let Some(admin) = state.admin.clone() {
        app = app.nest(routes::ADMIN, admin::router(admin));
    }
    app.route(routes::HEALTH, get(ops::health))
        .route(routes::READY, get(ops::ready))
        .route(routes::METRICS, get(ops::metrics))
        .route(routes::OPENAPI, get(docs::openapi_json))
        .route(routes::DOCS, get(docs::docs_page))
        .merge(console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), middleware::track))
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
        .with_state(state)
}
