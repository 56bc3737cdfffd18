//! The base model's tokenizer and chat template, read from its GGUF exactly as mistral.rs reads
//! them at inference, so a training line becomes the token ids the served model sees.
//!
//! The tokenizer mirrors mistral.rs 0.8.1's GGUF conversion (`gguf_tokenizer.rs`, not public):
//! BPE from `tokenizer.ggml.tokens`/`merges`, its split regex and byte-level pre-tokenizer, and
//! every token whose type is not 1 ("normal") registered as special. The template support is
//! ChatML (SmolLM2, Qwen2): `<|im_start|>role\ncontent<|im_end|>\n` per message, with the default
//! system message the template inserts when the conversation has none. The parity test against
//! the engine checks both.

use anyhow::{bail, Context};
use candle_core::quantized::gguf_file::Content;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BpeBuilder;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::byte_level::ByteLevel as ByteLevelProcessor;
use tokenizers::tokenizer::normalizer::SplitDelimiterBehavior;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::engine::{ChatMessage, Role};

/// mistral.rs's pre-tokenizer split for GGUF BPE tokenizers.
const SPLIT: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// The tokenizer of a GGUF model, built as mistral.rs builds it.
pub fn from_gguf(content: &Content) -> anyhow::Result<Tokenizer> {
    let md = &content.metadata;
    let strings = |key: &str| -> anyhow::Result<Vec<String>> {
        md.get(key)
            .with_context(|| format!("GGUF metadata lacks {key}"))?
            .to_vec()?
            .iter()
            .map(|v| Ok(v.to_string()?.clone()))
            .collect()
    };
    let model = md
        .get("tokenizer.ggml.model")
        .map(|v| v.to_string())
        .transpose()?;
    if model.map(String::as_str) != Some("gpt2") {
        bail!("the trainer reads BPE (`gpt2`) GGUF tokenizers only, not {model:?}");
    }
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').context("a BPE merge without a space")?;
            Ok((a.to_string(), b.to_string()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let id = |key: &str| md.get(key).and_then(|v| v.to_u32().ok());
    let mut bpe = BpeBuilder::new().vocab_and_merges(vocab, merges);
    if let Some(unk) = id("tokenizer.ggml.unknown_token_id") {
        bpe = bpe.unk_token(tokens[unk as usize].clone());
    }
    let mut tok = Tokenizer::new(bpe.build().map_err(anyhow::Error::msg)?);
    let split = Split::new(
        SplitPattern::Regex(SPLIT.into()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(anyhow::Error::msg)?;
    tok.with_pre_tokenizer(Some(Sequence::new(vec![
        PreTokenizerWrapper::Split(split),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, false, false)),
    ])));
    tok.with_decoder(Some(ByteLevelDecoder::new(false, false, false)));
    tok.with_post_processor(Some(ByteLevelProcessor::new(false, false, false)));
    let specials = ["bos", "eos", "unknown"]
        .iter()
        .filter_map(|k| id(&format!("tokenizer.ggml.{k}_token_id")));
    for s in specials {
        tok.add_special_tokens(&[AddedToken::from(tokens[s as usize].clone(), true)]);
    }
    if let Some(types) = md.get("tokenizer.ggml.token_type") {
        let types = types.to_vec()?;
        if types.len() == tokens.len() {
            for (t, ty) in tokens.iter().zip(types) {
                if ty.to_i32()? != 1 {
                    tok.add_special_tokens(&[AddedToken::from(t.clone(), true)]);
                }
            }
        }
    }
    Ok(tok)
}

/// A ChatML chat template: what it adds around each message.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatTemplate {
    /// The system message inserted when a conversation has none.
    pub default_system: Option<String>,
}

/// A piece of rendered text and the loss weight of the tokens that end inside it.
pub type Segment = (String, f32);

impl ChatTemplate {
    /// Reads `tokenizer.chat_template`; refuses templates that are not ChatML.
    pub fn from_gguf(content: &Content) -> anyhow::Result<Self> {
        let t = content
            .metadata
            .get("tokenizer.chat_template")
            .context("GGUF metadata lacks tokenizer.chat_template")?
            .to_string()?;
        Self::parse(t)
    }

    /// Recognises a ChatML template and its default system message.
    pub fn parse(template: &str) -> anyhow::Result<Self> {
        if !template.contains("<|im_start|>") || !template.contains("<|im_end|>") {
            bail!(
                "the trainer renders ChatML chat templates only (<|im_start|>role ... <|im_end|>)"
            );
        }
        // The default system message is a string literal '<|im_start|>system\n…<|im_end|>\n'
        // whose text holds no quote (a literal that stops earlier builds it from a variable).
        let unescaped = template.replace("\\n", "\n");
        let default_system = unescaped
            .match_indices("'<|im_start|>system\n")
            .find_map(|(i, m)| {
                let rest = &unescaped[i + m.len()..];
                let end = rest.find("<|im_end|>")?;
                (!rest[..end].contains('\'')).then(|| rest[..end].to_string())
            });
        Ok(Self { default_system })
    }

    /// The text of a conversation, in segments weighted by `weights` (one per message), plus the
    /// assistant header when `generation_prompt`. Message content and, for weighted messages,
    /// the end-of-turn marker carry the message's weight; template text carries 0.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        weights: &[f32],
        generation_prompt: bool,
    ) -> Vec<Segment> {
        let mut out: Vec<Segment> = Vec::new();
        if messages.first().map(|m| m.role) != Some(Role::System) {
            if let Some(sys) = &self.default_system {
                out.push((format!("<|im_start|>system\n{sys}<|im_end|>\n"), 0.0));
            }
        }
        for (m, &w) in messages.iter().zip(weights) {
            out.push((format!("<|im_start|>{}\n", m.role.as_str()), 0.0));
            out.push((m.content.clone(), w));
            out.push(("<|im_end|>".into(), w));
            out.push(("\n".into(), 0.0));
        }
        if generation_prompt {
            out.push(("<|im_start|>assistant\n".into(), 0.0));
        }
        out
    }
}

