//! What a finished run leaves behind: the LoRA merged into the base and written as a new GGUF,
//! and the adapter in PEFT's format.
//!
//! Merged GGUF: every metadata entry (tokenizer, chat template, …) and every untouched tensor are
//! copied from the base unchanged (same quantisation, same bytes); each adapted projection
//! becomes `W + (α/r)·B A` stored as **F16**. Re-quantising to the base's Q4_1 would round away a
//! small fine-tune (its 4-bit steps are far coarser than a LoRA delta), F16 keeps it to ~3
//! significant digits, and mistral.rs loads mixed F16/quantised GGUFs.
//!
//! PEFT: `adapter_model.safetensors` under PEFT's key names and `adapter_config.json`. llama.cpp
//! stores llama's q/k rows permuted for interleaved rope, so the q/k `lora_B` rows are permuted
//! back to the Hugging Face order the adapter is meant for.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use super::config::TARGETS;
use super::gguf::{Arch, BaseWeights, GGUF_PROJ};
use super::lora::Lora;

/// Writes the merged model to `out` (via a temporary file renamed into place).
pub fn merged_gguf(
    base_path: &Path,
    base: &BaseWeights,
    lora: &Lora,
    out: &Path,
) -> anyhow::Result<()> {
    let device = Device::Cpu;
    crate::gguf::rewrite(base_path, out, |name, q| {
        let Some((l, p)) = merged_name(name) else {
            return Ok(q);
        };
        let Some(delta) = lora.delta(l, p)? else {
            return Ok(q);
        };
        let w = (base.layers[l].proj[p].to_device(&device)? + delta.to_device(&device)?)?;
        Ok(QTensor::quantize(&w, GgmlDType::F16)?)
    })
}

/// `(layer, projection index)` of a projection weight's GGUF name.
fn merged_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let proj = rest.strip_suffix(".weight")?;
    Some((
        layer.parse().ok()?,
        GGUF_PROJ.iter().position(|p| *p == proj)?,
    ))
}

/// Undoes llama.cpp's q/k row permutation on `(n_head·head_dim, r)` rows.
fn unpermute_rows(b: &Tensor, n_head: usize) -> candle_core::Result<Tensor> {
    let (out, r) = b.dims2()?;
    let hd = out / n_head;
    b.reshape((n_head, hd / 2, 2, r))?
        .transpose(1, 2)?
        .reshape((out, r))
}

/// Writes `adapter_model.safetensors` and `adapter_config.json` into `dir`.
pub fn peft_adapter(
    base: &BaseWeights,
    lora: &Lora,
    base_name: &str,
    dir: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let c = &base.config;
    let mut tensors: HashMap<String, Tensor> = HashMap::new();
    for (l, layer) in lora.adapters.iter().enumerate() {
        for (p, ad) in layer.iter().enumerate() {
            let Some(ad) = ad else { continue };
            let block = if p < 4 { "self_attn" } else { "mlp" };
            let key = format!("base_model.model.model.layers.{l}.{block}.{}", TARGETS[p]);
            let mut b = ad.b.as_tensor().clone();
            if c.arch == Arch::Llama && p < 2 {
                b = unpermute_rows(&b, if p == 0 { c.n_head } else { c.n_kv_head })?;
            }
            tensors.insert(format!("{key}.lora_A.weight"), ad.a.as_tensor().clone());
            tensors.insert(format!("{key}.lora_B.weight"), b);
        }
    }
    candle_core::safetensors::save(&tensors, dir.join("adapter_model.safetensors"))?;
    let config = serde_json::json!({
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_name,
        "r": lora.config.r,
        "lora_alpha": lora.config.alpha,
        "lora_dropout": lora.config.dropout,
        "target_modules": lora.config.target_modules,
        "bias": "none",
        "fan_in_fan_out": false,
        "inference_mode": true,
    });
    std::fs::write(
        dir.join("adapter_config.json"),
        serde_json::to_vec_pretty(&config)?,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpermute_inverts_llama_cpp_permute() {
        // llama.cpp: w.reshape(n_head, 2, hd/2, …).swapaxes(1, 2): GGUF row h·hd + 2i + j holds
        // HF row h·hd + j·hd/2 + i.
        let (n_head, hd) = (2, 4);
        let hf: Vec<f32> = (0..n_head * hd).map(|x| x as f32).collect();
        let gguf: Vec<f32> = (0..n_head * hd)
            .map(|g| {
                let (h, i, j) = (g / hd, (g % hd) / 2, g % 2);
                hf[h * hd + j * hd / 2 + i]
            })
            .collect();
        let t = Tensor::from_vec(gguf, (n_head * hd, 1), &Device::Cpu).unwrap();
        let back = unpermute_rows(&t, n_head)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(back, hf);
    }
}
