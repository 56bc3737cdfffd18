//! Token-exact continuation of conversations this engine generated itself.
//!
//! A refinement round's prompt repeats the previous round's answer. Sent as chat text, mistral.rs
//! re-tokenises that answer, and a model's own token choices are often not the tokenizer's
//! canonical ones (measured on SmolLM2: it generated "\n","\n" (198, 198) where the text
//! re-tokenises to "\n\n" (1116)), so the prefix cache stops matching mid-answer and the rest is
//! prefilled again. For greedy requests the engine therefore keeps each finished answer's exact
//! token ids (the top-1 logprob ids, which greedy decoding samples) and hands them back with the
//! answer as a [`Continuation`]; the next round's request carries it back explicitly, and is sent
//! as token ids: the earlier prompt's ids, the answer's ids, then the template's tokens for the
//! turns that follow. Nothing is shared between requests: no global table, no matching of one
//! user's prompt against another's answers. Every step is checked (the continued request must
//! repeat exactly the conversation that was answered, the ids must detokenise to the answer, the
//! template tail must be what the full rendering ends with); on any doubt the request goes as
//! plain chat text.

use std::sync::Arc;

use either::Either;
use futures::future::{BoxFuture, Shared};
use futures::FutureExt;
use mistralrs::{Model, TextMessageRole, TextMessages};

use super::{ChatMessage, Continuation, Role};

/// A finished answer and the exact tokens behind it, checked.
struct Checked {
    /// The conversation the answer replied to.
    messages: Vec<ChatMessage>,
    text: String,
    prompt_ids: Arc<Vec<u32>>,
    answer_ids: Vec<u32>,
    /// The unfed token the cached sequence ends with, after a cut-off answer.
    next_id: Option<u32>,
}

/// The state behind a mistral.rs [`Continuation`]: the answer's check, running in the background
/// (the next round starts at once, and waits for it only when it builds its prompt).
struct Pending(Shared<BoxFuture<'static, Option<Arc<Checked>>>>);

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

/// A finished generation to continue, once checked.
pub struct Finished {
    pub messages: Vec<ChatMessage>,
    pub prompt_ids: Arc<Vec<u32>>,
    pub answer_ids: Vec<u32>,
    pub next_id: Option<u32>,
    pub text: String,
}

/// Starts checking a finished answer; the continuation resolves to it once checked.
pub fn continue_later(model: Arc<Model>, finished: Finished) -> Continuation {
    let task = tokio::spawn(async move { check(&model, finished).await.map(Arc::new) });
    Continuation::new(Pending(task.map(|r| r.ok().flatten()).boxed().shared()))
}

/// Checks that the ids really spell the answer.
async fn check(model: &Model, mut f: Finished) -> Option<Checked> {
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
    let spelled = model.detokenize(f.answer_ids.clone(), false).await.ok()?;
    // The engine trims the first delta's leading space; the ids keep it.
    if f.answer_ids.is_empty() || spelled.trim_start() != f.text.trim_start() {
        tracing::debug!(
            ids = f.answer_ids.len(),
            "answer ids do not spell the answer; not kept"
        );
        return None;
    }
    Some(Checked {
        messages: f.messages,
        text: f.text,
        prompt_ids: f.prompt_ids,
        answer_ids: f.answer_ids,
        next_id: f.next_id,
    })
}

/// The prompt of `messages` as exact token ids, when it continues the answer `continues` was
/// handed back with: `messages` must repeat that conversation exactly, then the answer.
pub async fn prompt_ids(
    model: &Model,
    messages: &[ChatMessage],
    continues: Option<&Continuation>,
) -> Option<Vec<u32>> {
    let entry = continues?.get::<Pending>()?.0.clone().await?;
    let i = entry.messages.len();
    if messages.get(..i)? != entry.messages.as_slice() || messages.get(i)?.role != Role::Assistant {
        tracing::debug!("the request does not repeat the answered conversation; sending text");
        return None;
    }
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
