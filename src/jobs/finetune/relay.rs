//! [`Relay`]: what a fine-tuning job makes of its trainer's typed reports — steps become
//! `metrics` events, checkpoints are listed in the job's state with their step's metrics, phases
//! and skipped lines become messages — and what it keeps for the end: the tokens trained and the
//! trainer's outputs.

use serde_json::json;

use super::checkpoint::Checkpoint;
use super::spec::FineTuneSpec;
use super::{tuned_model_id, FineTuneState};
use crate::jobs::Failure;
use crate::jobs::{JobContext, JobFailure, JobState};
use crate::store::{now, NewEvent};
use crate::train::report::{Event, Outputs};

/// One trainer run's reports, as the job has taken them so far.
pub struct Relay<'a> {
    ctx: &'a JobContext,
    spec: &'a FineTuneSpec,
    /// Every checkpoint, oldest first (those of earlier runs of a resumed job included).
    checkpoints: Vec<Checkpoint>,
    /// Tokens trained over every run of the job.
    pub trained_tokens: u64,
    total_steps: Option<usize>,
    /// What the trainer wrote, once it reported `done`.
    pub done: Option<Outputs>,
}

impl<'a> Relay<'a> {
    /// Continues from what the job's state holds (a resumed job's checkpoints and tokens).
    pub fn new(ctx: &'a JobContext, spec: &'a FineTuneSpec) -> Self {
        let state = FineTuneState::of(&ctx.job);
        Self {
            ctx,
            spec,
            checkpoints: state.checkpoints.unwrap_or_default(),
            trained_tokens: state.trained_tokens.unwrap_or(0),
            total_steps: None,
            done: None,
        }
    }

    /// Records one report; `Err` when the trainer reported a failure or the store failed.
    pub async fn take(&mut self, event: Event) -> Result<(), JobFailure> {
        let ctx = self.ctx;
        // The event as the trainer wrote it: the data of the job events that relay it.
        let data = serde_json::to_value(&event).expect("events serialise: this is a bug");
        match event {
            Event::Step {
                step,
                epoch,
                train_loss,
                learning_rate,
                tokens,
                tokens_per_second,
                grad_norm,
                ..
            } => {
                self.trained_tokens += tokens as u64;
                let tps = if tokens_per_second.is_nan() {
                    0.0
                } else {
                    tokens_per_second
                };
                let msg = format!("Step {step}: training loss={train_loss:.4}");
                let data = json!({
                    "step": step, "total_steps": self.total_steps, "train_loss": train_loss,
                    "learning_rate": learning_rate, "tokens_per_second": tps,
                    "grad_norm": grad_norm, "epoch": epoch,
                });
                ctx.event(NewEvent::metrics(msg, data)).await?;
            }
            Event::Checkpoint {
                step,
                path,
                metrics,
            } => {
                let job = &ctx.job.id;
                let tuned = tuned_model_id(&self.spec.model, self.spec.suffix.as_deref(), job);
                self.checkpoints.retain(|c| c.step_number != step);
                self.checkpoints.push(Checkpoint {
                    object: "fine_tuning.job.checkpoint".into(),
                    id: format!("ftckpt-{}-{step}", job.trim_start_matches("ftjob-")),
                    created_at: now(),
                    step_number: step,
                    fine_tuning_job_id: job.clone(),
                    metrics,
                    fine_tuned_model_checkpoint: format!("{tuned}:ckpt-step-{step}"),
                    path: Some(path),
                });
                ctx.update(&FineTuneState {
                    checkpoints: Some(self.checkpoints.clone()),
                    ..FineTuneState::default()
                })
                .await?;
                let msg = format!("Checkpoint saved at step {step}");
                ctx.event(NewEvent::info(msg)).await?;
            }
            Event::Skipped { lines, reason } => {
                let msg = format!("{lines} training lines skipped: {reason}");
                ctx.event(NewEvent::warn(msg)).await?;
            }
            Event::Started {
                step, total_steps, ..
            } => {
                self.total_steps = Some(total_steps);
                let msg = format!("Training from step {step} of {total_steps}");
                ctx.event(NewEvent::info(msg).with_data(data)).await?;
            }
            Event::Validation {
                step, valid_loss, ..
            } => {
                let msg = format!("Step {step}: validation loss={valid_loss:.4}");
                ctx.event(NewEvent::metrics(msg, data)).await?;
            }
            Event::Phase { message } => {
                ctx.event(NewEvent::info(message).with_data(data)).await?;
            }
            Event::Error { message } => return Err(Failure::Trainer.with(message)),
            Event::Done(outputs) => self.done = Some(outputs),
            // The kill that follows a stop is what the job reports.
            Event::Stopped { .. } => {}
        }
        Ok(())
    }
}
