//! The client against ptr-server's own router on the scripted engine, over a real socket.

use std::sync::Arc;

use super::*;
use crate::engine::fake::FakeEngine;
use crate::engine::Role;
use crate::http::{AppState, Limits};
use crate::models::fake::FakeLoader;
use crate::wire::{RefinementParams, StreamOptions};

const MODEL: &str = "fake-model";

/// Serves one scripted model; returns the base URL.
async fn serve(keys: &[String]) -> String {
    let engine = FakeEngine::scripted(MODEL, &["First.", "Second."]);
    let state = AppState::new(
        FakeLoader::serving(engine).await,
        Limits::default(),
        4,
        keys,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, crate::router(state)).await });
    format!("http://{addr}")
}

fn question(model: &str) -> ChatCompletionRequest {
    ChatCompletionRequest {
        max_tokens: Some(16),
        temperature: Some(0.0),
        ..request(model, &[ChatMessage::new(Role::User, "Hi?")])
    }
}

fn client() -> Client {
    Client::new(ClientOptions::default()).unwrap()
}

#[tokio::test]
async fn completes_and_reads_the_rounds() {
    let base = serve(&[]).await;
    let two_rounds = ChatCompletionRequest {
        refinement: Some(RefinementParams {
            rounds: Some(2),
            early_stop: Some(false),
            ..RefinementParams::default()
        }),
        ..question(MODEL)
    };
    let reply = client()
        .complete(&Endpoint::server(&base, None), &two_rounds)
        .await
        .unwrap();
    let rounds = reply
        .refinement
        .as_ref()
        .expect("a ptr-server report")
        .rounds
        .clone();
    assert_eq!(rounds.len(), 2);
    assert_eq!(reply.content(), Some(rounds[1].content.as_str()));
    assert!(reply.completion_tokens().is_some_and(|n| n > 0));
}

#[tokio::test]
async fn streams_events_to_done() {
    let base = serve(&[]).await;
    let streamed = ChatCompletionRequest {
        stream: Some(true),
        stream_options: Some(StreamOptions {
            include_usage: Some(true),
        }),
        ..question(MODEL)
    };
    let mut events = client()
        .stream(&Endpoint::api(&format!("{base}/v1/"), None), &streamed)
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(read) = events.next_read().await {
        seen.extend(read.unwrap());
    }
    seen.extend(events.finish());
    assert!(seen.last().is_some_and(SseEvent::is_done), "{seen:?}");
    let text: String = seen[..seen.len() - 1]
        .iter()
        .map(|e| serde_json::from_str::<Chunk>(&e.data).unwrap())
        .filter_map(|c| c.delta().and_then(|d| d.content.clone()))
        .collect();
    assert_eq!(text, "First.");
}

#[tokio::test]
async fn errors_name_the_status_and_the_servers_message() {
    let base = serve(&["key-1".to_string()]).await;
    let err = client()
        .complete(&Endpoint::server(&base, None), &question(MODEL))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Status { status, .. } if status.as_u16() == 401),
        "{err}"
    );
    let keyed = Endpoint::server(&base, Some("key-1".into()));
    let err = client()
        .complete(&keyed, &question("no-such-model"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("HTTP 404"), "{err}");
    assert!(client().complete(&keyed, &question(MODEL)).await.is_ok());
}

#[tokio::test]
async fn an_unavailable_model_is_not_waited_for_but_a_loading_one_is() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // A server whose model is unavailable (503 model_unavailable, no Retry-After) on the first
    // path, and loading (503 model_loading, Retry-After: 1) once, then answering, on the second.
    let hits = Arc::new(AtomicUsize::new(0));
    let envelope = |code: &str| serde_json::json!({"error": {"message": "m", "type": "server_error", "code": code}});
    let (gone, loading) = (envelope("model_unavailable"), envelope("model_loading"));
    let answer =
        serde_json::json!({"choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}]});
    let counted = hits.clone();
    let app = axum::Router::new()
        .route(
            "/gone/v1/chat/completions",
            axum::routing::post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = gone.clone();
                async move {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(body),
                    )
                }
            }),
        )
        .route(
            "/loading/v1/chat/completions",
            axum::routing::post({
                let calls = Arc::new(AtomicUsize::new(0));
                move || {
                    let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
                    let (loading, answer) = (loading.clone(), answer.clone());
                    async move {
                        use axum::response::IntoResponse;
                        if first {
                            let status = axum::http::StatusCode::SERVICE_UNAVAILABLE;
                            (status, [("retry-after", "1")], axum::Json(loading)).into_response()
                        } else {
                            axum::Json(answer).into_response()
                        }
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let waiting = Client::new(ClientOptions {
        retry_busy: Some(std::time::Duration::from_secs(60)),
        ..ClientOptions::default()
    })
    .unwrap();
    let gone = Endpoint::server(&format!("http://{addr}/gone"), None);
    let err = waiting.complete(&gone, &question(MODEL)).await.unwrap_err();
    assert!(err.to_string().starts_with("HTTP 503"), "{err}");
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "a model_unavailable 503 was retried"
    );
    let loading = Endpoint::server(&format!("http://{addr}/loading"), None);
    let done = waiting.complete(&loading, &question(MODEL)).await.unwrap();
    assert_eq!(done.content(), Some("ok"));
}
