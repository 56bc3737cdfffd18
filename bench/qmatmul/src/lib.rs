//! Helpers for the Q8_0 register-blocked matmul test and bench (ptr-server issue 17).
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

/// The SmolLM2-135M matmul shapes (k → n): attention q/o, k/v, MLP up/gate, MLP down, vocabulary.
pub const SHAPES: &[(&str, usize, usize)] = &[
    ("q/o 576→576", 576, 576),
    ("k/v 576→192", 576, 192),
    ("up/gate 576→1536", 576, 1536),
    ("down 1536→576", 1536, 576),
    ("lm_head 576→49152", 576, 49152),
];

/// A small deterministic generator (64-bit LCG), so runs are reproducible without extra crates.
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 32) as u32
    }
    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 23) as f32 - 1.0
    }
}

/// `len` values whose magnitude varies from one 32-block to the next (scales differ per block),
/// with some all-zero blocks (scale 0) and some outliers, like real weights/activations.
pub fn values(rng: &mut Lcg, len: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let kind = rng.next_u32() % 64;
        let scale = match kind {
            0 => 0.0,
            1 => 40.0,
            _ => 0.01 + (rng.next_u32() % 1000) as f32 / 300.0,
        };
        for _ in 0..32.min(len - v.len()) {
            v.push(rng.unit() * scale);
        }
    }
    v
}

pub fn q8_0_weights(rng: &mut Lcg, k: usize, n: usize) -> QMatMul {
    let w = Tensor::from_vec(values(rng, n * k), (n, k), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
    assert_eq!(q.dtype(), GgmlDType::Q8_0);
    let mm = QMatMul::from_qtensor(q).unwrap();
    assert!(matches!(mm, QMatMul::QTensor(_)), "weights were dequantized");
    mm
}

pub fn activations(rng: &mut Lcg, m: usize, k: usize) -> Tensor {
    Tensor::from_vec(values(rng, m * k), (m, k), &Device::Cpu).unwrap()
}

/// QMatMul forward on an [m, k] f32 input: the path mistral.rs takes.
pub fn forward(mm: &QMatMul, x: &Tensor) -> Vec<f32> {
    mm.forward(x).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
}

/// `None`: the 0001 tile loop of `vec_dot` (old); `Some((r, c))`: the register-blocked kernel.
pub fn set_block(block: Option<(usize, usize)>) {
    candle_core::quantized::k_quants::set_q8_0_blocking(block);
}
