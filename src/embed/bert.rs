//! The BERT encoder of a sentence-transformers model, written on candle-nn from the original
//! architecture (Devlin et al. 2019, as Hugging Face's `BertModel` implements it): the sum of word,
//! position and token-type embeddings under a LayerNorm, then post-norm layers of masked
//! multi-head self-attention and an erf-GELU feed-forward block. It returns the last hidden
//! states; pooling lives in [`super::embedder`]. Only the forward pass exists: nothing trains here.

use candle_core::{Module, Result, Tensor};
use candle_nn::ops::softmax_last_dim;
use candle_nn::{embedding, layer_norm, linear, Embedding, LayerNorm, Linear, VarBuilder};

use super::config::BertConfig;

/// Added to attention scores of padding keys: softmax gives them exactly zero weight, as
/// Hugging Face's `(1 - mask) * finfo.min` does.
const MASKED: f32 = f32::MIN;

struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

impl Embeddings {
    fn load(c: &BertConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            word: embedding(c.vocab_size, c.hidden_size, vb.pp("word_embeddings"))?,
            position: embedding(
                c.max_position_embeddings,
                c.hidden_size,
                vb.pp("position_embeddings"),
            )?,
            token_type: embedding(
                c.type_vocab_size,
                c.hidden_size,
                vb.pp("token_type_embeddings"),
            )?,
            norm: layer_norm(c.hidden_size, c.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    /// `ids` is (batch, seq); every text is a single segment, so token type 0 throughout.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let (_, seq) = ids.dims2()?;
        let words = self.word.forward(ids)?;
        let positions = self.position.embeddings().narrow(0, 0, seq)?;
        let segment = self.token_type.embeddings().narrow(0, 0, 1)?;
        let sum = words.broadcast_add(&positions)?.broadcast_add(&segment)?;
        self.norm.forward(&sum)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
}

impl Layer {
    fn load(c: &BertConfig, vb: VarBuilder) -> Result<Self> {
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let attention = vb.pp("attention");
        let own = attention.pp("self");
        Ok(Self {
            query: linear(h, h, own.pp("query"))?,
            key: linear(h, h, own.pp("key"))?,
            value: linear(h, h, own.pp("value"))?,
            attention_out: linear(h, h, attention.pp("output").pp("dense"))?,
            attention_norm: layer_norm(h, eps, attention.pp("output").pp("LayerNorm"))?,
            intermediate: linear(h, c.intermediate_size, vb.pp("intermediate").pp("dense"))?,
            output: linear(c.intermediate_size, h, vb.pp("output").pp("dense"))?,
            output_norm: layer_norm(h, eps, vb.pp("output").pp("LayerNorm"))?,
            heads: c.num_attention_heads,
        })
    }

    /// `x` is (batch, seq, hidden); `mask_bias` is (batch, 1, 1, seq), 0 or [`MASKED`].
    fn forward(&self, x: &Tensor, mask_bias: &Tensor) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let head_dim = hidden / self.heads;
        let split = |t: Tensor| {
            t.reshape((batch, seq, self.heads, head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?)? / (head_dim as f64).sqrt())?;
        let probs = softmax_last_dim(&scores.broadcast_add(mask_bias)?)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((batch, seq, hidden))?;
        let x = self
            .attention_norm
            .forward(&(self.attention_out.forward(&context)? + x)?)?;
        let ffn = self.intermediate.forward(&x)?.gelu_erf()?;
        self.output_norm.forward(&(self.output.forward(&ffn)? + x)?)
    }
}

/// A BERT encoder: embeddings and the stack of layers (the pooler head is not used by
/// sentence-transformers and is not loaded).
pub struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
}

impl Bert {
    /// Builds the encoder from weights named as in Hugging Face's `BertModel` (`embeddings.*`,
    /// `encoder.layer.N.*`).
    pub fn load(config: &BertConfig, vb: VarBuilder) -> Result<Self> {
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::load(config, vb.pp(format!("encoder.layer.{i}"))))
            .collect::<Result<_>>()?;
        Ok(Self {
            embeddings: Embeddings::load(config, vb.pp("embeddings"))?,
            layers,
        })
    }

    /// Last hidden states (batch, seq, hidden) for token ids (batch, seq, u32) and an attention
    /// mask of the same shape (f32, 1 for tokens and 0 for padding).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, seq) = mask.dims2()?;
        // 1 → 0 and 0 → MASKED (= -f32::MAX).
        let bias = ((mask - 1.0)? * f64::from(-MASKED))?.reshape((batch, 1, 1, seq))?;
        let mut x = self.embeddings.forward(ids)?;
        for layer in &self.layers {
            x = layer.forward(&x, &bias)?;
        }
        Ok(x)
    }
}
