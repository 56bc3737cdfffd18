//! What a sentence-transformers folder says about its model: the BERT shape (`config.json`), the
//! module pipeline (`modules.json`: Transformer → Pooling → optional Normalize), the pooling mode
//! (`1_Pooling/config.json`) and the sequence limit (`sentence_bert_config.json`, which overrides
//! the 128-token truncation saved in `tokenizer.json`). Anything this encoder does not implement
//! is refused here, at load, instead of producing wrong vectors later.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::EmbedError;

/// The BERT shape from `config.json` (Hugging Face `BertConfig`): the fields the encoder uses.
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    /// Must be `gelu`: Hugging Face's exact (erf) GELU.
    pub hidden_act: String,
    /// Must be `absolute` (learned position embeddings).
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".into()
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: usize,
}

#[derive(Deserialize)]
struct PoolingConfig {
    word_embedding_dimension: usize,
    pooling_mode_cls_token: bool,
    pooling_mode_mean_tokens: bool,
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct PipelineModule {
    #[serde(rename = "type")]
    kind: String,
    path: String,
}

/// Everything the embedder needs besides the weights and the tokenizer.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    pub bert: BertConfig,
    /// Tokens per text, special tokens included; longer texts are truncated (as
    /// sentence-transformers does).
    pub max_seq_length: usize,
    /// Whether the pipeline ends in L2 normalisation.
    pub normalize: bool,
}

impl ModelConfig {
    /// Reads and checks the configuration files of a sentence-transformers folder.
    pub fn read(dir: &Path) -> Result<Self, EmbedError> {
        let config_path = dir.join("config.json");
        let bert: BertConfig = read_json(&config_path)?;
        let refuse = |path: &Path, message: String| EmbedError::Config {
            path: path.display().to_string(),
            message,
        };
        if bert.hidden_act != "gelu" {
            let act = &bert.hidden_act;
            return Err(refuse(
                &config_path,
                format!("hidden_act `{act}` is not `gelu`"),
            ));
        }
        if bert.position_embedding_type != "absolute" {
            let kind = &bert.position_embedding_type;
            return Err(refuse(
                &config_path,
                format!("position embeddings `{kind}`"),
            ));
        }
        if bert.num_attention_heads == 0
            || !bert.hidden_size.is_multiple_of(bert.num_attention_heads)
        {
            let message = "hidden_size is not a multiple of num_attention_heads".to_string();
            return Err(refuse(&config_path, message));
        }
        let modules_path = dir.join("modules.json");
        let modules: Vec<PipelineModule> = read_json(&modules_path)?;
        let mut pooling = None;
        let mut normalize = false;
        for (i, module) in modules.iter().enumerate() {
            match (i, module.kind.as_str()) {
                (0, "sentence_transformers.models.Transformer") => {}
                (1, "sentence_transformers.models.Pooling") => pooling = Some(&module.path),
                (2, "sentence_transformers.models.Normalize") => normalize = true,
                (_, kind) => {
                    let message = format!("module {i} `{kind}` is not supported");
                    return Err(refuse(&modules_path, message));
                }
            }
        }
        let pooling = pooling.ok_or_else(|| refuse(&modules_path, "no Pooling module".into()))?;
        let pooling_path = dir.join(pooling).join("config.json");
        let p: PoolingConfig = read_json(&pooling_path)?;
        let mean_only = p.pooling_mode_mean_tokens
            && !(p.pooling_mode_cls_token
                || p.pooling_mode_max_tokens
                || p.pooling_mode_mean_sqrt_len_tokens);
        if !mean_only || p.word_embedding_dimension != bert.hidden_size {
            let message = "only mean pooling over the hidden size is implemented".to_string();
            return Err(refuse(&pooling_path, message));
        }
        let st_path = dir.join("sentence_bert_config.json");
        let st: SentenceBertConfig = read_json(&st_path)?;
        if st.max_seq_length < 2 || st.max_seq_length > bert.max_position_embeddings {
            let message = format!(
                "max_seq_length {} is outside 2..={}",
                st.max_seq_length, bert.max_position_embeddings
            );
            return Err(refuse(&st_path, message));
        }
        Ok(Self {
            bert,
            max_seq_length: st.max_seq_length,
            normalize,
        })
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|source| EmbedError::Read {
        path: path.display().to_string(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| EmbedError::Config {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal sentence-transformers folder: MiniLM's real config files.
    fn folder(pooling: &str, modules: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let config = r#"{"vocab_size": 30522, "hidden_size": 384, "num_hidden_layers": 6,
            "num_attention_heads": 12, "intermediate_size": 1536, "max_position_embeddings": 512,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu",
            "position_embedding_type": "absolute", "model_type": "bert"}"#;
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        std::fs::write(dir.path().join("modules.json"), modules).unwrap();
        std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
        std::fs::write(dir.path().join("1_Pooling/config.json"), pooling).unwrap();
        let st = r#"{"max_seq_length": 256, "do_lower_case": false}"#;
        std::fs::write(dir.path().join("sentence_bert_config.json"), st).unwrap();
        dir
    }

    const MEAN: &str = r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
        "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
        "pooling_mode_mean_sqrt_len_tokens": false}"#;
    const PIPELINE: &str = r#"[
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]"#;

    #[test]
    fn reads_minilm_with_the_sentence_transformers_limit() {
        let dir = folder(MEAN, PIPELINE);
        let config = ModelConfig::read(dir.path()).unwrap();
        assert_eq!(config.max_seq_length, 256);
        assert!(config.normalize);
        assert_eq!(config.bert.num_attention_heads, 12);
    }

    #[test]
    fn refuses_cls_pooling_and_unknown_modules() {
        let cls = MEAN
            .replace(
                "\"pooling_mode_cls_token\": false",
                "\"pooling_mode_cls_token\": true",
            )
            .replace(
                "\"pooling_mode_mean_tokens\": true",
                "\"pooling_mode_mean_tokens\": false",
            );
        let err = ModelConfig::read(folder(&cls, PIPELINE).path()).unwrap_err();
        assert!(err.to_string().contains("mean pooling"), "{err}");
        let dense = PIPELINE.replace("models.Normalize", "models.Dense");
        let err = ModelConfig::read(folder(MEAN, &dense).path()).unwrap_err();
        assert!(
            err.to_string()
                .contains("`sentence_transformers.models.Dense`"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = folder(MEAN, PIPELINE);
        std::fs::remove_file(dir.path().join("sentence_bert_config.json")).unwrap();
        let err = ModelConfig::read(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("sentence_bert_config.json"),
            "{err}"
        );
    }
}
