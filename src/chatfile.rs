//! OpenAI's chat training format, the hand-off between the dataset job and the trainer: one JSON
//! object per line, `{"messages": [{"role", "content", "weight"?}, …]}`. An assistant turn may
//! carry `weight` 0 (kept as context, no loss: a PTR thought) or 1; without it, it counts (1).
//! [`parse_line`] turns a line into [`WeightedTurn`]s; [`validate`] checks a whole file and names
//! the first bad line.

use serde::Deserialize;

use crate::engine::{ChatMessage, Role};
use crate::refine::layout::WeightedTurn;

/// A line; other fields OpenAI allows (`tools`, a message's `name`) are ignored.
#[derive(Deserialize)]
struct Line {
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: serde_json::Value,
    #[serde(default)]
    weight: Option<serde_json::Value>,
}

/// Parses one training line into turns. The error says what is wrong with it.
pub fn parse_line(line: &str) -> Result<Vec<WeightedTurn>, String> {
    let parsed: Line =
        serde_json::from_str(line).map_err(|e| format!("not a valid training line: {e}"))?;
    if parsed.messages.is_empty() {
        return Err("`messages` is empty".into());
    }
    let mut turns = Vec::with_capacity(parsed.messages.len());
    for (i, m) in parsed.messages.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(format!(
                    "messages[{i}].role `{other}` is not system, user or assistant"
                ))
            }
        };
        let content = match m.content {
            serde_json::Value::String(s) => s,
            _ => return Err(format!("messages[{i}].content must be a string")),
        };
        let weight = match (role, m.weight) {
            (Role::Assistant, None) => Some(1.0),
            (Role::Assistant, Some(w)) => match w.as_f64() {
                Some(x) if x == 0.0 || x == 1.0 => Some(x as f32),
                _ => return Err(format!("messages[{i}].weight must be 0 or 1, got {w}")),
            },
            (_, Some(_)) => {
                return Err(format!(
                    "messages[{i}].weight is only allowed on assistant messages"
                ))
            }
            (_, None) => None,
        };
        turns.push(WeightedTurn {
            message: ChatMessage::new(role, content),
            weight,
        });
    }
    if !turns.iter().any(|t| t.weight == Some(1.0)) {
        return Err("no assistant message with weight 1: nothing to learn from this line".into());
    }
    if turns.last().map(|t| t.message.role) != Some(Role::Assistant) {
        return Err("the last message must be the assistant's".into());
    }
    Ok(turns)
}

/// Renders turns as a training line (the inverse of [`parse_line`]).
pub fn to_line(turns: &[WeightedTurn]) -> serde_json::Value {
    let messages: Vec<_> = turns
        .iter()
        .map(|t| {
            let mut m =
                serde_json::json!({"role": t.message.role.as_str(), "content": t.message.content});
            if let (Role::Assistant, Some(w)) = (t.message.role, t.weight) {
                m["weight"] = serde_json::json!(w as u8);
            }
            m
        })
        .collect();
    serde_json::json!({ "messages": messages })
}

/// Checks a whole file; returns the number of lines, or the first bad line (1-based) and why.
pub fn validate(content: &[u8]) -> Result<usize, String> {
    let text = std::str::from_utf8(content).map_err(|e| format!("the file is not UTF-8: {e}"))?;
    let mut n = 0;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        parse_line(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        n += 1;
    }
    if n == 0 {
        return Err("the file has no training lines".into());
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ptr_line_round_trips() {
        let line = r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"t","weight":0},{"role":"user","content":"again"},{"role":"assistant","content":"a","weight":1}]}"#;
        let turns = parse_line(line).unwrap();
        assert_eq!(turns[1].weight, Some(0.0));
        assert_eq!(turns[3].weight, Some(1.0));
        assert_eq!(
            to_line(&turns),
            serde_json::from_str::<serde_json::Value>(line).unwrap()
        );
    }

    #[test]
    fn names_the_first_bad_line() {
        let good =
            r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a"}]}"#;
        let bad_weight = r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":0.5}]}"#;
        let all_zero = r#"{"messages":[{"role":"user","content":"q"},{"role":"assistant","content":"a","weight":0}]}"#;
        let user_weight = r#"{"messages":[{"role":"user","content":"q","weight":1},{"role":"assistant","content":"a"}]}"#;
        assert_eq!(validate(format!("{good}\n{good}\n").as_bytes()), Ok(2));
        let e = validate(format!("{good}\n{bad_weight}\n").as_bytes()).unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("weight"), "{e}");
        assert!(validate(all_zero.as_bytes())
            .unwrap_err()
            .contains("weight 1"));
        assert!(validate(user_weight.as_bytes())
            .unwrap_err()
            .contains("only allowed on assistant"));
        assert!(validate(b"{not json").unwrap_err().starts_with("line 1:"));
        assert!(validate(b"\n\n").is_err());
        assert!(
            validate(b"{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}")
                .unwrap_err()
                .contains("tool")
        );
    }
}
