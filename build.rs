//! Build script: compiles the start-up CPU check (`src/cpu/check.c`) for baseline x86-64, told
//! which instruction-set features this build enables (the feature table lives only in the C
//! file; its names are read from there) and which `target-cpu` it was given.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=src/cpu/check.c");
    println!("cargo:rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    if env::var("CARGO_CFG_TARGET_ARCH").as_deref() != Ok("x86_64") {
        return;
    }
    let source = std::fs::read_to_string("src/cpu/check.c").expect("src/cpu/check.c");
    let enabled = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let enabled: Vec<&str> = enabled.split(',').collect();
    let mask = table_names(&source)
        .iter()
        .enumerate()
        .filter(|(_, name)| enabled.contains(&name.as_str()))
        .fold(0u64, |mask, (bit, _)| mask | 1 << bit);
    cc::Build::new()
        .file("src/cpu/check.c")
        // Baseline code whatever CFLAGS or the Rust target say: this runs on any x86-64 CPU.
        .flag("-march=x86-64")
        .flag("-mtune=generic")
        .define("PTR_REQUIRED", format!("{mask}ULL").as_str())
        .define("PTR_TARGET_CPU", format!("\"{}\"", target_cpu()).as_str())
        .compile("ptr_cpu_check");
}

/// The quoted names of the `FEATURES[]` table, in bit order.
fn table_names(source: &str) -> Vec<String> {
    let start = source
        .find("FEATURES[] = {")
        .expect("FEATURES table in check.c");
    let end = start + source[start..].find("};").expect("end of FEATURES table");
    source[start..end]
        .split('{')
        .skip(2)
        .filter_map(|entry| entry.split('"').nth(1).map(str::to_string))
        .collect()
}

/// The `-C target-cpu=…` this build was given (`x86-64` when none).
fn target_cpu() -> String {
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let flags: Vec<&str> = flags.split('\x1f').collect();
    flags
        .iter()
        .enumerate()
        .find_map(|(i, flag)| {
            let value = match flag.strip_prefix("-C") {
                Some("") => flags.get(i + 1).copied()?,
                Some(rest) => rest,
                None => flag,
            };
            value.strip_prefix("target-cpu=").map(str::to_string)
        })
        .unwrap_or_else(|| "x86-64".to_string())
}
