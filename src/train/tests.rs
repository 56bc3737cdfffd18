//! Trainer tests on tiny random-weight llama and qwen2 models, written as real GGUF files (F32
//! tensors, a byte-level BPE tokenizer, a ChatML template) and loaded back through the loader.

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file::{self, Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor, Var};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::config::{Hyperparameters, LoraConfig, TARGETS};
use super::data::{Encoder, Example, Skip};
use super::gguf::{Arch, BaseWeights};
use super::lora::Lora;
use super::loss::{weighted_loss, Batch, Labelled};
use super::model::Decoder;
use super::trainer::Trainer;
use super::{checkpoint, export, tokenizer};
use crate::engine::{ChatMessage, Role};
use crate::refine::layout::WeightedTurn;

const TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nBe brief.<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

fn vocab() -> Vec<String> {
    let mut chars: Vec<char> = tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet()
        .into_iter()
        .collect();
    chars.sort();
    let mut v: Vec<String> = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
        .map(String::from)
        .to_vec();
    v.extend(chars.into_iter().map(String::from));
    v
}

fn metadata(arch: Arch) -> HashMap<String, Value> {
    let name = if arch == Arch::Llama {
        "llama"
    } else {
        "qwen2"
    };
    let tokens = vocab();
    let types = (0..tokens.len())
        .map(|i| Value::I32(if i < 3 { 3 } else { 1 }))
        .collect();
    let mut m: HashMap<String, Value> = [
        ("general.architecture", Value::String(name.into())),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        (
            "tokenizer.ggml.tokens",
            Value::Array(tokens.into_iter().map(Value::String).collect()),
        ),
        ("tokenizer.ggml.token_type", Value::Array(types)),
        ("tokenizer.ggml.merges", Value::Array(vec![])),
        ("tokenizer.ggml.eos_token_id", Value::U32(2)),
        ("tokenizer.chat_template", Value::String(TEMPLATE.into())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in [
        ("block_count", 2u32),
        ("embedding_length", 32),
        ("feed_forward_length", 48),
        ("attention.head_count", 4),
        ("attention.head_count_kv", 2),
    ] {
        m.insert(format!("{name}.{k}"), Value::U32(v));
    }
    m.insert(format!("{name}.rope.freq_base"), Value::F32(10_000.0));
    m.insert(
        format!("{name}.attention.layer_norm_rms_epsilon"),
        Value::F32(1e-5),
    );
    m
}

/// Writes a tiny random model; llama ties its embeddings, qwen2 has an output matrix and biases.
fn write_tiny(arch: Arch, path: &Path, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let dev = Device::Cpu;
    let mut rand = |shape: &[usize], scale: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..scale)).collect();
        QTensor::quantize(&Tensor::from_vec(v, shape, &dev).unwrap(), GgmlDType::F32).unwrap()
    };
    let v = vocab().len();
    let mut t: Vec<(String, QTensor)> = vec![("token_embd.weight".into(), rand(&[v, 32], 1.0))];
    for l in 0..2 {
        for (name, shape) in [
            ("attn_q", [32, 32]),
            ("attn_k", [16, 32]),
            ("attn_v", [16, 32]),
            ("attn_output", [32, 32]),
            ("ffn_gate", [48, 32]),
            ("ffn_up", [48, 32]),
            ("ffn_down", [32, 48]),
        ] {
            t.push((format!("blk.{l}.{name}.weight"), rand(&shape, 0.3)));
        }
        t.push((format!("blk.{l}.attn_norm.weight"), rand(&[32], 1.0)));
        t.push((format!("blk.{l}.ffn_norm.weight"), rand(&[32], 1.0)));
        if arch == Arch::Qwen2 {
            for (b, n) in [("attn_q", 32), ("attn_k", 16), ("attn_v", 16)] {
                t.push((format!("blk.{l}.{b}.bias"), rand(&[n], 0.1)));
            }
        }
    }
    t.push(("output_norm.weight".into(), rand(&[32], 1.0)));
    if arch == Arch::Qwen2 {
        t.push(("output.weight".into(), rand(&[v, 32], 1.0)));
    }
    let md = metadata(arch);
    let md: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tr: Vec<(&str, &QTensor)> = t.iter().map(|(n, q)| (n.as_str(), q)).collect();
    let mut f = std::fs::File::create(path).unwrap();
    gguf_file::write(&mut f, &md, &tr).unwrap();
}

fn tiny(arch: Arch) -> (tempfile::TempDir, std::path::PathBuf, BaseWeights, Content) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_tiny(arch, &path, 7);
    let (base, content) = BaseWeights::load(&path, &Device::Cpu).unwrap();
    (dir, path, base, content)
}

