//! Token-exact continuation of conversations this engine generated itself.
//!
//! A refinement round's prompt repeats the previous round's answer. Sent as chat text, mistral.rs
//! re-tokenises that answer, and a model's own token choices are often not the tokenizer's
//! canonical ones (measured on SmolLM2: it generated "\n","\n" (198, 198) where the text
//! re-tokenises to "\n\n" (1116)), so the prefix cache stops matching mid-answer and the rest is
//! prefilled again. For greedy requests the engine therefore remembers each finished answer's
//! exact token ids (the top-1 logprob ids, which greedy decoding samples) and, when a later
//! request continues that conversation, sends the prompt as token ids: the earlier prompt's ids,
//! the answer's ids, then the template's tokens for the turns that follow. Every step is checked
//! (the ids must detokenise to the answer, the template tail must be what the full rendering
//! ends with); on any doubt the request goes as plain chat text, exactly as before.

use std::collections::hash_map::DefaultHasher;
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use either::Either;
use mistralrs::{Model, TextMessageRole, TextMessages};

use super::{ChatMessage, Role};

/// How many finished answers are remembered.
const CAPACITY: usize = 64;

/// A finished answer and the exact tokens behind it.
#[derive(Clone)]
struct Entry {
    key: u64,
    text: String,
    prompt_ids: Arc<Vec<u32>>,
    answer_ids: Arc<Vec<u32>>,
    /// The unfed token the cached sequence ends with, after a cut-off answer.
    next_id: Option<u32>,
}

/// The remembered answers (a small FIFO).
#[derive(Default)]
pub struct Continuations {
    entries: Mutex<VecDeque<Entry>>,
    /// Answers still being checked; a lookup waits for them (the next round starts at once).
    checking: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn key(messages: &[ChatMessage], answer: &str) -> u64 {
    let mut h = DefaultHasher::new();
    for m in messages {
        (m.role as u8).hash(&mut h);
        m.content.hash(&mut h);
    }
    answer.hash(&mut h);
    h.finish()
}

/// The messages in mistral.rs's form.
pub fn text_messages(messages: &[ChatMessage]) -> TextMessages {
    messages.iter().fold(TextMessages::new(), |acc, m| {
        let role = match m.role {
            Role::System => TextMessageRole::System,
            Role::User => TextMessageRole::User,
            Role::Assistant => TextMessageRole::Assistant,
        };
        acc.add_message(role, &m.content)
    })
}

/// Chat-template token ids of `messages`, generation prompt included, as the engine makes them.
pub async fn tokenize(model: &Model, messages: &[ChatMessage]) -> Result<Vec<u32>, String> {
    let text = Either::Left(text_messages(messages));
    model
        .tokenize(text, None, true, true, None)
        .await
        .map_err(|e| e.to_string())
}

async fn tokenize_text(model: &Model, text: &str) -> Option<Vec<u32>> {
    model
        .tokenize(Either::Right(text.to_string()), None, false, false, None)
        .await
        .ok()
}

/// A finished generation to remember, once checked.
pub struct Finished {
    pub messages: Vec<ChatMessage>,
    pub prompt_ids: Arc<Vec<u32>>,
    pub answer_ids: Vec<u32>,
    pub next_id: Option<u32>,
    pub text: String,
}

impl Continuations {
    /// Checks and remembers a finished answer in the background.
    pub fn remember_later(self: &Arc<Self>, model: Arc<Model>, f: Finished) {
        let me = self.clone();
        let task = tokio::spawn(async move { me.remember(&model, f).await });
        let mut checking = self
            .checking
            .lock()
            .expect("continuations lock poisoned: this is a bug");
        checking.retain(|t| !t.is_finished());
        checking.push(task);
    }

