//! GSM8K: grade-school maths word problems with a numeric answer.
//!
//! - **Prompt**: the question, a blank line, then [`INSTRUCTION`] (zero-shot).
//! - **Gold**: the first number after the last `####` of the record's `answer`.
//! - **Extraction**: the first number after the last "answer is" / "answer:" / "answer ="
//!   (case-insensitive) that has a number after it; without such a cue, the last number in the
//!   reply. A refined answer often restates earlier numbers, so the *last* conclusion counts.
//! - **Numbers** are compared after normalisation: thousands commas dropped (`1,234` → `1234`;
//!   a comma counts as a separator only before exactly three digits, so `1,2,3` is three
//!   numbers), a `$` or unit around the number is ignored, a trailing sentence period is not a
//!   decimal point, decimals lose trailing zeros (`18.00` → `18`, `0.50` → `0.5`), and a minus
//!   sign counts only when it is attached to the digits and not preceded by a letter, digit or
//!   `)` (`-5` is negative, `16-3` is a subtraction).

use anyhow::Context;
use serde_json::Value;

use super::{text_field, Item};

/// What follows the question in the user turn.
pub const INSTRUCTION: &str =
    "Solve the problem step by step. End your answer with \"The answer is\" followed by the final number.";

/// The phrases after which the answer's number is expected (matched on lower-cased text).
const CUES: [&str; 3] = ["answer is", "answer:", "answer ="];

/// A GSM8K record (`question`, `answer`) as an item.
pub fn item(record: &Value, position: usize) -> anyhow::Result<Item> {
    let question = text_field(record, "/question")?;
    let answer = text_field(record, "/answer")?;
    Ok(Item {
        id: super::record_id(record, "id", position),
        prompt: format!("{question}\n\n{INSTRUCTION}"),
        gold: gold(answer).context("`answer` has no number after `####`")?,
        options: Vec::new(),
    })
}

/// The gold number of a GSM8K solution: the first number after its last `####`.
pub fn gold(solution: &str) -> Option<String> {
    let (_, tail) = solution.rsplit_once("####")?;
    numbers(tail).into_iter().next().map(|(_, n)| n)
}

/// The number a reply gives as its answer (see the module docs), normalised.
pub fn extract(reply: &str) -> Option<String> {
    let found = numbers(reply);
    let lower = reply.to_ascii_lowercase();
    let mut cues: Vec<usize> = CUES
        .iter()
        .flat_map(|cue| lower.match_indices(cue).map(|(at, c)| at + c.len()))
        .collect();
    cues.sort_unstable();
    cues.iter()
        .rev()
        .find_map(|&end| found.iter().find(|(at, _)| *at >= end))
        .or(found.last())
        .map(|(_, n)| n.clone())
}

/// Every number in `text`, in order, with the byte offset where it starts.
fn numbers(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let digit = |i: usize| chars.get(i).is_some_and(|(_, c)| c.is_ascii_digit());
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !digit(i) {
            i += 1;
            continue;
        }
        let start = i;
        let mut whole = String::new();
        while digit(i) {
            whole.push(chars[i].1);
            i += 1;
            let group = (i + 1..i + 4).all(digit) && !digit(i + 4);
            if chars.get(i).is_some_and(|(_, c)| *c == ',') && group {
                i += 1;
            }
        }
        let mut fraction = String::new();
        if chars.get(i).is_some_and(|(_, c)| *c == '.') && digit(i + 1) {
            i += 1;
            while digit(i) {
                fraction.push(chars[i].1);
                i += 1;
            }
        }
        let negative = start >= 1
            && matches!(chars[start - 1].1, '-' | '−')
            && (start < 2 || !(chars[start - 2].1.is_alphanumeric() || chars[start - 2].1 == ')'));
        let at = if negative {
            chars[start - 1].0
        } else {
            chars[start].0
        };
        found.push((at, normalise(&whole, &fraction, negative)));
    }
    found
}

