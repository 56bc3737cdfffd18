//! One timed chat-completion request against an OpenAI-compatible server.
//!
//! This file owns the HTTP side: sending, status checks and reading the body,
//! streamed or not. What the payloads mean is [`super::response`]'s business.
//! Any non-2xx status, transport failure, unparsable body or `{"error": …}`
//! payload is an error.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use futures::StreamExt;
use serde_json::Value;

use super::response::{
    completion_tokens, describe_error_body, error_message, truncate, RequestSample, StreamTally,
};
use super::sse::SseParser;

/// Where and how requests go; the body is each request's own.
#[derive(Debug, Clone)]
pub struct Target {
    /// Shared connection pool.
    pub client: reqwest::Client,
    /// Full URL of the chat-completions route.
    pub endpoint: String,
    /// Bearer token, if the server needs one.
    pub api_key: Option<String>,
    /// Whether the body asks for a stream (decides how the response is read).
    pub stream: bool,
}

impl Target {
    /// Sends one request with this JSON body and times it.
    pub async fn send(&self, body: &Value) -> anyhow::Result<RequestSample> {
        let start = Instant::now();
        let mut request = self.client.post(&self.endpoint).json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.context("request failed")?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            bail!("HTTP {status}: {}", describe_error_body(&body));
        }
        if self.stream {
            read_stream(response, start).await
        } else {
            let body = response
                .bytes()
                .await
                .context("reading the response body")?;
            let json: Value = serde_json::from_slice(&body).map_err(|e| {
                anyhow!(
                    "invalid JSON response ({e}): {}",
                    truncate(&String::from_utf8_lossy(&body))
                )
            })?;
            if let Some(message) = error_message(&json) {
                bail!("error in response: {message}");
            }
            Ok(RequestSample {
                ttft: None,
                itl: Vec::new(),
                e2e: start.elapsed().as_secs_f64(),
                output_tokens: completion_tokens(&json).unwrap_or(0),
            })
        }
    }
}

/// How long a finished stream may take to close before its connection is
/// given up instead of going back to the pool.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

async fn read_stream(response: reqwest::Response, start: Instant) -> anyhow::Result<RequestSample> {
    let mut tally = StreamTally::new(start);
    let mut parser = SseParser::new();
    let mut bytes = Box::pin(response.bytes_stream());
    let done_at = 'read: loop {
        let Some(read) = bytes.next().await else {
            break None;
        };
        let read = read.context("reading the event stream")?;
        // Chunks that arrive in the same network read share one timestamp.
        let at = Instant::now();
        for event in parser.push(&read) {
            if tally.observe(event, at)? {
                break 'read Some(at);
            }
        }
    };
    let end = match done_at {
        Some(at) => {
            // Read the stream's end in the background: a body dropped early
            // closes its connection, and reconnecting would skew the next TTFT.
            tokio::spawn(tokio::time::timeout(DRAIN_TIMEOUT, async move {
                while bytes.next().await.is_some() {}
            }));
            at
        }
        None => {
            let at = Instant::now();
            for event in parser.finish() {
                tally.observe(event, at)?;
            }
            // Some servers close the stream without `[DONE]`; what arrived still counts.
            at
        }
    };
    Ok(tally.finish(end))
}
