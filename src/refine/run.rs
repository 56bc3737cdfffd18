//! [`Refiner`]: runs the rounds of one request and reports them as a stream of events, and to
//! an [`Observer`] (the server's metrics).

use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};

use super::observe::Observer;
use super::{same_answer, RefineEvent, RefinePlan, RefineSummary, RoundRecord, StopReason};
use crate::engine::{ChatMessage, Engine, EngineError, EngineEvent, GenerationRequest, Sampling};

/// Runs refinement rounds on one engine.
#[derive(Clone)]
pub struct Refiner {
    engine: Arc<dyn Engine>,
    observer: Arc<dyn Observer>,
}

impl Refiner {
    pub fn new(engine: Arc<dyn Engine>, observer: Arc<dyn Observer>) -> Self {
        Self { engine, observer }
    }

    /// Runs up to `plan.settings.rounds` rounds of `request`. The stream ends after `Completed` or
    /// `Failed`; dropping it early cancels the current round and skips the rest.
    pub fn run(
        self,
        request: GenerationRequest,
        plan: RefinePlan,
    ) -> impl Stream<Item = RefineEvent> + Send + 'static {
        async_stream::stream! {
            let started = Instant::now();
            let mut seen = self.observer.request(self.engine.model_id());
            let mut messages = request.messages.clone();
            let mut rounds: Vec<RoundRecord> = Vec::new();
            let mut used = 0u32;
            let mut stop = StopReason::RoundsDone;
            // What the previous round's generation handed back for this round to continue.
            let mut carried = None;
            for round in 1..=plan.settings.rounds {
                let (prompt_tokens, sampling) =
                    match self.next_round(&request.sampling, &plan, &mut messages, rounds.last(), used).await {
                        Ok(Ok(next)) => next,
                        Ok(Err(reason)) => { stop = reason; break; }
                        Err(e) => { seen.failed(); yield RefineEvent::Failed(e); return; }
                    };
                yield RefineEvent::RoundStarted { round, last: round == plan.settings.rounds };
                seen.round_started(round);
                let round_start = Instant::now();
                let gen = GenerationRequest {
                    messages: messages.clone(),
                    sampling,
                    will_continue: round < plan.settings.rounds,
                    continues: carried.take(),
                };
                let mut events = match self.engine.generate(gen).await {
                    Ok(s) => s,
                    Err(e) => { seen.failed(); yield RefineEvent::Failed(e); return; }
                };
                let mut content = String::new();
                let mut first_token: Option<Instant> = None;
                let mut last_token = round_start;
                let mut finish = None;
                while let Some(event) = events.next().await {
                    match event {
                        Ok(EngineEvent::Delta(text)) => {
                            let now = Instant::now();
                            match first_token {
                                None => {
                                    first_token = Some(now);
                                    if round == 1 {
                                        seen.first_token(now - started);
                                    }
                                }
                                Some(_) => seen.next_token(now - last_token),
                            }
                            last_token = now;
                            content.push_str(&text);
                            yield RefineEvent::Delta { round, text };
                        }
                        Ok(EngineEvent::Finished(f)) => { finish = Some(f); break; }
                        Err(e) => { seen.failed(); yield RefineEvent::Failed(e); return; }
                    }
                }
                let Some(finish) = finish else {
                    seen.failed();
                    yield RefineEvent::Failed(EngineError::Internal("the generation ended without a finish".into()));
                    return;
                };
                let record = RoundRecord {
                    round,
                    changed: rounds.last().is_none_or(|p| !same_answer(&p.content, &content)),
                    content,
                    finish_reason: finish.reason,
                    prompt_tokens: if finish.prompt_tokens > 0 { finish.prompt_tokens } else { prompt_tokens },
                    completion_tokens: finish.completion_tokens,
                    elapsed_ms: round_start.elapsed().as_millis() as u64,
                    ttft_ms: first_token.map(|t| (t - round_start).as_millis() as u64),
                };
                carried = finish.continuation;
                seen.round_completed(&record, round_start.elapsed());
                used += record.completion_tokens;
                let converged = plan.settings.early_stop && !record.changed;
                rounds.push(record.clone());
                yield RefineEvent::RoundCompleted(record);
                if round == plan.settings.rounds {
                    break;
                }
                if converged {
                    stop = StopReason::Converged;
                    break;
                }
                if plan.settings.max_total_tokens.is_some_and(|b| used >= b) {
                    stop = StopReason::Budget;
                    break;
                }
            }
            seen.completed(rounds.len(), started.elapsed(), stop);
            yield RefineEvent::Completed(RefineSummary { rounds, stop_reason: stop });
        }
    }

    /// The next round's prompt tokens and sampling, after `prev` (none before round 1): its
    /// answer and the instruction appended to `messages`, `max_tokens` cut to the context and
    /// the budget left. `Ok(Err(reason))` when the rounds stop here instead.
    async fn next_round(
        &self,
        sampling: &Sampling,
        plan: &RefinePlan,
        messages: &mut Vec<ChatMessage>,
        prev: Option<&RoundRecord>,
        used: u32,
    ) -> Result<Result<(u32, Sampling), StopReason>, EngineError> {
        let mut sampling = sampling.clone();
        let mut prompt_tokens = plan.first_prompt_tokens;
        if let Some(prev) = prev {
            if let Some(budget) = plan.settings.max_total_tokens {
                let remaining = budget.saturating_sub(used);
                if remaining == 0 || remaining < prev.completion_tokens {
                    return Ok(Err(StopReason::Budget));
                }
            }
            super::layout::push_round(messages, &prev.content, &plan.settings.instruction);
            prompt_tokens = self.engine.count_prompt_tokens(messages).await?;
            let context = self.engine.context_length();
            if prompt_tokens >= context {
                return Ok(Err(StopReason::Length));
            }
            sampling.max_tokens = sampling.max_tokens.min(context - prompt_tokens);
        }
        if let Some(budget) = plan.settings.max_total_tokens {
            sampling.max_tokens = sampling.max_tokens.min(budget.saturating_sub(used)).max(1);
        }
        Ok(Ok((prompt_tokens, sampling)))
    }
}
