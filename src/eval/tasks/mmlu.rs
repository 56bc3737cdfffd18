//! MMLU-style multiple choice from CSV: any file of rows `question, A, B, C, D, answer` without a
//! header (the layout of the original MMLU release, one file per subject).
//!
//! The answer is the letter `A`–`D` (spaces and case ignored). Fields follow RFC 4180: a field in
//! double quotes may hold commas, newlines and doubled quotes (`""`). An item's id is its 1-based
//! row number. Prompt and extraction: [`super::choice`].

use anyhow::{bail, Context};

use super::{choice, Item};

/// Every row of an MMLU-style CSV file as an item.
pub fn load(text: &str) -> anyhow::Result<Vec<Item>> {
    parse_csv(text)?
        .into_iter()
        .enumerate()
        .map(|(index, row)| {
            item(&row)
                .with_context(|| format!("row {}", index + 1))
                .map(|mut item| {
                    item.id = (index + 1).to_string();
                    item
                })
        })
        .collect()
}

fn item(row: &[String]) -> anyhow::Result<Item> {
    let [question, a, b, c, d, answer] = row else {
        bail!(
            "{} fields, expected 6 (question, four options, answer letter)",
            row.len()
        );
    };
    let options = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    let gold = answer.trim().to_ascii_uppercase();
    if !matches!(gold.as_str(), "A" | "B" | "C" | "D") {
        bail!("answer {answer:?} is not a letter A-D");
    }
    Ok(Item {
        id: String::new(),
        prompt: choice::prompt(question, &options),
        gold,
        options,
    })
}

/// The rows of a CSV text (RFC 4180; `\n` or `\r\n` line ends; blank lines skipped).
fn parse_csv(text: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => end_row(&mut rows, &mut row, &mut field),
            (false, c) => field.push(c),
        }
    }
    if quoted {
        bail!("the file ends inside a quoted field");
    }
    end_row(&mut rows, &mut row, &mut field);
    Ok(rows)
}

fn end_row(rows: &mut Vec<Vec<String>>, row: &mut Vec<String>, field: &mut String) {
    row.push(std::mem::take(field));
    let row = std::mem::take(row);
    if !(row.len() == 1 && row[0].trim().is_empty()) {
        rows.push(row);
    }
}

#[cfg(test)]
mod tests {
    use crate::eval::tasks::TaskKind;

    /// Rows in the original MMLU layout (abstract algebra and a hand-written row with quoting).
    const SAMPLE: &str = "\"Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\",0,4,2,6,B\r\n\
\"Which of these, \"\"if any\"\", is prime?\",4,\"6, or\nmore\",7,9, c \n\n";

    #[test]
    fn rows_with_quotes_commas_and_newlines() {
        let items = TaskKind::Mmlu.load(SAMPLE).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].options, ["0", "4", "2", "6"]);
        assert_eq!((items[0].id.as_str(), items[0].gold.as_str()), ("1", "B"));
        assert!(items[0].prompt.starts_with("Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\n\nA. 0\nB. 4\n"));
        assert!(items[1]
            .prompt
            .starts_with("Which of these, \"if any\", is prime?"));
        assert_eq!(items[1].options[1], "6, or\nmore");
        assert_eq!(items[1].gold, "C");
        assert_eq!(
            TaskKind::Mmlu.extract(&items[1], "The answer is (C)."),
            Some("C".into())
        );
    }

    #[test]
    fn malformed_rows_are_named() {
        let err = TaskKind::Mmlu.load("q,a,b,c,d,A\nq,a,b,c,E\n").unwrap_err();
        assert!(format!("{err:#}").contains("row 2"), "{err:#}");
        assert!(TaskKind::Mmlu.load("q,a,b,c,d,E\n").is_err());
        assert!(TaskKind::Mmlu.load("\"open,a,b,c,d,A\n").is_err());
    }
}
