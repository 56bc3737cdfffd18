//! Sentence embeddings for the dataset job's consistency filter (PTR phase 1): the paper keeps a
//! record when the strong model's k sampled answers agree under Sentence-BERT similarity.
//!
//! - [`config`] reads what the sentence-transformers folder says (BERT shape, sequence limit,
//!   pooling, normalisation) and refuses what this encoder does not implement.
//! - [`bert`] is the BERT encoder, written on candle-nn (no candle-transformers).
//! - [`embedder`] owns a loaded model: tokenise, batch by length, encode, mean-pool, normalise.
//! - [`score`] holds the pure scores the filter records: cosine, mean pairwise cosine over the k
//!   samples, and the near-copy check of an answer against the last thought.
//!
//! The model (`all-minilm-l6-v2` in `models.toml`) is fetched like the chat models, by
//! `ptr-server fetch-model all-minilm-l6-v2`. `tests/embed/reference.py` is an independent numpy
//! forward of the same weights; the tests hold this code to its output.

pub mod bert;
pub mod config;
pub mod embedder;
pub mod score;
#[cfg(test)]
mod tests;

pub use embedder::Embedder;
pub use score::{cosine, mean_pairwise_cosine, near_copy, text_similarity, CopyCheck, CopyLimits};

use crate::fetch::FetchError;

/// The registry id of the embedder the consistency filter uses unless told otherwise.
pub const DEFAULT_EMBEDDER: &str = "all-minilm-l6-v2";

/// Why an embedder could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// Not fetched, or corrupt: the message names the fetch command.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Config { path: String, message: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("embedding model: {0}")]
    Model(#[from] candle_core::Error),
}
