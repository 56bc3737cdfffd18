//! Nothing stalls the server (fake engine): a client that stops reading loses its slot within
//! the write timeout, a request past its deadline ends with an error that names the request id,
//! and a request without `max_tokens` gets the server's per-round default.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use ptr_server::engine::fake::FakeEngine;
use ptr_server::engine::Engine;
use ptr_server::http::Limits;
use ptr_server::models::{ModelManager, RuntimeStore};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::*;

async fn app_with_limits(
    engine: FakeEngine,
    limits: Limits,
    max_concurrent: usize,
) -> axum::Router {
    let loader = Arc::new(FakeLoader::new(vec![engine]));
    let models = Arc::new(
        ModelManager::new(&fake_registry(&[FAKE]), RuntimeStore::memory(), loader, 4).unwrap(),
    );
    models.load(FAKE).await.unwrap();
    app_over(models, limits, max_concurrent, &[]).0
}

fn ask(stream: bool) -> Value {
    json!({"model": FAKE, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_client_that_stops_reading_loses_its_slot() {
    let words = "w ".repeat(200);
    let engine = FakeEngine::new(FAKE, &words).with_token_delay(Duration::from_millis(1));
    let limits = Limits {
        stream_write_timeout: Duration::from_millis(300),
        ..test_limits()
    };
    let app = app_with_limits(engine.clone(), limits, 1).await;
    let res = app
        .clone()
        .oneshot(post_json("/v1/chat/completions", &ask(true)))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-accel-buffering"], "no");
    // The client never reads `res` again, and keeps the connection open.
    let (status, _, _) = send(&app, post_json("/v1/chat/completions", &ask(false))).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the stalled stream holds the slot"
    );
    while engine.generations() == 0 {
        tokio::task::yield_now().await;
    }
    let stalled_at = Instant::now();
    while engine.stats().active_sequences > 0 {
        assert!(
            stalled_at.elapsed() < Duration::from_secs(5),
            "the stalled generation was never stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(engine.stats().cancelled_sequences, 1);
    assert!(
        engine.tokens_generated() < 200,
        "stopped, not run to its end"
    );
    let (status, _, _) = send(&app, post_json("/v1/chat/completions", &ask(false))).await;
    assert_eq!(status, StatusCode::OK, "the slot was released");
    drop(res);
}

#[tokio::test]
async fn a_request_past_its_deadline_ends_with_an_error_naming_its_id() {
    let engine =
        FakeEngine::new(FAKE, &"w ".repeat(50)).with_token_delay(Duration::from_millis(20));
    let limits = Limits {
        request_timeout: Duration::from_millis(300),
        ..test_limits()
    };
    let app = app_with_limits(engine.clone(), limits, 1).await;
    let started = Instant::now();
    let (status, headers, body) = send(&app, post_json("/v1/chat/completions", &ask(true))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let events = parse_sse(&body);
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let err: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(err["error"]["code"], "request_timeout", "{body}");
    let id = headers["x-request-id"].to_str().unwrap();
    assert!(
        err["error"]["message"].as_str().unwrap().contains(id),
        "{err}"
    );

    let (status, _, body) = send(&app, post_json("/v1/refinements", &ask(true))).await;
    assert_eq!(status, StatusCode::OK);
    let last = parse_sse(&body).pop().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"), "{body}");

    let (status, _, body) = send(&app, post_json("/v1/chat/completions", &ask(false))).await;
    let err = assert_error(status, &body, StatusCode::GATEWAY_TIMEOUT, None);
    assert_eq!(err["code"], "request_timeout");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        engine.stats().active_sequences,
        0,
        "every generation was stopped"
    );
}

#[tokio::test]
async fn a_request_without_max_tokens_gets_the_server_default() {
    let engine = FakeEngine::new(FAKE, "one two three four five six");
    let limits = Limits {
        default_max_tokens: 4,
        ..test_limits()
    };
    let app = app_with_limits(engine, limits, 1).await;
    let (status, _, body) = send(&app, post_json("/v1/chat/completions", &ask(false))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["usage"]["completion_tokens"], 4);
    assert_eq!(v["choices"][0]["finish_reason"], "length");
    let mut explicit = ask(false);
    explicit["max_tokens"] = json!(100);
    let (_, _, body) = send(&app, post_json("/v1/chat/completions", &explicit)).await;
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v["choices"][0]["finish_reason"], "stop",
        "an explicit max_tokens wins"
    );
}

#[tokio::test]
async fn an_engine_failure_mid_stream_ends_both_streams_properly_and_frees_the_slot() {
    let engine = FakeEngine::scripted(FAKE, &["one two three", "four five six"]).failing_at(2, 1);
    let app = app_with_limits(engine.clone(), test_limits(), 1).await;
    let mut body = ask(true);
    body["refinement"] = json!({"rounds": 2});

    let (status, headers, text) = send(&app, post_json("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::OK);
    let events = parse_sse(&text);
    assert_eq!(events.last().unwrap().data, "[DONE]", "{text}");
    let err: Value = serde_json::from_str(&events[events.len() - 2].data).unwrap();
    assert_eq!(err["error"]["code"], "internal_error", "{text}");
    let id = headers["x-request-id"].to_str().unwrap();
    assert!(
        err["error"]["message"].as_str().unwrap().contains(id),
        "{err}"
    );
    assert!(
        text.contains("four"),
        "round 2 streamed its first token: {text}"
    );

    let (status, _, text) = send(&app, post_json("/v1/refinements", &body)).await;
    assert_eq!(status, StatusCode::OK, "the slot was freed");
    let last = parse_sse(&text).pop().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"), "{text}");
    let err: Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(err["error"]["code"], "internal_error");

    assert_eq!(engine.stats().active_sequences, 0);
    let (status, _, _) = send(&app, post_json("/v1/chat/completions", &ask(false))).await;
    assert_eq!(status, StatusCode::OK, "the slot was freed again");
}
