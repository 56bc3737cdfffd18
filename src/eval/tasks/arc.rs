//! ARC (AI2 Reasoning Challenge) multiple choice.
//!
//! A record: `id`, `question.stem`, `question.choices[{label, text}]`, `answerKey`. Labels are
//! usually letters but sometimes digits ("1".."4"); either way the options are shown as letters
//! A, B, … in file order and the gold is the letter at the position of `answerKey`'s label.
//! Prompt and extraction: [`super::choice`].

use anyhow::Context;
use serde_json::Value;

use super::{choice, record_id, text_field, Item};

/// An ARC-shaped record as an item (CommonsenseQA shares the shape).
pub fn item(record: &Value, position: usize) -> anyhow::Result<Item> {
    let stem = text_field(record, "/question/stem")?;
    let choices = record
        .pointer("/question/choices")
        .and_then(Value::as_array)
        .context("no array at `/question/choices`")?;
    let mut labels = Vec::with_capacity(choices.len());
    let mut options = Vec::with_capacity(choices.len());
    for choice in choices {
        labels.push(text_field(choice, "/label")?.trim().to_string());
        options.push(text_field(choice, "/text")?.to_string());
    }
    choice::check_options(&options)?;
    let key = text_field(record, "/answerKey")?.trim();
    let gold = labels
        .iter()
        .position(|label| label == key)
        .with_context(|| format!("`answerKey` {key:?} is none of the labels {labels:?}"))?;
    Ok(Item {
        id: record_id(record, "id", position),
        prompt: choice::prompt(stem, &options),
        gold: choice::letter(gold).to_string(),
        options,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::eval::tasks::{testdata, TaskKind};

    #[test]
    fn real_records_with_letter_and_digit_keys() {
        let items = TaskKind::Arc.load(testdata::ARC).unwrap();
        let golds: Vec<&str> = items.iter().map(|i| i.gold.as_str()).collect();
        assert_eq!(golds, ["C", "B", "C", "B", "D", "D"]);
        assert_eq!(items[0].id, "Mercury_7175875");
        assert_eq!(items[4].options[3], "dead organisms");
    }

    #[test]
    fn a_key_outside_the_labels_is_an_error() {
        let record = json!({"question": {"stem": "q", "choices": [
            {"label": "A", "text": "x"}, {"label": "B", "text": "y"}]}, "answerKey": "C"});
        let err = item(&record, 1).unwrap_err().to_string();
        assert!(err.contains("\"C\""), "{err}");
        let err = TaskKind::Arc.load("{\"question\": 1}\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 1"), "{err:#}");
    }
}
