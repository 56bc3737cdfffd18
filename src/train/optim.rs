//! AdamW with decoupled weight decay (our own, so that its moments can be checkpointed), the
//! learning-rate schedule (linear warm-up, then linear/cosine decay or constant) and clipping by
//! global gradient norm.

use std::collections::HashMap;

use candle_core::{Tensor, Var};

use super::config::{Hyperparameters, Schedule};

/// AdamW state for a fixed list of variables.
pub struct AdamW {
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
    /// Steps taken (for bias correction).
    pub t: usize,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl AdamW {
    /// Zero moments for `vars`.
    pub fn new(vars: &[&Var], h: &Hyperparameters) -> candle_core::Result<Self> {
        let zeros = || {
            vars.iter()
                .map(|v| v.as_tensor().zeros_like())
                .collect::<candle_core::Result<Vec<_>>>()
        };
        Ok(Self {
            betas: h.betas,
            eps: h.eps,
            weight_decay: h.weight_decay,
            t: 0,
            m: zeros()?,
            v: zeros()?,
        })
    }

    /// One update of every variable with its gradient, at learning rate `lr`.
    pub fn step(&mut self, vars: &[&Var], grads: &[Tensor], lr: f64) -> candle_core::Result<()> {
        self.t += 1;
        let [b1, b2] = self.betas;
        let c1 = 1.0 / (1.0 - b1.powi(self.t as i32));
        let c2 = 1.0 / (1.0 - b2.powi(self.t as i32));
        for (i, (var, g)) in vars.iter().zip(grads).enumerate() {
            self.m[i] = ((&self.m[i] * b1)? + (g * (1.0 - b1))?)?;
            self.v[i] = ((&self.v[i] * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let update = ((&self.m[i] * c1)? / ((&self.v[i] * c2)?.sqrt()? + self.eps)?)?;
            let decayed = (var.as_tensor() * (1.0 - lr * self.weight_decay))?;
            var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(())
    }

    /// The moments by name (`m.{name}`, `v.{name}`), for a checkpoint.
    pub fn state(&self, names: &[String]) -> HashMap<String, Tensor> {
        let mut out = HashMap::new();
        for (i, n) in names.iter().enumerate() {
            out.insert(format!("m.{n}"), self.m[i].clone());
            out.insert(format!("v.{n}"), self.v[i].clone());
        }
        out
    }

    /// Restores moments saved by [`Self::state`].
    pub fn restore(
        &mut self,
        names: &[String],
        state: &HashMap<String, Tensor>,
        t: usize,
    ) -> anyhow::Result<()> {
        for (i, n) in names.iter().enumerate() {
            let get = |k: String| {
                state
                    .get(&k)
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("checkpoint lacks {k}"))
            };
            self.m[i] = get(format!("m.{n}"))?;
            self.v[i] = get(format!("v.{n}"))?;
        }
        self.t = t;
        Ok(())
    }
}

/// The learning rate of optimizer step `step` (1-based) out of `total`.
pub fn learning_rate(h: &Hyperparameters, step: usize, total: usize) -> f64 {
    let lr = h.learning_rate;
    if step <= h.warmup_steps {
        return lr * step as f64 / h.warmup_steps as f64;
    }
    let span = total.saturating_sub(h.warmup_steps).max(1) as f64;
    let progress = ((step - h.warmup_steps - 1) as f64 / span).min(1.0);
    match h.schedule {
        Schedule::Constant => lr,
        Schedule::Linear => lr * (1.0 - progress),
        Schedule::Cosine => lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()),
    }
}

/// Scales `grads` so their global L2 norm is at most `max_norm` (0 = no clipping); returns the
/// norm before clipping.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> candle_core::Result<f64> {
    let mut sq = 0.0f64;
    for g in grads.iter() {
        sq += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
    }
    let norm = sq.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        for g in grads.iter_mut() {
            *g = (&*g * s)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_linear_decay() {
        let h = Hyperparameters {
            warmup_steps: 2,
            learning_rate: 1.0,
            ..Default::default()
        };
        let lrs: Vec<f64> = (1..=6).map(|s| learning_rate(&h, s, 6)).collect();
        assert_eq!(lrs, [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]);
        let c = Hyperparameters {
            schedule: Schedule::Cosine,
            ..h
        };
        assert!(
            (learning_rate(&c, 4, 6) - 0.5 * (1.0 + (std::f64::consts::PI * 0.25).cos())).abs()
                < 1e-12
        );
    }

    #[test]
    fn clipping_bounds_the_global_norm() {
        let dev = candle_core::Device::Cpu;
        let mut g = vec![
            Tensor::new(&[3f32], &dev).unwrap(),
            Tensor::new(&[4f32], &dev).unwrap(),
        ];
        assert!((clip_grad_norm(&mut g, 1.0).unwrap() - 5.0).abs() < 1e-6);
        let v: f32 = g[1].to_vec1::<f32>().unwrap()[0];
        assert!((v - 0.8).abs() < 1e-4);
    }
}
