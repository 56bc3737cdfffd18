//! End-to-end tests of [`measure`] against a small fake OpenAI server on port 0.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};

use super::*;

/// Requests the fake server received: (Authorization header, body).
type Seen = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// Answers like an OpenAI server: three content chunks 10 ms apart when
/// streaming, a usage-bearing JSON body otherwise, and a 500 for model "missing".
async fn chat(State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Ok(mut seen) = seen.lock() {
        seen.push((auth, body.clone()));
    }
    if body["model"] == "missing" {
        let error = json!({"error": {"message": "no such model", "type": "invalid_request_error"}});
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(error)).into_response();
    }
    if body["stream"] != true {
        let reply =
            json!({"choices": [{"message": {"content": "hi"}}], "usage": {"completion_tokens": 7}});
        return Json(reply).into_response();
    }
    let mut events: Vec<String> = vec![": keep-alive\n\n".to_owned()];
    for word in ["a", "b", "c"] {
        let chunk = json!({"choices": [{"index": 0, "delta": {"content": word}}]});
        events.push(format!("data: {chunk}\n\n"));
    }
    events.push(format!(
        "data: {}\n\n",
        json!({"choices": [], "usage": {"completion_tokens": 3}})
    ));
    events.push("data: [DONE]\n\n".to_owned());
    let stream = futures::stream::iter(events).then(|event| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Ok::<_, Infallible>(event)
    });
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Starts the fake server; returns its base URL (with a trailing slash, which
/// `measure` must trim) and the log of what it received.
async fn fake_server() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind port 0");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), seen)
}

fn args(url: &str, model: &str) -> BenchSpec {
    BenchSpec {
        url: url.to_owned(),
        model: model.to_owned(),
        requests: 4,
        concurrency: 2,
        max_tokens: 16,
        stream: false,
        prompt: Some("hello".to_owned()),
        unique_prompts: false,
        rounds: None,
        temperature: 0.0,
        api_key: None,
    }
}

fn received(seen: &Seen) -> Vec<(Option<String>, Value)> {
    seen.lock().expect("log lock").clone()
}

#[tokio::test]
async fn streaming_run_measures_ttft_itl_and_usage() {
    let (url, seen) = fake_server().await;
    let args = BenchSpec {
        stream: true,
        rounds: Some(2),
        api_key: Some("k".to_owned()),
        ..args(&url, "m")
    };
    let report = measure(&args).await.expect("measure");

    assert_eq!(
        (report.requests, report.errors, report.concurrency),
        (4, 0, 2)
    );
    assert_eq!(
        report.output_tokens, 12,
        "usage.completion_tokens, not event count"
    );
    assert!(report.output_tokens_per_second > 0.0);
    let ttft = report.ttft.expect("ttft when streaming");
    let itl = report.itl.expect("itl when streaming");
    let e2e = report.e2e.expect("e2e");
    assert!(
        ttft.p50 >= 0.015,
        "keep-alive + first chunk are 20 ms in: {ttft:?}"
    );
    // A slow reader may get chunks coalesced (a zero gap), so only ask that
    // the largest of the 8 gaps (p95 by nearest rank) shows the 10 ms spacing.
    assert!(itl.p95 >= 0.005, "chunks are 10 ms apart: {itl:?}");
    assert!(e2e.p50 >= ttft.p50);
    let decode = report
        .decode_tokens_per_second
        .expect("decode rate when streaming");
    assert!(decode.p50 > 0.0, "{decode:?}");

    let received = received(&seen);
    assert_eq!(received.len(), 4);
    let (auth, body) = &received[0];
    assert_eq!(auth.as_deref(), Some("Bearer k"));
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["refinement"], json!({"rounds": 2}));
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "hello"}])
    );
    assert_eq!(body["max_tokens"], 16);
}

#[tokio::test]
async fn plain_run_reads_usage_and_sends_a_standard_body() {
    let (url, seen) = fake_server().await;
    let report = measure(&args(&url, "m")).await.expect("measure");

    assert_eq!((report.errors, report.output_tokens), (0, 28));
    assert!(report.ttft.is_none() && report.itl.is_none());
    assert!(report.e2e.is_some());
    let (auth, body) = &received(&seen)[0];
    assert!(auth.is_none());
    assert!(body.get("stream_options").is_none() && body.get("refinement").is_none());
}

/// The user message of every request the fake server received.
fn prompts(seen: &Seen) -> Vec<String> {
    received(seen)
        .iter()
        .map(|(_, body)| {
            body["messages"][0]["content"]
                .as_str()
                .expect("a text prompt")
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn unique_prompts_open_each_request_with_its_own_prefix() {
    let (url, seen) = fake_server().await;
    let args = BenchSpec {
        unique_prompts: true,
        stream: true,
        ..args(&url, "m")
    };
    let report = measure(&args).await.expect("measure");
    assert_eq!((report.requests, report.errors), (4, 0));

    let mut first = prompts(&seen);
    first.sort();
    // "Request 1 of 4 (run 5f0c2a). hello": the number, the count, one run tag, the prompt.
    let tag = first[0]
        .strip_prefix("Request 1 of 4 (run ")
        .and_then(|rest| rest.strip_suffix("). hello"))
        .unwrap_or_else(|| panic!("unexpected prompt {:?}", first[0]))
        .to_owned();
    assert!(
        tag.len() == 6 && tag.bytes().all(|b| b.is_ascii_hexdigit()),
        "{tag}"
    );
    let expected: Vec<String> = (1..=4)
        .map(|n| format!("Request {n} of 4 (run {tag}). hello"))
        .collect();
    assert_eq!(first, expected);

    // A second run on the same server repeats none of the first run's prompts.
    seen.lock().expect("log lock").clear();
    measure(&args).await.expect("second measure");
    let second = prompts(&seen);
    assert_eq!(second.len(), 4);
    assert!(
        second
            .iter()
            .all(|p| !first.contains(p) && p.ends_with(". hello")),
        "{first:?} then {second:?}"
    );
}

#[tokio::test]
async fn without_unique_prompts_every_request_sends_the_same_prompt() {
    let (url, seen) = fake_server().await;
    measure(&args(&url, "m")).await.expect("measure");
    assert_eq!(prompts(&seen), vec!["hello"; 4]);
}

#[tokio::test]
async fn failures_are_counted_not_fatal() {
    let (url, _) = fake_server().await;
    let report = measure(&args(&url, "missing")).await.expect("measure");

    assert_eq!(
        (report.requests, report.errors, report.output_tokens),
        (4, 4, 0)
    );
    assert!(report.e2e.is_none());
    let error = report.first_error.expect("first error");
    assert!(
        error.contains("500") && error.contains("no such model"),
        "{error}"
    );
}

#[tokio::test]
async fn zero_concurrency_is_rejected() {
    let args = BenchSpec {
        concurrency: 0,
        ..args("http://127.0.0.1:1", "m")
    };
    assert!(measure(&args).await.is_err());
}
