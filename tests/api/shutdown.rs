//! Graceful shutdown of the real binary: SIGTERM stops accepting, lets the running stream finish,
//! and the process exits 0; a stream still running when the grace period ends gets an error event
//! that says so (and `[DONE]` on the chat endpoint) instead of a cut connection.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::common::*;

/// The real binary serving the default model with `--shutdown-grace-secs grace`, once ready.
async fn serve_with_grace(grace: u32) -> (tokio::process::Child, String, reqwest::Client) {
    ensure_default_model();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ptr-server"))
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--shutdown-grace-secs",
            &grace.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (child, base, client)
}

/// Starts a stream of `body`, sends SIGTERM once its first bytes arrived, and returns the whole
/// stream and the exit code.
async fn sigterm_during_stream(
    child: &mut tokio::process::Child,
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> (String, Option<i32>) {
    let res = send_json(client, url, body).await;
    assert_eq!(res.status(), 200);
    let mut stream = res.bytes_stream();
    let mut text = String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()).to_string();
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
    }
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    (text, status.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_stream_finish_then_exits_zero() {
    let (mut child, base, client) = serve_with_grace(60).await;
    let body = json!({
        "temperature": 0, "max_tokens": 48, "stream": true,
        "messages": [{"role": "user", "content": "Write one sentence about cats."}]
    });
    let url = format!("{base}/v1/chat/completions");
    let (text, code) = sigterm_during_stream(&mut child, &client, &url, &body).await;
    assert!(
        text.trim_end().ends_with("data: [DONE]") && !text.contains("\"error\""),
        "the running stream finished: {text}"
    );
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "no new connections"
    );
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_outliving_the_grace_period_end_with_an_error_event() {
    let long = |stream: bool| {
        json!({
            "temperature": 0, "max_tokens": 400, "stream": stream,
            "refinement": {"rounds": 3},
            "messages": [{"role": "user", "content": "Write a long story about a cat and a ship."}]
        })
    };
    // The chat stream: the OpenAI error envelope, then `[DONE]`.
    let (mut child, base, client) = serve_with_grace(1).await;
    let url = format!("{base}/v1/chat/completions");
    let (text, code) = sigterm_during_stream(&mut child, &client, &url, &long(true)).await;
    assert!(
        text.contains("\"code\":\"server_shutting_down\"")
            && text.trim_end().ends_with("data: [DONE]"),
        "the cut stream says why and ends properly: {text}"
    );
    assert_eq!(code, Some(0));
    // The refinement event stream: a final `error` event.
    let (mut child, base, client) = serve_with_grace(1).await;
    let url = format!("{base}/v1/refinements");
    let (text, code) = sigterm_during_stream(&mut child, &client, &url, &long(false)).await;
    let last = text.trim_end().rsplit("\n\n").next().unwrap();
    assert!(
        last.starts_with("event: error") && last.contains("server_shutting_down"),
        "the last event is the error: {last}"
    );
    assert_eq!(code, Some(0));
}
