//! Letter extraction on real ARC, CommonsenseQA and Winogrande options and the nasty cases.

use super::*;
use crate::eval::tasks::{testdata, Item, TaskKind};

/// The first ARC test record: C ("Planetary days will become shorter.") is right.
fn planet() -> Item {
    TaskKind::Arc.load(testdata::ARC).unwrap().remove(0)
}

fn x(reply: &str) -> Option<char> {
    extract(reply, &planet().options)
}

#[test]
fn the_prompt_lists_lettered_options() {
    let item = planet();
    assert_eq!(item.gold, "C");
    assert!(item
        .prompt
        .contains("\n\nA. Planetary density will decrease.\nB. Planetary years"));
    assert!(item.prompt.ends_with(INSTRUCTION));
}

#[test]
fn letters_in_their_usual_forms() {
    assert_eq!(x("(B)"), Some('B'));
    assert_eq!(x("B)"), Some('B'));
    assert_eq!(x("B"), Some('B'));
    assert_eq!(x("Answer: B"), Some('B'));
    assert_eq!(x("**Answer:** (D)"), Some('D'));
    assert_eq!(x("The answer is (C)."), Some('C'));
    assert_eq!(
        x("The correct answer is option C: planetary days get shorter."),
        Some('C')
    );
    assert_eq!(x("The answer is (c)"), Some('C'));
    assert_eq!(
        x("C. Planetary days will become shorter, since it spins faster."),
        Some('C')
    );
    assert_eq!(x("I choose D because gravity depends on mass."), Some('D'));
}

#[test]
fn the_article_a_is_not_option_a() {
    // No letter at all: the article must not be read as A; the option text decides.
    assert_eq!(
        x("A faster spin means planetary days will become shorter."),
        Some('C')
    );
    assert_eq!(
        x("A planet that spins faster has shorter days, so the answer is C."),
        Some('C')
    );
    assert_eq!(x("The answer is A shorter day."), None);
    // The article is ambiguous with nothing else to go on.
    assert_eq!(x("A planet spins."), None);
    // …but an A that introduces option A's own text, or stands alone, is the letter.
    assert_eq!(x("A Planetary density will decrease."), Some('A'));
    assert_eq!(x("The answer is A."), Some('A'));
    assert_eq!(x("A"), Some('A'));
    assert_eq!(x("A) Planetary density"), Some('A'));
}

#[test]
fn two_letters_joined_are_ambiguous() {
    assert_eq!(x("(B) and (C)"), None);
    assert_eq!(x("The answer is (B) and (C)."), None);
    assert_eq!(x("The answer is B or C."), None);
    assert_eq!(x("The answer is B, C or D."), None);
    // A later, single conclusion settles an earlier ambiguous one.
    assert_eq!(
        x("Maybe (B) and (C). After more thought, the answer is (C)."),
        Some('C')
    );
}

#[test]
fn the_last_conclusion_wins_in_a_refined_answer() {
    let refined = "The answer is B.\n\nOn reflection, a faster rotation shortens the day. \
        The answer is C.";
    assert_eq!(x(refined), Some('C'));
}

#[test]
fn marks_anywhere_must_agree() {
    assert_eq!(x("I think (C) fits best."), Some('C'));
    assert_eq!(x("Between option B and option C, days get shorter."), None);
    let listed = "A. Planetary density will decrease.\nB. Planetary years will become longer.";
    assert_eq!(x(listed), None);
}

#[test]
fn option_text_without_a_letter() {
    assert_eq!(x("Planetary days will become shorter."), Some('C'));
    assert_eq!(x("I do not know."), None);
    let csqa = TaskKind::Commonsenseqa.load(testdata::CSQA).unwrap();
    // "bank" is option A of the first CommonsenseQA record.
    assert_eq!(
        extract("It would be at a bank.", &csqa[0].options),
        Some('A')
    );
    let nested = ["bank".to_string(), "bank account".to_string()];
    assert_eq!(extract("Open a bank account.", &nested), Some('B'));
}

#[test]
fn letters_beyond_the_options_are_ignored() {
    let two = ["Sarah".to_string(), "Maria".to_string()];
    assert_eq!(extract("The answer is C.", &two), None);
    assert_eq!(extract("The answer is B.", &two), Some('B'));
}

#[test]
fn digit_keys_become_letters() {
    let items = TaskKind::Arc.load(testdata::ARC).unwrap();
    let digit = items
        .iter()
        .find(|i| i.id == "NYSEDREGENTS_2008_8_34")
        .unwrap();
    assert_eq!(digit.gold, "B");
    assert!(digit
        .prompt
        .contains("B. Kinetic energy increases and potential energy decreases."));
    let five = items.iter().find(|i| i.options.len() == 5).unwrap();
    assert_eq!(
        (five.gold.as_str(), extract("E", &five.options)),
        ("D", Some('E'))
    );
}

#[test]
fn extraction_scores_real_records_by_their_gold_text() {
    // Replying with the gold option's text scores right on every real multiple-choice record.
    for (kind, text) in [
        (TaskKind::Arc, testdata::ARC),
        (TaskKind::Commonsenseqa, testdata::CSQA),
        (TaskKind::Winogrande, testdata::WINOGRANDE),
    ] {
        for item in kind.load(text).unwrap() {
            let gold = (item.gold.as_bytes()[0] - b'A') as usize;
            let reply = format!("The answer is {}. {}", item.gold, item.options[gold]);
            assert_eq!(
                kind.extract(&item, &reply),
                Some(item.gold.clone()),
                "{reply}"
            );
        }
    }
}
