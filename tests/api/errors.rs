//! Every client mistake gets the OpenAI envelope with the right 4xx status (fake engine).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use ptr_server::engine::fake::FakeEngine;
use ptr_server::models::{ModelManager, ModelState, RuntimeStore};
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::*;

fn chat(extra: Value) -> Value {
    let mut body = json!({"model": FAKE, "messages": [{"role": "user", "content": "hi"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

async fn expect_400(extra: Value, param: &str) {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "hello there")).await;
    let (status, _, body) = send(&app, post_json("/v1/chat/completions", &chat(extra))).await;
    let err = assert_error(status, &body, StatusCode::BAD_REQUEST, Some(param));
    assert_eq!(err["type"], "invalid_request_error");
}

#[tokio::test]
async fn invalid_values_name_their_field() {
    expect_400(json!({"temperature": -0.5}), "temperature").await;
    expect_400(json!({"temperature": 2.5}), "temperature").await;
    expect_400(json!({"top_p": 0}), "top_p").await;
    expect_400(json!({"top_p": 1.5}), "top_p").await;
    expect_400(json!({"max_tokens": 0}), "max_tokens").await;
    expect_400(
        json!({"max_completion_tokens": -3}),
        "max_completion_tokens",
    )
    .await;
    expect_400(json!({"max_tokens": 100000}), "max_tokens").await;
    expect_400(json!({"n": 2}), "n").await;
    expect_400(json!({"stop": ["a", "b", "c", "d", "e"]}), "stop").await;
    expect_400(json!({"messages": []}), "messages").await;
    expect_400(
        json!({"messages": [{"role": "tool", "content": "x"}]}),
        "messages[0].role",
    )
    .await;
    expect_400(
        json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
        "messages[0].content[0]",
    )
    .await;
    expect_400(json!({"refinement": {"rounds": 9}}), "refinement.rounds").await;
    expect_400(json!({"refinement": {"rounds": 0}}), "refinement.rounds").await;
    expect_400(
        json!({"refinement": {"instruction": "  "}}),
        "refinement.instruction",
    )
    .await;
    expect_400(
        json!({"refinement": {"max_total_tokens": 0}}),
        "refinement.max_total_tokens",
    )
    .await;
    expect_400(json!({"temperature": "warm"}), "temperature").await;
    expect_400(json!({"messages": "hi"}), "messages").await;
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "ok")).await;
    let body = chat(json!({"frobnicate": true, "user": "u1", "seed": 7}));
    let (status, _, text) = send(&app, post_json("/v1/chat/completions", &body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn malformed_json_a_non_object_body_and_wrong_content_type() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "ok")).await;
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from("{\"messages\": ["))
        .unwrap();
    let (status, _, body) = send(&app, req).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, None);
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "text/plain")
        .body(Body::from(chat(json!({})).to_string()))
        .unwrap();
    let (status, _, body) = send(&app, req).await;
    assert_error(status, &body, StatusCode::UNSUPPORTED_MEDIA_TYPE, None);
    // The fields of a request as a JSON array (serde's positional form of a struct).
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(
            r#"["fake", [{"role": "user", "content": "hi"}]]"#,
        ))
        .unwrap();
    let (status, _, body) = send(&app, req).await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, None);
}

#[tokio::test]
async fn unknown_model_is_404() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "ok")).await;
    let (status, _, body) = send(
        &app,
        post_json("/v1/chat/completions", &chat(json!({"model": "gpt-9"}))),
    )
    .await;
    let err = assert_error(status, &body, StatusCode::NOT_FOUND, Some("model"));
    assert_eq!(err["code"], "model_not_found");
}

#[tokio::test]
async fn a_prompt_longer_than_the_context_is_refused() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "ok").with_context(64)).await;
    let long = "word ".repeat(100);
    let body = chat(json!({"messages": [{"role": "user", "content": long}]}));
    let (status, _, text) = send(&app, post_json("/v1/chat/completions", &body)).await;
    let err = assert_error(status, &text, StatusCode::BAD_REQUEST, Some("messages"));
    assert_eq!(err["code"], "context_length_exceeded");
    let body = chat(json!({"max_tokens": 60}));
    let (status, _, text) = send(&app, post_json("/v1/chat/completions", &body)).await;
    let err = assert_error(status, &text, StatusCode::BAD_REQUEST, Some("max_tokens"));
    assert_eq!(err["code"], "context_length_exceeded");
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "ok")).await;
    let big = "x".repeat(20 * 1024);
    let (status, _, body) = send(
        &app,
        post_json(
            "/v1/chat/completions",
            &chat(json!({"messages": [{"role": "user", "content": big}]})),
        ),
    )
    .await;
    assert_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE, None);
}

