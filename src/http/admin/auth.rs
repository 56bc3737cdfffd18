//! The admin token check: constant-time over SHA-256 digests, so neither the content nor the
//! length of the token leaks through timing.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorKind};
use crate::http::state::AppState;

/// The SHA-256 of the admin token (the token itself is not kept).
#[derive(Clone)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    pub fn new(token: &str) -> Self {
        Self(Sha256::digest(token.trim().as_bytes()).into())
    }

    /// Whether `presented` is the token, in constant time.
    pub fn matches(&self, presented: &str) -> bool {
        let d: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        self.0.ct_eq(&d).into()
    }
}

/// `Bearer <token>`, the scheme matched case-insensitively.
pub fn bearer(req: &Request) -> Option<&str> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// Lets a request through only with the admin token.
pub async fn require_admin_token(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(admin) = state.admin.as_ref() else {
        return ApiError::new(ErrorKind::NotFound, "No such route; see /docs").into_response();
    };
    match bearer(&req) {
        Some(t) if admin.token.matches(t) => next.run(req).await,
        Some(_) => {
            ApiError::new(ErrorKind::Unauthorized, "Incorrect admin token provided").into_response()
        }
        None => ApiError::new(
            ErrorKind::Unauthorized,
            "The admin API needs `Authorization: Bearer <admin token>` (set with --admin-token)",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::TokenDigest;

    #[test]
    fn matches_only_the_token() {
        let t = TokenDigest::new("s3cret");
        assert!(t.matches("s3cret"));
        assert!(t.matches(" s3cret "));
        assert!(!t.matches("s3cre"));
        assert!(!t.matches("s3cret2"));
        assert!(!t.matches(""));
    }
}
