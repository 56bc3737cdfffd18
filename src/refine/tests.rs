//! The round loop on the scripted engine: prompts, stop reasons, event order.

use std::sync::Arc;

use futures::StreamExt;

use super::*;
use crate::engine::fake::FakeEngine;
use crate::engine::{ChatMessage, Engine, GenerationRequest, Role};
use crate::metrics::Metrics;

fn plan(rounds: u32, early_stop: bool, budget: Option<u32>) -> RefinePlan {
    RefinePlan {
        settings: RefinementDefaults {
            rounds,
            instruction: DEFAULT_INSTRUCTION.into(),
            early_stop,
            max_total_tokens: budget,
        },
        first_prompt_tokens: 5,
    }
}

async fn run(
    engine: FakeEngine,
    plan: RefinePlan,
    max_tokens: u32,
) -> (Vec<RefineEvent>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let request = GenerationRequest::greedy(
        vec![ChatMessage::new(Role::User, "What is 2+2?")],
        max_tokens,
    );
    let events = Refiner::new(Arc::new(engine), metrics.clone())
        .run(request, plan)
        .collect()
        .await;
    (events, metrics)
}

fn summary(events: &[RefineEvent]) -> &RefineSummary {
    match events.last() {
        Some(RefineEvent::Completed(s)) => s,
        other => panic!("the last event is not Completed: {other:?}"),
    }
}

#[tokio::test]
async fn runs_every_round_in_order_with_the_instruction_between() {
    let engine = FakeEngine::scripted("f", &["four", "it is four", "it is 4"]);
    let (events, metrics) = run(engine.clone(), plan(3, false, None), 16).await;
    let s = summary(&events);
    assert_eq!(s.stop_reason, StopReason::RoundsDone);
    let contents: Vec<_> = s.rounds.iter().map(|r| r.content.as_str()).collect();
    assert_eq!(contents, ["four", "it is four", "it is 4"]);
    assert_eq!(engine.generations(), 3);
    let started: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            RefineEvent::RoundStarted { round, last } => Some((*round, *last)),
            _ => None,
        })
        .collect();
    assert_eq!(started, [(1, false), (2, false), (3, true)]);
    assert_eq!(s.completion_tokens(), 1 + 3 + 3);
    assert!(s.rounds.iter().all(|r| r.changed));
    assert!(metrics
        .render()
        .contains("ptr_rounds_started_total{model=\"f\",round=\"3\"} 1"));
}

#[tokio::test]
async fn stops_when_a_round_repeats_with_early_stop() {
    let engine = FakeEngine::scripted("f", &["four", "Four ", "five"]);
    let (events, metrics) = run(engine.clone(), plan(3, true, None), 16).await;
    let s = summary(&events);
    assert_eq!(s.stop_reason, StopReason::Converged);
    assert_eq!(s.rounds.len(), 2);
    assert!(!s.rounds[1].changed);
    assert_eq!(engine.generations(), 2);
    assert!(metrics
        .render()
        .contains("ptr_early_stops_total{model=\"f\",reason=\"converged\"} 1"));
}

#[tokio::test]
async fn repeats_do_not_stop_without_early_stop() {
    let engine = FakeEngine::scripted("f", &["four", "four", "four"]);
    let (events, _) = run(engine, plan(3, false, None), 16).await;
    assert_eq!(summary(&events).rounds.len(), 3);
}

#[tokio::test]
async fn stops_on_the_token_budget() {
    let engine = FakeEngine::scripted("f", &["a b c d e f", "a b c d e f g", "x"]);
    let (events, _) = run(engine.clone(), plan(3, false, Some(10)), 16).await;
    let s = summary(&events);
    assert_eq!(s.stop_reason, StopReason::Budget);
    assert_eq!(
        s.rounds.len(),
        1,
        "6 used, 4 left < the 6 the last round took"
    );
    assert!(s.completion_tokens() <= 10);
}

