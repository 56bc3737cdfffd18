//! What stream chunks mean for the benchmark: which carry tokens, and the per-stream timing
//! tally that turns chunk arrival times into TTFT and inter-token gaps.

use std::time::Instant;

use anyhow::{anyhow, bail};

use crate::client::error::{error_message, truncate};
use crate::client::sse::SseEvent;
use crate::client::Chunk;

/// Timings and token count of one successful request, in seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSample {
    /// Time to the first content or reasoning token; streaming only.
    pub ttft: Option<f64>,
    /// Gaps between consecutive token-bearing chunks; empty when not streaming.
    pub itl: Vec<f64>,
    /// Time from sending the request to the end of the response.
    pub e2e: f64,
    /// `usage.completion_tokens`, or for streams without usage the token events seen.
    pub output_tokens: u64,
}

/// Accumulates the timing of one stream's events.
#[derive(Debug)]
pub struct StreamTally {
    start: Instant,
    first_token: Option<Instant>,
    last_token: Option<Instant>,
    itl: Vec<f64>,
    /// `refinement.round` of the last token chunk (ptr-server tags every chunk with it).
    last_round: Option<u32>,
    token_events: u64,
    usage_tokens: Option<u64>,
}

impl StreamTally {
    /// Starts a tally for a request sent at `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            first_token: None,
            last_token: None,
            itl: Vec::new(),
            last_round: None,
            token_events: 0,
            usage_tokens: None,
        }
    }

    /// Records one event received at `at`; `Ok(true)` once the stream is done.
    pub fn observe(&mut self, event: SseEvent, at: Instant) -> anyhow::Result<bool> {
        if event.is_done() {
            return Ok(true);
        }
        let chunk: Chunk = serde_json::from_str(&event.data)
            .map_err(|e| anyhow!("invalid JSON in stream ({e}): {}", truncate(&event.data)))?;
        if let Some(message) = error_message(chunk.error.as_ref()) {
            bail!("error in stream: {message}");
        }
        if let Some(tokens) = chunk.usage.and_then(|u| u.completion_tokens) {
            self.usage_tokens = Some(tokens);
        }
        if carries_token(&chunk) && !is_round_header(&chunk) {
            let round = chunk.refinement.map(|r| r.round);
            self.token_events += 1;
            match self.last_token {
                Some(last) if round == self.last_round => {
                    self.itl.push(at.duration_since(last).as_secs_f64())
                }
                // The gap before a new round's first token is that round's prefill.
                Some(_) => {}
                None => self.first_token = Some(at),
            }
            self.last_token = Some(at);
            self.last_round = round;
        }
        Ok(false)
    }

    /// The sample of a stream that ended at `end`.
    pub fn finish(self, end: Instant) -> RequestSample {
        RequestSample {
            ttft: self
                .first_token
                .map(|t| t.duration_since(self.start).as_secs_f64()),
            itl: self.itl,
            e2e: end.duration_since(self.start).as_secs_f64(),
            output_tokens: self.usage_tokens.unwrap_or(self.token_events),
        }
    }
}

/// Whether `choices[0].delta` holds visible or reasoning text.
fn carries_token(chunk: &Chunk) -> bool {
    chunk.delta().is_some_and(|d| {
        [&d.content, &d.reasoning_content, &d.reasoning]
            .into_iter()
            .any(|text| text.as_deref().is_some_and(|t| !t.is_empty()))
    })
}

/// Whether the chunk is ptr-server's `[Round k]` header that opens an earlier round inside
/// `reasoning_content`: a marker the server writes, not a generated token.
fn is_round_header(chunk: &Chunk) -> bool {
    chunk.refinement.is_some()
        && chunk
            .delta()
            .and_then(|d| d.reasoning_content.as_deref())
            .and_then(|t| t.strip_prefix("[Round "))
            .and_then(|t| t.strip_suffix("]\n"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{json, Value};

    use super::*;

    fn data(value: Value) -> SseEvent {
        raw(&value.to_string())
    }

    fn raw(data: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: data.to_owned(),
        }
    }

    fn delta(field: &str, text: &str) -> SseEvent {
        data(json!({"choices": [{"index": 0, "delta": {field: text}}]}))
    }

    #[test]
    fn tally_times_token_chunks_and_prefers_usage() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut tally = StreamTally::new(start);
        assert!(!tally
            .observe(delta("role", "assistant"), ms(50))
            .expect("ok"));
        assert!(!tally
            .observe(delta("reasoning_content", "hmm"), ms(100))
            .expect("ok"));
        assert!(!tally.observe(delta("content", ""), ms(120)).expect("ok"));
        assert!(!tally.observe(delta("content", "Hi"), ms(130)).expect("ok"));
        let usage = json!({"choices": [], "usage": {"completion_tokens": 5}});
        assert!(!tally.observe(data(usage), ms(140)).expect("ok"));
        assert!(tally.observe(raw("[DONE]"), ms(150)).expect("ok"));
        let sample = tally.finish(ms(160));
        assert!((sample.ttft.expect("saw tokens") - 0.1).abs() < 1e-9);
        assert_eq!(sample.itl.len(), 1);
        assert!((sample.itl[0] - 0.03).abs() < 1e-9);
        assert!((sample.e2e - 0.16).abs() < 1e-9);
        assert_eq!(sample.output_tokens, 5);
    }

    fn tagged(round: u64, field: &str, text: &str) -> SseEvent {
        data(
            json!({"choices": [{"index": 0, "delta": {field: text}}], "refinement": {"round": round}}),
        )
    }

    #[test]
    fn round_headers_are_not_tokens_and_prefills_are_not_inter_token_gaps() {
        let start = Instant::now();
        let ms = |n| start + Duration::from_millis(n);
        let mut tally = StreamTally::new(start);
        for (event, at) in [
            (tagged(1, "reasoning_content", "[Round 1]\n"), 1),
            (tagged(1, "reasoning_content", "Four"), 500),
            (tagged(1, "reasoning_content", "."), 520),
            (tagged(2, "reasoning_content", "[Round 2]\n"), 530),
            (tagged(2, "content", "It"), 900),
            (tagged(2, "content", " is"), 930),
        ] {
            tally.observe(event, ms(at)).expect("ok");
        }
        let sample = tally.finish(ms(1000));
        assert!((sample.ttft.expect("saw tokens") - 0.5).abs() < 1e-9);
        assert_eq!(sample.output_tokens, 4);
        assert_eq!(sample.itl.len(), 2, "{:?}", sample.itl);
        assert!(sample.itl.iter().all(|&gap| gap < 0.05), "{:?}", sample.itl);
    }

    #[test]
    fn tally_counts_token_events_without_usage() {
        let start = Instant::now();
        let mut tally = StreamTally::new(start);
        for _ in 0..3 {
            tally.observe(delta("content", "x"), start).expect("ok");
        }
        assert_eq!(tally.finish(start).output_tokens, 3);
    }

    #[test]
    fn tally_rejects_error_chunks_and_bad_json() {
        let mut tally = StreamTally::new(Instant::now());
        let err = tally
            .observe(data(json!({"error": {"message": "boom"}})), Instant::now())
            .expect_err("error chunk");
        assert!(err.to_string().contains("boom"));
        let bad = raw("{not json");
        assert!(tally.observe(bad, Instant::now()).is_err());
    }
}