#[tokio::test]
async fn api_keys_are_required_when_configured() {
    let (app, _) = fake_app_with(
        FakeEngine::new(FAKE, "ok"),
        4,
        vec!["k1".into(), " k2".into()],
    )
    .await;
    let (status, _, body) = send(&app, post_json("/v1/chat/completions", &chat(json!({})))).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, None);
    let mut req = post_json("/v1/chat/completions", &chat(json!({})));
    req.headers_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    let (status, _, body) = send(&app, req).await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, None);
    let mut req = post_json("/v1/chat/completions", &chat(json!({})));
    req.headers_mut()
        .insert("authorization", "Bearer k2".parse().unwrap());
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = send(&app, Request::get("/health").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK, "/health needs no key");
}

#[tokio::test]
async fn over_capacity_is_429_with_retry_after_before_any_work() {
    let engine =
        FakeEngine::new(FAKE, "a b c d e f g h").with_token_delay(Duration::from_millis(200));
    let (app, state) = fake_app_with(engine.clone(), 1, vec![]).await;
    let stream_req = post_json("/v1/chat/completions", &chat(json!({"stream": true})));
    let held = app.clone().oneshot(stream_req).await.unwrap();
    assert_eq!(held.status(), StatusCode::OK);
    let mut held = held.into_body();
    held.frame().await.unwrap().unwrap(); // the role chunk
    held.frame().await.unwrap().unwrap(); // the first token: the generation runs
    let (status, headers, body) =
        send(&app, post_json("/v1/chat/completions", &chat(json!({})))).await;
    let err = assert_error(status, &body, StatusCode::TOO_MANY_REQUESTS, None);
    assert_eq!(err["code"], "server_overloaded");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(engine.generations(), 1, "the refused request did no work");
    assert_eq!(state.metrics.rejected.get(), 1);
    // Finishing the held stream frees the slot.
    let _ = held.collect().await;
    let (status, _, _) = send(&app, post_json("/v1/chat/completions", &chat(json!({})))).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_loading_model_is_503_and_ready_follows_it() {
    let loader = Arc::new(FakeLoader::new(vec![FakeEngine::new(FAKE, "ok")]));
    loader.gate.forget_permits(usize::MAX);
    let models = Arc::new(
        ModelManager::new(
            &fake_registry(&[FAKE]),
            RuntimeStore::memory(),
            loader.clone(),
            4,
        )
        .unwrap(),
    );
    let (app, _) = app_over(models.clone(), test_limits(), 4, &[]);
    let loading = tokio::spawn({
        let models = models.clone();
        async move { models.load(FAKE).await }
    });
    while models.status(FAKE).unwrap().status != ModelState::Loading {
        tokio::task::yield_now().await;
    }
    let (status, headers, body) =
        send(&app, post_json("/v1/chat/completions", &chat(json!({})))).await;
    let err = assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, None);
    assert_eq!(err["code"], "model_loading");
    assert!(headers.contains_key("retry-after"));
    let (status, _, _) = send(&app, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    loader.gate.add_permits(1);
    loading.await.unwrap().unwrap();
    let (status, _, _) = send(&app, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_dead_engine_makes_ready_503_and_requests_503_not_500() {
    let engine = FakeEngine::new(FAKE, "ok");
    let (app, state) = fake_app(engine.clone()).await;
    let (status, _, _) = send(&app, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    engine.kill();
    let (status, _, body) = send(&app, Request::get("/ready").body(Body::empty()).unwrap()).await;
    assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, None);
    let (status, _, body) = send(&app, post_json("/v1/chat/completions", &chat(json!({})))).await;
    let err = assert_error(status, &body, StatusCode::SERVICE_UNAVAILABLE, None);
    assert_eq!(err["code"], "model_unavailable");
    assert_eq!(
        state.models.status(FAKE).unwrap().status,
        ModelState::Failed
    );
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let (app, _) = fake_app_with(FakeEngine::new(FAKE, "ok"), 4, vec!["k1".into()]).await;
    let mut req = post_json("/v1/chat/completions", &chat(json!({})));
    req.headers_mut()
        .insert("authorization", "bearer k1".parse().unwrap());
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_the_envelope() {
    let (app, _) = fake_app(FakeEngine::new(FAKE, "ok")).await;
    let (status, _, body) = send(&app, Request::get("/v1/nope").body(Body::empty()).unwrap()).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, None);
    let (status, _, body) = send(
        &app,
        Request::get("/v1/chat/completions")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_error(status, &body, StatusCode::METHOD_NOT_ALLOWED, None);
}
