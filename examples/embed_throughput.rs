//! Embedding throughput of the Sentence-BERT embedder on CPU: loads all-MiniLM-L6-v2 from the
//! model cache, embeds `n` answer-like texts of `words` words each in one call (the embedder
//! batches them) and prints sentences/s. The dataset job embeds k sampled answers per record.
//!
//! `cargo run --example embed_throughput -- [n] [words] [runs]`

use std::time::Instant;

use candle_core::Device;
use ptr_server::embed::{Embedder, DEFAULT_EMBEDDER};
use ptr_server::fetch::ModelCache;
use ptr_server::registry::ModelRegistry;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(32);
    let words: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(60);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let registry = ModelRegistry::load(std::path::Path::new("models.toml"))?;
    let spec = registry
        .embedder(DEFAULT_EMBEDDER)
        .ok_or_else(|| anyhow::anyhow!("models.toml declares no `{DEFAULT_EMBEDDER}`"))?;
    let cache = ModelCache::new(ModelCache::default_dir(), "python3");
    let started = Instant::now();
    let embedder = Embedder::from_cache(&cache, spec, &Device::Cpu)?;
    println!("loaded in {:.2} s", started.elapsed().as_secs_f64());
    let vocabulary = [
        "first", "Natalia", "sold", "48", "clips", "so", "the", "total", "is", "72", "because",
        "half", "of", "April", "gives", "24", "in", "May", "and", "we", "add", "them",
    ];
    let texts: Vec<String> = (0..n)
        .map(|i| {
            let mut words: Vec<&str> = (0..words)
                .map(|w| vocabulary[(i * 7 + w * 3) % vocabulary.len()])
                .collect();
            words.push(".");
            words.join(" ")
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for run in 1..=runs {
        let started = Instant::now();
        let vectors = embedder.embed(&refs)?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "run {run}: {n} texts of {words} words ({} dims) in {secs:.3} s = {:.1} sentences/s",
            vectors[0].len(),
            n as f64 / secs
        );
    }
    Ok(())
}
