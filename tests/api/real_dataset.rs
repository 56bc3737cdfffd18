//! The dataset job end to end on the real default model, through the real binary: weak SmolLM2
//! (sampled) served by the job's own server, strong SmolLM2 (greedy) served by a second server
//! on loopback and reached as a remote OpenAI-compatible endpoint. The server is killed with
//! SIGKILL while the job runs; after a restart the job resumes and every `custom_id` is in the
//! output exactly once. Events replay identically after reconnecting with `Last-Event-ID`.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;

pub const TOKEN: &str = "real-admin-token";

/// The binary under test (`PTR_TEST_BIN` overrides cargo's path, for target dirs shared by
/// several checkouts).
pub fn binary() -> String {
    std::env::var("PTR_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_ptr-server").to_string())
}

/// A free loopback port, its base URL, and a client.
pub fn endpoint() -> (u16, String, reqwest::Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    (
        port,
        format!("http://127.0.0.1:{port}"),
        reqwest::Client::new(),
    )
}

/// Starts the real binary with the admin API on `port` over `data`, and waits until it is ready.
pub async fn start(port: u16, data: &std::path::Path) -> tokio::process::Child {
    let child = spawn(port, data);
    wait_up(&reqwest::Client::new(), &format!("http://127.0.0.1:{port}")).await;
    child
}

fn spawn(port: u16, data: &std::path::Path) -> tokio::process::Child {
    tokio::process::Command::new(binary())
        .args([
            "serve",
            "--port",
            &port.to_string(),
            "--admin-token",
            TOKEN,
            "--data-dir",
        ])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// An admin call that must succeed; its JSON.
pub async fn admin(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> Value {
    let mut req = client.request(method, url).bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap();
    assert!(status.is_success(), "{status}: {v}");
    v
}

/// Uploads `content` as a `user_data` file; its id.
pub async fn upload(client: &reqwest::Client, base: &str, content: &str) -> String {
    upload_as(client, base, "user_data", content).await
}

/// Uploads `content` as a file of `purpose`; its id.
pub async fn upload_as(
    client: &reqwest::Client,
    base: &str,
    purpose: &str,
    content: &str,
) -> String {
    let b = "XREALBOUNDARYX";
    let body = format!("--{b}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"q.jsonl\"\r\n\r\n{content}\r\n--{b}--\r\n");
    let res = client
        .post(format!("{base}/admin/v1/files"))
        .bearer_auth(TOKEN)
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_string()
}

/// Waits for `/ready`.
async fn wait_up(client: &reqwest::Client, base: &str) {
    for _ in 0..600 {
        if client
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{base} did not become ready");
}

/// The JSON events of an SSE body, without `[DONE]`.
pub fn sse_events(body: &str) -> Vec<Value> {
    parse_sse(body)
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_dataset_job_survives_kill_9_and_uses_a_remote_strong_model() {
    let (strong_server, strong_base, _) = ready_real_server(&[]).await;
    let data = tempfile::tempdir().unwrap();
    let (port, base, client) = endpoint();
    let mut child = start(port, data.path()).await;
    let questions: String = std::fs::read_to_string("tests/data/eval/gsm8k_train.jsonl")
        .unwrap()
        .lines()
        .take(4)
        .map(|l| format!("{l}\n"))
        .collect();
    let file = upload(&client, &base, &questions).await;
    let spec = json!({
        "input_file": file, "n_thoughts": 2, "concurrency": 1,
        "weak": {"model": "smollm2-135m-instruct", "temperature": 0.8, "max_tokens": 40},
        "strong": {"model": "smollm2-135m-instruct", "base_url": format!("{strong_base}/v1"), "temperature": 0, "max_tokens": 48, "icl_examples": 1},
        "filter": {"k": 2, "gold_check": false},
    });
    let job = admin(
        &client,
        reqwest::Method::POST,
        format!("{base}/admin/v1/datasets/jobs"),
        Some(spec),
    )
    .await;
    let id = job["id"].as_str().unwrap().to_string();
    let job_url = format!("{base}/admin/v1/datasets/jobs/{id}");
    // Kill -9 once the first record is written.
    loop {
        let j = admin(&client, reqwest::Method::GET, job_url.clone(), None).await;
        assert_ne!(j["status"], "failed", "{j}");
        if j["request_counts"]["completed"].as_u64() >= Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let mut child = start(port, data.path()).await;
    let done = loop {
        let j = admin(&client, reqwest::Method::GET, job_url.clone(), None).await;
        if ["succeeded", "failed", "cancelled"].contains(&j["status"].as_str().unwrap()) {
            break j;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["request_counts"]["completed"], 4, "{done}");
    let content = |id: &Value| {
        let url = format!("{base}/admin/v1/files/{}/content", id.as_str().unwrap());
        let client = client.clone();
        async move {
            client
                .get(url)
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let provenance = content(&done["provenance_file_id"]).await;
    let mut ids: Vec<String> = provenance
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["custom_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["0", "1", "2", "3"],
        "each custom_id exactly once after the kill"
    );
    // The summary covers the records written before the kill too, not just the resumed run's.
    let summary = &done["summary"];
    assert_eq!(summary["records"], 4, "{summary}");
    assert_eq!(summary["sample_similarity"]["n"], 4, "{summary}");
    let tokens: u64 = provenance
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["tokens"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(summary["tokens"], tokens, "{summary}");
    for line in provenance.lines() {
        let p: Value = serde_json::from_str(line).unwrap();
        let sim = p["scores"]["sample_similarity"].as_f64().unwrap();
        assert!((0.99..=1.001).contains(&sim), "greedy samples agree: {p}");
        assert!(
            p["strong"]["model"]
                .as_str()
                .unwrap()
                .contains(&strong_base),
            "{p}"
        );
    }
    let train = content(&done["output_file_id"]).await;
    for line in train.lines() {
        let turns = ptr_server::chatfile::parse_line(line).unwrap();
        let weights: Vec<_> = turns.iter().filter_map(|t| t.weight).collect();
        assert_eq!(weights, [0.0, 0.0, 1.0]);
    }
    // Events: the restart is in the log; a reconnect with Last-Event-ID replays the rest exactly.
    let stream = |last: Option<String>| {
        let mut r = client
            .get(format!("{job_url}/events?stream=true"))
            .bearer_auth(TOKEN);
        if let Some(l) = last {
            r = r.header("last-event-id", l);
        }
        async move { r.send().await.unwrap().text().await.unwrap() }
    };
    let all = sse_events(&stream(None).await);
    assert!(all
        .iter()
        .any(|e| e["message"].as_str().unwrap().contains("restarted")));
    let ids: Vec<i64> = all
        .iter()
        .map(|e| e["id"].as_str().unwrap()[3..].parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "events in order");
    let cut = all.len() / 2;
    let rest = sse_events(&stream(Some(all[cut]["id"].as_str().unwrap().to_string())).await);
    assert_eq!(rest, all[cut + 1..].to_vec());
    child.start_kill().unwrap();
    strong_server.shutdown().await.unwrap();
}
