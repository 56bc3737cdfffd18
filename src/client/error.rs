//! What can go wrong with a request, and the short messages error bodies are turned into. Error
//! bodies differ between servers (an OpenAI envelope, a bare string, plain text), so they are
//! read as loose JSON here, and nowhere else.

use serde_json::Value;

/// How much of an error body to keep in a message.
const MAX_ERROR_BODY_CHARS: usize = 300;

/// A request that did not give a usable answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The request could not be sent or its body not read.
    #[error("POST {url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// A non-2xx status.
    #[error("HTTP {status} from {url}: {message}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        message: String,
    },
    /// A 2xx answer that is not the JSON it should be.
    #[error("invalid JSON from {url} ({reason}): {body}")]
    Json {
        url: String,
        reason: String,
        body: String,
    },
    /// A 2xx answer carrying an `error` object.
    #[error("error from {url}: {message}")]
    Payload { url: String, message: String },
    /// This server's own API could not be called in process ([`super::LocalApi`]).
    #[error("{}: {message}", super::local::URL)]
    Local { message: String },
}

/// The message of an OpenAI error envelope's `error` (`{"message": …}`), of a bare string, or
/// else the raw value; `None` for a missing or null `error`.
pub fn error_message(error: Option<&Value>) -> Option<String> {
    let error = error.filter(|error| !error.is_null())?;
    let message = error["message"].as_str().or_else(|| error.as_str());
    Some(message.map_or_else(|| truncate(&error.to_string()), str::to_owned))
}

/// A short message for an error response body, JSON envelope or plain text.
pub fn describe_error_body(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|json| error_message(json.get("error")))
        .unwrap_or_else(|| truncate(body.trim()))
}

/// The `error.code` of an OpenAI error envelope, if the body is one.
pub fn error_code(body: &str) -> Option<String> {
    let json: Value = serde_json::from_str(body).ok()?;
    Some(json.get("error")?.get("code")?.as_str()?.to_string())
}

/// `text` cut to [`MAX_ERROR_BODY_CHARS`] characters, for error messages.
pub fn truncate(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_BODY_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_described_briefly() {
        assert_eq!(
            describe_error_body(r#"{"error":{"message":"no such model"}}"#),
            "no such model"
        );
        assert_eq!(
            describe_error_body(r#"{"error":"overloaded"}"#),
            "overloaded"
        );
        assert_eq!(
            describe_error_body(r#"{"error":null,"x":1}"#),
            r#"{"error":null,"x":1}"#
        );
        assert_eq!(describe_error_body(" Bad Gateway \n"), "Bad Gateway");
        let long = "é".repeat(1000);
        assert_eq!(
            describe_error_body(&long).chars().count(),
            MAX_ERROR_BODY_CHARS + 1
        );
    }
}
