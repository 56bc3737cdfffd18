//! Convergence: two rounds "say the same" when they match after normalising whitespace and case.

/// Lower-cased, with runs of whitespace collapsed and ends trimmed.
fn normalise(text: &str) -> String {
    text.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether two answers are the same after normalisation.
pub fn same_answer(a: &str, b: &str) -> bool {
    normalise(a) == normalise(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_case_do_not_count() {
        assert!(same_answer("The answer is 4.", "  the ANSWER\n is   4. "));
        assert!(!same_answer("The answer is 4.", "The answer is 5."));
        assert!(!same_answer("ab", "a b"));
    }
}
