//! The native thought-mask trainer behind `ptr-server train --config FILE` (PTR phase 2).
//!
//! - [`config`]: the JSON config file; [`gguf`]: base weights de-quantised from a GGUF (llama,
//!   qwen2); [`tokenizer`]: the GGUF's tokenizer and ChatML template, as mistral.rs uses them.
//! - [`data`]: lines laid out by `refine::layout`, tokenised with per-token loss weights;
//!   [`model`]: the differentiable decoder forward; [`lora`]: the trainable adapter;
//!   [`frozen`]: `x Wᵀ` without a weight gradient; [`loss`]: Σ w·nll / Σ w; [`optim`]: AdamW,
//!   schedule, clipping; [`trainer`]: the loop.
//! - [`checkpoint`]: atomic, resumable checkpoints; [`export`]: merged GGUF and PEFT adapter;
//!   [`report`]: JSON-line events on stdout, metrics CSV, loss-curve SVG.
//!
//! [`run`] is the whole job. It resumes from the newest checkpoint in `output_dir`, stops cleanly
//! after the current step when its stop flag is set (saving a checkpoint), and ends with a `done`
//! event. The `ptr-server train` process around it (signals, the parent watch) is `crate::cli`'s.

pub mod checkpoint;
pub mod config;
pub mod data;
pub mod export;
pub mod frozen;
pub mod gguf;
pub mod lora;
pub mod loss;
pub mod model;
pub mod optim;
pub mod report;
#[cfg(test)]
mod tests;
pub mod tokenizer;
pub mod trainer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use candle_core::Device;

use config::TrainConfig;
use data::{Dataset, Encoder, Skip};
use report::{Event, MetricsRow, Reporter};
use trainer::Trainer;

/// The run stopped on request (SIGTERM) after saving a checkpoint.
#[derive(Debug, thiserror::Error)]
#[error("stopped at step {0} on request; the checkpoint resumes it")]
pub struct Stopped(pub usize);

fn skipped_events(reporter: &Reporter, file: &Path, ds: &Dataset) {
    let mut by_reason: Vec<(String, usize)> = vec![];
    for (line, skip) in &ds.skipped {
        let reason = match skip {
            Skip::TooLong => "longer than max_seq_len even without thoughts".to_string(),
            Skip::Invalid(why) => format!("line {line}: {why}"),
        };
        match by_reason.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => by_reason.push((reason, 1)),
        }
    }
    for (reason, lines) in by_reason {
        reporter.emit(&Event::Skipped {
            lines,
            reason: format!("{}: {reason}", file.display()),
        });
    }
}

/// Loads the model, tokenises the files and resumes from the newest checkpoint.
fn prepare(
    cfg: &TrainConfig,
    reporter: &Reporter,
    device: &Device,
) -> anyhow::Result<(Trainer, Vec<data::Example>)> {
    let hp = &cfg.hyperparameters;
    reporter.emit(&Event::Phase {
        message: format!("loading {}", cfg.base_model_path.display()),
    });
    let (base, content) = gguf::BaseWeights::load(&cfg.base_model_path, device)?;
    let encoder = Encoder {
        tokenizer: tokenizer::from_gguf(&content)?,
        template: tokenizer::ChatTemplate::from_gguf(&content)?,
        max_len: hp.max_seq_len,
        answer_weight: hp.answer_weight,
        thought_weight: hp.thought_weight,
    };
    reporter.emit(&Event::Phase {
        message: "tokenising".into(),
    });
    let train_ds = data::load(&cfg.training_file, &encoder)?;
    skipped_events(reporter, &cfg.training_file, &train_ds);
    let valid = match &cfg.validation_file {
        Some(p) => {
            let ds = data::load(p, &encoder)?;
            skipped_events(reporter, p, &ds);
            ds.examples
        }
        None => vec![],
    };
    let pad = content
        .metadata
        .get("tokenizer.ggml.eos_token_id")
        .and_then(|v| v.to_u32().ok())
        .unwrap_or(0);
    let mut t = Trainer::new(hp.clone(), base, train_ds.examples, pad, device.clone())?;
    if let Some(path) = checkpoint::latest(&cfg.output_dir)? {
        reporter.emit(&Event::Phase {
            message: format!("resuming from {}", path.display()),
        });
        t.restore(&checkpoint::load(&path, device)?)?;
    }
    Ok((t, valid))
}

