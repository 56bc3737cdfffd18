//! The strong model's prompt: a short system turn, in-context examples of "earlier attempts →
//! better final answer" (a default set ships in `icl_examples.json`; a job may bring its own
//! file of the same shape), then the query with the weak model's thoughts.

use serde::Deserialize;

use crate::engine::{ChatMessage, Role};

/// One in-context example.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IclExample {
    pub question: String,
    pub attempts: Vec<String>,
    pub answer: String,
}

const SYSTEM: &str =
    "You are shown a question and earlier attempts at answering it. Write the best \
final answer to the question: correct, complete, precise and professional. Fix the attempts' \
mistakes. Write only the answer, without mentioning the attempts.";

/// The built-in examples.
pub fn default_examples() -> Vec<IclExample> {
    serde_json::from_str(include_str!("icl_examples.json"))
        .expect("the built-in ICL examples parse: this is a bug")
}

/// Parses a file of examples (a JSON array, or JSONL).
pub fn parse_examples(content: &[u8]) -> Result<Vec<IclExample>, String> {
    let text = std::str::from_utf8(content).map_err(|e| format!("not UTF-8: {e}"))?;
    let examples: Vec<IclExample> = if text.trim_start().starts_with('[') {
        serde_json::from_str(text)
            .map_err(|e| format!("not a JSON array of {{question, attempts, answer}}: {e}"))?
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect::<Result<_, _>>()?
    };
    if examples.is_empty() {
        return Err("no examples".into());
    }
    Ok(examples)
}

fn query_turn(question: &str, attempts: &[&str]) -> String {
    let mut s = format!("Question:\n{question}\n\nEarlier attempts:\n");
    for (i, a) in attempts.iter().enumerate() {
        s.push_str(&format!("[Attempt {}]\n{}\n\n", i + 1, a.trim()));
    }
    s.push_str("Write the final answer.");
    s
}

/// The strong model's conversation for `question` with the weak `thoughts`.
pub fn strong_messages(
    examples: &[IclExample],
    question: &str,
    thoughts: &[&str],
) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::new(Role::System, SYSTEM)];
    for ex in examples {
        let attempts: Vec<&str> = ex.attempts.iter().map(String::as_str).collect();
        messages.push(ChatMessage::new(
            Role::User,
            query_turn(&ex.question, &attempts),
        ));
        messages.push(ChatMessage::new(Role::Assistant, ex.answer.clone()));
    }
    messages.push(ChatMessage::new(Role::User, query_turn(question, thoughts)));
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_come_before_the_query() {
        let ex = default_examples();
        assert_eq!(ex.len(), 3);
        let m = strong_messages(&ex[..1], "Q?", &["t1", "t2"]);
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].role, Role::System);
        assert!(
            m[3].content.contains("[Attempt 2]\nt2") && m[3].content.starts_with("Question:\nQ?")
        );
        assert!(parse_examples(b"[]").is_err());
        assert_eq!(
            parse_examples(include_str!("icl_examples.json").as_bytes()).unwrap(),
            ex
        );
    }
}
