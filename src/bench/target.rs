//! One timed chat-completion request: sent through [`crate::client`], its answer timed, streamed
//! or not. What the stream's chunks mean for the timings is [`super::response`]'s business. Any
//! failed request (see [`crate::client::ClientError`]) or error chunk is an error.

use std::time::{Duration, Instant};

use super::response::{RequestSample, StreamTally};
use crate::client::{Client, Endpoint};
use crate::wire::ChatCompletionRequest;

/// Where and how requests go; the body is each request's own.
#[derive(Debug, Clone)]
pub struct Target {
    /// Shared connection pool.
    pub client: Client,
    /// The server's chat-completions route and key.
    pub endpoint: Endpoint,
    /// Whether the body asks for a stream (decides how the response is read).
    pub stream: bool,
}

/// How long a finished stream may take to close before its connection is
/// given up instead of going back to the pool.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

impl Target {
    /// Sends one request and times it.
    pub async fn send(&self, request: &ChatCompletionRequest) -> anyhow::Result<RequestSample> {
        let start = Instant::now();
        if !self.stream {
            let completion = self.client.complete(&self.endpoint, request).await?;
            return Ok(RequestSample {
                ttft: None,
                itl: Vec::new(),
                e2e: start.elapsed().as_secs_f64(),
                output_tokens: completion.completion_tokens().unwrap_or(0),
            });
        }
        let mut events = self.client.stream(&self.endpoint, request).await?;
        let mut tally = StreamTally::new(start);
        while let Some(read) = events.next_read().await {
            // Chunks that arrive in the same network read share one timestamp.
            let at = Instant::now();
            for event in read? {
                if tally.observe(event, at)? {
                    // Read the stream's end in the background: a body dropped early closes its
                    // connection, and reconnecting would skew the next TTFT.
                    events.drain(DRAIN_TIMEOUT);
                    return Ok(tally.finish(at));
                }
            }
        }
        let at = Instant::now();
        for event in events.finish() {
            tally.observe(event, at)?;
        }
        // Some servers close the stream without `[DONE]`; what arrived still counts.
        Ok(tally.finish(at))
    }
}