/// Writes the merged GGUF, the PEFT adapter, the CSV and the loss curve; emits `done`.
fn finish(
    cfg: &TrainConfig,
    t: &Trainer,
    rows: &[MetricsRow],
    reporter: &Reporter,
) -> anyhow::Result<()> {
    let out = &cfg.output_dir;
    reporter.emit(&Event::Phase {
        message: "merging the adapter and writing the GGUF".into(),
    });
    let stem = cfg
        .base_model_path
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let merged = out.join(format!("{stem}.ptr-merged.gguf"));
    export::merged_gguf(&cfg.base_model_path, &t.base, &t.lora, &merged)?;
    reporter.emit(&Event::Phase {
        message: "writing the PEFT adapter and reports".into(),
    });
    let adapter_dir = out.join("adapter");
    let base_name = cfg.base_model_path.to_string_lossy();
    export::peft_adapter(&t.base, &t.lora, &base_name, &adapter_dir)?;
    let (metrics_csv, loss_curve) = (out.join("metrics.csv"), out.join("loss_curve.svg"));
    report::write_csv(&metrics_csv, rows)?;
    report::write_loss_curve(&loss_curve, rows)?;
    reporter.emit(&Event::Done(report::Outputs {
        merged_gguf: merged,
        adapter_dir,
        metrics_csv,
        loss_curve,
    }));
    Ok(())
}

/// Runs a whole training job: load, tokenise, train (resuming), checkpoint, export, report.
pub fn run(
    cfg: &TrainConfig,
    reporter: &Reporter,
    stop: &AtomicBool,
    device: &Device,
) -> anyhow::Result<()> {
    let hp = &cfg.hyperparameters;
    let out = &cfg.output_dir;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let (mut t, valid) = prepare(cfg, reporter, device)?;
    let arch = format!("{:?}", t.base.config.arch).to_lowercase();
    let csv = out.join("metrics.csv");
    let mut rows: Vec<MetricsRow> = report::read_csv(&csv)
        .into_iter()
        .filter(|r| r.step <= t.step)
        .collect();
    let trainable = t.lora.vars().iter().map(|v| v.elem_count()).sum();
    reporter.emit(&Event::Started {
        step: t.step,
        total_steps: t.total_steps,
        train_examples: t.train.len(),
        valid_examples: valid.len(),
        trainable_params: trainable,
        arch,
    });
    let started = Instant::now();
    let mut last_saved = t.step;
    let save = |t: &Trainer, rows: &mut Vec<MetricsRow>| -> anyhow::Result<PathBuf> {
        let (state, adapter, opt) = t.checkpoint();
        let path = checkpoint::save(out, &state, &adapter, &opt)?;
        if !valid.is_empty() {
            let (loss, acc) = t.evaluate(&valid)?;
            reporter.emit(&Event::Validation {
                step: t.step,
                valid_loss: loss,
                valid_mean_token_accuracy: acc,
            });
            if let Some(r) = rows.iter_mut().find(|r| r.step == t.step) {
                r.valid = Some((loss, acc));
            }
        }
        report::write_csv(&csv, rows)?;
        reporter.emit(&Event::Checkpoint {
            step: t.step,
            path: path.clone(),
            metrics: rows.iter().find(|r| r.step == t.step).map(Into::into),
        });
        Ok(path)
    };
    while t.step < t.total_steps {
        if stop.load(Ordering::SeqCst) {
            let checkpoint = match checkpoint::latest(out)? {
                Some(p) if last_saved == t.step => p,
                _ => save(&t, &mut rows)?,
            };
            reporter.emit(&Event::Stopped {
                step: t.step,
                checkpoint,
            });
            return Err(Stopped(t.step).into());
        }
        let step_start = Instant::now();
        let s = t.step()?;
        reporter.emit(&Event::Step {
            step: t.step,
            epoch: s.epoch,
            train_loss: s.loss,
            train_accuracy: s.accuracy,
            learning_rate: s.learning_rate,
            tokens: s.tokens,
            tokens_per_second: s.tokens as f64 / step_start.elapsed().as_secs_f64(),
            grad_norm: s.grad_norm,
            elapsed_s: started.elapsed().as_secs_f64(),
        });
        rows.push(MetricsRow {
            step: t.step,
            train_loss: s.loss,
            train_accuracy: s.accuracy,
            valid: None,
        });
        if hp.checkpoint_every > 0 && t.step % hp.checkpoint_every == 0 {
            save(&t, &mut rows)?;
            last_saved = t.step;
        }
    }
    if last_saved != t.step || checkpoint::latest(out)?.is_none() {
        save(&t, &mut rows)?;
    }
    finish(cfg, &t, &rows, reporter)
}
