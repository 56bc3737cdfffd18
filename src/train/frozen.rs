//! `x Wᵀ` for a frozen `W` whose backward pass yields only `∂x`.
//!
//! candle's matmul backward always computes both operands' gradients, so every frozen
//! projection (and the 49152 × 576 output matrix) would get a full `∂W` each step — a third of
//! the step's FLOPs and a weight-sized allocation per projection, all thrown away. This op
//! computes the same product forward and returns only `∂x = ∂y W` backward.

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};

struct FrozenLinear(Tensor);

impl CustomOp1 for FrozenLinear {
    fn name(&self) -> &'static str {
        "frozen-linear"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("frozen-linear needs a contiguous input")
        };
        let x = Tensor::from_slice(
            &storage.as_slice::<f32>()?[start..end],
            layout.shape(),
            &candle_core::Device::Cpu,
        )?;
        let y = x.matmul(&self.0.t()?)?;
        let shape = y.shape().clone();
        Ok((CpuStorage::F32(y.flatten_all()?.to_vec1::<f32>()?), shape))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> candle_core::Result<Option<Tensor>> {
        Ok(Some(grad.matmul(&self.0)?))
    }
}

/// `x (n, in) · wᵀ` with `w (out, in)` frozen. Off the CPU it falls back to a plain matmul.
pub fn frozen_linear(x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() {
        x.contiguous()?.apply_op1(FrozenLinear(w.clone()))
    } else {
        x.matmul(&w.t()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn same_product_and_input_gradient_as_matmul() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(
            &Tensor::arange(0f32, 6.0, &dev)
                .unwrap()
                .reshape((2, 3))
                .unwrap(),
        )
        .unwrap();
        let w = (Tensor::arange(0f32, 12.0, &dev)
            .unwrap()
            .reshape((4, 3))
            .unwrap()
            * 0.1)
            .unwrap();
        let plain = x.as_tensor().matmul(&w.t().unwrap()).unwrap();
        let frozen = frozen_linear(x.as_tensor(), &w).unwrap();
        assert_eq!(
            plain.to_vec2::<f32>().unwrap(),
            frozen.to_vec2::<f32>().unwrap()
        );
        let g_plain = plain.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let g_frozen = frozen.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let gx = |g: &candle_core::backprop::GradStore| {
            g.get(x.as_tensor()).unwrap().to_vec2::<f32>().unwrap()
        };
        assert_eq!(gx(&g_plain), gx(&g_frozen));
        assert!(
            g_frozen.get(&w).is_none(),
            "the frozen weight got a gradient"
        );
    }
}
