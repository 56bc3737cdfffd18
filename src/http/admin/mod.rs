//! The admin API under `/admin/v1`: OpenAI's files and fine-tuning surface, self-hosted, plus
//! PTR's dataset jobs and one job index. Off (every path 404) unless an admin token is set; on,
//! every request needs `Authorization: Bearer <admin token>` — a public API key is not enough.
//! Shapes follow OpenAI's, so `OpenAI(base_url=".../admin/v1", api_key=TOKEN)` works; every
//! route is in the OpenAPI document ([`openapi::AdminDoc`]).

mod auth;
mod datasets;
mod evals;
mod events;
mod files;
mod fine_tuning;
mod jobs;
mod models;
pub mod openapi;
pub mod pipelines;
mod responses;
pub mod schemas;
mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::app::Admin;
use crate::http::auth::ApiKeys;

/// The admin routes' state: the back office.
type Shared = Arc<Admin>;

/// The routes every job kind has: create and list, retrieve, cancel, and the events stream, from
/// a handlers module with `create`, `list`, `retrieve` and `cancel`.
macro_rules! job_routes {
    ($base:literal, $handlers:ident, $events:path) => {
        [
            ($base, post($handlers::create).get($handlers::list)),
            (concat!($base, "/{id}"), get($handlers::retrieve)),
            (concat!($base, "/{id}/cancel"), post($handlers::cancel)),
            (concat!($base, "/{id}/events"), get($events)),
        ]
    };
}

/// Every admin route, relative to `/admin/v1`, with its handlers. The router is built from this
/// table alone, so that a test can hold each route against the OpenAPI document.
fn routes() -> Vec<(&'static str, MethodRouter<Shared>)> {
    let mut routes = vec![
        ("/files", post(files::upload).get(files::list)),
        ("/files/{id}", get(files::retrieve).delete(files::delete)),
        ("/files/{id}/content", get(files::content)),
        ("/models", get(models::list)),
        ("/models/{id}", get(models::retrieve).delete(models::delete)),
        ("/models/{id}/load", post(models::load)),
        ("/models/{id}/unload", post(models::unload)),
        ("/jobs", get(jobs::index)),
        ("/jobs/{id}", get(jobs::retrieve)),
        ("/jobs/{id}/cancel", post(jobs::cancel)),
        ("/jobs/{id}/events", get(events::any)),
    ];
    routes.extend(job_routes!(
        "/fine_tuning/jobs",
        fine_tuning,
        events::fine_tuning
    ));
    routes.extend([
        ("/fine_tuning/jobs/{id}/pause", post(fine_tuning::pause)),
        ("/fine_tuning/jobs/{id}/resume", post(fine_tuning::resume)),
        (
            "/fine_tuning/jobs/{id}/checkpoints",
            get(fine_tuning::checkpoints),
        ),
    ]);
    routes.extend(job_routes!("/evals/jobs", evals, events::evals));
    routes.extend(job_routes!("/datasets/jobs", datasets, events::datasets));
    routes.extend(job_routes!("/pipelines", pipelines, events::pipelines));
    routes
}

/// The admin routes' paths, relative to `/admin/v1`.
pub fn paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// The admin routes over `admin` (to be nested under `/admin/v1`).
pub fn router<S>(admin: Shared) -> Router<S> {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, handlers)| {
            router.route(path, handlers)
        })
        .layer(DefaultBodyLimit::max(admin.max_file_bytes + 64 * 1024))
        .route_layer(from_fn_with_state(
            Arc::new(ApiKeys::new(std::slice::from_ref(&admin.token))),
            auth::require_admin_token,
        ))
        .with_state(admin)
}
