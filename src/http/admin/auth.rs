//! The admin token check, with the same digest comparison and `Bearer` parsing as the `/v1` API
//! keys ([`crate::http::auth`]): neither the token's content nor its length leaks through timing.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorKind};
use crate::http::state::AppState;

/// Lets a request through only with the admin token.
pub async fn require_admin_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(admin) = state.admin.as_ref() else {
        return ApiError::new(ErrorKind::NotFound, "No such route; see /docs").into_response();
    };
    match admin.token.authorize(
        req.headers(),
        "The admin API needs `Authorization: Bearer <admin token>` (set with --admin-token)",
        "Incorrect admin token provided",
    ) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