fn all_targets() -> LoraConfig {
    LoraConfig {
        target_modules: TARGETS.map(String::from).to_vec(),
        ..LoraConfig::default()
    }
}

/// B starts at zero (so A's gradient is zero too); a random B shows the whole graph.
fn randomise_b(lora: &Lora, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    for (n, v) in lora.named_vars() {
        if n.ends_with("lora_B") {
            let vals: Vec<f32> = (0..v.elem_count())
                .map(|_| rng.random_range(-0.5..0.5))
                .collect();
            v.set(&Tensor::from_vec(vals, v.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
    }
}

fn random_example(seed: u64, len: usize, vocab: usize) -> Example {
    let mut rng = StdRng::seed_from_u64(seed);
    let ids = (0..len)
        .map(|_| rng.random_range(3..vocab as u32))
        .collect();
    let weights = (0..len)
        .map(|p| if p >= len / 2 { 1.0 } else { 0.0 })
        .collect();
    Example { ids, weights }
}

fn loss_of(dec: &Decoder, seqs: &[Labelled]) -> f64 {
    let b = Batch::from_labelled(seqs, 0, &Device::Cpu).unwrap();
    weighted_loss(dec, &b, None, b.weight_sum)
        .unwrap()
        .loss
        .to_scalar::<f32>()
        .unwrap() as f64
}

#[test]
fn every_lora_matrix_gets_a_gradient() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let (_d, _p, base, _c) = tiny(arch);
        let lora = Lora::new(&all_targets(), &base.config, 1, &Device::Cpu).unwrap();
        randomise_b(&lora, 2);
        let dec = Decoder {
            base: &base,
            lora: Some(&lora),
        };
        let ex = random_example(3, 16, base.config.vocab);
        let b = Batch::new(&[&ex], 0, &Device::Cpu).unwrap();
        let out = weighted_loss(&dec, &b, None, b.weight_sum).unwrap();
        let grads = out.loss.backward().unwrap();
        let named = lora.named_vars();
        assert_eq!(named.len(), 2 * 7 * 2);
        for (n, v) in named {
            let g = grads
                .get(v.as_tensor())
                .unwrap_or_else(|| panic!("{arch:?} {n}: no gradient"));
            let norm = g
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                norm > 0.0 && norm.is_finite(),
                "{arch:?} {n}: gradient norm {norm}"
            );
        }
    }
}

#[test]
fn thought_labels_count_only_when_weighted() {
    let (_d, _p, base, _c) = tiny(Arch::Llama);
    let lora = Lora::new(&LoraConfig::default(), &base.config, 1, &Device::Cpu).unwrap();
    let dec = Decoder {
        base: &base,
        lora: Some(&lora),
    };
    let inputs: Vec<u32> = (10..22).collect();
    let labels: Vec<u32> = (11..23).collect();
    // prompt (4) · thought (4) · answer (4)
    let masked = [0., 0., 0., 0., 0., 0., 0., 0., 1., 1., 1., 1.];
    let mut other_thought = labels.clone();
    other_thought[5] = 99;
    let mut other_answer = labels.clone();
    other_answer[9] = 99;
    let l = |labels: &[u32], weights: &[f32]| {
        loss_of(
            &dec,
            &[Labelled {
                inputs: &inputs,
                labels,
                weights,
            }],
        )
    };
    assert_eq!(
        l(&labels, &masked),
        l(&other_thought, &masked),
        "a masked thought label changed the loss"
    );
    assert_ne!(
        l(&labels, &masked),
        l(&other_answer, &masked),
        "the answer's label did not count"
    );
    let weighted = [0., 0., 0., 0., 0.5, 0.5, 0.5, 0.5, 1., 1., 1., 1.];
    assert_ne!(
        l(&labels, &weighted),
        l(&other_thought, &weighted),
        "thought_weight > 0 did not count"
    );
}

fn encoder(content: &Content, max_len: usize, thought_weight: f32) -> Encoder {
    Encoder {
        tokenizer: tokenizer::from_gguf(content).unwrap(),
        template: tokenizer::ChatTemplate::from_gguf(content).unwrap(),
        max_len,
        answer_weight: 1.0,
        thought_weight,
    }
}

fn record(thoughts: &[&str], answer: &str) -> Vec<WeightedTurn> {
    let turn = |role, s: &str, weight| WeightedTurn {
        message: ChatMessage::new(role, s),
        weight,
    };
    let mut t = vec![turn(Role::User, "Q?", None)];
    for th in thoughts {
        t.push(turn(Role::Assistant, th, Some(0.0)));
        t.push(turn(Role::User, "again", None));
    }
    t.push(turn(Role::Assistant, answer, Some(1.0)));
    t
}

