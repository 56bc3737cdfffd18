//! Decode speed of the engine alone (no HTTP): loads the default model through the same
//! `MistralEngine` the server uses, runs greedy generations of `max_tokens` and prints tokens/s.
//!
//! `cargo run --example engine_decode -- [max_tokens] [runs]`

use std::time::Instant;

use futures::StreamExt;
use ptr_server::engine::mistral::{LoadOptions, MistralEngine};
use ptr_server::engine::DeviceSpec;
use ptr_server::engine::{ChatMessage, Engine, EngineEvent, GenerationRequest, Role};
use ptr_server::fetch::ModelCache;
use ptr_server::registry::ModelRegistry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let max_tokens: u32 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(128);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let registry = ModelRegistry::load(std::path::Path::new("models.toml"))?;
    let spec = registry.default_model();
    let path = ModelCache::new(ModelCache::default_dir(), "python3").verify(spec)?;
    let opts = LoadOptions {
        device: DeviceSpec::Cpu,
        max_num_seqs: 16,
        prefix_cache_n: 0,
        recycle_after: 0,
    };
    let engine = MistralEngine::load(&spec.id, &path, &opts).await?;
    let prompt =
        "Write a long, detailed essay on the history of the printing press: its inventors, \
how the technology spread across Europe, and its effects on science, religion and politics.";
    println!("run  tokens  ttft_s  decode_tok_s  total_s");
    for run in 1..=runs {
        let request =
            GenerationRequest::greedy(vec![ChatMessage::new(Role::User, prompt)], max_tokens);
        let start = Instant::now();
        let mut stream = engine.generate(request).await?;
        let (mut first, mut n) = (None, 0u32);
        while let Some(event) = stream.next().await {
            match event? {
                EngineEvent::Delta(_) => {
                    first.get_or_insert_with(Instant::now);
                    n += 1;
                }
                EngineEvent::Finished(_) => break,
            }
        }
        let total = start.elapsed().as_secs_f64();
        let first = first.map(|f| (f - start).as_secs_f64()).unwrap_or(total);
        let decode = (n.saturating_sub(1)) as f64 / (total - first);
        println!("{run:>3}  {n:>6}  {first:>6.2}  {decode:>12.1}  {total:>7.2}");
    }
    Ok(())
}
