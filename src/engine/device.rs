//! The device a model runs on (`--device cpu|cuda[:N]|metal`), and where mistral.rs can put a
//! GGUF model.
//!
//! mistral.rs 0.8.1's GGUF builder ignores `with_device`: `build_gguf_pipeline`
//! (`mistralrs-0.8.1/src/model_builder_trait.rs`) resolves the device from `force_cpu` alone:
//! the CPU when it is set, otherwise CUDA device 0 if there is one (Metal device 0 on a Metal
//! build), silently the CPU if there is none. So `--device cpu` becomes `with_force_cpu`, the
//! GPU is checked to exist before the load (no silent fall-back to the CPU), and a device the
//! builder cannot reach (`cuda:N` with N > 0) is refused at start-up with what to do instead.

use std::fmt;
use std::str::FromStr;

use mistralrs::GgufModelBuilder;

/// The device a model runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    Metal,
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            "metal" => Ok(Self::Metal),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device `{s}`: use cpu, cuda, cuda:N or metal")),
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
            Self::Metal => f.write_str("metal"),
        }
    }
}

impl DeviceSpec {
    /// The candle device; fails when the binary was built without that backend.
    pub fn to_candle(self) -> mistralrs::Result<mistralrs::Device> {
        match self {
            Self::Cpu => Ok(mistralrs::Device::Cpu),
            Self::Cuda(n) => mistralrs::Device::new_cuda(n),
            Self::Metal => mistralrs::Device::new_metal(0),
        }
    }
}

/// What the GGUF builder is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// `with_force_cpu()`.
    Cpu,
    /// The builder's own choice with `force_cpu` off: CUDA or Metal device 0.
    FirstGpu,
}

/// The placement for `spec` in this binary, or why it cannot be honoured.
pub fn placement(spec: DeviceSpec) -> Result<Placement, String> {
    match spec {
        DeviceSpec::Cpu => Ok(Placement::Cpu),
        DeviceSpec::Cuda(_) if !cfg!(feature = "cuda") => Err(format!(
            "--device {spec}: this binary was built without CUDA; build it with `make cuda-build` \
             (README \"Run on a GPU\") or use --device cpu"
        )),
        DeviceSpec::Cuda(0) => Ok(Placement::FirstGpu),
        DeviceSpec::Cuda(n) => Err(format!(
            "--device cuda:{n}: mistral.rs 0.8.1 loads GGUF models on the first visible GPU only; \
             choose the GPU with CUDA_VISIBLE_DEVICES={n} and --device cuda"
        )),
        DeviceSpec::Metal if !cfg!(feature = "metal") => Err(
            "--device metal: this binary was built without Metal; build it with \
             `cargo build --release --features metal` on macOS or use --device cpu"
                .to_string(),
        ),
        DeviceSpec::Metal => Ok(Placement::FirstGpu),
    }
}

/// Applies `spec` to a GGUF builder. For a GPU the device is opened first, so a machine without
/// one fails here instead of loading on the CPU behind the operator's back.
pub fn place(builder: GgufModelBuilder, spec: DeviceSpec) -> anyhow::Result<GgufModelBuilder> {
    match placement(spec).map_err(anyhow::Error::msg)? {
        Placement::Cpu => Ok(builder.with_force_cpu()),
        Placement::FirstGpu => {
            spec.to_candle()
                .map_err(|e| anyhow::anyhow!("--device {spec}: no usable GPU: {e}"))?;
            Ok(builder)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices() {
        assert_eq!("cpu".parse(), Ok(DeviceSpec::Cpu));
        assert_eq!("cuda:2".parse(), Ok(DeviceSpec::Cuda(2)));
        assert!("gpu".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn cpu_is_forced() {
        assert_eq!(placement(DeviceSpec::Cpu), Ok(Placement::Cpu));
    }

    #[test]
    fn a_gpu_other_than_the_first_is_refused_with_the_way_round() {
        let err = placement(DeviceSpec::Cuda(1)).unwrap_err();
        if cfg!(feature = "cuda") {
            assert!(err.contains("CUDA_VISIBLE_DEVICES=1"), "{err}");
        } else {
            assert!(err.contains("make cuda-build"), "{err}");
        }
    }

    #[test]
    fn gpus_need_their_feature() {
        for (spec, enabled) in [
            (DeviceSpec::Cuda(0), cfg!(feature = "cuda")),
            (DeviceSpec::Metal, cfg!(feature = "metal")),
        ] {
            match placement(spec) {
                Ok(p) => assert!(enabled && p == Placement::FirstGpu, "{spec}"),
                Err(e) => assert!(!enabled && e.contains("built without"), "{spec}: {e}"),
            }
        }
    }

    #[test]
    fn a_missing_gpu_fails_instead_of_falling_back_to_the_cpu() {
        if cfg!(feature = "cuda") {
            return; // a CUDA build may run where a GPU is present
        }
        let builder = GgufModelBuilder::new("dir", vec!["m.gguf".to_string()]);
        assert!(place(builder, DeviceSpec::Cuda(0)).is_err());
    }
}
