//! Prometheus metrics. [`Metrics`] owns its own registry (a fresh one per app, so tests never
//! share counters), labels are bounded (route templates, model ids, finish reasons, round numbers
//! up to the server's cap), and names follow `ptr_<thing>_<unit|total>`. Generation series are
//! labelled by model; [`Metrics::for_model`] resolves one model's children once per request.
//! [`Metrics`] is the round loop's [`Observer`].

use std::sync::Mutex;
use std::time::Duration;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::engine::StatsSnapshot;
use crate::refine::{Observer, RequestObserver, RoundRecord, StopReason};

/// Every series the server exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub ttft: HistogramVec,
    pub inter_token: HistogramVec,
    pub generation_duration: HistogramVec,
    pub prompt_tokens: IntCounterVec,
    pub generated_tokens: IntCounterVec,
    pub in_flight: IntGauge,
    pub cancelled: IntCounterVec,
    pub rejected: IntCounter,
    pub timed_out: IntCounter,
    pub rounds: RoundSeries,
}

/// The refinement loop's series: rounds per request, their durations and tokens, early stops.
pub struct RoundSeries {
    pub rounds_per_request: HistogramVec,
    pub round_duration: HistogramVec,
    pub rounds_started: IntCounterVec,
    pub round_tokens: IntCounterVec,
    pub early_stops: IntCounterVec,
}

impl RoundSeries {
    fn new(r: &Registry) -> Self {
        let m = &["model"];
        Self {
            rounds_per_request: histogram_vec(
                r,
                "ptr_refinement_rounds",
                "Refinement rounds run per request",
                &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 16.0, 32.0],
                m,
            ),
            round_duration: histogram_vec(
                r,
                "ptr_round_duration_seconds",
                "Duration of one refinement round",
                LATENCY_BUCKETS,
                m,
            ),
            rounds_started: counter_vec(
                r,
                "ptr_rounds_started_total",
                "Refinement rounds started, by round number",
                &["model", "round"],
            ),
            round_tokens: counter_vec(
                r,
                "ptr_round_generated_tokens_total",
                "Tokens generated, by round number",
                &["model", "round"],
            ),
            early_stops: counter_vec(
                r,
                "ptr_early_stops_total",
                "Refinements that ended before their last round, by reason",
                &["model", "reason"],
            ),
        }
    }
}

/// One model's generation series, resolved once per request.
pub struct ModelMetrics {
    pub ttft: Histogram,
    pub inter_token: Histogram,
    pub generation_duration: Histogram,
    pub prompt_tokens: IntCounter,
    pub generated_tokens: IntCounter,
    pub cancelled: IntCounter,
    pub rounds_per_request: Histogram,
    pub round_duration: Histogram,
    model: String,
    rounds_started: IntCounterVec,
    round_tokens: IntCounterVec,
    early_stops: IntCounterVec,
}

impl ModelMetrics {
    /// Rounds started, for round number `round`.
    pub fn round_started(&self, round: u32) -> IntCounter {
        self.rounds_started
            .with_label_values(&[self.model.as_str(), &round.to_string()])
    }

    /// Tokens generated in round number `round`.
    pub fn round_tokens(&self, round: u32) -> IntCounter {
        self.round_tokens
            .with_label_values(&[self.model.as_str(), &round.to_string()])
    }

    /// Refinements that stopped early for `reason`.
    pub fn early_stop(&self, reason: &str) -> IntCounter {
        self.early_stops
            .with_label_values(&[self.model.as_str(), reason])
    }
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

fn register<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric names: this is a bug");
    c
}

