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
//! user's prompt against another's answers. Every step is checked: the continued request must
//! repeat exactly the conversation that was answered, the ids must detokenise to the answer, and
//! the whole prompt must agree with the template's own rendering of the request (the same ids
//! before the answer and after it, the answer's span spelling the same text); on any doubt the
//! request goes as plain chat text.

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
    /// The template's own ids of `messages` (see [`Finished::canonical_ids`]).
    canonical_ids: Arc<Vec<u32>>,
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
    /// The ids the answer was generated from.
    pub prompt_ids: Arc<Vec<u32>>,
    /// The template's own tokenisation of `messages` (generation prompt included): the same text
    /// as `prompt_ids`, whose earlier answers may be the model's own, non-canonical ids.
    pub canonical_ids: Arc<Vec<u32>>,
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
        canonical_ids: f.canonical_ids,
        answer_ids: f.answer_ids,
        next_id: f.next_id,
    })
}

/// A prompt that continues an earlier answer token-exactly.
pub struct Continued {
    /// The ids to send.
    pub ids: Vec<u32>,
    /// The template's own tokenisation of the same conversation.
    pub canonical: Vec<u32>,
}

/// The prompt of `messages` as exact token ids, when it continues the answer `continues` was
/// handed back with: `messages` must repeat that conversation exactly, then the answer.
pub async fn prompt_ids(
    model: &Model,
    messages: &[ChatMessage],
    continues: Option<&Continuation>,
) -> Option<Continued> {
    let entry = continues?.get::<Pending>()?.0.clone().await?;
    let i = entry.messages.len();
    if messages.get(..i)? != entry.messages.as_slice() || messages.get(i)?.role != Role::Assistant {
        tracing::debug!("the request does not repeat the answered conversation; sending text");
        return None;
    }
    let content = &messages[i].content;
    let rest = content.trim_start().strip_prefix(entry.text.trim_start())?;
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
    let refused = |why: Refusal| tracing::debug!(?why, "continuation refused; sending text");
    // The whole prompt is checked against the template's own rendering of `messages`: it must
    // start with the template's ids of the earlier prompt (which the earlier prompt's ids spell,
    // checked when it was sent), end with the tail, and the answer's span between them must
    // spell the answer as the request has it.
    let span = canonical_answer_span(&canonical, &entry.canonical_ids, tail)
        .map_err(refused)
        .ok()?;
    let spelled = model.detokenize(span.to_vec(), false).await.ok()?;
    if spelled.trim_start() != content.trim_start() {
        refused(Refusal::AnswerRendersDifferently);
        return None;
    }
    let rest_ids = if rest.is_empty() {
        Vec::new()
    } else {
        tokenize_text(model, rest).await?
    };
    let ids = assemble(
        Parts {
            prompt_ids: &entry.prompt_ids,
            answer_ids: &entry.answer_ids,
            next_id: entry.next_id,
            rest_ids,
            rest_is_blank: rest.trim().is_empty(),
            tail,
        },
        refused,
    )?;
    Some(Continued { ids, canonical })
}

/// Why a request that continues an answer is sent as text after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// The template renders the earlier conversation differently inside the longer one.
    PromptDiffers,
    /// The template's tokens after the answer are not what the full rendering ends with.
    TailDiffers,
    /// The template changes the answer's text (trims it, drops parts of it).
    AnswerRendersDifferently,
    /// The first token after the answer would repeat the cached sequence's unfed last token.
    RepeatsUnfedToken,
}

/// The ids of the answer turn's content in the template's rendering `canonical`, between the
/// template's ids of the earlier prompt `earlier` (which `canonical` must start with) and the
/// template `tail` (which it must end with).
fn canonical_answer_span<'a>(
    canonical: &'a [u32],
    earlier: &[u32],
    tail: &[u32],
) -> Result<&'a [u32], Refusal> {
    let after = canonical
        .strip_prefix(earlier)
        .ok_or(Refusal::PromptDiffers)?;
    if tail.is_empty() {
        return Err(Refusal::TailDiffers);
    }
    after.strip_suffix(tail).ok_or(Refusal::TailDiffers)
}

/// What a continued prompt is built from.
struct Parts<'a> {
    /// The earlier request's prompt ids.
    prompt_ids: &'a [u32],
    /// The ids the model generated for its answer.
    answer_ids: &'a [u32],
    /// The unfed token the cached sequence ends with, if any.
    next_id: Option<u32>,
    /// The ids of text the request appends to the answer (the layout's newline).
    rest_ids: Vec<u32>,
    rest_is_blank: bool,
    /// The template's ids after the answer turn, generation prompt included.
    tail: &'a [u32],
}

