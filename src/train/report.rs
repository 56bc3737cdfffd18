//! What the trainer tells the world: JSON-line events on stdout (the contract with the job that
//! spawns it, which reads them back as the same [`Event`]), an optional progress bar on stderr,
//! the metrics CSV in OpenAI's columns and a loss-curve SVG.

use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// One stdout line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Phase {
        message: String,
    },
    Skipped {
        lines: usize,
        reason: String,
    },
    Started {
        step: usize,
        total_steps: usize,
        train_examples: usize,
        valid_examples: usize,
        trainable_params: usize,
        arch: String,
    },
    Step {
        step: usize,
        #[serde(deserialize_with = "float")]
        epoch: f64,
        #[serde(deserialize_with = "float")]
        train_loss: f64,
        #[serde(deserialize_with = "float")]
        train_accuracy: f64,
        #[serde(deserialize_with = "float")]
        learning_rate: f64,
        /// Tokens the step trained on (all micro-batches, padding excluded).
        tokens: usize,
        #[serde(deserialize_with = "float")]
        tokens_per_second: f64,
        #[serde(deserialize_with = "float")]
        grad_norm: f64,
        #[serde(deserialize_with = "float")]
        elapsed_s: f64,
    },
    Validation {
        step: usize,
        #[serde(deserialize_with = "float")]
        valid_loss: f64,
        #[serde(deserialize_with = "float")]
        valid_mean_token_accuracy: f64,
    },
    Checkpoint {
        step: usize,
        path: PathBuf,
        /// The checkpoint's step's metrics (`None` only for a checkpoint before any step).
        metrics: Option<CheckpointMetrics>,
    },
    /// SIGTERM: the run stopped after a step and saved this checkpoint.
    Stopped {
        step: usize,
        checkpoint: PathBuf,
    },
    Done(Outputs),
    Error {
        message: String,
    },
}

/// What a finished run wrote (the `done` event's fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Outputs {
    pub merged_gguf: PathBuf,
    pub adapter_dir: PathBuf,
    pub metrics_csv: PathBuf,
    pub loss_curve: PathBuf,
}

/// Reads back a float as `serde_json` writes it: a NaN or infinite one became `null`.
fn float<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Writes events to stdout and, when enabled, drives a progress bar on stderr.
pub struct Reporter {
    bar: Option<ProgressBar>,
}

impl Reporter {
    /// `progress`: show a bar on stderr.
    pub fn new(progress: bool) -> Self {
        let bar = progress.then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} steps {msg} [{elapsed} < {eta}]",
                )
                .expect("a valid progress template, this is a bug"),
            );
            bar
        });
        Self { bar }
    }

    /// Prints one event line and updates the bar.
    pub fn emit(&self, event: &Event) {
        if let Some(bar) = &self.bar {
            match event {
                Event::Started {
                    step, total_steps, ..
                } => {
                    bar.set_length(*total_steps as u64);
                    bar.set_position(*step as u64);
                }
                Event::Step {
                    step,
                    train_loss,
                    tokens_per_second,
                    ..
                } => {
                    bar.set_position(*step as u64);
                    bar.set_message(format!(
                        "loss {train_loss:.4} · {tokens_per_second:.0} tok/s"
                    ));
                }
                Event::Phase { message } => bar.println(message),
                Event::Done(_) | Event::Error { .. } => bar.finish(),
                _ => {}
            }
        }
        let line = serde_json::to_string(event).expect("events serialise, this is a bug");
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// A checkpoint's metrics in OpenAI's shape (`fine_tuning.job.checkpoint.metrics`): the step's
/// training loss and token accuracy, and the validation ones when the run has a validation set.
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckpointMetrics {
    pub step: usize,
    #[serde(deserialize_with = "float")]
    pub train_loss: f64,
    #[serde(deserialize_with = "float")]
    pub train_mean_token_accuracy: f64,
    pub valid_loss: Option<f64>,
    pub valid_mean_token_accuracy: Option<f64>,
}

impl From<&MetricsRow> for CheckpointMetrics {
    fn from(r: &MetricsRow) -> Self {
        Self {
            step: r.step,
            train_loss: r.train_loss,
            train_mean_token_accuracy: r.train_accuracy,
            valid_loss: r.valid.map(|v| v.0),
            valid_mean_token_accuracy: r.valid.map(|v| v.1),
        }
    }
}

/// One CSV row (OpenAI's columns); validation columns are empty on most steps.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsRow {
    pub step: usize,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub valid: Option<(f64, f64)>,
}

const HEADER: &str = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy";

/// Writes the CSV.
pub fn write_csv(path: &Path, rows: &[MetricsRow]) -> std::io::Result<()> {
    let mut s = format!("{HEADER}\n");
    for r in rows {
        let (vl, va) = r.valid.map_or((String::new(), String::new()), |(l, a)| {
            (format!("{l:.6}"), format!("{a:.6}"))
        });
        s += &format!(
            "{},{:.6},{:.6},{vl},{va}\n",
            r.step, r.train_loss, r.train_accuracy
        );
    }
    std::fs::write(path, s)
}

/// Reads a CSV written by [`write_csv`] (to continue it after a resume).
pub fn read_csv(path: &Path) -> Vec<MetricsRow> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![];
    };
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let valid = match (f.get(3)?.parse().ok(), f.get(4)?.parse().ok()) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            };
            Some(MetricsRow {
                step: f[0].parse().ok()?,
                train_loss: f[1].parse().ok()?,
                train_accuracy: f[2].parse().ok()?,
                valid,
            })
        })
        .collect()
}

/// Draws training (and validation) loss against step as an SVG.
pub fn write_loss_curve(path: &Path, rows: &[MetricsRow]) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let max_step = rows.iter().map(|r| r.step).max().unwrap_or(1).max(1) as f64;
    let losses = rows
        .iter()
        .flat_map(|r| std::iter::once(r.train_loss).chain(r.valid.map(|v| v.0)));
    let max_loss = losses.fold(0.0f64, f64::max).max(1e-3) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption("training loss", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(0.0..max_step, 0.0..max_loss)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .draw()?;
    chart
        .draw_series(LineSeries::new(
            rows.iter().map(|r| (r.step as f64, r.train_loss)),
            &BLUE,
        ))?
        .label("train")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], BLUE));
    let valid: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.valid.map(|v| (r.step as f64, v.0)))
        .collect();
    if !valid.is_empty() {
        chart
            .draw_series(LineSeries::new(valid.clone(), &RED))?
            .label("validation")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
        chart.draw_series(valid.iter().map(|&p| Circle::new(p, 3, RED.filled())))?;
    }
    crate::plot::finish(&mut chart, &root, SeriesLabelPosition::MiddleRight)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trips_and_the_curve_draws() {
        let dir = tempfile::tempdir().unwrap();
        let rows = vec![
            MetricsRow {
                step: 1,
                train_loss: 2.5,
                train_accuracy: 0.25,
                valid: None,
            },
            MetricsRow {
                step: 2,
                train_loss: 2.0,
                train_accuracy: 0.5,
                valid: Some((2.1, 0.4)),
            },
        ];
        let csv = dir.path().join("m.csv");
        write_csv(&csv, &rows).unwrap();
        assert!(std::fs::read_to_string(&csv).unwrap().starts_with(HEADER));
        assert_eq!(read_csv(&csv), rows);
        let svg = dir.path().join("loss.svg");
        write_loss_curve(&svg, &rows).unwrap();
        assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    }
}
