//! What the non-streaming and streaming forms of a chat completion share: the completion's
//! identity, the system fingerprint, and how earlier rounds are shown inside
//! `reasoning_content` (a `[Round k]` header, the round's text, a blank line).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::refine::RoundRecord;

/// Identity shared by every chunk of one completion.
#[derive(Debug, Clone)]
pub struct CompletionMeta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl CompletionMeta {
    pub fn new(model: &str) -> Self {
        Self {
            id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: model.to_string(),
        }
    }
}

/// `system_fingerprint` of every response.
pub fn fingerprint() -> String {
    format!("ptr-server-{}", env!("CARGO_PKG_VERSION"))
}

/// The header that opens an earlier round inside `reasoning_content`.
pub fn round_header(round: u32) -> String {
    format!("[Round {round}]\n")
}

/// What closes an earlier round inside `reasoning_content`.
pub const ROUND_END: &str = "\n\n";

/// The earlier rounds, as `reasoning_content` shows them; `None` for a single round.
pub fn reasoning_of(rounds: &[RoundRecord]) -> Option<String> {
    let (_, earlier) = rounds.split_last()?;
    if earlier.is_empty() {
        return None;
    }
    Some(
        earlier
            .iter()
            .map(|r| format!("{}{}{ROUND_END}", round_header(r.round), r.content))
            .collect(),
    )
}
