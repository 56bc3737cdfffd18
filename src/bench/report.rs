//! The benchmark report: aggregation of per-request samples and its table form.

use std::fmt::Write as _;

use serde::Serialize;

use super::response::RequestSample;
use super::stats::Summary;
use super::BenchSpec;

/// What one benchmark run measured. Latencies are in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed (non-2xx, transport error, error payload).
    pub errors: usize,
    /// Successful responses without a single output token (some servers answer requests they
    /// dropped under load with an empty 200 stream).
    pub empty: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Wall-clock time of the whole run.
    pub wall_seconds: f64,
    /// Output tokens of all successful requests.
    pub output_tokens: u64,
    /// `output_tokens / wall_seconds`.
    pub output_tokens_per_second: f64,
    /// Time to first content or reasoning token; streaming only.
    pub ttft: Option<Summary>,
    /// Gaps between consecutive token-bearing chunks, pooled over requests; streaming only.
    pub itl: Option<Summary>,
    /// Each streamed request's output tokens after the first over the time after its first
    /// token, in tokens per second (a later round's prefill counts as time); streaming only.
    pub decode_tokens_per_second: Option<Summary>,
    /// End-to-end time per successful, non-empty request.
    pub e2e: Option<Summary>,
    /// The message of the earliest request (by request number) that failed.
    pub first_error: Option<String>,
}

impl BenchReport {
    /// Aggregates outcomes given in request order.
    pub fn new(
        outcomes: &[anyhow::Result<RequestSample>],
        concurrency: usize,
        wall_seconds: f64,
    ) -> Self {
        let samples: Vec<&RequestSample> =
            outcomes.iter().filter_map(|o| o.as_ref().ok()).collect();
        let ttfts: Vec<f64> = samples.iter().filter_map(|s| s.ttft).collect();
        let itls: Vec<f64> = samples.iter().flat_map(|s| s.itl.iter().copied()).collect();
        let decode_rates: Vec<f64> = samples.iter().copied().filter_map(decode_rate).collect();
        // An empty response has no latency worth the name.
        let e2es: Vec<f64> = samples
            .iter()
            .filter(|s| s.output_tokens > 0)
            .map(|s| s.e2e)
            .collect();
        let output_tokens = samples.iter().map(|s| s.output_tokens).sum();
        let output_tokens_per_second = if wall_seconds > 0.0 {
            output_tokens as f64 / wall_seconds
        } else {
            0.0
        };
        Self {
            requests: outcomes.len(),
            errors: outcomes.len() - samples.len(),
            empty: samples.iter().filter(|s| s.output_tokens == 0).count(),
            concurrency,
            wall_seconds,
            output_tokens,
            output_tokens_per_second,
            ttft: Summary::of(&ttfts),
            itl: Summary::of(&itls),
            decode_tokens_per_second: Summary::of(&decode_rates),
            e2e: Summary::of(&e2es),
            first_error: outcomes
                .iter()
                .find_map(|o| o.as_ref().err().map(|e| format!("{e:#}"))),
        }
    }

    /// The fixed-width table printed by `ptr-server bench`, ending in a newline.
    pub fn table(&self, spec: &BenchSpec) -> String {
        let mut out = format!(
            "ptr-server bench: {} requests, concurrency {}, max_tokens {}, stream={}, model={}",
            self.requests, self.concurrency, spec.max_tokens, spec.stream, spec.model
        );
        if let Some(rounds) = spec.rounds {
            let _ = write!(out, ", rounds={rounds}");
        }
        if spec.unique_prompts {
            out.push_str(", unique prompts");
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "{:<12}{:>10}{:>10}{:>10}",
            "metric", "p50", "p95", "mean"
        );
        row(&mut out, "ttft (s)", self.ttft, 1.0, 3);
        row(&mut out, "itl (ms)", self.itl, 1000.0, 1);
        row(
            &mut out,
            "decode tok/s",
            self.decode_tokens_per_second,
            1.0,
            1,
        );
        row(&mut out, "e2e (s)", self.e2e, 1.0, 2);
        let _ = writeln!(
            out,
            "requests {}  errors {}  empty {}  output tokens {}  wall {:.1} s  throughput {:.1} tok/s",
            self.requests,
            self.errors,
            self.empty,
            self.output_tokens,
            self.wall_seconds,
            self.output_tokens_per_second
        );
        if let Some(error) = &self.first_error {
            let _ = writeln!(out, "first error: {error}");
        }
        out
    }
}