fn weighted_text(enc: &Encoder, ex: &Example, w: f32) -> String {
    let ids: Vec<u32> = ex
        .ids
        .iter()
        .zip(&ex.weights)
        .filter(|(_, &x)| x == w)
        .map(|(&i, _)| i)
        .collect();
    enc.tokenizer.decode(&ids, false).unwrap()
}

#[test]
fn lines_get_template_thought_and_answer_weights() {
    let (_d, _p, _b, content) = tiny(Arch::Llama);
    let enc = encoder(&content, 512, 0.5);
    let ex = enc.encode(&record(&["t1", "t2"], "ANS")).unwrap();
    let text = enc.tokenizer.decode(&ex.ids, false).unwrap();
    assert!(
        text.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nQ?"),
        "{text}"
    );
    assert_eq!(weighted_text(&enc, &ex, 1.0), "ANS<|im_end|>");
    // β_t = t/n: thought 1 of 2 gets 0.25, thought 2 gets 0.5; as served, with a newline.
    assert_eq!(weighted_text(&enc, &ex, 0.25), "t1\n<|im_end|>");
    assert_eq!(weighted_text(&enc, &ex, 0.5), "t2\n<|im_end|>");
    let masked = encoder(&content, 512, 0.0)
        .encode(&record(&["t1"], "ANS"))
        .unwrap();
    assert_eq!(weighted_text(&enc, &masked, 1.0), "ANS<|im_end|>");
    assert!(masked.weights.iter().all(|&w| w == 0.0 || w == 1.0));
}

#[test]
fn long_lines_lose_their_earliest_thoughts_then_are_skipped() {
    let (_d, _p, _b, content) = tiny(Arch::Llama);
    let full = encoder(&content, 512, 0.0)
        .encode(&record(&["first thought", "second"], "ANS"))
        .unwrap();
    let cut = encoder(&content, full.ids.len() - 1, 0.0)
        .encode(&record(&["first thought", "second"], "ANS"))
        .unwrap();
    let enc = encoder(&content, 512, 0.0);
    let text = enc.tokenizer.decode(&cut.ids, false).unwrap();
    assert!(
        !text.contains("first thought") && text.contains("second") && text.contains("ANS"),
        "{text}"
    );
    assert_eq!(
        encoder(&content, 20, 0.0).encode(&record(&["t"], "ANS")),
        Err(Skip::TooLong)
    );
}

fn hp(steps: usize, lr: f64) -> Hyperparameters {
    Hyperparameters {
        lora: all_targets(),
        learning_rate: lr,
        warmup_steps: 0,
        batch_size: 2,
        grad_accum: 2,
        max_steps: Some(steps),
        ..Hyperparameters::default()
    }
}

fn four_records(vocab: usize) -> Vec<Example> {
    (0..4).map(|i| random_example(100 + i, 24, vocab)).collect()
}

#[test]
fn loss_falls_over_30_steps() {
    let (_d, _p, base, _c) = tiny(Arch::Llama);
    let data = four_records(base.config.vocab);
    let mut t = Trainer::new(hp(30, 1e-2), base, data.clone(), 0, Device::Cpu).unwrap();
    let (before, _) = t.evaluate(&data).unwrap();
    for _ in 0..30 {
        t.step().unwrap();
    }
    let (after, _) = t.evaluate(&data).unwrap();
    assert!(after < 0.5 * before, "loss {before} → {after}");
}

fn lora_values(t: &Trainer) -> Vec<Vec<f32>> {
    t.lora
        .vars()
        .iter()
        .map(|v| v.as_tensor().flatten_all().unwrap().to_vec1().unwrap())
        .collect()
}

#[test]
fn a_resumed_run_continues_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (_d, _p, base, _c) = tiny(Arch::Qwen2);
    let data = four_records(base.config.vocab);
    let mut h = hp(4, 1e-2);
    h.lora.dropout = 0.1;
    let mut straight = Trainer::new(h.clone(), base.clone(), data.clone(), 0, Device::Cpu).unwrap();
    for _ in 0..4 {
        straight.step().unwrap();
    }
    let mut first = Trainer::new(h.clone(), base.clone(), data.clone(), 0, Device::Cpu).unwrap();
    first.step().unwrap();
    first.step().unwrap();
    let (state, adapter, opt) = first.checkpoint();
    checkpoint::save(dir.path(), &state, &adapter, &opt).unwrap();
    std::fs::create_dir_all(checkpoint::dir(dir.path()).join(".tmp-step-3")).unwrap();
    let latest = checkpoint::latest(dir.path()).unwrap().unwrap();
    assert!(latest.ends_with("step-2"));
    let mut resumed = Trainer::new(h, base, data, 0, Device::Cpu).unwrap();
    resumed
        .restore(&checkpoint::load(&latest, &Device::Cpu).unwrap())
        .unwrap();
    resumed.step().unwrap();
    resumed.step().unwrap();
    assert_eq!(lora_values(&resumed), lora_values(&straight));
}

