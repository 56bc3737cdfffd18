//! The optimisation loop: which examples each step sees (a seeded shuffle per epoch, so a resumed
//! run sees exactly what an uninterrupted one would), gradient accumulation over micro-batches,
//! clipping, AdamW, evaluation, and the tensors a checkpoint holds.

use std::collections::HashMap;

use anyhow::Context;
use candle_core::{Device, Tensor};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::checkpoint::{Loaded, State};
use super::config::Hyperparameters;
use super::data::Example;
use super::gguf::BaseWeights;
use super::lora::Lora;
use super::loss::{weighted_loss, Batch};
use super::model::Decoder;
use super::optim::{clip_grad_norm, learning_rate, AdamW};

/// A training run in memory.
pub struct Trainer {
    pub hp: Hyperparameters,
    pub base: BaseWeights,
    pub lora: Lora,
    pub opt: AdamW,
    pub train: Vec<Example>,
    /// Token used to pad micro-batches (never a label).
    pub pad: u32,
    /// Optimizer steps done.
    pub step: usize,
    pub total_steps: usize,
    pub device: Device,
}

/// What one optimizer step did.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    pub loss: f64,
    pub accuracy: f64,
    pub grad_norm: f64,
    pub learning_rate: f64,
    pub tokens: usize,
    /// Examples consumed so far / examples per epoch.
    pub epoch: f64,
}

impl Trainer {
    /// A fresh run (adapter B = 0, so the model starts as the base).
    pub fn new(
        hp: Hyperparameters,
        base: BaseWeights,
        train: Vec<Example>,
        pad: u32,
        device: Device,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(!train.is_empty(), "the training file has no usable lines");
        let lora = Lora::new(&hp.lora, &base.config, hp.seed, &device)?;
        let opt = AdamW::new(&lora.vars(), &hp)?;
        let per_step = hp.batch_size * hp.grad_accum;
        let total_steps = hp.max_steps.unwrap_or_else(|| {
            ((hp.n_epochs * train.len() as f64) / per_step as f64)
                .ceil()
                .max(1.0) as usize
        });
        Ok(Self {
            hp,
            base,
            lora,
            opt,
            train,
            pad,
            step: 0,
            total_steps,
            device,
        })
    }

