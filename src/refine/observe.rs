//! [`Observer`]: what the round loop reports while it runs, for whoever counts it (the server's
//! Prometheus series implement it in [`crate::metrics`]). The loop knows nothing of Prometheus.

use std::time::Duration;

use super::{RoundRecord, StopReason};

/// Sees every request the round loop runs.
pub trait Observer: Send + Sync {
    /// A request starts on `model`; the returned value sees the rest of it. Dropped without
    /// [`RequestObserver::completed`] or [`RequestObserver::failed`], the request was cancelled.
    fn request(&self, model: &str) -> Box<dyn RequestObserver>;
}

/// Sees one request, round by round.
pub trait RequestObserver: Send {
    fn round_started(&self, round: u32);
    /// The request's first token, `since_start` after it began.
    fn first_token(&self, since_start: Duration);
    /// A token `gap` after the one before it.
    fn next_token(&self, gap: Duration);
    fn round_completed(&self, record: &RoundRecord, took: Duration);
    /// Every round done: `rounds` of them, in `took`, ended for `stop`.
    fn completed(&mut self, rounds: usize, took: Duration, stop: StopReason);
    /// The request failed (an engine error).
    fn failed(&mut self);
}
