//! [`ApiJson`]: a JSON body extractor whose every rejection (wrong content type, body too large,
//! malformed JSON, a field of the wrong type) is our OpenAI error envelope, with the offending
//! field's path in `param`.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, ErrorKind};

/// A JSON request body of type `T`.
pub struct ApiJson<T>(pub T);

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false)
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(ApiError::new(
                ErrorKind::UnsupportedMediaType,
                "Expected a JSON body with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorKind::PayloadTooLarge, "The request body is too large")
            } else {
                ApiError::new(
                    ErrorKind::InvalidRequest,
                    format!("Cannot read the body: {e}"),
                )
            }
        })?;
        parse_object(&bytes).map(ApiJson)
    }
}

/// Parses a JSON object. Every request body of this API is one; serde would also take a struct
/// from a JSON array of its fields in order, which no client means.
pub fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "The request body must be a JSON object ({…}), as the API reference shows at /docs",
        ));
    }
    parse(bytes)
}

/// Parses JSON, naming the failing field's path on error.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let mut err = ApiError::new(
            ErrorKind::InvalidRequest,
            format!("Invalid JSON body: {inner}"),
        );
        if path != "." && !inner.is_syntax() && !inner.is_eof() {
            err = err.with_param(path);
        }
        err
    })?;
    de.end()
        .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, format!("Invalid JSON body: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ChatCompletionRequest;

    #[test]
    fn names_the_field_of_the_wrong_type() {
        let err =
            parse::<ChatCompletionRequest>(br#"{"messages":[],"temperature":"hot"}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("temperature"));
        let err = parse::<ChatCompletionRequest>(br#"{"messages":[{"role":1}]}"#).unwrap_err();
        assert_eq!(err.param.as_deref(), Some("messages[0].role"));
    }

    #[test]
    fn only_an_object_is_a_request_body() {
        for body in [
            &br#"["m", [{"role": "user", "content": "hi"}]]"#[..],
            b"",
            b" 7",
            b"null",
        ] {
            let err = parse_object::<ChatCompletionRequest>(body).unwrap_err();
            assert_eq!(err.kind, ErrorKind::InvalidRequest);
            assert!(err.message.contains("JSON object"), "{}", err.message);
        }
        let ok = parse_object::<ChatCompletionRequest>(
            b" \n{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn malformed_json_is_a_400_without_param() {
        let err = parse::<ChatCompletionRequest>(b"{\"messages\": [").unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        assert_eq!(err.param, None);
    }
}