    /// The example indices of each micro-batch of step `step` (0-based).
    pub fn micro_batches(&self, step: usize) -> Vec<Vec<usize>> {
        let n = self.train.len();
        let (bs, ga) = (self.hp.batch_size, self.hp.grad_accum);
        let mut order_epoch = usize::MAX;
        let mut order: Vec<usize> = vec![];
        (0..ga)
            .map(|j| {
                (0..bs)
                    .map(|i| {
                        let k = (step * ga + j) * bs + i;
                        if k / n != order_epoch {
                            order_epoch = k / n;
                            order = (0..n).collect();
                            order.shuffle(&mut StdRng::seed_from_u64(
                                self.hp.seed
                                    ^ (order_epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                            ));
                        }
                        order[k % n]
                    })
                    .collect()
            })
            .collect()
    }

    /// Runs one optimizer step.
    pub fn step(&mut self) -> anyhow::Result<StepStats> {
        let batches: Vec<Batch> = self
            .micro_batches(self.step)
            .iter()
            .map(|idx| {
                Batch::new(
                    &idx.iter().map(|&i| &self.train[i]).collect::<Vec<_>>(),
                    self.pad,
                    &self.device,
                )
            })
            .collect::<candle_core::Result<_>>()?;
        let norm: f64 = batches.iter().map(|b| b.weight_sum).sum::<f64>().max(1e-12);
        // Dropout masks come from the step number, so a resumed run draws the same ones.
        let mut rng = StdRng::seed_from_u64(self.hp.seed.wrapping_add(1 + self.step as u64));
        let vars = self.lora.vars();
        let mut grads: Vec<Option<Tensor>> = vec![None; vars.len()];
        let (mut nll, mut correct, mut counted, mut tokens) = (0.0, 0, 0, 0);
        let dec = Decoder {
            base: &self.base,
            lora: Some(&self.lora),
        };
        for b in &batches {
            let out = weighted_loss(&dec, b, Some(&mut rng), norm)?;
            let store = out.loss.backward()?;
            for (acc, v) in grads.iter_mut().zip(&vars) {
                let g = store
                    .get(v.as_tensor())
                    .context("a LoRA weight got no gradient")?;
                *acc = Some(match acc.take() {
                    None => g.clone(),
                    Some(a) => (a + g)?,
                });
            }
            nll += out.weighted_nll;
            correct += out.correct;
            counted += out.counted;
            tokens += b.tokens;
        }
        let mut grads: Vec<Tensor> = grads
            .into_iter()
            .map(|g| g.expect("one micro-batch at least"))
            .collect();
        let grad_norm = clip_grad_norm(&mut grads, self.hp.max_grad_norm)?;
        self.step += 1;
        let lr = learning_rate(&self.hp, self.step, self.total_steps);
        self.opt.step(&vars, &grads, lr)?;
        let consumed = self.step * self.hp.batch_size * self.hp.grad_accum;
        Ok(StepStats {
            loss: nll / norm,
            accuracy: correct as f64 / counted.max(1) as f64,
            grad_norm,
            learning_rate: lr,
            tokens,
            epoch: consumed as f64 / self.train.len() as f64,
        })
    }

    /// Weighted loss and token accuracy of the current model on `examples` (no dropout).
    pub fn evaluate(&self, examples: &[Example]) -> anyhow::Result<(f64, f64)> {
        let dec = Decoder {
            base: &self.base,
            lora: Some(&self.lora),
        };
        let (mut nll, mut w, mut correct, mut counted) = (0.0, 0.0, 0, 0);
        for chunk in examples.chunks(self.hp.batch_size) {
            let b = Batch::new(&chunk.iter().collect::<Vec<_>>(), self.pad, &self.device)?;
            let out = weighted_loss(&dec, &b, None, 1.0)?;
            nll += out.weighted_nll;
            w += b.weight_sum;
            correct += out.correct;
            counted += out.counted;
        }
        Ok((nll / w.max(1e-12), correct as f64 / counted.max(1) as f64))
    }

    /// The checkpoint of the current step: state, adapter tensors, optimizer moments.
    pub fn checkpoint(&self) -> (State, HashMap<String, Tensor>, HashMap<String, Tensor>) {
        let named = self.lora.named_vars();
        let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        let adapter = named
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        let state = State {
            step: self.step,
            adam_t: self.opt.t,
            lora: self.hp.lora.clone(),
            seed: self.hp.seed,
            batch_size: self.hp.batch_size,
            grad_accum: self.hp.grad_accum,
        };
        (state, adapter, self.opt.state(&names))
    }

    /// Continues from a checkpoint written with the same adapter, seed and batch settings.
    pub fn restore(&mut self, ck: &Loaded) -> anyhow::Result<()> {
        let (mine, _, _) = self.checkpoint();
        let s = &ck.state;
        anyhow::ensure!(
            (s.lora == mine.lora) && s.seed == mine.seed && s.batch_size == mine.batch_size && s.grad_accum == mine.grad_accum,
            "the checkpoint was written with other lora/seed/batch settings than this config; use a new output_dir"
        );
        let named = self.lora.named_vars();
        for (n, v) in &named {
            let t = ck
                .adapter
                .get(n)
                .with_context(|| format!("checkpoint lacks {n}"))?;
            v.set(t)?;
        }
        let names: Vec<String> = named.iter().map(|(n, _)| n.clone()).collect();
        self.opt.restore(&names, &ck.optimizer, s.adam_t)?;
        self.step = s.step;
        Ok(())
    }
}
