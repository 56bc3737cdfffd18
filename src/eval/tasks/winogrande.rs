//! Winogrande: fill the blank `_` of a sentence with one of two options.
//!
//! A record: `qID` (optional), `sentence`, `option1`, `option2`, `answer` ("1" or "2"). The
//! question asks which option fills the blank; the options are shown as A (option1) and B
//! (option2), so the gold "1" becomes `A`. Prompt and extraction: [`super::choice`].

use serde_json::Value;

use super::{choice, record_id, text_field, Item};

/// A Winogrande record as an item.
pub fn item(record: &Value, position: usize) -> anyhow::Result<Item> {
    let sentence = text_field(record, "/sentence")?;
    let options = vec![
        text_field(record, "/option1")?.to_string(),
        text_field(record, "/option2")?.to_string(),
    ];
    let gold = match text_field(record, "/answer")?.trim() {
        "1" => "A",
        "2" => "B",
        other => anyhow::bail!("`answer` is {other:?}, not \"1\" or \"2\""),
    };
    let question =
        format!("Which option correctly fills the blank (_) in this sentence?\n\n{sentence}");
    Ok(Item {
        id: record_id(record, "qID", position),
        prompt: choice::prompt(&question, &options),
        gold: gold.to_string(),
        options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::tasks::{testdata, TaskKind};

    #[test]
    fn real_records() {
        let items = TaskKind::Winogrande.load(testdata::WINOGRANDE).unwrap();
        assert_eq!(items[0].id, "3FCO4VKOZ4BJQ6IFC0VAIBK4KTWE7U-2");
        assert_eq!((items[0].gold.as_str(), items[1].gold.as_str()), ("B", "A"));
        assert!(items[0]
            .prompt
            .contains("so _ always got the easier cases.\n\nA. Sarah\nB. Maria\n"));
        // Naming the person, with the other one not mentioned, is read as that option.
        assert_eq!(
            TaskKind::Winogrande.extract(&items[0], "Maria."),
            Some("B".into())
        );
        // A restatement naming both is no answer.
        let both = "Sarah was a better surgeon than Maria.";
        assert_eq!(TaskKind::Winogrande.extract(&items[0], both), None);
    }

    #[test]
    fn an_answer_other_than_1_or_2_is_an_error() {
        let record =
            serde_json::json!({"sentence": "_", "option1": "a", "option2": "b", "answer": "3"});
        assert!(item(&record, 1).is_err());
    }
}