/// The continued prompt: the earlier prompt's ids, the answer's own ids, the appended text's ids,
/// then the template's tail.
fn assemble(p: Parts, refused: impl Fn(Refusal)) -> Option<Vec<u32>> {
    let mut rest_ids = p.rest_ids;
    // The token after the answer must differ from the cached sequence's unfed last token (the
    // end-of-turn, or the extra token after a cut-off answer), or the engine would reuse that
    // token's empty KV slot. When the text that follows is only whitespace that starts with that
    // token (the loop's newline, often what the model wanted next), the whitespace is left out:
    // the turn then ends the canonical way.
    if let Some(next) = p.next_id {
        if rest_ids.first() == Some(&next) && p.rest_is_blank {
            rest_ids.clear();
        }
        if rest_ids.first().or(p.tail.first()) == Some(&next) {
            refused(Refusal::RepeatsUnfedToken);
            return None;
        }
    }
    let mut ids =
        Vec::with_capacity(p.prompt_ids.len() + p.answer_ids.len() + rest_ids.len() + p.tail.len());
    ids.extend_from_slice(p.prompt_ids);
    ids.extend_from_slice(p.answer_ids);
    ids.extend(rest_ids);
    ids.extend_from_slice(p.tail);
    Some(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    // A made-up vocabulary: 1 = <|im_start|>, 2 = <|im_end|>, 3 = "\n", 10.. = words.
    const PROMPT: &[u32] = &[1, 10, 3, 11, 2, 3, 1, 12, 3];
    const TAIL: &[u32] = &[2, 3, 1, 10, 3, 13, 2, 3, 1, 12, 3];

    fn parts<'a>(answer: &'a [u32], next: Option<u32>, rest: Vec<u32>, blank: bool) -> Parts<'a> {
        Parts {
            prompt_ids: PROMPT,
            answer_ids: answer,
            next_id: next,
            rest_ids: rest,
            rest_is_blank: blank,
            tail: TAIL,
        }
    }

    fn never(_: Refusal) {
        panic!("refused");
    }

    #[test]
    fn the_answer_span_lies_between_the_earlier_prompt_and_the_tail() {
        let canonical = [PROMPT, &[20, 21, 3], TAIL].concat();
        assert_eq!(
            canonical_answer_span(&canonical, PROMPT, TAIL),
            Ok(&[20, 21, 3][..])
        );
    }

    #[test]
    fn a_template_that_renders_the_earlier_turns_differently_is_refused() {
        // E.g. a template that drops earlier reasoning: the longer rendering no longer starts
        // with the prompt the answer was generated from.
        let mut canonical = [PROMPT, &[20, 21], TAIL].concat();
        canonical[3] = 99;
        assert_eq!(
            canonical_answer_span(&canonical, PROMPT, TAIL),
            Err(Refusal::PromptDiffers)
        );
    }

    #[test]
    fn a_tail_the_full_rendering_does_not_end_with_is_refused() {
        let canonical = [PROMPT, &[20, 21], &TAIL[..TAIL.len() - 1], &[77]].concat();
        assert_eq!(
            canonical_answer_span(&canonical, PROMPT, TAIL),
            Err(Refusal::TailDiffers)
        );
        assert_eq!(
            canonical_answer_span(&[PROMPT, &[20]].concat(), PROMPT, &[]),
            Err(Refusal::TailDiffers)
        );
    }

    #[test]
    fn the_prompt_is_the_earlier_prompt_the_answer_ids_the_rest_and_the_tail() {
        let ids = assemble(parts(&[20, 3, 3, 21], None, vec![3], true), never).unwrap();
        assert_eq!(ids, [PROMPT, &[20, 3, 3, 21], &[3], TAIL].concat());
    }

    #[test]
    fn a_blank_rest_starting_with_the_unfed_token_is_left_out() {
        // The answer was cut off with "\n" sampled but not fed; the layout's newline would
        // repeat it, so the turn ends the canonical way instead.
        let ids = assemble(parts(&[20, 21], Some(3), vec![3], true), never).unwrap();
        assert_eq!(ids, [PROMPT, &[20, 21], TAIL].concat());
    }

    #[test]
    fn repeating_the_unfed_token_is_refused() {
        let seen = std::cell::Cell::new(None);
        let refuse = |why| seen.set(Some(why));
        // A non-blank rest that starts with the unfed token.
        assert!(assemble(parts(&[20], Some(30), vec![30, 31], false), refuse).is_none());
        assert_eq!(seen.take(), Some(Refusal::RepeatsUnfedToken));
        // No rest, and the tail starts with the unfed end-of-turn token.
        assert!(assemble(parts(&[20], Some(2), vec![], true), refuse).is_none());
        assert_eq!(seen.take(), Some(Refusal::RepeatsUnfedToken));
    }
}
