//! The trainer's own decoder forward (llama and qwen2), built only from differentiable candle ops:
//! RMSNorm by hand, rope by hand (interleaved for llama GGUFs, whose q/k rows llama.cpp permuted;
//! half-split for qwen2), causal grouped-query attention with `softmax(x, D::Minus1)`, SwiGLU.
//! candle-transformers' fused kernels have no backward pass (DESIGN.md §4).

use candle_core::{DType, Device, Tensor, D};
use candle_nn::ops::{rms_norm_slow, softmax};
use candle_nn::rotary_emb::{rope_i_slow, rope_slow};
use rand::rngs::StdRng;
use rand::Rng;

use super::frozen::frozen_linear;
use super::gguf::{Arch, BaseWeights};
use super::lora::Lora;

/// Frozen base weights plus an optional adapter.
pub struct Decoder<'a> {
    pub base: &'a BaseWeights,
    pub lora: Option<&'a Lora>,
}

/// A large negative added to masked attention scores (finite, so no ∞·0 in the backward pass).
const MASKED: f32 = -1e9;

fn rope_tables(
    base: f32,
    head_dim: usize,
    t: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let inv: Vec<f32> = (0..head_dim / 2)
        .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
        .collect();
    let angles: Vec<f32> = (0..t)
        .flat_map(|p| inv.iter().map(move |f| p as f32 * f))
        .collect();
    let angles = Tensor::from_vec(angles, (t, head_dim / 2), device)?;
    Ok((angles.cos()?, angles.sin()?))
}

fn causal_mask(t: usize, device: &Device) -> candle_core::Result<Tensor> {
    let m: Vec<f32> = (0..t)
        .flat_map(|i| (0..t).map(move |j| if j > i { MASKED } else { 0.0 }))
        .collect();
    Tensor::from_vec(m, (t, t), device)
}

impl Decoder<'_> {
    /// `x (n, in)` through projection `p` of `layer`, plus its adapter; dropout draws from `rng`.
    fn project(
        &self,
        x: &Tensor,
        layer: usize,
        p: usize,
        rng: &mut Option<&mut StdRng>,
    ) -> candle_core::Result<Tensor> {
        let w = &self.base.layers[layer].proj[p];
        let y = frozen_linear(x, w)?;
        let Some(ad) = self.lora.and_then(|l| l.adapters[layer][p].as_ref()) else {
            return Ok(y);
        };
        let lora = self.lora.expect("adapter implies lora");
        let mut xd = x.clone();
        let drop = lora.config.dropout;
        if drop > 0.0 {
            if let Some(rng) = rng.as_deref_mut() {
                let keep: Vec<f32> = (0..x.elem_count())
                    .map(|_| {
                        if rng.random::<f32>() < drop {
                            0.0
                        } else {
                            1.0 / (1.0 - drop)
                        }
                    })
                    .collect();
                xd = (xd * Tensor::from_vec(keep, x.shape(), x.device())?)?;
            }
        }
        let low = xd.matmul(&ad.a.as_tensor().t()?)?;
        y + (low.matmul(&ad.b.as_tensor().t()?)? * lora.scale)?
    }

    /// Final-normed hidden states `(b, t, d)` of token ids `(b, t)`. `rng` is given in training
    /// (LoRA dropout on) and `None` in evaluation.
    pub fn hidden(
        &self,
        ids: &Tensor,
        mut rng: Option<&mut StdRng>,
    ) -> candle_core::Result<Tensor> {
        let c = &self.base.config;
        let (b, t) = ids.dims2()?;
        let dev = ids.device();
        let (hd, h, kvh) = (c.head_dim(), c.n_head, c.n_kv_head);
        let (cos, sin) = rope_tables(c.rope_base, hd, t, dev)?;
        let mask = causal_mask(t, dev)?;
        let eps = c.rms_eps as f32;
        let mut x = self.base.embed.index_select(&ids.flatten_all()?, 0)?; // (b·t, d)
        for (l, lw) in self.base.layers.iter().enumerate() {
            let n = rms_norm_slow(&x, &lw.attn_norm, eps)?;
            let mut q = self.project(&n, l, 0, &mut rng)?;
            let mut k = self.project(&n, l, 1, &mut rng)?;
            let mut v = self.project(&n, l, 2, &mut rng)?;
            if let Some([qb, kb, vb]) = &lw.qkv_bias {
                q = q.broadcast_add(qb)?;
                k = k.broadcast_add(kb)?;
                v = v.broadcast_add(vb)?;
            }
            let heads =
                |x: Tensor, n: usize| x.reshape((b, t, n, hd))?.transpose(1, 2)?.contiguous();
            let (q, k, v) = (heads(q, h)?, heads(k, kvh)?, heads(v, kvh)?);
            let (q, k) = match c.arch {
                Arch::Llama => (rope_i_slow(&q, &cos, &sin)?, rope_i_slow(&k, &cos, &sin)?),
                Arch::Qwen2 => (rope_slow(&q, &cos, &sin)?, rope_slow(&k, &cos, &sin)?),
            };
            let repeat = |x: Tensor| -> candle_core::Result<Tensor> {
                if h == kvh {
                    return Ok(x);
                }
                x.unsqueeze(2)?
                    .expand((b, kvh, h / kvh, t, hd))?
                    .reshape((b, h, t, hd))
            };
            let (k, v) = (repeat(k)?, repeat(v)?);
            let scores =
                (q.matmul(&k.t()?.contiguous()?)? / (hd as f64).sqrt())?.broadcast_add(&mask)?;
            let att = softmax(&scores, D::Minus1)?.matmul(&v)?; // (b, h, t, hd)
            let att = att.transpose(1, 2)?.reshape((b * t, h * hd))?;
            x = (x + self.project(&att, l, 3, &mut rng)?)?;
            let n = rms_norm_slow(&x, &lw.ffn_norm, eps)?;
            let gate = self.project(&n, l, 4, &mut rng)?.silu()?;
            let up = self.project(&n, l, 5, &mut rng)?;
            x = (x + self.project(&(gate * up)?, l, 6, &mut rng)?)?;
        }
        rms_norm_slow(&x, &self.base.norm, eps)?.reshape((b, t, c.d_model))
    }

    /// Next-token logits `(b, t, vocab)` (evaluation only: training scores the weighted
    /// positions alone, see [`super::loss`]).
    pub fn logits(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.hidden(ids, None)?;
        let (b, t, d) = h.dims3()?;
        frozen_linear(&h.reshape((b * t, d))?, self.base.head())?
            .reshape((b, t, ()))?
            .to_dtype(DType::F32)
    }
}