#[tokio::test]
async fn a_round_cut_by_the_budget_ends_the_loop() {
    let engine = FakeEngine::scripted("f", &["a b", "c d e f g h i j k", "x"]);
    let (events, _) = run(engine, plan(3, false, Some(6)), 16).await;
    let s = summary(&events);
    assert_eq!(s.stop_reason, StopReason::Budget);
    assert_eq!(s.rounds.len(), 2);
    assert_eq!(s.rounds[1].completion_tokens, 4);
    assert_eq!(s.completion_tokens(), 6);
}

#[tokio::test]
async fn stops_when_the_next_prompt_outgrows_the_context() {
    let long = "w ".repeat(30);
    let engine = FakeEngine::scripted("f", &[long.as_str()]).with_context(40);
    let (events, _) = run(engine, plan(3, false, None), 35).await;
    let s = summary(&events);
    assert_eq!(s.stop_reason, StopReason::Length);
    assert_eq!(s.rounds.len(), 1);
}

#[tokio::test]
async fn dropping_the_stream_skips_the_remaining_rounds() {
    let engine = FakeEngine::scripted("f", &["a b c", "d e f", "g h i"]);
    let metrics = Arc::new(Metrics::new());
    let request = GenerationRequest::greedy(vec![ChatMessage::new(Role::User, "q")], 8);
    let mut events = Box::pin(
        Refiner::new(Arc::new(engine.clone()), metrics.clone()).run(request, plan(3, false, None)),
    );
    while let Some(e) = events.next().await {
        if matches!(e, RefineEvent::Delta { round: 2, .. }) {
            break;
        }
    }
    drop(events);
    assert_eq!(engine.generations(), 2);
    assert_eq!(engine.stats().active_sequences, 0);
    assert_eq!(engine.stats().cancelled_sequences, 1);
    assert_eq!(metrics.for_model("f").cancelled.get(), 1);
    assert_eq!(metrics.in_flight.get(), 0);
}

#[tokio::test]
async fn each_round_carries_its_own_previous_round_s_continuation() {
    let engine = FakeEngine::scripted("f", &["a b", "c d", "e f"]);
    let metrics = Arc::new(Metrics::new());
    let refiner = Refiner::new(Arc::new(engine.clone()), metrics);
    let ask = |q: &str| GenerationRequest::greedy(vec![ChatMessage::new(Role::User, q)], 8);
    // Two refinements at once, interleaved: each round 2 and 3 continues its own conversation.
    let (one, two): (Vec<_>, Vec<_>) = futures::join!(
        refiner
            .clone()
            .run(ask("one?"), plan(3, false, None))
            .collect(),
        refiner.run(ask("two?"), plan(3, false, None)).collect()
    );
    assert_eq!(summary(&one).rounds.len(), 3);
    assert_eq!(summary(&two).rounds.len(), 3);
    assert_eq!(engine.generations(), 6);
    assert_eq!(engine.stats().token_continuations, 4);
}

#[test]
fn a_plan_takes_what_the_request_sets_else_the_models_capped_defaults() {
    use crate::refine::PlanAsk;
    use crate::registry::RefinementDefaults;
    let defaults = RefinementDefaults {
        rounds: 12,
        instruction: "again".into(),
        early_stop: true,
        max_total_tokens: Some(99),
    };
    let plan = RefinePlan::resolve(PlanAsk::default(), defaults.clone(), 8, 5);
    assert_eq!(
        (
            plan.settings.rounds,
            plan.settings.instruction.as_str(),
            plan.settings.early_stop,
            plan.settings.max_total_tokens
        ),
        (8, "again", true, Some(99)),
        "the model's defaults, its rounds capped by the server"
    );
    assert_eq!(plan.first_prompt_tokens, 5);
    let asked = PlanAsk {
        rounds: Some(2),
        instruction: Some("more".into()),
        early_stop: Some(false),
        max_total_tokens: Some(7),
    };
    let plan = RefinePlan::resolve(asked, defaults, 8, 5);
    assert_eq!(
        (
            plan.settings.rounds,
            plan.settings.instruction.as_str(),
            plan.settings.early_stop,
            plan.settings.max_total_tokens
        ),
        (2, "more", false, Some(7))
    );
}
