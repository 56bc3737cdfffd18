//! [`FakeEngine`]: a scripted engine for tests of the HTTP layer and the refinement loop. It
//! answers round k of a conversation (k = assistant turns already in the prompt, plus one) with
//! the k-th scripted reply, one word per token, so tests can force any round pattern
//! (convergence, growing answers) and watch cancellation through its counters.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{
    ChatMessage, Continuation, Engine, EngineError, EngineEvent, EngineStats, EventStream, Finish,
    FinishReason, GenerationRequest, Role, StatsSnapshot,
};

/// A scripted engine. Cloning shares the counters.
#[derive(Clone)]
pub struct FakeEngine {
    id: String,
    context: u32,
    replies: Vec<String>,
    token_delay: Duration,
    /// Fail round `.0` after `.1` tokens.
    fail_at: Option<(usize, usize)>,
    stats: Arc<EngineStats>,
    generations: Arc<AtomicU64>,
    tokens: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
}

impl FakeEngine {
    /// A fake model that always answers with `reply`.
    pub fn new(id: &str, reply: &str) -> Self {
        Self::scripted(id, &[reply])
    }

    /// A fake model answering round k with `replies[k-1]` (the last one repeats).
    pub fn scripted(id: &str, replies: &[&str]) -> Self {
        assert!(!replies.is_empty(), "a scripted engine needs a reply");
        Self {
            id: id.to_string(),
            context: 4096,
            replies: replies.iter().map(|r| r.to_string()).collect(),
            token_delay: Duration::ZERO,
            fail_at: None,
            stats: Arc::new(EngineStats::default()),
            generations: Arc::new(AtomicU64::new(0)),
            tokens: Arc::new(AtomicU64::new(0)),
            dead: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sets the context length reported to the server.
    pub fn with_context(mut self, tokens: u32) -> Self {
        self.context = tokens;
        self
    }

    /// Waits this long before each token, so tests can disconnect mid-stream.
    pub fn with_token_delay(mut self, delay: Duration) -> Self {
        self.token_delay = delay;
        self
    }

    /// Makes round `round` (1-based) fail with an engine error after `tokens` tokens, as an
    /// engine fault in the middle of a stream would.
    pub fn failing_at(mut self, round: usize, tokens: usize) -> Self {
        self.fail_at = Some((round, tokens));
        self
    }

    /// Makes the engine die, as a crashed engine thread would: it reports itself dead and
    /// every new generation fails.
    pub fn kill(&self) {
        self.dead.store(true, Ordering::Relaxed);
    }

    /// Generations started so far (one per round).
    pub fn generations(&self) -> u64 {
        self.generations.load(Ordering::Relaxed)
    }

    /// Tokens produced so far, over all generations.
    pub fn tokens_generated(&self) -> u64 {
        self.tokens.load(Ordering::Relaxed)
    }

    /// The round a conversation asks for: assistant turns already in it, plus one.
    fn round_of(messages: &[ChatMessage]) -> usize {
        messages
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .count()
            + 1
    }

    fn reply_for(&self, messages: &[ChatMessage]) -> &str {
        let round = Self::round_of(messages);
        &self.replies[(round - 1).min(self.replies.len() - 1)]
    }
}

/// The continuation a fake generation hands back: the conversation and the answer it wrote.
struct FakeAnswer {
    messages: Vec<ChatMessage>,
    text: String,
}

impl FakeAnswer {
    /// Whether `messages` repeat this conversation and then this answer.
    fn continued_by(&self, messages: &[ChatMessage]) -> bool {
        let n = self.messages.len();
        messages.get(..n) == Some(self.messages.as_slice())
            && messages
                .get(n)
                .is_some_and(|m| m.role == Role::Assistant && m.content.starts_with(&self.text))
    }
}

/// Whitespace-separated words, each keeping its leading space: one "token" each.
fn words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, w) in text.split(' ').enumerate() {
        out.push(if i == 0 {
            w.to_string()
        } else {
            format!(" {w}")
        });
    }
    out.retain(|w| !w.is_empty());
    out
}

fn count_tokens(messages: &[ChatMessage]) -> u32 {
    messages
        .iter()
        .map(|m| words(&m.content).len() as u32 + 3)
        .sum::<u32>()
        + 1
}

