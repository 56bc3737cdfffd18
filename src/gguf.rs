//! Rewriting GGUF files: copy one with some tensors replaced. Two users: the model cache
//! requantizes the tensor types candle has no SIMD kernel for ([`requantize`]), and the trainer
//! writes a merged model (`train::export`).
//!
//! The copy is deterministic: metadata sorted by key, tensors in the source's order, so a pinned
//! sha256 can check the result. candle writes GGUF version 2 with 32-byte alignment.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::Context;
use candle_core::quantized::gguf_file::{self, Content};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Device;

/// The metadata and tensor index of a GGUF file.
pub fn read_content(path: &Path) -> anyhow::Result<Content> {
    let mut f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Content::read(&mut f).with_context(|| format!("{} is not a GGUF file", path.display()))
}

/// Copies `src` to `out` (through a temporary file renamed into place), passing every tensor
/// through `transform(name, tensor)`; metadata is copied unchanged.
pub fn rewrite(
    src: &Path,
    out: &Path,
    mut transform: impl FnMut(&str, QTensor) -> anyhow::Result<QTensor>,
) -> anyhow::Result<()> {
    let content = read_content(src)?;
    let mut reader = File::open(src)?;
    let mut names: Vec<(&String, u64)> = content
        .tensor_infos
        .iter()
        .map(|(n, i)| (n, i.offset))
        .collect();
    names.sort_by_key(|(_, offset)| *offset);
    let mut tensors = Vec::with_capacity(names.len());
    for (name, _) in names {
        let q = content
            .tensor(&mut reader, name, &Device::Cpu)
            .with_context(|| format!("GGUF tensor {name}"))?;
        tensors.push((name.as_str(), transform(name, q)?));
    }
    let mut keys: Vec<&String> = content.metadata.keys().collect();
    keys.sort();
    let metadata: Vec<(&str, &gguf_file::Value)> = keys
        .iter()
        .map(|k| (k.as_str(), &content.metadata[*k]))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (*n, q)).collect();
    let tmp = out.with_extension("gguf.tmp");
    let mut w = BufWriter::new(
        File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?,
    );
    gguf_file::write(&mut w, &metadata, &refs)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}

/// Whether candle 0.10.2 has a SIMD (AVX2/NEON) matmul kernel for a tensor type. Q4_1, Q5_0
/// and Q5_1 run only the scalar `vec_dot_unopt`.
pub fn has_simd_kernel(dtype: GgmlDType) -> bool {
    !matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

/// How many tensors a requantization changed and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requantized {
    pub changed: usize,
    pub kept: usize,
}

/// Copies `src` to `out` with every tensor that has no SIMD kernel de-quantized and quantized
/// again to `to`; every other tensor keeps its bytes.
pub fn requantize(src: &Path, out: &Path, to: GgmlDType) -> anyhow::Result<Requantized> {
    let mut counts = Requantized {
        changed: 0,
        kept: 0,
    };
    rewrite(src, out, |name, q| {
        if has_simd_kernel(q.dtype()) || q.dtype() == to {
            counts.kept += 1;
            return Ok(q);
        }
        counts.changed += 1;
        let w = q.dequantize(&Device::Cpu)?;
        QTensor::quantize(&w, to).with_context(|| format!("requantizing {name} to {to:?}"))
    })?;
    Ok(counts)
}

/// The largest absolute difference between two tensors of one shape (for tests).
#[cfg(test)]
pub(crate) fn max_abs_diff(a: &candle_core::Tensor, b: &candle_core::Tensor) -> f32 {
    (a - b)
        .and_then(|d| d.abs()?.max_all()?.to_scalar::<f32>())
        .expect("tensors of one shape and dtype")
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Tensor;

    fn write_gguf(path: &Path, tensors: &[(&str, QTensor)]) {
        let values: Vec<(String, gguf_file::Value)> = (0..8)
            .map(|i| (format!("meta.key{i}"), gguf_file::Value::U32(i)))
            .collect();
        let metadata: Vec<(&str, &gguf_file::Value)> =
            values.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, q)| (*n, q)).collect();
        let mut f = File::create(path).unwrap();
        gguf_file::write(&mut f, &metadata, &refs).unwrap();
    }

    fn weights(seed: f32) -> Tensor {
        let v: Vec<f32> = (0..64 * 32)
            .map(|i| ((i as f32 + seed) * 0.37).sin() * 0.1)
            .collect();
        Tensor::from_vec(v, (64, 32), &Device::Cpu).unwrap()
    }

    #[test]
    fn scalar_only_tensors_become_q8_0_and_the_rest_keep_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (src, out) = (dir.path().join("a.gguf"), dir.path().join("b.gguf"));
        let q41 = QTensor::quantize(&weights(1.0), GgmlDType::Q4_1).unwrap();
        let f32w = QTensor::quantize(&weights(2.0), GgmlDType::F32).unwrap();
        write_gguf(
            &src,
            &[("blk.0.attn_q.weight", q41), ("output_norm.weight", f32w)],
        );
        let counts = requantize(&src, &out, GgmlDType::Q8_0).unwrap();
        assert_eq!(
            counts,
            Requantized {
                changed: 1,
                kept: 1
            }
        );

        let (before, after) = (read_content(&src).unwrap(), read_content(&out).unwrap());
        assert_eq!(after.metadata.len(), before.metadata.len());
        let mut a = File::open(&src).unwrap();
        let mut b = File::open(&out).unwrap();
        let q = after
            .tensor(&mut b, "blk.0.attn_q.weight", &Device::Cpu)
            .unwrap();
        assert_eq!(q.dtype(), GgmlDType::Q8_0);
        // Q8_0 keeps Q4_1's values to within its own step (1/127 of a block's largest value).
        let orig = before
            .tensor(&mut a, "blk.0.attn_q.weight", &Device::Cpu)
            .unwrap();
        let diff = max_abs_diff(
            &orig.dequantize(&Device::Cpu).unwrap(),
            &q.dequantize(&Device::Cpu).unwrap(),
        );
        assert!(diff < 0.1 / 127.0, "{diff}");
        let kept = after
            .tensor(&mut b, "output_norm.weight", &Device::Cpu)
            .unwrap();
        let orig = before
            .tensor(&mut a, "output_norm.weight", &Device::Cpu)
            .unwrap();
        assert_eq!(kept.data().unwrap(), orig.data().unwrap());
    }

    #[test]
    fn the_copy_is_byte_for_byte_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("a.gguf");
        // Several tensors and metadata keys: a copy that followed HashMap order would differ.
        let tensors: Vec<(&str, QTensor)> = ["t0", "t1", "t2", "t3"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                (
                    *n,
                    QTensor::quantize(&weights(i as f32), GgmlDType::Q5_0).unwrap(),
                )
            })
            .collect();
        write_gguf(&src, &tensors);
        let (x, y) = (dir.path().join("x.gguf"), dir.path().join("y.gguf"));
        requantize(&src, &x, GgmlDType::Q8_0).unwrap();
        requantize(&src, &y, GgmlDType::Q8_0).unwrap();
        assert_eq!(std::fs::read(&x).unwrap(), std::fs::read(&y).unwrap());
        assert!(!dir.path().join("x.gguf.tmp").exists());
    }
}
