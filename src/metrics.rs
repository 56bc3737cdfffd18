//! Prometheus metrics. [`Metrics`] owns its own registry (a fresh one per app, so tests never
//! share counters), labels are bounded (route templates, finish reasons, round numbers up to the
//! server's cap), and names follow `ptr_<thing>_<unit|total>`.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::engine::StatsSnapshot;

/// Every series the server exports.
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub ttft: Histogram,
    pub inter_token: Histogram,
    pub generation_duration: Histogram,
    pub prompt_tokens: IntCounter,
    pub generated_tokens: IntCounter,
    pub in_flight: IntGauge,
    pub cancelled: IntCounter,
    pub rejected: IntCounter,
    pub rounds_per_request: Histogram,
    pub round_duration: Histogram,
    pub rounds_started: IntCounterVec,
    pub round_tokens: IntCounterVec,
    pub early_stops: IntCounterVec,
    engine_active: IntGaugeVec,
    engine_cancelled: IntGaugeVec,
    engine_recycles: IntGaugeVec,
    engine_continuations: IntGaugeVec,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

fn histogram(registry: &Registry, name: &str, help: &str, buckets: &[f64]) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))
        .expect("valid histogram options: this is a bug");
    registry
        .register(Box::new(h.clone()))
        .expect("unique metric names: this is a bug");
    h
}

fn counter_vec(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c =
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter: this is a bug");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric names: this is a bug");
    c
}

fn counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid counter: this is a bug");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric names: this is a bug");
    c
}

fn gauge_vec(registry: &Registry, name: &str, help: &str) -> IntGaugeVec {
    let g =
        IntGaugeVec::new(Opts::new(name, help), &["model"]).expect("valid gauge: this is a bug");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric names: this is a bug");
    g
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "ptr_http_request_duration_seconds",
                "Time to the response head, by route and status",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "status"],
        )
        .expect("valid histogram: this is a bug");
        r.register(Box::new(http_duration.clone()))
            .expect("unique metric names: this is a bug");
        let in_flight = IntGauge::new("ptr_requests_in_flight", "Generations running now")
            .expect("valid gauge: this is a bug");
        r.register(Box::new(in_flight.clone()))
            .expect("unique metric names: this is a bug");
        Self {
            http_requests: counter_vec(
                &r,
                "ptr_http_requests_total",
                "HTTP requests by route and status",
                &["route", "status"],
            ),
            http_duration,
            ttft: histogram(
                &r,
                "ptr_time_to_first_token_seconds",
                "Time from request to the first generated token",
                LATENCY_BUCKETS,
            ),
            inter_token: histogram(
                &r,
                "ptr_inter_token_latency_seconds",
                "Time between consecutive generated tokens",
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            generation_duration: histogram(
                &r,
                "ptr_request_duration_seconds",
                "Whole generation time per request, all rounds",
                LATENCY_BUCKETS,
            ),
            prompt_tokens: counter(
                &r,
                "ptr_prompt_tokens_total",
                "Prompt tokens processed, all rounds",
            ),
            generated_tokens: counter(
                &r,
                "ptr_generated_tokens_total",
                "Tokens generated, all rounds",
            ),
            in_flight,
            cancelled: counter(
                &r,
                "ptr_requests_cancelled_total",
                "Generations stopped because the client went away",
            ),
            rejected: counter(
                &r,
                "ptr_requests_rejected_total",
                "Requests refused with 429 because the server was at capacity",
            ),
            rounds_per_request: histogram(
                &r,
                "ptr_refinement_rounds",
                "Refinement rounds run per request",
                &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 16.0, 32.0],
            ),
            round_duration: histogram(
                &r,
                "ptr_round_duration_seconds",
                "Duration of one refinement round",
                LATENCY_BUCKETS,
            ),
            rounds_started: counter_vec(
                &r,
                "ptr_rounds_started_total",
                "Refinement rounds started, by round number",
                &["round"],
            ),
            round_tokens: counter_vec(
                &r,
                "ptr_round_generated_tokens_total",
                "Tokens generated, by round number",
                &["round"],
            ),
            early_stops: counter_vec(
                &r,
                "ptr_early_stops_total",
                "Refinements that ended before their last round, by reason",
                &["reason"],
            ),
            engine_active: gauge_vec(
                &r,
                "ptr_engine_active_sequences",
                "Sequences the engine still holds",
            ),
            engine_cancelled: gauge_vec(
                &r,
                "ptr_engine_cancelled_sequences",
                "Sequences the engine stopped because their consumer left",
            ),
            engine_recycles: gauge_vec(
                &r,
                "ptr_engine_recycles",
                "Fresh engines swapped in to free the prefix cache (CPU)",
            ),
            engine_continuations: gauge_vec(
                &r,
                "ptr_engine_token_continuations",
                "Prompts sent as exact token ids continuing an earlier answer",
            ),
            registry: r,
        }
    }

    /// Prometheus text exposition, with the engines' own counters read now.
    pub fn render(&self, engines: &[(String, StatsSnapshot)]) -> String {
        for (model, s) in engines {
            let l = [model.as_str()];
            for (gauge, value) in [
                (&self.engine_active, s.active_sequences),
                (&self.engine_cancelled, s.cancelled_sequences),
                (&self.engine_recycles, s.recycles),
                (&self.engine_continuations, s.token_continuations),
            ] {
                gauge.with_label_values(&l).set(value as i64);
            }
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail: this is a bug");
        String::from_utf8(out).expect("prometheus text is UTF-8: this is a bug")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_engine_counters_and_request_series() {
        let m = Metrics::new();
        m.http_requests.with_label_values(&["/health", "200"]).inc();
        let snap = StatsSnapshot {
            active_sequences: 2,
            cancelled_sequences: 1,
            ..Default::default()
        };
        let text = m.render(&[("m".into(), snap)]);
        assert!(text.contains("ptr_http_requests_total{route=\"/health\",status=\"200\"} 1"));
        assert!(text.contains("ptr_engine_active_sequences{model=\"m\"} 2"));
    }
}