/// Output tokens after the first per second after the first token, for a streamed request
/// with at least two tokens.
fn decode_rate(sample: &RequestSample) -> Option<f64> {
    let decoding = sample.e2e - sample.ttft?;
    (sample.output_tokens >= 2 && decoding > 0.0)
        .then(|| (sample.output_tokens - 1) as f64 / decoding)
}

/// One table row; a missing summary prints as dashes.
fn row(out: &mut String, label: &str, summary: Option<Summary>, scale: f64, decimals: usize) {
    let cell = |value: Option<f64>| match value {
        Some(v) => format!("{:>10.*}", decimals, v * scale),
        None => format!("{:>10}", "-"),
    };
    let _ = writeln!(
        out,
        "{label:<12}{}{}{}",
        cell(summary.map(|s| s.p50)),
        cell(summary.map(|s| s.p95)),
        cell(summary.map(|s| s.mean)),
    );
}

#[cfg(test)]
mod tests {
    use anyhow::anyhow;

    use super::*;

    fn sample(ttft: f64, itl: &[f64], e2e: f64, tokens: u64) -> anyhow::Result<RequestSample> {
        Ok(RequestSample {
            ttft: Some(ttft),
            itl: itl.to_vec(),
            e2e,
            output_tokens: tokens,
        })
    }

    #[test]
    fn aggregates_successes_and_keeps_the_first_error() {
        let outcomes = vec![
            sample(0.1, &[0.05, 0.07], 1.0, 10),
            Err(anyhow!("HTTP 500: first")),
            sample(0.3, &[0.06], 3.0, 30),
            Err(anyhow!("second")),
            Ok(RequestSample {
                ttft: None,
                itl: vec![],
                e2e: 0.0,
                output_tokens: 0,
            }),
        ];
        let report = BenchReport::new(&outcomes, 2, 4.0);
        assert_eq!(report.requests, 5);
        assert_eq!(report.errors, 2);
        assert_eq!(report.empty, 1);
        assert_eq!(report.output_tokens, 40);
        assert_eq!(report.output_tokens_per_second, 10.0);
        assert_eq!(report.first_error.as_deref(), Some("HTTP 500: first"));
        assert_eq!(report.itl.map(|s| s.p50), Some(0.06));
        // 9 tokens in 0.9 s and 29 in 2.7 s; the empty response has no rate.
        let decode = report.decode_tokens_per_second.expect("decode rate");
        assert!((decode.p50 - 10.0).abs() < 1e-9, "{decode:?}");
        assert!((decode.p95 - 29.0 / 2.7).abs() < 1e-9, "{decode:?}");
        assert_eq!(report.e2e.map(|s| s.mean), Some(2.0));
    }

    #[test]
    fn table_prints_aligned_rows_and_dashes() {
        let spec = BenchSpec {
            url: "http://x".into(),
            model: "m".into(),
            requests: 10,
            concurrency: 1,
            max_tokens: 128,
            stream: true,
            prompt: None,
            unique_prompts: true,
            rounds: None,
            temperature: 0.0,
            api_key: None,
        };
        let outcomes = vec![Ok(RequestSample {
            ttft: None,
            itl: vec![],
            e2e: 7.1,
            output_tokens: 128,
        })];
        let table = BenchReport::new(&outcomes, 1, 10.0).table(&spec);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "ptr-server bench: 1 requests, concurrency 1, max_tokens 128, stream=true, model=m, \
             unique prompts"
        );
        assert_eq!(lines[1], "metric             p50       p95      mean");
        assert_eq!(lines[2], "ttft (s)             -         -         -");
        assert_eq!(lines[4], "decode tok/s         -         -         -");
        assert_eq!(lines[5], "e2e (s)           7.10      7.10      7.10");
        assert_eq!(
            lines[6],
            "requests 1  errors 0  empty 0  output tokens 128  wall 10.0 s  throughput 12.8 tok/s"
        );
        assert_eq!(lines.len(), 7);
    }
}
