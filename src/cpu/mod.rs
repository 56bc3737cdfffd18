//! What this build asks of the CPU and what the CPU gives it.
//!
//! The refusal itself happens in `check.c` before any Rust code runs (see there for why it is C);
//! this module reads the same table for the start-up log and the tests: the level the binary was
//! built for, the features it requires, and whether candle's SIMD kernels are compiled in.

use std::ffi::CStr;
use std::fmt;

#[cfg(target_arch = "x86_64")]
mod ffi {
    use std::ffi::c_char;
    extern "C" {
        pub fn ptr_cpu_feature_name(i: u32) -> *const c_char;
        pub fn ptr_cpu_required() -> u64;
        #[cfg(test)]
        pub fn ptr_cpu_features() -> u64;
        pub fn ptr_cpu_target() -> *const c_char;
        pub fn ptr_cpu_report(
            required: u64,
            have: u64,
            target: *const c_char,
            buf: *mut c_char,
            len: usize,
        ) -> i32;
    }
}

/// The CPU side of this build, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuReport {
    /// rustc's `target-cpu` for this build (`native`, `x86-64-v3`, …).
    pub target: String,
    /// Instruction-set features the build requires (and the start-up check found).
    pub required: Vec<String>,
    /// Whether candle's AVX kernels (quantized matmuls among them) are compiled in.
    pub avx_kernels: bool,
    /// Whether f16 conversions use the CPU's F16C instructions.
    pub f16c: bool,
}

impl fmt::Display for CpuReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "built for target-cpu={} (requires: {}); candle kernels: avx={} f16c={}",
            self.target,
            if self.required.is_empty() {
                "baseline".to_string()
            } else {
                self.required.join(" ")
            },
            self.avx_kernels,
            self.f16c
        )
    }
}

/// What this binary was built for. Calling it also keeps the start-up check linked in.
pub fn report() -> CpuReport {
    CpuReport {
        target: target(),
        required: required(),
        avx_kernels: candle_core::utils::with_avx(),
        f16c: candle_core::utils::with_f16c(),
    }
}

#[cfg(target_arch = "x86_64")]
fn target() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated string literal.
    unsafe { CStr::from_ptr(ffi::ptr_cpu_target()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(not(target_arch = "x86_64"))]
fn target() -> String {
    std::env::consts::ARCH.to_string()
}

#[cfg(target_arch = "x86_64")]
fn required() -> Vec<String> {
    // SAFETY: pure functions of the compiled-in table.
    names(unsafe { ffi::ptr_cpu_required() })
}

#[cfg(not(target_arch = "x86_64"))]
fn required() -> Vec<String> {
    Vec::new()
}

/// The feature names of a mask, in table order.
#[cfg(target_arch = "x86_64")]
fn names(mask: u64) -> Vec<String> {
    (0..64u32)
        .filter(|bit| mask >> bit & 1 == 1)
        .filter_map(|bit| {
            // SAFETY: NULL past the table's end, else a static string literal.
            let name = unsafe { ffi::ptr_cpu_feature_name(bit) };
            (!name.is_null()).then(|| {
                unsafe { CStr::from_ptr(name) }
                    .to_string_lossy()
                    .into_owned()
            })
        })
        .collect()
}

/// The message the start-up check prints for a CPU with features `have` (a mask), or `None`
/// when the build's requirements are met.
#[cfg(target_arch = "x86_64")]
pub fn refusal(required: u64, have: u64) -> Option<String> {
    let mut buf = vec![0u8; 2048];
    let target = std::ffi::CString::new(target()).expect("no NUL in a target name");
    // SAFETY: `buf` is writable for its length; the C side writes a NUL-terminated string.
    let missing = unsafe {
        ffi::ptr_cpu_report(
            required,
            have,
            target.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (missing > 0).then(|| {
        CStr::from_bytes_until_nul(&buf)
            .expect("NUL-terminated")
            .to_string_lossy()
            .into_owned()
    })
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    fn mask(wanted: &[&str]) -> u64 {
        (0..64u32)
            .filter(|&bit| {
                names(1 << bit)
                    .first()
                    .is_some_and(|n| wanted.contains(&n.as_str()))
            })
            .fold(0, |m, bit| m | 1 << bit)
    }

    #[test]
    fn a_cpu_without_avx2_is_refused_with_what_it_lacks_and_what_to_do() {
        let v3 = mask(&[
            "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "lzcnt", "movbe",
        ]);
        let nehalem = mask(&["sse3", "ssse3", "sse4.1", "sse4.2", "popcnt"]);
        let msg = refusal(v3, nehalem).expect("Nehalem lacks AVX2");
        assert!(
            msg.contains("this CPU lacks: fma movbe avx f16c bmi1 avx2 bmi2 lzcnt"),
            "{msg}"
        );
        assert!(
            msg.contains("this CPU has: sse3 ssse3 sse4.1 sse4.2 popcnt"),
            "{msg}"
        );
        assert!(msg.contains("RUSTFLAGS=\"-C target-cpu=x86-64\""), "{msg}");
        assert!(msg.contains("make build"), "{msg}");
        assert_eq!(refusal(v3, v3 | nehalem), None);
        assert_eq!(refusal(0, 0), None, "a baseline build runs anywhere");
    }

    #[test]
    fn this_machine_meets_this_builds_requirements() {
        // SAFETY: pure reads of CPUID and the compiled-in table.
        let (required, have) = unsafe { (ffi::ptr_cpu_required(), ffi::ptr_cpu_features()) };
        assert_eq!(refusal(required, have), None);
        assert_eq!(names(required), report().required);
        if cfg!(target_feature = "avx2") {
            assert!(names(have).iter().any(|f| f == "avx2"));
        }
    }

    #[test]
    fn an_avx2_build_reports_candles_simd_kernels() {
        let r = report();
        if cfg!(target_feature = "avx2") {
            assert!(r.required.iter().any(|f| f == "avx2"), "{r}");
            assert!(r.avx_kernels, "{r}");
        }
        assert!(r.to_string().contains("target-cpu="), "{r}");
    }
}