/// Token ids of rendered segments and each token's weight: the weight of the segment in which
/// the token ends (the whole text is tokenised at once, as the engine does).
pub fn encode_segments(
    tok: &Tokenizer,
    segments: &[Segment],
) -> anyhow::Result<(Vec<u32>, Vec<f32>)> {
    let text: String = segments.iter().map(|(s, _)| s.as_str()).collect();
    let enc = tok
        .encode(text.as_str(), true)
        .map_err(anyhow::Error::msg)?;
    let mut ends = Vec::with_capacity(segments.len());
    let mut at = 0;
    for (s, w) in segments {
        at += s.len();
        ends.push((at, *w));
    }
    let weights = enc
        .get_offsets()
        .iter()
        .map(|&(_, end)| {
            ends.iter()
                .find(|(e, _)| end <= *e)
                .map_or(0.0, |(_, w)| *w)
        })
        .collect();
    Ok((enc.get_ids().to_vec(), weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    const QWEN: &str = "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- messages[0]['content'] }}\n    {%- else %}\n        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}";

    #[test]
    fn finds_the_default_system_message() {
        let smol = ChatTemplate::parse(SMOL).unwrap();
        assert_eq!(
            smol.default_system.as_deref(),
            Some("You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        );
        let qwen = ChatTemplate::parse(QWEN).unwrap();
        assert_eq!(
            qwen.default_system.as_deref(),
            Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
        );
        assert!(ChatTemplate::parse("{{ bos_token }}[INST]").is_err());
    }

    #[test]
    fn renders_chatml_with_weights() {
        let t = ChatTemplate {
            default_system: Some("S".into()),
        };
        let msgs = [
            ChatMessage::new(Role::User, "q"),
            ChatMessage::new(Role::Assistant, "a"),
        ];
        let segs = t.render(&msgs, &[0.0, 1.0], false);
        let text: String = segs.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            text,
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\na<|im_end|>\n"
        );
        let weighted: String = segs
            .iter()
            .filter(|s| s.1 > 0.0)
            .map(|s| s.0.as_str())
            .collect();
        assert_eq!(weighted, "a<|im_end|>");
    }
}