fn histogram_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    register(
        registry,
        HistogramVec::new(opts, labels).expect("valid histogram: this is a bug"),
    )
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter: this is a bug"),
    )
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    register(
        registry,
        IntCounter::new(name, help).expect("valid counter: this is a bug"),
    )
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let m = &["model"];
        Self {
            http_requests: counter_vec(
                &r,
                "ptr_http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            http_duration: histogram_vec(
                &r,
                "ptr_http_request_duration_seconds",
                "Time to the response head, by route and status",
                LATENCY_BUCKETS,
                &["route", "status"],
            ),
            ttft: histogram_vec(
                &r,
                "ptr_time_to_first_token_seconds",
                "Time from request to the first generated token",
                LATENCY_BUCKETS,
                m,
            ),
            inter_token: histogram_vec(
                &r,
                "ptr_inter_token_latency_seconds",
                "Time between consecutive generated tokens",
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
                m,
            ),
            generation_duration: histogram_vec(
                &r,
                "ptr_request_duration_seconds",
                "Whole generation time per request, all rounds",
                LATENCY_BUCKETS,
                m,
            ),
            prompt_tokens: counter_vec(
                &r,
                "ptr_prompt_tokens_total",
                "Prompt tokens processed, all rounds",
                m,
            ),
            generated_tokens: counter_vec(
                &r,
                "ptr_generated_tokens_total",
                "Tokens generated, all rounds",
                m,
            ),
            in_flight: register(
                &r,
                IntGauge::new("ptr_requests_in_flight", "Generations running now")
                    .expect("valid gauge: this is a bug"),
            ),
            cancelled: counter_vec(
                &r,
                "ptr_requests_cancelled_total",
                "Generations stopped because the client went away",
                m,
            ),
            rejected: counter(
                &r,
                "ptr_requests_rejected_total",
                "Requests refused with 429 because the server or the model was at capacity",
            ),
            timed_out: counter(
                &r,
                "ptr_requests_timed_out_total",
                "Generations ended by the request deadline or a stalled client",
            ),
            rounds: RoundSeries::new(&r),
            registry: r,
        }
    }

    /// The generation series of one model.
    pub fn for_model(&self, model: &str) -> ModelMetrics {
        let l = [model];
        ModelMetrics {
            ttft: self.ttft.with_label_values(&l),
            inter_token: self.inter_token.with_label_values(&l),
            generation_duration: self.generation_duration.with_label_values(&l),
            prompt_tokens: self.prompt_tokens.with_label_values(&l),
            generated_tokens: self.generated_tokens.with_label_values(&l),
            cancelled: self.cancelled.with_label_values(&l),
            rounds_per_request: self.rounds.rounds_per_request.with_label_values(&l),
            round_duration: self.rounds.round_duration.with_label_values(&l),
            model: model.to_string(),
            rounds_started: self.rounds.rounds_started.clone(),
            round_tokens: self.rounds.round_tokens.clone(),
            early_stops: self.rounds.early_stops.clone(),
        }
    }

    /// Exports the engines' own counters, read from `engines` at each scrape.
    pub fn watch_engines(
        &self,
        engines: impl Fn() -> Vec<(String, StatsSnapshot)> + Send + Sync + 'static,
    ) {
        self.registry
            .register(Box::new(EngineCollector::new(Box::new(engines))))
            .expect("unique metric names: this is a bug");
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail: this is a bug");
        String::from_utf8(out).expect("prometheus text is UTF-8: this is a bug")
    }
}

/// The loaded engines' own counters as Prometheus series, read when scraped. An engine's counters
/// are cumulative over its life; a reloaded model starts again from 0, which Prometheus treats as
/// a counter reset.
struct EngineCollector {
    engines: Box<dyn Fn() -> Vec<(String, StatsSnapshot)> + Send + Sync>,
    active: IntGaugeVec,
    cancelled: IntCounterVec,
    recycles: IntCounterVec,
    continuations: IntCounterVec,
    /// The series are rewritten at each scrape; two scrapes must not interleave.
    scrape: Mutex<()>,
}

impl EngineCollector {
    fn new(engines: Box<dyn Fn() -> Vec<(String, StatsSnapshot)> + Send + Sync>) -> Self {
        let counter = |name: &str, help: &str| {
            IntCounterVec::new(Opts::new(name, help), &["model"])
                .expect("valid counter: this is a bug")
        };
        Self {
            engines,
            active: IntGaugeVec::new(
                Opts::new(
                    "ptr_engine_active_sequences",
                    "Sequences the engine still holds",
                ),
                &["model"],
            )
            .expect("valid gauge: this is a bug"),
            cancelled: counter(
                "ptr_engine_cancelled_sequences_total",
                "Sequences the engine stopped because their consumer left",
            ),
            recycles: counter(
                "ptr_engine_recycles_total",
                "Fresh engines swapped in to free the prefix cache (CPU)",
            ),
            continuations: counter(
                "ptr_engine_token_continuations_total",
                "Prompts sent as exact token ids continuing an earlier answer",
            ),
            scrape: Mutex::new(()),
        }
    }

