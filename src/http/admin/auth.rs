//! The admin token check, with the same digest comparison and `Bearer` parsing as the `/v1` API
//! keys ([`crate::http::auth`]): neither the token's content nor its length leaks through timing.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use std::sync::Arc;

use crate::http::auth::ApiKeys;

/// Lets a request through only with the admin token.
pub async fn require_admin_token(
    State(token): State<Arc<ApiKeys>>,
    req: Request,
    next: Next,
) -> Response {
    match token.authorize(
        req.headers(),
        "The admin API needs `Authorization: Bearer <admin token>` (set with --admin-token)",
        "Incorrect admin token provided",
    ) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}
