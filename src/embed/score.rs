//! The scores the dataset job's consistency filter records, as pure functions of embeddings and
//! text: cosine similarity, the mean pairwise cosine of the k sampled answers (the paper's
//! Sentence-BERT agreement), and the check that an answer is not a near copy of the last thought.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// Cosine similarity of two vectors of one length; 0 when either is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "cosine of vectors of different lengths: this is a bug"
    );
    let (mut dot, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        dot += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    (dot / (aa.sqrt() * bb.sqrt())) as f32
}

/// Mean cosine over all unordered pairs of the vectors (k samples give k(k-1)/2 pairs); `None`
/// for fewer than two, where agreement is undefined.
pub fn mean_pairwise_cosine(vectors: &[Vec<f32>]) -> Option<f32> {
    let mut sum = 0f64;
    let mut pairs = 0usize;
    for (i, a) in vectors.iter().enumerate() {
        for b in &vectors[i + 1..] {
            sum += f64::from(cosine(a, b));
            pairs += 1;
        }
    }
    (pairs > 0).then(|| (sum / pairs as f64) as f32)
}

/// Text similarity in [0, 1] after normalisation (lower case, punctuation and runs of white
/// space folded to one space): 1 for equal texts, otherwise the Sørensen–Dice coefficient of the
/// two multisets of character bigrams (high when most of one text's characters reappear in the
/// same order in the other).
pub fn text_similarity(a: &str, b: &str) -> f32 {
    let (a, b) = (normalise(a), normalise(b));
    if a == b {
        return 1.0;
    }
    let (ga, gb) = (bigrams(&a), bigrams(&b));
    let total: usize = ga.values().chain(gb.values()).sum();
    if total == 0 {
        return 0.0;
    }
    let shared: usize = ga
        .iter()
        .map(|(g, &n)| n.min(gb.get(g).copied().unwrap_or(0)))
        .sum();
    (2 * shared) as f32 / total as f32
}

fn normalise(text: &str) -> String {
    let folded: String = text
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn bigrams(text: &str) -> HashMap<(char, char), usize> {
    let chars: Vec<char> = text.chars().collect();
    let mut grams = HashMap::new();
    for pair in chars.windows(2) {
        *grams.entry((pair[0], pair[1])).or_insert(0) += 1;
    }
    grams
}

/// When an answer counts as a copy of the last thought: either score at or above its limit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CopyLimits {
    /// Embedding cosine at or above which the answer says the same as the thought.
    pub cosine: f32,
    /// [`text_similarity`] at or above which the answer repeats the thought's words.
    pub text: f32,
}

/// Chosen on all-MiniLM-L6-v2 against a GSM8K-style thought T (cosine, text): a rewrite of the
/// same solution in other words scores (0.970, 0.83) and is kept; T plus "The answer is 72."
/// (0.988, 0.93), T with its last number changed (0.999, 0.98) and T re-cased (1.0, 1.0) are
/// copies. Embeddings barely see numbers, hence the text score beside the cosine.
impl Default for CopyLimits {
    fn default() -> Self {
        Self {
            cosine: 0.99,
            text: 0.9,
        }
    }
}

/// The near-copy scores of one record, kept with its provenance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CopyCheck {
    /// Cosine of the answer's and the last thought's embeddings.
    pub cosine: f32,
    /// [`text_similarity`] of the two texts.
    pub text_similarity: f32,
    /// Whether either score reached its limit (the record is then rejected).
    pub is_copy: bool,
}

/// Scores the final answer against the last thought, given both texts and their embeddings.
pub fn near_copy(
    answer: &str,
    last_thought: &str,
    answer_embedding: &[f32],
    thought_embedding: &[f32],
    limits: CopyLimits,
) -> CopyCheck {
    let cosine = cosine(answer_embedding, thought_embedding);
    let text_similarity = text_similarity(answer, last_thought);
    CopyCheck {
        cosine,
        text_similarity,
        is_copy: cosine >= limits.cosine || text_similarity >= limits.text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_known_vectors() {
        assert!((cosine(&[1.0, 0.0], &[0.0, 2.0])).abs() < 1e-7);
        assert!((cosine(&[1.0, 1.0], &[3.0, 3.0]) - 1.0).abs() < 1e-7);
        assert!((cosine(&[1.0, 0.0], &[-1.0, 0.0]) + 1.0).abs() < 1e-7);
        let c = cosine(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert!(
            (c - 32.0 / (14f32.sqrt() * 77f32.sqrt())).abs() < 1e-6,
            "{c}"
        );
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 2.0]), 0.0);
    }

    #[test]
    fn mean_pairwise_cosine_averages_every_pair_once() {
        assert_eq!(mean_pairwise_cosine(&[]), None);
        assert_eq!(mean_pairwise_cosine(&[vec![1.0, 0.0]]), None);
        // Pairs: (x, x) = 1, (x, y) = 0, (x, y) = 0 → 1/3.
        let v = [vec![1.0, 0.0], vec![2.0, 0.0], vec![0.0, 1.0]];
        let mean = mean_pairwise_cosine(&v).unwrap();
        assert!((mean - 1.0 / 3.0).abs() < 1e-6, "{mean}");
    }

    #[test]
    fn text_similarity_ignores_case_punctuation_and_spacing() {
        assert_eq!(
            text_similarity("The answer is 42.", "the  ANSWER is 42"),
            1.0
        );
        assert_eq!(text_similarity("", ""), 1.0);
        assert_eq!(text_similarity("abc", "xyz"), 0.0);
        // "night" / "nacht": bigrams ni ig gh ht / na ac ch ht share one → 2·1 / 8.
        assert!((text_similarity("night", "nacht") - 0.25).abs() < 1e-6);
        let long = "First add 48 and 24 to get 72, so Natalia sold 72 clips in total.";
        let edited = "First add 48 and 24 to get 72; so Natalia sold 72 clips altogether.";
        let s = text_similarity(long, edited);
        assert!(s > 0.85 && s < 1.0, "{s}");
    }

    #[test]
    fn near_copy_fires_on_either_score() {
        let limits = CopyLimits::default();
        let same = [0.6, 0.8];
        let other = [0.8, -0.6];
        let by_text = near_copy(
            "The answer is 42.",
            "the answer is 42",
            &same,
            &other,
            limits,
        );
        assert!(by_text.is_copy && by_text.cosine.abs() < 1e-6);
        let by_vector = near_copy("Forty-two.", "The answer is 42.", &same, &same, limits);
        assert!(by_vector.is_copy && by_vector.text_similarity < 0.5);
        let fresh = near_copy("Forty-two.", "The answer is 42.", &same, &other, limits);
        assert!(!fresh.is_copy);
    }
}