#[test]
fn the_merged_gguf_gives_base_plus_lora_logits() {
    for arch in [Arch::Llama, Arch::Qwen2] {
        let (dir, path, base, content) = tiny(arch);
        let lora = Lora::new(&LoraConfig::default(), &base.config, 1, &Device::Cpu).unwrap();
        randomise_b(&lora, 5);
        let out = dir.path().join("merged.gguf");
        export::merged_gguf(&path, &base, &lora, &out).unwrap();
        let (merged, merged_content) = BaseWeights::load(&out, &Device::Cpu).unwrap();
        assert_eq!(merged_content.metadata.len(), content.metadata.len());
        let ids = Tensor::new(&[[5u32, 40, 41, 42, 100, 7, 9]], &Device::Cpu).unwrap();
        let logits =
            |base: &BaseWeights, lora: Option<&Lora>| Decoder { base, lora }.logits(&ids).unwrap();
        let tuned = logits(&base, Some(&lora));
        let effect = crate::gguf::max_abs_diff(&tuned, &logits(&base, None));
        let merge_err = crate::gguf::max_abs_diff(&tuned, &logits(&merged, None));
        // F16 keeps ~11 bits: the merge error must be tiny next to the fine-tune's effect.
        assert!(
            merge_err < 2e-2 && merge_err < effect / 20.0,
            "{arch:?}: merge error {merge_err}, effect {effect}"
        );
        let untouched = &merged_content.tensor_infos["blk.0.attn_k.weight"];
        assert_eq!(
            untouched.ggml_dtype,
            GgmlDType::F32,
            "an untargeted tensor was re-quantised"
        );
        assert_eq!(
            merged_content.tensor_infos["blk.0.attn_q.weight"].ggml_dtype,
            GgmlDType::F16
        );
    }
}

#[test]
fn a_run_writes_checkpoints_exports_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    write_tiny(Arch::Llama, &model, 7);
    let line = r#"{"messages":[{"role":"user","content":"Q?"},{"role":"assistant","content":"draft","weight":0},{"role":"user","content":"again"},{"role":"assistant","content":"final answer","weight":1}]}"#;
    let bad = r#"{"messages":[{"role":"tool","content":"x"}]}"#;
    let train = dir.path().join("train.jsonl");
    std::fs::write(&train, format!("{line}\n{line}\n{bad}\n")).unwrap();
    let cfg_json = serde_json::json!({
        "base_model_path": model, "training_file": train, "validation_file": train,
        "output_dir": dir.path().join("out"),
        "hyperparameters": {"max_steps": 3, "checkpoint_every": 2, "learning_rate": 1e-2, "warmup_steps": 1}
    });
    let cfg = super::config::TrainConfig::parse(&cfg_json.to_string()).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let run = |cfg: &super::config::TrainConfig| {
        super::run(
            cfg,
            &super::report::Reporter::new(false),
            &stop,
            &Device::Cpu,
        )
    };
    run(&cfg).unwrap();
    let out = dir.path().join("out");
    for f in [
        "checkpoints/step-2/state.json",
        "checkpoints/step-3/adapter.safetensors",
        "tiny.ptr-merged.gguf",
        "adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "metrics.csv",
        "loss_curve.svg",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let peft =
        candle_core::safetensors::load(out.join("adapter/adapter_model.safetensors"), &Device::Cpu)
            .unwrap();
    assert!(peft.contains_key("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"));
    // A second run finds the finished checkpoint and only exports again.
    run(&cfg).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.csv")).unwrap(),
        csv
    );
    // SIGTERM before a step: a checkpoint and a Stopped error.
    let mut more = cfg.clone();
    more.hyperparameters.max_steps = Some(5);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = run(&more).unwrap_err();
    assert!(err.downcast_ref::<super::Stopped>().is_some(), "{err}");
}

#[test]
fn vars_are_the_adapter_matrices() {
    let (_d, _p, base, _c) = tiny(Arch::Llama);
    let lora = Lora::new(&LoraConfig::default(), &base.config, 1, &Device::Cpu).unwrap();
    let vars: Vec<&Var> = lora.vars();
    assert_eq!(vars.len(), 2 * 5 * 2);
    assert!(lora.named_vars()[1].0.ends_with("q_proj.lora_B"));
}
