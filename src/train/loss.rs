//! PTR's loss: per-token weighted cross-entropy, Σ w·nll / Σ w, computed only at positions whose
//! label has a non-zero weight (the output projection is the costliest matmul; thoughts and
//! prompts, which weigh 0, never reach it).

use candle_core::{Device, Tensor, D};
use candle_nn::ops::log_softmax;
use rand::rngs::StdRng;

use super::data::Example;
use super::frozen::frozen_linear;
use super::model::Decoder;

/// A padded micro-batch and the positions that carry loss.
pub struct Batch {
    /// `(b, t)` token ids.
    pub ids: Tensor,
    /// Indices into the flattened `(b·t)` hidden states whose next token is a weighted label.
    pub positions: Tensor,
    /// The labels at those positions.
    pub targets: Tensor,
    /// Their weights.
    pub weights: Tensor,
    /// Σ of the weights.
    pub weight_sum: f64,
    /// Real (unpadded) tokens in the batch.
    pub tokens: usize,
}

/// One sequence as the loss sees it: inputs, and for each input position the label it predicts
/// with its weight.
pub struct Labelled<'a> {
    pub inputs: &'a [u32],
    pub labels: &'a [u32],
    pub weights: &'a [f32],
}

impl<'a> From<&'a Example> for Labelled<'a> {
    /// Position p predicts token p + 1 with that token's weight.
    fn from(e: &'a Example) -> Self {
        let n = e.ids.len().saturating_sub(1);
        Self {
            inputs: &e.ids[..n],
            labels: &e.ids[1..],
            weights: &e.weights[1..],
        }
    }
}

impl Batch {
    /// Pads `examples` to the longest with `pad`; padding carries no weight.
    pub fn new(examples: &[&Example], pad: u32, device: &Device) -> candle_core::Result<Self> {
        let parts: Vec<Labelled> = examples.iter().map(|e| Labelled::from(*e)).collect();
        Self::from_labelled(&parts, pad, device)
    }

    /// A batch of explicitly labelled sequences.
    pub fn from_labelled(
        seqs: &[Labelled],
        pad: u32,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let t = seqs
            .iter()
            .map(|s| s.inputs.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let (mut ids, mut pos, mut tgt, mut w) = (vec![], vec![], vec![], vec![]);
        for (b, s) in seqs.iter().enumerate() {
            ids.extend(
                s.inputs
                    .iter()
                    .copied()
                    .chain(std::iter::repeat(pad))
                    .take(t),
            );
            for (p, (&label, &weight)) in s.labels.iter().zip(s.weights).enumerate() {
                if weight > 0.0 {
                    pos.push((b * t + p) as u32);
                    tgt.push(label);
                    w.push(weight);
                }
            }
        }
        let n = pos.len();
        Ok(Self {
            ids: Tensor::from_vec(ids, (seqs.len(), t), device)?,
            positions: Tensor::from_vec(pos, n, device)?,
            targets: Tensor::from_vec(tgt, n, device)?,
            weight_sum: w.iter().map(|&x| x as f64).sum(),
            weights: Tensor::from_vec(w, n, device)?,
            tokens: seqs.iter().map(|s| s.inputs.len() + 1).sum(),
        })
    }
}

/// One micro-batch's loss and statistics.
pub struct LossOut {
    /// Σ w·nll / `norm`, differentiable.
    pub loss: Tensor,
    /// Σ w·nll.
    pub weighted_nll: f64,
    /// Labelled positions whose arg-max prediction is the label.
    pub correct: usize,
    /// Labelled positions.
    pub counted: usize,
}

/// The weighted loss of a batch, divided by `norm` (the weight sum of the whole optimizer step,
/// so that accumulated micro-batch gradients equal the gradient of the step's loss).
pub fn weighted_loss(
    dec: &Decoder,
    batch: &Batch,
    rng: Option<&mut StdRng>,
    norm: f64,
) -> candle_core::Result<LossOut> {
    let h = dec.hidden(&batch.ids, rng)?;
    let (b, t, d) = h.dims3()?;
    let h = h.reshape((b * t, d))?.index_select(&batch.positions, 0)?;
    let logits = frozen_linear(&h, dec.base.head())?;
    let logp = log_softmax(&logits, D::Minus1)?;
    let nll = logp
        .gather(&batch.targets.unsqueeze(1)?, 1)?
        .squeeze(1)?
        .neg()?;
    let sum = (nll * &batch.weights)?.sum_all()?;
    let correct = logits
        .argmax(D::Minus1)?
        .eq(&batch.targets)?
        .to_dtype(candle_core::DType::F32)?
        .sum_all()?
        .to_scalar::<f32>()? as usize;
    Ok(LossOut {
        weighted_nll: sum.to_scalar::<f32>()? as f64,
        loss: (sum / norm)?,
        correct,
        counted: batch.targets.elem_count(),
    })
}
