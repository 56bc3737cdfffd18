//! Tests on the real all-MiniLM-L6-v2 (fetched by `make test`): agreement with the independent
//! numpy forward in `tests/embed/reference.py`, batching, and semantic sanity.

use std::path::Path;
use std::sync::OnceLock;

use candle_core::Device;
use serde::Deserialize;

use super::{cosine, mean_pairwise_cosine, near_copy, CopyLimits, Embedder, DEFAULT_EMBEDDER};
use crate::fetch::ModelCache;
use crate::registry::ModelRegistry;

/// Largest difference allowed in any coordinate against the float64 reference: f32 accumulation
/// over 6 layers (measured ~1e-6) plus the fixture's rounding to 6 decimals (≤ 5e-7).
const MAX_ABS_DIFF: f32 = 1e-5;
const MIN_COSINE: f32 = 0.99999;

fn embedder() -> &'static Embedder {
    static EMBEDDER: OnceLock<Embedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| {
        let registry =
            ModelRegistry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models.toml"))
                .unwrap();
        let spec = registry.embedder(DEFAULT_EMBEDDER).unwrap();
        let cache = ModelCache::new(ModelCache::default_dir(), "python3");
        Embedder::from_cache(&cache, spec, &Device::Cpu).unwrap_or_else(|e| {
            panic!("{e}\n(`make test` fetches it: `cargo run -- fetch-model {DEFAULT_EMBEDDER}`)")
        })
    })
}

#[derive(Deserialize)]
struct Reference {
    model_safetensors_sha256: String,
    max_seq_length: usize,
    sentences: Vec<ReferenceSentence>,
}

#[derive(Deserialize)]
struct ReferenceSentence {
    text: String,
    tokens: usize,
    embedding: Vec<f32>,
}

fn reference() -> Reference {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embed/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_embedder_can_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Embedder>();
}

#[test]
fn matches_the_numpy_reference() {
    let reference = reference();
    let registry =
        ModelRegistry::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models.toml")).unwrap();
    let spec = registry.embedder(DEFAULT_EMBEDDER).unwrap();
    assert_eq!(
        reference.model_safetensors_sha256, spec.sha256,
        "fixture of other weights"
    );
    let embedder = embedder();
    assert_eq!(embedder.max_tokens(), reference.max_seq_length);
    // Embedded together: one padded batch of 2 to 256 tokens, so the mask is exercised too.
    let texts: Vec<&str> = reference
        .sentences
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    let vectors = embedder.embed(&texts).unwrap();
    let mut worst = 0f32;
    for (sentence, vector) in reference.sentences.iter().zip(&vectors) {
        assert_eq!(vector.len(), embedder.dimension());
        let diff = sentence
            .embedding
            .iter()
            .zip(vector)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        let similarity = cosine(&sentence.embedding, vector);
        assert!(
            diff <= MAX_ABS_DIFF && similarity >= MIN_COSINE,
            "{:?} ({} tokens): max |diff| {diff:e}, cosine {similarity}",
            sentence.text,
            sentence.tokens
        );
        worst = worst.max(diff);
    }
    eprintln!("max |rust - numpy| over the reference: {worst:e}");
}

#[test]
fn batching_and_order_do_not_change_vectors() {
    let texts = [
        "Short.",
        "A somewhat longer sentence about thought refinement.",
        "",
    ];
    let together = embedder().embed(&texts).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let alone = &embedder().embed(&[text]).unwrap()[0];
        let diff = alone
            .iter()
            .zip(&together[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{text:?}: {diff:e}");
        let norm: f32 = alone.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }
    assert!(embedder().embed(&[]).unwrap().is_empty());
}

#[test]
fn paraphrases_score_higher_than_unrelated_sentences() {
    let v = embedder()
        .embed(&[
            "Natalia sold 48 clips in April and half as many in May, so 72 clips in total.",
            "In total Natalia sold 72 clips: 48 in April and 24 in May.",
            "The capital of France is Paris.",
            "A man is playing a guitar.",
            "Someone is strumming a guitar.",
        ])
        .unwrap();
    let paraphrase = cosine(&v[0], &v[1]);
    let unrelated = cosine(&v[0], &v[2]);
    assert!(paraphrase > unrelated + 0.4, "{paraphrase} vs {unrelated}");
    assert!(cosine(&v[3], &v[4]) > cosine(&v[3], &v[2]) + 0.4);
    let agreeing = mean_pairwise_cosine(&v[..2]).unwrap();
    let disagreeing = mean_pairwise_cosine(&[v[0].clone(), v[2].clone(), v[3].clone()]).unwrap();
    assert!(agreeing > disagreeing, "{agreeing} vs {disagreeing}");
}

#[test]
fn the_default_copy_limits_keep_a_rewrite_and_reject_copies() {
    let thought =
        "Natalia sold 48 clips in April. In May she sold half as many, which is 48 / 2 = \
                   24 clips. Altogether she sold 48 + 24 = 72 clips.";
    let rewrite =
        "In April Natalia sold 48 clips. In May she sold half of that, 48 ÷ 2 = 24 clips. \
                   So in total she sold 48 + 24 = 72 clips. The answer is 72.";
    let suffixed = format!("{thought} The answer is 72.");
    let renumbered = thought.replace("72", "70");
    let answers = [rewrite, suffixed.as_str(), renumbered.as_str()];
    let mut texts = vec![thought];
    texts.extend(answers);
    let v = embedder().embed(&texts).unwrap();
    let check = |i: usize| near_copy(texts[i], thought, &v[i], &v[0], CopyLimits::default());
    let kept = check(1);
    assert!(!kept.is_copy, "a rewrite is not a copy: {kept:?}");
    for (i, copy) in texts.iter().enumerate().skip(2) {
        assert!(check(i).is_copy, "{copy:?}: {:?}", check(i));
    }
}
