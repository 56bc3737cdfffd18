//! Reading a base model from a GGUF file: the architecture's hyper-parameters from the metadata
//! and every weight de-quantised to f32 as a frozen tensor (no gradient is ever taken of them).

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context};
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::{Device, Tensor};

/// The decoder families the trainer's forward implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// Llama (SmolLM2): q/k weights permuted by llama.cpp for interleaved rope.
    Llama,
    /// Qwen2: biases on q/k/v, half-split ("neox") rope.
    Qwen2,
}

/// The shape of a decoder.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub arch: Arch,
    pub n_layer: usize,
    pub d_model: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub d_ff: usize,
    pub vocab: usize,
    pub rope_base: f32,
    pub rms_eps: f64,
}

impl ModelConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// `(out, in)` of each projection, in [`crate::train::config::TARGETS`] order.
    pub fn proj_shapes(&self) -> [(usize, usize); 7] {
        let (d, kv, f) = (self.d_model, self.n_kv_head * self.head_dim(), self.d_ff);
        [(d, d), (kv, d), (kv, d), (d, d), (f, d), (f, d), (d, f)]
    }

    /// Reads the hyper-parameters from GGUF metadata.
    pub fn from_metadata(content: &Content) -> anyhow::Result<Self> {
        let md = &content.metadata;
        let arch_name = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .context("GGUF has no general.architecture")?
            .clone();
        let arch = match arch_name.as_str() {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            other => bail!("the trainer supports llama and qwen2 GGUF models, not `{other}`"),
        };
        let get = |key: &str| -> anyhow::Result<&Value> {
            md.get(&format!("{arch_name}.{key}"))
                .with_context(|| format!("GGUF metadata lacks {arch_name}.{key}"))
        };
        let int = |key: &str| -> anyhow::Result<usize> { Ok(get(key)?.to_u32()? as usize) };
        let n_head = int("attention.head_count")?;
        let vocab = match md.get("tokenizer.ggml.tokens") {
            Some(v) => v.to_vec()?.len(),
            None => int("vocab_size")?,
        };
        Ok(Self {
            arch,
            n_layer: int("block_count")?,
            d_model: int("embedding_length")?,
            n_head,
            n_kv_head: get("attention.head_count_kv")
                .map_or(Ok(n_head), |v| v.to_u32().map(|n| n as usize))?,
            d_ff: int("feed_forward_length")?,
            vocab,
            rope_base: get("rope.freq_base").map_or(Ok(10_000.0), |v| v.to_f32())?,
            rms_eps: get("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
        })
    }
}

/// One decoder block's frozen weights, projections as `(out, in)`.
#[derive(Debug, Clone)]
pub struct LayerWeights {
    pub attn_norm: Tensor,
    /// q, k, v, o, gate, up, down, in [`crate::train::config::TARGETS`] order.
    pub proj: [Tensor; 7],
    /// q, k, v biases (qwen2 only).
    pub qkv_bias: Option<[Tensor; 3]>,
    pub ffn_norm: Tensor,
}

/// A whole decoder's frozen weights.
#[derive(Debug, Clone)]
pub struct BaseWeights {
    pub config: ModelConfig,
    /// `(vocab, d_model)`.
    pub embed: Tensor,
    pub layers: Vec<LayerWeights>,
    pub norm: Tensor,
    /// `(vocab, d_model)`; `None` when tied to the embeddings.
    pub lm_head: Option<Tensor>,
}

/// GGUF tensor names of the projections, in [`crate::train::config::TARGETS`] order.
pub const GGUF_PROJ: [&str; 7] = [
    "attn_q",
    "attn_k",
    "attn_v",
    "attn_output",
    "ffn_gate",
    "ffn_up",
    "ffn_down",
];

impl BaseWeights {
    /// Loads and de-quantises every weight of a GGUF model.
    pub fn load(path: &Path, device: &Device) -> anyhow::Result<(Self, Content)> {
        let content = crate::gguf::read_content(path)?;
        let config = ModelConfig::from_metadata(&content)?;
        let mut f = File::open(path)?;
        let mut get = |name: &str| -> anyhow::Result<Tensor> {
            let q = content
                .tensor(&mut f, name, device)
                .with_context(|| format!("GGUF tensor {name}"))?;
            Ok(q.dequantize(device)?)
        };
        let embed = get("token_embd.weight")?;
        let mut layers = Vec::with_capacity(config.n_layer);
        for i in 0..config.n_layer {
            let mut proj = Vec::with_capacity(7);
            for p in GGUF_PROJ {
                proj.push(get(&format!("blk.{i}.{p}.weight"))?);
            }
            let qkv_bias = match config.arch {
                Arch::Llama => None,
                Arch::Qwen2 => Some([
                    get(&format!("blk.{i}.attn_q.bias"))?,
                    get(&format!("blk.{i}.attn_k.bias"))?,
                    get(&format!("blk.{i}.attn_v.bias"))?,
                ]),
            };
            layers.push(LayerWeights {
                attn_norm: get(&format!("blk.{i}.attn_norm.weight"))?,
                proj: proj.try_into().expect("seven projections"),
                qkv_bias,
                ffn_norm: get(&format!("blk.{i}.ffn_norm.weight"))?,
            });
        }
        let norm = get("output_norm.weight")?;
        let lm_head = if content.tensor_infos.contains_key("output.weight") {
            Some(get("output.weight")?)
        } else {
            None
        };
        let weights = Self {
            config,
            embed,
            layers,
            norm,
            lm_head,
        };
        Ok((weights, content))
    }

    /// The output projection (the embeddings when tied).
    pub fn head(&self) -> &Tensor {
        self.lm_head.as_ref().unwrap_or(&self.embed)
    }
}
