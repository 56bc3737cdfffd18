//! The trainer trains the model that is served: on the real default GGUF, the trainer's own
//! forward (de-quantised f32 weights, rope by hand, its own tokenizer and ChatML rendering) and
//! mistral.rs (quantised matmuls) agree on the prompt's token ids, on the 32-token greedy
//! continuation, and on each continuation token's log-probability.

use either::Either;
use mistralrs::{
    GgufModelBuilder, RequestBuilder, SamplingParams, TextMessageRole, TextMessages, TokenSource,
};
use ptr_server::engine::{ChatMessage, Role};
use ptr_server::fetch::ModelCache;
use ptr_server::registry::ModelRegistry;
use ptr_server::train::gguf::BaseWeights;
use ptr_server::train::model::Decoder;
use ptr_server::train::tokenizer::{encode_segments, from_gguf, ChatTemplate};

use crate::common::ensure_default_model;

const PROMPTS: [&[(Role, &str)]; 4] = [
    &[(Role::User, "Write one sentence about cats.")],
    &[(
        Role::User,
        "What is the capital of France? Explain briefly.",
    )],
    &[
        (Role::System, "You are a terse math tutor."),
        (Role::User, "What is 12 times 7?"),
    ],
    &[
        (Role::User, "Name a color."),
        (Role::Assistant, "Blue.\n"),
        (
            Role::User,
            "Please further think about and give me a more precise and professional answer.",
        ),
    ],
];

/// Largest allowed |Δ log p| (natural log) per token. mistral.rs multiplies Q4_1 weights by
/// activations it first quantises to 8 bits (Q8_1); the trainer uses the same weights
/// de-quantised, in f32: the log-probabilities differ by that activation rounding only.
const LOGPROB_TOLERANCE: f32 = 0.25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trainer_forward_matches_the_served_model() {
    ensure_default_model();
    let registry = ModelRegistry::load(std::path::Path::new("models.toml")).unwrap();
    let gguf =
        ModelCache::new(ModelCache::default_dir(), "python3").path_of(registry.default_model());
    let (dir, file) = (gguf.parent().unwrap(), gguf.file_name().unwrap());
    let served = GgufModelBuilder::new(dir.to_string_lossy(), vec![file.to_string_lossy()])
        .with_token_source(TokenSource::None)
        .with_prefix_cache_n(None)
        .build()
        .await
        .unwrap();
    let device = candle_core::Device::Cpu;
    let (base, content) = BaseWeights::load(&gguf, &device).unwrap();
    let tokenizer = from_gguf(&content).unwrap();
    let template = ChatTemplate::from_gguf(&content).unwrap();
    let decoder = Decoder {
        base: &base,
        lora: None,
    };
    let mut worst = 0f32;
    for prompt in PROMPTS {
        let messages: Vec<ChatMessage> = prompt
            .iter()
            .map(|(r, c)| ChatMessage::new(*r, *c))
            .collect();
        let text = messages.iter().fold(TextMessages::new(), |acc, m| {
            let role = match m.role {
                Role::System => TextMessageRole::System,
                Role::User => TextMessageRole::User,
                Role::Assistant => TextMessageRole::Assistant,
            };
            acc.add_message(role, &m.content)
        });
        let engine_ids = served
            .tokenize(Either::Left(text.clone()), None, true, true, None)
            .await
            .unwrap();
        let segments = template.render(&messages, &vec![0.0; messages.len()], true);
        let (ids, _) = encode_segments(&tokenizer, &segments).unwrap();
        assert_eq!(ids, engine_ids, "prompt token ids differ for {prompt:?}");

        // Greedy with correct log-probabilities: temperature 1 and top-k 1 (mistral.rs's
        // temperature-less argmax path reports log10 of the raw logit, not a probability).
        let mut sampling = SamplingParams::deterministic();
        sampling.temperature = Some(1.0);
        sampling.top_k = Some(1);
        sampling.top_n_logprobs = 1;
        sampling.max_len = Some(32);
        let request = RequestBuilder::from(text)
            .set_sampling(sampling)
            .return_logprobs(true);
        let response = served.send_chat_request(request).await.unwrap();
        let steps = response.choices[0]
            .logprobs
            .clone()
            .unwrap()
            .content
            .unwrap();
        let generated: Vec<u32> = steps.iter().map(|s| s.top_logprobs[0].token).collect();
        let engine_lp: Vec<f32> = steps
            .iter()
            .map(|s| s.top_logprobs[0].logprob * std::f32::consts::LN_10)
            .collect();

        // Teacher-forced: one forward over prompt + continuation scores every generated token.
        let all: Vec<u32> = ids.iter().chain(&generated).copied().collect();
        let input = candle_core::Tensor::new(all.as_slice(), &device)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let logits = decoder.logits(&input).unwrap().squeeze(0).unwrap();
        let logp = candle_nn::ops::log_softmax(&logits, candle_core::D::Minus1).unwrap();
        for (i, (&tok, &lp)) in generated.iter().zip(&engine_lp).enumerate() {
            let row = logp.get(ids.len() - 1 + i).unwrap();
            let mine_argmax = row.argmax(0).unwrap().to_scalar::<u32>().unwrap();
            let mine_lp = row.get(tok as usize).unwrap().to_scalar::<f32>().unwrap();
            assert_eq!(mine_argmax, tok, "greedy token {i} differs for {prompt:?}");
            let diff = (mine_lp - lp).abs();
            worst = worst.max(diff);
            assert!(
                diff < LOGPROB_TOLERANCE,
                "token {i}: log p {mine_lp} vs engine {lp} for {prompt:?}"
            );
        }
        assert!(
            generated.len() >= 8,
            "the engine wrote only {} tokens",
            generated.len()
        );
    }
    eprintln!("largest |Δ log p| over the prompts: {worst:.4}");
}