/// Counts the sequence as released when the stream ends or is dropped.
struct Release(Arc<EngineStats>, bool);

impl Drop for Release {
    fn drop(&mut self) {
        if !self.1 {
            self.0.sequence_cancelled();
        }
        self.0.sequence_released();
    }
}

#[async_trait::async_trait]
impl Engine for FakeEngine {
    fn model_id(&self) -> &str {
        &self.id
    }

    fn context_length(&self) -> u32 {
        self.context
    }

    fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::Relaxed)
    }

    async fn count_prompt_tokens(&self, messages: &[ChatMessage]) -> Result<u32, EngineError> {
        Ok(count_tokens(messages))
    }

    async fn generate(&self, request: GenerationRequest) -> Result<EventStream, EngineError> {
        if !self.is_alive() {
            return Err(EngineError::Internal("the fake engine was killed".into()));
        }
        let prompt_tokens = count_tokens(&request.messages);
        if prompt_tokens >= self.context {
            return Err(EngineError::ContextLength {
                prompt_tokens,
                context: self.context,
            });
        }
        self.generations.fetch_add(1, Ordering::Relaxed);
        // Counted like the real engine's token-exact continuations: a request that carries the
        // continuation of the very answer it repeats.
        if request
            .continues
            .as_ref()
            .and_then(|c| c.get::<FakeAnswer>())
            .is_some_and(|a| a.continued_by(&request.messages))
        {
            self.stats.continued();
        }
        self.stats.sequence_started();
        let mut reply = self.reply_for(&request.messages).to_string();
        if let Some(cut) = request
            .sampling
            .stop
            .iter()
            .filter_map(|s| reply.find(s.as_str()))
            .min()
        {
            reply.truncate(cut);
        }
        let all = words(&reply);
        let max = request.sampling.max_tokens as usize;
        let reason = if all.len() > max {
            FinishReason::Length
        } else {
            FinishReason::Stop
        };
        let toks: Vec<String> = all.into_iter().take(max).collect();
        let continuation = Continuation::new(FakeAnswer {
            messages: request.messages.clone(),
            text: toks.concat(),
        });
        let delay = self.token_delay;
        let fail_after = self
            .fail_at
            .filter(|&(round, _)| round == Self::round_of(&request.messages))
            .map(|(_, tokens)| tokens);
        let counter = self.tokens.clone();
        let mut release = Release(self.stats.clone(), false);
        Ok(Box::pin(async_stream::stream! {
            let n = toks.len() as u32;
            for (i, t) in toks.into_iter().enumerate() {
                if fail_after == Some(i) {
                    release.1 = true; // failed, not cancelled by its consumer
                    yield Err(EngineError::Internal("the fake engine failed as scripted".into()));
                    drop(release);
                    return;
                }
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                counter.fetch_add(1, Ordering::Relaxed);
                yield Ok(EngineEvent::Delta(t));
            }
            release.1 = true;
            let continuation = Some(continuation);
            yield Ok(EngineEvent::Finished(Finish { reason, prompt_tokens, completion_tokens: n, continuation }));
            drop(release);
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn answers_each_round_from_its_script_and_honours_max_tokens() {
        let e = FakeEngine::scripted("f", &["one two", "three four five"]);
        let first = vec![ChatMessage::new(Role::User, "q")];
        let events: Vec<_> = e
            .generate(GenerationRequest::greedy(first.clone(), 10))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(events[0], Ok(EngineEvent::Delta("one".into())));
        assert_eq!(events[1], Ok(EngineEvent::Delta(" two".into())));
        let mut second = first;
        second.push(ChatMessage::new(Role::Assistant, "one two"));
        second.push(ChatMessage::new(Role::User, "again"));
        let events: Vec<_> = e
            .generate(GenerationRequest::greedy(second, 2))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(events.len(), 3);
        assert!(matches!(
            events[2],
            Ok(EngineEvent::Finished(Finish {
                reason: FinishReason::Length,
                completion_tokens: 2,
                ..
            }))
        ));
        assert_eq!(e.generations(), 2);
        assert_eq!(e.stats().active_sequences, 0);
    }
}
