//! End-to-end on the real default model (SmolLM2-135M-Instruct via mistral.rs) over a real
//! socket: coherent greedy text, determinism, the chunk sequence, usage, readiness, metrics,
//! cancellation on disconnect, and 429 under load.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::common::*;

const MODEL: &str = "smollm2-135m-instruct";

fn question(max_tokens: u32, stream: bool) -> Value {
    json!({
        "model": MODEL,
        "messages": [{"role": "user", "content": "Write one sentence about cats."}],
        "temperature": 0, "max_tokens": max_tokens, "stream": stream,
        "stream_options": {"include_usage": true}
    })
}

async fn chat(client: &reqwest::Client, base: &str, body: &Value) -> Value {
    let res = send_json(client, &format!("{base}/v1/chat/completions"), body).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greedy_chat_is_coherent_deterministic_and_counted() {
    let server = real_server(&[]).await;
    let base = format!("http://{}", server.addr);
    let client = reqwest::Client::new();
    let seen = wait_ready(&client, &base).await;
    assert_eq!(
        seen.first(),
        Some(&503),
        "/ready is 503 while the model loads: {seen:?}"
    );

    let first = chat(&client, &base, &question(32, false)).await;
    let text = first["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_string();
    println!("SmolLM2 said: {text:?}");
    let words: Vec<&str> = text.split_whitespace().collect();
    let english = words
        .iter()
        .filter(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric())
                .chars()
                .all(|c| c.is_ascii_alphabetic())
        })
        .count();
    assert!(
        words.len() >= 5 && english * 10 >= words.len() * 8,
        "coherent English words: {text:?}"
    );
    assert!(text.to_lowercase().contains("cat"), "on topic: {text:?}");
    let finish = first["choices"][0]["finish_reason"].as_str().unwrap();
    assert!(finish == "stop" || finish == "length", "{finish}");
    let u = &first["usage"];
    let (p, c) = (
        u["prompt_tokens"].as_u64().unwrap(),
        u["completion_tokens"].as_u64().unwrap(),
    );
    assert!(p > 5 && (1..=32).contains(&c), "usage {u}");
    assert_eq!(u["total_tokens"].as_u64(), Some(p + c));

    let second = chat(&client, &base, &question(32, false)).await;
    assert_eq!(
        second["choices"][0]["message"]["content"],
        text.as_str(),
        "greedy is deterministic"
    );

    let m = scrape(&client, &base).await;
    for series in [
        "ptr_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}",
        "ptr_http_request_duration_seconds_count{route=\"/v1/chat/completions\",status=\"200\"}",
        "ptr_time_to_first_token_seconds_count{model=\"smollm2-135m-instruct\"}",
        "ptr_inter_token_latency_seconds_count{model=\"smollm2-135m-instruct\"}",
        "ptr_request_duration_seconds_count{model=\"smollm2-135m-instruct\"}",
        "ptr_prompt_tokens_total{model=\"smollm2-135m-instruct\"}",
        "ptr_generated_tokens_total{model=\"smollm2-135m-instruct\"}",
    ] {
        let v = metric(&m, series).unwrap_or_else(|| panic!("missing {series}"));
        assert!(v > 0.0, "{series} = {v}");
    }
    for series in [
        "ptr_requests_in_flight",
        "ptr_requests_cancelled_total{model=\"smollm2-135m-instruct\"}",
        "ptr_requests_rejected_total",
    ] {
        assert!(metric(&m, series).is_some(), "missing {series}");
    }
    assert_eq!(
        metric(
            &m,
            "ptr_generated_tokens_total{model=\"smollm2-135m-instruct\"}"
        ),
        Some(2.0 * c as f64)
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_is_a_proper_openai_chunk_sequence() {
    let (server, base, client) = ready_real_server(&[]).await;
    let plain = chat(&client, &base, &question(24, false)).await;
    let res = send_json(
        &client,
        &format!("{base}/v1/chat/completions"),
        &question(24, true),
    )
    .await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let events = parse_sse(&res.text().await.unwrap());
    assert_eq!(events.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == chunks[0]["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let finishes: Vec<_> = chunks
        .iter()
        .filter(|c| c["choices"][0]["finish_reason"].is_string())
        .collect();
    assert_eq!(finishes.len(), 1, "exactly one finish chunk");
    let usage_chunk = chunks.last().unwrap();
    assert!(usage_chunk["choices"].as_array().unwrap().is_empty());
    assert_eq!(
        usage_chunk["usage"], plain["usage"],
        "streamed usage equals the non-streamed one"
    );
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        content,
        plain["choices"][0]["message"]["content"].as_str().unwrap()
    );
    let deltas = chunks
        .iter()
        .filter(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .count();
    assert!(
        deltas >= 5,
        "content arrives token by token, got {deltas} deltas"
    );
    server.shutdown().await.unwrap();
}

/// Reads a stream until `n` data events arrived, then drops the connection.
pub async fn read_then_disconnect(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    until: impl Fn(&str) -> bool,
) {
    let res = send_json(client, url, body).await;
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut seen = String::new();
    while let Some(chunk) = stream.next().await {
        seen.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        if until(&seen) {
            return;
        }
    }
    panic!("the stream ended before the disconnect point: {seen}");
}

/// Polls `/metrics` until `done` holds (at most 30 s); returns the last text.
pub async fn wait_metrics(
    client: &reqwest::Client,
    base: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    for _ in 0..300 {
        let m = scrape(client, base).await;
        if done(&m) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "metrics never reached the expected state:\n{}",
        scrape(client, base).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_stops_the_generation() {
    let (server, base, client) = ready_real_server(&[]).await;
    let body = json!({
        "model": MODEL, "temperature": 0, "max_tokens": 1000, "stream": true,
        "messages": [{"role": "user", "content": "Write a very long story about a dragon and a knight."}]
    });
    let url = format!("{base}/v1/chat/completions");
    read_then_disconnect(&client, &url, &body, |s| {
        s.matches("\"content\"").count() >= 6
    })
    .await;
    let active = format!("ptr_engine_active_sequences{{model=\"{MODEL}\"}}");
    let cancelled = format!("ptr_engine_cancelled_sequences_total{{model=\"{MODEL}\"}}");
    let m = wait_metrics(&client, &base, |m| {
        metric(m, &active) == Some(0.0)
            && metric(
                m,
                "ptr_requests_cancelled_total{model=\"smollm2-135m-instruct\"}",
            ) == Some(1.0)
    })
    .await;
    assert_eq!(
        metric(&m, &cancelled),
        Some(1.0),
        "the engine itself cancelled the sequence"
    );
    assert_eq!(metric(&m, "ptr_requests_in_flight"), Some(0.0));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_concurrent_requests_than_allowed_get_429() {
    let (server, base, client) = ready_real_server(&["--max-concurrent", "1"]).await;
    let body = json!({
        "model": MODEL, "temperature": 0, "max_tokens": 300, "stream": true,
        "messages": [{"role": "user", "content": "Write a long poem about the sea."}]
    });
    let held = send_json(&client, &format!("{base}/v1/chat/completions"), &body).await;
    assert_eq!(held.status(), 200);
    let res = send_json(
        &client,
        &format!("{base}/v1/chat/completions"),
        &question(8, false),
    )
    .await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "1");
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], "server_overloaded");
    drop(held);
    let m = wait_metrics(&client, &base, |m| {
        metric(m, "ptr_requests_in_flight") == Some(0.0)
    })
    .await;
    assert_eq!(metric(&m, "ptr_requests_rejected_total"), Some(1.0));
    let res = send_json(
        &client,
        &format!("{base}/v1/chat/completions"),
        &question(8, false),
    )
    .await;
    assert_eq!(res.status(), 200, "the slot is free again");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recycled_engine_keeps_serving_the_same_answers() {
    let (server, base, client) = ready_real_server(&["--recycle-after", "2"]).await;
    let first = chat(&client, &base, &question(12, false)).await;
    for _ in 0..4 {
        let next = chat(&client, &base, &question(12, false)).await;
        assert_eq!(
            next["choices"][0]["message"]["content"],
            first["choices"][0]["message"]["content"]
        );
    }
    let recycles = format!("ptr_engine_recycles_total{{model=\"{MODEL}\"}}");
    let m = wait_metrics(&client, &base, |m| {
        metric(m, &recycles).is_some_and(|v| v >= 1.0)
    })
    .await;
    // A refinement streams across recycles (each finished round counts towards the next one):
    // every round still arrives, and the stream ends properly.
    let before = metric(&m, &recycles).unwrap();
    let mut body = question(12, true);
    body["refinement"] = json!({"rounds": 3});
    let text = send_json(&client, &format!("{base}/v1/refinements"), &body)
        .await
        .text()
        .await
        .unwrap();
    let events = parse_sse(&text);
    let completed = events
        .iter()
        .filter(|e| e.event.as_deref() == Some("round.completed"))
        .count();
    assert_eq!(completed, 3, "{text}");
    assert_eq!(
        events.last().unwrap().event.as_deref(),
        Some("refinement.completed")
    );
    let m = wait_metrics(&client, &base, |m| {
        metric(m, &recycles).is_some_and(|v| v > before)
    })
    .await;
    assert_eq!(
        metric(
            &m,
            &format!("ptr_engine_active_sequences{{model=\"{MODEL}\"}}")
        ),
        Some(0.0)
    );
    server.shutdown().await.unwrap();
}
