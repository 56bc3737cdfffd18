//! CommonsenseQA multiple choice (five options A–E).
//!
//! The records have ARC's shape (`id`, `question.stem`, `question.choices[{label, text}]`,
//! `answerKey`, plus an unused `question.question_concept`), so they are read by
//! [`super::arc::item`]; prompt and extraction: [`super::choice`].

use serde_json::Value;

use super::Item;

/// A CommonsenseQA record as an item.
pub fn item(record: &Value, position: usize) -> anyhow::Result<Item> {
    super::arc::item(record, position)
}

#[cfg(test)]
mod tests {
    use crate::eval::tasks::{testdata, TaskKind};

    #[test]
    fn real_records_have_five_options() {
        let items = TaskKind::Commonsenseqa.load(testdata::CSQA).unwrap();
        assert_eq!(items[0].id, "1afa02df02c908a558b4036e80242fac");
        assert_eq!(items[0].options.len(), 5);
        assert_eq!(items[0].gold, "A");
        assert!(items[0].prompt.contains("\nE. new york\n"));
    }
}