    /// Checks that the ids really spell the answer, then remembers them.
    async fn remember(&self, model: &Model, mut f: Finished) {
        // The end-of-turn token, if reported, is not part of the answer.
        if let Some(&last) = f.answer_ids.last() {
            let plain = model.detokenize(vec![last], true).await.unwrap_or_default();
            let raw = model
                .detokenize(vec![last], false)
                .await
                .unwrap_or_default();
            if plain.is_empty() && !raw.is_empty() {
                // The cached sequence ends in this unfed token: a continuation must not repeat it.
                f.answer_ids.pop();
                f.next_id = f.next_id.or(Some(last));
                tracing::debug!(id = last, "answer ended with an end-of-turn token");
            }
        }
        let Ok(spelled) = model.detokenize(f.answer_ids.clone(), false).await else {
            return;
        };
        // The engine trims the first delta's leading space; the ids keep it.
        if f.answer_ids.is_empty() || spelled.trim_start() != f.text.trim_start() {
            tracing::debug!(
                ids = f.answer_ids.len(),
                "answer ids do not spell the answer; not kept"
            );
            return;
        }
        let entry = Entry {
            key: key(&f.messages, &f.text),
            text: f.text,
            prompt_ids: f.prompt_ids,
            answer_ids: Arc::new(f.answer_ids),
            next_id: f.next_id,
        };
        let mut entries = self
            .entries
            .lock()
            .expect("continuations lock poisoned: this is a bug");
        entries.retain(|e| e.key != entry.key);
        if entries.len() == CAPACITY {
            entries.pop_front();
        }
        entries.push_back(entry);
    }

    fn find(&self, messages: &[ChatMessage]) -> Option<(usize, Entry)> {
        let entries = self
            .entries
            .lock()
            .expect("continuations lock poisoned: this is a bug");
        (0..messages.len())
            .rev()
            .filter(|&i| messages[i].role == Role::Assistant)
            .find_map(|i| {
                let content = messages[i].content.trim_start();
                entries.iter().rev().find_map(|e| {
                    let extends = content.starts_with(e.text.trim_start());
                    (extends && e.key == key(&messages[..i], &e.text)).then(|| (i, e.clone()))
                })
            })
    }

    /// The prompt of `messages` as exact token ids, when it continues a remembered answer.
    pub async fn prompt_ids(&self, model: &Model, messages: &[ChatMessage]) -> Option<Vec<u32>> {
        let pending = std::mem::take(
            &mut *self
                .checking
                .lock()
                .expect("continuations lock poisoned: this is a bug"),
        );
        for task in pending {
            let _ = task.await;
        }
        let (i, entry) = self.find(messages)?;
        let rest = messages[i]
            .content
            .trim_start()
            .strip_prefix(entry.text.trim_start())?;
        // The template's tokens after an answer: render a stand-in conversation with an empty
        // answer and keep what follows the stand-in's own prompt.
        let stand_in = vec![ChatMessage::new(Role::User, "x")];
        let mut with_tail = stand_in.clone();
        with_tail.push(ChatMessage::new(Role::Assistant, ""));
        with_tail.extend_from_slice(&messages[i + 1..]);
        let head = tokenize(model, &stand_in).await.ok()?;
        let full = tokenize(model, &with_tail).await.ok()?;
        let tail = full.strip_prefix(head.as_slice())?;
        let canonical = tokenize(model, messages).await.ok()?;
        if tail.is_empty() || !canonical.ends_with(tail) {
            tracing::debug!("the template tail does not match the full rendering; sending text");
            return None;
        }
        let mut rest_ids = if rest.is_empty() {
            Vec::new()
        } else {
            tokenize_text(model, rest).await?
        };
        // The token after the answer must differ from the cached sequence's unfed last token
        // (the end-of-turn, or the extra token after a cut-off answer), or the engine would
        // reuse that token's empty KV slot. When the text that follows is only whitespace that
        // starts with that token (the loop's newline, often what the model wanted next), the
        // whitespace is left out: the turn then ends the canonical way.
        if let Some(next) = entry.next_id {
            if rest_ids.first() == Some(&next) && rest.trim().is_empty() {
                rest_ids.clear();
            }
            if rest_ids.first().or(tail.first()) == Some(&next) {
                tracing::debug!("the next token repeats the cached unfed one; sending text");
                return None;
            }
        }
        let mut ids = Vec::with_capacity(
            entry.prompt_ids.len() + entry.answer_ids.len() + rest_ids.len() + tail.len(),
        );
        ids.extend_from_slice(&entry.prompt_ids);
        ids.extend_from_slice(&entry.answer_ids);
        ids.extend(rest_ids);
        ids.extend_from_slice(tail);
        Some(ids)
    }
}
