//! A loaded sentence embedder: tokenises with the model's own `tokenizer.json` (truncated to the
//! folder's `max_seq_length`), encodes length-sorted batches with [`Bert`], mean-pools the last
//! hidden states over real tokens and L2-normalises, as sentence-transformers does. It is `Send +
//! Sync` and takes `&self`, so one instance can be shared (e.g. behind an `Arc`) and called from
//! `tokio::task::spawn_blocking`.

use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;
use tokenizers::{Encoding, Tokenizer, TruncationParams};

use super::bert::Bert;
use super::config::ModelConfig;
use super::EmbedError;
use crate::fetch::ModelCache;
use crate::registry::EmbedderSpec;

/// Texts encoded in one forward pass; batches are formed after sorting by length, so padding
/// stays small. 32 keeps the attention scores of a batch of 256-token texts near 100 MB.
const BATCH_SIZE: usize = 32;

/// A sentence-transformers BERT model ready to embed text.
pub struct Embedder {
    bert: Bert,
    tokenizer: Tokenizer,
    config: ModelConfig,
    device: Device,
}

impl Embedder {
    /// Loads the model folder (`model.safetensors`, `tokenizer.json` and the sentence-transformers
    /// config files) onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self, EmbedError> {
        let config = ModelConfig::read(dir)?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| EmbedError::Tokenizer(format!("{}: {e}", dir.display())))?;
        // tokenizer.json ships with fixed 128-token padding and truncation; sentence-transformers
        // replaces both: truncation at max_seq_length, and padding is done per batch below.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: config.max_seq_length,
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let weights = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights, device)?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let bert = Bert::load(&config.bert, vb)?;
        Ok(Self {
            bert,
            tokenizer,
            config,
            device: device.clone(),
        })
    }

    /// Loads a fetched embedder from the model cache after checking its weights' sha256; a
    /// missing or corrupt model is an error that names `ptr-server fetch-model <id>`.
    pub fn from_cache(
        cache: &ModelCache,
        spec: &EmbedderSpec,
        device: &Device,
    ) -> Result<Self, EmbedError> {
        cache.verify(spec)?;
        Self::load(&cache.folder_of(spec), device)
    }

    /// Length of every embedding.
    pub fn dimension(&self) -> usize {
        self.config.bert.hidden_size
    }

    /// Tokens a text may have (special tokens included); the rest is cut off.
    pub fn max_tokens(&self) -> usize {
        self.config.max_seq_length
    }

    /// Embeds each text; the vectors come back in input order, unit length when the model's
    /// pipeline normalises (all-MiniLM-L6-v2 does).
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Tokenizer(e.to_string()))?;
        let mut order: Vec<usize> = (0..encodings.len()).collect();
        order.sort_by_key(|&i| encodings[i].get_ids().len());
        let mut out = vec![Vec::new(); encodings.len()];
        for chunk in order.chunks(BATCH_SIZE) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let seq = batch.iter().map(|e| e.get_ids().len()).max().unwrap_or(0);
        let mut ids = vec![0u32; batch.len() * seq];
        let mut mask = vec![0f32; batch.len() * seq];
        for (row, encoding) in batch.iter().enumerate() {
            let start = row * seq;
            let tokens = encoding.get_ids();
            ids[start..start + tokens.len()].copy_from_slice(tokens);
            mask[start..start + tokens.len()].fill(1.0);
        }
        let shape = (batch.len(), seq);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let hidden = self.bert.forward(&ids, &mask)?;
        // Mean over real tokens: padding rows are zeroed by the mask and left out of the count.
        let summed = hidden.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?;
        let counts = mask.sum_keepdim(1)?.clamp(1e-9, f64::INFINITY)?;
        let mut pooled = summed.broadcast_div(&counts)?;
        if self.config.normalize {
            let norms = pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
            pooled = pooled.broadcast_div(&norms.clamp(1e-12, f64::INFINITY)?)?;
        }
        Ok(pooled.to_vec2()?)
    }
}