/// `whole.fraction`, without leading zeros, trailing fraction zeros or a negative zero.
fn normalise(whole: &str, fraction: &str, negative: bool) -> String {
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = fraction.trim_end_matches('0');
    let mut n = String::new();
    if negative && (whole != "0" || !fraction.is_empty()) {
        n.push('-');
    }
    n.push_str(whole);
    if !fraction.is_empty() {
        n.push('.');
        n.push_str(fraction);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::tasks::{testdata, TaskKind};

    fn x(reply: &str) -> Option<String> {
        extract(reply)
    }

    #[test]
    fn real_records_load_with_their_gold_numbers() {
        let items = TaskKind::Gsm8k.load(testdata::GSM8K).unwrap();
        let golds: Vec<&str> = items.iter().map(|i| i.gold.as_str()).collect();
        assert_eq!(golds, ["18", "3", "70000", "540", "20"]);
        assert_eq!(items[0].id, "1");
        assert!(items[0]
            .prompt
            .starts_with("Janet\u{2019}s ducks lay 16 eggs"));
        assert!(items[0].prompt.ends_with(INSTRUCTION));
    }

    #[test]
    fn real_solutions_scored_as_replies_give_their_gold() {
        // A gold solution read as a model reply: its last number is the `####` answer.
        for line in testdata::GSM8K.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let solution = record["answer"].as_str().unwrap();
            assert_eq!(extract(solution), gold(solution), "{solution}");
        }
    }

    #[test]
    fn gold_with_commas_and_signs() {
        assert_eq!(gold("so 2,125 in all\n#### 2,125").as_deref(), Some("2125"));
        assert_eq!(gold("#### 1,450,000").as_deref(), Some("1450000"));
        assert_eq!(gold("#### -3").as_deref(), Some("-3"));
        assert_eq!(gold("no marker 18"), None);
    }

    #[test]
    fn the_number_after_the_last_cue_wins() {
        let refined = "First 16 - 3 - 4 = 9 eggs. The answer is 9.\n\
            Wait: she sells them at $2 each, so 9 * 2 = 18. The answer is $18.";
        assert_eq!(x(refined).as_deref(), Some("18"));
        assert_eq!(
            x("The answer is 18 dollars per day, from 9 eggs.").as_deref(),
            Some("18")
        );
        assert_eq!(x("**Answer:** 42").as_deref(), Some("42"));
        assert_eq!(
            x("The final answer is: $\\boxed{1,234.50}$").as_deref(),
            Some("1234.5")
        );
        assert_eq!(
            x("The answer is unclear, maybe 7 or 8").as_deref(),
            Some("7")
        );
    }

    #[test]
    fn without_a_cue_the_last_number() {
        assert_eq!(
            x("She has 3 apples and buys 4 more, 7 in all.").as_deref(),
            Some("7")
        );
        assert_eq!(x("Total: 12 + 8 = 20.").as_deref(), Some("20"));
        assert_eq!(x("no digits here"), None);
    }

    #[test]
    fn commas_units_decimals_and_periods() {
        assert_eq!(x("The answer is 70,000.").as_deref(), Some("70000"));
        assert_eq!(x("The answer is 3 bolts.").as_deref(), Some("3"));
        assert_eq!(x("The answer is 18.00").as_deref(), Some("18"));
        assert_eq!(x("The answer is 0.50 kg").as_deref(), Some("0.5"));
        assert_eq!(x("It costs $5.").as_deref(), Some("5"));
        assert_eq!(x("We get 50%.").as_deref(), Some("50"));
        assert_eq!(x("values 1,2,3").as_deref(), Some("3"));
        assert_eq!(x("about 12,5 units").as_deref(), Some("5"));
    }

    #[test]
    fn negative_numbers_but_not_subtractions() {
        assert_eq!(x("The answer is -5.").as_deref(), Some("-5"));
        assert_eq!(x("The answer is −12").as_deref(), Some("-12"));
        assert_eq!(x("16-3").as_deref(), Some("3"));
        assert_eq!(x("f(2)-3").as_deref(), Some("3"));
        assert_eq!(x("The answer is -0").as_deref(), Some("0"));
    }
}
