//! The one HTTP error type. Every error leaves the server as the OpenAI envelope
//! `{"error":{"message","type","param","code"}}`, and the table in [`ErrorKind::status_type_code`]
//! is the only place that decides a status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::EngineError;
use crate::models::ModelError;

/// What went wrong, as far as the client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    ContextLengthExceeded,
    UnsupportedMediaType,
    PayloadTooLarge,
    Unauthorized,
    ModelNotFound,
    /// The model is registered but not loaded.
    ModelNotLoaded,
    NotFound,
    MethodNotAllowed,
    /// The request conflicts with the current state (a duplicate id, a protected model).
    Conflict,
    Overloaded,
    ModelLoading,
    /// The model failed to load, or its engine stopped.
    ModelUnavailable,
    /// The request ran past the server's deadline.
    Timeout,
    /// The server is shutting down and its grace period for running requests is over.
    ShuttingDown,
    Internal,
}

impl ErrorKind {
    /// The table: kind → (HTTP status, OpenAI `type`, `code`).
    pub fn status_type_code(self) -> (StatusCode, &'static str, &'static str) {
        use ErrorKind::*;
        match self {
            InvalidRequest => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_value",
            ),
            ContextLengthExceeded => (
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "context_length_exceeded",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                "unsupported_media_type",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                "payload_too_large",
            ),
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "invalid_api_key",
            ),
            ModelNotFound => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_found",
            ),
            ModelNotLoaded => (
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "model_not_loaded",
            ),
            NotFound => (StatusCode::NOT_FOUND, "invalid_request_error", "not_found"),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method_not_allowed",
            ),
            Conflict => (StatusCode::CONFLICT, "invalid_request_error", "conflict"),
            Overloaded => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "server_overloaded",
            ),
            ModelLoading => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "model_loading",
            ),
            ModelUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "model_unavailable",
            ),
            ShuttingDown => (
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "server_shutting_down",
            ),
            Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "server_error",
                "request_timeout",
            ),
            Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "internal_error",
            ),
        }
    }
}

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
    pub param: Option<String>,
}

/// The OpenAI error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The body of the OpenAI error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            param: None,
        }
    }

    /// A 400 naming the offending field.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::InvalidRequest,
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The request ran past the server's deadline.
    pub fn timeout(limit: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::Timeout,
            format!(
                "The request ran longer than the server's limit of {} s",
                limit.as_secs()
            ),
        )
    }

    /// The server's shutdown grace period ended before the request did.
    pub fn shutting_down(grace: std::time::Duration) -> Self {
        Self::new(
            ErrorKind::ShuttingDown,
            format!(
                "The server is shutting down and its grace period of {} s for running requests is \
                 over; retry on another instance or once it is back",
                grace.as_secs()
            ),
        )
    }

    /// Names the request in a server error's message, so that a client reading an in-stream
    /// error (which has no response headers of its own) can quote it.
    pub fn with_request_id(mut self, request_id: &str) -> Self {
        if self.status().is_server_error() {
            self.message = format!("{} (request id {request_id})", self.message);
        }
        self
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.kind.status_type_code().0
    }

    /// The envelope, for JSON bodies and in-stream error events alike.
    pub fn envelope(&self) -> ErrorEnvelope {
        let (_, kind, code) = self.kind.status_type_code();
        ErrorEnvelope {
            error: ErrorBody {
                message: self.message.clone(),
                kind: kind.to_string(),
                param: self.param.clone(),
                code: Some(code.to_string()),
            },
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::InvalidRequest(m) => ApiError::new(ErrorKind::InvalidRequest, m),
            EngineError::ContextLength { .. } => {
                ApiError::new(ErrorKind::ContextLengthExceeded, e.to_string())
                    .with_param("messages")
            }
            EngineError::Internal(m) => {
                tracing::error!(error = %m, "engine failure");
                ApiError::new(ErrorKind::Internal, "the engine failed; see the server log")
            }
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::NotFound { what, id } => {
                ApiError::new(ErrorKind::NotFound, format!("No {what} with id `{id}`"))
            }
            other => {
                tracing::error!(error = %other, "store failure");
                ApiError::new(
                    ErrorKind::Internal,
                    "the job store failed; see the server log",
                )
            }
        }
    }
}

impl From<ModelError> for ApiError {
    fn from(e: ModelError) -> Self {
        let message = e.to_string();
        match e {
            ModelError::InvalidId(_) => ApiError::invalid("id", message),
            ModelError::InvalidSpec(_) => ApiError::new(ErrorKind::InvalidRequest, message),
            ModelError::NotFound(_) => {
                ApiError::new(ErrorKind::ModelNotFound, message).with_param("model")
            }
            ModelError::NotLoaded(_) => {
                ApiError::new(ErrorKind::ModelNotLoaded, message).with_param("model")
            }
            ModelError::AlreadyExists(_) | ModelError::Protected(_) | ModelError::NoFile { .. } => {
                ApiError::new(ErrorKind::Conflict, message)
            }
            ModelError::Loading(_) => ApiError::new(ErrorKind::ModelLoading, message),
            ModelError::Failed { id, reason } => {
                tracing::error!(model = %id, error = %reason, "model unavailable");
                ApiError::new(
                    ErrorKind::ModelUnavailable,
                    format!("The model `{id}` is unavailable (it failed to load or its engine stopped); see the server log"),
                )
            }
            ModelError::Busy(_) => ApiError::new(ErrorKind::Overloaded, message),
            ModelError::Storage(_) => {
                tracing::error!(error = %message, "model registry storage failed");
                ApiError::new(
                    ErrorKind::Internal,
                    "model registry storage failed; see the server log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, axum::Json(self.envelope())).into_response();
        if matches!(self.kind, ErrorKind::Overloaded | ErrorKind::ModelLoading) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_mistakes_are_never_5xx() {
        use ErrorKind::*;
        for k in [
            InvalidRequest,
            ContextLengthExceeded,
            UnsupportedMediaType,
            PayloadTooLarge,
            Unauthorized,
            ModelNotFound,
            ModelNotLoaded,
            NotFound,
            MethodNotAllowed,
            Conflict,
            Overloaded,
        ] {
            assert!(k.status_type_code().0.is_client_error(), "{k:?}");
        }
    }

    #[test]
    fn overload_carries_retry_after() {
        let r = ApiError::new(ErrorKind::Overloaded, "busy").into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
    }
}
