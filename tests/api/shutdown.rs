//! Graceful shutdown of the real binary: SIGTERM stops accepting, lets the running stream finish,
//! and the process exits 0.

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_stream_finish_then_exits_zero() {
    ensure_default_model();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ptr-server"))
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--shutdown-grace-secs",
            "60",
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
    let body = json!({
        "temperature": 0, "max_tokens": 48, "stream": true,
        "messages": [{"role": "user", "content": "Write one sentence about cats."}]
    });
    let res = send_json(&client, &format!("{base}/v1/chat/completions"), &body).await;
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
    assert!(
        text.trim_end().ends_with("data: [DONE]"),
        "the running stream finished: {text}"
    );
    assert!(
        client.get(format!("{base}/health")).send().await.is_err(),
        "no new connections"
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
