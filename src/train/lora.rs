//! The trainable part: a LoRA adapter (A: `(r, in)`, seeded Kaiming-uniform; B: `(out, r)`,
//! zeros) on each targeted projection of each layer, as candle `Var`s.
//!
//! The adapted projection is `W x + (α/r) · B A dropout(x)`, as in PEFT.

use candle_core::{DType, Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{LoraConfig, TARGETS};
use super::gguf::ModelConfig;

/// One projection's adapter.
#[derive(Debug, Clone)]
pub struct Adapter {
    pub a: Var,
    pub b: Var,
}

/// All adapters of a model.
#[derive(Debug, Clone)]
pub struct Lora {
    pub config: LoraConfig,
    /// `α / r`.
    pub scale: f64,
    /// Per layer, per projection in [`TARGETS`] order; `None` where not targeted.
    pub adapters: Vec<[Option<Adapter>; 7]>,
}

impl Lora {
    /// Fresh adapters for a model, A drawn from `seed`.
    pub fn new(
        cfg: &LoraConfig,
        model: &ModelConfig,
        seed: u64,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        let shapes = model.proj_shapes();
        let mut adapters = Vec::with_capacity(model.n_layer);
        for _ in 0..model.n_layer {
            let mut layer: [Option<Adapter>; 7] = Default::default();
            for (p, name) in TARGETS.iter().enumerate() {
                if !cfg.target_modules.iter().any(|t| t == name) {
                    continue;
                }
                let (out, inp) = shapes[p];
                // PEFT's kaiming_uniform_(a = √5) bound: 1/√fan_in.
                let bound = 1.0 / (inp as f32).sqrt();
                let a: Vec<f32> = (0..cfg.r * inp)
                    .map(|_| rng.random_range(-bound..bound))
                    .collect();
                layer[p] = Some(Adapter {
                    a: Var::from_tensor(&Tensor::from_vec(a, (cfg.r, inp), device)?)?,
                    b: Var::zeros((out, cfg.r), DType::F32, device)?,
                });
            }
            adapters.push(layer);
        }
        Ok(Self {
            config: cfg.clone(),
            scale: cfg.alpha / cfg.r as f64,
            adapters,
        })
    }

    /// Every trainable tensor with its stable name (`layers.{i}.{proj}.lora_{A|B}`), in order.
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::new();
        for (i, layer) in self.adapters.iter().enumerate() {
            for (p, ad) in layer.iter().enumerate() {
                if let Some(ad) = ad {
                    out.push((format!("layers.{i}.{}.lora_A", TARGETS[p]), &ad.a));
                    out.push((format!("layers.{i}.{}.lora_B", TARGETS[p]), &ad.b));
                }
            }
        }
        out
    }

    /// The trainable tensors in [`Self::named_vars`] order.
    pub fn vars(&self) -> Vec<&Var> {
        self.named_vars().into_iter().map(|(_, v)| v).collect()
    }

    /// `(α/r) · B A`, the weight delta of projection `p` of layer `layer`, if adapted.
    pub fn delta(&self, layer: usize, p: usize) -> candle_core::Result<Option<Tensor>> {
        match &self.adapters[layer][p] {
            None => Ok(None),
            Some(ad) => Ok(Some(
                (ad.b.as_tensor().matmul(ad.a.as_tensor())? * self.scale)?,
            )),
        }
    }
}