    fn counters(&self) -> [&IntCounterVec; 3] {
        [&self.cancelled, &self.recycles, &self.continuations]
    }
}

impl Collector for EngineCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut descs = self.active.desc();
        for c in self.counters() {
            descs.extend(c.desc());
        }
        descs
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _scrape = self
            .scrape
            .lock()
            .expect("scrape lock poisoned: this is a bug");
        self.active.reset();
        self.counters().iter().for_each(|c| c.reset());
        for (model, s) in (self.engines)() {
            let l = [model.as_str()];
            self.active
                .with_label_values(&l)
                .set(s.active_sequences as i64);
            let values = [s.cancelled_sequences, s.recycles, s.token_continuations];
            for (counter, value) in self.counters().into_iter().zip(values) {
                counter.with_label_values(&l).inc_by(value);
            }
        }
        let mut families = self.active.collect();
        for c in self.counters() {
            families.extend(c.collect());
        }
        families
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_engine_counters_and_request_series() {
        let m = Metrics::new();
        m.http_requests.with_label_values(&["/health", "200"]).inc();
        m.for_model("m").generated_tokens.inc_by(3);
        let snap = StatsSnapshot {
            active_sequences: 2,
            cancelled_sequences: 1,
            ..Default::default()
        };
        m.watch_engines(move || vec![("m".into(), snap)]);
        let text = m.render();
        assert!(text.contains("ptr_http_requests_total{route=\"/health\",status=\"200\"} 1"));
        assert!(text.contains("ptr_generated_tokens_total{model=\"m\"} 3"));
        assert!(text.contains("ptr_engine_active_sequences{model=\"m\"} 2"));
        assert!(text.contains("# TYPE ptr_engine_cancelled_sequences_total counter"));
        assert!(text.contains("ptr_engine_cancelled_sequences_total{model=\"m\"} 1"));
        // A second scrape reports the same cumulative value, not twice it.
        let text = m.render();
        assert!(text.contains("ptr_engine_cancelled_sequences_total{model=\"m\"} 1"));
    }
}

impl Observer for Metrics {
    fn request(&self, model: &str) -> Box<dyn RequestObserver> {
        self.in_flight.inc();
        Box::new(RequestMetrics {
            series: self.for_model(model),
            in_flight: self.in_flight.clone(),
            ended: false,
        })
    }
}

/// One request's series; counts it in flight until dropped, and as cancelled if it never ended.
struct RequestMetrics {
    series: ModelMetrics,
    in_flight: IntGauge,
    ended: bool,
}

impl RequestObserver for RequestMetrics {
    fn round_started(&self, round: u32) {
        self.series.round_started(round).inc();
    }

    fn first_token(&self, since_start: Duration) {
        self.series.ttft.observe(since_start.as_secs_f64());
    }

    fn next_token(&self, gap: Duration) {
        self.series.inter_token.observe(gap.as_secs_f64());
    }

    fn round_completed(&self, r: &RoundRecord, took: Duration) {
        let m = &self.series;
        m.round_duration.observe(took.as_secs_f64());
        m.prompt_tokens.inc_by(r.prompt_tokens as u64);
        m.generated_tokens.inc_by(r.completion_tokens as u64);
        m.round_tokens(r.round).inc_by(r.completion_tokens as u64);
    }

    fn completed(&mut self, rounds: usize, took: Duration, stop: StopReason) {
        let m = &self.series;
        m.rounds_per_request.observe(rounds as f64);
        m.generation_duration.observe(took.as_secs_f64());
        if stop != StopReason::RoundsDone {
            m.early_stop(stop.as_str()).inc();
        }
        self.ended = true;
    }

    fn failed(&mut self) {
        self.ended = true;
    }
}

impl Drop for RequestMetrics {
    fn drop(&mut self) {
        self.in_flight.dec();
        if !self.ended {
            self.series.cancelled.inc();
        }
    }
}
