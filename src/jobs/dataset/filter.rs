//! The thought–answer consistency filter, as in the PTR paper: the strong answer is sampled k
//! times and the record is kept when the samples agree (mean pairwise cosine similarity of their
//! Sentence-BERT embeddings at or above a threshold); with a gold answer the answer's number must
//! match it; and the answer must not be a copy of the last thought. Every score is recorded.

use serde::{Deserialize, Serialize};

use super::spec::FilterSpec;
use crate::embed::score::{mean_pairwise_cosine, near_copy, CopyCheck, CopyLimits};

/// Turns texts into sentence embeddings (Sentence-BERT in the server).
pub trait TextEmbedder: Send + Sync {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

impl TextEmbedder for crate::embed::Embedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        crate::embed::Embedder::embed(self, texts).map_err(|e| e.to_string())
    }
}

/// What the filter measured for one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Mean pairwise cosine similarity of the k answer samples (1 when k = 1).
    pub sample_similarity: f32,
    /// The answer against the last thought (embedding cosine and text overlap).
    pub copy: CopyCheck,
    /// The number extracted from the answer, with a gold answer.
    pub extracted: Option<String>,
    /// Whether it equals the gold number.
    pub gold_match: Option<bool>,
}

/// Why a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Inconsistent,
    WrongAnswer,
    CopyOfThought,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inconsistent => "inconsistent_samples",
            Self::WrongAnswer => "gold_mismatch",
            Self::CopyOfThought => "copy_of_last_thought",
        }
    }
}

/// Scores a record: `samples[0]` is the answer kept.
pub fn score(
    embedder: &dyn TextEmbedder,
    samples: &[String],
    last_thought: &str,
    gold: Option<&str>,
    extract: fn(&str) -> Option<String>,
    limits: CopyLimits,
) -> Result<Scores, String> {
    let mut texts: Vec<&str> = samples.iter().map(String::as_str).collect();
    texts.push(last_thought);
    let emb = embedder.embed(&texts)?;
    let (answers, thought) = emb.split_at(samples.len());
    let copy = near_copy(&samples[0], last_thought, &answers[0], &thought[0], limits);
    let extracted = gold.and_then(|_| extract(&samples[0]));
    let gold_match = gold.map(|g| extracted.as_deref().is_some_and(|x| same_number(x, g)));
    Ok(Scores {
        sample_similarity: mean_pairwise_cosine(answers).unwrap_or(1.0),
        copy,
        extracted,
        gold_match,
    })
}

fn same_number(a: &str, b: &str) -> bool {
    match (
        a.replace(',', "").parse::<f64>(),
        b.replace(',', "").parse::<f64>(),
    ) {
        (Ok(x), Ok(y)) => (x - y).abs() < 1e-6,
        _ => a.trim() == b.trim(),
    }
}

/// Keeps or rejects a scored record.
pub fn judge(spec: &FilterSpec, s: &Scores) -> Option<Rejection> {
    if spec.gold_check && s.gold_match == Some(false) {
        return Some(Rejection::WrongAnswer);
    }
    if s.copy.is_copy {
        return Some(Rejection::CopyOfThought);
    }
    if s.sample_similarity < spec.threshold {
        return Some(Rejection::Inconsistent);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bag-of-letters embeddings: enough to tell equal, similar and different texts apart.
    struct Letters;
    impl TextEmbedder for Letters {
        fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0.0; 26];
                    for c in t.to_lowercase().bytes().filter(u8::is_ascii_lowercase) {
                        v[(c - b'a') as usize] += 1.0;
                    }
                    v
                })
                .collect())
        }
    }

    fn last_number(s: &str) -> Option<String> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty())
            .last()
            .map(str::to_string)
    }

    #[test]
    fn judges_each_reason() {
        let spec = FilterSpec::default();
        let samples = vec![
            "the answer is 42".to_string(),
            "the answer is 42".to_string(),
        ];
        let s = score(
            &Letters,
            &samples,
            "no idea at all",
            Some("42"),
            last_number,
            CopyLimits::default(),
        )
        .unwrap();
        assert_eq!(s.gold_match, Some(true));
        assert_eq!(judge(&spec, &s), None);
        let wrong = score(
            &Letters,
            &samples,
            "no idea",
            Some("41"),
            last_number,
            CopyLimits::default(),
        )
        .unwrap();
        assert_eq!(judge(&spec, &wrong), Some(Rejection::WrongAnswer));
        let copy = score(
            &Letters,
            &samples,
            "The  answer is 42",
            None,
            last_number,
            CopyLimits::default(),
        )
        .unwrap();
        assert_eq!(judge(&spec, &copy), Some(Rejection::CopyOfThought));
        let apart = vec!["aaaa".to_string(), "zzzz".to_string()];
        let s = score(
            &Letters,
            &apart,
            "mmm",
            None,
            last_number,
            CopyLimits::default(),
        )
        .unwrap();
        assert_eq!(judge(&spec, &s), Some(Rejection::Inconsistent));
    }
}
