//! Chat completions and refinement streams on the scripted engine: response shapes, chunk
//! sequences, and the content/reasoning split across rounds.

use axum::http::StatusCode;
use ptr_server::engine::fake::FakeEngine;
use serde_json::{json, Value};

use crate::common::*;

fn body(rounds: u32, stream: bool, extra: Value) -> Value {
    let mut b = json!({
        "model": FAKE, "temperature": 0, "stream": stream,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}],
        "refinement": {"rounds": rounds},
        "stream_options": {"include_usage": true}
    });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// One chunk's round, reasoning delta and content delta.
type Part = (u64, Option<String>, Option<String>);

/// The parts of each chunk with a choice, and all parsed chunks.
fn split_stream(text: &str) -> (Vec<Part>, Vec<Value>) {
    let events = parse_sse(text);
    assert_eq!(events.last().unwrap().data, "[DONE]", "ends with [DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    let parts = chunks
        .iter()
        .filter(|c| !c["choices"].as_array().unwrap().is_empty())
        .map(|c| {
            let d = &c["choices"][0]["delta"];
            assert_eq!(
                d["reasoning"], d["reasoning_content"],
                "both reasoning fields agree"
            );
            (
                c["refinement"]["round"]
                    .as_u64()
                    .expect("every chunk names its round"),
                d["reasoning_content"].as_str().map(str::to_string),
                d["content"]
                    .as_str()
                    .map(str::to_string)
                    .filter(|s| !s.is_empty()),
            )
        })
        .collect();
    (parts, chunks)
}

#[tokio::test]
async fn a_plain_completion_has_the_openai_shape() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "It is four.")).await;
    let (status, _, text) = send(
        &app,
        post_json("/v1/chat/completions", &body(1, false, json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "It is four.");
    assert!(v["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["completion_tokens"], 3);
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(u["prompt_tokens"].as_u64().unwrap() + 3)
    );
    assert_eq!(v["refinement"]["rounds"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn three_rounds_non_streaming() {
    let (app, _) = fake_app(FakeEngine::scripted(
        FAKE,
        &["four", "It is four.", "2+2 = 4."],
    ))
    .await;
    let (status, _, text) = send(
        &app,
        post_json("/v1/chat/completions", &body(3, false, json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let rounds = v["refinement"]["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 3);
    assert_eq!(v["choices"][0]["message"]["content"], rounds[2]["content"]);
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        "[Round 1]\nfour\n\n[Round 2]\nIt is four.\n\n"
    );
    assert_eq!(v["refinement"]["stop_reason"], "rounds_done");
    for key in ["prompt_tokens", "completion_tokens"] {
        let sum: u64 = rounds.iter().map(|r| r[key].as_u64().unwrap()).sum();
        assert_eq!(v["usage"][key].as_u64(), Some(sum), "{key} sums the rounds");
    }
    for r in rounds {
        for key in [
            "round",
            "content",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
            "elapsed_ms",
            "changed",
        ] {
            assert!(r.get(key).is_some(), "round lacks {key}");
        }
    }
    assert!(
        rounds[1]["prompt_tokens"].as_u64() > rounds[0]["prompt_tokens"].as_u64(),
        "later rounds see earlier answers"
    );
}

#[tokio::test]
async fn three_rounds_streaming_puts_rounds_one_and_two_in_reasoning() {
    let (app, _) = fake_app(FakeEngine::scripted(
        FAKE,
        &["four", "It is four.", "2+2 = 4."],
    ))
    .await;
    let (status, headers, text) = send(
        &app,
        post_json("/v1/chat/completions", &body(3, true, json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (parts, chunks) = split_stream(&text);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let rounds: Vec<u64> = parts.iter().map(|p| p.0).collect();
    assert!(
        rounds.windows(2).all(|w| w[0] <= w[1]),
        "rounds in order: {rounds:?}"
    );
    let reasoning: String = parts.iter().filter_map(|p| p.1.clone()).collect();
    assert_eq!(reasoning, "[Round 1]\nfour\n\n[Round 2]\nIt is four.\n\n");
    assert!(
        parts.iter().filter(|p| p.2.is_some()).all(|p| p.0 == 3),
        "content only in round 3"
    );
    let content: String = parts.iter().filter_map(|p| p.2.clone()).collect();
    assert_eq!(content, "2+2 = 4.");
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = chunks.last().unwrap();
    assert!(usage["choices"].as_array().unwrap().is_empty());
    assert_eq!(usage["usage"]["completion_tokens"], 1 + 3 + 3);
}

#[tokio::test]
async fn an_early_stop_sends_the_answer_as_content_once_it_is_known() {
    let (app, _) = fake_app(FakeEngine::scripted(
        FAKE,
        &["It is four.", "it is  FOUR.", "never"],
    ))
    .await;
    let req = body(
        3,
        true,
        json!({"refinement": {"rounds": 3, "early_stop": true}}),
    );
    let (_, _, text) = send(&app, post_json("/v1/chat/completions", &req)).await;
    let (parts, _) = split_stream(&text);
    let content: Vec<_> = parts.iter().filter(|p| p.2.is_some()).collect();
    assert_eq!(
        content.len(),
        1,
        "one content delta, after the loop stopped: {parts:?}"
    );
    assert_eq!(content[0].2.as_deref(), Some("it is  FOUR."));
    let last_reasoning = parts.iter().rposition(|p| p.1.is_some()).unwrap();
    let first_content = parts.iter().position(|p| p.2.is_some()).unwrap();
    assert!(
        first_content > last_reasoning,
        "content never precedes reasoning"
    );
    let non_stream = body(
        3,
        false,
        json!({"refinement": {"rounds": 3, "early_stop": true}}),
    );
    let (_, _, text) = send(&app, post_json("/v1/chat/completions", &non_stream)).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["refinement"]["stop_reason"], "converged");
    assert_eq!(v["refinement"]["rounds"].as_array().unwrap().len(), 2);
    assert_eq!(v["choices"][0]["message"]["content"], "it is  FOUR.");
}

#[tokio::test]
async fn the_budget_stops_the_loop() {
    let (app, _) = fake_app(FakeEngine::scripted(FAKE, &["a b c d", "e f g h", "i"])).await;
    let req = body(
        3,
        false,
        json!({"refinement": {"rounds": 3, "max_total_tokens": 6}}),
    );
    let (_, _, text) = send(&app, post_json("/v1/chat/completions", &req)).await;
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["refinement"]["stop_reason"], "budget");
    assert_eq!(v["refinement"]["rounds"].as_array().unwrap().len(), 1);
    assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 6);
}

#[tokio::test]
async fn refinements_endpoint_emits_named_events_in_order() {
    let (app, _) = fake_app(FakeEngine::scripted(FAKE, &["four", "It is four."])).await;
    let (status, _, text) = send(
        &app,
        post_json("/v1/refinements", &body(2, false, json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let events = parse_sse(&text);
    let names: Vec<_> = events.iter().map(|e| e.event.clone().unwrap()).collect();
    let mut want = vec![
        "round.started".to_string(),
        "round.delta".into(),
        "round.completed".into(),
        "round.started".into(),
    ];
    want.extend(std::iter::repeat_n("round.delta".to_string(), 3));
    want.extend(["round.completed".to_string(), "refinement.completed".into()]);
    assert_eq!(names, want);
    let done: Value = serde_json::from_str(&events.last().unwrap().data).unwrap();
    assert_eq!(done["rounds"], 2);
    assert_eq!(done["stop_reason"], "rounds_done");
    assert_eq!(done["content"], "It is four.");
    let completed: Value = serde_json::from_str(&events[2].data).unwrap();
    assert_eq!(completed["round"], 1);
    assert_eq!(completed["content"], "four");
    for key in ["finish_reason", "usage", "elapsed_ms", "changed"] {
        assert!(completed.get(key).is_some(), "round.completed lacks {key}");
    }
}

#[tokio::test]
async fn refinement_validation_errors_come_before_the_stream() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "x")).await;
    let (status, _, text) = send(
        &app,
        post_json("/v1/refinements", &body(20, false, json!({}))),
    )
    .await;
    assert_error(
        status,
        &text,
        StatusCode::BAD_REQUEST,
        Some("refinement.rounds"),
    );
}

#[tokio::test]
async fn models_health_metrics_and_docs() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "x y")).await;
    send(
        &app,
        post_json("/v1/chat/completions", &body(2, false, json!({}))),
    )
    .await;
    let get = |p: &str| {
        axum::http::Request::get(p)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let (status, _, text) = send(&app, get("/v1/models")).await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["object"], "list");
    assert_eq!(v["data"][0]["id"], FAKE);
    let (_, _, text) = send(&app, get("/health")).await;
    assert!(text.contains("ok"));
    let (_, _, text) = send(&app, get("/metrics")).await;
    assert_eq!(
        metric(
            &text,
            "ptr_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}"
        ),
        Some(1.0)
    );
    let by_model = |name: &str| format!("{name}{{model=\"{FAKE}\"}}");
    assert_eq!(
        metric(&text, &by_model("ptr_refinement_rounds_count")),
        Some(1.0)
    );
    assert_eq!(
        metric(&text, &by_model("ptr_generated_tokens_total")),
        Some(4.0)
    );
    let (status, _, text) = send(&app, get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("/v1/refinements"));
    let (status, _, text) = send(&app, get("/docs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("/openapi.json") && !text.contains("cdn"));
}
